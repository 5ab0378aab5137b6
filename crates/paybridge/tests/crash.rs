//! `kill -9` in the middle of a stream of webhooks: every event that got a 200 is there
//! after the restart, none twice, and Stripe's retries of the rest are taken.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::process::start_serve;
use common::story::shuffled_stories;
use common::{SECRET, event_json, post_signed_to};
use paybridge::domain::Clock;
use paybridge::store::{EventFilter, Store};

/// Every event that got a 200 before `kill -9` is stored after the restart, once; Stripe's
/// retries of the rest are taken. The kill comes once 200 events are acknowledged (not
/// after a time, which a slow disk would make too early), and the workers call a local
/// sandbox (before, they called the real HubSpot with a fake token and passed only while
/// that failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9() {
    const BEFORE_THE_KILL: usize = 200;
    let sandbox = common::spawn_sandbox(hubspot_sandbox::SandboxConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // SQLite, or Postgres with PAYBRIDGE_TEST_STORE=postgres (see common::pg).
    let db = common::pg::store_url_for(dir.path());
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\nurl = \"{}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n[hubspot]\ntoken = \"sandbox-token\"\napi_base = \"{}\"\n",
            db,
            sandbox.url()
        ),
    )
    .expect("config");
    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let url = server.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut posters = Vec::new();
    for worker in 0..16 {
        let url = url.clone();
        let stop = stop.clone();
        let acked = acked.clone();
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
                    Ok(r) if r.status() == 200 => {
                        acknowledged.push(id);
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break, // the server died mid-request
                }
            }
            (acknowledged, attempted)
        }));
    }
    wait_until("the first acknowledgements", || {
        acked.load(Ordering::Relaxed) >= BEFORE_THE_KILL
    })
    .await;
    server.sigkill();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    for p in posters {
        let (a, t) = p.await.expect("join");
        acknowledged.extend(a);
        attempted.extend(t);
    }
    assert!(acknowledged.len() >= BEFORE_THE_KILL);

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

    let store = Store::open(&db, Clock::system()).await.expect("reopen");
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
    store.close().await;
    // One job per event (whether the workers have run it yet or not).
    let db = sqlx::AnyPool::connect(&db).await.expect("open");
    let jobs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_id, COUNT(*) FROM jobs WHERE kind = 'event' GROUP BY event_id",
    )
    .fetch_all(&db)
    .await
    .expect("jobs");
    db.close().await;
    assert!(jobs.iter().all(|(_, n)| *n == 1), "one job per event");
    let with_jobs: BTreeSet<String> = jobs.into_iter().map(|(id, _)| id).collect();
    assert_eq!(with_jobs, attempted, "every event has its job");
}

/// The pipeline run of `pipeline.rs` (100 customers, shuffled, 20% twice, 10% 5xx, 5% of
/// writes with their answer lost), with the real binary killed with SIGKILL half-way and
/// restarted: the same end state, no duplicate contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_pipeline_reaches_the_same_end_state() {
    use hubspot_sandbox::{Faults, SandboxConfig};

    let sandbox = common::spawn_sandbox(SandboxConfig {
        requests_per_10s: 100,
        ..SandboxConfig::default()
    })
    .await;
    let faulty = Faults {
        error_rate: 0.10,
        lost_answer_rate: 0.05,
        ..Faults::default()
    };
    sandbox.set_faults(faulty.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    // SQLite, or Postgres with PAYBRIDGE_TEST_STORE=postgres (see common::pg).
    let db = common::pg::store_url_for(dir.path());
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\nurl = \"{}\"\n[stripe]\nwebhook_secrets = [\"{SECRET}\"]\n[hubspot]\ntoken = \"sandbox-token\"\napi_base = \"{}\"\n[worker]\nbackoff_base = \"100ms\"\nbackoff_max = \"2s\"\nlease = \"5s\"\n",
            db,
            sandbox.url()
        ),
    )
    .expect("config");
    let (events, expected) = shuffled_stories("crash", 100, 0.2, 11);

    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let client = reqwest::Client::new();
    for e in &events {
        let body = serde_json::to_vec(e).expect("json");
        assert_eq!(
            post_signed_to(&client, &server.url, body)
                .await
                .expect("answered")
                .status(),
            200
        );
    }
    // Let the workers get part of the way, then kill the process without warning.
    let store = Store::open(&db, Clock::system()).await.expect("open");
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
    // From here HubSpot carries out every call and holds its answer, so no event can finish
    // any more: the kill lands mid-run whatever the machine's speed (before, a timed kill
    // could come after the end on a fast machine).
    sandbox.set_faults(Faults {
        answer_delay_ms: 60_000,
        ..faulty.clone()
    });
    let distinct: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    server.sigkill();
    let at_kill = done(store.clone()).await;
    assert!(at_kill < distinct.len(), "killed mid-run ({at_kill} done)");
    sandbox.set_faults(faulty);

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
/// fails 10% of calls with 5xx, loses the answer of 5% of writes it carries out, and has
/// two 429 storms, and the real binary is killed with
/// SIGKILL five times mid-burst (intake and workers both busy) and restarted: every event
/// is acknowledged in the end and done once, the CRM holds exactly one contact per
/// customer with the story's final properties, and exactly one task and one note per
/// payment (a retried create never creates twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_kill_9s_in_a_faulty_burst_lose_nothing_and_do_nothing_twice() {
    use std::sync::Mutex;

    use hubspot_sandbox::{Faults, SandboxConfig};

    const CUSTOMERS: usize = 400;
    let sandbox = common::spawn_sandbox(SandboxConfig {
        requests_per_10s: 1_000,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // SQLite, or Postgres with PAYBRIDGE_TEST_STORE=postgres (see common::pg).
    let db = common::pg::store_url_for(dir.path());
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[store]
url = "{}"
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
            db,
            sandbox.url()
        ),
    )
    .expect("config");
    let (events, expected) = shuffled_stories("burst", CUSTOMERS, 0.1, 13);
    let payments: BTreeSet<String> = events
        .iter()
        .filter(|e| e["type"] == "invoice.paid")
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    let total = events.len();

    sandbox.set_faults(Faults {
        error_rate: 0.10,
        lost_answer_rate: 0.05,
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
                let target = url.lock().map(|u| u.clone()).unwrap_or_default();
                let answered = post_signed_to(&client, &target, body).await;
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
    let refused = || sandbox.stats()["total_429"].as_u64().unwrap_or(0);
    let mut storm_from: Option<u64> = None;
    for kill in 1..=5usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        // A storm lasts until HubSpot has refused calls with it, however fast the workers
        // are: it is measured in refusals, not in acknowledged events.
        if let Some(from) = storm_from.take() {
            while refused() < from + 5 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no call met the 429 storm"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
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
        let storm = kill == 2 || kill == 4;
        if storm {
            storm_from = Some(refused());
        }
        sandbox.set_faults(Faults {
            error_rate: 0.10,
            lost_answer_rate: 0.05,
            force_429: storm,
            ..Faults::default()
        });
    }
    for p in posters {
        p.await.expect("poster");
    }
    assert_eq!(acknowledged.load(Ordering::Relaxed), total);

    let store = Store::open(&db, Clock::system()).await.expect("open");
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

/// Tasks, notes, tickets and deals in the sandbox's CRM.
fn records_made(sandbox: &hubspot_sandbox::Sandbox) -> usize {
    let state = sandbox.state();
    ["tasks", "notes", "tickets", "deals"]
        .iter()
        .map(|kind| state[*kind].as_array().map(Vec::len).unwrap_or(0))
        .sum()
}

/// Waits (up to two minutes) until `done`.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited in vain for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Every event done and every sequence step done or cancelled, read from the store.
async fn settled(store: &Store, customers: &[String]) -> Result<(), String> {
    let (_, open) = common::events_not_done(store).await;
    if !open.is_empty() {
        return Err(format!(
            "{} events open: {:?}",
            open.len(),
            &open[..open.len().min(5)]
        ));
    }
    for c in customers {
        let steps = store
            .sequence_jobs(c, "payment_recovery")
            .await
            .expect("sequence jobs");
        if steps.len() != 3 || steps.iter().any(|(_, status, _)| status != "done") {
            return Err(format!("{c}'s sequence: {steps:?}"));
        }
    }
    Ok(())
}

/// The starter's rules (onboarding task and deal, provisioning, dunning ticket, the
/// recovery sequence with its steps 4 s and 8 s apart instead of 3 and 7 days) run by the
/// real binary under 5% 5xx and 5% lost answers, killed with SIGKILL twice: once while
/// HubSpot holds the answers of creates it has carried out, once between sequence steps.
/// Guards "never acts twice" across `kill -9` where it matters, records created before the
/// crash and sequences resumed after it: after the restart, the CRM holds exactly one
/// contact, one onboarding task, deal, dunning ticket, sequence note, two sequence tasks and
/// one enrolment in each workflow per customer, and each provisioning call has one key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_creates_and_between_sequence_steps_leaves_the_exact_crm() {
    use common::receiver::Receiver;
    use hubspot_sandbox::{Faults, SandboxConfig};

    const CUSTOMERS: usize = 30;
    let sandbox = common::spawn_sandbox(SandboxConfig {
        requests_per_10s: 1_000,
        ..SandboxConfig::default()
    })
    .await;
    let faulty = Faults {
        error_rate: 0.05,
        lost_answer_rate: 0.05,
        ..Faults::default()
    };
    let slack = Receiver::start(vec![]).await;
    let provisioning = Receiver::start(vec![]).await;
    let starter = common::starter_with_receivers(
        &format!("{}/slack", slack.url),
        &format!("{}/provision", provisioning.url),
    );
    let edited = starter
        .replace("after = \"3d\"", "after = \"4s\"")
        .replace("after = \"7d\"", "after = \"8s\"")
        .replace("requests_per_10s = 90", "requests_per_10s = 900")
        .replace("# lease = \"30s\"", "lease = \"2s\"");
    assert!(edited.contains("after = \"4s\"") && edited.contains("lease = \"2s\""));
    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = common::settings_from_config(&edited, dir.path(), &sandbox);
    common::setup_loaded_properties(&sandbox, &loaded).await;
    let config = dir.path().join("paybridge.toml");
    std::fs::write(
        &config,
        common::test_config_text(&edited, dir.path(), &sandbox),
    )
    .expect("config");
    let db = common::pg::store_url_for(dir.path());

    let (events, expected) = shuffled_stories("seq", CUSTOMERS, 0.1, 17);

    sandbox.set_faults(faulty.clone());
    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let client = reqwest::Client::new();
    for e in &events {
        let body = serde_json::to_vec(e).expect("json");
        let r = post_signed_to(&client, &server.url, body)
            .await
            .expect("answered");
        assert_eq!(r.status(), 200);
    }
    let store = Store::open(&db, Clock::system()).await.expect("open");
    let customers: Vec<String> = expected.iter().map(|x| x.customer.clone()).collect();

    // Kill 1, during creates: once HubSpot has created a few records, it holds every answer
    // (the writes are done); the process dies once one more create has happened unheard.
    // The hold (20 s) stays under the client's 30 s timeout: answers come late, not never,
    // so the calls are not failures and the circuit breaker stays closed; with a longer hold
    // every call would time out, the breaker would open, and no further create would go out.
    wait_until("the first creates", || records_made(&sandbox) >= 5).await;
    sandbox.set_faults(Faults {
        answer_delay_ms: 20_000,
        ..faulty.clone()
    });
    let held_from = records_made(&sandbox);
    wait_until("a create whose answer is held", || {
        records_made(&sandbox) > held_from
    })
    .await;
    server.sigkill();
    assert!(settled(&store, &customers).await.is_err(), "killed mid-run");
    sandbox.set_faults(faulty.clone());

    // Kill 2, between sequence steps: a customer's step 0 is done and step 1 (4 s later) is
    // not yet due.
    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    'between: loop {
        for c in &customers {
            let steps = store
                .sequence_jobs(c, "payment_recovery")
                .await
                .expect("sequence jobs");
            if steps.first().is_some_and(|(_, s, _)| s == "done")
                && steps.get(1).is_some_and(|(_, s, _)| s != "done")
            {
                break 'between;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no sequence started");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.sigkill();
    let mut between = 0;
    for c in &customers {
        let steps = store
            .sequence_jobs(c, "payment_recovery")
            .await
            .expect("sequence jobs");
        if steps.first().is_some_and(|(_, s, _)| s == "done")
            && steps.iter().skip(1).any(|(_, s, _)| s != "done")
        {
            between += 1;
        }
    }
    assert!(between > 0, "killed between a sequence's steps");

    let mut server = start_serve(dir.path(), Some(&config), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    loop {
        match settled(&store, &customers).await {
            Ok(()) => break,
            Err(open) => assert!(std::time::Instant::now() < deadline, "{open}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.sigterm();
    store.close().await;
    let stats = sandbox.stats();
    assert!(
        stats["answers_lost"].as_u64().unwrap_or(0) > 0,
        "answers were lost: {stats}"
    );

    let state = sandbox.state();
    let contacts = state["contacts"].as_array().cloned().unwrap_or_default();
    assert_eq!(contacts.len(), CUSTOMERS, "one contact per customer");
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
        for (kind, n) in [("tasks", 3), ("deals", 1), ("tickets", 1), ("notes", 1)] {
            let linked = c["associations"][kind]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            assert_eq!(linked, n, "{} has {linked} {kind}", x.customer);
        }
    }
    for (kind, n) in [("tasks", 3), ("deals", 1), ("tickets", 1), ("notes", 1)] {
        let records = state[kind].as_array().cloned().unwrap_or_default();
        assert_eq!(records.len(), n * CUSTOMERS, "{kind}: none twice");
    }
    let enrollments = state["enrollments"].as_array().cloned().unwrap_or_default();
    for workflow in ["123456", "222"] {
        let mut emails: Vec<&str> = enrollments
            .iter()
            .filter(|e| e["workflowId"] == workflow)
            .filter_map(|e| e["email"].as_str())
            .collect();
        emails.sort_unstable();
        let all = emails.len();
        emails.dedup();
        assert_eq!(
            (all, emails.len()),
            (CUSTOMERS, CUSTOMERS),
            "workflow {workflow}: one enrolment per customer"
        );
    }
    let keys = provisioning.distinct_header("idempotency-key");
    assert_eq!(
        keys.len(),
        CUSTOMERS,
        "one provisioning key per subscription"
    );
}
