//! The production worker loop (`worker::Pool::run`): lease renewal while a job outlasts its
//! lease, a dead worker's lease expiring to a live one, a lease lost to another worker,
//! and the shutdown grace. HubSpot
//! (the sandbox) answers every call after `latency_ms`, so a job takes as long as a test
//! says. The checks are outcomes (how often a job ran, whether it finished), not times.
//!
//! Not on tokio's paused clock: with it, tokio advances time whenever the runtime waits,
//! and it waits for SQLite (which sqlx runs on threads of its own), so sqlx's 30 s
//! acquire timeout fires while the database opens. The durations here are short instead.

mod common;

use std::time::Duration;

use common::{TestApp, event_json, spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Faults, Sandbox, SandboxConfig};
use paybridge::domain::{Clock, EventId, EventStatus};
use paybridge::worker::Pool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_secs(1);

/// A sandbox, and the app against it with a 1 s lease; one event posted (its job needs
/// HubSpot: the contact is resolved and tagged).
async fn world() -> (Sandbox, TestApp, EventId) {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.worker.lease = LEASE;
        },
        Clock::system(),
    )
    .await;
    let id = "evt_pool_1";
    let body = event_json(
        id,
        "customer.subscription.updated",
        "cus_pool",
        app.clock.now_secs(),
    );
    assert_eq!(app.post_signed(&body).await.status(), 200);
    (sandbox, app, EventId::parse(id).expect("id"))
}

/// Every HubSpot call takes `ms` from now on.
fn slow_hubspot(sandbox: &Sandbox, ms: u64) {
    sandbox.set_faults(Faults {
        latency_ms: ms,
        ..Faults::default()
    });
}

async fn status(app: &TestApp, id: &EventId) -> (EventStatus, i64) {
    let e = app
        .store
        .get_event(id)
        .await
        .expect("read")
        .expect("stored")
        .summary;
    (e.status, e.attempts)
}

/// Waits (up to `limit`) until the event is done.
async fn done_within(app: &TestApp, id: &EventId, limit: Duration) -> (EventStatus, i64) {
    let deadline = Instant::now() + limit;
    loop {
        let now = status(app, id).await;
        if now.0 == EventStatus::Done || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The app's database as another process would open it (SQLite or, with
/// `PAYBRIDGE_TEST_STORE=postgres`, Postgres; the app's store installed sqlx's drivers).
async fn jobs_table(app: &TestApp) -> sqlx::AnyPool {
    sqlx::AnyPool::connect(&common::pg::store_url_for(app.dir.path()))
        .await
        .expect("open")
}

/// Waits until the event's job is claimed (read from the jobs table, as another process
/// would see it).
async fn until_running(app: &TestApp, id: &EventId) {
    let db = jobs_table(app).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job: String = sqlx::query_scalar("SELECT status FROM jobs WHERE event_id = $1")
            .bind(id.as_str())
            .fetch_one(&db)
            .await
            .expect("the job");
        if job == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "the job was never claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    db.close().await;
}

/// Guards a lost lease (`Store::finish` records an outcome only for the lease's holder):
/// worker A's run outlives its lease in the eyes of worker B — another process whose
/// clock is a minute ahead, as a host's can be — and B takes the job over and finishes it.
/// A's run then fails (HubSpot answers it 503) and ends last: its outcome must not be
/// recorded over B's. Without the check the event would end `retrying` and run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lease_does_not_overwrite_the_new_holders_outcome() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let t0 = chrono::Utc::now().timestamp_millis();
    let a = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.worker.lease = LEASE;
        },
        Clock::manual(t0),
    )
    .await;
    let id = EventId::parse("evt_pool_lost").expect("id");
    let body = event_json(
        id.as_str(),
        "customer.subscription.updated",
        "cus_pool_lost",
        a.clock.now_secs(),
    );
    assert_eq!(a.post_signed(&body).await.status(), 200);
    // A's first HubSpot call (the contact's create) is answered after 3 s.
    slow_hubspot(&sandbox, 3_000);
    let cancel = CancellationToken::new();
    let pool_a = tokio::spawn(Pool::new(a.pipeline.clone()).run(cancel.clone()));
    until_running(&a, &id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sandbox.set_faults(Faults::default());

    // B: the same database, its clock a minute ahead: A's lease has lapsed for it.
    let b = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.worker.lease = LEASE;
            s.store.url = common::pg::store_url_for(a.dir.path());
        },
        Clock::manual(t0 + 60_000),
    )
    .await;
    assert_eq!(b.drain().await, 1, "B takes the job over and runs it");
    assert_eq!(status(&b, &id).await, (EventStatus::Done, 2));
    // A's create is still in flight; everything after it fails.
    sandbox.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    cancel.cancel();
    pool_a.await.expect("A's pool stops once its run has ended");
    sandbox.set_faults(Faults::default());

    assert_eq!(
        status(&a, &id).await,
        (EventStatus::Done, 2),
        "B's outcome stands"
    );
    let job: (String, Option<String>) =
        sqlx::query_as("SELECT status, locked_by FROM jobs WHERE event_id = $1")
            .bind(id.as_str())
            .fetch_one(&jobs_table(&a).await)
            .await
            .expect("the job");
    assert_eq!(job, ("done".to_owned(), None));
    let contacts = sandbox.state()["contacts"].clone();
    let claimed: Vec<&serde_json::Value> = contacts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["properties"]["stripe_customer_id"] == "cus_pool_lost")
        .collect();
    assert_eq!(claimed.len(), 1, "one contact: {contacts:#}");
    b.stop().await;
    a.stop().await;
}

/// Guards lease renewal: a job whose HubSpot calls take 2.5 s each (a new customer's event
/// is one create since issue 14), more than twice its 1 s lease, runs once. Without
/// renewal the loop would claim its expired lease again (attempts 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_its_lease_keeps_it_and_runs_once() {
    let (sandbox, app, id) = world().await;
    slow_hubspot(&sandbox, 2_500);
    let cancel = CancellationToken::new();
    let pool = tokio::spawn(Pool::new(app.pipeline.clone()).run(cancel.clone()));
    let started = Instant::now();
    let (state, attempts) = done_within(&app, &id, Duration::from_secs(60)).await;
    assert_eq!(state, EventStatus::Done);
    assert!(
        started.elapsed() >= LEASE * 2,
        "the job outlasted its lease: {:?}",
        started.elapsed()
    );
    assert_eq!(attempts, 1, "claimed once, its lease renewed");
    cancel.cancel();
    pool.await.expect("the pool stops");
    app.stop().await;
}

/// Guards lease expiry between two workers: a worker claims the job and dies (it never
/// renews nor finishes). The live loop leaves the job alone while that lease holds, then
/// takes it over once it has expired and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_lease_expires_and_a_live_worker_takes_the_job() {
    let (_sandbox, app, id) = world().await;
    let claimed_until = app.clock.now_ms() + LEASE.as_millis() as i64;
    let dead = app
        .store
        .claim("dead-worker", 10, claimed_until)
        .await
        .expect("claim");
    assert_eq!(dead.len(), 1);
    let cancel = CancellationToken::new();
    let pool = tokio::spawn(Pool::new(app.pipeline.clone()).run(cancel.clone()));
    // While the lease holds (measured on the app's clock, which the lease is), the job
    // stays the dead worker's.
    while app.clock.now_ms() < claimed_until - 200 {
        assert_eq!(
            status(&app, &id).await,
            (EventStatus::Pending, 0),
            "untouched while the dead worker's lease holds"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (state, attempts) = done_within(&app, &id, Duration::from_secs(60)).await;
    assert_eq!((state, attempts), (EventStatus::Done, 2));
    assert!(app.clock.now_ms() >= claimed_until);
    cancel.cancel();
    pool.await.expect("the pool stops");
    app.stop().await;
}

/// Guards the shutdown grace: on cancel, a job in flight (its HubSpot calls take 1.5 s) is
/// waited for and finishes (the grace running out: the next test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_job_in_flight() {
    let (sandbox, app, id) = world().await;
    slow_hubspot(&sandbox, 1_500);
    let cancel = CancellationToken::new();
    let pool = tokio::spawn(Pool::new(app.pipeline.clone()).run(cancel.clone()));
    // The stop comes once the job is running.
    until_running(&app, &id).await;
    assert_ne!(status(&app, &id).await.0, EventStatus::Done);
    cancel.cancel();
    pool.await.expect("the pool stops");
    assert_eq!(
        status(&app, &id).await,
        (EventStatus::Done, 1),
        "finished within the grace"
    );
    sandbox.set_faults(Faults::default());
    app.stop().await;
}

/// Guards the end of the shutdown grace (`worker/pool.rs`, 20 s): a job whose HubSpot call
/// outlasts it does not hold the stop for ever. The pool returns once the grace is spent,
/// before the call is answered, with the job unfinished; its lease, no longer renewed,
/// expires, and a worker after the restart takes it over and finishes it (attempt 2).
/// This test waits out the real 20 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_gives_up_on_a_job_that_outlasts_the_grace_and_the_job_runs_again() {
    const GRACE: Duration = Duration::from_secs(20);
    const CALL: Duration = Duration::from_secs(27);
    let (sandbox, app, id) = world().await;
    slow_hubspot(&sandbox, CALL.as_millis() as u64);
    let cancel = CancellationToken::new();
    let pool = tokio::spawn(Pool::new(app.pipeline.clone()).run(cancel.clone()));
    until_running(&app, &id).await;
    let stopping = Instant::now();
    cancel.cancel();
    pool.await.expect("the pool stops");
    let waited = stopping.elapsed();
    assert!(
        waited >= GRACE && waited < CALL,
        "the stop took {waited:?}: the grace, not the job's call"
    );
    assert_ne!(status(&app, &id).await.0, EventStatus::Done);
    sandbox.set_faults(Faults::default());
    // The lease it held when the pool stopped lapses within one lease.
    tokio::time::sleep(LEASE + Duration::from_millis(200)).await;
    assert_eq!(app.drain().await, 1, "the job is taken over");
    assert_eq!(status(&app, &id).await, (EventStatus::Done, 2));
    app.stop().await;
}
