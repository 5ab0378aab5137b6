//! The intake route, black-box: a real server on port 0, a real SQLite file.

mod common;

use common::{event_json, fixture, fixture_names, spawn_app, spawn_app_with};
use paybridge::domain::{Clock, EventId, EventStatus};
use paybridge::store::EventFilter;
use serde_json::Value;

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn every_fixture_is_accepted_and_stored_with_its_customer() {
    let app = spawn_app().await;
    for name in fixture_names() {
        let response = app.post_signed(&fixture(&name)).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let events = app
        .store
        .list_events(&EventFilter {
            limit: 100,
            ..EventFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(events.len(), fixture_names().len());
    for e in &events {
        if e.kind == "charge.dispute.created" {
            assert_eq!(e.customer, None, "disputes carry no customer");
        } else {
            assert_eq!(
                e.customer.as_deref(),
                Some("cus_T7aLp4qZ9cXn2W"),
                "{}",
                e.kind
            );
        }
        // The raw body is kept byte for byte (replay and audit need it).
        let record = app
            .store
            .get_event(&EventId::parse(&e.id).expect("id"))
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(
            record.payload.as_deref(),
            Some(fixture(&format!("{}.json", e.kind)).as_slice())
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn legacy_api_version_shapes_parse() {
    let app = spawn_app().await;
    for name in [
        "charge.succeeded",
        "customer.subscription.updated",
        "invoice.paid",
        "invoice.payment_failed",
    ] {
        let body = fixture(&format!("legacy-2024-06-20/{name}.json"));
        let response = app.post_signed(&body).await;
        assert_eq!(response.status(), 200, "{name}");
    }
    let events = app
        .store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(events.len(), 4);
    assert!(
        events
            .iter()
            .all(|e| e.api_version.as_deref() == Some("2024-06-20"))
    );
    assert!(
        events
            .iter()
            .all(|e| e.customer.as_deref() == Some("cus_T7aLp4qZ9cXn2W"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_redelivered_event_is_acknowledged_and_stored_once() {
    let app = spawn_app().await;
    let body = fixture("invoice.paid.json");
    let first: Value = app.post_signed(&body).await.json().await.expect("json");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["status"], "pending");
    for _ in 0..3 {
        let again = app.post_signed(&body).await;
        assert_eq!(again.status(), 200);
        let again: Value = again.json().await.expect("json");
        assert_eq!(again["duplicate"], true);
    }
    assert_eq!(app.store.count_events().await.expect("count"), 1);
    assert_eq!(
        app.store.queue_depth().await.expect("depth"),
        1,
        "one job, not four"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_store_one_event_and_one_job() {
    let app = spawn_app().await;
    let body = event_json(
        "evt_concurrent_dup",
        "customer.subscription.updated",
        "cus_A",
        app.clock.now_secs(),
    );
    let header = paybridge::stripe::sign(common::SECRET, app.clock.now_secs(), &body);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let request = app
                .client
                .post(format!("{}/webhooks/stripe", app.url))
                .header("Stripe-Signature", header.clone())
                .body(body.clone());
            tokio::spawn(async move {
                let response = request.send().await.expect("answered");
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.expect("json")
            })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        if t.await.expect("join")["duplicate"] == false {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    assert_eq!(app.store.count_events().await.expect("count"), 1);
    assert_eq!(app.store.queue_depth().await.expect("depth"), 1);
    app.stop().await;
}

#[tokio::test]
async fn unknown_event_types_are_stored_as_ignored_without_a_job() {
    let app = spawn_app().await;
    let body = event_json(
        "evt_ignored_1",
        "payout.paid",
        "cus_B",
        app.clock.now_secs(),
    );
    let answer: Value = app.post_signed(&body).await.json().await.expect("json");
    assert_eq!(answer["status"], "ignored");
    let ignored = app
        .store
        .list_events(&EventFilter {
            status: Some(EventStatus::Ignored),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(ignored.len(), 1);
    assert_eq!(app.store.queue_depth().await.expect("depth"), 0);
    app.stop().await;
}

#[tokio::test]
async fn every_refusal_is_a_named_4xx_and_stores_nothing() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 4096, Clock::system()).await;
    let now = app.clock.now_secs();
    let good = event_json("evt_refused_1", "invoice.paid", "cus_C", now);
    let sign = |body: &[u8], t: i64| paybridge::stripe::sign(common::SECRET, t, body);

    // (case, body, Stripe-Signature header, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<u8>, Option<String>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing header",
            good.clone(),
            None,
            400,
            "missing_signature",
        ),
        (
            "garbage header",
            good.clone(),
            Some("nonsense".into()),
            400,
            "malformed_signature",
        ),
        (
            "wrong secret",
            good.clone(),
            Some(paybridge::stripe::sign("whsec_other", now, &good)),
            400,
            "bad_signature",
        ),
        (
            "tampered body",
            b"{\"id\":\"evt_x\"}".to_vec(),
            Some(sign(&good, now)),
            400,
            "bad_signature",
        ),
        (
            "expired",
            good.clone(),
            Some(sign(&good, now - 301)),
            400,
            "signature_expired",
        ),
        (
            "from the future",
            good.clone(),
            Some(sign(&good, now + 301)),
            400,
            "signature_expired",
        ),
        (
            "not JSON",
            b"hello".to_vec(),
            Some(sign(b"hello", now)),
            400,
            "not_json",
        ),
        (
            "JSON, not an event",
            b"{\"id\":\"cus_1\",\"object\":\"customer\"}".to_vec(),
            Some(sign(b"{\"id\":\"cus_1\",\"object\":\"customer\"}", now)),
            400,
            "not_a_stripe_event",
        ),
        (
            "event without data",
            b"{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"invoice.paid\",\"created\":1}"
                .to_vec(),
            Some(sign(
                b"{\"id\":\"evt_1\",\"object\":\"event\",\"type\":\"invoice.paid\",\"created\":1}",
                now,
            )),
            400,
            "not_a_stripe_event",
        ),
    ];
    for (name, body, header, status, code) in cases {
        let response = app.post_with_header(&body, header.as_deref()).await;
        assert_eq!(
            error_code(response).await,
            (status, code.to_owned()),
            "{name}"
        );
    }
    let mut big = b"{\"pad\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'x', 5000));
    big.extend(b"\"}");
    let response = app.post_with_header(&big, Some(&sign(&big, now))).await;
    assert_eq!(
        error_code(response).await,
        (413, "body_too_large".to_owned())
    );

    assert_eq!(
        app.store.count_events().await.expect("count"),
        0,
        "nothing stored"
    );
    assert_eq!(app.store.queue_depth().await.expect("depth"), 0);
    app.stop().await;
}

/// Another process takes SQLite's write lock on the app's database, as a backup or a
/// `sqlite3` shell in a transaction would; the store's writer waits for it.
async fn hold_write_lock(app: &common::TestApp) -> sqlx::SqliteConnection {
    let mut blocker =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", app.db_path.display()))
            .await
            .expect("second connection");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .expect("lock");
    blocker
}

async fn release(blocker: &mut sqlx::SqliteConnection) {
    sqlx::query("ROLLBACK")
        .execute(blocker)
        .await
        .expect("unlock");
}

#[tokio::test]
async fn a_store_that_cannot_write_answers_503_and_stores_nothing() {
    let app = spawn_app().await;
    // Another process holds SQLite's write lock longer than the store's busy timeout.
    let mut blocker = hold_write_lock(&app).await;
    let body = event_json(
        "evt_locked_1",
        "invoice.paid",
        "cus_D",
        app.clock.now_secs(),
    );
    let response = app.post_signed(&body).await;
    assert_eq!(
        error_code(response).await,
        (503, "store_unavailable".to_owned())
    );
    release(&mut blocker).await;
    assert_eq!(app.store.count_events().await.expect("count"), 0);
    // Stripe's retry then succeeds.
    assert_eq!(app.post_signed(&body).await.status(), 200);
    assert_eq!(app.store.count_events().await.expect("count"), 1);
    app.stop().await;
}

/// Guards the bound on intake (`store/writer.rs`): webhooks waiting for the writer are
/// held in a queue of 8,192, and one more is answered `503` + `Retry-After` at once
/// (`store_busy`) so Stripe retries it, rather than being held in memory without bound or
/// accepted beyond what can be committed. The writer is held up the way production holds
/// it up — another process has SQLite's write lock — and the queue is filled through the
/// store's own intake (9,000 concurrent webhooks would need as many connections). The
/// refused webhook is not stored; every event the queue took is, once the lock is gone;
/// Stripe's retry of the refused one is then taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_intake_queue_answers_503_and_stores_nothing_it_refused() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use paybridge::domain::{EventSource, PayloadKind};
    use paybridge::store::{IntakeOutcome, NewEvent, StoreError};

    // The queue's capacity and the most the writer takes into one transaction.
    const HELD: usize = 8_192 + 1_024;
    let app = spawn_app().await;
    // Made before the lock is taken: the writer gives up on the lock after 2 s.
    let events: Vec<NewEvent> = (0..HELD + 100)
        .map(|i| {
            let id = format!("evt_full_{i}");
            NewEvent {
                payload: event_json(&id, "invoice.paid", "cus_full", app.clock.now_secs()),
                id: EventId::parse(&id).expect("id"),
                kind: "invoice.paid".into(),
                created: app.clock.now_secs(),
                livemode: false,
                api_version: None,
                customer: None,
                source: EventSource::Webhook,
                status: EventStatus::Pending,
                payload_kind: PayloadKind::Snapshot,
                guest_email: None,
            }
        })
        .collect();
    let mut blocker = hold_write_lock(&app).await;
    let busy = Arc::new(AtomicUsize::new(0));
    let mut intakes = tokio::task::JoinSet::new();
    for event in events {
        let (store, busy) = (app.store.clone(), busy.clone());
        intakes.spawn(async move {
            let outcome = store.intake(event).await;
            if matches!(outcome, Err(StoreError::Busy)) {
                busy.fetch_add(1, Ordering::SeqCst);
            }
            outcome
        });
    }
    // Full once an intake has been turned away (a bound only for a failing run).
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while busy.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("an intake beyond the queue is turned away at once");
    let body = event_json(
        "evt_full_refused",
        "invoice.paid",
        "cus_full",
        app.clock.now_secs(),
    );
    let response = app.post_signed(&body).await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(error_code(response).await, (503, "store_busy".to_owned()));
    release(&mut blocker).await;

    let mut stored = 0;
    while let Some(outcome) = intakes.join_next().await {
        match outcome.expect("intake task") {
            Ok(IntakeOutcome::New) => stored += 1,
            Ok(IntakeOutcome::Duplicate) => panic!("every id is new"),
            Err(StoreError::Busy) => {}
            Err(e) => panic!("a queued event failed to commit: {e}"),
        }
    }
    assert!(stored >= 8_192, "the whole queue was committed: {stored}");
    assert_eq!(
        stored + busy.load(Ordering::SeqCst),
        HELD + 100,
        "each intake stored or refused"
    );
    assert_eq!(
        app.store.count_events().await.expect("count"),
        stored as i64,
        "nothing refused is stored"
    );
    let refused = EventId::parse("evt_full_refused").expect("id");
    assert!(app.store.get_event(&refused).await.expect("get").is_none());
    // Stripe's retry is taken.
    assert_eq!(app.post_signed(&body).await.status(), 200);
    assert!(app.store.get_event(&refused).await.expect("get").is_some());
    app.stop().await;
}

use sqlx::Connection as _;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let healthz = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), 200);
    let readyz = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("readyz");
    assert_eq!(readyz.status(), 200);
    assert!(readyz.headers().contains_key("x-request-id"));
    app.stop().await;
}

/// Sends a signed webhook over a raw connection in two halves: the head (with `Expect:
/// 100-continue`, so that the server's `100 Continue` shows it has read the head and is
/// reading the body) and half the body, then (once `go` turns true) the rest. Reports
/// `half` after the first half. The final status code, or None if the connection closed
/// without an answer.
async fn post_in_two_halves(
    addr: String,
    body: Vec<u8>,
    half: tokio::sync::mpsc::Sender<()>,
    mut go: tokio::sync::watch::Receiver<bool>,
) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let now = chrono::Utc::now().timestamp();
    let signature = paybridge::stripe::sign(common::SECRET, now, &body);
    let head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nstripe-signature: {signature}\r\ncontent-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).await.ok()?;
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        interim.push(stream.read_u8().await.ok()?);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(first).await.ok()?;
    let _ = half.send(()).await;
    while !*go.borrow() {
        go.changed().await.ok()?;
    }
    stream.write_all(rest).await.ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// Guards "an acknowledged event survives a stop" where it can fail (issue 17): the stop
/// begins while 40 requests are being read (bodies half sent) and 40 more are being sent
/// whole. Each request being read is answered (200, or 503 if the store no longer takes
/// it), and every event answered 200 is in the store after the stop. Before, the test
/// waited for every answer before stopping, so nothing was in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_with_requests_in_flight_commits_everything_acknowledged() {
    const HALVES: usize = 40;
    let app = spawn_app().await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let store_url = format!("sqlite://{}", app.db_path.display());
    let now = app.clock.now_secs();
    let (half_tx, mut half_rx) = tokio::sync::mpsc::channel(HALVES);
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let mut sent = Vec::new();
    for i in 0..HALVES {
        let id = format!("evt_half_{i}");
        let body = event_json(&id, "invoice.paid", "cus_H", now);
        let task = tokio::spawn(post_in_two_halves(
            addr.clone(),
            body,
            half_tx.clone(),
            go_rx.clone(),
        ));
        sent.push((id, task));
    }
    for _ in 0..HALVES {
        half_rx.recv().await.expect("a half sent");
    }
    let client = app.client.clone();
    let url = app.url.clone();
    let stopping = tokio::spawn(app.stop());
    for i in 0..HALVES {
        let id = format!("evt_whole_{i}");
        let body = event_json(&id, "invoice.paid", "cus_W", now);
        let (client, url) = (client.clone(), url.clone());
        sent.push((
            id,
            tokio::spawn(async move {
                common::post_signed_to(&client, &url, body)
                    .await
                    .ok()
                    .map(|r| r.status().as_u16())
            }),
        ));
    }
    // Once the listener refuses new connections, the stop has begun: the halves go on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "the stop never began");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    go_tx.send(true).expect("the halves wait");
    let mut acknowledged = Vec::new();
    let mut halves_answered = 0;
    for (id, task) in sent {
        let status = task.await.expect("join");
        if id.starts_with("evt_half") && status.is_some() {
            halves_answered += 1;
        }
        if status == Some(200) {
            acknowledged.push(id);
        }
    }
    let dir = stopping.await.expect("the app stops");
    assert_eq!(
        halves_answered, HALVES,
        "requests being read at the stop are answered"
    );
    let store = paybridge::store::Store::open(&store_url, Clock::system())
        .await
        .expect("reopen");
    for id in &acknowledged {
        let stored = store
            .get_event(&EventId::parse(id).expect("id"))
            .await
            .expect("read");
        assert!(stored.is_some(), "{id} was acknowledged, so it is stored");
    }
    store.close().await;
    drop(dir);
}

/// Guards payload retention (issue 17, untested before): the housekeeping run
/// (`ops::maintenance::run`, as `serve` starts it with `store.payload_retention_days`)
/// deletes the raw payload of a finished event older than the retention, keeps its row
/// (type, status), and keeps the payloads of a recent event and of one still waiting for
/// its job.
#[tokio::test]
async fn payloads_past_retention_are_purged_and_the_event_log_stays() {
    let clock = Clock::manual(1_790_000_000_000);
    let app = spawn_app_with(|_| {}, clock.clone()).await;
    let now = clock.now_secs();
    let post = |id: &'static str, kind: &'static str| {
        let body = event_json(id, kind, "cus_R", now);
        let app = &app;
        async move {
            assert_eq!(app.post_signed(&body).await.status(), 200);
        }
    };
    post("evt_old_ignored", "payout.created").await;
    post("evt_old_waiting", "invoice.paid").await;
    clock.advance_ms(31 * 86_400_000);
    let now = clock.now_secs();
    let body = event_json("evt_new_ignored", "payout.created", "cus_R", now);
    assert_eq!(app.post_signed(&body).await.status(), 200);

    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel(); // one pass, then it returns
    paybridge::ops::maintenance::run(app.store.clone(), 30, cancel).await;

    let get = |id: &'static str| {
        let store = app.store.clone();
        async move {
            store
                .get_event(&EventId::parse(id).expect("id"))
                .await
                .expect("read")
                .expect("the row stays")
        }
    };
    let old = get("evt_old_ignored").await;
    assert_eq!(old.payload, None, "purged past retention");
    assert_eq!(
        (old.summary.kind.as_str(), old.summary.status),
        ("payout.created", EventStatus::Ignored)
    );
    assert!(
        get("evt_old_waiting").await.payload.is_some(),
        "its job waits"
    );
    assert!(get("evt_new_ignored").await.payload.is_some(), "recent");
    app.stop().await;
}
