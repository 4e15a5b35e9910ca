//! Configuration: one clap struct, each setting a `serve` flag and an environment variable.
//! Defaults make `cargo run --release` work with no setup (SQLite in `./data`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use concierge_connector_sdk::OutboundPolicy;
use concierge_connector_sdk::outbound::IpNet;

#[derive(Debug, Parser)]
#[command(name = "concierge", version, about = "GraphQL gateway for the \"my account\" side of a customer-engagement platform")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve`, the default command.
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the GraphQL API (the default).
    Serve(Config),
    /// Apply database migrations and exit.
    Migrate(Config),
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Operator tasks on the database `serve` uses.
    Admin(AdminArgs),
    /// Seals every stored secret (mailbox and calendar credentials, two-factor secrets,
    /// webhook secrets) again under the current key (`CONCIERGE_SECRET_KEY`, or `secret.key`
    /// in the data folder, created when missing), opening them with the old one. Stop every
    /// gateway first, and start them with the new key after.
    Rekey(RekeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct RekeyArgs {
    /// The previous key, 32 bytes in base64.
    #[arg(long, env = "CONCIERGE_OLD_SECRET_KEY", hide_env_values = true, conflicts_with = "old_key_file")]
    pub old_key: Option<Redacted>,
    /// A file holding the previous key (a former `secret.key`).
    #[arg(long)]
    pub old_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub task: AdminTask,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum AdminTask {
    /// Activates or deactivates an account (sign-in and every workspace). Deactivating ends
    /// its sessions; its holder can no longer log in until it is activated again.
    SetAccountStatus {
        /// The account's login email.
        #[arg(long)]
        email: String,
        #[arg(long, value_enum)]
        status: AdminAccountStatus,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AdminAccountStatus {
    Active,
    Inactive,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CONCIERGE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Database URL: `sqlite://…` or `postgres://…`. Default: SQLite `concierge.db` in the data folder.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// The URL clients reach the gateway at (used in links Concierge sends). Default: http://<bind>.
    #[arg(long, env = "CONCIERGE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The platform's frontend (`https://app.example.com`): notification emails link to its
    /// pages. Without it they link to the gateway's own email-settings page and show no
    /// "open" button.
    #[arg(long, env = "CONCIERGE_APP_URL")]
    pub app_url: Option<String>,

    /// The frontend's notification list, under CONCIERGE_APP_URL (the emails' "open" button).
    #[arg(long, env = "CONCIERGE_APP_NOTIFICATIONS_PATH", default_value = "/notifications")]
    pub app_notifications_path: String,

    /// The frontend's notification settings page, under CONCIERGE_APP_URL (the emails' footer).
    #[arg(long, env = "CONCIERGE_APP_SETTINGS_PATH", default_value = "/settings/notifications")]
    pub app_settings_path: String,

    /// Folder for the embedded database and other local state; created when missing.
    #[arg(long, env = "CONCIERGE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Key sealing secrets at rest (32 bytes, base64). Default: `secret.key` in the data
    /// folder, created on first start. Replicas sharing a database must share it.
    #[arg(long, env = "CONCIERGE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Redacted>,

    /// SMTP server for the emails Concierge sends (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://user:pass@host`). Default: none, and emails are written to `outbox/` in the data folder.
    #[arg(long, env = "CONCIERGE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Redacted>,

    /// The sender of system emails.
    #[arg(long, env = "CONCIERGE_MAIL_FROM", default_value = "Concierge <concierge@localhost>")]
    pub mail_from: String,

    /// Hours an invitation to a workspace (and each resent link) stays valid.
    #[arg(long, env = "CONCIERGE_INVITATION_TTL_HOURS", default_value_t = 168)]
    pub invitation_ttl_hours: u32,

    /// The page invitation links open, `?token=…` appended (a frontend's own page). Default:
    /// the page the gateway serves at `<public URL>/invitation`.
    #[arg(long, env = "CONCIERGE_INVITATION_URL")]
    pub invitation_url: Option<String>,

    /// Invitation emails (new or resent) one account may send in 15 minutes before
    /// RATE_LIMITED: a free account must not turn the gateway into a mail cannon.
    #[arg(long, env = "CONCIERGE_INVITATIONS_PER_INVITER", default_value_t = 50)]
    pub invitations_per_inviter: u32,

    /// Failed-or-not log-in attempts allowed per account (and per second-factor challenge
    /// owner) in 15 minutes before RATE_LIMITED.
    #[arg(long, env = "CONCIERGE_LOGIN_ATTEMPTS_PER_ACCOUNT", default_value_t = 10)]
    pub login_attempts_per_account: u32,

    /// Log-in attempts allowed per client address in 15 minutes before RATE_LIMITED.
    #[arg(long, env = "CONCIERGE_LOGIN_ATTEMPTS_PER_ADDRESS", default_value_t = 100)]
    pub login_attempts_per_address: u32,

    /// Largest profile photo upload, in bytes.
    #[arg(long, env = "CONCIERGE_MAX_PHOTO_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_photo_bytes: usize,

    /// Seconds a high-volume notification email (new messages, mentions, assignments) waits
    /// so that a burst goes out as one email.
    #[arg(long, env = "CONCIERGE_EMAIL_BATCH_SECS", default_value_t = 60)]
    pub email_batch_secs: u64,

    /// Seconds an AUTOMATIC user stays ONLINE after their last WebSocket closes (a reload or
    /// a dropped network should not flicker their status).
    #[arg(long, env = "CONCIERGE_PRESENCE_GRACE_SECS", default_value_t = 30)]
    pub presence_grace_secs: u64,

    /// Milliseconds before the first retry of a failed email or push; each further retry
    /// waits twice as long, up to an hour.
    #[arg(long, env = "CONCIERGE_DELIVERY_RETRY_MS", default_value_t = 30_000)]
    pub delivery_retry_ms: u64,

    /// Attempts before an email or push is given up.
    #[arg(long, env = "CONCIERGE_DELIVERY_MAX_ATTEMPTS", default_value_t = 12)]
    pub delivery_max_attempts: i32,

    /// Address ranges (CIDRs, comma-separated: `127.0.0.0/8,::1/128,10.0.0.0/8`) the gateway
    /// may reach on a user's behalf (push endpoints, CalDAV URLs, IMAP/SMTP hosts, webhooks)
    /// besides public addresses. Empty by default: loopback, private, link-local and other
    /// non-public addresses are refused. For self-hosters' LAN servers and for tests.
    #[arg(long, env = "CONCIERGE_OUTBOUND_ALLOW", value_delimiter = ',', value_parser = parse_cidr)]
    pub outbound_allow: Vec<IpNet>,

    /// Deprecated: `CONCIERGE_OUTBOUND_ALLOW=127.0.0.0/8,::1/128` says the same. Kept so
    /// existing deployments keep working.
    #[arg(long, env = "CONCIERGE_WEBHOOK_ALLOW_HTTP_LOOPBACK", default_value_t = false, hide = true)]
    pub webhook_allow_http_loopback: bool,

    /// Milliseconds before the first retry of a failed webhook delivery. The whole schedule
    /// (5 s, 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h at the default) scales with it.
    #[arg(long, env = "CONCIERGE_WEBHOOK_RETRY_MS", default_value_t = 5000)]
    pub webhook_retry_ms: u64,

    /// Seconds between two polls of every connected calendar account for changes.
    #[arg(long, env = "CONCIERGE_CALENDAR_POLL_SECS", default_value_t = 300)]
    pub calendar_poll_secs: u64,

    /// Seconds a gateway process's claim on a calendar account's sync lasts unless renewed (it
    /// is renewed every third of this while the sync runs); another process takes over an
    /// account at most this long after its syncing process died.
    #[arg(long, env = "CONCIERGE_CALENDAR_LEASE_SECS", default_value_t = 15)]
    pub calendar_lease_secs: u64,

    /// Milliseconds before the first retry of an appointment that could not be written to a
    /// calendar; each further retry waits twice as long, up to an hour.
    #[arg(long, env = "CONCIERGE_CALENDAR_RETRY_MS", default_value_t = 30000)]
    pub calendar_retry_ms: u64,

    /// Contact the Web Push services may reach the operator at (VAPID `sub`): a `mailto:` or
    /// `https:` URL. Default: `mailto:` and the sender address.
    #[arg(long, env = "CONCIERGE_VAPID_SUBJECT")]
    pub vapid_subject: Option<String>,

    /// A PEM file of certificates to trust for mail servers besides the public roots (a
    /// self-hosted server with a private CA).
    #[arg(long, env = "CONCIERGE_MAIL_CA_FILE")]
    pub mail_ca_file: Option<PathBuf>,

    /// A TOML file of mail and calendar provider presets (`[[mail_provider]]` and
    /// `[[calendar_provider]]` tables) that adds providers to the built-in ones or replaces one
    /// by its kind. A bad file stops the gateway at start.
    #[arg(long, env = "CONCIERGE_PROVIDERS_FILE")]
    pub providers_file: Option<PathBuf>,

    /// Name servers that discovery (`discoverMailSettings`) asks for SRV records and
    /// autoconfig hosts, as `ip` or `ip:port`, comma-separated. Empty (the default): the
    /// system's, from /etc/resolv.conf.
    #[arg(long, env = "CONCIERGE_DNS_SERVERS", value_delimiter = ',', value_parser = parse_name_server)]
    pub dns_servers: Vec<SocketAddr>,

    /// Let mailboxes connect without TLS to servers other than this machine. Off by default:
    /// a password sent in the clear can be read by anyone on the path.
    #[arg(long, env = "CONCIERGE_MAIL_ALLOW_PLAINTEXT", default_value_t = false)]
    pub mail_allow_plaintext: bool,

    /// Seconds between checks for new mail on a server without IMAP IDLE (with IDLE, new
    /// mail arrives at once). 1 to 3600.
    #[arg(long, env = "CONCIERGE_MAIL_POLL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub mail_poll_secs: u64,

    /// Seconds between comparisons of each mailbox's server listing with what was recorded.
    #[arg(long, env = "CONCIERGE_MAIL_RECONCILE_SECS", default_value_t = 15 * 60)]
    pub mail_reconcile_secs: u64,

    /// First retry delay, in milliseconds, after a mailbox sync fails (doubles, with jitter).
    #[arg(long, env = "CONCIERGE_MAIL_RETRY_MS", default_value_t = 5000)]
    pub mail_retry_ms: u64,

    /// Seconds a gateway process's claim on a mailbox's sync lasts unless renewed (it is
    /// renewed every third of this while the sync runs); another process takes over a mailbox
    /// at most this long after its syncing process died.
    #[arg(long, env = "CONCIERGE_MAIL_LEASE_SECS", default_value_t = 15)]
    pub mail_lease_secs: u64,

    /// Messages a mailbox sync fetches and records per transaction.
    #[arg(long, env = "CONCIERGE_MAIL_SYNC_BATCH", default_value_t = 250)]
    pub mail_sync_batch: usize,

    /// Where the browser is sent after signing in to a mail provider, with `status=connected`
    /// and `mailbox=<id>`, or `status=error` and `error=<code>` (`access_denied`,
    /// `invalid_state`, …) in the query. Default: a page the gateway serves, `/oauth/done`.
    #[arg(long, env = "CONCIERGE_OAUTH_RETURN_URL")]
    pub oauth_return_url: Option<String>,

    /// Minutes a started mailbox authorisation (its `state`) stays usable.
    #[arg(long, env = "CONCIERGE_OAUTH_STATE_MINUTES", default_value_t = 15)]
    pub oauth_state_minutes: u32,

    /// Gmail: the OAuth client id registered at Google. Gmail is offered once it is set.
    #[arg(long, env = "CONCIERGE_GMAIL_CLIENT_ID")]
    pub gmail_client_id: Option<String>,
    #[arg(long, env = "CONCIERGE_GMAIL_CLIENT_SECRET", hide_env_values = true)]
    pub gmail_client_secret: Option<Redacted>,
    /// Gmail: Google's endpoints, when they must be reached elsewhere (a proxy, a test stand-in).
    #[arg(long, env = "CONCIERGE_GMAIL_AUTHORIZE_URL")]
    pub gmail_authorize_url: Option<String>,
    #[arg(long, env = "CONCIERGE_GMAIL_TOKEN_URL")]
    pub gmail_token_url: Option<String>,
    #[arg(long, env = "CONCIERGE_GMAIL_USERINFO_URL")]
    pub gmail_userinfo_url: Option<String>,
    /// Google's CalDAV base (default `https://apidata.googleusercontent.com/caldav/v2/`).
    #[arg(long, env = "CONCIERGE_GMAIL_CALDAV_URL")]
    pub gmail_caldav_url: Option<String>,
    /// Gmail's IMAP server as `host:port` (implicit TLS). Default imap.gmail.com:993.
    #[arg(long, env = "CONCIERGE_GMAIL_IMAP")]
    pub gmail_imap: Option<String>,
    /// Gmail's SMTP server as `host:port` (implicit TLS). Default smtp.gmail.com:465.
    #[arg(long, env = "CONCIERGE_GMAIL_SMTP")]
    pub gmail_smtp: Option<String>,

    /// Outlook: the application (client) id registered at Microsoft Entra. Outlook is offered
    /// once it is set.
    #[arg(long, env = "CONCIERGE_OUTLOOK_CLIENT_ID")]
    pub outlook_client_id: Option<String>,
    #[arg(long, env = "CONCIERGE_OUTLOOK_CLIENT_SECRET", hide_env_values = true)]
    pub outlook_client_secret: Option<Redacted>,
    /// Outlook: Microsoft's endpoints, when they must be reached elsewhere.
    #[arg(long, env = "CONCIERGE_OUTLOOK_AUTHORIZE_URL")]
    pub outlook_authorize_url: Option<String>,
    #[arg(long, env = "CONCIERGE_OUTLOOK_TOKEN_URL")]
    pub outlook_token_url: Option<String>,
    #[arg(long, env = "CONCIERGE_OUTLOOK_USERINFO_URL")]
    pub outlook_userinfo_url: Option<String>,
    /// Microsoft Graph's base (default `https://graph.microsoft.com/v1.0`).
    #[arg(long, env = "CONCIERGE_OUTLOOK_GRAPH_URL")]
    pub outlook_graph_url: Option<String>,
    /// Outlook's IMAP server as `host:port` (implicit TLS). Default outlook.office365.com:993.
    #[arg(long, env = "CONCIERGE_OUTLOOK_IMAP")]
    pub outlook_imap: Option<String>,
    /// Outlook's SMTP server as `host:port` (STARTTLS). Default smtp.office365.com:587.
    #[arg(long, env = "CONCIERGE_OUTLOOK_SMTP")]
    pub outlook_smtp: Option<String>,

    /// Largest message `sendEmail` sends, in bytes, attachments and encoding included.
    #[arg(long, env = "CONCIERGE_MAX_SEND_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_send_bytes: usize,

    /// Most events one `publishEvents` request may carry; a larger batch is refused whole.
    #[arg(long, env = "CONCIERGE_PUBLISH_BATCH_MAX", default_value_t = 100)]
    pub publish_batch_max: usize,

    /// Log filter, in `tracing` EnvFilter syntax.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log line format.
    #[arg(long, env = "CONCIERGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Maximum database connections in the pool. Default: 16 on PostgreSQL; on SQLite two per
    /// core (at least 4), since each SQLite connection is a thread and more only add switching.
    #[arg(long, env = "CONCIERGE_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,

    /// How long a session lasts after log-in, in hours.
    #[arg(long, env = "CONCIERGE_SESSION_TTL_HOURS", default_value_t = 24 * 30)]
    pub session_ttl_hours: u32,

    /// Minutes a password-reset link works.
    #[arg(long, env = "CONCIERGE_PASSWORD_RESET_MINUTES", default_value_t = 30)]
    pub password_reset_minutes: u32,

    /// The platform's own reset page, given the link's token as `token=` in its query.
    /// Default: the small page the gateway serves at `/reset-password`.
    #[arg(long, env = "CONCIERGE_PASSWORD_RESET_URL")]
    pub password_reset_url: Option<String>,

    /// Refuse log-in to accounts whose address is not verified; a sign-up with an address
    /// that has an account then answers like any other and emails the owner instead.
    #[arg(long, env = "CONCIERGE_REQUIRE_VERIFIED_EMAIL", default_value_t = false)]
    pub require_verified_email: bool,

    /// The WebAuthn relying party id passkeys are bound to: the registrable domain the
    /// sign-in pages are on (`example.com`). Default: the public URL's host (`localhost` when
    /// that is a loopback address, since browsers refuse IP addresses). Changing it orphans
    /// every passkey registered before.
    #[arg(long, env = "CONCIERGE_WEBAUTHN_RP_ID")]
    pub webauthn_rp_id: Option<String>,

    /// The origins (comma-separated: `https://app.example.com,https://example.com`) whose
    /// pages may register and use passkeys. Default: the public URL (its `localhost` form
    /// when that is a loopback address: `http://localhost:8080` by default).
    #[arg(long, env = "CONCIERGE_WEBAUTHN_ORIGINS", value_delimiter = ',')]
    pub webauthn_origins: Vec<String>,

    /// Hours between `scheduleAccountDeletion` and the deletion (0: at once).
    #[arg(long, env = "CONCIERGE_ACCOUNT_DELETION_GRACE_HOURS", default_value_t = 168)]
    pub account_deletion_grace_hours: u32,

    /// Reset and verification emails one address (and one account) may be sent in 15 minutes.
    #[arg(long, env = "CONCIERGE_ACCOUNT_EMAILS_PER_ADDRESS", default_value_t = 5)]
    pub account_emails_per_address: u32,

    /// Deepest selection nesting a query may have.
    #[arg(long, env = "CONCIERGE_MAX_QUERY_DEPTH", default_value_t = 15)]
    pub max_query_depth: usize,

    /// Highest complexity (roughly, fields selected) a query may have.
    #[arg(long, env = "CONCIERGE_MAX_QUERY_COMPLEXITY", default_value_t = 1000)]
    pub max_query_complexity: usize,

    /// Most aliased fields a query may have.
    #[arg(long, env = "CONCIERGE_MAX_QUERY_ALIASES", default_value_t = 50)]
    pub max_query_aliases: usize,

    /// Largest request body, in bytes.
    #[arg(long, env = "CONCIERGE_MAX_REQUEST_BYTES", default_value_t = 256 * 1024)]
    pub max_request_bytes: usize,

    /// Most operations in one batched request.
    #[arg(long, env = "CONCIERGE_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// Seconds an HTTP request may take before it is answered with 408.
    #[arg(long, env = "CONCIERGE_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Seconds to let in-flight requests finish on shutdown.
    #[arg(long, env = "CONCIERGE_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Whether the queue workers (emails and pushes, daily summaries, webhook deliveries,
    /// calendar syncs and appointment writes, account deletions, data exports) run in the
    /// background. Not a setting: always on in the gateway; tests that step the workers with
    /// `run_once` turn it off so that no background pass races theirs.
    #[arg(skip = true)]
    pub queue_workers: bool,

    // Hardening of the GraphQL surface and anti-automation (issue 19, sections 2, 5 and 6).
    /// Most fields, inline fragments and fragment spreads an anonymous request's document may
    /// expand to (each spread counted with everything its fragment expands to), checked
    /// before validation so a fragment bomb costs nothing.
    #[arg(long, env = "CONCIERGE_MAX_SELECTIONS_ANONYMOUS", default_value_t = 1000)]
    pub max_selections_anonymous: usize,

    /// The same budget for a signed-in caller (session or token).
    #[arg(long, env = "CONCIERGE_MAX_SELECTIONS", default_value_t = 5000)]
    pub max_selections: usize,

    /// Who may introspect the schema (`__schema`, `__type`): `on` (anyone), `authenticated`
    /// (signed-in callers) or `off`. Field suggestions ("Did you mean …") are given only to
    /// those who may introspect.
    #[arg(long, env = "CONCIERGE_INTROSPECTION", value_enum, default_value_t = Introspection::On)]
    pub introspection: Introspection,

    /// Sign-ups allowed per client address in an hour before RATE_LIMITED (each alias and
    /// each operation of a batch counts).
    #[arg(long, env = "CONCIERGE_SIGNUPS_PER_ADDRESS", default_value_t = 20)]
    pub signups_per_address: u32,

    /// Failed token checks (bearer tokens that do not authenticate, email-change tokens that
    /// are unknown or expired) allowed per client address in 15 minutes. Past it, the address's
    /// token checks are refused with RATE_LIMITED, unchecked, until the window has room again.
    #[arg(long, env = "CONCIERGE_TOKEN_FAILURES_PER_ADDRESS", default_value_t = 50)]
    pub token_failures_per_address: u32,

    /// Seconds a connection may take to send a request's headers (and an idle kept-alive
    /// connection to start the next one) before it is closed.
    #[arg(long, env = "CONCIERGE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers are believed (CIDRs or addresses,
    /// comma-separated, e.g. `10.0.0.0/8,fd00::/8`). Default: none, and those headers are ignored.
    #[arg(long, env = "CONCIERGE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::transport::TrustedProxies,

    /// Serve `/metrics` on this address only (not on `CONCIERGE_BIND`). Default: on the main
    /// listener.
    #[arg(long, env = "CONCIERGE_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Bearer token `/metrics` requires (`Authorization: Bearer …`). Default: none.
    #[arg(long, env = "CONCIERGE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Redacted>,
}

/// Who may introspect the schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Introspection {
    #[default]
    On,
    Authenticated,
    Off,
}

/// A configured secret: usable, never printed.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_owned()))
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Config {
    /// The configuration with every default, as tests and tools build it in code.
    pub fn defaults() -> Config {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        Only::parse_from(["concierge"]).config
    }

    /// Which addresses the gateway may reach on a user's behalf: public ones, and the
    /// ranges of `CONCIERGE_OUTBOUND_ALLOW` (with this machine when the deprecated webhook
    /// loopback switch is on).
    pub fn outbound_policy(&self) -> OutboundPolicy {
        let mut allow = self.outbound_allow.clone();
        if self.webhook_allow_http_loopback {
            allow.extend(LOOPBACK.iter().filter_map(|net| net.parse::<IpNet>().ok()));
        }
        OutboundPolicy::allowing(allow)
    }

    /// Lets the gateway reach this machine (127.0.0.0/8 and ::1): how tests and local labs
    /// (the mail and calendar labs, webhook receivers, push stand-ins) are reached.
    pub fn allow_loopback(&mut self) {
        self.outbound_allow.extend(LOOPBACK.iter().filter_map(|net| net.parse::<IpNet>().ok()));
    }

    /// The URL clients reach the gateway at: the configured one, or `http://<bind>`.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.bind)).trim_end_matches('/').to_owned()
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| crate::db::Db::default_url(&self.data_dir))
    }
}

impl Cli {
    /// The command to run: `serve` when none is given.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.config))
    }
}

/// This machine, as ranges of the outbound allow list.
const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1/128"];

/// One name server of `CONCIERGE_DNS_SERVERS`: an address, with port 53 unless one is given.
fn parse_name_server(item: &str) -> Result<SocketAddr, String> {
    let item = item.trim();
    item.parse::<SocketAddr>()
        .or_else(|_| item.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{item:?} is not a name server address (ip or ip:port)"))
}

/// One range of `CONCIERGE_OUTBOUND_ALLOW`: a CIDR, or a bare address.
fn parse_cidr(item: &str) -> Result<IpNet, String> {
    concierge_connector_sdk::outbound::parse_range(item)
}
