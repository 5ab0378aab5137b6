//! Intake benchmark: signed webhooks per second accepted and durably stored (SQLite, WAL,
//! synchronous=FULL, group commit), then acknowledgement latency at a fixed offered rate.
//!
//!     cargo run --release -p paybridge --example intake_bench [-- EVENTS CONCURRENCY RATE SECONDS DIR]
//!
//! Defaults: 50000 events over 64 connections, then 500 req/s for 10 s. The load generator
//! runs in the same process (sharing the machine's cores), so the numbers are conservative.
//! Only 200s count as acknowledged. The SQLite files go under DIR, by default the
//! project's `target/intake_bench` (a temporary directory is often tmpfs, where fsync costs
//! nothing); the directory and its file system are printed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use paybridge::app::Application;
use paybridge::basics::Secret;
use paybridge::config::Settings;
use paybridge::domain::Clock;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_bench_0123456789";

fn body_for(template: &serde_json::Value, id: &str, customer: usize) -> Vec<u8> {
    let mut event = template.clone();
    event["id"] = id.into();
    event["data"]["object"]["customer"] = format!("cus_bench{customer}").into();
    serde_json::to_vec(&event).expect("serialise")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let events = arg(0, 50_000) as usize;
    let concurrency = arg(1, 64) as usize;
    let rate = arg(2, 500);
    let seconds = arg(3, 10);
    let base = match args.get(4) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/intake_bench"),
    };
    std::fs::create_dir_all(&base)?;
    let base = base.canonicalize()?;
    println!(
        "store: SQLite files under {} ({})",
        base.display(),
        file_system(&base)
    );

    let (url, store, cancel, server, _dir) = start(&base).await?;
    let template: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/stripe/invoice.paid.json"))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    // Phase 1: throughput. Bodies are built and signed before the clock starts.
    let now = chrono::Utc::now().timestamp();
    let prepared: Vec<(Vec<u8>, String)> = (0..events)
        .map(|i| {
            let body = body_for(&template, &format!("evt_bench_{i}"), i % 5_000);
            let header = paybridge::stripe::sign(SECRET, now, &body);
            (body, header)
        })
        .collect();
    let prepared = Arc::new(prepared);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, prepared, next) =
            (client.clone(), url.clone(), prepared.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, header)) = prepared.get(i) else {
                    break;
                };
                let ok = client
                    .post(&url)
                    .header("Stripe-Signature", header)
                    .body(body.clone())
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                if !ok {
                    failures += 1;
                }
            }
            failures
        }));
    }
    let mut failures = 0;
    for t in tasks {
        failures += t.await?;
    }
    let elapsed = started.elapsed();
    let stored = store.count_events().await?;
    let acknowledged = events - failures;
    println!(
        "throughput: {events} signed webhooks over {concurrency} connections in {:.2} s = {:.0} events/s acknowledged with 200 (durable), {failures} not 200, {stored} rows stored",
        elapsed.as_secs_f64(),
        acknowledged as f64 / elapsed.as_secs_f64()
    );

    cancel.cancel();
    server.await??;
    drop(store);

    // Phase 2, on a fresh store (the steady state of a running service, not the aftermath of
    // the burst above): latency at a fixed offered rate (open loop: a request is due every 1/rate s,
    // whether or not earlier ones have been answered; latency counts from when it was due).
    let (url, _store, cancel, server, _dir2) = start(&base).await?;
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let now = chrono::Utc::now().timestamp();
        let body = body_for(&template, &format!("evt_latency_{i}"), i % 5_000);
        let header = paybridge::stripe::sign(SECRET, now, &body);
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let ok = client
                .post(&url)
                .header("Stripe-Signature", header)
                .body(body)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            (due.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failures = 0;
    for t in tasks {
        let (latency, ok) = t.await?;
        if !ok {
            failures += 1;
        }
        latencies.push(latency);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "latency at {rate} req/s for {seconds} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {failures} not 200",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies
            .last()
            .map(|l| l.as_secs_f64() * 1e3)
            .unwrap_or_default(),
    );
    cancel.cancel();
    server.await??;
    Ok(())
}

type Started = (
    String,
    paybridge::store::Store,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tempfile::TempDir,
);

/// The file system `path` is on (its longest mount point in /proc/mounts), e.g. `ext4` or
/// `tmpfs`; "unknown" elsewhere.
fn file_system(path: &std::path::Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map(|(_, kind)| kind)
        .unwrap_or_else(|| "unknown".into())
}

/// The app (intake only) on a fresh SQLite file in a new directory under `base`.
async fn start(base: &std::path::Path) -> anyhow::Result<Started> {
    let dir = tempfile::tempdir_in(base)?;
    let mut settings = Settings::defaults();
    settings.server.listen = "127.0.0.1:0".parse()?;
    settings.server.admin_listen = "127.0.0.1:0".parse()?;
    settings.store.url = format!("sqlite://{}", dir.path().join("bench.db").display());
    settings.stripe.webhook_secrets = vec![Secret::new(SECRET.into())];
    // Intake alone: the workers would compete for the same two cores (see drain_bench for them).
    let app = Application::build_with(
        settings.into(),
        Clock::system(),
        paybridge::app::Options {
            run_workers: false,
            ..Default::default()
        },
    )
    .await?;
    let url = format!("http://{}/webhooks/stripe", app.public_addr());
    let store = app.store().clone();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(cancel.clone()));

    Ok((url, store, cancel, server, dir))
}
