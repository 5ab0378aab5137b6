//! Several replicas on one Postgres (issue 16): three `serve` processes (the real binary)
//! share one database and one HubSpot portal, take webhooks round-robin, lose one to
//! `kill -9` mid-run, and still leave the exact CRM, within one HubSpot budget.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::SECRET;
use common::delivery::Delivery;
use common::process::{Running, start_serve};
use common::story::{Expected, customer_story, customer_story_with_retry, shuffled_deliveries};
use hubspot_sandbox::SandboxConfig;
use paybridge::domain::{Clock, EventStatus};
use paybridge::store::Store;
use serde_json::Value;

const CUSTOMERS: usize = 300;
const DELIVERIES: usize = 2_000;
/// Events: 200 customers' five, and 100 customers' six (their renewal's invoice failed twice).
const DISTINCT: usize = 1_600;
const REPLICAS: usize = 3;

/// The replicas' config: the defaults (HubSpot budget `requests_per_10s = 90`, lease 30 s,
/// 500 events in flight per replica) on one Postgres database, and rules that create one
/// record of each kind per customer: an onboarding task and deal on the first payment, a
/// dunning ticket once per failed invoice, and a note per failed attempt.
fn config_text(database_url: &str, hubspot: &str) -> String {
    r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[store]
url = "@DATABASE@"
[stripe]
webhook_secrets = ["@SECRET@"]
[hubspot]
token = "@TOKEN@"
api_base = "@HUBSPOT@"

[[rules]]
name = "onboarding"
on = ["invoice.paid"]
if = "invoice.first_payment"
actions = [
  { type = "create_task", subject = "Welcome {{ customer.email }}", once_per = "{{ subscription.id }}" },
  { type = "create_deal", name = "{{ customer.email }}: new subscription", once_per = "{{ subscription.id }}" },
]

[[rules]]
name = "dunning"
on = ["invoice.payment_failed"]
actions = [
  { type = "create_ticket", subject = "Payment failed: {{ customer.email }}", once_per = "{{ invoice.id }}" },
  { type = "create_note", body = "Renewal attempt {{ invoice.attempt_count }} failed for {{ customer.email }}" },
]
"#
    .replace("@DATABASE@", database_url)
    .replace("@SECRET@", SECRET)
    .replace("@TOKEN@", &SandboxConfig::default().token)
    .replace("@HUBSPOT@", hubspot)
}

/// The worker id a replica printed when its workers started (`worker=<host>-<hex>`).
fn worker_id(replica: &Running) -> String {
    let line = replica.wait_for_line("workers started");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("worker="))
        .map(|w| w.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no worker id in {line:?}"))
}

/// Jobs leased to `worker` right now.
async fn leases_of(conn: &mut sqlx::PgConnection, worker: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'running' AND locked_by = $1")
        .bind(worker)
        .fetch_one(conn)
        .await
        .expect("count the leases")
}

/// Every stored event, or the first ones still open: `Ok(all)` once every event is done;
/// panics on an event that can no longer end well.
async fn all_done(store: &Store) -> Result<Vec<String>, String> {
    let (ids, open) = common::events_not_done(store).await;
    assert!(
        open.iter()
            .all(|(_, s, _)| !matches!(s, EventStatus::Dead | EventStatus::NeedsAttention)),
        "{open:?}"
    );
    if open.is_empty() {
        Ok(ids)
    } else {
        Err(format!(
            "{} open, e.g. {:?}",
            open.len(),
            &open[..open.len().min(3)]
        ))
    }
}

/// Each customer's failed payment attempts (`invoice.payment_failed` events), among
/// `events`: one, or two where Stripe retried the renewal.
fn failed_attempts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut seen = BTreeSet::new();
    let mut attempts = BTreeMap::new();
    for e in events {
        let customer = e["data"]["object"]["customer"].as_str();
        if e["type"] == "invoice.payment_failed"
            && seen.insert(e["id"].clone().to_string())
            && let Some(customer) = customer
        {
            *attempts.entry(customer.to_owned()).or_insert(0) += 1;
        }
    }
    attempts
}

/// The notes on a contact: their bodies without paybridge's marker
/// (`<p>[paybridge:KEY]</p>`).
fn note_bodies(state: &Value, contact: &Value) -> BTreeSet<String> {
    let ids = contact["associations"]["notes"].clone();
    common::crm::records(state, "notes")
        .iter()
        .filter(|n| ids.as_array().is_some_and(|ids| ids.contains(&n["id"])))
        .filter_map(|n| n["properties"]["hs_note_body"].as_str())
        .map(|b| {
            b.split("<p>[paybridge:")
                .next()
                .unwrap_or(b)
                .trim()
                .to_owned()
        })
        .collect()
}

/// One contact per customer with the story's final properties; exactly one onboarding task
/// and deal and one dunning ticket (once per invoice) per customer, and one note per failed
/// attempt, each linked to its contact.
fn assert_exact_crm(state: &Value, expected: &[Expected], attempts: &BTreeMap<String, usize>) {
    let contacts = common::crm::records(state, "contacts");
    assert_eq!(contacts.len(), CUSTOMERS, "one contact per customer");
    let by_customer: BTreeMap<String, &Value> = contacts
        .iter()
        .filter_map(|c| {
            let id = c["properties"]["stripe_customer_id"].as_str()?;
            Some((id.to_owned(), c))
        })
        .collect();
    assert_eq!(
        by_customer.len(),
        CUSTOMERS,
        "one contact per Stripe customer"
    );
    for x in expected {
        let c = by_customer
            .get(&x.customer)
            .unwrap_or_else(|| panic!("{} has no contact", x.customer));
        let written = common::crm::written(c);
        for (property, value) in [
            ("email", &x.email),
            ("stripe_subscription_status", &x.status),
            ("stripe_last_payment_date", &x.last_payment_date),
            ("stripe_last_payment_failed_date", &x.last_failed_date),
            ("stripe_delinquent", &x.delinquent),
        ] {
            assert_eq!(
                written.get(property),
                Some(value),
                "{}'s {property}",
                x.customer
            );
        }
        for kind in ["tasks", "deals", "tickets"] {
            let linked = c["associations"][kind].as_array().map_or(0, Vec::len);
            assert_eq!(linked, 1, "{} has {linked} {kind}", x.customer);
        }
        let failed = attempts.get(&x.customer).copied().unwrap_or(0);
        let notes: BTreeSet<String> = (1..=failed)
            .map(|n| format!("Renewal attempt {n} failed for {}", x.email))
            .collect();
        let linked = c["associations"]["notes"].as_array().map_or(0, Vec::len);
        assert_eq!(linked, failed, "{}'s notes", x.customer);
        assert_eq!(note_bodies(state, c), notes, "{}'s notes", x.customer);
    }
    let notes: usize = attempts.values().sum();
    for (kind, n) in [
        ("tasks", CUSTOMERS),
        ("deals", CUSTOMERS),
        ("tickets", CUSTOMERS),
        ("notes", notes),
    ] {
        let records = common::crm::records(state, kind);
        assert_eq!(records.len(), n, "{kind}: none twice");
        let linked: BTreeSet<String> = records
            .iter()
            .filter_map(|r| r["associations"]["contacts"].as_array()?.first()?.as_str())
            .map(str::to_owned)
            .collect();
        assert_eq!(
            linked.len(),
            CUSTOMERS,
            "{kind}: on every customer's contact"
        );
    }
}

/// The sandbox's busiest 10-second window of the app token's calls (exact: the sandbox
/// keeps a true sliding window and notes its size at every admitted call), and its 429s.
fn busiest_window_and_429s(sandbox: &hubspot_sandbox::Sandbox) -> (u64, u64) {
    let stats = sandbox.stats();
    let token = &stats["tokens"][SandboxConfig::default().token.as_str()];
    let busiest = token["max_in_any_10s"].as_u64().unwrap_or(0);
    (busiest, stats["total_429"].as_u64().unwrap_or(u64::MAX))
}

/// Issue 16: three `serve` processes on one Postgres database and one sandbox with
/// HubSpot's limits (100 calls per 10 s; paybridge's default budget is 90); 2,000 signed
/// deliveries of which 400 (20%) are duplicates: 1,600 distinct events of 300 customers
/// (five each: signup, subscription, first payment, failed renewal, update; for 100 of
/// them Stripe's second attempt at the renewal fails too), shuffled, round-robin to the
/// three. Once a third is
/// acknowledged and the victim holds leases, one replica is killed with SIGKILL, then
/// restarted on the same config and database while the delivery goes on. In the end: every
/// event done and stored once, the exact CRM (one contact per customer with its story's
/// properties, one task, deal and ticket each, one note per failed attempt), no 429 from HubSpot, and the busiest
/// 10-second window of all replicas' calls together within the budget of 90.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_one_killed_leave_the_exact_crm_within_one_budget() {
    const BUDGET: u64 = 90;
    let started = Instant::now();
    let sandbox = common::spawn_sandbox(SandboxConfig::default()).await;
    let database = common::pg::database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(database.url(), &sandbox.url());
    let config = dir.path().join("paybridge.toml");
    common::setup_config_properties(&sandbox, &text, config.clone()).await;
    std::fs::write(&config, &text).expect("write the config");

    // All three start at once: the migrations run on one of them at a time.
    let mut replicas: Vec<Running> = (0..REPLICAS)
        .map(|_| start_serve(dir.path(), Some(&config), &[]))
        .collect();
    let story = |prefix: &str, i: usize, base: i64| {
        if i % 3 == 1 {
            customer_story_with_retry(prefix, i, base)
        } else {
            customer_story(prefix, i, base)
        }
    };
    let (events, expected) = shuffled_deliveries("rep", CUSTOMERS, story, DELIVERIES, 16);
    let attempts = failed_attempts(&events);
    let distinct: BTreeSet<String> = events
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!((events.len(), distinct.len()), (DELIVERIES, DISTINCT));

    // About 100 deliveries a second (8 senders, 80 ms apart): the stream outlasts the kill
    // and the restart.
    let delivery = Delivery::start(
        events,
        replicas.iter().map(|r| r.url.clone()).collect(),
        8,
        Duration::from_millis(80),
    );
    let victim = 1;
    let victim_worker = worker_id(&replicas[victim]);
    let mut conn = database.connect().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivery.acknowledged() < DELIVERIES / 3
        || leases_of(&mut conn, &victim_worker).await == 0
    {
        assert!(
            Instant::now() < deadline,
            "no third acknowledged with the victim at work"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replicas[victim].sigkill();
    let held = leases_of(&mut conn, &victim_worker).await;
    assert!(held > 0, "the replica died holding leases");
    let at_kill = delivery.acknowledged();
    let killed_at = started.elapsed();
    let before_restart = delivery.acknowledged_by_target()[victim];
    replicas[victim] = start_serve(dir.path(), Some(&config), &[]);
    delivery.retarget(victim, replicas[victim].url.clone());
    let by_replica = delivery.finish().await;
    assert!(
        by_replica[victim] > before_restart,
        "the restarted replica took deliveries: {by_replica:?}"
    );
    assert!(
        at_kill < DELIVERIES,
        "killed mid-delivery ({at_kill} acknowledged)"
    );

    let store = Store::open(database.url(), Clock::system())
        .await
        .expect("open the replicas' store");
    let deadline = Instant::now() + Duration::from_secs(300);
    let stored = loop {
        match all_done(&store).await {
            Ok(ids) => break ids,
            Err(open) => assert!(Instant::now() < deadline, "not finished: {open}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let done_at = started.elapsed();
    store.close().await;
    for r in &mut replicas {
        r.sigterm();
    }
    let ids: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(ids.len(), stored.len(), "no event stored twice");
    assert_eq!(ids, distinct, "every delivered event stored");

    let (busiest, refused) = busiest_window_and_429s(&sandbox);
    let calls = sandbox.stats()["tokens"][SandboxConfig::default().token.as_str()]["calls"]
        .as_u64()
        .unwrap_or(0);
    eprintln!(
        "replicas: killed at {:.1} s ({at_kill} acknowledged, {held} leases held; {before_restart} \
         taken by the victim before; by replica {by_replica:?}), all done at {:.1} s; {calls} HubSpot calls, busiest \
         10 s window {busiest}, {refused} × 429",
        killed_at.as_secs_f64(),
        done_at.as_secs_f64()
    );
    assert_exact_crm(&sandbox.state(), &expected, &attempts);
    assert_eq!(refused, 0, "no 429 from HubSpot");
    assert!(
        busiest <= BUDGET,
        "the busiest 10 s window held {busiest} calls, over the budget of {BUDGET}"
    );
}
