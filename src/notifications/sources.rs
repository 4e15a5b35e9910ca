//! What notifications read from the domains above them, as traits those domains' wiring
//! implements (`crate::services`): the daily summary's day (tasks and appointments the
//! platform published, events of the user's calendars) and whether the user holds alerts
//! (availability). Notifications import none of those domains.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::identity::model::AccountId;

/// A task due or an appointment on the summary's day, as the platform published it.
pub struct AgendaItem {
    pub kind: AgendaKind,
    pub title: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgendaKind {
    Task,
    Appointment,
}

/// An event of the user's primary or conflict calendars on the summary's day.
pub struct CalendarItem {
    pub title: String,
    pub all_day: bool,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The summary's day, from the domains that keep it.
#[async_trait::async_trait]
pub trait DaySources: Send + Sync {
    /// Tasks due and appointments in `[from, to)` still open, earliest first.
    async fn agenda(&self, account: AccountId, from: DateTime<Utc>, to: DateTime<Utc>) -> anyhow::Result<Vec<AgendaItem>>;
    /// Calendar events in `[from, to)`, recurring ones expanded in `zone`, earliest first,
    /// without the appointments Concierge wrote (they are in `agenda`).
    async fn calendar(&self, account: AccountId, from: DateTime<Utc>, to: DateTime<Utc>, zone: Tz) -> anyhow::Result<Vec<CalendarItem>>;
}

/// Whether new notifications skip push and sound for the user now (BUSY, holding alerts).
#[async_trait::async_trait]
pub trait AlertHold: Send + Sync {
    /// Which of `accounts` hold theirs now.
    async fn holding_alerts(&self, accounts: &[AccountId]) -> crate::error::Result<std::collections::HashSet<AccountId>>;
}
