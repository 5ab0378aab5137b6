//! Drain benchmark (issue: batching): a burst of 10,000 events for 5,000 new customers,
//! property updates only (the built-in financial tagging), drained through the real
//! workers, limiter and batchers against the sandbox with HubSpot's limits. Prints the
//! HubSpot calls per event, the drain time against the time the rate limit allows, and
//! the final statuses; fails unless every event ends `done`.
//!
//!     cargo run --release -p paybridge --example drain_bench [-- EVENTS CUSTOMERS REQUESTS_PER_10S]

#[path = "support/flow.rs"]
mod flow;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let customers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    // HubSpot's free-tier burst is 100 per 10 s; paybridge's default budget is 90 of it.
    let per_10s: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(90);
    let bench = flow::Bench::start(flow::Options {
        requests_per_10s: per_10s,
        latency_ms: (0, 0),
        rules: "",
    })
    .await?;
    flow::store_burst(&bench.store, events, customers).await?;
    flow::drain(bench, events, customers).await
}
