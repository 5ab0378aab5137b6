//! The store's contract on both backends: every scenario here runs once on a SQLite file
//! and once on a Postgres database of its own (`<name>_sqlite`, `<name>_postgres`).

mod common;

use paybridge::domain::{Clock, CustomerId, EventId, EventSource, EventStatus, PayloadKind};
use paybridge::store::{
    EventFilter, IntakeOutcome, JobOutcome, LogFilter, NewEvent, NextStep, Store,
};

use common::pg;

/// A store and what keeps its database alive.
struct Opened {
    store: Store,
    clock: Clock,
    _dir: tempfile::TempDir,
    _database: Option<pg::TestDatabase>,
}

async fn open(backend: &str) -> Opened {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::manual(1_700_000_000_000);
    let (url, database) = match backend {
        "sqlite" => (
            format!("sqlite://{}", dir.path().join("store.db").display()),
            None,
        ),
        _ => {
            let db = pg::database().await;
            (db.url().to_owned(), Some(db))
        }
    };
    let store = Store::open(&url, clock.clone()).await.expect("store opens");
    Opened {
        store,
        clock,
        _dir: dir,
        _database: database,
    }
}

/// `scenario` on both backends, as two tests.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let o = super::open("sqlite").await;
                super::$name(&o.store, &o.clock).await;
                o.store.close().await;
            }
            #[tokio::test]
            async fn postgres() {
                let o = super::open("postgres").await;
                super::$name(&o.store, &o.clock).await;
                o.store.close().await;
            }
        }
    };
}

fn event(id: &str, kind: &str, customer: Option<&str>, created: i64) -> NewEvent {
    let payload = serde_json::json!({
        "id": id, "type": kind, "created": created,
        "data": { "object": { "id": format!("in_{id}"), "customer": customer } }
    });
    NewEvent {
        id: EventId::parse(id).expect("event id"),
        kind: kind.to_owned(),
        created,
        livemode: true,
        api_version: Some("2024-06-20".into()),
        customer: customer.map(|c| CustomerId::parse(c).expect("customer id")),
        source: EventSource::Webhook,
        status: EventStatus::Pending,
        payload: serde_json::to_vec(&payload).expect("json"),
        payload_kind: PayloadKind::Snapshot,
        guest_email: None,
    }
}

both!(intake_keeps_one_of_each_id_and_reads_it_back);
async fn intake_keeps_one_of_each_id_and_reads_it_back(store: &Store, _clock: &Clock) {
    let first = store
        .intake(event("evt_1", "invoice.paid", Some("cus_a"), 100))
        .await
        .expect("intake");
    let again = store
        .intake(event("evt_1", "invoice.paid", Some("cus_a"), 100))
        .await
        .expect("intake");
    assert_eq!(
        (first, again),
        (IntakeOutcome::New, IntakeOutcome::Duplicate)
    );
    // Many at once: one group commit, duplicates inside it too.
    let mut waiting = Vec::new();
    for i in 0..50 {
        let s = store.clone();
        let id = format!("evt_b{}", i % 40);
        waiting.push(tokio::spawn(async move {
            s.intake(event(&id, "charge.succeeded", Some("cus_b"), 200 + i))
                .await
        }));
    }
    let mut new = 0;
    for w in waiting {
        if w.await.expect("join").expect("intake") == IntakeOutcome::New {
            new += 1;
        }
    }
    assert_eq!(new, 40);
    assert_eq!(store.count_events().await.expect("count"), 41);
    assert_eq!(store.queue_depth().await.expect("depth"), 41);
    let record = store
        .get_event(&EventId::parse("evt_1").expect("id"))
        .await
        .expect("get")
        .expect("stored");
    assert!(record.summary.livemode);
    assert_eq!(record.summary.status, EventStatus::Pending);
    assert_eq!(record.summary.customer.as_deref(), Some("cus_a"));
    let payload: serde_json::Value =
        serde_json::from_slice(&record.payload.expect("payload")).expect("json");
    assert_eq!(payload["id"], "evt_1");
    // Paging, newest first, by filter.
    let page = store
        .list_events(&EventFilter {
            customer: Some("cus_b".into()),
            limit: 15,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(page.len(), 15);
    let next = store
        .list_events(&EventFilter {
            customer: Some("cus_b".into()),
            after: page.last().map(|e| e.id.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(next.len(), 25);
    assert!(next.iter().all(|e| !page.iter().any(|p| p.id == e.id)));
}

both!(a_lane_runs_one_job_at_a_time_in_order_and_leases_lapse);
async fn a_lane_runs_one_job_at_a_time_in_order_and_leases_lapse(store: &Store, clock: &Clock) {
    for (i, id) in ["evt_1", "evt_2", "evt_3"].iter().enumerate() {
        store
            .intake(event(id, "invoice.paid", Some("cus_a"), 10 + i as i64))
            .await
            .expect("intake");
    }
    store
        .intake(event("evt_x", "invoice.paid", Some("cus_x"), 1))
        .await
        .expect("intake");
    let now = clock.now_ms();
    let claimed = store.claim("w1", 10, now + 30_000).await.expect("claim");
    let mut ids: Vec<&str> = claimed.iter().map(|j| j.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["evt_1", "evt_x"],
        "one job per lane, the lane's oldest"
    );
    assert!(
        store
            .claim("w2", 10, now + 30_000)
            .await
            .expect("claim")
            .is_empty(),
        "nothing else runnable while the leases hold"
    );
    let first = claimed
        .iter()
        .find(|j| j.event_id == "evt_1")
        .expect("evt_1")
        .clone();
    // The lease lapses: another worker takes the job over, and the first one's late
    // outcome is not recorded over it.
    clock.advance_ms(31_000);
    let taken = store
        .claim("w2", 10, clock.now_ms() + 30_000)
        .await
        .expect("claim");
    let taken_ids: Vec<&str> = taken.iter().map(|j| j.event_id.as_str()).collect();
    assert!(taken_ids.contains(&"evt_1"), "{taken_ids:?}");
    let retaken = taken
        .iter()
        .find(|j| j.event_id == "evt_1")
        .expect("evt_1")
        .clone();
    assert_eq!(retaken.attempt, 2);
    let done = JobOutcome::Done {
        contact_id: Some("101".into()),
        next: None,
    };
    assert!(!store.finish("w1", &first, &done).await.expect("finish"));
    assert!(store.finish("w2", &retaken, &done).await.expect("finish"));
    let next = store
        .claim("w1", 10, clock.now_ms() + 30_000)
        .await
        .expect("claim");
    let next_ids: Vec<&str> = next.iter().map(|j| j.event_id.as_str()).collect();
    assert!(
        next_ids.contains(&"evt_2") && !next_ids.contains(&"evt_3"),
        "{next_ids:?}"
    );
    let summary = store
        .get_event_summary("evt_1")
        .await
        .expect("summary")
        .expect("evt_1");
    assert_eq!(summary.status, EventStatus::Done);
    assert_eq!(summary.contact_id.as_deref(), Some("101"));
    assert_eq!(summary.attempts, 2);
}

both!(a_retry_waits_and_a_sequence_step_follows_its_job);
async fn a_retry_waits_and_a_sequence_step_follows_its_job(store: &Store, clock: &Clock) {
    store
        .intake(event("evt_1", "invoice.payment_failed", Some("cus_a"), 10))
        .await
        .expect("intake");
    let job = store
        .claim("w1", 1, clock.now_ms() + 30_000)
        .await
        .expect("claim")
        .pop()
        .expect("a job");
    let retry_at = clock.now_ms() + 5_000;
    let retry = JobOutcome::Retry {
        run_at: retry_at,
        error: "HubSpot answered 502".into(),
        count_attempt: true,
    };
    assert!(store.finish("w1", &job, &retry).await.expect("finish"));
    assert_eq!(store.next_retry_at().await.expect("next"), Some(retry_at));
    assert!(
        store
            .claim("w1", 1, clock.now_ms() + 30_000)
            .await
            .expect("claim")
            .is_empty()
    );
    clock.advance_ms(5_000);
    let job = store
        .claim("w1", 1, clock.now_ms() + 30_000)
        .await
        .expect("claim")
        .pop()
        .expect("due again");
    assert_eq!(job.attempt, 2);
    let dead = JobOutcome::Dead {
        error: "out of attempts".into(),
    };
    assert!(store.finish("w1", &job, &dead).await.expect("finish"));
    assert_eq!(store.dead_event_ids().await.expect("dead"), ["evt_1"]);
    assert!(store.claim_alert("evt_1").await.expect("alert"));
    assert!(!store.claim_alert("evt_1").await.expect("alert once"));
    assert_eq!(
        store.retry_events(&["evt_1".into()]).await.expect("retry"),
        ["evt_1"]
    );
    let job = store
        .claim("w1", 1, clock.now_ms() + 30_000)
        .await
        .expect("claim")
        .pop()
        .expect("back in the queue");
    assert_eq!(job.attempt, 1);
    // A sequence step of the lane, enqueued by its predecessor's outcome.
    let mut step = job.clone();
    step.sequence = Some("dunning".into());
    step.kind = "sequence_step".into();
    let done = JobOutcome::Done {
        contact_id: None,
        next: Some(NextStep {
            step_index: 1,
            run_at: clock.now_ms() + 60_000,
        }),
    };
    assert!(store.finish("w1", &step, &done).await.expect("finish"));
    let jobs = store
        .sequence_jobs("cus_a", "dunning")
        .await
        .expect("sequence jobs");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
}

both!(dashboard_and_report_queries_read_both_dialects);
async fn dashboard_and_report_queries_read_both_dialects(store: &Store, clock: &Clock) {
    let now = clock.now_ms();
    let created = now / 1000 - 60;
    store
        .intake(event(
            "evt_f",
            "invoice.payment_failed",
            Some("cus_a"),
            created,
        ))
        .await
        .expect("intake");
    // The payment that recovers it: the same invoice (`data.object.id`), read from the
    // payload by each dialect's JSON functions.
    let mut paid = event("evt_p", "invoice.paid", Some("cus_a"), created + 30);
    let mut payload: serde_json::Value = serde_json::from_slice(&paid.payload).expect("json");
    payload["data"]["object"]["id"] = "in_evt_f".into();
    paid.payload = serde_json::to_vec(&payload).expect("json");
    store.intake(paid).await.expect("intake");
    let counts = store
        .health_counts(now - 3_600_000, now)
        .await
        .expect("health counts");
    assert_eq!((counts.received, counts.queue_depth), (2, 2));
    let outcomes = store
        .outcomes_by_bucket(now - 3_600_000, 60_000)
        .await
        .expect("outcomes");
    assert_eq!(outcomes.iter().map(|o| o.count).sum::<i64>(), 2);
    let failed = store
        .failed_invoices_since(now - 3_600_000)
        .await
        .expect("failed invoices");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].invoice, "in_evt_f", "read from the payload");
    assert_eq!(failed[0].failed_at, created);
    assert_eq!(
        failed[0].recovered_at,
        Some(created + 30),
        "recovered by the payment of the same invoice"
    );
    assert!(
        store
            .latencies_since(now - 3_600_000)
            .await
            .expect("latencies")
            .is_empty()
    );
    store
        .remember_contact("cus_a", "101", Some("Ada@Example.com"))
        .await
        .expect("remember");
    let log = store
        .event_log(&LogFilter {
            email: Some("ada@example.COM".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("event log");
    assert_eq!(log.len(), 2, "emails match whatever their case");
    store
        .add_counters(now, &[("hubspot_calls", 3), ("events", 2)])
        .await
        .expect("counters");
    store
        .add_counters(now, &[("hubspot_calls", 4)])
        .await
        .expect("counters");
    let totals = store.counters_since(now - 3_600_000).await.expect("totals");
    assert_eq!(totals.get("hubspot_calls"), Some(&7));
    assert_eq!(
        store
            .report_retries(created - 10, now - 3_600_000)
            .await
            .expect("retries"),
        0
    );
    let rows = store
        .report_events(created - 10, now - 3_600_000)
        .await
        .expect("report events");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| !r.acted));
    let page = store
        .report_payment_page(created - 10, None, 10)
        .await
        .expect("payments");
    assert_eq!(page.len(), 2);
    let lifetime = store
        .ledger_charge("cus_a", "ch_1", "usd", Some(5_000), Some(1_000), 10)
        .await
        .expect("ledger");
    assert_eq!(lifetime, 4_000);
    let lifetime = store
        .ledger_charge("cus_a", "ch_1", "usd", Some(4_000), None, 11)
        .await
        .expect("ledger");
    assert_eq!(lifetime, 4_000, "the paid amount never lowers");
}

both!(meta_sessions_and_leases);
async fn meta_sessions_and_leases(store: &Store, clock: &Clock) {
    assert_eq!(store.meta_get("k").await.expect("meta"), None);
    assert_eq!(
        store.meta_get_or_insert("k", "v1").await.expect("meta"),
        "v1"
    );
    assert_eq!(
        store.meta_get_or_insert("k", "v2").await.expect("meta"),
        "v1"
    );
    let now = clock.now_ms();
    store
        .session_create("s1", now, now + 1_000)
        .await
        .expect("session");
    assert!(store.session_active("s1", now).await.expect("active"));
    store.session_revoke("s1", now).await.expect("revoke");
    assert!(!store.session_active("s1", now).await.expect("active"));
    assert!(store.lease("replay", "a", 10_000).await.expect("lease"));
    assert!(!store.lease("replay", "b", 10_000).await.expect("lease"));
    assert!(store.lease("replay", "a", 10_000).await.expect("renew"));
    clock.advance_ms(10_001);
    assert!(store.lease("replay", "b", 10_000).await.expect("lapsed"));
    store.release_lease("replay", "b").await.expect("release");
    assert!(store.lease("replay", "a", 10_000).await.expect("released"));
}

both!(retention_drops_finished_payloads_in_chunks_and_keeps_the_rest);
async fn retention_drops_finished_payloads_in_chunks_and_keeps_the_rest(
    store: &Store,
    clock: &Clock,
) {
    // More than one chunk of finished (ignored) events, and one still waiting.
    let mut waiting = Vec::new();
    for i in 0..2_100 {
        let mut e = event(&format!("evt_old{i}"), "customer.discount.created", None, 1);
        e.status = EventStatus::Ignored;
        let s = store.clone();
        waiting.push(tokio::spawn(async move { s.intake(e).await }));
    }
    for w in waiting {
        w.await.expect("join").expect("intake");
    }
    store
        .intake(event("evt_pending", "invoice.paid", Some("cus_a"), 1))
        .await
        .expect("intake");
    clock.advance_ms(1_000);
    let purged = store.purge_payloads(clock.now_ms()).await.expect("purge");
    assert_eq!(purged, 2_100);
    let old = store
        .get_event(&EventId::parse("evt_old7").expect("id"))
        .await
        .expect("get")
        .expect("kept");
    assert!(
        old.payload.is_none(),
        "the payload is gone, the event stays"
    );
    let pending = store
        .get_event(&EventId::parse("evt_pending").expect("id"))
        .await
        .expect("get")
        .expect("kept");
    assert!(
        pending.payload.is_some(),
        "a waiting event keeps its payload"
    );
    assert_eq!(
        store.purge_payloads(clock.now_ms()).await.expect("again"),
        0
    );
}
