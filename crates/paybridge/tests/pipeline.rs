//! The pipeline against the sandbox: contact resolution without duplicates, the stale guard,
//! exactly-once steps, retries through faults, dead letters with one alert.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::story::customer_story;
use common::{spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Faults, SandboxConfig};
use paybridge::domain::{Clock, EventStatus};
use paybridge::store::EventFilter;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::Value;

fn contacts(state: &Value) -> Vec<Value> {
    state["contacts"].as_array().cloned().unwrap_or_default()
}

fn prop<'a>(contact: &'a Value, name: &str) -> Option<&'a str> {
    contact["properties"][name].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_duplicated_faulty_stream_ends_in_the_exact_state() {
    let sandbox = spawn_sandbox(SandboxConfig {
        requests_per_10s: 100,
        search_lag: Duration::from_secs(2),
        ..SandboxConfig::default()
    })
    .await;
    let app = spawn_app_with(|s| use_sandbox(s, &sandbox), Clock::system()).await;
    sandbox.set_faults(Faults {
        error_rate: 0.10,
        ..Faults::default()
    });

    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..100 {
        let (e, x) = customer_story("shuf", i, 1_790_000_000);
        events.extend(e);
        expected.push(x);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let twice: Vec<Value> = events
        .iter()
        .filter(|_| rand::Rng::random_bool(&mut rng, 0.2))
        .cloned()
        .collect();
    events.extend(twice);
    events.shuffle(&mut rng);
    assert!(events.len() >= 580, "{}", events.len());
    for e in &events {
        let r = app.post_signed(&serde_json::to_vec(e).expect("json")).await;
        assert_eq!(r.status(), 200);
    }
    app.drain().await;
    sandbox.set_faults(Faults::default());

    let state = sandbox.state();
    let all = contacts(&state);
    assert_eq!(all.len(), 100, "exactly one contact per customer");
    let by_customer: BTreeMap<&str, &Value> = all
        .iter()
        .filter_map(|c| prop(c, "stripe_customer_id").map(|id| (id, c)))
        .collect();
    assert_eq!(by_customer.len(), 100);
    for x in &expected {
        let c = by_customer
            .get(x.customer.as_str())
            .unwrap_or_else(|| panic!("{} has no contact", x.customer));
        assert_eq!(prop(c, "email"), Some(x.email.as_str()), "{}", x.customer);
        assert_eq!(
            prop(c, "stripe_subscription_status"),
            Some(x.status.as_str()),
            "{}",
            x.customer
        );
        assert_eq!(
            prop(c, "stripe_last_payment_date"),
            Some(x.last_payment_date.as_str()),
            "{}",
            x.customer
        );
        assert_eq!(
            prop(c, "stripe_last_payment_failed_date"),
            Some(x.last_failed_date.as_str()),
            "{}",
            x.customer
        );
        assert_eq!(
            prop(c, "stripe_delinquent"),
            Some(x.delinquent.as_str()),
            "{}",
            x.customer
        );
        assert_eq!(prop(c, "stripe_last_payment_amount"), Some("49.00"));
    }
    let stats = sandbox.stats();
    assert_eq!(
        stats["total_429"], 0,
        "the limiter kept us under HubSpot's budget: {stats}"
    );
    assert!(
        stats["faults_served"].as_u64().unwrap_or(0) > 0,
        "faults were injected: {stats}"
    );
    let not_done = app
        .store
        .list_events(&EventFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_iter()
        .filter(|e| e.status != EventStatus::Done)
        .map(|e| format!("{} {} {:?}", e.id, e.status, e.last_error))
        .collect::<Vec<_>>();
    assert!(not_done.is_empty(), "{not_done:#?}");
    app.stop().await;
}
