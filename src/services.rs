//! The services every request can reach, built once at start.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::registry::Registry;
use crate::activity::service::ActivityService;
use crate::availability::service::AvailabilityService;
use crate::blob::SharedBlobStore;
use crate::calendars::service::CalendarService;
use crate::calendars::sync::{CalendarSettings, CalendarSync};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::contacts::service::ContactService;
use crate::crypto::SecretBox;
use crate::db::Db;
use crate::deletion::service::DeletionService;
use crate::error::Result;
use crate::export::service::ExportService;
use crate::fanout::Fanout;
use crate::identity::service::{IdentityService, Viewer};
use crate::mail::Mailer;
use crate::mailboxes::discovery::Discovery;
use crate::mailboxes::service::MailboxService;
use crate::mailboxes::sync::{MailSync, SyncSettings};
use crate::notifications::delivery::{Delivery, DeliverySettings};
use crate::notifications::digest::DigestScheduler;
use crate::notifications::push::{PushSender, Vapid};
use crate::notifications::service::{NotificationService, Wakers};
use crate::passkeys::service::PasskeyService;
use crate::platform_events::service::{PlatformEventService, PublishSettings};
use crate::profile::photo::PhotoLimits;
use crate::profile::service::ProfileService;
use crate::recovery::service::{RecoveryService, RecoverySettings};
use crate::security::log::SecurityLog;
use crate::security::service::SecurityService;
use crate::security::throttle::{AddressLimit, FailureLimit, Throttle};
use crate::service_accounts::model::{PREFIX as SERVICE_TOKEN_PREFIX, Principal};
use crate::service_accounts::service::ServiceAccountService;
use crate::tokens::model::PREFIX as TOKEN_PREFIX;
use crate::tokens::service::TokenService;
use crate::webhooks::{WebhookSettings, Webhooks};
use crate::workspace::service::{InvitationSettings, WorkspaceService};

#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub clock: SharedClock,
    /// Background work: the outbox's delivery worker and the daily-summary scheduler.
    pub delivery: Delivery,
    pub digests: DigestScheduler,
    pub mailer: Mailer,
    pub security_log: SecurityLog,
    pub profile: ProfileService,
    pub notifications: NotificationService,
    pub fanout: Fanout,
    pub identity: IdentityService,
    /// Password resets and address verification.
    pub recovery: RecoveryService,
    /// Data exports, and their worker.
    pub exports: ExportService,
    /// Account deletion, and its worker.
    pub deletion: DeletionService,
    /// Passkeys: registering them and signing in with them.
    pub passkeys: PasskeyService,
    public_url: String,
    pub tokens: TokenService,
    pub security: SecurityService,
    pub workspaces: WorkspaceService,
    pub contacts: ContactService,
    pub activity: ActivityService,
    pub mailboxes: MailboxService,
    /// Mail settings from an address (autoconfig, SRV records).
    pub discovery: Arc<Discovery>,
    /// This process as a lease holder (kept alive: its lock is the identity's).
    pub instance: Arc<crate::instance::Instance>,
    /// Webhooks out, and their delivery worker.
    pub webhooks: Webhooks,
    pub service_accounts: ServiceAccountService,
    pub platform_events: PlatformEventService,
    pub availability: AvailabilityService,
    /// Connected calendars, and their worker.
    pub calendars: CalendarService,
    /// Bearer and email-change tokens that did not check out, per client address.
    pub token_failures: Arc<FailureLimit>,
}

/// What the services are built on: storage, the change feed, the outside world's clients.
pub struct Foundation {
    pub db: Db,
    pub fanout: Fanout,
    pub secrets: SecretBox,
    pub mailer: Mailer,
    pub blobs: SharedBlobStore,
    pub clock: SharedClock,
    pub connectors: Registry,
    pub relying_party: webauthn_rs::prelude::Webauthn,
    /// Finds mail servers from an address when no preset serves its domain.
    pub discovery: Arc<Discovery>,
    /// This process as a lease holder, kept in the data folder.
    pub instance: Arc<crate::instance::Instance>,
}

impl Services {
    pub fn new(config: &Config, foundation: Foundation) -> anyhow::Result<Services> {
        let Foundation { db, fanout, secrets, mailer, blobs, clock, connectors, relying_party, discovery, instance } = foundation;
        let wakers = Wakers::default();
        let notifications = NotificationService::new(
            db.clone(),
            fanout.clone(),
            clock.clone(),
            wakers.clone(),
            Duration::from_secs(config.email_batch_secs),
            config.outbound_policy(),
            Arc::new(Domains { db: db.clone() }),
        );
        let vapid_subject = config.vapid_subject.clone().unwrap_or_else(|| format!("mailto:{}", mailer.address()));
        let outbound = config.outbound_policy();
        let push =
            PushSender::new(Arc::new(Vapid::from_seed(secrets.derive_key(b"concierge web push vapid"), vapid_subject)), outbound.clone());
        let delivery = Delivery::new(
            db.clone(),
            mailer.clone(),
            push,
            clock.clone(),
            DeliverySettings {
                retry_base: Duration::from_millis(config.delivery_retry_ms),
                max_attempts: config.delivery_max_attempts,
                links: crate::notifications::links::EmailLinks::new(
                    config.public_url(),
                    config.app_url.as_deref(),
                    &config.app_notifications_path,
                    &config.app_settings_path,
                    secrets.derive_key(b"concierge email preference links"),
                )?,
                day: Arc::new(Domains { db: db.clone() }),
                process: instance.id(),
            },
            wakers.delivery.clone(),
        );
        let digests = DigestScheduler::new(db.clone(), clock.clone(), wakers.schedule.clone(), wakers.delivery.clone());
        let log = SecurityLog::new(db.clone(), notifications.clone());
        // Every limit on guessing is counted where all replicas see it (PostgreSQL), or in this
        // process (SQLite: one gateway).
        let throttle =
            |c: &Config, name| Arc::new(Throttle::new(c.login_attempts_per_account, c.login_attempts_per_address).shared(&db, name));
        let identity = IdentityService::new(
            db.clone(),
            fanout.clone(),
            Duration::from_secs(u64::from(config.session_ttl_hours) * 3600),
            log.clone(),
            throttle(config, "login"),
            Arc::new(AddressLimit::new(config.signups_per_address, Duration::from_secs(3600)).shared(&db, "sign-up")),
        )
        .requiring_verified_email(config.require_verified_email);
        let recovery = RecoveryService::new(
            db.clone(),
            fanout.clone(),
            mailer.clone(),
            log.clone(),
            Arc::new(Throttle::new(config.account_emails_per_address, config.login_attempts_per_address).shared(&db, "account-email")),
            RecoverySettings {
                public_url: config.public_url(),
                reset_url: config.password_reset_url.clone(),
                reset_ttl: chrono::TimeDelta::minutes(i64::from(config.password_reset_minutes.max(1))),
            },
        );
        let token_failures = Arc::new(FailureLimit::new(config.token_failures_per_address).shared(&db, "token-failure"));
        let workspaces = WorkspaceService::new(
            db.clone(),
            fanout.clone(),
            notifications.clone(),
            mailer.clone(),
            InvitationSettings {
                ttl: chrono::TimeDelta::hours(i64::from(config.invitation_ttl_hours.max(1))),
                link: config.invitation_url.clone().unwrap_or_else(|| format!("{}/invitation", config.public_url())),
                per_inviter: config.invitations_per_inviter,
            },
        );
        let webhooks = Webhooks::new(
            db.clone(),
            secrets.clone(),
            workspaces.clone(),
            notifications.clone(),
            clock.clone(),
            WebhookSettings {
                retry_base: Duration::from_millis(config.webhook_retry_ms.max(1)),
                policy: outbound,
                process: instance.id(),
                ..WebhookSettings::default()
            },
        );
        let contacts = ContactService::new(db.clone(), workspaces.clone(), webhooks.clone());
        let calendar_registry = connectors.clone();
        let sync = MailSync::new(
            db.clone(),
            connectors,
            secrets.clone(),
            fanout.clone(),
            notifications.clone(),
            webhooks.clone(),
            SyncSettings {
                reconcile_every: Duration::from_secs(config.mail_reconcile_secs.max(1)),
                backoff_base: Duration::from_millis(config.mail_retry_ms.max(1)),
                batch: config.mail_sync_batch.clamp(1, 10_000),
                lease: Duration::from_secs(config.mail_lease_secs.max(1)),
                process: instance.id(),
                ..SyncSettings::default()
            },
        );
        let calendar_sync = CalendarSync::new(
            db.clone(),
            secrets.clone(),
            calendar_registry,
            Arc::new(sync.clone()),
            notifications.clone(),
            CalendarSettings {
                poll: Duration::from_secs(config.calendar_poll_secs.max(1)),
                lease: Duration::from_secs(config.calendar_lease_secs.max(1)),
                retry: Duration::from_millis(config.calendar_retry_ms.max(1)),
                timeout: Duration::from_secs(30),
                process: instance.id(),
            },
            clock.clone(),
        );
        let mail_sync = sync.clone();
        let security = SecurityService::new(
            db.clone(),
            secrets.clone(),
            identity.clone(),
            log.clone(),
            throttle(config, "second-factor"),
            mailer.clone(),
        );
        let passkeys = PasskeyService::new(
            db.clone(),
            secrets.clone(),
            relying_party,
            identity.clone(),
            security.clone(),
            log.clone(),
            throttle(config, "passkey"),
            Arc::new(AddressLimit::new(config.login_attempts_per_address, Duration::from_secs(15 * 60)).shared(&db, "passkey-start")),
        );
        Ok(Services {
            passkeys,
            calendars: CalendarService::new(db.clone(), calendar_sync.clone()),
            availability: AvailabilityService::new(
                db.clone(),
                fanout.clone(),
                clock.clone(),
                Duration::from_secs(config.presence_grace_secs),
            ),
            service_accounts: ServiceAccountService::new(db.clone(), log.clone()),
            platform_events: PlatformEventService::new(
                db.clone(),
                notifications.clone(),
                webhooks.clone(),
                calendar_sync,
                PublishSettings { batch_max: config.publish_batch_max },
            ),
            activity: ActivityService::new(db.clone(), contacts.clone(), workspaces.clone()),
            mailboxes: MailboxService::new(
                db.clone(),
                secrets.clone(),
                sync,
                fanout.clone(),
                workspaces.clone(),
                log.clone(),
                config.max_send_bytes,
            ),
            discovery,
            instance,
            contacts,
            webhooks,
            deletion: DeletionService::new(
                db.clone(),
                fanout.clone(),
                mailer.clone(),
                log.clone(),
                security.clone(),
                mail_sync,
                blobs.clone(),
                chrono::TimeDelta::hours(i64::from(config.account_deletion_grace_hours)),
            ),
            security,
            identity,
            recovery,
            exports: ExportService::new(db.clone(), blobs.clone(), notifications.clone(), log.clone()),
            public_url: config.public_url(),
            workspaces,
            tokens: TokenService::new(db.clone(), log.clone(), fanout.clone()),
            profile: ProfileService::new(
                db.clone(),
                fanout.clone(),
                mailer.clone(),
                blobs,
                log.clone(),
                &config.public_url(),
                PhotoLimits { max_bytes: config.max_photo_bytes, ..PhotoLimits::default() },
                token_failures.clone(),
            ),
            token_failures,
            security_log: log,
            notifications,
            delivery,
            digests,
            clock,
            mailer,
            db,
            fanout,
        })
    }

    /// The URL clients reach the gateway at, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url.clone()
    }

    /// The viewer a bearer credential stands for: a session token or a personal access token.
    pub async fn authenticate(&self, bearer: &str) -> Result<Option<Viewer>> {
        if bearer.starts_with(TOKEN_PREFIX) {
            self.tokens.authenticate(bearer).await
        } else {
            self.identity.authenticate_session(bearer).await
        }
    }

    /// Who a bearer credential stands for: a user (as `authenticate`) or, for a `csat_`
    /// token, a service account. `authenticate` never accepts a service-account token.
    /// `authenticate_principal` for a client at `address`, throttled: an address that sent
    /// too many tokens that do not authenticate is RATE_LIMITED, its tokens unchecked.
    pub async fn authenticate_principal_from(&self, bearer: &str, address: Option<&str>) -> Result<Option<Principal>> {
        self.token_failures.check(address).await?;
        let principal = self.authenticate_principal(bearer).await?;
        if principal.is_none() {
            self.token_failures.failed(address).await?;
        }
        Ok(principal)
    }

    pub async fn authenticate_principal(&self, bearer: &str) -> Result<Option<Principal>> {
        if bearer.starts_with(SERVICE_TOKEN_PREFIX) {
            Ok(self.service_accounts.authenticate(bearer).await?.map(Principal::ServiceAccount))
        } else {
            Ok(self.authenticate(bearer).await?.map(Principal::User))
        }
    }
}

/// What notifications read from the domains above them, answered here, where every domain is
/// in reach: the daily summary's day (platform events, calendars) and whether a user holds
/// alerts (availability).
struct Domains {
    db: Db,
}

#[async_trait::async_trait]
impl crate::notifications::sources::DaySources for Domains {
    async fn agenda(
        &self,
        account: crate::identity::model::AccountId,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<Vec<crate::notifications::sources::AgendaItem>> {
        use crate::notifications::sources::{AgendaItem, AgendaKind};
        let rows = crate::platform_events::store::agenda(&self.db, account, from, to).await?;
        Ok(rows
            .into_iter()
            .filter(|row| !crate::platform_events::model::ends_the_subject(&row.kind))
            .filter_map(|row| {
                let kind = if row.kind.starts_with("task.") {
                    AgendaKind::Task
                } else if row.kind.starts_with("appointment.") {
                    AgendaKind::Appointment
                } else {
                    return None;
                };
                Some(AgendaItem { kind, title: row.subject_title, at: row.scheduled_at })
            })
            .collect())
    }

    async fn calendar(
        &self,
        account: crate::identity::model::AccountId,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
        zone: chrono_tz::Tz,
    ) -> anyhow::Result<Vec<crate::notifications::sources::CalendarItem>> {
        let entries = crate::calendars::service::agenda(&self.db, account, from, to, zone).await?;
        Ok(entries
            .into_iter()
            // Appointments Concierge wrote to the calendar are listed as appointments.
            .filter(|e| !e.uid.ends_with(crate::calendars::appointments::UID_SUFFIX))
            .map(|e| crate::notifications::sources::CalendarItem {
                title: e.occurrence.summary.unwrap_or_default(),
                all_day: e.occurrence.all_day,
                start: e.occurrence.start,
                end: e.occurrence.end,
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl crate::notifications::sources::AlertHold for Domains {
    async fn holding_alerts(
        &self,
        accounts: &[crate::identity::model::AccountId],
    ) -> crate::error::Result<std::collections::HashSet<crate::identity::model::AccountId>> {
        crate::availability::service::holding_alerts(&self.db, accounts).await
    }
}
