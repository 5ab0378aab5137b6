//! Outage benchmark (issue 14): HubSpot answers 503 to everything for 60 s while 200
//! events for 50 customers arrive (the trickle benchmark's mix: payments, failed payments
//! with a dunning ticket, refunds with a note), then recovers. Default worker settings
//! (backoff from 5 s, 12 attempts). Prints how long after HubSpot came back every event
//! was done, HubSpot calls per event, payment → CRM p50/p99 and the final statuses; fails
//! unless every event ends `done` (none dead).
//!
//!     cargo run --release -p paybridge --example outage_bench [-- OUTAGE_S EVENTS CUSTOMERS]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hubspot_sandbox::Faults;

#[path = "support/flow.rs"]
mod flow;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outage_s: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(60);
    let events: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let customers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let mut bench = flow::Bench::start(flow::Options {
        requests_per_10s: 90,
        latency_ms: (100, 200),
        rules: flow::TICKET_AND_NOTE_RULES,
    })
    .await?;
    let outage = Duration::from_secs(outage_s);
    let recovered_at = SystemTime::now() + outage;
    bench.sandbox.set_faults(Faults {
        latency_ms: 100,
        latency_max_ms: 200,
        outage_until: Some(recovered_at),
        ..Faults::default()
    });
    bench.start_workers();
    // The events arrive during the outage, evenly over its first 90%.
    let per_s = events as f64 / (outage.as_secs_f64() * 0.9);
    let base = 1_790_000_000i64;
    flow::feed(&bench.store, events, per_s, |i| {
        flow::mixed_event("outage", i, customers, base + i as i64)
    })
    .await?;
    bench.wait_until_idle().await?;
    let figures = bench.finish().await?;
    let recovered_ms = recovered_at.duration_since(UNIX_EPOCH)?.as_millis() as i64;
    println!(
        "HubSpot answered 503 for {outage_s} s while {events} events for {customers} customers arrived; every event finished {:.1} s after HubSpot came back",
        (figures.last_finished_ms - recovered_ms) as f64 / 1000.0
    );
    figures.print_and_check()
}
