//! The application as a value: `build` opens the store, builds the services (HubSpot: the
//! embedded sandbox in sandbox mode), binds the listeners (port 0 in tests) and reports the
//! ports; `run_until_stopped` serves and works until the token is cancelled, then finishes
//! in-flight requests and jobs and commits everything acknowledged. `backfill --here` runs
//! the same application without listeners.

pub mod load;
pub mod services;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use hubspot_sandbox::{Sandbox, SandboxConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::basics::Secret;
use crate::catchup::reconcile::{Reconciler, Repairs};
use crate::catchup::replay::Replayer;
use crate::config::Settings;
use crate::domain::Clock;
use crate::http::{
    AdminState, DashboardState, PublicState, admin_router, dashboard_router, public_router,
};
use crate::store::Store;
use crate::worker::{Pipeline, Pool};
pub use load::Loaded;
pub use services::Services;

/// Choices tests and commands make; `serve` uses the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run the background claim loop (tests drive `worker::drain` instead).
    pub run_workers: bool,
    /// Bind the listeners and run what `serve` runs beside the workers (scheduled replay,
    /// payload retention). `backfill --here` only works the queue.
    pub listen: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            run_workers: true,
            listen: true,
        }
    }
}

pub struct Application {
    settings: Settings,
    services: Services,
    /// None when not listening ([`Options::listen`]).
    listeners: Option<Listeners>,
    webhook_secrets: Arc<Vec<Secret>>,
    /// The webhook secret was generated here (sandbox mode without a configured one).
    generated_secret: bool,
    options: Options,
    /// The embedded HubSpot sandbox of sandbox mode (kept alive with the app).
    sandbox: Option<Sandbox>,
}

struct Listeners {
    public: TcpListener,
    admin: TcpListener,
    /// HTTPS for the public listener (`server.tls_cert` / `server.tls_key`), reloaded when
    /// the files change.
    tls: Option<Arc<crate::http::tls::Certificate>>,
    /// Connections the public listener holds at once (what the open-files limit allows).
    max_connections: usize,
}

/// Connections the admin listener holds at once.
const ADMIN_MAX_CONNECTIONS: usize = 256;
/// Descriptors kept free beside the listeners' connections (store, HTTP clients, files).
const RESERVED_DESCRIPTORS: u64 = 512;

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
        let store =
            Store::open_with(&settings.store.url, clock.clone(), settings.store.pool_size).await?;
        let mut secrets = settings.stripe.webhook_secrets.clone();
        let generated_secret = secrets.is_empty() && options.listen;
        if generated_secret {
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
        let services = Services::build(&settings, rules, store, clock)?;
        services.resume_thin_events().await?;
        if sandbox.is_some() {
            let defs = crate::ops::setup::definitions(&settings, &services.rules);
            crate::ops::setup::ensure(services.hubspot(), &defs, false)
                .await
                .context("cannot create paybridge's properties in the embedded sandbox")?;
        }
        let listeners = if options.listen {
            Some(Listeners::bind(&settings).await?)
        } else {
            None
        };
        Ok(Self {
            settings,
            services,
            listeners,
            webhook_secrets: Arc::new(secrets),
            generated_secret,
            options,
            sandbox,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.listeners
            .as_ref()
            .and_then(|l| l.public.local_addr().ok())
            .unwrap_or(self.settings.server.listen)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.listeners
            .as_ref()
            .and_then(|l| l.admin.local_addr().ok())
            .unwrap_or(self.settings.server.admin_listen)
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn store(&self) -> &Store {
        &self.services.store
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.services.pipeline
    }

    /// The embedded sandbox's URL, in sandbox mode.
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(Sandbox::url)
    }

    /// The secrets webhooks are verified with (the generated one in sandbox mode).
    pub fn webhook_secrets(&self) -> &[Secret] {
        &self.webhook_secrets
    }

    /// The webhook secret paybridge generated (sandbox mode without a configured one): the
    /// only secret `serve` ever prints.
    pub fn generated_secret(&self) -> Option<&Secret> {
        if self.generated_secret {
            self.webhook_secrets.first()
        } else {
            None
        }
    }

    /// Serves (when listening) and works until `cancel`, then finishes in-flight requests
    /// and jobs, stores the HubSpot call counts and commits everything acknowledged.
    pub async fn run_until_stopped(mut self, cancel: CancellationToken) -> anyhow::Result<()> {
        let store = self.services.store.clone();
        let counts = self.services.hubspot().call_counts();
        let mut tasks: Vec<JoinHandle<()>> = vec![tokio::spawn(crate::ops::usage::run(
            store.clone(),
            counts.clone(),
            cancel.clone(),
        ))];
        if self.options.run_workers {
            let pool = Pool::new(self.services.pipeline.clone());
            tasks.push(tokio::spawn(pool.run(cancel.clone())));
        }
        let served = match self.listeners.take() {
            Some(listeners) => {
                tasks.extend(self.spawn_housekeeping(&cancel));
                self.serve(listeners, &cancel).await
            }
            None => {
                cancel.cancelled().await;
                Ok(())
            }
        };
        for task in tasks {
            let _ = task.await;
        }
        crate::ops::usage::flush(&store, &counts).await;
        // Every request has been answered; commit whatever intake still holds.
        store.close().await;
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
        served?;
        tracing::info!("stopped");
        Ok(())
    }

    /// The replay behind `POST /api/replay` and the schedule (None without a Stripe key).
    fn replayer(&self) -> Option<Replayer> {
        let api = self.services.stripe.clone()?;
        Some(Replayer::new(api, self.services.intake.clone()))
    }

    /// What runs beside the listeners: payload retention, the scheduled replay
    /// (`[stripe] replay_every`) and the scheduled reconcile (`[stripe] reconcile_every`).
    fn spawn_housekeeping(&self, cancel: &CancellationToken) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(crate::ops::maintenance::run(
            self.services.store.clone(),
            self.settings.store.payload_retention_days,
            cancel.clone(),
        ))];
        if let (Some(replayer), Some(every)) = (self.replayer(), self.settings.stripe.replay_every)
        {
            tasks.push(tokio::spawn(replayer.schedule(every, cancel.clone())));
        }
        if let (Some(api), Some(every)) = (
            self.services.stripe.clone(),
            self.settings.stripe.reconcile_every,
        ) {
            let reconciler = Reconciler::new(
                api,
                self.services.hubspot().clone(),
                self.services.store.clone(),
                &self.settings.contacts.id_property,
                Some(Repairs::new(
                    self.services.intake.clone(),
                    self.settings.contacts.follow_email,
                )),
            );
            tasks.push(tokio::spawn(reconciler.schedule(
                every,
                crate::ops::singleton::holder_name(),
                cancel.clone(),
            )));
        }
        tasks
    }

    /// The public and admin listeners, until `cancel`.
    async fn serve(&self, listeners: Listeners, cancel: &CancellationToken) -> anyhow::Result<()> {
        use crate::http::listener::{Limits, serve};
        let throttle = Arc::new(crate::http::throttle::Throttle::default());
        let public_state = PublicState {
            intake: self.services.intake.clone(),
            secrets: self.webhook_secrets.clone(),
            tolerance_secs: self.settings.stripe.tolerance_secs,
            max_body_bytes: self.settings.server.max_body_bytes,
            clock: self.services.store.clock().clone(),
        };
        let admin_state = AdminState {
            store: self.services.store.clone(),
            token: self.settings.server.admin_token.clone(),
            open: self.settings.sandbox_mode,
            replayer: self.replayer(),
            throttle: throttle.clone(),
        };
        let acceptor = match &listeners.tls {
            Some(cert) => {
                tokio::spawn(cert.clone().watch(cancel.clone()));
                Some(cert.acceptor()?)
            }
            None => None,
        };
        let admin_acceptor = acceptor.clone().filter(|_| self.settings.server.admin_tls);
        let public = serve(
            listeners.public,
            acceptor,
            public_router(public_state),
            Limits::new(listeners.max_connections, &self.settings.server.timeouts),
            cancel.clone(),
        );
        let dashboard = DashboardState::new(
            self.services.store.clone(),
            &self.settings,
            self.services.hubspot().call_counts(),
            throttle,
        );
        let admin = serve(
            listeners.admin,
            admin_acceptor,
            admin_router(admin_state).merge(dashboard_router(dashboard)),
            Limits::new(ADMIN_MAX_CONNECTIONS, &self.settings.server.timeouts),
            cancel.clone(),
        );
        let (public, admin) = tokio::join!(public, admin);
        public.context("public listener failed")?;
        admin.context("admin listener failed")?;
        Ok(())
    }
}

impl Listeners {
    /// `server.listen` (HTTPS with `server.tls_cert` / `server.tls_key`) and
    /// `server.admin_listen`.
    async fn bind(settings: &Settings) -> anyhow::Result<Self> {
        let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
            (Some(cert), Some(key)) => Some(crate::http::tls::Certificate::load(cert, key)?),
            _ => None,
        };
        let max_connections = crate::http::listener::fit_connections(
            settings.server.max_connections,
            RESERVED_DESCRIPTORS + ADMIN_MAX_CONNECTIONS as u64,
        );
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
            public,
            admin,
            tls,
            max_connections,
        })
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
