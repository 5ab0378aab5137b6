//! `paybridge backfill [--limit N] [--resume] [--here]`: bring Stripe's existing customers
//! and their current subscriptions into HubSpot (see `crate::catchup::backfill`).
//!
//! Who runs the queued events: a `paybridge serve` answering on `server.listen` does (its
//! rate limiter then shares the HubSpot budget between the backfill and live webhooks);
//! otherwise, or with `--here`, this process runs the workers itself: the application of
//! `serve` without its listeners (same pipeline, limiter and batchers). Either way the command waits until every event it stored
//! is finished, showing progress and an ETA. Interrupted (ctrl-c, a crash), it is continued
//! with `--resume`; events already queued are processed by the next worker either way.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::app::{Application, Loaded, Options, services};
use crate::catchup::backfill::{
    BackfillError, BackfillOptions, BackfillProgress, Backfiller, Drive, eta,
};
use crate::cli::BackfillArgs;
use crate::commands::progress::Progress;
use crate::config::Settings;
use crate::domain::Clock;
use crate::domain::time;
use crate::intake::Intake;
use crate::store::Store;

/// This run's events allowed to wait in the queue before the next page is read: about
/// two pages, so a live webhook queues behind at most that.
const WINDOW: u64 = 200;

/// Who runs the queued events: a server answering elsewhere, or this process's own
/// application (workers only, no listeners).
enum Runner {
    Server(Store),
    Here(
        tokio::task::JoinHandle<anyhow::Result<()>>,
        CancellationToken,
    ),
}

pub async fn run(args: BackfillArgs, config: Loaded) -> anyhow::Result<()> {
    let settings = &config.settings;
    let api = services::require_stripe(settings, "backfill")?;
    let server = if args.here {
        None
    } else {
        running_server(settings).await
    };
    if server.is_none() && settings.hubspot.token.is_none() {
        return Err(crate::UsageError(
            "hubspot.token is not set and no paybridge server answers on server.listen: in sandbox mode the embedded HubSpot lives inside `paybridge serve`; start it, then run the backfill again".into(),
        )
        .into());
    }
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    // Workers here, unless a server takes the events.
    let (intake, runner) = match &server {
        Some(url) => {
            eprintln!(
                "a paybridge server answers at {url}: it runs the backfill's events (its rate limiter shares HubSpot's budget with live webhooks); --here runs them in this process instead"
            );
            let store = Store::open(&settings.store.url, Clock::system()).await?;
            (
                services::intake(&config.rules, store.clone()),
                Runner::Server(store),
            )
        }
        None => {
            let options = Options {
                run_workers: true,
                listen: false,
            };
            let app = Application::build_with(config.clone(), Clock::system(), options).await?;
            let intake = app.services().intake.clone();
            let stop = CancellationToken::new();
            let task = tokio::spawn(app.run_until_stopped(stop.clone()));
            (intake, Runner::Here(task, stop))
        }
    };
    let started = Instant::now();
    let mut baseline: Option<u64> = None;
    let mut progress = Progress::new();
    let result = backfill(&args, api, intake, &cancel, &mut |p| {
        let base = *baseline.get_or_insert(p.queue.finished);
        if let Some(total) = p.total_customers {
            progress.set_position(p.customers, total);
        }
        progress.update(&line(p, base, started.elapsed()));
    })
    .await;
    match runner {
        Runner::Server(store) => store.close().await,
        Runner::Here(task, stop) => {
            stop.cancel();
            if let Ok(Err(e)) = task.await {
                tracing::warn!(error = %format!("{e:#}"), "the backfill's workers stopped badly");
            }
        }
    }
    let state = match result {
        Ok(state) => state,
        Err(BackfillError::NothingToResume(message)) => {
            return Err(crate::UsageError(message).into());
        }
        Err(BackfillError::Cancelled) => {
            progress.finish("backfill: interrupted");
            eprintln!(
                "interrupted; what was queued stays queued (the next worker runs it). Continue with `paybridge backfill --resume`"
            );
            return Err(anyhow::anyhow!("interrupted"));
        }
        Err(e) => {
            progress.finish("backfill: failed");
            return Err(anyhow::Error::new(e).context(
                "the backfill stopped; what was queued stays queued. Continue with `paybridge backfill --resume`",
            ));
        }
    };
    progress.finish(&line(&state, baseline.unwrap_or(0), started.elapsed()));
    summary(&state, started.elapsed())?;
    Ok(())
}

/// The run itself, waiting for the workers to keep pace.
async fn backfill(
    args: &BackfillArgs,
    api: crate::stripe::api::StripeApi,
    intake: Intake,
    cancel: &CancellationToken,
    progress: &mut (dyn FnMut(&BackfillProgress) + Send),
) -> Result<BackfillProgress, BackfillError> {
    let options = BackfillOptions {
        limit: args.limit,
        resume: args.resume,
    };
    Backfiller::new(api, intake)
        .run(&options, Drive::Wait { window: WINDOW }, cancel, progress)
        .await
}

/// A paybridge answering `GET /readyz` on `server.listen` (the loopback address when it
/// listens on every interface), if any.
pub(crate) async fn running_server(settings: &Settings) -> Option<String> {
    let listen = settings.server.listen;
    if listen.port() == 0 {
        return None;
    }
    let host = if listen.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], listen.port()))
    } else {
        listen
    };
    let scheme = if settings.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{host}");
    // A liveness probe to ourselves on loopback: nothing is sent, the certificate may be
    // self-signed.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .danger_accept_invalid_certs(true)
        .build()
        .ok()?;
    let answer = client.get(format!("{url}/readyz")).send().await.ok()?;
    let body = answer.text().await.ok()?;
    (body.trim() == "ready").then_some(url)
}

fn line(p: &BackfillProgress, finished_at_start: u64, elapsed: Duration) -> String {
    let total = p
        .total_customers
        .map(|t| format!("/{t}"))
        .unwrap_or_default();
    let eta = match eta(p, finished_at_start, elapsed) {
        Some(left) => format!(" · ETA {}", time::clock_duration(left)),
        None if p.total_customers.is_none() => " · counting customers".to_owned(),
        None => String::new(),
    };
    let stripe = if p.stripe_throttled + p.stripe_retried > 0 {
        format!(
            " · Stripe: {} requests, {} answered 429, {} retried",
            p.stripe_requests, p.stripe_throttled, p.stripe_retried
        )
    } else {
        String::new()
    };
    if p.total_customers.is_none() && p.customers == 0 {
        return format!(
            "backfill: reading every subscription · {} listed{stripe}",
            p.subscriptions_listed
        );
    }
    format!(
        "backfill: {}{total} customers read · {} events queued · {} applied · {} waiting{eta}{stripe}",
        p.customers,
        p.new + p.known,
        p.queue.finished.saturating_sub(finished_at_start),
        p.queue.waiting,
    )
}

fn summary(p: &BackfillProgress, elapsed: Duration) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let verb = if p.resumed { "resumed" } else { "ran" };
    writeln!(
        out,
        "backfill {verb} (run {}) in {}: {} customers ({} in earlier runs), {} current subscriptions",
        p.run,
        time::clock_duration(elapsed),
        p.customers,
        p.customers_before,
        p.subscriptions,
    )?;
    writeln!(
        out,
        "  events   {} queued now, {} already queued by an interrupted attempt",
        p.new, p.known
    )?;
    writeln!(
        out,
        "  stripe   {} requests ({} subscriptions listed), {} answered 429, {} retried",
        p.stripe_requests, p.subscriptions_listed, p.stripe_throttled, p.stripe_retried
    )?;
    writeln!(
        out,
        "  applied  {} of the run's {} events finished ({} dead, {} need attention: `paybridge events list --status dead`)",
        p.queue.finished, p.queue.events, p.queue.dead, p.queue.needs_attention
    )?;
    if p.complete {
        writeln!(out, "  every Stripe customer has been read")?;
    } else {
        writeln!(
            out,
            "  more customers remain: `paybridge backfill --resume` continues"
        )?;
    }
    Ok(())
}
