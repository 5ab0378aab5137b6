//! `paybridge replay --since <time|duration> [--type T]… [--undelivered] [--json]`: store
//! the events Stripe's Events API has and the store has not. They are queued: a running
//! `serve` (or the next one started) processes them.

use std::io::Write;

use tokio_util::sync::CancellationToken;

use crate::app::{Loaded, services};
use crate::catchup::replay::{ReplayCounts, ReplayRequest, Replayer, WINDOW_SECS, parse_since};
use crate::cli::ReplayArgs;
use crate::commands::progress::Progress;
use crate::domain::{Clock, time};
use crate::store::Store;

pub async fn run(args: ReplayArgs, config: Loaded) -> anyhow::Result<()> {
    let Loaded { settings, rules } = config;
    let api = services::require_stripe(&settings, "replay")?;
    let clock = Clock::system();
    let now = clock.now_secs();
    let since =
        parse_since(&args.since, now).map_err(|e| crate::UsageError(format!("--since: {e}")))?;
    if since < now - WINDOW_SECS {
        eprintln!(
            "note: Stripe keeps events for 30 days; replaying from {} instead",
            time::seconds(now - WINDOW_SECS)
        );
    }
    let store = Store::open(&settings.store.url, clock).await?;
    let replayer = Replayer::new(api, services::intake(&rules, store.clone()));
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let request = ReplayRequest {
        since,
        types: args.types,
        undelivered: args.undelivered,
    };
    let mut progress = Progress::new();
    let result = replayer
        .run(&request, &cancel, &mut |c| progress.update(&line(c)))
        .await;
    store.close().await;
    let counts = result?;
    progress.finish(&line(&counts));
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &counts)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "replayed Stripe events since {}: {} listed",
        time::seconds(counts.since),
        counts.fetched
    )?;
    writeln!(
        out,
        "  new        {:>6}  queued (a running `paybridge serve` processes them)",
        counts.new
    )?;
    writeln!(
        out,
        "  ignored    {:>6}  stored; no rule handles their type",
        counts.ignored
    )?;
    writeln!(
        out,
        "  known      {:>6}  already in the store",
        counts.known
    )?;
    if counts.unreadable > 0 {
        writeln!(
            out,
            "  unreadable {:>6}  not Stripe events paybridge can read (see the log)",
            counts.unreadable
        )?;
    }
    Ok(())
}

fn line(c: &ReplayCounts) -> String {
    format!(
        "replay: page {} · {} listed · {} new · {} ignored · {} known",
        c.pages, c.fetched, c.new, c.ignored, c.known
    )
}
