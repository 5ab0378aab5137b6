//! Drain across replicas (issue 16): `drain_bench`'s burst (10,000 events for 5,000 new
//! customers) stored in ONE Postgres database and drained by three replicas' workers at
//! once, each with its own store, HubSpot client and pipeline as `serve` builds them, their
//! HubSpot calls taken from the one budget they share in the database, against one sandbox
//! with HubSpot's limits. Prints HubSpot calls per event, the drain time against the time
//! the budget allows for those calls (calls / requests_per_10s × 10 s), the 429s and the
//! busiest 10-second window; fails unless every event ends `done`. The database is created
//! on the server of ADMIN_URL and dropped afterwards.
//!
//!     cargo run --release -p paybridge --example replicas_drain_bench [-- ADMIN_URL EVENTS CUSTOMERS REQUESTS_PER_10S REPLICAS]

use anyhow::Context;
use sqlx::{Executor, PgPool};

#[path = "support/flow.rs"]
mod flow;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let admin = args
        .first()
        .cloned()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let events: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let customers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let per_10s: u32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(90);
    let replicas: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(3);

    let name = format!("paybridge_replicas_bench_{}", std::process::id());
    let server = PgPool::connect(&admin)
        .await
        .context("connecting to ADMIN_URL (the first argument)")?;
    server
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .with_context(|| format!("creating the database {name}"))?;
    println!("{replicas} replicas on the Postgres database {name} (dropped at the end)");
    let run = run(
        &with_database(&admin, &name)?,
        events,
        customers,
        per_10s,
        replicas,
    )
    .await;
    server
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .with_context(|| format!("dropping the database {name}"))?;
    run
}

async fn run(
    url: &str,
    events: usize,
    customers: usize,
    per_10s: u32,
    replicas: usize,
) -> anyhow::Result<()> {
    let options = flow::Options {
        requests_per_10s: per_10s,
        latency_ms: (0, 0),
        rules: "",
    };
    let bench = flow::Bench::start_replicas(options, Some(url), replicas).await?;
    flow::store_burst(&bench.store, events, customers).await?;
    // What autovacuum does within a minute of such a burst (test servers often run without
    // it): without statistics the planner takes the fresh `jobs` table for empty and each
    // claim scans the whole queue (9 s a claim at 10,000 jobs, 10 ms after ANALYZE).
    let db = PgPool::connect(url)
        .await
        .context("connecting to the bench's database")?;
    db.execute("ANALYZE").await.context("ANALYZE")?;
    db.close().await;
    flow::drain(bench, events, customers).await
}

/// `admin` with its database replaced by `name` (user, password, host and query kept).
fn with_database(admin: &str, name: &str) -> anyhow::Result<String> {
    let (url, query) = match admin.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (admin, None),
    };
    let authority = url.find("://").context("ADMIN_URL is not a URL")? + 3;
    let base = match url[authority..].find('/') {
        Some(slash) => &url[..authority + slash],
        None => url,
    };
    Ok(match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    })
}
