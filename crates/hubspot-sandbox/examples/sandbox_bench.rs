//! How many requests per second the sandbox serves on this machine, through
//! real HTTP on loopback, with rate limits raised out of the way:
//! a 100-input contacts batch upsert, and a search over 10,000 contacts.
//!
//! `cargo run --release -p hubspot-sandbox --example sandbox_bench`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hubspot_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

const TOKEN: &str = "sandbox-token";
const CONCURRENCY: u64 = 8;
const RUN_FOR: Duration = Duration::from_secs(5);
const MAX_REQUESTS: u64 = 200_000;

/// Runs `make(n)` bodies against `path` from CONCURRENCY tasks for RUN_FOR; returns requests/s.
async fn measure(url: String, path: &'static str, make: fn(u64) -> Value) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, counter, url) = (client.clone(), counter.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < RUN_FOR {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= MAX_REQUESTS {
                    break;
                }
                let r = client
                    .post(format!("{url}{path}"))
                    .bearer_auth(TOKEN)
                    .json(&make(n))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "{path} answered {}", r.status());
                r.bytes().await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let done = counter.load(Ordering::Relaxed).min(MAX_REQUESTS) as f64;
    Ok(done / start.elapsed().as_secs_f64())
}

fn upsert_body(n: u64) -> Value {
    // 100 contacts per request, cycling over 10,000 emails: creates first, then updates.
    let inputs: Vec<Value> = (0..100)
        .map(|i| {
            let k = (n * 100 + i) % 10_000;
            json!({"id": format!("bench{k}@example.com"), "idProperty": "email",
                   "properties": {"firstname": format!("F{n}"), "lifecyclestage": "customer"}})
        })
        .collect();
    json!({ "inputs": inputs })
}

fn search_body(n: u64) -> Value {
    json!({
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": format!("bench{}@example.com", n % 10_000)}]}],
        "properties": ["email", "firstname"],
        "limit": 10,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sandbox = Sandbox::spawn(SandboxConfig {
        requests_per_10s: u32::MAX,
        search_per_s: u32::MAX,
        daily_limit: u64::MAX,
        ..SandboxConfig::default()
    })
    .await?;
    let url = sandbox.url();
    println!("sandbox at {url}; {CONCURRENCY} concurrent clients, {RUN_FOR:?} per measurement");
    let upserts = measure(
        url.clone(),
        "/crm/v3/objects/contacts/batch/upsert",
        upsert_body,
    )
    .await?;
    let contacts = sandbox.state()["contacts"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    println!(
        "batch upsert (100 inputs): {upserts:.0} requests/s = {:.0} contacts/s ({contacts} contacts stored)",
        upserts * 100.0
    );
    let searches = measure(url, "/crm/v3/objects/contacts/search", search_body).await?;
    println!("search (EQ on email over {contacts} contacts): {searches:.0} requests/s");
    sandbox.shutdown().await;
    Ok(())
}
