//! The security log: a record of what happened to an account's credentials, with the address
//! and user agent it came from. Writing to it never fails the operation it records.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::store;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::Result;
use crate::i18n::text;
use crate::identity::model::AccountId;
use crate::identity::service::ClientMeta;
use crate::notifications::model::NotificationEvent;
use crate::notifications::service::{Notice, NotificationService};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum SecurityEventKind {
    SignInSucceeded,
    /// A wrong password, or a wrong second-factor code, for this account.
    SignInFailed,
    /// Sign-in attempts were refused by the rate limit.
    SignInThrottled,
    PasswordChanged,
    TwoFactorEnabled,
    TwoFactorDisabled,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    SessionRevoked,
    AccessTokenCreated,
    AccessTokenRegenerated,
    AccessTokenRevoked,
    EmailChangeRequested,
    EmailChanged,
    MailboxConnected,
    MailboxDisconnected,
    /// A workspace service account was created (the detail names it).
    ServiceAccountCreated,
    ServiceAccountDeleted,
    /// A service account's token was created or revoked (the detail names both).
    ServiceAccountTokenCreated,
    ServiceAccountTokenRevoked,
    /// The password was set with an emailed reset link (every session ended).
    PasswordReset,
    /// The login email was proven with an emailed link (the detail is the address).
    EmailVerified,
    /// An archive of the account's data was asked for.
    DataExportRequested,
    /// The holder asked for the account to be deleted (the detail is when).
    AccountDeletionScheduled,
    AccountDeletionCancelled,
    /// A passkey was registered (the detail is its name).
    PasskeyAdded,
    /// A passkey was removed (the detail is its name).
    PasskeyRemoved,
}

impl SecurityEventKind {
    /// The text id of the notification this event raises, for the events a user should
    /// hear about (routine sign-ins and failures are only logged).
    fn notice(self) -> Option<&'static str> {
        use SecurityEventKind::*;
        Some(match self {
            PasswordChanged | PasswordReset => "security-password-changed",
            TwoFactorEnabled => "security-two-factor-enabled",
            TwoFactorDisabled => "security-two-factor-disabled",
            RecoveryCodeUsed => "security-recovery-code-used",
            RecoveryCodesRegenerated => "security-recovery-codes-regenerated",
            AccessTokenCreated => "security-access-token-created",
            EmailChanged => "security-email-changed",
            MailboxConnected => "security-mailbox-connected",
            MailboxDisconnected => "security-mailbox-disconnected",
            PasskeyAdded => "security-passkey-added",
            PasskeyRemoved => "security-passkey-removed",
            _ => return None,
        })
    }
}

/// One entry of the log, as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SecurityEvent {
    pub event_id: Uuid,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[derive(Clone)]
pub struct SecurityLog {
    db: Db,
    notifications: NotificationService,
}

impl SecurityLog {
    pub fn new(db: Db, notifications: NotificationService) -> Self {
        SecurityLog { db, notifications }
    }

    /// Appends an event. A failure is logged, not returned: the change it records has happened.
    pub async fn record(&self, account_id: AccountId, kind: SecurityEventKind, meta: &ClientMeta, detail: Option<&str>) {
        let event = store::NewSecurityEvent {
            event_id: Uuid::now_v7(),
            account_id,
            kind: kind.stored_name(),
            occurred_at: Utc::now(),
            ip: meta.ip.as_deref(),
            user_agent: meta.user_agent.as_deref().map(|ua| crate::identity::service::truncate(ua, 512)),
            detail: detail.map(|d| crate::identity::service::truncate(d, 200)),
        };
        if let Err(e) = store::insert_security_event(&self.db, &event).await {
            tracing::error!(error = %e, account_id = %account_id, kind = kind.stored_name(), "cannot write the security log");
        }
        if let Some(text_id) = kind.notice() {
            // In the user's language, like the emails and pushes it becomes.
            let language = match crate::identity::store::find_accounts(&self.db, &[account_id]).await {
                Ok(mut found) => found.pop().map(|a| a.language).unwrap_or_else(|| "en".into()),
                Err(_) => "en".into(),
            };
            let title = text(&language, text_id, &[]);
            let body = match meta.ip.as_deref() {
                Some(ip) => text(&language, "security-body-from", &[("what", &title), ("ip", ip)]),
                None => text(&language, "security-body", &[("what", &title)]),
            };
            let notice = Notice {
                dedupe_key: Some(format!("security:{}", event.event_id)),
                ..Notice::new(account_id, NotificationEvent::SecurityEvent, title, body)
            };
            if let Err(e) = self.notifications.notify(notice).await {
                tracing::error!(error = ?e, account_id = %account_id, "cannot notify a security event");
            }
        }
    }

    /// One page, newest first, starting before `before` (a previous page's last event id).
    /// Returns the page and whether more follow.
    /// One page of the account's log, read in `direction`: the rows as the store gives them
    /// (see [`crate::graphql::paging::settle`]).
    pub async fn page(&self, account_id: AccountId, cursor: Option<Uuid>, newer: bool, limit: usize) -> Result<Vec<SecurityEvent>> {
        Ok(store::security_events(&self.db, account_id, cursor, newer, limit as i64 + 1).await?)
    }
}
