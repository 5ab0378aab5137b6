//! The admin listener: the bearer token (refused without it, open only in sandbox mode
//! without one), the event API (list, show without card data, retry), and the metrics
//! contract (every `paybridge_*` metric emitted, labels from small fixed sets).

mod common;

use std::collections::BTreeSet;

use common::story::event;
use common::{TestApp, fixture, spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Faults, Sandbox, SandboxConfig};
use paybridge::domain::{Clock, EventId, EventStatus};
use serde_json::{Value, json};

const TOKEN: &str = "admin-test-token-0123456789abcdef";

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = app.client.get(format!("{}{path}", app.admin_url));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("answered");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = app
        .client
        .post(format!("{}{path}", app.admin_url))
        .json(&json!({"since": "1h"}));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.expect("answered");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn app_on(sandbox: &Sandbox, max_attempts: u32) -> TestApp {
    spawn_app_with(
        |s| {
            use_sandbox(s, sandbox);
            s.worker.max_attempts = max_attempts;
        },
        Clock::system(),
    )
    .await
}

async fn send(app: &TestApp, e: &Value) {
    let r = app.post_signed(&serde_json::to_vec(e).expect("json")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn every_admin_route_wants_the_token() {
    let app = common::spawn_app().await;
    // With the token, each route's own answer (not merely "not 401": a 500 is no pass).
    let routes: [(&str, &str, u16); 5] = [
        ("GET", "/metrics", 200),
        ("GET", "/api/events", 200),
        ("GET", "/api/events/evt_unknown", 404),
        ("POST", "/api/events/evt_unknown/retry", 404),
        ("POST", "/api/replay", 409), // no Stripe API key to replay with
    ];
    for (method, path, with_token) in routes {
        for token in [None, Some("wrong-token"), Some("admin-test-toke")] {
            let (status, body) = match method {
                "GET" => get(&app, path, token).await,
                _ => post(&app, path, token).await,
            };
            assert_eq!(status, 401, "{method} {path} with {token:?}");
            assert_eq!(body["error"], "unauthorized", "{method} {path}");
        }
        let (status, _) = match method {
            "GET" => get(&app, path, Some(TOKEN)).await,
            _ => post(&app, path, Some(TOKEN)).await,
        };
        assert_eq!(status, with_token, "{method} {path} with the token");
    }
    app.stop().await;

    // No token configured: refused, saying how to enable it; open only in sandbox mode.
    let closed = spawn_app_with(|s| s.server.admin_token = None, Clock::system()).await;
    let (status, body) = get(&closed, "/api/events", None).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("set server.admin_token")),
        "{body}"
    );
    closed.stop().await;
    let demo = spawn_app_with(
        |s| {
            s.server.admin_token = None;
            s.sandbox_mode = true;
        },
        Clock::system(),
    )
    .await;
    let (status, body) = get(&demo, "/api/events", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"data": [], "has_more": false}));
    demo.stop().await;
}

#[tokio::test]
async fn the_event_api_lists_shows_without_card_data_and_retries() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = app_on(&sandbox, 1).await;
    let now = chrono::Utc::now().timestamp();
    let paid = event(
        "invoice.paid.json",
        "evt_api_paid",
        "cus_api1",
        "api1@example.com",
        now - 30,
    );
    let charge = event(
        "charge.succeeded.json",
        "evt_api_charge",
        "cus_api2",
        "api2@example.com",
        now - 20,
    );
    let mut payout: Value = serde_json::from_slice(&fixture("invoice.paid.json")).expect("json");
    payout["id"] = "evt_api_payout".into();
    payout["type"] = "payout.paid".into();
    payout["created"] = (now - 10).into();
    for e in [&paid, &charge, &payout] {
        send(&app, e).await;
    }
    assert_eq!(app.drain().await, 2);
    // The next one meets a failing HubSpot with one attempt allowed: a dead letter.
    let doomed = event(
        "invoice.payment_failed.json",
        "evt_api_doomed",
        "cus_api3",
        "api3@example.com",
        now,
    );
    send(&app, &doomed).await;
    sandbox.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(app.drain().await, 1);
    sandbox.set_faults(Faults::default());

    // Newest first, paged with `after`.
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let (status, page1) = get(&app, "/api/events?limit=3", Some(TOKEN)).await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(
        ids(&page1),
        ["evt_api_doomed", "evt_api_payout", "evt_api_charge"]
    );
    assert_eq!(page1["has_more"], true);
    let (_, page2) = get(
        &app,
        "/api/events?limit=3&after=evt_api_charge",
        Some(TOKEN),
    )
    .await;
    assert_eq!(ids(&page2), ["evt_api_paid"]);
    assert_eq!(page2["has_more"], false);
    let (_, dead) = get(&app, "/api/events?status=dead", Some(TOKEN)).await;
    assert_eq!(ids(&dead), ["evt_api_doomed"]);
    assert_eq!(dead["data"][0]["attempts"], 1);
    let (_, by_type) = get(&app, "/api/events?type=charge.succeeded", Some(TOKEN)).await;
    assert_eq!(ids(&by_type), ["evt_api_charge"]);
    let (_, by_customer) = get(&app, "/api/events?customer=cus_api1", Some(TOKEN)).await;
    assert_eq!(ids(&by_customer), ["evt_api_paid"]);
    let (_, ignored) = get(&app, "/api/events?status=ignored", Some(TOKEN)).await;
    assert_eq!(ids(&ignored), ["evt_api_payout"]);
    let (status, body) = get(&app, "/api/events?status=lost", Some(TOKEN)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_status")));
    let (status, _) = get(&app, "/api/events?limit=0", Some(TOKEN)).await;
    assert_eq!(status, 400);

    // One event: a payload summary with no card detail, steps with timing and result.
    let (status, shown) = get(&app, "/api/events/evt_api_charge", Some(TOKEN)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["event"]["status"], "done");
    assert_eq!(shown["payload"]["customer"], "cus_api2");
    assert_eq!(shown["payload"]["amount"], "$49.00");
    let text = shown.to_string();
    for card in [
        "4242",
        "last4",
        "fingerprint",
        "q8Zr4LmT2vXb9NcE",
        "exp_year",
        "SW1Y",
        "831942",
    ] {
        assert!(!text.contains(card), "`{card}` leaked: {text}");
    }
    let steps = shown["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 1, "{shown}");
    assert_eq!(steps[0]["kind"], "update_contact");
    assert_eq!(steps[0]["status"], "done");
    assert!(steps[0]["result"]["contact_id"].is_string(), "{shown}");
    let duration = steps[0]["duration_ms"].as_i64().expect("duration_ms");
    assert_eq!(
        Some(duration),
        steps[0]["finished_at"]
            .as_i64()
            .zip(steps[0]["started_at"].as_i64())
            .map(|(f, s)| f - s)
    );
    let timeline: Vec<&str> = shown["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|t| t["message"].as_str())
        .collect();
    assert_eq!(timeline.first(), Some(&"attempt 1 started"));
    assert_eq!(timeline.last(), Some(&"done"));
    let (status, body) = get(&app, "/api/events/not-an-id", Some(TOKEN)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_id")));
    let (status, body) = get(&app, "/api/events/evt_nowhere", Some(TOKEN)).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    // Retry: the dead letter goes back in the queue and succeeds; an ignored one cannot.
    let (status, body) = post(&app, "/api/events/evt_api_doomed/retry", Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["retried"], true);
    let doomed_id = EventId::parse("evt_api_doomed").expect("id");
    let again = app
        .store
        .get_event(&doomed_id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(again.summary.status, EventStatus::Pending);
    assert_eq!(app.drain().await, 1);
    let (_, shown) = get(&app, "/api/events/evt_api_doomed", Some(TOKEN)).await;
    assert_eq!(shown["event"]["status"], "done", "{shown}");
    let (status, body) = post(&app, "/api/events/evt_api_payout/retry", Some(TOKEN)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_retryable"))
    );
    let (status, _) = post(&app, "/api/events/evt_nowhere/retry", Some(TOKEN)).await;
    assert_eq!(status, 404);
    // Replay needs Stripe's API.
    let (status, body) = post(&app, "/api/replay", Some(TOKEN)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("stripe_api_not_configured"))
    );
    app.stop().await;
}

/// The label values `label` takes on the lines of metric `name`.
fn label_values(text: &str, name: &str, label: &str) -> BTreeSet<String> {
    let needle = format!("{label}=\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter_map(|l| {
            let start = l.find(&needle)? + needle.len();
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .collect()
}

/// The sum of a counter's series in Prometheus text format.
fn counter_total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.trim_end().rsplit_once(' ')?;
            let metric = series.split('{').next()?.trim();
            (metric == name)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .fold(0.0, |a, b| a + b)
}

#[test]
fn counters_are_summed_over_their_series() {
    let text = "# TYPE paybridge_hubspot_calls_total counter\n\
        paybridge_hubspot_calls_total{route=\"contacts_upsert\",status=\"2xx\"} 12\n\
        paybridge_hubspot_calls_total{route=\"tasks\",status=\"4xx\"} 3\n\
        paybridge_hubspot_calls_total_other 100\n\
        paybridge_hubspot_429_total{route=\"tasks\"} 2\n";
    assert_eq!(counter_total(text, "paybridge_hubspot_calls_total"), 15.0);
    assert_eq!(counter_total(text, "paybridge_hubspot_429_total"), 2.0);
    assert_eq!(counter_total(text, "missing"), 0.0);
    assert_eq!(counter_total("", "x").to_string(), "0", "not -0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_emitted_with_small_fixed_label_sets() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = app_on(&sandbox, 1).await;
    let now = chrono::Utc::now().timestamp();
    // Accepted, duplicate, ignored, refused.
    let paid = event(
        "invoice.paid.json",
        "evt_m_paid",
        "cus_m1",
        "m1@example.com",
        now - 5,
    );
    send(&app, &paid).await;
    send(&app, &paid).await;
    let mut payout = paid.clone();
    payout["id"] = "evt_m_payout".into();
    payout["type"] = "payout.paid".into();
    send(&app, &payout).await;
    let refused = app
        .post_with_header(b"{}", Some("t=1,v1=00"))
        .await
        .status();
    assert_eq!(refused, 400);
    assert_eq!(app.drain().await, 1);
    // A dead letter.
    send(
        &app,
        &event(
            "invoice.payment_failed.json",
            "evt_m_dead",
            "cus_m2",
            "m2@example.com",
            now,
        ),
    )
    .await;
    sandbox.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(app.drain().await, 1);
    // A 429: HubSpot refuses everything until the client has met one, then recovers;
    // the client waits (no attempt is lost).
    sandbox.set_faults(Faults {
        force_429: true,
        ..Faults::default()
    });
    send(
        &app,
        &event(
            "invoice.paid.json",
            "evt_m_429",
            "cus_m3",
            "m3@example.com",
            now,
        ),
    )
    .await;
    let pipeline = app.pipeline.clone();
    let drained = tokio::spawn(async move { paybridge::worker::drain(&pipeline).await });
    let waited = std::time::Instant::now();
    while sandbox.stats()["total_429"].as_u64().unwrap_or(0) == 0 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(20),
            "no 429 was served"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    sandbox.set_faults(Faults::default());
    assert_eq!(drained.await.expect("joins").expect("drain"), 1);
    let done = app
        .store
        .get_event_summary("evt_m_429")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(done.status, EventStatus::Done);
    assert_eq!(done.attempts, 1, "a 429 is a wait, not an attempt");

    let (status, text) = get(&app, "/metrics", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let text = text.as_str().expect("Prometheus text").to_owned();
    for name in [
        "paybridge_events_received_total",
        "paybridge_webhooks_refused_total",
        "paybridge_intake_latency_seconds",
        "paybridge_queue_pushed_total",
        "paybridge_queue_popped_total",
        "paybridge_queue_depth",
        "paybridge_job_attempts_total",
        "paybridge_job_seconds",
        "paybridge_hubspot_calls_total",
        "paybridge_hubspot_429_total",
        "paybridge_hubspot_limiter_wait_seconds",
        "paybridge_hubspot_call_seconds",
        "paybridge_payment_to_crm_seconds",
        "paybridge_dead_letters_total",
        "paybridge_store_commit_size",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} is not emitted:\n{text}"
        );
    }
    let types = label_values(&text, "paybridge_events_received_total", "type");
    let allowed: BTreeSet<String> = [
        "invoice",
        "charge",
        "customer",
        "subscription",
        "checkout",
        "payment_intent",
        "refund",
        "other",
    ]
    .map(String::from)
    .into();
    assert!(types.is_subset(&allowed), "{types:?}");
    assert!(
        types.contains("invoice") && types.contains("other"),
        "{types:?}"
    );
    let outcomes = label_values(&text, "paybridge_events_received_total", "outcome");
    for o in ["accepted", "duplicate", "ignored"] {
        assert!(outcomes.contains(o), "{outcomes:?}");
    }
    let statuses = label_values(&text, "paybridge_hubspot_calls_total", "status");
    let classes: BTreeSet<String> = ["2xx", "4xx", "429", "5xx", "error"]
        .map(String::from)
        .into();
    assert!(statuses.is_subset(&classes), "{statuses:?}");
    assert!(
        statuses.contains("429") && statuses.contains("5xx"),
        "{statuses:?}"
    );
    assert!(
        counter_total(&text, "paybridge_hubspot_429_total") >= 1.0,
        "{text}"
    );
    let attempts = label_values(&text, "paybridge_job_attempts_total", "outcome");
    assert!(
        attempts.contains("done") && attempts.contains("dead"),
        "{attempts:?}"
    );
    for line in text.lines().filter(|l| l.starts_with("paybridge_")) {
        assert!(
            !line.contains("evt_") && !line.contains("cus_"),
            "an id in a label: {line}"
        );
    }
    app.stop().await;
}
