//! `paybridge serve`: ingress + workers + admin until SIGTERM / ctrl-c.

use tokio_util::sync::CancellationToken;

use crate::app::{Application, Loaded};
use crate::domain::Clock;

pub async fn run(config: Loaded) -> anyhow::Result<()> {
    let settings = &config.settings;
    let scheme = if settings.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let admin_scheme = if settings.server.admin_tls {
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
    println!("  admin (metrics, API, dashboard):      {admin_scheme}://{admin}/");
    if let Some(url) = app.sandbox_url() {
        println!("  embedded HubSpot sandbox:             {url} (state: {url}/_sandbox/state)");
    }
    if let Some(secret) = app.generated_secret() {
        // The operator needs this secret to sign test events; paybridge generated it for
        // this database and keeps it across restarts. Printed to stdout once, never logged.
        // A configured secret is never printed.
        println!("  sandbox mode: webhook signing secret {}", secret.expose());
    }
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    let stopped = app.run_until_stopped(cancel.clone());
    tokio::pin!(stopped);
    let overdue = async {
        cancel.cancelled().await;
        tokio::time::sleep(SHUTDOWN_LIMIT).await;
    };
    tokio::select! {
        result = &mut stopped => result,
        _ = overdue => {
            // Everything acknowledged is already committed; unfinished jobs are picked up
            // again when their lease ends after the next start.
            tracing::warn!(limit_s = SHUTDOWN_LIMIT.as_secs(), "shutdown took too long; exiting with work unfinished");
            anyhow::bail!("shutdown did not finish within {} s", SHUTDOWN_LIMIT.as_secs())
        }
    }
}

/// How long `serve` may take to stop after SIGTERM or ctrl-c (orchestrators commonly send
/// SIGKILL after 30 s).
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(25);

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
