//! Drain benchmark (issue: batching): a burst of 10,000 events for 5,000 new customers,
//! property updates only (the built-in financial tagging), drained through the real
//! workers, limiter and batchers against the sandbox with HubSpot's limits. Prints the
//! HubSpot calls per event and the drain time against the time the rate limit allows.
//!
//!     cargo run --release -p paybridge --example drain_bench [-- EVENTS CUSTOMERS REQUESTS_PER_10S]

use std::time::{Duration, Instant};

use hubspot_sandbox::{Sandbox, SandboxConfig, Seed, SeedToken};
use paybridge::basics::Secret;
use paybridge::config::Settings;
use paybridge::domain::{Clock, CustomerId, EventId, EventSource, EventStatus};
use paybridge::hubspot::HubSpot;
use paybridge::store::{NewEvent, Store};
use paybridge::worker::{Pipeline, Pool};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let customers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5_000);
    // HubSpot's free-tier burst is 100 per 10 s; paybridge's default budget is 90 of it.
    let per_10s: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(90);

    let sandbox = Sandbox::spawn(SandboxConfig {
        requests_per_10s: (per_10s + per_10s / 9).max(100),
        ..SandboxConfig::default()
    })
    .await?;
    // Setup (properties) with its own token so it does not spend the measured budget.
    sandbox.merge_seed(Seed {
        tokens: vec![SeedToken {
            token: "setup".into(),
            scopes: vec![
                "crm.schemas.contacts.write".into(),
                "crm.schemas.contacts.read".into(),
                "crm.schemas.deals.write".into(),
                "crm.schemas.deals.read".into(),
                "tickets".into(),
            ],
        }],
        ..Default::default()
    })?;
    let setup = HubSpot::new(
        &sandbox.url(),
        Secret::new("setup".into()),
        paybridge::hubspot::ApiVersion::Dated2026_09,
        1_000,
        10,
        "stripe_customer_id",
    )?;
    paybridge::ops::setup::ensure(
        &setup,
        &paybridge::rules::properties::builtin("stripe_customer_id")
            .iter()
            .map(paybridge::ops::setup::definition)
            .collect::<Vec<_>>(),
        false,
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.store.url = format!("sqlite://{}", dir.path().join("drain.db").display());
    settings.hubspot.api_base = sandbox.url();
    settings.hubspot.token = Some(Secret::new("sandbox-token".into()));
    settings.hubspot.requests_per_10s = per_10s;
    let clock = Clock::system();
    let store = Store::open(&settings.store.url, clock.clone()).await?;

    // The burst: per customer, a subscription update and an invoice payment.
    let template_sub: serde_json::Value = serde_json::from_str(include_str!(
        "../fixtures/stripe/customer.subscription.updated.json"
    ))?;
    let template_paid: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/stripe/invoice.paid.json"))?;
    let base = 1_790_000_000i64;
    let mut submits = Vec::with_capacity(events);
    for i in 0..events {
        let c = i % customers;
        let second = i >= customers;
        let mut e = if second {
            template_paid.clone()
        } else {
            template_sub.clone()
        };
        let id = format!("evt_drain_{i}");
        let customer = format!("cus_drain{c}");
        e["id"] = id.clone().into();
        e["created"] = (base + i as i64).into();
        e["data"]["object"]["customer"] = customer.clone().into();
        if second {
            e["data"]["object"]["customer_email"] = format!("drain{c}@example.com").into();
        }
        let kind = e["type"].as_str().unwrap_or_default().to_owned();
        let store = store.clone();
        if submits.len() >= 4_096 {
            for s in submits.drain(..) {
                s.await??;
            }
        }
        submits.push(tokio::spawn(async move {
            store
                .intake(NewEvent {
                    id: EventId::parse(&id)?,
                    kind,
                    created: base + i as i64,
                    livemode: false,
                    api_version: None,
                    customer: Some(CustomerId::parse(&customer)?),
                    source: EventSource::Webhook,
                    status: EventStatus::Pending,
                    payload: serde_json::to_vec(&e)?,
                    payload_kind: Default::default(),
                    guest_email: None,
                })
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }));
    }
    for s in submits {
        s.await??;
    }

    let hubspot = HubSpot::new(
        &sandbox.url(),
        Secret::new("sandbox-token".into()),
        settings.hubspot.api_version,
        settings.hubspot.requests_per_10s,
        settings.hubspot.search_per_s,
        "stripe_customer_id",
    )?;
    let pipeline = Pipeline::new(
        &settings,
        Default::default(),
        store.clone(),
        hubspot,
        None,
        clock,
    )?;
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let workers = tokio::spawn(Pool::new(pipeline).run(cancel.clone()));
    while store.queue_depth().await? > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    workers.await?;

    let stats = sandbox.stats();
    let token = &stats["tokens"]["sandbox-token"];
    let calls = token["calls"].as_u64().unwrap_or(0);
    let rate = settings.hubspot.requests_per_10s as f64 / 10.0;
    // The first window's budget is available at once; every call beyond it needs 1/rate s.
    let allowed = (calls as f64 - settings.hubspot.requests_per_10s as f64).max(0.0) / rate;
    let done = store.count_events().await?;
    println!(
        "drained {events} events for {customers} new customers ({done} stored) in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "HubSpot calls: {calls} ({:.4} per event); by route: {}",
        calls as f64 / events as f64,
        token["calls_by_route"]
    );
    println!(
        "429s served: {}; highest calls in any 10 s: {}",
        stats["total_429"], token["max_in_any_10s"]
    );
    let steady = calls as f64 / rate;
    println!(
        "time the limit ({} per 10 s) allows for {calls} calls: {:.1} s at its sustained rate, drain took {:.2}x that ({:.1} s if the first window were spent at once: {:.2}x)",
        settings.hubspot.requests_per_10s,
        steady,
        elapsed.as_secs_f64() / steady.max(0.001),
        allowed,
        elapsed.as_secs_f64() / allowed.max(0.001)
    );
    let contacts = sandbox.state()["contacts"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    println!("contacts in HubSpot: {contacts}");
    store.close().await;
    Ok(())
}
