//! Signing in with OAuth2 (XOAUTH2) against the lab's real Dovecot, whose oauth2 passdb
//! checks every token with the lab's OAuth2 stand-in: IMAP sessions and SMTP submission,
//! the one refresh after a refused token, and a refused refresh as a re-authorisation.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::Utc;
use concierge_connector_imap_smtp::ImapSmtpConnector;
use concierge_connector_sdk::{
    AccessTokenSource, Account, ConnectorError, Credentials, Disposition, MailConnector, Outgoing, Secret, async_trait, kit,
};

use crate::lab::{IssuedTokens, Lab, StandIn};

/// The gateway's side of OAuth2 as the connector sees it: the current access token, and a
/// new one from the provider's token endpoint (`grant_type=refresh_token`) when the
/// server refuses it. Counts the refreshes the connector asks for.
struct StandInTokens {
    standin: StandIn,
    refresh_token: String,
    current: Mutex<Secret>,
    refreshes: AtomicU32,
}

impl StandInTokens {
    fn new(standin: StandIn, issued: IssuedTokens) -> Arc<StandInTokens> {
        Arc::new(StandInTokens {
            standin,
            refresh_token: issued.refresh_token,
            current: Mutex::new(Secret::new(issued.access_token)),
            refreshes: AtomicU32::new(0),
        })
    }

    fn refreshes(&self) -> u32 {
        self.refreshes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AccessTokenSource for StandInTokens {
    async fn access_token(&self) -> Result<Secret, ConnectorError> {
        Ok(self.current.lock().expect("token lock").clone())
    }

    async fn refresh(&self) -> Result<Secret, ConnectorError> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let (status, answer) = self
            .standin
            .refresh(&self.refresh_token)
            .await
            .map_err(|e| ConnectorError::Unreachable { message: format!("token endpoint: {e}") })?;
        match (status, answer["access_token"].as_str()) {
            (200, Some(token)) => {
                let token = Secret::new(token);
                *self.current.lock().expect("token lock") = token.clone();
                Ok(token)
            }
            (400, _) if answer["error"] == "invalid_grant" => {
                Err(ConnectorError::Authentication { message: "the provider refused the refresh token (invalid_grant)".into() })
            }
            _ => Err(ConnectorError::Protocol { message: format!("token endpoint answered {status}") }),
        }
    }
}

/// A lab user signing in as `name@maillab.test` with tokens from `tokens`, over IMAP with
/// this security type (SMTP: submission with STARTTLS).
fn oauth_account(lab: &Lab, connector: &dyn MailConnector, name: &str, imap_security: &str, tokens: Arc<StandInTokens>) -> Account {
    let mut account = lab.account(connector, name, "unused", imap_security);
    account.credentials = Credentials::OAuth2 {
        // Gmail and Outlook sign in with the address; Dovecot's username_format %Ln
        // compares only the local part with the token's user.
        username: email(name),
        tokens,
    };
    account
}

fn email(name: &str) -> String {
    format!("{name}@maillab.test")
}

#[tokio::test]
async fn an_oauth2_account_signs_in_with_xoauth2_and_fetches_its_mail() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("oauth").await;
    lab.deliver(&name, &password, &kit::message("hello by token", Utc::now()), Utc::now()).await;
    let standin = lab.oauth();
    let tokens = StandInTokens::new(standin, standin.issue(&email(&name), None).await);

    let mut session =
        connector.open(&oauth_account(&lab, &connector, &name, "SSL_TLS", Arc::clone(&tokens))).await.expect("open with XOAUTH2");
    let refs = session.list(Utc::now() - chrono::Duration::days(1), None).await.expect("list");
    let messages = session.fetch(&refs).await.expect("fetch");
    session.close().await;

    assert_eq!(messages.len(), 1);
    assert!(String::from_utf8_lossy(&messages[0].bytes).contains("Subject: hello by token"));
    assert_eq!(tokens.refreshes(), 0, "a good token needs no refresh");
    let stats = standin.stats(&email(&name)).await;
    assert_eq!((stats.introspect, stats.refresh_token), (1, 0), "Dovecot checked the token once");
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_and_the_session_opens() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, password) = lab.add_user("expired").await;
    lab.deliver(&name, &password, &kit::message("after a refresh", Utc::now()), Utc::now()).await;
    let standin = lab.oauth();
    // ttl 0: the access token the gateway holds has already expired.
    let tokens = StandInTokens::new(standin, standin.issue(&email(&name), Some(0)).await);

    let mut session =
        connector.open(&oauth_account(&lab, &connector, &name, "STARTTLS", Arc::clone(&tokens))).await.expect("open after one refresh");
    let refs = session.list(Utc::now() - chrono::Duration::days(1), None).await.expect("list");
    assert_eq!(session.fetch(&refs).await.expect("fetch").len(), 1);
    session.close().await;

    assert_eq!(tokens.refreshes(), 1, "exactly one refresh");
    let stats = standin.stats(&email(&name)).await;
    assert_eq!(stats.refresh_token, 1, "the provider saw one refresh grant");
    assert_eq!(stats.introspect, 2, "Dovecot checked the expired token, then the fresh one");
}

#[tokio::test]
async fn a_revoked_refresh_token_makes_open_an_authentication_error_to_reauthorize() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (name, _) = lab.add_user("revoked").await;
    let standin = lab.oauth();
    let issued = standin.issue(&email(&name), None).await;
    let (access, refresh) = (issued.access_token.clone(), issued.refresh_token.clone());
    let tokens = StandInTokens::new(standin, issued);
    // The user withdrew consent at the provider.
    standin.revoke(&email(&name)).await;

    let error = match connector.open(&oauth_account(&lab, &connector, &name, "SSL_TLS", Arc::clone(&tokens))).await {
        Err(e) => e,
        Ok(_) => panic!("a revoked grant must not sign in"),
    };

    assert!(matches!(error, ConnectorError::Authentication { .. }), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Reauthorize);
    let message = error.to_string();
    assert!(!message.contains(&access) && !message.contains(&refresh), "no token in: {message}");
    assert_eq!(tokens.refreshes(), 1, "one refresh was tried, no more");
    assert_eq!(standin.stats(&email(&name)).await.refresh_token, 0);
}

/// Sends one small message from `account` to `to`.
async fn send(connector: &ImapSmtpConnector, account: &Account, to: &str, subject: &str) -> Result<String, ConnectorError> {
    let raw = kit::message(subject, Utc::now());
    let recipients = vec![to.to_owned()];
    connector
        .send(account, Outgoing { from: &account.address, recipients: &recipients, raw: &raw, sent_copy: None })
        .await
        .map(|receipt| receipt.response)
}

#[tokio::test]
async fn sending_with_xoauth2_through_submission_reaches_the_recipients_inbox() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, _) = lab.add_user("alice").await;
    let (bob, bob_pw) = lab.add_user("bob").await;
    let standin = lab.oauth();
    let tokens = StandInTokens::new(standin, standin.issue(&email(&alice), None).await);
    let account = oauth_account(&lab, &connector, &alice, "SSL_TLS", Arc::clone(&tokens));

    let response = send(&connector, &account, &email(&bob), "sent by token").await.expect("send with XOAUTH2");

    assert!(response.starts_with("250"), "{response}");
    let inbox = lab.await_messages(&bob, &bob_pw, 1, Duration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Subject: sent by token"));
    assert_eq!(tokens.refreshes(), 0);
}

#[tokio::test]
async fn sending_with_an_expired_token_refreshes_once_and_delivers() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, _) = lab.add_user("alice").await;
    let (bob, bob_pw) = lab.add_user("bob").await;
    let standin = lab.oauth();
    let tokens = StandInTokens::new(standin, standin.issue(&email(&alice), None).await);
    standin.expire(&email(&alice)).await;
    let account = oauth_account(&lab, &connector, &alice, "SSL_TLS", Arc::clone(&tokens));

    let response = send(&connector, &account, &email(&bob), "after a refresh").await.expect("send after one refresh");

    assert!(response.starts_with("250"), "{response}");
    assert_eq!(tokens.refreshes(), 1, "exactly one refresh");
    assert_eq!(standin.stats(&email(&alice)).await.refresh_token, 1);
    let inbox = lab.await_messages(&bob, &bob_pw, 1, Duration::from_secs(20)).await;
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Subject: after a refresh"));
}

#[tokio::test]
async fn sending_with_a_refused_token_is_an_authentication_error_without_the_token() {
    let lab = Lab::start();
    let connector = ImapSmtpConnector::generic(lab.options());
    let (alice, _) = lab.add_user("alice").await;
    // Neither token was ever issued: the server refuses the access token, the provider
    // the refresh token.
    let tokens = StandInTokens::new(
        lab.oauth(),
        IssuedTokens { access_token: "Zq7-never-issued-access".into(), refresh_token: "Zq7-never-issued-refresh".into() },
    );
    let account = oauth_account(&lab, &connector, &alice, "SSL_TLS", Arc::clone(&tokens));

    match send(&connector, &account, "someone@maillab.test", "never").await {
        Err(error @ ConnectorError::Authentication { .. }) => {
            assert_eq!(error.disposition(), Disposition::Reauthorize);
            assert!(!error.to_string().contains("Zq7"), "no token in: {error}");
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    assert_eq!(tokens.refreshes(), 1, "one refresh was tried, no more");
}
