//! Idle connections do not crowd out Stripe: the real `paybridge serve` binary holds IDLE
//! connections (default 2,000) that send nothing (each reconnects when the server closes
//! it, so that many are always open), while correctly signed webhooks are posted and
//! acknowledged. Prints the webhooks accepted per second (the target is at least 1,000/s),
//! their latency, and how many idle connections were open throughout.
//!
//!     cargo build --release -p paybridge
//!     cargo run --release -p paybridge --example idle_bench [-- IDLE EVENTS CONCURRENCY]
//!
//! Defaults: 2000 idle connections, 10000 events over 64 connections.

#[path = "support/binary.rs"]
mod binary;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use binary::{SECRET, percentile};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Holds one idle connection open for as long as `stop` is false, reconnecting whenever the
/// server closes it (its header timeout does, after 10 s).
async fn idle(addr: String, open: Arc<AtomicUsize>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        open.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 512];
        tokio::select! {
            _ = stream.read(&mut buf) => {}
            _ = async { while !stop.load(Ordering::Relaxed) { tokio::time::sleep(Duration::from_millis(100)).await } } => {}
        }
        open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (idle_count, events, concurrency) = (arg(0, 2_000), arg(1, 10_000), arg(2, 64));
    paybridge::http::listener::fit_connections(idle_count + concurrency + 256, 64);

    let server = binary::start("")?;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let (open, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let holders: Vec<_> = (0..idle_count)
        .map(|_| tokio::spawn(idle(addr.clone(), open.clone(), stop.clone())))
        .collect();
    let ramp = Instant::now();
    while open.load(Ordering::Relaxed) < idle_count {
        anyhow::ensure!(
            ramp.elapsed() < Duration::from_secs(30),
            "only {} of {idle_count} idle connections opened",
            open.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("{idle_count} idle connections open against {}", server.url);

    let template: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/stripe/invoice.paid.json"))?;
    let now = chrono::Utc::now().timestamp();
    let prepared: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
        (0..events)
            .map(|i| {
                let mut e = template.clone();
                e["id"] = format!("evt_idle_{i}").into();
                e["data"]["object"]["customer"] = format!("cus_idle{}", i % 2_000).into();
                let body = serde_json::to_vec(&e).unwrap_or_default();
                let header = paybridge::stripe::sign(SECRET, now, &body);
                (body, header)
            })
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let least_open = Arc::new(AtomicUsize::new(usize::MAX));
    let watcher = {
        let (open, least, stop) = (open.clone(), least_open.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                least.fetch_min(open.load(Ordering::Relaxed), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, prepared, next) = (
            client.clone(),
            server.url.clone(),
            prepared.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, header)) = prepared.get(i) else {
                    break;
                };
                let t = Instant::now();
                match client
                    .post(format!("{url}/webhooks/stripe"))
                    .header("Stripe-Signature", header)
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => latencies.push(t.elapsed()),
                    _ => failed += 1,
                }
            }
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await?;
        latencies.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed();
    let least = least_open.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    for h in holders {
        let _ = h.await;
    }
    latencies.sort();
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{} signed webhooks acknowledged in {:.2} s: {rate:.0}/s ({failed} failed), latency p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
    );
    println!("idle connections open throughout: at least {least} of {idle_count}");
    println!(
        "server peak resident memory (VmHWM): {:.1} MiB",
        server.peak_rss_mib()
    );
    server.stop()?;
    anyhow::ensure!(failed == 0, "FAILED: {failed} webhooks not acknowledged");
    Ok(())
}
