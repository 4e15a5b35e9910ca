//! Mailboxes over GraphQL: the connector descriptors, connecting and managing mailboxes,
//! and their status and sync progress live.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject, Subscription, Upload};
use chrono::{DateTime, NaiveDate, Utc};
use concierge_connector_sdk::SharedConnector;
use futures_util::{Stream, future};

use super::authorize::StartInput;
use super::discovery::Source;
use super::model::{Mailbox, MailboxEventKind, MailboxId, MailboxStatus};
use super::send::{OutgoingAttachment, ReplyContext, SendInput};
use super::service::ConnectInput;
use crate::accounts::forms::{ConnectorField, MailAuthMethod, form_fields};
use crate::activity::graphql::ActivityEventNode;
use crate::activity::model::{ActivityEvent, EventId};
use crate::error::Error;
use crate::error::Result;
use crate::fanout::{Change, Topic};
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::identity::graphql::User;
use crate::input::input_or_flat;
use crate::tokens::model::Scope;
use crate::workspace::model::WorkspaceId;

/// A kind of mail account the gateway can connect, and the form that connects one.
pub struct MailConnectorNode(pub SharedConnector);

#[Object(name = "MailConnector")]
impl MailConnectorNode {
    /// The stable id `connectMailbox` takes.
    async fn kind(&self) -> &str {
        self.0.descriptor().kind
    }

    async fn display_name(&self) -> &str {
        &self.0.descriptor().display_name
    }

    /// What the form is called ("Yahoo Mail"); the same as `displayName`.
    async fn label(&self) -> &str {
        &self.0.descriptor().display_name
    }

    /// The address domains its provider serves (`discoverMailSettings` finds it by them).
    async fn domains(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let registry = ctx.services()?.mailboxes.sync().registry();
        Ok(registry.domains_of(self.0.descriptor().kind).into_iter().map(str::to_owned).collect())
    }

    /// What the user needs to know before connecting (an app password, say).
    async fn help(&self) -> Option<&str> {
        self.0.descriptor().help.as_deref()
    }

    async fn auth(&self) -> MailAuthMethod {
        self.0.descriptor().auth.into()
    }

    /// Whether it can be used on this gateway: password connectors always, OAuth ones once
    /// the operator configured their app (client id and secret).
    async fn configured(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(ctx.services()?.mailboxes.sync().registry().configured(self.0.descriptor().kind))
    }

    /// The provider an OAuth connector signs in at ("Google", "Microsoft").
    async fn oauth_provider(&self) -> Option<&str> {
        self.0.oauth().map(|p| p.name.as_str())
    }

    /// Whether mail can be sent through mailboxes of this kind.
    async fn can_send(&self) -> bool {
        self.0.descriptor().capabilities.send
    }

    async fn fields(&self) -> Vec<ConnectorField> {
        form_fields(self.0.descriptor())
    }
}

/// Where an address's mail settings were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum DiscoverySource {
    /// A provider preset (built in, or the operator's) serves the domain.
    Preset,
    /// The domain's autoconfig document (`autoconfig.<domain>`, or its
    /// `/.well-known/autoconfig/`), read over HTTPS.
    Autoconfig,
    /// The domain's SRV records (RFC 6186: `_imaps._tcp`, `_submission._tcp`, …).
    Srv,
}

/// The mail settings found for an address.
#[derive(SimpleObject)]
pub struct MailDiscovery {
    /// The address's domain, lower case.
    pub domain: String,
    pub source: DiscoverySource,
    /// The connector to connect with. For a preset, its form asks for nothing but the
    /// password (or it signs in at the provider); otherwise it is the generic IMAP/SMTP
    /// connector, with `settings` filled in.
    pub connector: MailConnectorNode,
    /// Values for the connector's form, by field key (`imapHost`, `imapPort`,
    /// `imapSecurity`, `smtpHost`, …, `username` when it is not the address): empty for a
    /// preset. The user checks them and connects; nothing was connected to yet.
    pub settings: Json<serde_json::Map<String, serde_json::Value>>,
}

/// One line of a mailbox's history.
#[derive(SimpleObject)]
pub struct MailboxHistoryLine {
    pub at: DateTime<Utc>,
    pub kind: MailboxEventKind,
    /// The error, the date listed from, or who asked, where there is one.
    pub detail: Option<String>,
}

/// A connected mailbox. Its credentials are never shown.
pub struct MailboxNode(pub Mailbox);

#[derive(SimpleObject)]
pub struct MailboxCounts {
    /// Messages recorded as events.
    messages: i64,
    /// Of those, messages that could not be fully read (recorded and marked malformed).
    malformed: i64,
}

/// Whether the sync has recorded everything the server holds since the sync-from date.
#[derive(SimpleObject)]
pub struct MailboxHealth {
    /// Messages the server held since the sync-from date at the last reconciliation.
    server_count: Option<i64>,
    /// Server messages the sync has handled.
    recorded_count: i64,
    /// Server messages found unrecorded at the last reconciliation (and then backfilled).
    missing: Option<i64>,
    last_reconciled_at: Option<DateTime<Utc>>,
}

#[Object(name = "Mailbox")]
impl MailboxNode {
    async fn id(&self) -> ID {
        ID(self.0.mailbox_id.0.to_string())
    }

    /// The connector's kind.
    async fn connector(&self) -> &str {
        &self.0.connector
    }

    async fn email_address(&self) -> &str {
        &self.0.email_address
    }

    /// The connect form's values (never the password).
    async fn settings(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.settings).unwrap_or_default())
    }

    async fn status(&self) -> MailboxStatus {
        self.0.status()
    }

    /// Why the mailbox has its status (every change records one).
    async fn status_reason(&self) -> Option<&str> {
        self.0.status_reason.as_deref()
    }

    async fn status_changed_at(&self) -> DateTime<Utc> {
        self.0.status_changed_at
    }

    /// The most recent error, kept after the sync recovers.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    async fn sync_from(&self) -> NaiveDate {
        self.0.sync_from
    }

    async fn paused(&self) -> bool {
        self.0.paused
    }

    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at
    }

    async fn counts(&self) -> MailboxCounts {
        MailboxCounts { messages: self.0.message_count, malformed: self.0.skipped_count }
    }

    async fn health(&self, ctx: &Context<'_>) -> Result<MailboxHealth> {
        let recorded = ctx.services()?.mailboxes.recorded_count(self.0.mailbox_id).await?;
        Ok(MailboxHealth {
            server_count: self.0.server_count,
            recorded_count: recorded,
            missing: self.0.missing_count,
            last_reconciled_at: self.0.last_reconciled_at,
        })
    }

    /// When the server last renumbered the folder (IMAP UIDVALIDITY changed), so the sync
    /// listed it again from the sync-from date; null if it never did.
    async fn last_checkpoint_reset_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_checkpoint_reset_at
    }

    /// What happened to the mailbox, newest first (at most `first`, 1 to 100): connected,
    /// paused, the folder renumbered, the sync failing and recovering, … The last 200 lines
    /// are kept.
    async fn history(&self, ctx: &Context<'_>, #[graphql(default = 20)] first: i32) -> Result<Vec<MailboxHistoryLine>> {
        if !(1..=100).contains(&first) {
            return Err(Error::invalid("first", "must be 1 to 100"));
        }
        let lines = ctx.services()?.mailboxes.history(self.0.mailbox_id, i64::from(first)).await?;
        Ok(lines.into_iter().map(|l| MailboxHistoryLine { at: l.at, kind: l.kind.0, detail: l.detail }).collect())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn workspace_id(&self) -> ID {
        ID(self.0.workspace_id.0.to_string())
    }
}

#[derive(InputObject)]
pub struct ConnectMailboxInput {
    /// A `MailConnector.kind`.
    pub connector: String,
    pub email_address: String,
    /// The connector's form values, by field key.
    pub settings: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    /// Checked by signing in, then sealed; never returned.
    pub password: String,
    /// Mail received on or after this date is synced.
    pub sync_from: NaiveDate,
    /// Where the mail's activity is recorded; optional when you belong to one workspace.
    pub workspace_id: Option<ID>,
}

/// A started sign-in at a mail provider.
#[derive(SimpleObject)]
pub struct MailboxAuthorization {
    /// Send the browser here. The provider brings it back to the gateway, which connects
    /// the mailbox and then redirects to the configured return URL with the outcome.
    url: String,
    /// The authorisation must be finished before this.
    expires_at: DateTime<Utc>,
}

#[derive(InputObject)]
pub struct SendEmailInput {
    /// The mailbox it is sent from (and whose Sent folder keeps a copy).
    pub mailbox_id: ID,
    /// Addresses, bare (`ann@example.com`) or named (`Ann Example <ann@example.com>`).
    pub to: Vec<String>,
    #[graphql(default)]
    pub cc: Vec<String>,
    #[graphql(default)]
    pub bcc: Vec<String>,
    pub subject: String,
    /// The body as HTML; it is sanitised, your signature is appended, and a plain-text
    /// version is made from it.
    pub html: String,
    /// The activity event (a received or sent message) this answers: the message gets
    /// In-Reply-To and References, and joins that conversation's thread.
    pub reply_to: Option<ID>,
    /// Files to attach (GraphQL multipart request).
    #[graphql(default)]
    pub attachments: Vec<Upload>,
}

/// What `sendEmail` did. When it returns, the message went out.
#[derive(SimpleObject)]
pub struct SendEmailPayload {
    /// The Message-ID it was sent with (without angle brackets).
    message_id: String,
    /// The `message.send` events recorded, one per recipient's contact.
    events: Vec<ActivityEventNode>,
    /// A copy is in the mailbox's Sent folder.
    saved_to_sent: bool,
    /// What went wrong after the message went out (no Sent copy, not yet recorded).
    warnings: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateMailboxInput {
    /// The mailbox (required; the flat `id` argument is deprecated).
    pub id: Option<ID>,
    pub sync_from: Option<NaiveDate>,
    pub paused: Option<bool>,
}

#[derive(Default)]
pub struct MailboxQuery;

#[Object]
impl MailboxQuery {
    /// The kinds of mailbox that can be connected, with their connect forms.
    async fn mail_connectors(&self, ctx: &Context<'_>) -> Result<Vec<MailConnectorNode>> {
        ctx.viewer().await?;
        Ok(ctx.services()?.mailboxes.sync().registry().all().iter().cloned().map(MailConnectorNode).collect())
    }

    /// What an address is enough to know to connect it. A provider preset serving its
    /// domain comes first; else the domain's autoconfig document, else its SRV records,
    /// which fill in the generic IMAP/SMTP form (`settings`). Null when none says, or not
    /// within a few seconds: the user fills in the generic form then. At most 30 lookups
    /// per account in 10 minutes (RATE_LIMITED).
    async fn discover_mail_settings(&self, ctx: &Context<'_>, email: String) -> Result<Option<MailDiscovery>> {
        let viewer = ctx.viewer().await?;
        let email = email.trim();
        let domain = match email.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() && email_address::EmailAddress::is_valid(email) => domain.to_ascii_lowercase(),
            _ => return Err(Error::invalid("email", "must be an email address")),
        };
        let services = ctx.services()?;
        let registry = services.mailboxes.sync().registry();
        if let Some(connector) = registry.for_domain(&domain) {
            let connector = MailConnectorNode(connector.clone());
            return Ok(Some(MailDiscovery { domain, source: DiscoverySource::Preset, connector, settings: Json(Default::default()) }));
        }
        let Some(found) = services.discovery.discover_for(viewer.account_id(), email, &domain).await? else { return Ok(None) };
        let Some(generic) = registry.get(concierge_connector_imap_smtp::GENERIC_KIND).cloned() else { return Ok(None) };
        let source = match found.source {
            Source::Autoconfig => DiscoverySource::Autoconfig,
            Source::Srv => DiscoverySource::Srv,
        };
        Ok(Some(MailDiscovery { domain, source, connector: MailConnectorNode(generic), settings: Json(found.settings()) }))
    }

    /// One of your mailboxes.
    async fn mailbox(&self, ctx: &Context<'_>, id: ID) -> Result<MailboxNode> {
        let viewer = ctx.viewer_for(Scope::MailboxesRead).await?;
        let id = MailboxId::parse("id", &id)?;
        Ok(MailboxNode(ctx.services()?.mailboxes.mailbox(&viewer, id).await?))
    }
}

#[derive(Default)]
pub struct MailboxMutation;

#[Object]
impl MailboxMutation {
    /// Connects a mailbox: signs in with the settings (a failure is a typed error and saves
    /// nothing), seals the credentials and starts syncing from `syncFrom`.
    async fn connect_mailbox(&self, ctx: &Context<'_>, input: ConnectMailboxInput) -> Result<MailboxNode> {
        let viewer = ctx.viewer_for(Scope::MailboxesWrite).await?;
        let workspace_id = input.workspace_id.as_deref().map(|w| WorkspaceId::parse("workspaceId", w)).transpose()?;
        let input = ConnectInput {
            connector: input.connector,
            email_address: input.email_address,
            settings: input.settings.map(|s| s.0).unwrap_or_default(),
            password: input.password,
            sync_from: input.sync_from,
            workspace_id,
        };
        Ok(MailboxNode(ctx.services()?.mailboxes.connect(&viewer, input).await?))
    }

    /// Starts connecting a mailbox by signing in at its provider (Gmail, Outlook), or
    /// re-authorising one that needs it. Returns the provider's URL for the browser.
    #[allow(clippy::too_many_arguments)]
    async fn start_mailbox_authorization(
        &self,
        ctx: &Context<'_>,
        input: Option<StartMailboxAuthorizationInput>,
        #[graphql(deprecation = "pass it in `input`")] connector: Option<String>,
        #[graphql(deprecation = "pass it in `input`")] sync_from: Option<NaiveDate>,
        #[graphql(deprecation = "pass it in `input`")] workspace_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] mailbox_id: Option<ID>,
        #[graphql(deprecation = "pass it in `input`")] login_hint: Option<String>,
    ) -> Result<MailboxAuthorization> {
        let input = input_or_flat!(input, [connector], [sync_from, workspace_id, mailbox_id, login_hint] =>
            StartMailboxAuthorizationInput { connector, sync_from, workspace_id, mailbox_id, login_hint });
        let viewer = ctx.viewer_for(Scope::MailboxesWrite).await?;
        let input = StartInput {
            connector: input.connector,
            sync_from: input.sync_from,
            workspace_id: input.workspace_id.as_deref().map(|w| WorkspaceId::parse("workspaceId", w)).transpose()?,
            mailbox_id: input.mailbox_id.as_deref().map(|m| MailboxId::parse("mailboxId", m)).transpose()?,
            login_hint: input.login_hint,
        };
        let started = ctx.services()?.mailboxes.start_authorization(&viewer, input).await?;
        Ok(MailboxAuthorization { url: started.url, expires_at: started.expires_at })
    }

    /// Sends a message through one of your mailboxes: your signature appended, a copy in
    /// the mailbox's Sent folder, and a `message.send` event on each recipient's contact.
    /// An error means nothing was sent.
    async fn send_email(&self, ctx: &Context<'_>, input: SendEmailInput) -> Result<SendEmailPayload> {
        let viewer = ctx.viewer_for(Scope::MailSend).await?;
        let services = ctx.services()?;
        let max_bytes = services.mailboxes.max_send_bytes();
        let mailbox_id = MailboxId::parse("mailboxId", &input.mailbox_id)?;
        let reply_to = match input.reply_to.as_deref() {
            Some(id) => {
                let id = EventId::parse("replyTo", id)?;
                let event = services.activity.event(&viewer, id).await.map_err(|_| Error::invalid("replyTo", "no such activity event"))?;
                Some(
                    reply_context(&event)
                        .ok_or_else(|| Error::invalid("replyTo", "this activity event is not a message with a Message-ID"))?,
                )
            }
            None => None,
        };
        let mut attachments = Vec::with_capacity(input.attachments.len());
        for (i, upload) in input.attachments.into_iter().enumerate() {
            let value =
                upload.value(ctx).map_err(|_| Error::invalid(format!("attachments[{i}]"), "no file was uploaded under this name"))?;
            let filename = value.filename.clone();
            let content_type = value.content_type.clone();
            let bytes = crate::transport::upload::read_limited(value, max_bytes)
                .await
                .map_err(|e| Error::Internal(anyhow::anyhow!("reading an upload: {e}")))?;
            attachments.push(OutgoingAttachment { filename, content_type, bytes });
        }
        let signature = services.profile.signature(&viewer.account).await?;
        let input = SendInput {
            mailbox_id,
            to: input.to,
            cc: input.cc,
            bcc: input.bcc,
            subject: input.subject,
            html: input.html,
            reply_to,
            attachments,
        };
        let sent = services.mailboxes.send_email(&viewer, input, &signature).await?;
        let events = services.activity.events(&sent.events).await?.into_iter().map(ActivityEventNode::new).collect();
        Ok(SendEmailPayload { message_id: sent.message_id, events, saved_to_sent: sent.saved_to_sent, warnings: sent.warnings })
    }

    /// Changes the sync-from date, or pauses and resumes the sync.
    async fn update_mailbox(
        &self,
        ctx: &Context<'_>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
        input: UpdateMailboxInput,
    ) -> Result<MailboxNode> {
        let id = MailboxId::parse("id", &crate::input::id_in_or_beside(id, input.id.clone())?)?;
        let viewer = ctx.viewer_for(Scope::MailboxesWrite).await?;
        Ok(MailboxNode(ctx.services()?.mailboxes.update(&viewer, id, input.sync_from, input.paused).await?))
    }

    /// Lists the server's mail since the sync-from date again and records what is missing.
    async fn resync_mailbox(
        &self,
        ctx: &Context<'_>,
        input: Option<MailboxInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<MailboxNode> {
        let input = input_or_flat!(input, [id] => MailboxInput { id });
        let viewer = ctx.viewer_for(Scope::MailboxesWrite).await?;
        let id = MailboxId::parse("id", &input.id)?;
        Ok(MailboxNode(ctx.services()?.mailboxes.resync(&viewer, id).await?))
    }

    /// Stops the sync and deletes the mailbox and its credentials. Its events stay.
    #[graphql(deprecation = "use removeMailbox")]
    async fn disconnect_mailbox(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        Ok(self.remove_mailbox(ctx, MailboxInput { id }).await?.mailbox_id)
    }

    /// Stops the sync and deletes the mailbox and its credentials. Its events stay; the
    /// payload's `user` lists the mailboxes left.
    async fn remove_mailbox(&self, ctx: &Context<'_>, input: MailboxInput) -> Result<RemoveMailboxPayload> {
        let viewer = ctx.viewer_for(Scope::MailboxesWrite).await?;
        let mailbox_id = MailboxId::parse("id", &input.id)?;
        ctx.services()?.mailboxes.disconnect(&viewer, mailbox_id).await?;
        Ok(RemoveMailboxPayload { mailbox_id: input.id, user: User(viewer.account) })
    }
}

#[derive(InputObject)]
pub struct StartMailboxAuthorizationInput {
    /// A `MailConnector.kind` whose `auth` is OAUTH2.
    pub connector: String,
    /// Mail received on or after this date is synced. Required for a new mailbox; when
    /// re-authorising, the mailbox's own date is kept unless this is given.
    pub sync_from: Option<NaiveDate>,
    /// Where the mail's activity is recorded; optional when you belong to one workspace.
    pub workspace_id: Option<ID>,
    /// Re-authorise this mailbox (after NEEDS_REAUTH): it keeps its checkpoint and history.
    pub mailbox_id: Option<ID>,
    /// The address to suggest at the provider's sign-in.
    pub login_hint: Option<String>,
}

#[derive(InputObject)]
pub struct MailboxInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveMailboxPayload {
    /// The mailbox removed.
    pub mailbox_id: ID,
    /// You, with the mailboxes left.
    pub user: User,
}

/// Progress of a sync that is recording a batch of messages (the initial sync, a backfill).
#[derive(SimpleObject)]
pub struct MailboxSyncProgress {
    mailbox_id: ID,
    /// Messages handled so far.
    done: u64,
    /// Messages this run found to record.
    total: u64,
}

#[derive(Default)]
pub struct MailboxSubscription;

#[Subscription]
impl MailboxSubscription {
    /// The mailbox each time its status, counts or health change.
    async fn mailbox_status(
        &self,
        ctx: &Context<'_>,
        mailbox_id: ID,
    ) -> Result<impl Stream<Item = async_graphql::Result<MailboxNode>> + use<>> {
        let viewer = ctx.viewer_for(Scope::MailboxesRead).await?;
        let id = MailboxId::parse("mailboxId", &mailbox_id)?;
        let services = ctx.shared_services()?;
        services.mailboxes.mailbox(&viewer, id).await?;
        live::feed(
            ctx,
            Topic::Mailbox(id),
            (),
            |c| !matches!(c, Change::SyncProgress { .. }),
            move |_, change| {
                let services = services.clone();
                let viewer = viewer.clone();
                async move {
                    if let Err(missed) = change {
                        return Some(Err(live::lagged(missed, "updates", "reload the mailbox")));
                    }
                    Some(services.mailboxes.mailbox(&viewer, id).await.map(MailboxNode).map_err(async_graphql::Error::from))
                }
            },
        )
    }

    /// Messages done and total while the mailbox records a batch (a progress bar).
    async fn mailbox_sync_progress(
        &self,
        ctx: &Context<'_>,
        mailbox_id: ID,
    ) -> Result<impl Stream<Item = async_graphql::Result<MailboxSyncProgress>> + use<>> {
        let viewer = ctx.viewer_for(Scope::MailboxesRead).await?;
        let id = MailboxId::parse("mailboxId", &mailbox_id)?;
        let services = ctx.services()?;
        services.mailboxes.mailbox(&viewer, id).await?;
        live::feed(
            ctx,
            Topic::Mailbox(id),
            (),
            |c| matches!(c, Change::SyncProgress { .. }),
            move |_, change| {
                let item = match change {
                    Ok(Change::SyncProgress { done, total, .. }) => {
                        Some(Ok(MailboxSyncProgress { mailbox_id: mailbox_id.clone(), done, total }))
                    }
                    Ok(_) => None,
                    Err(missed) => Some(Err(live::lagged(missed, "updates", "the next one shows the progress"))),
                };
                future::ready(item)
            },
        )
    }
}

/// What a reply needs from the message it answers: its Message-ID and References.
fn reply_context(event: &ActivityEvent) -> Option<ReplyContext> {
    let data: serde_json::Value = serde_json::from_str(&event.data).ok()?;
    let message_id = data.get("message_id")?.as_str()?.to_owned();
    let references = data
        .get("references")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    Some(ReplyContext { message_id, references })
}
