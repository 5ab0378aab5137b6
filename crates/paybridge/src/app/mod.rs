//! The application as a value: `build` opens the store, connects HubSpot (the embedded
//! sandbox in sandbox mode), binds the listeners (port 0 in tests) and reports the ports;
//! `run_until_stopped` serves and works until the token is cancelled, then finishes
//! in-flight requests and jobs and commits everything acknowledged.

pub mod load;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use hubspot_sandbox::{Sandbox, SandboxConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::basics::Secret;
use crate::catchup::replay::Replayer;
use crate::config::Settings;
use crate::domain::Clock;
use crate::http::{
    AdminState, DashboardState, PublicState, admin_router, dashboard_router, public_router,
};
use crate::hubspot::HubSpot;
use crate::rules::RuleSet;
use crate::store::Store;
use crate::stripe::api::StripeApi;
use crate::worker::{Pipeline, Pool};

pub use load::Loaded;

/// Choices tests make; `serve` uses the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run the background claim loop (tests drive `worker::drain` instead).
    pub run_workers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { run_workers: true }
    }
}

pub struct Application {
    settings: Settings,
    rules: Arc<RuleSet>,
    store: Store,
    pipeline: Pipeline,
    public: TcpListener,
    admin: TcpListener,
    webhook_secrets: Arc<Vec<Secret>>,
    clock: Clock,
    options: Options,
    /// The embedded HubSpot sandbox of sandbox mode (kept alive with the app).
    sandbox: Option<Sandbox>,
    /// HTTPS for the public listener (`server.tls_cert` / `server.tls_key`).
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Where the generated sandbox-mode webhook secret is kept (so it survives restarts).
const SANDBOX_SECRET_KEY: &str = "sandbox_webhook_secret";

impl Application {
    pub async fn build(config: Loaded, clock: Clock) -> anyhow::Result<Self> {
        Self::build_with(config, clock, Options::default()).await
    }

    pub async fn build_with(
        config: Loaded,
        clock: Clock,
        options: Options,
    ) -> anyhow::Result<Self> {
        let Loaded {
            mut settings,
            rules,
        } = config;
        // Installed before any work, so nothing counted before the first scrape is lost.
        crate::telemetry::metrics();
        let store = Store::open(&settings.store.url, clock.clone()).await?;
        let mut secrets = settings.stripe.webhook_secrets.clone();
        if secrets.is_empty() {
            let generated = format!("whsec_{}", crate::domain::random_hex(24));
            let kept = store
                .meta_get_or_insert(SANDBOX_SECRET_KEY, &generated)
                .await
                .context("cannot keep the generated webhook secret")?;
            secrets.push(Secret::new(kept));
        }
        let sandbox = if settings.hubspot.token.is_none() {
            // Sandbox mode: a local HubSpot, so the playbooks can be tried without an account.
            let sandbox = spawn_embedded_sandbox().await?;
            settings.hubspot.api_base = sandbox.url();
            settings.hubspot.token = Some(Secret::new(SandboxConfig::default().token));
            Some(sandbox)
        } else {
            None
        };
        let token = settings
            .hubspot
            .token
            .clone()
            .context("hubspot.token is required")?;
        let hubspot = HubSpot::new(
            &settings.hubspot.api_base,
            token,
            settings.hubspot.api_version,
            settings.hubspot.requests_per_10s,
            settings.hubspot.search_per_s,
            &settings.contacts.id_property,
        )?;
        if sandbox.is_some() {
            let defs = crate::ops::setup::definitions(&settings, &rules);
            crate::ops::setup::ensure(&hubspot, &defs, false)
                .await
                .context("cannot create paybridge's properties in the embedded sandbox")?;
        }
        let pipeline = Pipeline::new(
            &settings,
            rules.clone(),
            store.clone(),
            hubspot,
            clock.clone(),
        )?;
        let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
            (Some(cert), Some(key)) => Some(crate::http::tls::acceptor(cert, key)?),
            _ => None,
        };
        let public = TcpListener::bind(settings.server.listen)
            .await
            .with_context(|| {
                format!("cannot listen on server.listen {}", settings.server.listen)
            })?;
        let admin = TcpListener::bind(settings.server.admin_listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on server.admin_listen {}",
                    settings.server.admin_listen
                )
            })?;
        Ok(Self {
            settings,
            rules,
            store,
            pipeline,
            public,
            admin,
            webhook_secrets: Arc::new(secrets),
            clock,
            options,
            sandbox,
            tls,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .unwrap_or(self.settings.server.listen)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .unwrap_or(self.settings.server.admin_listen)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The embedded sandbox's URL, in sandbox mode.
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(Sandbox::url)
    }

    /// The secrets webhooks are verified with (the generated one in sandbox mode).
    pub fn webhook_secrets(&self) -> &[Secret] {
        &self.webhook_secrets
    }

    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let handled = Arc::new(self.rules.handled_types());
        let public_state = PublicState {
            store: self.store.clone(),
            secrets: self.webhook_secrets.clone(),
            tolerance_secs: self.settings.stripe.tolerance_secs,
            max_body_bytes: self.settings.server.max_body_bytes,
            clock: self.clock.clone(),
            handled: handled.clone(),
        };
        let replayer = match &self.settings.stripe.api_key {
            Some(key) => Some(Replayer::new(
                StripeApi::new(&self.settings.stripe.api_base, key.clone())?,
                self.store.clone(),
                handled,
            )),
            None => None,
        };
        let scheduled_replay = match (&replayer, self.settings.stripe.replay_every) {
            (Some(replayer), Some(every)) => Some(tokio::spawn(
                replayer.clone().schedule(every, cancel.clone()),
            )),
            _ => None,
        };
        let admin_state = AdminState {
            store: self.store.clone(),
            token: self.settings.server.admin_token.clone(),
            open: self.settings.sandbox_mode,
            replayer,
        };
        let call_counts = self.pipeline.hubspot().call_counts();
        let usage = tokio::spawn(crate::ops::usage::run(
            self.store.clone(),
            call_counts.clone(),
            cancel.clone(),
        ));
        let workers = self
            .options
            .run_workers
            .then(|| tokio::spawn(Pool::new(self.pipeline.clone()).run(cancel.clone())));
        let maintenance = tokio::spawn(crate::ops::maintenance::run(
            self.store.clone(),
            self.settings.store.payload_retention_days,
            cancel.clone(),
        ));
        let public = async {
            match &self.tls {
                Some(acceptor) => {
                    crate::http::tls::serve(
                        self.public,
                        acceptor.clone(),
                        public_router(public_state),
                        cancel.clone(),
                    )
                    .await
                }
                None => axum::serve(self.public, public_router(public_state))
                    .with_graceful_shutdown(cancel.clone().cancelled_owned())
                    .await
                    .map_err(anyhow::Error::from),
            }
        };
        let dashboard = DashboardState::new(self.store.clone(), &self.settings);
        let admin = axum::serve(
            self.admin,
            admin_router(admin_state).merge(dashboard_router(dashboard)),
        )
        .with_graceful_shutdown(cancel.clone().cancelled_owned());
        let (public, admin) = tokio::join!(public, admin);
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        let _ = maintenance.await;
        if let Some(replay) = scheduled_replay {
            let _ = replay.await;
        }
        let _ = usage.await;
        crate::ops::usage::flush(&self.store, &call_counts).await;
        // Every request has been answered; commit whatever intake still holds.
        self.store.close().await;
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
        public.context("public listener failed")?;
        admin.context("admin listener failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Where sandbox mode puts its embedded sandbox: a fixed, known address, so that the
/// starter config's example Slack and provisioning URLs (its `/_sandbox/inbox/…`) reach it.
pub const EMBEDDED_SANDBOX_ADDR: &str = "127.0.0.1:8089";

/// The embedded sandbox on [`EMBEDDED_SANDBOX_ADDR`], or on a free port when that one is
/// taken (then the example URLs pointing at 8089 reach nothing, and a warning says so).
async fn spawn_embedded_sandbox() -> anyhow::Result<Sandbox> {
    let config = SandboxConfig {
        search_lag: std::time::Duration::from_millis(1_000),
        ..SandboxConfig::default()
    };
    let preferred: SocketAddr = EMBEDDED_SANDBOX_ADDR
        .parse()
        .context("the embedded sandbox address")?;
    match Sandbox::bind(preferred, config.clone()).await {
        Ok(sandbox) => Ok(sandbox),
        Err(e) => {
            let sandbox = Sandbox::spawn(config)
                .await
                .context("cannot start the embedded HubSpot sandbox")?;
            tracing::warn!(
                error = %format!("{e:#}"),
                url = %sandbox.url(),
                "{EMBEDDED_SANDBOX_ADDR} is taken; the embedded HubSpot sandbox runs on another port, so example URLs pointing at {EMBEDDED_SANDBOX_ADDR} reach nothing"
            );
            Ok(sandbox)
        }
    }
}
