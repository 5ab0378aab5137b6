//! Reconcile benchmark (issue 15): 10,000 Stripe customers (each with a subscription and a
//! payment) against the sandbox with HubSpot's limits, their contacts already in HubSpot,
//! 2% of them edited by hand and 0.1% missing. First the scan (as the schedule runs it:
//! background work within `reconcile_budget_share` of the budget), then its repairs
//! drained by the workers. Prints the HubSpot calls (goal: about one batch read per 100
//! customers and one batch write per 100 repairs), the wall time, and the share of the
//! 10-second budget the scan used.
//!
//!     cargo run --release -p paybridge --example reconcile_bench [-- CUSTOMERS DRIFT_EVERY SHARE]

use std::time::{Duration, Instant};

#[path = "support/sandbox.rs"]
mod support;

use hubspot_sandbox::{Sandbox, SandboxConfig, Seed, SeedRecord, SeedStripe};
use paybridge::basics::Secret;
use paybridge::catchup::reconcile::{ReconcileOptions, Reconciler, Repairs};
use paybridge::config::Settings;
use paybridge::domain::Clock;
use paybridge::hubspot::limiter::in_background;
use paybridge::store::{FindingKind, Store};
use paybridge::worker::{Pipeline, Pool};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

const BASE: i64 = 1_780_000_000;
const KEY: &str = "sk_test_reconcile_bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let customers: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    // Every DRIFT_EVERY-th contact is edited by hand; every 1000th is missing.
    let drift_every: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let share: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.3);
    // HubSpot's free-tier burst is 100 per 10 s; paybridge's default budget is 90 of it.
    let per_10s: u32 = 90;

    let sandbox = Sandbox::spawn(SandboxConfig {
        requests_per_10s: 100,
        ..SandboxConfig::default()
    })
    .await?;
    support::setup_properties(
        &sandbox,
        paybridge::rules::properties::builtin("stripe_customer_id"),
    )
    .await?;
    sandbox.merge_seed(seed(customers, drift_every))?;

    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.store.url = format!("sqlite://{}", dir.path().join("reconcile.db").display());
    settings.hubspot.api_base = sandbox.url();
    settings.hubspot.token = Some(Secret::new("sandbox-token".into()));
    settings.hubspot.requests_per_10s = per_10s;
    settings.stripe.reconcile_budget_share = share;
    let clock = Clock::system();
    let store = Store::open(&settings.store.url, clock.clone()).await?;
    let hubspot = paybridge::app::services::hubspot(&settings)?
        .ok_or_else(|| anyhow::anyhow!("no HubSpot client"))?;
    let api = paybridge::stripe::api::StripeApi::new(&sandbox.url(), Secret::new(KEY.into()))?;
    let intake = paybridge::app::services::intake(&Default::default(), store.clone());
    let reconciler = Reconciler::new(
        api.clone(),
        hubspot.clone(),
        store.clone(),
        "stripe_customer_id",
        Some(Repairs::new(intake, false)),
    );

    // The scan, as the schedule runs it.
    let options = ReconcileOptions {
        fix: true,
        trigger: "schedule",
        ..ReconcileOptions::default()
    };
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let state = in_background(reconciler.run(&options, &cancel, &mut |_| {})).await?;
    let scan_time = started.elapsed();
    let scan_stats = sandbox.stats();
    let scan = &scan_stats["tokens"]["sandbox-token"];
    let findings = store.reconcile_findings(&state.run).await?;
    let count = |k: FindingKind| findings.iter().filter(|f| f.kind == k).count();

    // The repairs, drained by the workers at the full budget.
    let pipeline = Pipeline::new(
        &settings,
        Default::default(),
        store.clone(),
        hubspot,
        Some(api),
        clock,
    )?;
    let stop = CancellationToken::new();
    let repair_started = Instant::now();
    let workers = tokio::spawn(Pool::new(pipeline).run(stop.clone()));
    while store.queue_depth().await? > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let repair_time = repair_started.elapsed();
    stop.cancel();
    workers.await?;
    let all_stats = sandbox.stats();
    let all = &all_stats["tokens"]["sandbox-token"];

    let calls = |v: &Value, route: &str| {
        v["calls_by_route"][format!("POST /crm/objects/2026-09/contacts/{route}")]
            .as_u64()
            .unwrap_or(0)
    };
    let reads = calls(scan, "batch/read");
    let searches = scan["search_calls"].as_u64().unwrap_or(0);
    let standard = scan["calls"].as_u64().unwrap_or(0) - searches;
    println!(
        "reconciled {} customers in {:.1} s: {} drift, {} without a contact, {} repairs queued",
        state.customers,
        scan_time.as_secs_f64(),
        count(FindingKind::Drift),
        count(FindingKind::NoContact),
        state.repairs_queued,
    );
    println!(
        "Stripe: {} requests ({} subscriptions, {} charges listed)",
        state.stripe_requests, state.subscriptions, state.charges
    );
    println!(
        "HubSpot, scan: {standard} calls in the 10-second budget ({reads} batch reads: {:.2} per 100 customers) + {searches} searches (their own per-second limit); by route: {}",
        reads as f64 * 100.0 / state.customers.max(1) as f64,
        scan["calls_by_route"]
    );
    let budget = f64::from(per_10s);
    let peak = scan["max_in_any_10s"].as_u64().unwrap_or(0);
    // Per 10-second window of the scan (a scan shorter than one window is one window).
    let average = standard as f64 / (scan_time.as_secs_f64() / 10.0).max(1.0);
    println!(
        "share of the 10-second budget ({per_10s}) the scan used: at most {peak} calls in any 10 s = {:.0}% (configured share {:.0}%), {:.1} per 10 s on average = {:.0}%",
        peak as f64 / budget * 100.0,
        share * 100.0,
        average,
        average / budget * 100.0,
    );
    let writes = calls(all, "batch/update") - calls(scan, "batch/update");
    let creates = calls(all, "batch/create") - calls(scan, "batch/create");
    let repair_reads = calls(all, "batch/read") - reads;
    println!(
        "HubSpot, repairs: {} calls in {:.1} s: {writes} batch updates ({:.2} per 100 repairs), {creates} batch creates, {repair_reads} batch reads (contact resolution); 429s served in all: {}",
        all["calls"].as_u64().unwrap_or(0) - scan["calls"].as_u64().unwrap_or(0),
        repair_time.as_secs_f64(),
        writes as f64 * 100.0 / state.repairs_queued.max(1) as f64,
        all_stats["total_429"],
    );
    store.close().await;
    Ok(())
}

/// Stripe: `n` customers, each with an active subscription and a $49 payment. HubSpot:
/// their contacts as paybridge wrote them, every `drift_every`-th with its status edited
/// by hand, every 1000th missing.
fn seed(n: usize, drift_every: usize) -> Seed {
    let mut stripe = SeedStripe::default();
    let mut contacts = Vec::new();
    for i in 0..n {
        let id = format!("cus_bench{i:05}");
        let created = BASE + i as i64 * 10;
        stripe.customers.push(json!({
            "id": id, "object": "customer", "created": created, "livemode": false,
            "email": format!("bench{i}@example.com"), "delinquent": false, "metadata": {},
        }));
        stripe.subscriptions.push(json!({
            "id": format!("sub_bench{i:05}"), "object": "subscription", "customer": id,
            "created": created + 1, "status": "active", "currency": "usd", "livemode": false,
            "items": {"object": "list", "data": [{"id": format!("si_bench{i:05}"),
                "object": "subscription_item", "quantity": 1,
                "price": {"id": "price_pro", "object": "price", "currency": "usd",
                          "nickname": "Pro (monthly)", "product": "prod_bench", "unit_amount": 4900}}]},
        }));
        let paid_at = created + 86_400;
        stripe.objects.push(json!({
            "id": format!("ch_bench{i:05}"), "object": "charge", "customer": id,
            "created": paid_at, "status": "succeeded", "amount": 4900, "amount_refunded": 0,
            "currency": "usd", "refunded": false, "livemode": false,
        }));
        if i % 1000 == 999 {
            continue;
        }
        let status = if i % drift_every.max(1) == 0 {
            "past_due"
        } else {
            "active"
        };
        let day = chrono::DateTime::from_timestamp(paid_at, 0)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_default();
        let mut properties = Map::new();
        for (k, v) in [
            ("stripe_customer_id", id.as_str()),
            ("email", &format!("bench{i}@example.com")),
            ("stripe_subscription_status", status),
            ("stripe_subscription_tier", "Pro (monthly)"),
            ("stripe_last_payment_date", &day),
            ("stripe_last_payment_amount", "49.00"),
            ("stripe_lifetime_value", "49.00"),
            ("stripe_delinquent", "false"),
        ] {
            properties.insert(k.to_owned(), Value::from(v));
        }
        contacts.push(SeedRecord {
            id: Some(format!("{}", 100_000 + i)),
            properties,
            associations: Vec::new(),
        });
    }
    Seed {
        contacts,
        stripe,
        ..Seed::default()
    }
}
