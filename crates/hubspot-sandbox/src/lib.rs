//! A stateful local emulator of the HubSpot CRM API subset paybridge uses, plus
//! the few Stripe API reads that `replay` and `backfill` need.
//!
//! Start one with [`Sandbox::spawn`] (tests; binds `127.0.0.1:0`) or [`run`]
//! (the `paybridge sandbox` command). Every HubSpot call goes through
//! [`auth::gate`]: correlation id → faults → bearer token → rate limits →
//! scope → handler; the control API under `/_sandbox/` skips all of that.
//!
//! Rate-limit windows, search-index lag and outages run on tokio's clock: a
//! test on a paused runtime (`#[tokio::test(start_paused = true)]`) moves
//! them with `tokio::time::advance` instead of sleeping. Timestamps shown to
//! clients are wall-clock time.
//!
//! The sandbox keeps its own request and response types: it never shares them
//! with paybridge's client, so a serialisation bug there fails a test instead of
//! being mirrored here.

mod account;
mod associations;
mod auth;
mod behaviour;
mod clock;
mod control;
mod error;
mod faults;
mod inbox;
mod limits;
mod lists;
mod objects;
mod owners;
mod pipelines;
mod properties;
mod requirements;
mod search;
mod seed;
mod state;
mod stripe;
mod workflows;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use account::Account;
pub use behaviour::{
    BackwardLifecycle, Behaviour, MappingFields, MergedRead, RichText, TicketScopes, UniqueClash,
};
pub use faults::{Faults, LostAs};
pub use seed::{
    Seed, SeedCondition, SeedList, SeedOwner, SeedPipeline, SeedRecord, SeedRequirement, SeedStage,
    SeedStripe, SeedStripeEvent, SeedToken, SeedWorkflow,
};
pub use stripe::{StripeBehaviour, WildcardTypes};

use state::Shared;

/// How a sandbox behaves. `Default` is what tests want: HubSpot's free/starter
/// limits, no search lag, the default seed, no faults.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The bearer token that is granted every scope.
    pub token: String,
    /// Size of the rolling 10-second window per token (HubSpot free/starter: 100).
    pub requests_per_10s: u32,
    /// Search requests per second per token (HubSpot: 5).
    pub search_per_s: u32,
    /// Calls per day per token (HubSpot free/starter: 250,000).
    pub daily_limit: u64,
    /// How long after a write the record becomes visible to search.
    pub search_lag: Duration,
    /// `None` loads [`Seed::standard`].
    pub seed: Option<Seed>,
    pub faults: Faults,
    /// Answers to what HubSpot's material does not settle (see [`Behaviour`]).
    pub behaviour: Behaviour,
    /// The portal's time zone: its daily limit resets at midnight there.
    pub account: Account,
    /// The Stripe API's rate limit and the switches for what Stripe does not document.
    pub stripe: StripeBehaviour,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            token: "sandbox-token".to_owned(),
            requests_per_10s: 100,
            search_per_s: 5,
            daily_limit: 250_000,
            search_lag: Duration::ZERO,
            seed: None,
            faults: Faults::default(),
            behaviour: Behaviour::default(),
            account: Account::default(),
            stripe: StripeBehaviour::default(),
        }
    }
}

/// A running sandbox. Dropping it stops the server too (without waiting).
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Binds `127.0.0.1:0` and serves in the background.
    pub async fn spawn(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        Sandbox::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub async fn bind(addr: SocketAddr, config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let shared = Arc::new(Shared::new(config)?);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the sandbox to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("reading the sandbox address")?;
        let app = build_router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "sandbox server stopped with an error");
            }
        });
        Ok(Sandbox {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same JSON as `GET /_sandbox/state`.
    pub fn state(&self) -> serde_json::Value {
        control::state_json(&self.shared)
    }

    /// The same JSON as `GET /_sandbox/stats`.
    pub fn stats(&self) -> serde_json::Value {
        control::stats_json(&self.shared)
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.set(faults);
    }

    /// Switches what the sandbox answers where HubSpot's material does not settle it.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.shared.crm().behaviour = behaviour;
    }

    /// The day's budget starts over, as at midnight in the account's time zone.
    pub fn new_day(&self) {
        self.shared.limiter.new_day();
    }

    /// Merges contact `merged` into contact `primary`, as a person does in HubSpot's UI
    /// (as `POST /_sandbox/merge`).
    pub fn merge_contacts(&self, primary: &str, merged: &str) -> anyhow::Result<()> {
        self.shared
            .crm()
            .merge_contacts(primary, merged)
            .map_err(anyhow::Error::msg)
    }

    /// Records an event that Stripe "knows" (served by `GET /v1/events`).
    pub fn record_stripe_event(&self, event: serde_json::Value, delivered: bool) {
        self.shared.crm().stripe.record_event(event, delivered);
    }

    /// Changes how the Stripe side behaves (as `POST /_sandbox/stripe/behaviour`).
    pub fn set_stripe_behaviour(&self, behaviour: StripeBehaviour) {
        self.shared.crm().stripe.traffic.behaviour = behaviour;
    }

    /// Every Stripe API request received so far: `{method, path, query, stripe_version,
    /// stripe_context, status}`, oldest first.
    pub fn stripe_requests(&self) -> Vec<serde_json::Value> {
        self.shared
            .crm()
            .stripe
            .traffic
            .log
            .iter()
            .cloned()
            .collect()
    }

    /// Merges a seed into the current state (as `POST /_sandbox/seed`).
    pub fn merge_seed(&self, seed: Seed) -> anyhow::Result<()> {
        self.shared.merge_seed(&seed).map_err(anyhow::Error::msg)
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Entry point of `paybridge sandbox`: serves on `addr` until `shutdown` resolves.
pub async fn run(
    addr: SocketAddr,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared::new(config)?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the sandbox to {addr}"))?;
    let local = listener
        .local_addr()
        .context("reading the sandbox address")?;
    tracing::info!(url = %format!("http://{local}"), "HubSpot and Stripe sandbox listening");
    axum::serve(listener, build_router(shared))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the sandbox")
}

/// The whole sandbox as a router, for embedding in another server.
pub fn router(config: SandboxConfig) -> anyhow::Result<Router> {
    Ok(build_router(Arc::new(Shared::new(config)?)))
}

fn build_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(auth::hubspot_router(shared.clone()))
        .nest("/v1", stripe::router(shared.clone()))
        .nest("/v2", stripe::v2_router(shared.clone()))
        .nest("/_sandbox", control::router(shared))
}
