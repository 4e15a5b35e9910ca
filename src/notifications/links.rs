//! Where notification emails link. With the platform's frontend configured
//! (`CONCIERGE_APP_URL`) the "open" button and the settings link go to its pages; without it
//! there is no "open" button and the settings link is the gateway's own `/email-preferences`
//! page. Every email also carries a signed one-click link (RFC 8058 `List-Unsubscribe`) that
//! turns off exactly what the email was about, without signing in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use uuid::Uuid;

use super::model::NotificationEvent;
use crate::db::StoredEnum as _;
use crate::identity::model::AccountId;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// What a signed link turns off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsubscribe {
    /// The email channel of these event kinds.
    Events(Vec<NotificationEvent>),
    /// The daily summary.
    Digest,
}

impl Unsubscribe {
    fn encode(&self) -> String {
        match self {
            Unsubscribe::Digest => "digest".to_owned(),
            Unsubscribe::Events(events) => {
                let names: Vec<&str> = events.iter().map(|e| e.stored_name()).collect();
                format!("email:{}", names.join(","))
            }
        }
    }

    fn decode(raw: &str) -> Option<Unsubscribe> {
        if raw == "digest" {
            return Some(Unsubscribe::Digest);
        }
        let names = raw.strip_prefix("email:")?;
        let events: Option<Vec<NotificationEvent>> = names.split(',').map(NotificationEvent::from_stored).collect();
        events.filter(|e| !e.is_empty()).map(Unsubscribe::Events)
    }
}

/// The links of one email.
pub struct Links {
    /// The frontend's notification list, when there is a frontend.
    pub open: Option<String>,
    /// Where the user changes their notification settings.
    pub settings: String,
    /// The signed one-click link that turns off what this email is about.
    pub unsubscribe: String,
}

/// Builds and checks the links.
#[derive(Clone)]
pub struct EmailLinks {
    public_url: String,
    /// `(notifications page, settings page)` of the frontend.
    app: Option<(String, String)>,
    mac: HmacSha256,
}

impl std::fmt::Debug for EmailLinks {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailLinks").field("public_url", &self.public_url).field("app", &self.app).finish_non_exhaustive()
    }
}

impl EmailLinks {
    pub fn new(
        public_url: String,
        app_url: Option<&str>,
        notifications_path: &str,
        settings_path: &str,
        key: [u8; 32],
    ) -> anyhow::Result<Self> {
        let join = |base: &str, path: &str| format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'));
        let app = app_url.map(str::trim).filter(|u| !u.is_empty()).map(|u| (join(u, notifications_path), join(u, settings_path)));
        let mac = HmacSha256::new_from_slice(&key)?;
        Ok(EmailLinks { public_url: public_url.trim_end_matches('/').to_owned(), app, mac })
    }

    /// The links of an email to `account` about `what`.
    pub fn for_email(&self, account: AccountId, what: &Unsubscribe) -> Links {
        let unsubscribe = format!("{}/email-preferences?token={}", self.public_url, self.sign(account, what));
        match &self.app {
            Some((notifications, settings)) => Links { open: Some(notifications.clone()), settings: settings.clone(), unsubscribe },
            None => Links { open: None, settings: unsubscribe.clone(), unsubscribe },
        }
    }

    fn sign(&self, account: AccountId, what: &Unsubscribe) -> String {
        let payload = format!("{}.{}", account.0, what.encode());
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The account and scope a link was signed for; `None` for anything forged or mangled.
    pub fn verify(&self, token: &str) -> Option<(AccountId, Unsubscribe)> {
        if token.len() > 2048 {
            return None;
        }
        let (payload, tag) = token.trim().split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac.clone();
        mac.update(&payload);
        mac.verify_slice(&tag).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let (account, what) = payload.split_once('.')?;
        Some((AccountId(Uuid::parse_str(account).ok()?), Unsubscribe::decode(what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(app: Option<&str>) -> EmailLinks {
        EmailLinks::new("https://gw.example/".into(), app, "/notifications", "settings/notifications", [7; 32]).unwrap()
    }

    #[test]
    fn a_signed_link_verifies_and_a_changed_one_does_not() {
        let l = links(None);
        let ada = AccountId::new();
        let what = Unsubscribe::Events(vec![NotificationEvent::Mention, NotificationEvent::TaskAssigned]);
        let link = l.for_email(ada, &what);
        let token = link.unsubscribe.split_once("token=").unwrap().1;
        assert_eq!(l.verify(token), Some((ada, what)));
        // Another account's id in the payload, the same tag: refused.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(format!("{}.digest", AccountId::new().0)));
        assert_eq!(l.verify(&forged), None);
        // Another key: refused.
        let other = EmailLinks::new("https://gw.example".into(), None, "/n", "/s", [8; 32]).unwrap();
        assert_eq!(other.verify(token), None);
        for junk in ["", ".", "abc", "a.b.c", &"A".repeat(5000)] {
            assert_eq!(l.verify(junk), None, "{junk}");
        }
    }

    #[test]
    fn with_a_frontend_the_links_go_to_its_pages_and_without_one_to_the_gateways() {
        let ada = AccountId::new();
        let with = links(Some("https://app.example/")).for_email(ada, &Unsubscribe::Digest);
        assert_eq!(with.open.as_deref(), Some("https://app.example/notifications"));
        assert_eq!(with.settings, "https://app.example/settings/notifications");
        assert!(with.unsubscribe.starts_with("https://gw.example/email-preferences?token="));
        let without = links(None).for_email(ada, &Unsubscribe::Digest);
        assert_eq!(without.open, None);
        assert_eq!(without.settings, without.unsubscribe);
    }
}
