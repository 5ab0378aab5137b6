//! The pipeline against the sandbox: contact resolution without duplicates, the stale guard,
//! exactly-once steps, retries through faults, dead letters with one alert.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::story::{customer_story, shuffled_stories};
use common::{spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Faults, SandboxConfig};
use paybridge::domain::{Clock, EventStatus};
use paybridge::store::EventFilter;
use serde_json::Value;

fn contacts(state: &Value) -> Vec<Value> {
    state["contacts"].as_array().cloned().unwrap_or_default()
}

fn prop<'a>(contact: &'a Value, name: &str) -> Option<&'a str> {
    contact["properties"][name].as_str()
}

/// 500 events for 100 customers (each: signup, subscription, first payment, failed renewal,
/// subscription update), 20% delivered twice, fully shuffled, through the starter's rules
/// (tasks, deals, tickets, workflows, lists, provisioning calls, the dunning sequence run to
/// its end on the manual clock), against a sandbox with a 2 s search lag, 190 requests /
/// 10 s, 10% injected 5xx and 5% of writes carried out with their answer lost (a 502 or a
/// dropped connection). Guards "never acts twice" where HubSpot did the work and paybridge
/// did not hear it: exactly one contact, onboarding task, deal, dunning ticket, sequence
/// note and task, and enrolment per customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_duplicated_faulty_stream_ends_in_the_exact_state() {
    let sandbox = spawn_sandbox(SandboxConfig {
        requests_per_10s: 190,
        search_lag: Duration::from_secs(2),
        ..SandboxConfig::default()
    })
    .await;
    let slack = common::receiver::Receiver::start(vec![]).await;
    let provisioning = common::receiver::Receiver::start(vec![]).await;
    // The account's larger burst limit (190 per 10 s), with paybridge's budget under it.
    let config = common::starter_with_receivers(
        &format!("{}/slack", slack.url),
        &format!("{}/provision", provisioning.url),
    )
    .replace("requests_per_10s = 90", "requests_per_10s = 180");
    let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
    let app = common::spawn_app_with_config(&config, &sandbox, clock.clone()).await;
    sandbox.set_faults(Faults {
        error_rate: 0.10,
        lost_answer_rate: 0.05,
        ..Faults::default()
    });

    let (events, expected) = shuffled_stories("shuf", 100, 0.2, 7);
    assert!(events.len() >= 580, "{}", events.len());
    for e in &events {
        let r = app.post_signed(&serde_json::to_vec(e).expect("json")).await;
        assert_eq!(r.status(), 200);
    }
    app.drain().await;
    // The dunning sequence's later steps run too, under the same faults: step 1 three days
    // after step 0, step 2 four days after step 1 ran.
    for _ in 0..2 {
        clock.advance_ms(4 * 86_400_000);
        app.drain().await;
    }
    let stats = sandbox.stats();
    sandbox.set_faults(Faults::default());
    assert!(
        stats["answers_lost"].as_u64().unwrap_or(0) >= 10,
        "answers were lost after the write: {stats}"
    );

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
        assert_eq!(
            prop(c, "lifecyclestage"),
            Some("customer"),
            "{}",
            x.customer
        );
        // One of each created record per customer, however often events were delivered
        // or retried: the onboarding task and deal, the dunning ticket, the sequence's
        // note (day 3) and tasks (days 3 and 7).
        for (kind, n) in [("tasks", 3), ("deals", 1), ("tickets", 1), ("notes", 1)] {
            let linked = c["associations"][kind]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            if linked != n {
                let jobs = app
                    .store
                    .sequence_jobs(&x.customer, "payment_recovery")
                    .await
                    .expect("sequence jobs");
                let ids = c["associations"][kind].clone();
                let records: Vec<&Value> = state[kind]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| ids.as_array().is_some_and(|ids| ids.contains(&r["id"])))
                    .collect();
                panic!(
                    "{} has {linked} {kind}: {records:#?}; its sequence steps: {jobs:?}",
                    x.customer
                );
            }
        }
    }
    for (kind, n) in [
        ("tasks", 300),
        ("deals", 100),
        ("tickets", 100),
        ("notes", 100),
    ] {
        let records = state[kind].as_array().cloned().unwrap_or_default();
        assert_eq!(records.len(), n, "{kind}");
        let keys: std::collections::BTreeSet<String> = records
            .iter()
            .map(|r| {
                let p = &r["properties"];
                p["paybridge_key"]
                    .as_str()
                    .or(p["hs_task_body"].as_str())
                    .or(p["hs_note_body"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(keys.len(), records.len(), "no duplicate {kind}");
    }
    // Each customer enrolled once in onboarding (123456) and once by dunning step 0 (222).
    let enrollments = state["enrollments"].as_array().cloned().unwrap_or_default();
    for workflow in ["123456", "222"] {
        let n = enrollments
            .iter()
            .filter(|e| e["workflowId"] == workflow)
            .count();
        assert_eq!(n, 100, "workflow {workflow} enrolments");
    }
    // One provisioning call per new subscription, each with its own idempotency key.
    let calls = provisioning.received().len();
    let keys = provisioning.distinct_header("idempotency-key");
    assert_eq!((calls, keys.len()), (100, 100));
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

#[tokio::test]
async fn a_terminal_error_is_dead_after_one_attempt_with_hubspots_words_and_one_alert() {
    // The portal lacks one property the financial plan writes.
    let defs: Vec<_> = paybridge::rules::properties::builtin("stripe_customer_id")
        .into_iter()
        .filter(|d| d.name != "stripe_last_payment_amount")
        .collect();
    let sandbox = common::spawn_sandbox_with(SandboxConfig::default(), defs).await;
    let slack = common::receiver::Receiver::start(vec![]).await;
    let slack_url = format!("{}/services/T000/B000/XXXX", slack.url);
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.alerts.slack_webhook_url = Some(paybridge::basics::Secret::new(slack_url));
        },
        Clock::system(),
    )
    .await;
    let (events, _) = customer_story("term", 1, 1_790_000_000);
    let paid = &events[2];
    assert_eq!(paid["type"], "invoice.paid");
    app.post_signed(&serde_json::to_vec(paid).expect("json"))
        .await;
    app.drain().await;

    let id = paybridge::domain::EventId::parse(paid["id"].as_str().expect("id")).expect("id");
    let event = app
        .store
        .get_event(&id)
        .await
        .expect("get")
        .expect("stored")
        .summary;
    assert_eq!(event.status, EventStatus::Dead);
    assert_eq!(event.attempts, 1, "terminal errors are not retried");
    let error = event.last_error.unwrap_or_default();
    assert!(
        error.contains("VALIDATION_ERROR") && error.contains("stripe_last_payment_amount"),
        "{error}"
    );

    let alerts = slack.received();
    assert_eq!(alerts.len(), 1);
    let body: Value = serde_json::from_slice(&alerts[0].body).expect("Slack JSON");
    assert!(
        body["text"]
            .as_str()
            .unwrap_or_default()
            .contains(id.as_str())
    );

    // Retried by an operator, it fails the same way: no second alert for the same event.
    assert_eq!(
        app.store
            .retry_events(&[id.to_string()])
            .await
            .expect("retry")
            .len(),
        1
    );
    app.drain().await;
    let event = app
        .store
        .get_event(&id)
        .await
        .expect("get")
        .expect("stored")
        .summary;
    assert_eq!(event.status, EventStatus::Dead);
    assert_eq!(slack.received().len(), 1, "at most one alert per event");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_outage_delays_but_loses_nothing() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.worker.backoff_base = Duration::from_secs(1);
            s.worker.backoff_max = Duration::from_secs(8);
            s.worker.max_attempts = 20;
        },
        Clock::system(),
    )
    .await;
    sandbox.set_faults(Faults {
        outage_until: Some(std::time::SystemTime::now() + Duration::from_secs(30)),
        ..Faults::default()
    });
    let outage_ends = std::time::Instant::now() + Duration::from_secs(30);
    let mut expected = Vec::new();
    for i in 0..20 {
        let (events, x) = customer_story("outage", i, 1_790_000_000);
        for e in &events {
            assert_eq!(
                app.post_signed(&serde_json::to_vec(e).expect("json"))
                    .await
                    .status(),
                200
            );
        }
        expected.push(x);
    }
    app.drain().await;
    // Measured from the outage's own end, not from after the posts (a slow disk makes
    // them take long): nothing could finish while HubSpot was down.
    assert!(
        std::time::Instant::now() >= outage_ends,
        "the drain ended before the outage did"
    );
    let events = app
        .store
        .list_events(&EventFilter {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(
        events.iter().all(|e| e.status == EventStatus::Done),
        "nothing dead"
    );
    assert!(
        events.iter().any(|e| e.attempts > 1),
        "the outage caused retries"
    );
    let state = sandbox.state();
    assert_eq!(contacts(&state).len(), 20);
    for x in &expected {
        let c = contacts(&state)
            .into_iter()
            .find(|c| prop(c, "stripe_customer_id") == Some(x.customer.as_str()))
            .expect("contact");
        assert_eq!(
            prop(&c, "stripe_subscription_status"),
            Some(x.status.as_str())
        );
    }
    app.stop().await;
}
