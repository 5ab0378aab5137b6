//! Steady benchmark (issue 14): 30 events a second for 2 minutes for 500 customers (the
//! trickle benchmark's mix: one in five a failed payment with a dunning ticket, one in
//! eight a refund with a note), HubSpot answering in 100–200 ms. Prints HubSpot calls per
//! event, payment → CRM p50/p99 and the final statuses; fails unless every event ends
//! `done`.
//!
//!     cargo run --release -p paybridge --example steady_bench [-- SECONDS CUSTOMERS PER_S]

#[path = "support/flow.rs"]
mod flow;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(120);
    let customers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let per_s: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30.0);
    let events = (seconds as f64 * per_s) as usize;
    flow::mixed_run(events, customers, per_s, "steady").await
}
