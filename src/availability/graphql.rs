//! Availability over GraphQL: `me.availability`, `me.freeBusy`, a member's status, the
//! mutations that change them, and `presenceChanged(workspaceId)`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject, Subscription};
use chrono::{DateTime, NaiveDate, Utc, Weekday};
use futures_util::Stream;

use super::model::{
    Availability, AvailabilityStatus, DateOverride, DaySchedule, Interval, OutOfOffice, PresenceStatus, Span, parse_minute,
};
use super::service::AvailabilityChange;
use crate::error::{Checks, Error, Result};
use crate::fanout::{Change, Topic};
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::identity::model::AccountId;
use crate::input::input_or_flat;
use crate::notifications::model::parse_time_zone;
use crate::tokens::model::Scope;
use crate::workspace::model::WorkspaceId;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl From<Day> for Weekday {
    fn from(d: Day) -> Weekday {
        match d {
            Day::Monday => Weekday::Mon,
            Day::Tuesday => Weekday::Tue,
            Day::Wednesday => Weekday::Wed,
            Day::Thursday => Weekday::Thu,
            Day::Friday => Weekday::Fri,
            Day::Saturday => Weekday::Sat,
            Day::Sunday => Weekday::Sun,
        }
    }
}

impl From<Weekday> for Day {
    fn from(d: Weekday) -> Day {
        match d {
            Weekday::Mon => Day::Monday,
            Weekday::Tue => Day::Tuesday,
            Weekday::Wed => Day::Wednesday,
            Weekday::Thu => Day::Thursday,
            Weekday::Fri => Day::Friday,
            Weekday::Sat => Day::Saturday,
            Weekday::Sun => Day::Sunday,
        }
    }
}

/// Local working hours within one day, "HH:MM" (an end may be "24:00").
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "IntervalInput", name = "WorkingInterval")]
pub struct IntervalValue {
    pub start: String,
    pub end: String,
}

#[derive(SimpleObject)]
pub struct WeekdayHours {
    day: Day,
    intervals: Vec<IntervalValue>,
}

#[derive(SimpleObject)]
pub struct DateHours {
    date: NaiveDate,
    /// Empty: a day off.
    intervals: Vec<IntervalValue>,
}

#[derive(SimpleObject)]
#[graphql(name = "OutOfOffice")]
pub struct OutOfOfficeNode {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    message: Option<String>,
}

/// The user's availability: the chosen and the shown status, and working hours.
pub struct AvailabilityNode {
    /// Whose: the node's `id`, so client caches keep one copy.
    pub owner: AccountId,
    pub settings: Availability,
    pub effective: PresenceStatus,
}

fn intervals(list: &[Interval]) -> Vec<IntervalValue> {
    list.iter().map(|i| IntervalValue { start: Interval::format(i.start), end: Interval::format(i.end) }).collect()
}

#[Object(name = "Availability")]
impl AvailabilityNode {
    /// The owner's user id.
    async fn id(&self) -> ID {
        ID(self.owner.to_string())
    }

    /// What the user chose (AUTOMATIC follows their connections).
    async fn status(&self) -> AvailabilityStatus {
        self.settings.status
    }

    /// What others see now.
    async fn effective_status(&self) -> PresenceStatus {
        self.effective
    }

    /// While BUSY, new notifications skip push and play no sound.
    async fn hold_while_busy(&self) -> bool {
        self.settings.hold_while_busy
    }

    /// IANA name, e.g. Europe/Berlin: the profile's, unless the schedule has one of its own.
    async fn time_zone(&self) -> &str {
        self.settings.time_zone.name()
    }

    /// Whether `timeZone` is the profile's (false: set for the schedule alone).
    async fn time_zone_follows_profile(&self) -> bool {
        self.settings.time_zone_follows_profile
    }

    async fn weekly_schedule(&self) -> Vec<WeekdayHours> {
        self.settings.weekly.iter().map(|d| WeekdayHours { day: d.day.into(), intervals: intervals(&d.intervals) }).collect()
    }

    async fn date_overrides(&self) -> Vec<DateHours> {
        self.settings.overrides.iter().map(|o| DateHours { date: o.date, intervals: intervals(&o.intervals) }).collect()
    }

    async fn out_of_office(&self) -> Option<OutOfOfficeNode> {
        self.settings.out_of_office.as_ref().map(|o| OutOfOfficeNode { from: o.from, to: o.to, message: o.message.clone() })
    }
}

/// A workspace member's status, as others see it: with their time zone and an out-of-office
/// period that has not ended, never their schedule or their out-of-office message.
#[derive(SimpleObject)]
pub struct MemberAvailability {
    pub status: PresenceStatus,
    /// Their IANA time zone, so a colleague knows what time it is for them.
    pub time_zone: String,
    /// Away from `start` until `end`, if that period has not ended.
    pub out_of_office: Option<TimeSpan>,
}

impl Default for MemberAvailability {
    fn default() -> Self {
        MemberAvailability { status: PresenceStatus::Offline, time_zone: "UTC".into(), out_of_office: None }
    }
}

impl From<crate::availability::service::ColleagueView> for MemberAvailability {
    fn from(v: crate::availability::service::ColleagueView) -> Self {
        MemberAvailability {
            status: v.status,
            time_zone: v.time_zone.name().to_owned(),
            out_of_office: v.out_of_office.map(|(start, end)| TimeSpan { start, end }),
        }
    }
}

/// A UTC span.
#[derive(SimpleObject)]
pub struct TimeSpan {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct FreeBusy {
    /// Free intervals in order, in UTC.
    free: Vec<TimeSpan>,
    /// Busy intervals in order, merged, in UTC: the busy events of your primary and conflict
    /// calendars and your out-of-office period (outside working hours too).
    busy: Vec<TimeSpan>,
}

impl From<(Vec<Span>, Vec<Span>)> for FreeBusy {
    fn from((free, busy): (Vec<Span>, Vec<Span>)) -> Self {
        let spans = |list: Vec<Span>| list.into_iter().map(|s| TimeSpan { start: s.start, end: s.end }).collect();
        FreeBusy { free: spans(free), busy: spans(busy) }
    }
}

#[derive(InputObject)]
pub struct DayScheduleInput {
    day: Day,
    intervals: Vec<IntervalValue>,
}

#[derive(InputObject)]
pub struct DateOverrideInput {
    date: NaiveDate,
    /// Empty: a day off.
    intervals: Vec<IntervalValue>,
}

#[derive(InputObject)]
pub struct OutOfOfficeInput {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    message: Option<String>,
}

/// Parts left out stay as they are; `outOfOffice: null` ends the out-of-office period.
#[derive(InputObject)]
pub struct UpdateAvailabilityInput {
    /// A zone for the schedule alone (the profile's `timeZone` no longer moves it).
    time_zone: Option<String>,
    /// `true`: the schedule follows the profile's time zone again.
    follow_profile_time_zone: Option<bool>,
    weekly_schedule: Option<Vec<DayScheduleInput>>,
    date_overrides: Option<Vec<DateOverrideInput>>,
    out_of_office: MaybeUndefined<OutOfOfficeInput>,
    hold_while_busy: Option<bool>,
}

fn parse_intervals(field: &str, list: &[IntervalValue]) -> Result<Vec<Interval>> {
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            Ok(Interval {
                start: parse_minute(&format!("{field}[{i}].start"), &v.start, false)?,
                end: parse_minute(&format!("{field}[{i}].end"), &v.end, true)?,
            })
        })
        .collect()
}

impl TryFrom<UpdateAvailabilityInput> for AvailabilityChange {
    type Error = Error;

    /// Every malformed field is reported at once.
    fn try_from(input: UpdateAvailabilityInput) -> Result<Self> {
        let mut checks = Checks::default();
        let weekly = input.weekly_schedule.map(|days| {
            days.iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    let intervals = checks.take(parse_intervals(&format!("weeklySchedule[{i}].intervals"), &d.intervals))?;
                    Some(DaySchedule { day: d.day.into(), intervals })
                })
                .collect::<Vec<_>>()
        });
        let overrides = input.date_overrides.map(|list| {
            list.iter()
                .enumerate()
                .filter_map(|(i, o)| {
                    let intervals = checks.take(parse_intervals(&format!("dateOverrides[{i}].intervals"), &o.intervals))?;
                    Some(DateOverride { date: o.date, intervals })
                })
                .collect::<Vec<_>>()
        });
        let time_zone = input.time_zone.and_then(|z| checks.take(parse_time_zone("timeZone", &z)));
        let follow_profile_time_zone = input.follow_profile_time_zone == Some(true);
        if time_zone.is_some() && follow_profile_time_zone {
            checks.check(Err(Error::invalid("followProfileTimeZone", "set a time zone or follow the profile's, not both")));
        }
        checks.finish()?;
        let out_of_office = match input.out_of_office {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(o) => Some(Some(OutOfOffice {
                from: o.from,
                to: o.to,
                message: o.message.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()),
            })),
        };
        Ok(AvailabilityChange {
            time_zone,
            follow_profile_time_zone,
            weekly,
            overrides,
            out_of_office,
            hold_while_busy: input.hold_while_busy,
        })
    }
}

/// `me.availability` (the user themself).
pub async fn availability_of(ctx: &Context<'_>, account_id: crate::identity::model::AccountId) -> Result<AvailabilityNode> {
    let service = &ctx.services()?.availability;
    Ok(AvailabilityNode {
        owner: account_id,
        settings: service.availability(account_id).await?,
        effective: service.effective(account_id).await?,
    })
}

#[derive(Default)]
pub struct AvailabilityMutation;

#[Object]
impl AvailabilityMutation {
    /// Chooses ONLINE, BUSY, OFFLINE or AUTOMATIC (online while connected).
    async fn set_availability_status(
        &self,
        ctx: &Context<'_>,
        input: Option<SetAvailabilityStatusInput>,
        #[graphql(deprecation = "pass it in `input`")] status: Option<AvailabilityStatus>,
    ) -> Result<AvailabilityNode> {
        let input = input_or_flat!(input, [status] => SetAvailabilityStatusInput { status });
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        ctx.services()?.availability.set_status(&viewer, input.status).await?;
        availability_of(ctx, viewer.account_id()).await
    }

    /// Changes the time zone, working hours, date overrides, out of office or
    /// `holdWhileBusy`. Checked whole: any error saves nothing.
    async fn update_availability(&self, ctx: &Context<'_>, input: UpdateAvailabilityInput) -> Result<AvailabilityNode> {
        let viewer = ctx.viewer_for(Scope::ProfileWrite).await?;
        ctx.services()?.availability.update(&viewer, input.try_into()?).await?;
        availability_of(ctx, viewer.account_id()).await
    }
}

#[derive(InputObject)]
pub struct SetAvailabilityStatusInput {
    pub status: AvailabilityStatus,
}

/// A member's status changed.
#[derive(SimpleObject, Clone)]
pub struct PresenceChange {
    user_id: ID,
    status: PresenceStatus,
}

#[derive(Default)]
pub struct AvailabilitySubscription;

#[Subscription]
impl AvailabilitySubscription {
    /// Status changes of the workspace's members (you must be one). Repeats are dropped.
    async fn presence_changed(
        &self,
        ctx: &Context<'_>,
        workspace_id: ID,
    ) -> Result<impl Stream<Item = async_graphql::Result<PresenceChange>> + use<>> {
        let viewer = ctx.viewer_for(Scope::WorkspacesRead).await?;
        let services = ctx.shared_services()?;
        let workspace_id = WorkspaceId::parse("workspaceId", &workspace_id)?;
        services.workspaces.membership_of(&viewer, workspace_id).await?;
        // The status each member was last shown with, so repeats are dropped.
        let shown: Mutex<HashMap<crate::identity::model::AccountId, PresenceStatus>> = Mutex::default();
        let me = viewer.account_id();
        // A change of the viewer's own membership runs the check above again: deactivated,
        // they are refused and the subscription ends.
        let accepts = move |c: &Change| match c {
            Change::Presence { workspace_id: w, .. } => *w == workspace_id,
            Change::Membership { account_id, .. } => *account_id == me,
            _ => false,
        };
        live::feed(ctx, Topic::Workspace(workspace_id), shown, accepts, move |shown, change| {
            let services = services.clone();
            async move {
                // A lagging listener missed changes it will hear about again next time.
                let Ok(Change::Presence { account_id, .. }) = change else { return None };
                let status = match services.availability.effective(account_id).await {
                    Ok(status) => status,
                    Err(e) => return Some(Err(e.into())),
                };
                let mut shown = shown.lock().unwrap_or_else(|e| e.into_inner());
                (shown.insert(account_id, status) != Some(status))
                    .then(|| Ok(PresenceChange { user_id: ID(account_id.to_string()), status }))
            }
        })
    }
}
