//! The languages Concierge writes to users in. Each is a folder of Fluent files under
//! `locales/`, embedded at build time: adding a language is adding a folder.

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader as _};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Plain-text emails: no Unicode isolation marks around arguments.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The language used when a user has not chosen one.
pub const DEFAULT_LANGUAGE: &str = "en";

/// A supported language: its BCP 47 tag and its name in itself ("Polski").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Language {
    pub tag: String,
    pub native_name: String,
}

/// Every supported language, sorted by tag.
pub fn supported() -> Vec<Language> {
    let mut all: Vec<Language> =
        LOCALES.locales().map(|id| Language { tag: id.to_string(), native_name: LOCALES.lookup(id, "language-name") }).collect();
    all.sort_by(|a, b| a.tag.cmp(&b.tag));
    all
}

/// The supported language nearest to a BCP 47 tag a client sent (`pl-PL`, what
/// `navigator.language` gives, or `PL`): the same tag, else the same primary language
/// whatever the region or script; `None` when no supported language matches.
pub fn nearest(tag: &str) -> Option<String> {
    let wanted: LanguageIdentifier = tag.trim().replace('_', "-").parse().ok()?;
    let all = supported();
    let exact = all.iter().find(|l| l.tag.parse::<LanguageIdentifier>().is_ok_and(|id| id == wanted));
    let same_language = || all.iter().find(|l| l.tag.parse::<LanguageIdentifier>().is_ok_and(|id| id.language == wanted.language));
    exact.or_else(same_language).map(|l| l.tag.clone())
}

/// The supported language an `Accept-Language` header prefers most (by its `q` weights),
/// if it names any.
pub fn from_accept_language(header: &str) -> Option<String> {
    let mut ranges: Vec<(f32, &str)> = header
        .split(',')
        .take(20)
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=")).map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (q > 0.0 && tag != "*").then_some((q, tag))
        })
        .collect();
    // Stable: equal weights keep the header's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges.into_iter().find_map(|(_, tag)| nearest(tag))
}

/// Text `id` in `language` (falling back to English), with `args` filled in.
pub fn text(language: &str, id: &str, args: &[(&'static str, &str)]) -> String {
    let lang: LanguageIdentifier = language.parse().unwrap_or_else(|_| fluent_templates::langid!("en"));
    // Whole numbers go in as numbers, so plural forms (`[one]`, `[few]`) select on them.
    let args: HashMap<Cow<'static, str>, FluentValue> = args
        .iter()
        .map(|(k, v)| {
            let value = match v.parse::<i64>() {
                Ok(n) => FluentValue::from(n),
                Err(_) => FluentValue::from(v.to_string()),
            };
            (Cow::Borrowed(*k), value)
        })
        .collect();
    LOCALES.lookup_with_args(&lang, id, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_tags_land_on_the_nearest_supported_language() {
        assert_eq!(nearest("pl-PL").unwrap(), "pl");
        assert_eq!(nearest("PL").unwrap(), "pl");
        assert_eq!(nearest("de_AT").unwrap(), "de");
        assert_eq!(nearest("en-Latn-GB").unwrap(), "en");
        assert_eq!(nearest(" fr-CA ").unwrap(), "fr");
        for bad in ["xx-NOPE", "", "pl--PL", "klingon-tlh", "../../etc"] {
            assert!(nearest(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn accept_language_picks_the_most_wanted_supported_language() {
        assert_eq!(from_accept_language("pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7").as_deref(), Some("pl"));
        assert_eq!(from_accept_language("ja, fr-CH;q=0.5, de;q=0.7").as_deref(), Some("de"));
        assert_eq!(from_accept_language("ja, zh;q=0.5").as_deref(), None);
        assert_eq!(from_accept_language("de;q=0, fr").as_deref(), Some("fr"));
        assert_eq!(from_accept_language("").as_deref(), None);
    }

    #[test]
    fn every_language_words_every_field_error() {
        use crate::error::Reason;
        let reasons = [
            Reason::Required,
            Reason::TooLong { max: 3 },
            Reason::ControlCharacters,
            Reason::NotAPhoneNumber,
            Reason::UnsupportedLanguage,
            Reason::UnknownTimeZone,
            Reason::NotATimeOfDay,
            Reason::EndBeforeStart,
            Reason::Duplicate,
            Reason::InThePast,
            Reason::Overlaps,
            Reason::Invalid,
        ];
        let args: HashMap<&str, FluentValue> = [("max", FluentValue::from(3)), ("count", FluentValue::from(3))].into_iter().collect();
        for lang in supported() {
            let id: LanguageIdentifier = lang.tag.parse().unwrap();
            for message_id in reasons.iter().map(Reason::message_id).chain(["error-fields".to_owned()]) {
                let found = LOCALES.lookup_single_language(&id, &message_id, Some(&args));
                assert!(found.is_ok(), "{} lacks {message_id}: {found:?}", lang.tag);
            }
        }
        assert_eq!(text("pl", "error-too-long", &[("max", "100")]), "najwyżej 100 znaków");
        assert_eq!(Reason::TooLong { max: 100 }.english(), "at most 100 characters");
    }

    #[test]
    fn english_and_at_least_two_more_languages_are_shipped_with_their_own_names() {
        let all = supported();
        assert!(all.len() >= 3, "{all:?}");
        assert!(all.contains(&Language { tag: "en".into(), native_name: "English".into() }));
        assert!(all.contains(&Language { tag: "pl".into(), native_name: "Polski".into() }));
        assert!(all.contains(&Language { tag: "de".into(), native_name: "Deutsch".into() }));
    }

    #[test]
    fn tags_are_matched_case_insensitively_and_unknown_ones_refused() {
        assert_eq!(nearest(" PL ").unwrap(), "pl");
        assert_eq!(nearest("xx-NOPE"), None);
    }

    #[test]
    fn every_language_translates_every_email_text() {
        // A message missing from a language would silently fall back to English.
        let ids = [
            "greeting",
            "signoff",
            "email-change-verify-subject",
            "email-change-verify-body",
            "email-change-notice-subject",
            "email-change-notice-body",
            "email-changed-subject",
            "email-changed-body",
            "password-changed-subject",
            "password-changed-body",
            "notification-subject-many",
            "notification-intro-one",
            "notification-intro-many",
            "notification-more",
            "notification-open",
            "notification-footer",
            "digest-subject",
            "digest-intro",
            "digest-messages",
            "digest-messages-from",
            "digest-unread",
            "digest-mailboxes",
            "digest-footer",
            "security-password-changed",
            "security-two-factor-enabled",
            "security-two-factor-disabled",
            "security-recovery-code-used",
            "security-recovery-codes-regenerated",
            "security-access-token-created",
            "security-email-changed",
            "security-mailbox-connected",
            "security-mailbox-disconnected",
            "security-body",
            "security-body-from",
            "webhook-disabled-title",
            "webhook-disabled-body",
            "calendar-reauth-title",
            "calendar-reauth-body",
            "calendar-removed-title",
            "calendar-removed-body",
            "calendar-write-failed-title",
            "calendar-write-failed-body",
            "digest-calendar",
            "digest-calendar-line",
            "digest-all-day",
            "digest-untitled",
            "invitation-subject",
            "invitation-body",
            "invitation-sign-up-subject",
            "invitation-sign-up-body",
            "invitation-received-title",
            "invitation-received-body",
            "membership-deactivated-title",
            "membership-deactivated-body",
        ];
        for lang in supported() {
            let id: LanguageIdentifier = lang.tag.parse().unwrap();
            for text_id in ids {
                let args: HashMap<&str, FluentValue> = [
                    "name",
                    "new_email",
                    "link",
                    "hours",
                    "ip",
                    "time",
                    "count",
                    "date",
                    "contact",
                    "zone",
                    "what",
                    "url",
                    "title",
                    "workspace",
                    "role",
                ]
                .into_iter()
                .map(|k| (k, FluentValue::from("x")))
                .collect();
                let found = LOCALES.lookup_single_language(&id, text_id, Some(&args));
                assert!(found.is_ok(), "{} lacks {text_id}: {found:?}", lang.tag);
            }
        }
    }

    #[test]
    fn counts_choose_the_plural_form() {
        assert_eq!(text("en", "digest-messages-from", &[("count", "1"), ("contact", "Ann")]), "1 message from Ann");
        assert_eq!(text("en", "digest-messages-from", &[("count", "3"), ("contact", "Ann")]), "3 messages from Ann");
        assert_eq!(text("pl", "digest-messages-from", &[("count", "3"), ("contact", "Ann")]), "3 wiadomości od Ann");
    }

    #[test]
    fn an_invitation_names_the_role_in_the_recipients_language() {
        let args = [("name", "Ada"), ("workspace", "Acme"), ("role", "admin"), ("link", "L"), ("hours", "168")];
        assert!(text("en", "invitation-body", &args).contains("as an admin"), "{}", text("en", "invitation-body", &args));
        assert!(text("de", "invitation-body", &args).contains("als Administrator"), "{}", text("de", "invitation-body", &args));
    }

    #[test]
    fn arguments_are_filled_in_without_isolation_marks() {
        let s = text("de", "greeting", &[("name", "Zoë")]);
        assert_eq!(s, "Hallo Zoë,");
    }
}
