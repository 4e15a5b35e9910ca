//! Calendars over GraphQL: `calendarConnectors`, `me.calendarAccounts`, `me.calendars`,
//! `me.calendarEvents`, and the mutations that connect accounts and choose the primary and
//! conflict calendars.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use concierge_connector_sdk::SharedCalendarConnector;

use super::model::{Calendar, CalendarAccount, CalendarAccountStatus, CalendarStatus};
use super::service::{AgendaEntry, ConnectCalendarInput};
use crate::accounts::forms::{ConnectorField, MailAuthMethod, form_fields};
use crate::error::{Error, Result};
use crate::graphql::context::ContextExt;
use crate::identity::graphql::User;
use crate::input::input_or_flat;
use crate::tokens::model::Scope;

/// The longest window `me.calendarEvents` reads.
pub const MAX_AGENDA_DAYS: i64 = 62;

/// A kind of calendar account the gateway can connect.
pub struct CalendarConnectorNode(pub SharedCalendarConnector);

#[Object(name = "CalendarConnector")]
impl CalendarConnectorNode {
    /// The stable id `connectCalendarAccount` takes.
    async fn kind(&self) -> &str {
        self.0.descriptor().kind
    }

    async fn display_name(&self) -> &str {
        &self.0.descriptor().display_name
    }

    /// What the user needs to know before connecting (iCloud's app-specific password).
    async fn help(&self) -> Option<&str> {
        self.0.descriptor().help.as_deref()
    }

    /// The address domains a preset's provider serves (`icloud.com`, `fastmail.com`, …),
    /// so a frontend can offer it for an address; empty for the generic form.
    async fn domains(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(ctx.services()?.calendars.sync().registry().calendar_domains_of(self.0.descriptor().kind).to_vec())
    }

    /// PASSWORD: connect with `connectCalendarAccount`. OAUTH2: connecting the provider's
    /// mailbox (`startMailboxAuthorization`) connects its calendars too.
    async fn auth(&self) -> MailAuthMethod {
        self.0.descriptor().auth.into()
    }

    async fn fields(&self) -> Vec<ConnectorField> {
        form_fields(self.0.descriptor())
    }
}

/// A connected calendar account. Its password is never shown.
pub struct CalendarAccountNode(pub CalendarAccount);

#[Object(name = "CalendarAccount")]
impl CalendarAccountNode {
    async fn id(&self) -> ID {
        ID(self.0.calendar_account_id.0.to_string())
    }

    async fn connector(&self) -> &str {
        &self.0.connector
    }

    /// The login (or, for an account that shares a mailbox's sign-in, its address).
    async fn username(&self) -> &str {
        &self.0.username
    }

    /// The mailbox whose sign-in this account shares (Google, Microsoft).
    async fn mailbox_id(&self) -> Option<ID> {
        self.0.mailbox_id.map(|m| ID(m.0.to_string()))
    }

    async fn status(&self) -> CalendarAccountStatus {
        self.0.status()
    }

    async fn status_reason(&self) -> Option<&str> {
        self.0.status_reason.as_deref()
    }

    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn calendars(&self, ctx: &Context<'_>) -> Result<Vec<CalendarNode>> {
        let found = ctx.services()?.calendars.calendars_in(self.0.calendar_account_id).await?;
        Ok(found.into_iter().map(CalendarNode).collect())
    }
}

/// One calendar of a connected account.
pub struct CalendarNode(pub Calendar);

#[Object(name = "Calendar")]
impl CalendarNode {
    async fn id(&self) -> ID {
        ID(self.0.calendar_id.0.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// `#RRGGBB`, when the server has one.
    async fn colour(&self) -> Option<&str> {
        self.0.colour.as_deref()
    }

    /// The calendar's IANA time zone, when the server says.
    async fn time_zone(&self) -> Option<&str> {
        self.0.time_zone.as_deref()
    }

    /// Events can be written to it: it may be chosen as the primary calendar.
    async fn writable(&self) -> bool {
        self.0.writable
    }

    /// Appointments are written here.
    async fn primary(&self) -> bool {
        self.0.is_primary
    }

    /// Its busy events count against your free time.
    async fn check_conflicts(&self) -> bool {
        self.0.check_conflicts
    }

    /// Whether its events are synced (primary or checked for conflicts).
    async fn synced(&self) -> bool {
        self.0.synced()
    }

    async fn status(&self) -> CalendarStatus {
        self.0.status()
    }

    async fn status_reason(&self) -> Option<&str> {
        self.0.status_reason.as_deref()
    }

    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at
    }

    async fn account(&self, ctx: &Context<'_>) -> Result<Option<CalendarAccountNode>> {
        Ok(ctx.services()?.calendars.account(self.0.calendar_account_id).await?.map(CalendarAccountNode))
    }
}

/// One occurrence of an event of a synced calendar.
#[derive(SimpleObject)]
pub struct CalendarEventOccurrence {
    calendar_id: ID,
    uid: String,
    summary: Option<String>,
    location: Option<String>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    all_day: bool,
    /// Counts against free time (not marked free, not cancelled).
    busy: bool,
}

impl From<AgendaEntry> for CalendarEventOccurrence {
    fn from(e: AgendaEntry) -> Self {
        CalendarEventOccurrence {
            calendar_id: ID(e.calendar_id.0.to_string()),
            uid: e.uid,
            summary: e.occurrence.summary,
            location: e.location,
            start: e.occurrence.start,
            end: e.occurrence.end,
            all_day: e.occurrence.all_day,
            busy: e.occurrence.busy,
        }
    }
}

/// `me.calendarAccounts`.
pub async fn calendar_accounts(ctx: &Context<'_>, viewer: &crate::identity::service::Viewer) -> Result<Vec<CalendarAccountNode>> {
    viewer.require(Scope::CalendarsRead)?;
    Ok(ctx.services()?.calendars.accounts(viewer).await?.into_iter().map(CalendarAccountNode).collect())
}

/// `me.calendars`.
pub async fn calendars(ctx: &Context<'_>, viewer: &crate::identity::service::Viewer) -> Result<Vec<CalendarNode>> {
    viewer.require(Scope::CalendarsRead)?;
    Ok(ctx.services()?.calendars.calendars(viewer.account_id()).await?.into_iter().map(CalendarNode).collect())
}

/// `me.calendarEvents(from, to)`: in the user's time zone for all-day events.
pub async fn calendar_events(
    ctx: &Context<'_>,
    viewer: &crate::identity::service::Viewer,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<CalendarEventOccurrence>> {
    viewer.require(Scope::CalendarsRead)?;
    if to <= from {
        return Err(Error::invalid("to", "must be after from"));
    }
    if to - from > chrono::Duration::days(MAX_AGENDA_DAYS) {
        return Err(Error::invalid("to", format!("at most {MAX_AGENDA_DAYS} days after from")));
    }
    let services = ctx.services()?;
    let zone = services.availability.availability(viewer.account_id()).await?.time_zone;
    Ok(services.calendars.agenda(viewer.account_id(), from, to, zone).await?.into_iter().map(Into::into).collect())
}

#[derive(InputObject)]
pub struct ConnectCalendarAccountInput {
    /// A password connector's kind (`caldav`, `icloud`); see `calendarConnectors`.
    connector: String,
    username: String,
    /// Checked by signing in, then stored encrypted; never shown again.
    password: String,
    /// The connector's form values (`{"url": "https://dav.example.com/"}`).
    #[graphql(default_with = "Json(serde_json::Map::new())")]
    settings: Json<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Default)]
pub struct CalendarQuery;

#[Object]
impl CalendarQuery {
    /// The calendar connectors this gateway offers.
    async fn calendar_connectors(&self, ctx: &Context<'_>) -> Result<Vec<CalendarConnectorNode>> {
        ctx.viewer().await?;
        Ok(ctx.services()?.calendars.sync().registry().calendars().iter().cloned().map(CalendarConnectorNode).collect())
    }
}

#[derive(Default)]
pub struct CalendarMutation;

#[Object]
impl CalendarMutation {
    /// Connects a calendar account (CalDAV, iCloud) after signing in to it and reading its
    /// calendars; nothing is saved when that fails. Connecting the same login again updates
    /// its password. A user without a primary calendar gets the first writable one.
    async fn connect_calendar_account(&self, ctx: &Context<'_>, input: ConnectCalendarAccountInput) -> Result<CalendarAccountNode> {
        let viewer = ctx.viewer_for(Scope::CalendarsWrite).await?;
        let input = ConnectCalendarInput {
            connector: input.connector,
            username: input.username,
            password: input.password,
            settings: input.settings.0,
        };
        Ok(CalendarAccountNode(ctx.services()?.calendars.connect(&viewer, input).await?))
    }

    /// Appointments are written to this calendar from now on. It must be yours and writable.
    async fn set_primary_calendar(
        &self,
        ctx: &Context<'_>,
        input: Option<CalendarInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<CalendarNode> {
        let input = input_or_flat!(input, [id] => CalendarInput { id });
        let viewer = ctx.viewer_for(Scope::CalendarsWrite).await?;
        Ok(CalendarNode(ctx.services()?.calendars.set_primary(&viewer, &input.id).await?))
    }

    /// Exactly these calendars (yours) are checked for conflicts; an empty list checks only
    /// the primary calendar. Returns all your calendars.
    async fn set_conflict_calendars(
        &self,
        ctx: &Context<'_>,
        input: Option<SetConflictCalendarsInput>,
        #[graphql(deprecation = "pass it in `input`")] ids: Option<Vec<ID>>,
    ) -> Result<Vec<CalendarNode>> {
        let input = input_or_flat!(input, [ids] => SetConflictCalendarsInput { ids });
        let viewer = ctx.viewer_for(Scope::CalendarsWrite).await?;
        let ids: Vec<String> = input.ids.into_iter().map(|i| i.0).collect();
        Ok(ctx.services()?.calendars.set_conflicts(&viewer, &ids).await?.into_iter().map(CalendarNode).collect())
    }

    /// Syncs one of your calendar accounts now, and returns it as it then stands.
    async fn sync_calendar_account(
        &self,
        ctx: &Context<'_>,
        input: Option<CalendarAccountInput>,
        #[graphql(deprecation = "pass it in `input`")] id: Option<ID>,
    ) -> Result<CalendarAccountNode> {
        let input = input_or_flat!(input, [id] => CalendarAccountInput { id });
        let viewer = ctx.viewer_for(Scope::CalendarsWrite).await?;
        Ok(CalendarAccountNode(ctx.services()?.calendars.sync_now(&viewer, &input.id).await?))
    }

    /// Disconnects a calendar account: its calendars and their synced events are removed,
    /// its login deleted. Events already written to the server stay there. An account that
    /// shares a mailbox's sign-in (Google, Microsoft) goes with that mailbox instead.
    #[graphql(deprecation = "use removeCalendarAccount")]
    async fn disconnect_calendar_account(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        self.remove_calendar_account(ctx, CalendarAccountInput { id }).await.map(|_| true)
    }

    /// Disconnects a calendar account: its calendars and their synced events are removed,
    /// its login deleted. Events already written to the server stay there. An account that
    /// shares a mailbox's sign-in (Google, Microsoft) goes with that mailbox instead. The
    /// payload's `user` lists the calendar accounts left.
    async fn remove_calendar_account(&self, ctx: &Context<'_>, input: CalendarAccountInput) -> Result<RemoveCalendarAccountPayload> {
        let viewer = ctx.viewer_for(Scope::CalendarsWrite).await?;
        ctx.services()?.calendars.disconnect(&viewer, &input.id).await?;
        Ok(RemoveCalendarAccountPayload { calendar_account_id: input.id, user: User(viewer.account) })
    }
}

#[derive(InputObject)]
pub struct CalendarInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct SetConflictCalendarsInput {
    /// Your calendars to check; empty checks only the primary one.
    pub ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct CalendarAccountInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RemoveCalendarAccountPayload {
    /// The calendar account removed.
    pub calendar_account_id: ID,
    /// You, with the calendar accounts left.
    pub user: User,
}
