//! Availability rules: reading and changing a user's settings (validated whole, saved in one
//! statement), their effective presence, free intervals, and the presence of a process's
//! WebSocket connections.
//!
//! Presence across processes: each process counts its open, authenticated WebSocket
//! connections per account in `presence_connection` (keyed by a process id drawn at start).
//! An AUTOMATIC user is ONLINE while any process counts a connection, or its last one closed
//! less than the grace period ago. A change is published to each of the user's workspaces
//! through the fan-out (which crosses processes on PostgreSQL); subscribers reload the status
//! from the store, so only ids travel. The process whose last connection closed publishes
//! once more when the grace period ends. Each process also records a heartbeat every
//! [`HEARTBEAT`]; the counts of a process silent for three heartbeats (killed, not shut down)
//! are swept away by the others, and its users' workspaces told.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::task::JoinHandle;
use tracing::{debug, instrument};
use uuid::Uuid;

use super::model::{
    Availability, AvailabilityStatus, DateOverride, DaySchedule, MAX_FREE_BUSY_DAYS, OutOfOffice, PresenceStatus, Span,
    check_out_of_office, check_overrides, check_weekly, free_spans, merge,
};
use super::store::{self, AvailabilityRow, Part};
use crate::clock::SharedClock;
use crate::db::Db;
use crate::db::StoredEnum as _;
use crate::error::{Checks, Error, Result};
use crate::fanout::{Change, Fanout};
use crate::identity::model::AccountId;
use crate::identity::service::Viewer;
use crate::workspace::store as workspace_store;

/// How often a process says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// What `updateAvailability` changes; `None` leaves a part as it is.
#[derive(Default)]
pub struct AvailabilityChange {
    /// A zone for the schedule alone.
    pub time_zone: Option<chrono_tz::Tz>,
    /// Back to the profile's zone.
    pub follow_profile_time_zone: bool,
    pub weekly: Option<Vec<DaySchedule>>,
    pub overrides: Option<Vec<DateOverride>>,
    /// `Some(None)` ends the out-of-office period.
    pub out_of_office: Option<Option<OutOfOffice>>,
    pub hold_while_busy: Option<bool>,
}

/// A member as their colleagues see them.
#[derive(Clone, Copy, Debug)]
pub struct ColleagueView {
    pub status: PresenceStatus,
    pub time_zone: Tz,
    /// While it has not ended.
    pub out_of_office: Option<Period>,
}

/// `(from, to)`.
pub type Period = (DateTime<Utc>, DateTime<Utc>);

#[derive(Clone)]
pub struct AvailabilityService {
    db: Db,
    fanout: Fanout,
    clock: SharedClock,
    process_id: Uuid,
    grace: Duration,
}

impl AvailabilityService {
    pub fn new(db: Db, fanout: Fanout, clock: SharedClock, grace: Duration) -> Self {
        AvailabilityService { db, fanout, clock, process_id: Uuid::now_v7(), grace }
    }

    pub async fn availability(&self, account_id: AccountId) -> Result<Availability> {
        load(&self.db, account_id).await
    }

    /// The status others see.
    pub async fn effective(&self, account_id: AccountId) -> Result<PresenceStatus> {
        Ok(self.effective_many(&[account_id]).await?.remove(&account_id).unwrap_or(PresenceStatus::Offline))
    }

    /// The status others see, for each account (two statements however many).
    pub async fn effective_many(&self, ids: &[AccountId]) -> Result<HashMap<AccountId, PresenceStatus>> {
        let chosen: HashMap<AccountId, AvailabilityStatus> = store::statuses(&self.db, ids)
            .await?
            .into_iter()
            .map(|(id, s)| (id, AvailabilityStatus::from_stored(&s).unwrap_or_default()))
            .collect();
        let automatic: Vec<AccountId> =
            ids.iter().copied().filter(|id| chosen.get(id).copied().unwrap_or_default() == AvailabilityStatus::Automatic).collect();
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.grace).unwrap_or_default();
        let connected: HashSet<AccountId> = store::connections(&self.db, &automatic)
            .await?
            .into_iter()
            .filter(|(_, open, closed)| *open > 0 || closed.is_some_and(|at| at + grace > now))
            .map(|(id, _, _)| id)
            .collect();
        Ok(ids.iter().map(|id| (*id, chosen.get(id).copied().unwrap_or_default().effective(connected.contains(id)))).collect())
    }

    /// What a member's colleagues see, for each account: the status, the time zone, and an
    /// out-of-office period that has not ended (never the schedule itself or the message).
    pub async fn shown_to_colleagues(&self, ids: &[AccountId]) -> Result<HashMap<AccountId, ColleagueView>> {
        let statuses = self.effective_many(ids).await?;
        let now = self.clock.now();
        let shared: HashMap<AccountId, (Tz, Option<Period>)> = store::shared(&self.db, ids)
            .await?
            .into_iter()
            .map(|(id, zone, from, to)| {
                let ooo = from.zip(to).filter(|(_, to)| *to > now);
                (id, (zone.parse().unwrap_or(Tz::UTC), ooo))
            })
            .collect();
        Ok(ids
            .iter()
            .map(|id| {
                let (time_zone, out_of_office) = shared.get(id).copied().unwrap_or((Tz::UTC, None));
                let status = statuses.get(id).copied().unwrap_or(PresenceStatus::Offline);
                (*id, ColleagueView { status, time_zone, out_of_office })
            })
            .collect())
    }

    #[instrument(skip_all)]
    pub async fn set_status(&self, viewer: &Viewer, status: AvailabilityStatus) -> Result<Availability> {
        let account_id = viewer.account_id();
        let mut a = self.availability(account_id).await?;
        a.status = status;
        store::upsert(&self.db, account_id, &to_row(&a)?, &[Part::Status], self.clock.now()).await?;
        self.announce(account_id).await;
        Ok(a)
    }

    /// Applies `change` after checking all of it; any error saves nothing.
    #[instrument(skip_all)]
    pub async fn update(&self, viewer: &Viewer, change: AvailabilityChange) -> Result<Availability> {
        let account_id = viewer.account_id();
        let mut a = self.availability(account_id).await?;
        let mut parts = Vec::new();
        if let Some(tz) = change.time_zone {
            a.time_zone = tz;
            a.time_zone_follows_profile = false;
            parts.push(Part::TimeZone);
        } else if change.follow_profile_time_zone {
            a.time_zone_follows_profile = true;
            if let Some(zone) = crate::identity::store::time_zone(&self.db, account_id).await? {
                a.time_zone = zone;
            }
            parts.push(Part::TimeZone);
        }
        // Every rule an input breaks is reported at once.
        let mut checks = Checks::default();
        if let Some(weekly) = &change.weekly {
            checks.check(check_weekly(weekly));
        }
        if let Some(overrides) = &change.overrides {
            // "The past" is before today where the user is (in the zone being saved).
            let today = self.clock.now().with_timezone(&a.time_zone).date_naive();
            checks.check(check_overrides(overrides, today));
        }
        if let Some(Some(o)) = &change.out_of_office {
            checks.check(check_out_of_office(o));
        }
        checks.finish()?;
        if let Some(weekly) = change.weekly {
            a.weekly = weekly;
            parts.push(Part::Weekly);
        }
        if let Some(overrides) = change.overrides {
            a.overrides = overrides;
            parts.push(Part::Overrides);
        }
        if let Some(ooo) = change.out_of_office {
            a.out_of_office = ooo;
            parts.push(Part::OutOfOffice);
        }
        if let Some(hold) = change.hold_while_busy {
            a.hold_while_busy = hold;
            parts.push(Part::HoldWhileBusy);
        }
        // Only the parts changed are written: a status set meanwhile is kept.
        store::upsert(&self.db, account_id, &to_row(&a)?, &parts, self.clock.now()).await?;
        // A settings page open elsewhere hears of it through `meUpdated`.
        self.fanout.publish(Change::Account { account_id }).await;
        Ok(a)
    }

    /// The viewer's free intervals in `[from, to)`: working hours minus the busy events of
    /// their primary and conflict calendars, minus out of office.
    pub async fn free_busy(
        &self,
        viewer: &Viewer,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        calendars: &crate::calendars::service::CalendarService,
    ) -> Result<(Vec<Span>, Vec<Span>)> {
        if to <= from {
            return Err(Error::invalid("to", "must be after from"));
        }
        if to - from > chrono::Duration::days(MAX_FREE_BUSY_DAYS) {
            return Err(Error::invalid("to", format!("at most {MAX_FREE_BUSY_DAYS} days after from")));
        }
        let a = self.availability(viewer.account_id()).await?;
        let mut busy = a.busy_spans();
        busy.extend(calendars.busy(viewer.account_id(), from, to, a.time_zone).await?);
        let free = free_spans(&a, from, to, &busy);
        let busy =
            merge(busy).into_iter().map(|s| Span { start: s.start.max(from), end: s.end.min(to) }).filter(|s| s.start < s.end).collect();
        Ok((free, busy))
    }

    /// Counts an authenticated WebSocket connection of the account until the returned guard
    /// is released. The write and the announcement run in the background: the connection
    /// goes on relaying (and registering its subscriptions) meanwhile.
    pub fn connected(&self, account_id: AccountId) -> PresenceGuard {
        let service = self.clone();
        let opened = tokio::spawn(async move {
            // Alive first, so no other process's sweep takes this count for a dead one.
            let opened = async {
                store::heartbeat(&service.db, service.process_id, Utc::now()).await?;
                store::connection_opened(&service.db, service.process_id, account_id).await
            };
            match opened.await {
                Ok(()) => {
                    service.announce(account_id).await;
                    true
                }
                Err(e) => {
                    debug!(error = %e, "could not record a connection");
                    false
                }
            }
        });
        PresenceGuard { service: Some(self.clone()), account_id, opened: Some(opened) }
    }

    /// Uncounts a closed connection, then tells the workspaces once the grace period ends
    /// (in the background: the connection's task need not wait for it).
    async fn disconnected(&self, account_id: AccountId) {
        let closed_at = self.clock.now();
        if let Err(e) = store::connection_closed(&self.db, self.process_id, account_id, closed_at).await {
            debug!(error = %e, "could not record a closed connection");
            return;
        }
        // Still ONLINE for the grace period. Subscribers reload and drop repeats, so announcing
        // when another connection opened meanwhile costs nothing.
        let service = self.clone();
        let grace = chrono::Duration::from_std(self.grace).unwrap_or_default();
        tokio::spawn(async move {
            service.clock.sleep_until(closed_at + grace + chrono::Duration::milliseconds(10)).await;
            service.announce(account_id).await;
        });
    }

    /// Says every [`HEARTBEAT`] that this process is alive, and sweeps away the connection
    /// counts of processes that stopped saying so (killed rather than shut down), telling
    /// their users' workspaces. Runs until `stop`.
    pub async fn run(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            if let Err(e) = store::heartbeat(&self.db, self.process_id, Utc::now()).await {
                debug!(error = %e, "could not record the presence heartbeat");
            }
            self.sweep().await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(HEARTBEAT) => {}
            }
        }
    }

    /// Removes the counts of processes silent for three heartbeats and announces their users.
    pub async fn sweep(&self) {
        let cutoff = Utc::now() - chrono::Duration::from_std(HEARTBEAT * 3).unwrap_or_default();
        match store::sweep(&self.db, cutoff).await {
            Ok(accounts) => {
                for account_id in accounts {
                    self.announce(account_id).await;
                }
            }
            Err(e) => debug!(error = %e, "could not sweep stale presence"),
        }
    }

    /// Tells each of the account's workspaces that its presence may have changed.
    async fn announce(&self, account_id: AccountId) {
        let workspaces = match workspace_store::memberships_of_accounts(&self.db, &[account_id]).await {
            Ok(ms) => ms,
            Err(e) => {
                debug!(error = %e, "could not load memberships for presence");
                return;
            }
        };
        let changes: Vec<Change> = workspaces
            .into_iter()
            .filter(|m| m.is_active())
            .map(|m| Change::Presence { workspace_id: m.workspace_id, account_id })
            .collect();
        self.fanout.publish_all(&changes).await;
    }
}

/// Whether new notifications for the account should skip push and sound: the user chose
/// BUSY and to hold alerts while busy.
/// Which of `accounts` hold their alerts now: BUSY, with alerts held while busy.
pub async fn holding_alerts(db: &Db, accounts: &[AccountId]) -> Result<std::collections::HashSet<AccountId>> {
    Ok(store::holding_alerts(db, AvailabilityStatus::Busy.stored_name(), accounts).await?.into_iter().collect())
}

/// Counts one connection until `release`d; dropping it unreleased uncounts it in the
/// background.
pub struct PresenceGuard {
    service: Option<AvailabilityService>,
    account_id: AccountId,
    /// The write that counted it: uncounting waits for it, so the two never cross.
    opened: Option<JoinHandle<bool>>,
}

impl PresenceGuard {
    /// Uncounts the connection now. The WebSocket task awaits this, so a graceful shutdown
    /// (which waits for those tasks before closing the database) leaves no count behind.
    pub async fn release(mut self) {
        let (Some(service), Some(opened)) = (self.service.take(), self.opened.take()) else { return };
        if opened.await.unwrap_or(false) {
            service.disconnected(self.account_id).await;
        }
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let (Some(service), Some(opened), Ok(runtime)) = (self.service.take(), self.opened.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let account_id = self.account_id;
        runtime.spawn(async move {
            if opened.await.unwrap_or(false) {
                service.disconnected(account_id).await;
            }
        });
    }
}

async fn load(db: &Db, account_id: AccountId) -> Result<Availability> {
    let profile = crate::identity::store::time_zone(db, account_id).await?;
    let Some(row) = store::find(db, account_id).await? else {
        let default = Availability::default();
        return Ok(Availability { time_zone: profile.unwrap_or(default.time_zone), ..default });
    };
    let corrupt = |what: &str, e: &dyn std::fmt::Display| Error::Internal(anyhow::anyhow!("stored availability {what}: {e}"));
    let own: Tz = row.time_zone.parse().map_err(|e| corrupt("time zone", &e))?;
    let follows_profile = !row.time_zone_overridden;
    Ok(Availability {
        status: AvailabilityStatus::from_stored(&row.status).unwrap_or_default(),
        hold_while_busy: row.hold_while_busy,
        time_zone: if follows_profile { profile.unwrap_or(own) } else { own },
        time_zone_follows_profile: follows_profile,
        weekly: serde_json::from_str(&row.weekly_schedule).map_err(|e| corrupt("schedule", &e))?,
        overrides: serde_json::from_str(&row.date_overrides).map_err(|e| corrupt("overrides", &e))?,
        out_of_office: match (row.ooo_from, row.ooo_to) {
            (Some(from), Some(to)) => Some(OutOfOffice { from, to, message: row.ooo_message }),
            _ => None,
        },
    })
}

fn to_row(a: &Availability) -> Result<AvailabilityRow> {
    let json = |v: serde_json::Result<String>| v.map_err(|e| Error::Internal(e.into()));
    Ok(AvailabilityRow {
        status: a.status.stored_name().to_owned(),
        hold_while_busy: a.hold_while_busy,
        time_zone: a.time_zone.name().to_owned(),
        weekly_schedule: json(serde_json::to_string(&a.weekly))?,
        date_overrides: json(serde_json::to_string(&a.overrides))?,
        ooo_from: a.out_of_office.as_ref().map(|o| o.from),
        ooo_to: a.out_of_office.as_ref().map(|o| o.to),
        ooo_message: a.out_of_office.as_ref().and_then(|o| o.message.clone()),
        time_zone_overridden: !a.time_zone_follows_profile,
    })
}
