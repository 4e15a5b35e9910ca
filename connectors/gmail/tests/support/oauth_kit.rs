//! The conformance kit's view of the mail lab for a connector that signs in with OAuth2:
//! fresh lab users whose tokens come from the lab's OAuth2 stand-in (playing Google or
//! Microsoft), mail put in with the lab's own IMAP client. Shared by the Gmail and Outlook
//! crates' kit tests; the lab itself is the IMAP/SMTP connector's (`lab.rs`, included next
//! to this module as `lab`).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use concierge_connector_imap_smtp::{Endpoint, ImapSmtpConnector, Options, Security};
use concierge_connector_sdk::{
    AccessTokenSource, Account, ConnectorError, Credentials, MailConnector, Secret, Settings, SharedConnector, async_trait, kit,
};

use crate::lab::{KitLab, Lab, StandIn};

/// The gateway's side of OAuth2 as a connector sees it: the current access token, and a
/// new one from the stand-in's token endpoint when the server refuses it.
struct StandInTokens {
    standin: StandIn,
    refresh_token: String,
    current: Mutex<Secret>,
}

#[async_trait]
impl AccessTokenSource for StandInTokens {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        self.current.lock().map(|t| t.clone()).map_err(|_| ConnectorError::Protocol { message: "token lock poisoned".into() })
    }

    async fn refresh(&self) -> Result<Secret, ConnectorError> {
        let (status, answer) = self
            .standin
            .refresh(&self.refresh_token)
            .await
            .map_err(|e| ConnectorError::Unreachable { message: format!("token endpoint: {e}") })?;
        match (status, answer["access_token"].as_str()) {
            (200, Some(token)) => {
                let token = Secret::new(token);
                if let Ok(mut current) = self.current.lock() {
                    *current = token.clone();
                }
                Ok(token)
            }
            (400, _) if answer["error"] == "invalid_grant" => {
                Err(ConnectorError::Authentication { message: "the provider refused the refresh token (invalid_grant)".into() })
            }
            _ => Err(ConnectorError::Protocol { message: format!("token endpoint answered {status}") }),
        }
    }
}

/// The lab's IMAP over SSL/TLS and its submission port with STARTTLS: the endpoints a
/// preset connector is pointed at instead of the provider's.
pub fn lab_endpoints(lab: &Lab) -> (Endpoint, Endpoint) {
    let at = |port, security| Endpoint { host: "127.0.0.1".into(), port, security };
    (at(lab.imaps, Security::SslTls), at(lab.submission, Security::StartTls))
}

/// How a provider crate builds its connector for other servers (`gmail::connector`,
/// `outlook::connector`).
pub type Build = fn(Options, Option<Endpoint>, Option<Endpoint>) -> ImapSmtpConnector;

pub struct OAuthHarness {
    users: KitLab,
    build: Build,
    connector: SharedConnector,
}

impl OAuthHarness {
    /// The provider's connector pointed at the lab.
    pub fn new(lab: Lab, build: Build) -> OAuthHarness {
        let (imap, smtp) = lab_endpoints(&lab);
        let connector: SharedConnector = Arc::new(build(lab.options(), Some(imap), Some(smtp)));
        OAuthHarness { users: KitLab::new(lab), build, connector }
    }

    /// A lab user signing in with tokens from that lab's stand-in, as the provider's users do
    /// (with their address).
    async fn oauth_account(&self, connector: &dyn MailConnector, lab: &Lab, name: &str) -> Account {
        let address = format!("{name}@maillab.test");
        let standin = lab.oauth();
        let issued = standin.issue(&address, None).await;
        let settings = connector.validate(&Settings::new()).unwrap_or_else(|e| panic!("a preset must take empty settings: {e}"));
        Account {
            credentials: Credentials::OAuth2 {
                username: address.clone(),
                tokens: Arc::new(StandInTokens {
                    standin,
                    refresh_token: issued.refresh_token,
                    current: Mutex::new(Secret::new(issued.access_token)),
                }),
            },
            address,
            settings,
        }
    }
}

#[async_trait]
impl kit::Harness for OAuthHarness {
    fn connector(&self) -> SharedConnector {
        Arc::clone(&self.connector)
    }

    async fn new_account(&self) -> Account {
        let (name, _) = self.users.add_user("kit").await;
        self.oauth_account(self.connector.as_ref(), &self.users.lab, &name).await
    }

    async fn deliver(&self, account: &Account, raw: &[u8], received_at: DateTime<Utc>) {
        let (name, password) = self.users.user(&account.address);
        self.users.lab.deliver(&name, &password, raw, received_at).await;
    }

    /// Tokens the stand-in never issued: the server refuses the access token and the
    /// provider the refresh token, as after the user withdrew consent.
    fn with_wrong_password(&self, account: &Account) -> Account {
        let mut wrong = account.clone();
        wrong.credentials = Credentials::OAuth2 {
            username: account.address.clone(),
            tokens: Arc::new(StandInTokens {
                standin: self.users.lab.oauth(),
                refresh_token: "never-issued-refresh".into(),
                current: Mutex::new(Secret::new("never-issued-access")),
            }),
        };
        wrong
    }

    fn sending(&self) -> Option<&dyn kit::Sending> {
        Some(&self.users)
    }

    fn renumbering(&self) -> Option<&dyn kit::Renumbering> {
        Some(&self.users)
    }

    fn read_state(&self) -> Option<&dyn kit::ReadState> {
        Some(&self.users)
    }

    fn throttling(&self) -> Option<&dyn kit::Throttling> {
        Some(self)
    }

    fn oauth(&self) -> Option<&dyn kit::OAuthTokens> {
        Some(self)
    }
}

#[async_trait]
impl kit::Throttling for OAuthHarness {
    async fn throttled(&self, _account: &Account) -> (SharedConnector, Account) {
        let (lab, name, _) = self.users.throttled_user(true).await;
        let (imap, smtp) = lab_endpoints(lab);
        let connector = (self.build)(lab.options(), Some(imap), Some(smtp));
        let account = self.oauth_account(&connector, lab, &name).await;
        (Arc::new(connector), account)
    }
}

/// The stand-in's own books: it expires tokens and counts the refresh grants it answered.
#[async_trait]
impl kit::OAuthTokens for OAuthHarness {
    async fn expire_access_token(&self, account: &Account) {
        self.users.lab.oauth().expire(&account.address).await;
    }

    async fn refreshes(&self, account: &Account) -> u32 {
        let granted = self.users.lab.oauth().stats(&account.address).await.refresh_token;
        u32::try_from(granted).unwrap_or(u32::MAX)
    }
}
