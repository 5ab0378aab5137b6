//! `paybridge sandbox`: the local HubSpot (and Stripe API) emulator on its own, until
//! ctrl-c / SIGTERM. Needs no config file.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use hubspot_sandbox::{Sandbox, SandboxConfig, Seed};

use crate::UsageError;
use crate::cli::SandboxArgs;

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    let token = config.token.clone();
    let stop = shutdown_signal()?;
    let sandbox = Sandbox::bind(args.listen, config)
        .await
        .with_context(|| format!("cannot start the sandbox on --listen {}", args.listen))?;
    println!(
        "HubSpot sandbox listening on {} (token {token})",
        display_url(sandbox.addr())
    );
    tracing::info!(
        url = %sandbox.url(),
        requests_per_10s = args.requests_per_10s,
        search_per_s = args.search_per_s,
        search_lag_ms = args.search_lag_ms,
        "sandbox started; control API under /_sandbox/"
    );
    stop.await;
    tracing::info!("shutdown requested; finishing in-flight requests");
    sandbox.shutdown().await;
    Ok(())
}

/// The sandbox's behaviour from the flags; a seed file that cannot be read or used is a
/// usage error (exit 2) naming the file and the problem.
fn config(args: &SandboxArgs) -> anyhow::Result<SandboxConfig> {
    if args.token.trim().is_empty() {
        return Err(UsageError("--token: must not be empty".into()).into());
    }
    for (flag, value) in [
        ("--requests-per-10s", args.requests_per_10s),
        ("--search-per-s", args.search_per_s),
    ] {
        if value == 0 {
            return Err(UsageError(format!("{flag}: must be at least 1")).into());
        }
    }
    let seed = match &args.seed {
        // "reading/parsing the seed file PATH: cause (line, column)"
        Some(path) => {
            Some(Seed::from_file(path).map_err(|e| UsageError(format!("--seed: {e:#}")))?)
        }
        None => None,
    };
    let config = SandboxConfig {
        token: args.token.clone(),
        requests_per_10s: args.requests_per_10s,
        search_per_s: args.search_per_s,
        search_lag: Duration::from_millis(args.search_lag_ms),
        seed,
        ..SandboxConfig::default()
    };
    if let Some(path) = &args.seed {
        // Parsing is not everything: the seed's records must fit together. Building the
        // state once here tells a bad seed (exit 2) from a busy port (exit 1).
        let _checked = hubspot_sandbox::router(config.clone()).map_err(|e| {
            UsageError(format!(
                "--seed {}: the seed is not usable: {e:#}",
                path.display()
            ))
        })?;
    }
    Ok(config)
}

/// `http://127.0.0.1:8089`; a wildcard address is shown as `localhost` (reachable locally).
fn display_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Registers for ctrl-c and SIGTERM now (so a signal sent as soon as the URL is printed is
/// not lost) and returns a future that resolves on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for ctrl-c")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
