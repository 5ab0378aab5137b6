//! `paybridge serve`: ingress + workers + admin until SIGTERM / ctrl-c.

use tokio_util::sync::CancellationToken;

use crate::app::{Application, Loaded};
use crate::domain::Clock;

pub async fn run(config: Loaded) -> anyhow::Result<()> {
    let settings = &config.settings;
    let sandbox_mode = settings.sandbox_mode;
    let scheme = if settings.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let app = Application::build(config, Clock::system()).await?;
    let public = app.public_addr();
    let admin = app.admin_addr();
    let host = if public.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        public.ip().to_string()
    };
    println!("paybridge is running");
    println!(
        "  webhook endpoint (give it to Stripe): {scheme}://{host}:{}/webhooks/stripe",
        public.port()
    );
    println!("  admin (metrics, API, dashboard):      http://{admin}/");
    if let Some(url) = app.sandbox_url() {
        println!("  embedded HubSpot sandbox:             {url} (state: {url}/_sandbox/state)");
    }
    if sandbox_mode && let Some(secret) = app.webhook_secrets().first() {
        // The operator needs this secret to sign test events; it is generated for this
        // database and kept across restarts. Printed to stdout once, never logged.
        println!(
            "  sandbox mode (no config file): webhook signing secret {}",
            secret.expose()
        );
    }
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    app.run_until_stopped(cancel).await
}

async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight work");
    cancel.cancel();
}
