//! Concierge's CalDAV calendar connector: any CalDAV server (kind `caldav`, the user gives
//! its URL), iCloud (kind `icloud`, app-specific password) and Google Calendar's CalDAV API
//! signed in with OAuth2 (kind `gmail`, shared with the Gmail mail connector), all one
//! code path configured by a [`Preset`].
//!
//! ```ignore
//! let caldav: SharedCalendarConnector = Arc::new(CaldavConnector::generic(Options::default()));
//! let icloud: SharedCalendarConnector = Arc::new(CaldavConnector::icloud(Options::default()));
//! // Kind `gmail`, beside the Gmail mail connector of the same kind; `base` for a stand-in.
//! let google: SharedCalendarConnector = Arc::new(CaldavConnector::google(None));
//! ```
//!
//! The DAV client is our own, on `reqwest` 0.12 (rustls with ring, as the rest of the
//! workspace) and `roxmltree` for the XML. `libdav` was the alternative: it brings its own
//! hyper client and TLS wiring (a second HTTP stack beside reqwest) and an API that moves
//! between releases, while CalDAV needs only six request shapes (PROPFIND, sync-collection,
//! calendar-multiget, PUT, DELETE, redirects by hand), which stay small and are unit-tested
//! in `wire`.
//!
//! Layout: [`settings`] (forms, presets, the URL rule), `dav` (signed requests, redirects,
//! one token refresh), `discovery` (start URL → well-known → principal → calendar home),
//! `session` (calendars, changes, put, delete), `wire` (XML and iCalendar, pure) and
//! `classify` (every failure becomes a typed [`ConnectorError`] there).

mod classify;
mod dav;
mod discovery;
mod session;
pub mod settings;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use concierge_connector_sdk::{
    Account, CalendarConnector, CalendarSession, ConnectorError, Credentials, Descriptor, FieldError, OAuthProvider, OutboundPolicy,
    Settings, async_trait,
};

pub use settings::Preset;

use concierge_connector_sdk::trust::{self, Fingerprint, Refused, Trust};

/// How a [`CaldavConnector`] behaves, set by the operator (not by users).
#[derive(Clone, Debug)]
pub struct Options {
    /// A PEM bundle trusted in addition to the webpki roots.
    pub extra_root_certs_pem: Option<Vec<u8>>,
    /// Allow `http://` URLs to hosts other than loopback. Off by default: it sends
    /// passwords and events in clear.
    pub allow_plaintext_remote: bool,
    /// Use RFC 6578 sync-collection when the server has it. Off: always compare ETags
    /// (for servers whose sync tokens misbehave, and for tests of that path).
    pub use_sync_collection: bool,
    /// Budget for each HTTP request, connect to last byte.
    pub request_timeout: Duration,
    /// Which addresses the URL, every redirect and every discovered URL may reach (public
    /// ones only by default). Google's base URL comes from the operator and is not checked.
    pub outbound: OutboundPolicy,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            extra_root_certs_pem: None,
            allow_plaintext_remote: false,
            use_sync_collection: true,
            request_timeout: Duration::from_secs(30),
            outbound: OutboundPolicy::strict(),
        }
    }
}

/// The CalDAV connector. One instance per kind: [`CaldavConnector::generic`],
/// [`CaldavConnector::icloud`], [`CaldavConnector::google`], or any [`Preset`].
pub struct CaldavConnector {
    preset: Preset,
    options: Options,
    /// The certificates trusted (webpki roots and the operator's extra ones), or why they
    /// could not be read (a bad extra root bundle); the error surfaces on every open as
    /// [`ConnectorError::Tls`]. Each open builds its client with them and the account's pins.
    trust: Result<Trust, String>,
}

impl fmt::Debug for CaldavConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaldavConnector").field("kind", &self.preset.descriptor.kind).field("options", &self.options).finish()
    }
}

impl CaldavConnector {
    /// Any CalDAV server (kind `caldav`): the form asks for the URL and, optionally, a user name.
    pub fn generic(options: Options) -> CaldavConnector {
        CaldavConnector::preset(Preset::generic(), options)
    }

    /// iCloud (kind `icloud`): nothing to fill in but an app-specific password
    /// ([`Preset::ICLOUD_PASSWORD_HELP`]).
    pub fn icloud(options: Options) -> CaldavConnector {
        CaldavConnector::preset(Preset::icloud(), options)
    }

    /// Google Calendar over CalDAV with OAuth2 (kind `gmail`). `base` replaces
    /// `https://apidata.googleusercontent.com/caldav/v2/` (a stand-in, a proxy); discovery
    /// starts at `{base}{email}/user`.
    pub fn google(base: Option<String>) -> CaldavConnector {
        // The base URL is the operator's (or Google's), never a user's: trusted.
        let options = Options { outbound: OutboundPolicy::operator_configured(), ..Options::default() };
        CaldavConnector::preset(Preset::google(base), options)
    }

    /// Any preset with these options.
    pub fn preset(preset: Preset, options: Options) -> CaldavConnector {
        let trust = Trust::new(options.extra_root_certs_pem.as_deref());
        if let Err(why) = &trust {
            tracing::warn!(kind = preset.descriptor.kind, "CalDAV connector TLS setup failed: {why}");
        }
        CaldavConnector { preset, options, trust }
    }
}

/// The HTTP client of one session: the connector's trust, plus the account's pinned
/// certificates; and the slot that says which certificate a handshake refused.
fn build_client(options: &Options, trust: &Trust, pins: &[Fingerprint]) -> Result<(reqwest::Client, Refused), String> {
    let (tls, refused) = trust.for_connection(pins);
    let builder = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .timeout(options.request_timeout)
        .connect_timeout(options.request_timeout)
        // Redirects are followed in `dav`, which keeps the method (reqwest turns a
        // redirected PROPFIND into a GET) and never leaves https.
        .redirect(reqwest::redirect::Policy::none())
        // Every name is resolved through the policy, on every new connection, and only
        // allowed addresses come back; IP literals are checked in `dav` before each request.
        .dns_resolver(Arc::new(concierge_connector_sdk::outbound::PolicyResolver(options.outbound.clone())))
        .user_agent(concat!("Concierge-CalDAV/", env!("CARGO_PKG_VERSION")));
    Ok((builder.build().map_err(|e| format!("HTTP client: {e}"))?, refused))
}

#[async_trait]
impl CalendarConnector for CaldavConnector {
    fn descriptor(&self) -> &Descriptor {
        &self.preset.descriptor
    }

    fn validate(&self, settings: &Settings) -> Result<Settings, FieldError> {
        self.preset.validate(settings, self.options.allow_plaintext_remote)
    }

    /// Signs in and finds the calendar home; nothing is listed yet.
    async fn open(&self, account: &Account) -> Result<Box<dyn CalendarSession>, ConnectorError> {
        let trust = self.trust.as_ref().map_err(|message| ConnectorError::Tls { message: message.clone() })?;
        let pins = trust::pins(&account.settings).map_err(ConnectorError::Settings)?;
        let (client, refused) = build_client(&self.options, trust, &pins).map_err(|message| ConnectorError::Tls { message })?;
        let username = match account.credentials.username().trim() {
            "" => account.address.trim(),
            name => name,
        };
        let start =
            self.preset.start(&account.settings, username, self.options.allow_plaintext_remote).map_err(ConnectorError::Settings)?;
        let auth = match &account.credentials {
            Credentials::Password { password, .. } => dav::Auth::Basic { username: username.to_owned(), password: password.clone() },
            Credentials::OAuth2 { tokens, .. } => dav::Auth::Bearer { tokens: Arc::clone(tokens) },
        };
        let dav = Arc::new(dav::Dav { client, refused, auth, outbound: self.options.outbound.clone() });
        let home = discovery::calendar_home(&dav, &start).await?;
        Ok(Box::new(session::CaldavSession { dav, home, use_sync_collection: self.options.use_sync_collection }))
    }

    fn oauth(&self) -> Option<&OAuthProvider> {
        self.preset.oauth.as_ref()
    }
}
