//! Settings: defaults → TOML file → `PAYBRIDGE_<SECTION>__<KEY>` environment overrides,
//! secrets resolved, every problem reported at once with its path and a hint. Knows
//! nothing of rules: it hands `[[rules]]` and `[sequences]` on as written.

mod load;
mod safety;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{Read, locate, read, read_as};

use crate::basics::Secret;
use crate::hubspot::ApiVersion;

/// The commented starter config `paybridge init` writes: every key, every playbook.
pub const STARTER: &str = include_str!("starter.toml");

/// The example secrets the starter config ships with (and those of earlier starters):
/// fine against the embedded sandbox, refused next to a real HubSpot token.
pub const EXAMPLE_SECRETS: &[&str] = &[
    "example-admin-token-change-me-before-going-live",
    "change-me-admin-token",
    "whsec_replace_me_with_your_endpoint_secret",
    "replace-me-provisioning-secret",
];

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub stripe: StripeSettings,
    pub hubspot: HubspotSettings,
    pub contacts: ContactsSettings,
    pub worker: WorkerSettings,
    pub alerts: AlertSettings,
    pub report: ReportSettings,
    pub outbound: OutboundSettings,
    /// `serve --sandbox`, or no config file and no secret in the environment: embedded
    /// HubSpot sandbox, generated webhook secret, admin open on loopback without a token.
    pub sandbox_mode: bool,
    /// The file the settings came from, if any.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub admin_token: Option<Secret>,
    pub max_body_bytes: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Connections the public listener holds at once; more are answered 503.
    pub max_connections: usize,
    /// Serve the admin listener over HTTPS too (with `tls_cert` / `tls_key`).
    pub admin_tls: bool,
    /// The listeners' time bounds: fixed (not config keys); tests shorten them.
    pub timeouts: Timeouts,
}

/// How long a client may take: headers (and a TLS handshake), the body after them, an
/// idle connection; and how long open connections get to finish on shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub body: Duration,
    pub idle: Duration,
    pub shutdown: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header: Duration::from_secs(10),
            body: Duration::from_secs(15),
            idle: Duration::from_secs(30),
            shutdown: Duration::from_secs(20),
        }
    }
}

/// Where rules and alerts may send requests (`call_webhook`, `notify_slack`, Slack alerts).
#[derive(Debug, Clone, Default)]
pub struct OutboundSettings {
    /// `host` or `host:port` entries. Empty: any host with a public address. Listed
    /// hosts may also be private (loopback, RFC 1918…), which are refused otherwise.
    pub allow_hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub url: String,
    pub payload_retention_days: u32,
    /// Postgres: connections each replica opens for reads (besides one for writes and two
    /// for the shared HubSpot budget). Unused on SQLite.
    pub pool_size: u32,
}

#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// Empty only in sandbox mode, where a generated secret is used.
    pub webhook_secrets: Vec<Secret>,
    pub tolerance_secs: i64,
    pub api_key: Option<Secret>,
    pub api_base: String,
    pub replay_every: Option<Duration>,
    /// Sent as `Stripe-Version` on every API request (default: the version paybridge's
    /// reading of objects and its fixtures model).
    pub api_version: String,
    /// Paybridge's own budget for Stripe's API (Stripe allows 25 per endpoint, shared with
    /// the merchant's own application).
    pub requests_per_s: u32,
    /// `paybridge reconcile --fix` on a schedule (off by default), on one replica at a time.
    pub reconcile_every: Option<Duration>,
    /// The share of HubSpot's request budget a scheduled reconcile's reads may use (0.3).
    pub reconcile_budget_share: f64,
}

#[derive(Debug, Clone)]
pub struct HubspotSettings {
    /// Absent only in sandbox mode, where the embedded sandbox's token is used.
    pub token: Option<Secret>,
    pub api_base: String,
    pub api_version: ApiVersion,
    pub requests_per_10s: u32,
    pub search_per_s: u32,
    pub portal_id: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ContactsSettings {
    pub id_property: String,
    pub match_email: bool,
    pub create_missing: bool,
    /// Lifecycle stages (internal ids) in their forward order: paybridge never writes an
    /// earlier one. HubSpot's default order unless the portal has custom stages.
    pub lifecycle_stages: Vec<String>,
    /// A changed Stripe email (and name) is written to the contact; a collision with
    /// another contact's email is `needs_attention`, never an overwrite.
    pub follow_email: bool,
}

/// HubSpot's default lifecycle stages, in their forward order (their internal values, as
/// the contacts lifecycle pipeline lists them by `displayOrder`).
pub const HUBSPOT_LIFECYCLE_STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerMode {
    Live,
    /// Plan and record every action, write nothing anywhere.
    Shadow,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs in flight at once. Many in flight let HubSpot calls batch (up to 100 records
    /// per call); a customer's jobs still run one at a time, in order.
    pub concurrency: usize,
    pub max_attempts: u32,
    pub mode: WorkerMode,
    /// First retry delay ceiling; doubles per attempt (full jitter) up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a claimed job stays claimed without renewal; a crashed process's jobs are
    /// picked up again after this.
    pub lease: Duration,
}

#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub slack_webhook_url: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Minutes a person would have spent per action, by action type; `default` for the rest.
    pub minutes_per_action: BTreeMap<String, f64>,
}

impl Settings {
    /// Built-in defaults (SPEC §5), before any file or environment.
    pub fn defaults() -> Self {
        Self {
            server: ServerSettings {
                listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
                admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
                admin_token: None,
                max_body_bytes: 1_048_576,
                tls_cert: None,
                tls_key: None,
                max_connections: 4_096,
                admin_tls: false,
                timeouts: Timeouts::default(),
            },
            store: StoreSettings {
                url: "sqlite://paybridge.db".into(),
                payload_retention_days: 30,
                pool_size: crate::store::DEFAULT_POOL_SIZE,
            },
            stripe: StripeSettings {
                webhook_secrets: Vec::new(),
                tolerance_secs: 300,
                api_key: None,
                api_base: "https://api.stripe.com".into(),
                replay_every: None,
                api_version: crate::stripe::api::DEFAULT_API_VERSION.into(),
                requests_per_s: crate::stripe::api::DEFAULT_REQUESTS_PER_S,
                reconcile_every: None,
                reconcile_budget_share: 0.3,
            },
            hubspot: HubspotSettings {
                token: None,
                api_base: "https://api.hubapi.com".into(),
                api_version: ApiVersion::Dated2026_09,
                requests_per_10s: 90,
                search_per_s: 4,
                portal_id: None,
            },
            contacts: ContactsSettings {
                id_property: "stripe_customer_id".into(),
                match_email: true,
                create_missing: true,
                lifecycle_stages: HUBSPOT_LIFECYCLE_STAGES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                follow_email: true,
            },
            worker: WorkerSettings {
                concurrency: 500,
                max_attempts: 12,
                mode: WorkerMode::Live,
                backoff_base: Duration::from_secs(5),
                backoff_max: Duration::from_secs(3_600),
                lease: Duration::from_secs(30),
            },
            alerts: AlertSettings {
                slack_webhook_url: None,
            },
            report: ReportSettings {
                minutes_per_action: BTreeMap::from([("default".to_owned(), 3.0)]),
            },
            outbound: OutboundSettings::default(),
            sandbox_mode: false,
            file: None,
        }
    }
}
