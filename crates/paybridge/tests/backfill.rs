//! Backfill from Stripe's customers and subscriptions (the sandbox serves them) through the
//! real pipeline: 1,000 customers reach HubSpot with the right properties and no duplicate
//! contact, across an interruption half-way (and the crash window it leaves) and a resume.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::process::{run_command, sandbox_config_file};
use common::{spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Sandbox, SandboxConfig, Seed, SeedRecord, SeedStripe};
use paybridge::basics::Secret;
use paybridge::catchup::backfill::{
    BackfillError, BackfillOptions, Backfiller, Drive, META_CURSOR, META_CUSTOMERS,
};
use paybridge::domain::Clock;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

const STRIPE_KEY: &str = "sk_test_backfill_0123456789";
const BASE: i64 = 1_780_000_000;

/// What customer `i`'s contact must show: (status, tier) of its current subscription.
fn expected_subscription(i: usize) -> Option<(&'static str, &'static str)> {
    match i % 4 {
        0 => None,
        1 => Some(("active", "Pro (monthly)")),
        2 if i % 8 == 6 => Some(("canceled", "Basic (monthly)")),
        2 => Some(("past_due", "Basic (monthly)")),
        _ => Some(("active", "Pro (yearly)")),
    }
}

/// Customers whose email a HubSpot contact already has (created by hand, say).
fn known_in_hubspot(i: usize) -> bool {
    i % 20 == 5
}

fn subscription(id: &str, customer: &str, created: i64, status: &str, plan: &str) -> Value {
    json!({
        "id": id, "object": "subscription", "created": created, "customer": customer,
        "status": status, "currency": "usd", "livemode": false, "cancel_at_period_end": false,
        "items": {"object": "list", "data": [{
            "id": format!("si_{id}"), "object": "subscription_item", "quantity": 1,
            "price": {"id": format!("price_{}", plan.len()), "object": "price", "currency": "usd",
                      "nickname": plan, "product": "prod_bf", "unit_amount": 4900}
        }]}
    })
}

fn seed(n: usize, prefix: &str) -> Seed {
    let mut stripe = SeedStripe::default();
    let mut contacts = Vec::new();
    for i in 0..n {
        let id = format!("cus_{prefix}{i:04}");
        let created = BASE + i as i64 * 10;
        stripe.customers.push(json!({
            "id": id, "object": "customer", "created": created, "livemode": false,
            "email": format!("{prefix}{i}@example.com"),
            "name": format!("Ada{i:04} Lovelace{i:04}"),
            "metadata": {"tier": if i % 10 == 0 { "enterprise" } else { "standard" }},
        }));
        let sub = |n: u32| format!("sub_{prefix}{i:04}_{n}");
        match i % 4 {
            0 => {}
            1 => stripe.subscriptions.push(subscription(
                &sub(1),
                &id,
                created + 1,
                "active",
                "Pro (monthly)",
            )),
            2 => stripe.subscriptions.push(subscription(
                &sub(1),
                &id,
                created + 1,
                if i % 8 == 6 { "canceled" } else { "past_due" },
                "Basic (monthly)",
            )),
            _ => {
                // A cancelled plan, then the current one: the contact shows the current.
                stripe.subscriptions.push(subscription(
                    &sub(1),
                    &id,
                    created + 1,
                    "canceled",
                    "Basic (monthly)",
                ));
                stripe.subscriptions.push(subscription(
                    &sub(2),
                    &id,
                    created + 2,
                    "active",
                    "Pro (yearly)",
                ));
            }
        }
        if known_in_hubspot(i) {
            let mut properties = Map::new();
            properties.insert("email".into(), format!("{prefix}{i}@example.com").into());
            properties.insert("firstname".into(), "Known".into());
            contacts.push(SeedRecord {
                id: Some(format!("{}", 900_000 + i)),
                properties,
                associations: Vec::new(),
            });
        }
    }
    Seed {
        contacts,
        stripe,
        ..Seed::default()
    }
}

fn contacts_by_customer(sandbox: &Sandbox) -> (usize, BTreeMap<String, Value>) {
    let state = sandbox.state();
    let all = state["contacts"].as_array().cloned().unwrap_or_default();
    let total = all.len();
    let mut by = BTreeMap::new();
    for c in all {
        if let Some(id) = c["properties"]["stripe_customer_id"].as_str() {
            let previous = by.insert(id.to_owned(), c.clone());
            assert!(previous.is_none(), "two contacts for {id}");
        }
    }
    (total, by)
}

fn check_contact(prefix: &str, i: usize, c: &Value) {
    let p = &c["properties"];
    let who = format!("customer {i}: {c}");
    assert_eq!(p["email"], format!("{prefix}{i}@example.com"), "{who}");
    if known_in_hubspot(i) {
        assert_eq!(
            c["id"],
            format!("{}", 900_000 + i),
            "matched by email: {who}"
        );
        assert_eq!(p["firstname"], "Known", "{who}");
    } else {
        assert_eq!(p["firstname"], format!("Ada{i:04}"), "{who}");
        assert_eq!(p["lastname"], format!("Lovelace{i:04}"), "{who}");
    }
    match expected_subscription(i) {
        Some((status, tier)) => {
            assert_eq!(p["stripe_subscription_status"], status, "{who}");
            assert_eq!(p["stripe_subscription_tier"], tier, "{who}");
        }
        None => assert!(
            p.get("stripe_subscription_status")
                .is_none_or(Value::is_null),
            "{who}"
        ),
    }
}

/// Events the customers `range` bring: one each, plus one per current subscription.
fn events_of(range: std::ops::Range<usize>) -> u64 {
    range
        .map(|i| 1 + u64::from(expected_subscription(i).is_some()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_customers_reach_hubspot_once_across_an_interruption() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    sandbox.merge_seed(seed(1_000, "bf")).expect("seed");
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.stripe.api_key = Some(Secret::new(STRIPE_KEY.into()));
            s.stripe.api_base = sandbox.url();
        },
        Clock::system(),
    )
    .await;
    let api =
        paybridge::stripe::api::StripeApi::new(&sandbox.url(), Secret::new(STRIPE_KEY.into()))
            .expect("client");
    let intake =
        paybridge::app::services::intake(&paybridge::rules::RuleSet::default(), app.store.clone());
    let backfiller = Backfiller::new(api, intake);
    let cancel = CancellationToken::new();

    // Half: Stripe lists newest first, so customers 999 down to 500.
    let mut reported = Vec::new();
    let first = backfiller
        .run(
            &BackfillOptions {
                limit: Some(500),
                resume: false,
            },
            Drive::Drain(&app.pipeline),
            &cancel,
            &mut |p| reported.push((p.customers, p.total_customers)),
        )
        .await
        .expect("first half");
    assert_eq!(first.total_customers, Some(500));
    assert_eq!(first.customers, 500);
    assert_eq!(first.pages, 5);
    assert!(!first.complete);
    assert_eq!(first.new, events_of(500..1_000));
    assert_eq!(first.known, 0);
    assert_eq!(first.queue.events, first.new);
    assert_eq!(first.queue.finished, first.new, "{:?}", first.queue);
    assert_eq!((first.queue.dead, first.queue.needs_attention), (0, 0));
    // Every subscription is read first, then the customers counted, then read.
    let counted = reported
        .iter()
        .position(|r| r.1.is_some())
        .expect("counted");
    assert!(
        reported[..counted].iter().all(|r| *r == (0, None)),
        "{reported:?}"
    );
    assert_eq!(reported[counted], (0, Some(500)), "counted before reading");
    // One pass over every subscription (1,000 of them: 10 pages), whatever the limit;
    // customers: 5 pages counted, 5 read. Each request names the pinned Stripe-Version.
    let requests = sandbox.stripe_requests();
    let paths = |path: &str| requests.iter().filter(|r| r["path"] == path).count();
    assert_eq!(
        paths("/v1/subscriptions"),
        10,
        "one list pass, not one call per customer"
    );
    assert_eq!(paths("/v1/customers"), 10);
    // No such product at Stripe (404): the tier stays the price's nickname, and the
    // answer is remembered instead of asked again for every subscription.
    assert_eq!(
        paths("/v1/products/prod_bf"),
        1,
        "the product is read once, then cached"
    );
    assert!(
        requests.iter().all(
            |r| r["stripe_version"] == paybridge::stripe::api::DEFAULT_API_VERSION
                && (r["status"] == 200 || r["path"] == "/v1/products/prod_bf")
        ),
        "{requests:?}"
    );
    assert_eq!(first.subscriptions_listed, 1_000);
    assert_eq!((first.stripe_requests, first.stripe_throttled), (20, 0));
    assert_eq!(reported.last(), Some(&(500, Some(500))));
    let (_, by) = contacts_by_customer(&sandbox);
    let half: BTreeSet<String> = by.keys().cloned().collect();
    let expected: BTreeSet<String> = (500..1_000).map(|i| format!("cus_bf{i:04}")).collect();
    assert_eq!(half, expected);

    // The crash window: the last page's events committed, its cursor not. Put the cursor
    // back one page; the resume reads that page again and recognises its events.
    app.store
        .meta_set(&[
            (META_CURSOR, Some("cus_bf0600".into())),
            (META_CUSTOMERS, Some("400".into())),
        ])
        .await
        .expect("rewind");
    let second = backfiller
        .run(
            &BackfillOptions {
                limit: None,
                resume: true,
            },
            Drive::Drain(&app.pipeline),
            &cancel,
            &mut |_| {},
        )
        .await
        .expect("resume");
    assert!(second.resumed);
    assert_eq!(second.run, first.run);
    assert_eq!(
        second.subscriptions_listed, 0,
        "the run's pass over subscriptions was complete"
    );
    assert_eq!(
        sandbox
            .stripe_requests()
            .iter()
            .filter(|r| r["path"] == "/v1/subscriptions")
            .count(),
        10
    );
    assert_eq!(second.customers_before, 400);
    assert_eq!(second.total_customers, Some(600));
    assert_eq!(second.customers, 600);
    assert!(second.complete);
    assert_eq!(second.known, events_of(500..600));
    assert_eq!(second.new, events_of(0..500));
    assert_eq!(second.queue.events, events_of(0..1_000));
    assert_eq!(second.queue.finished, second.queue.events);

    match backfiller
        .run(
            &BackfillOptions {
                limit: None,
                resume: true,
            },
            Drive::Enqueue,
            &cancel,
            &mut |_| {},
        )
        .await
    {
        Err(BackfillError::NothingToResume(message)) => {
            assert!(message.contains("nothing to resume"), "{message}")
        }
        other => panic!("a finished backfill has nothing to resume: {other:?}"),
    }

    let (total, by) = contacts_by_customer(&sandbox);
    assert_eq!(total, 1_000, "one contact per customer, none twice");
    assert_eq!(by.len(), 1_000);
    for i in 0..1_000 {
        let c = by
            .get(&format!("cus_bf{i:04}"))
            .unwrap_or_else(|| panic!("customer {i} has no contact"));
        check_contact("bf", i, c);
    }
    let stats = sandbox.stats();
    let usage = &stats["tokens"][SandboxConfig::default().token.as_str()];
    assert_eq!(usage["rate_limited"], 0, "{stats}");
    let calls = usage["calls"].as_u64().expect("calls");
    // Batched like live traffic: one by one, each customer would cost three calls or more
    // (over 1.5 per event); batched runs measure about 0.1 per event, the exact figure
    // depends on how the work interleaves, so the bound leaves room.
    let events = events_of(0..1_000);
    assert!(
        calls * 4 < events,
        "{calls} HubSpot calls for {events} events: {stats}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_runs_the_workers_itself_and_resumes() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    sandbox.merge_seed(seed(150, "cmd")).expect("seed");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = sandbox_config_file(dir.path(), &sandbox, STRIPE_KEY);
    let run = |args: &'static [&'static str]| {
        let config = config.clone();
        async move {
            let mut all = vec!["backfill"];
            all.extend_from_slice(args);
            run_command(&config, &all).await
        }
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let out = run(&["--resume"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("there is no backfill to resume"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["--limit", "100"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("100 customers (0 in earlier runs)"),
        "{stdout}"
    );
    assert!(stdout.contains("more customers remain"), "{stdout}");
    assert!(
        text(&out.stderr).contains("backfill: 100/100 customers read"),
        "progress lines: {}",
        text(&out.stderr)
    );
    let (_, by) = contacts_by_customer(&sandbox);
    assert_eq!(by.len(), 100, "the command ran the workers itself");

    let out = run(&["--resume"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("50 customers (100 in earlier runs)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("every Stripe customer has been read"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "applied  {n} of the run's {n} events finished (0 dead",
            n = events_of(0..150)
        )),
        "{stdout}"
    );
    let (total, by) = contacts_by_customer(&sandbox);
    assert_eq!((total, by.len()), (150, 150));
    for i in 0..150 {
        check_contact("cmd", i, &by[&format!("cus_cmd{i:04}")]);
    }
}

/// Stripe answers 429 beyond its rate (here 2 requests per second, and a client allowed
/// far more): the requests are retried with a growing wait, the run goes on to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_429s_slow_the_backfill_without_ending_it() {
    let sandbox = spawn_sandbox(SandboxConfig {
        stripe: hubspot_sandbox::StripeBehaviour {
            requests_per_s: 2,
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    sandbox.merge_seed(seed(30, "rl")).expect("seed");
    let app = spawn_app_with(|s| use_sandbox(s, &sandbox), Clock::system()).await;
    let api =
        paybridge::stripe::api::StripeApi::new(&sandbox.url(), Secret::new(STRIPE_KEY.into()))
            .expect("client")
            .with_rate(100);
    let intake =
        paybridge::app::services::intake(&paybridge::rules::RuleSet::default(), app.store.clone());
    let done = Backfiller::new(api, intake)
        .run(
            &BackfillOptions::default(),
            Drive::Drain(&app.pipeline),
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .expect("the run ends well despite the 429s");
    assert!(done.complete);
    assert!(done.stripe_throttled >= 1, "{done:?}");
    assert_eq!(done.stripe_retried, done.stripe_throttled);
    let statuses: Vec<u64> = sandbox
        .stripe_requests()
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count() as u64,
        done.stripe_throttled
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    let (total, by) = contacts_by_customer(&sandbox);
    assert_eq!((total, by.len()), (30, 30));
    for i in 0..30 {
        check_contact("rl", i, &by[&format!("cus_rl{i:04}")]);
    }
    app.stop().await;
}
