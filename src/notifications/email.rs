//! Notification and daily-summary emails: HTML and plain text from the same data, in the
//! recipient's language. Templates are minijinja (HTML ones auto-escaped), compiled in.

use std::fmt::Write as _;
use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

use super::links::Links;
use super::store::Notification;
use crate::i18n::text;
use crate::mail::Composed;

/// At most this many items are spelled out in one email; the rest are counted.
pub const MAX_ITEMS: usize = 25;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` templates escape what they insert; `.txt` ones do not.
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("notification.html", include_str!("templates/notification.html")),
        ("notification.txt", include_str!("templates/notification.txt")),
        ("digest.html", include_str!("templates/digest.html")),
        ("digest.txt", include_str!("templates/digest.txt")),
    ] {
        env.add_template(name, source).expect("the built-in email templates parse");
    }
    // minijinja's HTML escaping also writes `/` as `&#x2f;`, which is legal but makes every
    // URL and time zone unreadable in the source mail clients show; escape only what HTML needs.
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(s) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            for c in s.chars() {
                match c {
                    '&' => out.write_str("&amp;")?,
                    '<' => out.write_str("&lt;")?,
                    '>' => out.write_str("&gt;")?,
                    '"' => out.write_str("&quot;")?,
                    '\'' => out.write_str("&#39;")?,
                    c => out.write_char(c)?,
                }
            }
            Ok(())
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
});

#[derive(Serialize)]
struct Item<'a> {
    title: &'a str,
    body: &'a str,
}

/// Renders `name.html` and `name.txt` with the same context.
fn render(name: &str, subject: String, ctx: minijinja::Value) -> Composed {
    let full = context! { subject => &subject, ..ctx };
    let html = TEMPLATES.get_template(&format!("{name}.html")).and_then(|t| t.render(&full));
    let text = TEMPLATES.get_template(&format!("{name}.txt")).and_then(|t| t.render(&full));
    match (html, text) {
        (Ok(html), Ok(text)) => Composed { subject, html, text, unsubscribe: None },
        // The templates are fixed and tested; should one fail, say so rather than send nothing.
        (html, text) => {
            tracing::error!(html = ?html.err(), text = ?text.err(), "an email template failed to render");
            Composed { subject, html: String::new(), text: String::new(), unsubscribe: None }
        }
    }
}

fn more_line(lang: &str, total: usize) -> Option<String> {
    (total > MAX_ITEMS).then(|| text(lang, "notification-more", &[("count", &(total - MAX_ITEMS).to_string())]))
}

/// One email for one notification, or for a batch of them.
pub fn notifications(lang: &str, name: &str, items: &[Notification], links: &Links) -> Composed {
    let count = items.len().to_string();
    let (subject, intro) = match items {
        [one] => (one.title.clone(), text(lang, "notification-intro-one", &[])),
        _ => (text(lang, "notification-subject-many", &[("count", &count)]), text(lang, "notification-intro-many", &[("count", &count)])),
    };
    let shown: Vec<Item> = items.iter().take(MAX_ITEMS).map(|n| Item { title: &n.title, body: &n.body }).collect();
    let mail = render(
        "notification",
        subject,
        context! {
            lang,
            greeting => text(lang, "greeting", &[("name", name)]),
            intro,
            items => shown,
            more => more_line(lang, items.len()),
            open => text(lang, "notification-open", &[]),
            open_url => &links.open,
            footer => text(lang, "notification-footer", &[]),
            settings => text(lang, "email-settings-link", &[]),
            settings_url => &links.settings,
            unsubscribe => text(lang, "email-unsubscribe-link", &[]),
            unsubscribe_url => &links.unsubscribe,
        },
    );
    Composed { unsubscribe: Some(links.unsubscribe.clone()), ..mail }
}

/// What a daily summary reports.
pub struct DigestContent<'a> {
    /// The user's local date, as shown.
    pub date: String,
    /// New messages per contact, most first.
    pub messages_by_contact: Vec<(String, usize)>,
    /// Unread in-app notifications other than new messages, newest first.
    pub unread: Vec<Notification>,
    /// Mailbox problems, one line each.
    pub mailbox_problems: Vec<String>,
    /// Tasks due on the user's local day: (title, local time), earliest first.
    pub tasks_today: Vec<(String, String)>,
    /// Appointments on the user's local day: (title, local start time), earliest first.
    pub appointments_today: Vec<(String, String)>,
    /// Events of the primary and conflict calendars on the user's local day: (title, local
    /// `start–end`, empty for an all-day event), earliest first.
    pub calendar_today: Vec<(String, String)>,
    /// The delivery time and zone, for the footer.
    pub time: &'a str,
    pub zone: &'a str,
}

impl DigestContent<'_> {
    pub fn is_empty(&self) -> bool {
        self.messages_by_contact.is_empty()
            && self.unread.is_empty()
            && self.mailbox_problems.is_empty()
            && self.tasks_today.is_empty()
            && self.appointments_today.is_empty()
            && self.calendar_today.is_empty()
    }
}

pub fn digest(lang: &str, name: &str, d: &DigestContent<'_>, links: &Links) -> Composed {
    let messages: Vec<String> = d
        .messages_by_contact
        .iter()
        .map(|(contact, n)| text(lang, "digest-messages-from", &[("count", &n.to_string()), ("contact", contact)]))
        .collect();
    let unread: Vec<Item> = d.unread.iter().take(MAX_ITEMS).map(|n| Item { title: &n.title, body: &n.body }).collect();
    let lines = |id: &str, items: &[(String, String)]| -> Vec<String> {
        items.iter().map(|(title, time)| text(lang, id, &[("title", title), ("time", time)])).collect()
    };
    let all_day = text(lang, "digest-all-day", &[]);
    let untitled = text(lang, "digest-untitled", &[]);
    let calendar: Vec<String> = d
        .calendar_today
        .iter()
        .map(|(title, time)| {
            let title = if title.is_empty() { &untitled } else { title };
            let time = if time.is_empty() { &all_day } else { time };
            text(lang, "digest-calendar-line", &[("title", title), ("time", time)])
        })
        .collect();
    let mail = render(
        "digest",
        text(lang, "digest-subject", &[("date", &d.date)]),
        context! {
            lang,
            greeting => text(lang, "greeting", &[("name", name)]),
            intro => text(lang, "digest-intro", &[("date", &d.date)]),
            messages_heading => text(lang, "digest-messages", &[]),
            messages,
            unread_heading => text(lang, "digest-unread", &[("count", &d.unread.len().to_string())]),
            unread,
            more => more_line(lang, d.unread.len()),
            mailboxes_heading => text(lang, "digest-mailboxes", &[]),
            mailboxes => &d.mailbox_problems,
            tasks_heading => text(lang, "digest-tasks", &[]),
            tasks => lines("digest-task-line", &d.tasks_today),
            appointments_heading => text(lang, "digest-appointments", &[]),
            appointments => lines("digest-appointment-line", &d.appointments_today),
            calendar_heading => text(lang, "digest-calendar", &[]),
            calendar,
            open => text(lang, "notification-open", &[]),
            open_url => &links.open,
            footer => text(lang, "digest-footer", &[("time", d.time), ("zone", d.zone)]),
            settings => text(lang, "email-settings-link", &[]),
            settings_url => &links.settings,
            unsubscribe => text(lang, "digest-unsubscribe-link", &[]),
            unsubscribe_url => &links.unsubscribe,
        },
    );
    Composed { unsubscribe: Some(links.unsubscribe.clone()), ..mail }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::identity::model::AccountId;

    /// Links as a configured frontend gives them.
    pub(crate) fn app_links() -> Links {
        Links {
            open: Some("https://app.example/notifications".into()),
            settings: "https://app.example/settings/notifications".into(),
            unsubscribe: "https://gw.example/email-preferences?token=t".into(),
        }
    }

    fn note(title: &str, body: &str) -> Notification {
        Notification {
            notification_id: Uuid::now_v7(),
            account_id: AccountId::new(),
            event: "MESSAGE_RECEIVED".into(),
            title: title.into(),
            body: body.into(),
            audible: false,
            created_at: Utc::now(),
            read_at: None,
            in_app: true,
            dedupe_key: None,
            contact: None,
        }
    }

    #[test]
    fn one_notification_is_its_own_subject_in_both_parts() {
        let mail = notifications("en", "Ann", &[note("Your password was changed", "From 10.0.0.1")], &app_links());
        assert_eq!(mail.subject, "Your password was changed");
        for part in [&mail.html, &mail.text] {
            assert!(part.contains("Hello Ann,"), "{part}");
            assert!(part.contains("From 10.0.0.1"), "{part}");
            assert!(part.contains("https://app.example/notifications"), "{part}");
            assert!(part.contains("https://app.example/settings/notifications"), "{part}");
            assert!(part.contains("https://gw.example/email-preferences?token=t"), "{part}");
        }
        assert_eq!(mail.unsubscribe.as_deref(), Some("https://gw.example/email-preferences?token=t"));
    }

    #[test]
    fn without_a_frontend_there_is_no_open_button_and_the_settings_link_is_the_gateways() {
        let links = Links {
            open: None,
            settings: "https://gw.example/email-preferences?token=t".into(),
            unsubscribe: "https://gw.example/email-preferences?token=t".into(),
        };
        let mail = notifications("en", "Ann", &[note("A", "b")], &links);
        for part in [&mail.html, &mail.text] {
            assert!(!part.contains("Open Concierge"), "{part}");
            assert!(!part.contains("Preferences → Notifications"), "no page that does not exist: {part}");
            assert!(part.contains("https://gw.example/email-preferences?token=t"), "{part}");
        }
    }

    #[test]
    fn a_batch_is_counted_in_the_subject_and_long_ones_are_cut() {
        let items: Vec<_> = (0..100).map(|i| note(&format!("Message {i}"), "…")).collect();
        let mail = notifications("de", "Jörg", &items, &app_links());
        assert_eq!(mail.subject, "100 neue Benachrichtigungen");
        assert!(mail.text.contains("Message 24") && !mail.text.contains("Message 25"), "{}", mail.text);
        assert!(mail.html.contains("…und 75 weitere."), "{}", mail.html);
    }

    #[test]
    fn html_escapes_what_users_and_senders_wrote_and_text_keeps_it() {
        let mail = notifications("en", "<b>Ann</b>", &[note("<script>x</script>", "a & b")], &app_links());
        assert!(!mail.html.contains("<script>") && mail.html.contains("&lt;script&gt;"), "{}", mail.html);
        assert!(mail.html.contains("&lt;b&gt;Ann"), "{}", mail.html);
        assert!(mail.text.contains("<script>x</script>") && mail.text.contains("a & b"), "{}", mail.text);
    }

    #[test]
    fn a_digest_groups_messages_by_contact_and_lists_problems() {
        let d = DigestContent {
            date: "2026-03-29".into(),
            messages_by_contact: vec![("Bob Stone".into(), 3), ("ann@example.com".into(), 1)],
            unread: vec![note("Task due", "Call Bob")],
            mailbox_problems: vec!["ann@work.example: sign in again".into()],
            tasks_today: vec![],
            appointments_today: vec![],
            calendar_today: vec![],
            time: "08:00",
            zone: "Europe/Berlin",
        };
        assert!(!d.is_empty());
        let mail = digest("en", "Ann", &d, &app_links());
        assert_eq!(mail.subject, "Your daily summary for 2026-03-29");
        for part in [&mail.html, &mail.text] {
            assert!(part.contains("3 messages from Bob Stone"), "{part}");
            assert!(part.contains("1 message from ann@example.com"), "{part}");
            assert!(part.contains("Call Bob"), "{part}");
            assert!(part.contains("sign in again"), "{part}");
            assert!(part.contains("08:00 (Europe/Berlin)"), "{part}");
        }
    }
}
