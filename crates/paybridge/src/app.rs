//! The application as a value: `build` opens the store and binds the listeners (port 0 in
//! tests) and reports the ports; `run_until_stopped` serves until the token is cancelled,
//! then finishes in-flight requests and commits everything acknowledged.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Secret, Settings};
use crate::domain::Clock;
use crate::http::{AdminState, PublicState, admin_router, public_router};
use crate::rules::{FINANCIAL_TYPES, TypePatterns};
use crate::store::Store;

pub struct Application {
    settings: Settings,
    store: Store,
    public: TcpListener,
    admin: TcpListener,
    webhook_secrets: Arc<Vec<Secret>>,
    clock: Clock,
}

/// Where the generated sandbox-mode webhook secret is kept (so it survives restarts).
const SANDBOX_SECRET_KEY: &str = "sandbox_webhook_secret";

impl Application {
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let store = Store::open(&settings.store.url, clock.clone()).await?;
        let mut secrets = settings.stripe.webhook_secrets.clone();
        if secrets.is_empty() {
            let generated = format!("whsec_{}", random_hex(24));
            let kept = store
                .meta_get_or_insert(SANDBOX_SECRET_KEY, &generated)
                .await
                .context("cannot keep the generated webhook secret")?;
            secrets.push(Secret::new(kept));
        }
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
            store,
            public,
            admin,
            webhook_secrets: Arc::new(secrets),
            clock,
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

    /// The secrets webhooks are verified with (the generated one in sandbox mode).
    pub fn webhook_secrets(&self) -> &[Secret] {
        &self.webhook_secrets
    }

    pub async fn run_until_stopped(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let handled = TypePatterns::new(FINANCIAL_TYPES.iter().copied());
        let public_state = PublicState {
            store: self.store.clone(),
            secrets: self.webhook_secrets.clone(),
            tolerance_secs: self.settings.stripe.tolerance_secs,
            max_body_bytes: self.settings.server.max_body_bytes,
            clock: self.clock.clone(),
            handled: Arc::new(handled),
        };
        let admin_state = AdminState {
            store: self.store.clone(),
            token: self.settings.server.admin_token.clone(),
            open: self.settings.sandbox_mode,
        };
        let public = axum::serve(self.public, public_router(public_state))
            .with_graceful_shutdown(cancel.clone().cancelled_owned());
        let admin = axum::serve(self.admin, admin_router(admin_state))
            .with_graceful_shutdown(cancel.clone().cancelled_owned());
        let (public, admin) = tokio::join!(public, admin);
        // Every request has been answered; commit whatever intake still holds.
        self.store.close().await;
        public.context("public listener failed")?;
        admin.context("admin listener failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}
