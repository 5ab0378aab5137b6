//! Workers: claim jobs (leases, per-customer lanes), run an event's plan through HubSpot,
//! record every step, retry with backoff, dead-letter with an alert.
//!
//! A run (`job`) reads, then plans, then acts (`process`): it reads the fact, the
//! customer's profile and lifetime value (`read`); the rules plan keyed steps; the contact
//! is resolved (`resolve`) and each step executed exactly once through its step context
//! (`step`, `execute`, `create`, `sequences`).

mod alert;
mod create;
mod execute;
mod job;
mod lifecycle;
mod outage;
pub mod outbound;
mod pool;
mod process;
mod read;
mod resolve;
mod retry;
mod sequences;
mod step;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Settings, WorkerMode};
use crate::domain::Clock;
use crate::hubspot::{HubSpot, HubspotError};
use crate::rules::RuleSet;
use crate::store::{Store, StoreError};
use crate::stripe::api::{StripeApi, StripeApiError};

pub use alert::Alerter;
pub use pool::{Pool, drain, run_due};
pub use read::PRODUCT_TTL_MS;
pub use retry::Backoff;

/// Everything a run needs; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    hubspot: HubSpot,
    stripe: Option<StripeApi>,
    alerter: Option<Alerter>,
    clock: Clock,
    worker_id: String,
    id_property: String,
    match_email: bool,
    create_missing: bool,
    follow_email: bool,
    /// One product read from Stripe at a time: many workers missing the cache for the same
    /// product wait for the first one's answer instead of all asking Stripe.
    product_reads: tokio::sync::Mutex<()>,
    max_attempts: i64,
    backoff: Backoff,
    mode: WorkerMode,
    concurrency: usize,
    /// Outbound calls: Slack, provisioning endpoints (no redirects, address-checked).
    http: reqwest::Client,
    outbound: outbound::Policy,
    ruleset: Arc<RuleSet>,
    lease: Duration,
    /// Lifecycle stages in their forward order (`[contacts] lifecycle_stages`).
    lifecycle_stages: Vec<String>,
    /// Jobs waiting for HubSpot to come back, released when it does (`outage`).
    waiting_on_hubspot: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// The HubSpot client's recoveries already acted on.
    recoveries_seen: std::sync::atomic::AtomicU64,
}

impl Pipeline {
    /// `stripe` reads the email of a customer an event names without one (None without a key).
    pub fn new(
        settings: &Settings,
        rules: Arc<RuleSet>,
        store: Store,
        hubspot: HubSpot,
        stripe: Option<StripeApi>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let outbound = outbound::Policy::new(&settings.outbound);
        let alerter = match &settings.alerts.slack_webhook_url {
            Some(url) => Some(Alerter::new(url.clone(), &outbound)?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                hubspot,
                stripe,
                alerter,
                clock,
                worker_id: format!("{}-{}", hostname(), crate::domain::random_hex(4)),
                id_property: settings.contacts.id_property.clone(),
                match_email: settings.contacts.match_email,
                create_missing: settings.contacts.create_missing,
                follow_email: settings.contacts.follow_email,
                product_reads: tokio::sync::Mutex::new(()),
                max_attempts: i64::from(settings.worker.max_attempts),
                backoff: Backoff {
                    base: settings.worker.backoff_base,
                    max: settings.worker.backoff_max,
                },
                mode: settings.worker.mode,
                concurrency: settings.worker.concurrency,
                ruleset: rules,
                lease: settings.worker.lease,
                lifecycle_stages: settings.contacts.lifecycle_stages.clone(),
                waiting_on_hubspot: Default::default(),
                recoveries_seen: Default::default(),
                http: outbound.client()?,
                outbound,
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn hubspot(&self) -> &HubSpot {
        &self.inner.hubspot
    }
}

pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "paybridge".into())
}

/// Why a run did not finish.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkError {
    #[error("{0}")]
    Hubspot(#[from] HubspotError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Stripe(#[from] StripeApiError),
    /// Retrying cannot help (unreadable payload, …).
    #[error("{0}")]
    Terminal(String),
    /// A person must decide (e.g. the email belongs to another contact).
    #[error("{message}")]
    NeedsAttention {
        message: String,
        contact_id: Option<String>,
    },
    /// Worth another attempt soon (e.g. the contact vanished and must be resolved again).
    #[error("{0}")]
    Again(String),
}

impl WorkError {
    fn is_terminal(&self) -> bool {
        match self {
            Self::Hubspot(e) => e.is_terminal(),
            Self::Stripe(StripeApiError::Refused { .. }) | Self::Terminal(_) => true,
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Hubspot(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// The timeline of one attempt: sentences, logged as they happen and stored at the end.
pub(crate) struct Log {
    clock: Clock,
    lines: Vec<(i64, String)>,
}

impl Log {
    fn new(clock: Clock) -> Self {
        Self {
            clock,
            lines: Vec::new(),
        }
    }

    fn say(&mut self, message: impl Into<String>) {
        let message = message.into();
        tracing::info!("{message}");
        self.lines.push((self.clock.now_ms(), message));
    }
}
