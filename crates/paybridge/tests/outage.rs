//! A HubSpot outage longer than a job's attempts last (issue 14): once HubSpot fails
//! broadly, jobs wait for it without spending attempts, and every event ends done.

mod common;

use std::time::{Duration, SystemTime};

use common::story::event;
use common::{spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Faults, SandboxConfig};
use paybridge::domain::{Clock, EventStatus};
use paybridge::store::EventFilter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_are_not_spent_while_hubspot_is_down() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    // Six attempts 100–400 ms apart last about two seconds: without the breaker, an
    // eight-second outage would leave every event dead.
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.worker.max_attempts = 6;
            s.worker.backoff_base = Duration::from_millis(100);
            s.worker.backoff_max = Duration::from_millis(400);
        },
        Clock::system(),
    )
    .await;
    sandbox.set_faults(Faults {
        outage_until: Some(SystemTime::now() + Duration::from_secs(8)),
        ..Faults::default()
    });
    for i in 0..10 {
        let e = event(
            "invoice.paid.json",
            &format!("evt_outage_{i}"),
            &format!("cus_outage{i}"),
            &format!("outage{i}@example.com"),
            1_790_000_000 + i,
        );
        let r = app
            .post_signed(&serde_json::to_vec(&e).expect("json"))
            .await;
        assert_eq!(r.status(), 200);
    }
    app.drain().await;
    let events = app
        .store
        .list_events(&EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(events.len(), 10);
    for e in &events {
        assert_eq!(e.status, EventStatus::Done, "{e:?}");
        assert!(e.attempts <= 6, "{e:?}");
    }
    let waited = app
        .store
        .timeline("evt_outage_0")
        .await
        .expect("timeline")
        .iter()
        .any(|t| t.message.contains("not counted as an attempt"));
    assert!(waited, "the first event waited for HubSpot");
    assert_eq!(
        sandbox.state()["contacts"].as_array().map(Vec::len),
        Some(10)
    );
    // The outage shows on /metrics: the breaker opened, and is closed again.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.admin_url))
        .bearer_auth("admin-test-token-0123456789abcdef")
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("body");
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    assert!(
        value("paybridge_hubspot_breaker_opened_total").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert_eq!(
        value("paybridge_hubspot_breaker_open "),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("outcome=\"waiting_for_hubspot\""),
        "{metrics}"
    );
    app.stop().await;
}
