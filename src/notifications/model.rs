//! What users are notified about, on which channels, and their defaults.

use chrono::NaiveTime;
use chrono_tz::Tz;

use crate::error::{Error, Reason, Result};

/// The seeds' categories of notification settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum NotificationCategory {
    Messages,
    Tasks,
    Appointments,
    Opportunities,
    Account,
}

/// A kind of event a user can be notified about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum NotificationEvent {
    /// A new incoming message in a mailbox you own or a conversation assigned to you.
    MessageReceived,
    /// Someone mentioned you.
    Mention,
    /// A conversation was assigned to you.
    ConversationAssigned,
    /// A task of yours is due soon.
    TaskReminder,
    TaskAssigned,
    /// A task you created was completed by someone else.
    TaskCompleted,
    AppointmentBooked,
    AppointmentRescheduled,
    AppointmentCancelled,
    OpportunityMoved,
    OpportunityWon,
    OpportunityLost,
    /// Something changed in your account's security (password, two-factor, email, tokens).
    SecurityEvent,
    /// A connected mailbox needs attention (re-authorisation, repeated failures).
    MailboxError,
    WorkflowCompleted,
    CampaignResult,
    BillingUpdate,
    /// A webhook was disabled after its deliveries kept failing.
    WebhookDisabled,
    /// A connected calendar needs attention: sign in again, an appointment that could not
    /// be written, a synced calendar deleted on the server.
    CalendarError,
    /// Someone invited you to a workspace (the invitation's own email carries the link, so
    /// this one is in-app only by default).
    WorkspaceInvitation,
    /// Your membership of a workspace was deactivated (your account was not).
    MembershipDeactivated,
}

/// Where a notification is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum NotificationChannel {
    InApp,
    Email,
    Push,
}

pub const CHANNELS: [NotificationChannel; 3] = [NotificationChannel::InApp, NotificationChannel::Email, NotificationChannel::Push];

pub const EVENTS: [NotificationEvent; 21] = {
    use NotificationEvent::*;
    [
        MessageReceived,
        Mention,
        ConversationAssigned,
        TaskReminder,
        TaskAssigned,
        TaskCompleted,
        AppointmentBooked,
        AppointmentRescheduled,
        AppointmentCancelled,
        OpportunityMoved,
        OpportunityWon,
        OpportunityLost,
        SecurityEvent,
        MailboxError,
        WorkflowCompleted,
        CampaignResult,
        BillingUpdate,
        WebhookDisabled,
        CalendarError,
        WorkspaceInvitation,
        MembershipDeactivated,
    ]
};

/// The README's list of event kinds by category (between its `notification-events` markers),
/// as the catalogue gives it; a test keeps the README equal to it.
pub fn readme_table() -> String {
    use crate::db::StoredEnum as _;
    let mut out = format!("{} event kinds:\n\n| category | event kinds |\n|---|---|\n", EVENTS.len());
    for category in <NotificationCategory as async_graphql::resolver_utils::EnumType>::items() {
        let kinds: Vec<&str> = EVENTS.iter().filter(|e| e.category() == category.value).map(|e| e.stored_name()).collect();
        out.push_str(&format!("| {} | {} |\n", category.name, kinds.join(", ")));
    }
    out
}

impl NotificationEvent {
    pub fn category(self) -> NotificationCategory {
        use NotificationEvent::*;
        match self {
            MessageReceived | Mention | ConversationAssigned => NotificationCategory::Messages,
            TaskReminder | TaskAssigned | TaskCompleted => NotificationCategory::Tasks,
            AppointmentBooked | AppointmentRescheduled | AppointmentCancelled => NotificationCategory::Appointments,
            OpportunityMoved | OpportunityWon | OpportunityLost => NotificationCategory::Opportunities,
            SecurityEvent
            | MailboxError
            | WorkflowCompleted
            | CampaignResult
            | BillingUpdate
            | WebhookDisabled
            | CalendarError
            | WorkspaceInvitation
            | MembershipDeactivated => NotificationCategory::Account,
        }
    }

    /// The default for a cell nobody changed. In-app is on for everything. Email is off for
    /// high-volume events (every incoming message, opportunity moves), as the seeds advise,
    /// and on for what needs attention. Push is on for what is urgent.
    pub fn default_for(self, channel: NotificationChannel) -> bool {
        use NotificationEvent::*;
        match channel {
            NotificationChannel::InApp => true,
            NotificationChannel::Email => !matches!(self, MessageReceived | OpportunityMoved | WorkflowCompleted | WorkspaceInvitation),
            NotificationChannel::Push => {
                matches!(self, MessageReceived | Mention | ConversationAssigned | TaskReminder | AppointmentBooked | SecurityEvent)
            }
        }
    }

    /// Kinds that come in bursts: their emails wait a little and go out together.
    pub fn high_volume(self) -> bool {
        use NotificationEvent::*;
        matches!(
            self,
            MessageReceived
                | Mention
                | ConversationAssigned
                | TaskAssigned
                | TaskCompleted
                | OpportunityMoved
                | WorkflowCompleted
                | CampaignResult
        )
    }
}

/// Which new-message events make a sound in the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum AudioAlerts {
    None,
    #[default]
    AssignedToMe,
    All,
}

impl AudioAlerts {
    /// Whether a notification plays a sound: the kinds of work a user answers (messages and
    /// conversations, tasks, appointments) sound for ALL, and for ASSIGNED_TO_ME only where
    /// the user is the assignee; account notices never sound.
    pub fn audible(self, event: NotificationEvent, assigned_to_me: bool) -> bool {
        let answered =
            matches!(event.category(), NotificationCategory::Messages | NotificationCategory::Tasks | NotificationCategory::Appointments);
        match self {
            AudioAlerts::None => false,
            AudioAlerts::AssignedToMe => answered && assigned_to_me,
            AudioAlerts::All => answered,
        }
    }
}

/// When the daily summary goes out: a local time of day in an IANA time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummarySchedule {
    pub enabled: bool,
    pub time: NaiveTime,
    /// The zone in effect: the profile's, unless the summary has one of its own.
    pub time_zone: Tz,
    /// Whether `time_zone` is the profile's (false: set for the summary alone).
    pub follows_profile: bool,
}

impl Default for SummarySchedule {
    fn default() -> Self {
        SummarySchedule {
            enabled: false,
            time: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            time_zone: Tz::UTC,
            follows_profile: true,
        }
    }
}

/// `HH:MM` (24-hour), e.g. `07:30`.
pub fn parse_time_of_day(field: &'static str, raw: &str) -> Result<NaiveTime> {
    NaiveTime::parse_from_str(raw.trim(), "%H:%M").map_err(|_| Error::because(field, Reason::NotATimeOfDay))
}

/// An IANA time zone name, e.g. `Europe/Warsaw`.
pub fn parse_time_zone(field: &'static str, raw: &str) -> Result<Tz> {
    raw.trim().parse::<Tz>().map_err(|_| Error::because(field, Reason::UnknownTimeZone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_a_category_and_the_seeds_categories_are_all_used() {
        let used: std::collections::HashSet<_> = EVENTS.iter().map(|e| format!("{:?}", e.category())).collect();
        assert_eq!(used.len(), 5);
        assert_eq!(EVENTS.len(), <NotificationEvent as async_graphql::resolver_utils::EnumType>::items().len());
    }

    #[test]
    fn high_volume_events_do_not_email_by_default() {
        assert!(!NotificationEvent::MessageReceived.default_for(NotificationChannel::Email));
        assert!(NotificationEvent::ConversationAssigned.default_for(NotificationChannel::Email));
        assert!(EVENTS.iter().all(|e| e.default_for(NotificationChannel::InApp)));
    }

    #[test]
    fn a_disabled_webhook_is_told_in_the_app_and_by_email() {
        let on = |c| NotificationEvent::WebhookDisabled.default_for(c);
        assert!(on(NotificationChannel::InApp) && on(NotificationChannel::Email) && !on(NotificationChannel::Push));
        assert_eq!(NotificationEvent::WebhookDisabled.category(), NotificationCategory::Account);
    }

    #[test]
    fn audio_follows_the_choice() {
        use NotificationEvent::MessageReceived;
        assert!(!AudioAlerts::None.audible(MessageReceived, true));
        assert!(AudioAlerts::AssignedToMe.audible(MessageReceived, true));
        assert!(!AudioAlerts::AssignedToMe.audible(MessageReceived, false));
        assert!(AudioAlerts::All.audible(MessageReceived, false));
        assert!(!AudioAlerts::All.audible(NotificationEvent::BillingUpdate, false));
    }

    #[test]
    fn times_and_zones_are_validated() {
        assert_eq!(parse_time_of_day("deliveryTime", "07:30").unwrap(), NaiveTime::from_hms_opt(7, 30, 0).unwrap());
        for bad in ["7", "25:00", "07:60", "seven", ""] {
            assert!(parse_time_of_day("deliveryTime", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time_zone("timeZone", "Europe/Warsaw").unwrap(), Tz::Europe__Warsaw);
        assert!(parse_time_zone("timeZone", "Mars/Olympus").is_err());
    }

    #[test]
    fn the_readme_lists_every_event_kind() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let (begin, end) = ("<!-- notification-events -->\n", "<!-- /notification-events -->");
        let listed = readme.split_once(begin).and_then(|(_, rest)| rest.split_once(end)).map(|(block, _)| block);
        assert_eq!(listed, Some(readme_table().as_str()), "README.md's event list is out of date; it should read:\n{}", readme_table());
    }

    #[test]
    fn names_round_trip() {
        use crate::db::StoredEnum as _;
        for e in EVENTS {
            assert_eq!(NotificationEvent::from_stored(e.stored_name()), Some(e));
        }
        assert_eq!(NotificationChannel::from_stored("IN_APP"), Some(NotificationChannel::InApp));
        assert_eq!(AudioAlerts::All.stored_name(), "ALL");
        assert_eq!(AudioAlerts::from_stored("EVERYTHING"), None);
    }
}
