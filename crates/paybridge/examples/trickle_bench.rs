//! Trickle benchmark (issue 14): events arriving one at a time, too few to batch. 150
//! events for 50 customers at 3 a second (one in five a failed payment with a dunning
//! ticket, one in eight a refund with a note, the rest payments), HubSpot answering in
//! 100–200 ms. Prints HubSpot calls per event, payment → CRM p50/p99 and the final
//! statuses; fails unless every event ends `done`.
//!
//!     cargo run --release -p paybridge --example trickle_bench [-- EVENTS CUSTOMERS PER_S]

#[path = "support/flow.rs"]
mod flow;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(150);
    let customers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let per_s: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3.0);
    flow::mixed_run(events, customers, per_s, "trickle").await
}
