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
