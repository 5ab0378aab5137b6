//! `kill -9` in the middle of a stream of webhooks: every event that got a 200 is there
//! after the restart, none twice, and Stripe's retries of the rest are taken.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::process::start_serve;
use common::{SECRET, event_json};
use paybridge::domain::Clock;
use paybridge::store::{EventFilter, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("crash.db");
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n[hubspot]\ntoken = \"pat-test\"\n",
            db.display()
        ),
    )
    .expect("config");
    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let url = server.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut posters = Vec::new();
    for worker in 0..16 {
        let url = url.clone();
        let stop = stop.clone();
        posters.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            let mut attempted = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("evt_crash_{worker}_{i}");
                i += 1;
                let now = chrono::Utc::now().timestamp();
                let body = event_json(&id, "invoice.paid", &format!("cus_{}", i % 7), now);
                let header = paybridge::stripe::sign(SECRET, now, &body);
                attempted.push(id.clone());
                match client
                    .post(format!("{url}/webhooks/stripe"))
                    .header("Stripe-Signature", header)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => acknowledged.push(id),
                    Ok(_) => {}
                    Err(_) => break, // the server died mid-request
                }
            }
            (acknowledged, attempted)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.sigkill();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    for p in posters {
        let (a, t) = p.await.expect("join");
        acknowledged.extend(a);
        attempted.extend(t);
    }
    assert!(
        acknowledged.len() > 100,
        "the stream was running: {}",
        acknowledged.len()
    );

    // Restart the real binary on the same file: it must come up (WAL recovery) and accept
    // Stripe's retries of everything, acknowledged or not, storing each event once.
    let mut again = start_serve(dir.path(), Some(&config), &[]);
    let client = reqwest::Client::new();
    for id in &attempted {
        let now = chrono::Utc::now().timestamp();
        let body = event_json(id, "invoice.paid", "cus_retry", now);
        let header = paybridge::stripe::sign(SECRET, now, &body);
        let r = client
            .post(format!("{}/webhooks/stripe", again.url))
            .header("Stripe-Signature", header)
            .body(body)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.expect("json");
        if acknowledged.contains(id) {
            assert_eq!(
                v["duplicate"], true,
                "{id} was acknowledged before the crash, so it must be stored"
            );
        }
    }
    again.sigterm();

    let store = Store::open(&format!("sqlite://{}", db.display()), Clock::system())
        .await
        .expect("reopen");
    let stored = store
        .list_events(&EventFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .expect("list");
    let ids: BTreeSet<String> = stored.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), stored.len(), "no event twice");
    assert_eq!(ids, attempted, "every delivered event stored exactly once");
    assert_eq!(
        store.queue_depth().await.expect("depth"),
        attempted.len() as i64,
        "one job per event"
    );
    store.close().await;
}

/// The pipeline run of `pipeline.rs` (100 customers, shuffled, 20% twice, 5xx faults),
/// with the real binary killed with SIGKILL half-way and restarted: the same end state,
/// no duplicate contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_pipeline_reaches_the_same_end_state() {
    use common::story::customer_story;
    use hubspot_sandbox::{Faults, SandboxConfig};
    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    let sandbox = common::spawn_sandbox(SandboxConfig {
        requests_per_10s: 100,
        ..SandboxConfig::default()
    })
    .await;
    sandbox.set_faults(Faults {
        error_rate: 0.10,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("pipeline.db");
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n[hubspot]\ntoken = \"sandbox-token\"\napi_base = \"{}\"\n[worker]\nbackoff_base = \"100ms\"\nbackoff_max = \"2s\"\nlease = \"5s\"\n",
            db.display(),
            sandbox.url()
        ),
    )
    .expect("config");
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..100 {
        let (e, x) = customer_story("crash", i, 1_790_000_000);
        events.extend(e);
        expected.push(x);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let twice: Vec<serde_json::Value> = events
        .iter()
        .filter(|_| rand::Rng::random_bool(&mut rng, 0.2))
        .cloned()
        .collect();
    events.extend(twice);
    events.shuffle(&mut rng);

    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let client = reqwest::Client::new();
    let post = |url: String, e: &serde_json::Value| {
        let body = serde_json::to_vec(e).expect("json");
        let now = chrono::Utc::now().timestamp();
        client
            .post(format!("{url}/webhooks/stripe"))
            .header(
                "Stripe-Signature",
                paybridge::stripe::sign(SECRET, now, &body),
            )
            .body(body)
            .send()
    };
    for e in &events {
        assert_eq!(
            post(server.url.clone(), e)
                .await
                .expect("answered")
                .status(),
            200
        );
    }
    // Let the workers get part of the way, then kill the process without warning.
    let store = Store::open(&format!("sqlite://{}", db.display()), Clock::system())
        .await
        .expect("open");
    let done = |store: Store| async move {
        store
            .list_events(&EventFilter {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .expect("list")
            .iter()
            .filter(|e| e.status == paybridge::domain::EventStatus::Done)
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while done(store.clone()).await < 150 {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers made no progress"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.sigkill();
    let at_kill = done(store.clone()).await;
    assert!(at_kill < 500, "killed mid-run ({at_kill} done)");

    let mut again = start_serve(dir.path(), Some(&config), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let all = store
            .list_events(&EventFilter {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .expect("list");
        if all
            .iter()
            .all(|e| e.status == paybridge::domain::EventStatus::Done)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not finished after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    again.sigterm();
    store.close().await;

    let state = sandbox.state();
    let contacts = state["contacts"].as_array().cloned().unwrap_or_default();
    assert_eq!(contacts.len(), 100, "no duplicate contacts after the crash");
    for x in &expected {
        let c = contacts
            .iter()
            .find(|c| c["properties"]["stripe_customer_id"] == x.customer.as_str())
            .unwrap_or_else(|| panic!("{} has no contact", x.customer));
        assert_eq!(
            c["properties"]["stripe_subscription_status"],
            x.status.as_str(),
            "{}",
            x.customer
        );
        assert_eq!(
            c["properties"]["stripe_last_payment_date"],
            x.last_payment_date.as_str()
        );
        assert_eq!(
            c["properties"]["stripe_last_payment_failed_date"],
            x.last_failed_date.as_str()
        );
        assert_eq!(c["properties"]["stripe_delinquent"], "true");
    }
}

/// 2,000 events (400 customers' lives, shuffled, 10% redelivered) posted while HubSpot
/// fails 10% of calls with 5xx and has two 429 storms, and the real binary is killed with
/// SIGKILL five times mid-burst (intake and workers both busy) and restarted: every event
/// is acknowledged in the end and done once, the CRM holds exactly one contact per
/// customer with the story's final properties, and exactly one task and one note per
/// payment (a retried create never creates twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_kill_9s_in_a_faulty_burst_lose_nothing_and_do_nothing_twice() {
    use std::sync::Mutex;

    use common::story::customer_story;
    use hubspot_sandbox::{Faults, SandboxConfig};
    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    const CUSTOMERS: usize = 400;
    let sandbox = common::spawn_sandbox(SandboxConfig {
        requests_per_10s: 1_000,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("burst.db");
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[store]
url = "sqlite://{}"
[stripe]
webhook_secrets = ["{SECRET}"]
[hubspot]
token = "sandbox-token"
api_base = "{}"
requests_per_10s = 900
search_per_s = 10
[worker]
backoff_base = "100ms"
backoff_max = "1s"
lease = "2s"
max_attempts = 100
[[rules]]
name = "paid"
on = ["invoice.paid"]
actions = [
  {{ type = "create_task", subject = "Paid {{{{ event.id }}}}" }},
  {{ type = "create_note", body = "Payment {{{{ event.id }}}}" }},
]
"#,
            db.display(),
            sandbox.url()
        ),
    )
    .expect("config");
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..CUSTOMERS {
        let (e, x) = customer_story("burst", i, 1_790_000_000);
        events.extend(e);
        expected.push(x);
    }
    assert_eq!(events.len(), 2_000);
    let payments: BTreeSet<String> = events
        .iter()
        .filter(|e| e["type"] == "invoice.paid")
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let again: Vec<serde_json::Value> = events
        .iter()
        .filter(|_| rand::Rng::random_bool(&mut rng, 0.1))
        .cloned()
        .collect();
    events.extend(again);
    events.shuffle(&mut rng);
    let total = events.len();

    sandbox.set_faults(Faults {
        error_rate: 0.10,
        ..Faults::default()
    });
    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let url = Arc::new(Mutex::new(server.url.clone()));
    let queue = Arc::new(Mutex::new(events));
    let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut posters = Vec::new();
    for _ in 0..16 {
        let (url, queue, acknowledged) = (url.clone(), queue.clone(), acknowledged.clone());
        posters.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let Some(event) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                    return;
                };
                let body = serde_json::to_vec(&event).expect("json");
                let now = chrono::Utc::now().timestamp();
                let target = url.lock().map(|u| u.clone()).unwrap_or_default();
                let answered = client
                    .post(format!("{target}/webhooks/stripe"))
                    .header(
                        "Stripe-Signature",
                        paybridge::stripe::sign(SECRET, now, &body),
                    )
                    .body(body)
                    .send()
                    .await;
                match answered {
                    Ok(r) if r.status() == 200 => {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    // Not acknowledged: Stripe delivers it again (to the restarted server).
                    _ => {
                        if let Ok(mut q) = queue.lock() {
                            q.insert(0, event);
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    // Five kills, spread over the burst; two 429 storms on the way.
    for kill in 1..=5usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while acknowledged.load(Ordering::Relaxed) < kill * total / 6 {
            assert!(std::time::Instant::now() < deadline, "intake stalled");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        server.sigkill();
        server = start_serve(dir.path(), Some(&config), &[]);
        if let Ok(mut u) = url.lock() {
            *u = server.url.clone();
        }
        // A 429 storm from the 2nd restart to the 3rd kill, and from the 4th to the 5th:
        // every HubSpot call answered 429 while intake and the kills go on.
        sandbox.set_faults(Faults {
            error_rate: 0.10,
            force_429: kill == 2 || kill == 4,
            ..Faults::default()
        });
    }
    for p in posters {
        p.await.expect("poster");
    }
    assert_eq!(acknowledged.load(Ordering::Relaxed), total);

    let store = Store::open(&format!("sqlite://{}", db.display()), Clock::system())
        .await
        .expect("open");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        let all = store
            .list_events(&EventFilter {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(all.len(), 2_000, "every event stored once");
        let open: Vec<_> = all
            .iter()
            .filter(|e| e.status != paybridge::domain::EventStatus::Done)
            .collect();
        if open.is_empty() {
            break;
        }
        assert!(
            open.iter().all(|e| !matches!(
                e.status,
                paybridge::domain::EventStatus::Dead
                    | paybridge::domain::EventStatus::NeedsAttention
            )),
            "{:?}",
            open.iter()
                .map(|e| (&e.id, e.status, &e.last_error))
                .collect::<Vec<_>>()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{} not done",
            open.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.sigterm();
    store.close().await;

    let stats = sandbox.stats();
    let storms = stats["total_429"].as_u64().unwrap_or(0);
    let faults = stats["faults_served"].as_u64().unwrap_or(0);
    assert!(storms > 0 && faults > 0, "the faults happened: {stats}");
    let state = sandbox.state();
    let contacts = state["contacts"].as_array().cloned().unwrap_or_default();
    assert_eq!(contacts.len(), CUSTOMERS, "one contact per customer");
    for x in &expected {
        let c = contacts
            .iter()
            .find(|c| c["properties"]["stripe_customer_id"] == x.customer.as_str())
            .unwrap_or_else(|| panic!("{} has no contact", x.customer));
        let p = &c["properties"];
        assert_eq!(
            p["stripe_subscription_status"],
            x.status.as_str(),
            "{}",
            x.customer
        );
        assert_eq!(p["stripe_last_payment_date"], x.last_payment_date.as_str());
        assert_eq!(
            p["stripe_last_payment_failed_date"],
            x.last_failed_date.as_str()
        );
        assert_eq!(p["stripe_delinquent"], x.delinquent.as_str());
    }
    for (kind, property, prefix) in [
        ("tasks", "hs_task_subject", "Paid "),
        ("notes", "hs_note_body", "Payment "),
    ] {
        let made: Vec<String> = state[kind]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t["properties"][property].as_str().map(str::to_owned))
            .collect();
        let distinct: BTreeSet<String> = made
            .iter()
            // A note's body ends with paybridge's own marker (`<p>[paybridge:KEY]</p>`).
            .filter_map(|s| s.strip_prefix(prefix))
            .map(|s| {
                s.split("<p>[paybridge:")
                    .next()
                    .unwrap_or(s)
                    .trim()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            made.len(),
            payments.len(),
            "{kind}: one per payment, none twice"
        );
        let missing: Vec<_> = payments.difference(&distinct).collect();
        let extra: Vec<_> = distinct.difference(&payments).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{kind}: missing {missing:?}, unexpected {extra:?}"
        );
    }
}
