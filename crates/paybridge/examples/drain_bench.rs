//! Drain benchmark (issue: batching): a burst of 10,000 events for 5,000 new customers,
//! property updates only (the built-in financial tagging), drained through the real
//! workers, limiter and batchers against the sandbox with HubSpot's limits. Prints the
//! HubSpot calls per event, the drain time against the time the rate limit allows, and
//! the final statuses; fails unless every event ends `done`.
//!
//!     cargo run --release -p paybridge --example drain_bench [-- EVENTS CUSTOMERS REQUESTS_PER_10S]

use std::time::Instant;

#[path = "support/flow.rs"]
mod flow;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let customers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    // HubSpot's free-tier burst is 100 per 10 s; paybridge's default budget is 90 of it.
    let per_10s: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(90);
    let mut bench = flow::Bench::start(flow::Options {
        requests_per_10s: per_10s,
        latency_ms: (0, 0),
        rules: "",
    })
    .await?;

    // The burst, stored before the workers start: per customer, a subscription update
    // (no email), then an invoice payment (with the email).
    let base = 1_790_000_000i64;
    let mut submits = Vec::with_capacity(4_096);
    for i in 0..events {
        let c = i % customers;
        let second = i >= customers;
        let kind = if second {
            "invoice.paid"
        } else {
            "customer.subscription.updated"
        };
        let email = format!("drain{c}@example.com");
        let e = flow::event(
            kind,
            &format!("evt_drain_{i}"),
            &format!("cus_drain{c}"),
            second.then_some(email.as_str()),
            base + i as i64,
        )?;
        if submits.len() >= 4_096 {
            for s in submits.drain(..) {
                s.await??;
            }
        }
        let store = bench.store.clone();
        submits.push(tokio::spawn(async move { flow::intake(&store, &e).await }));
    }
    for s in submits {
        s.await??;
    }

    let started = Instant::now();
    bench.start_workers();
    bench.wait_until_idle().await?;
    let elapsed = started.elapsed();
    let per_10s = bench.requests_per_10s;
    let figures = bench.finish().await?;

    println!(
        "drained {events} events for {customers} new customers in {:.1} s",
        elapsed.as_secs_f64()
    );
    let calls = figures.calls;
    let rate = f64::from(per_10s) / 10.0;
    // The first window's budget is available at once; every call beyond it needs 1/rate s.
    let allowed = (calls as f64 - f64::from(per_10s)).max(0.0) / rate;
    let steady = calls as f64 / rate;
    println!(
        "time the limit ({per_10s} per 10 s) allows for {calls} calls: {:.1} s at its sustained rate, drain took {:.2}x that ({:.1} s if the first window were spent at once: {:.2}x)",
        steady,
        elapsed.as_secs_f64() / steady.max(0.001),
        allowed,
        elapsed.as_secs_f64() / allowed.max(0.001)
    );
    figures.print_and_check()
}
