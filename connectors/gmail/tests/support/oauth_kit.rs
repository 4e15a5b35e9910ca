//! The conformance kit's view of the mail lab for a connector that signs in with OAuth2:
//! fresh lab users whose tokens come from the lab's OAuth2 stand-in (playing Google or
//! Microsoft), mail put in with the lab's own IMAP client. Shared by the Gmail and Outlook
//! crates' kit tests; the lab itself is the IMAP/SMTP connector's (`lab.rs`, included next
//! to this module as `lab`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use concierge_connector_imap_smtp::{Endpoint, Security};
use concierge_connector_sdk::{
    AccessTokenSource, Account, ConnectorError, Credentials, Secret, Settings, SharedConnector, async_trait, kit,
};

use crate::lab::{Lab, StandIn};

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

pub struct OAuthHarness {
    lab: Lab,
    connector: SharedConnector,
    /// address → the user's lab password, for putting mail in without the connector.
    passwords: Mutex<HashMap<String, (String, String)>>,
}

impl OAuthHarness {
    pub fn new(lab: Lab, connector: SharedConnector) -> OAuthHarness {
        OAuthHarness { lab, connector, passwords: Mutex::default() }
    }
}

#[async_trait]
impl kit::Harness for OAuthHarness {
    fn connector(&self) -> SharedConnector {
        Arc::clone(&self.connector)
    }

    async fn new_account(&self) -> Account {
        let (name, password) = self.lab.add_user("kit").await;
        let address = format!("{name}@maillab.test");
        let standin = self.lab.oauth();
        let issued = standin.issue(&address, None).await;
        if let Ok(mut map) = self.passwords.lock() {
            map.insert(address.clone(), (name, password));
        }
        let settings = self.connector.validate(&Settings::new()).unwrap_or_else(|e| panic!("a preset must take empty settings: {e}"));
        Account {
            // Gmail and Outlook sign in with the address.
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

    async fn deliver(&self, account: &Account, raw: &[u8], received_at: DateTime<Utc>) {
        let (name, password) = self.passwords.lock().ok().and_then(|m| m.get(&account.address).cloned()).expect("a harness account");
        self.lab.deliver(&name, &password, raw, received_at).await;
    }

    /// Tokens the stand-in never issued: the server refuses the access token and the
    /// provider the refresh token, as after the user withdrew consent.
    fn with_wrong_password(&self, account: &Account) -> Account {
        let mut wrong = account.clone();
        wrong.credentials = Credentials::OAuth2 {
            username: account.address.clone(),
            tokens: Arc::new(StandInTokens {
                standin: self.lab.oauth(),
                refresh_token: "never-issued-refresh".into(),
                current: Mutex::new(Secret::new("never-issued-access")),
            }),
        };
        wrong
    }
}
