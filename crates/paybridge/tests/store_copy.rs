//! `paybridge store copy`: a SQLite store holding events in every state, copied by the real
//! binary into a fresh Postgres database, then served from Postgres: every event is there
//! with its status, what waited runs, nothing done runs again. A store written during the
//! copy is copied from one snapshot; ids SQLite gave out are not given again. A target
//! holding rows, an unreachable one, a missing source, one that is not a paybridge store and
//! one of another schema version are refused (exit 2), and a password in a URL is never
//! printed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::TestApp;
use common::crm::records;
use common::pg;
use common::story::{customer_story, event};
use paybridge::domain::{Clock, EventStatus};
use paybridge::store::{ClaimedJob, EventFilter, EventSummary, JobOutcome, Store};
use sqlx::Connection as _;

/// `url` carrying `password` (the tests' Postgres trusts and ignores it).
fn with_password(url: &str, password: &str) -> String {
    let mut url = reqwest::Url::parse(url).expect("a URL");
    url.set_password(Some(password)).expect("a password");
    url.to_string()
}

/// The app on a SQLite file of its own whatever `PAYBRIDGE_TEST_STORE` asks (it is the
/// source of a copy): with `config` against its sandbox, else the plain test settings.
async fn sqlite_app(config: Option<(&str, &hubspot_sandbox::Sandbox)>, clock: Clock) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut loaded = match config {
        Some((text, sandbox)) => {
            let loaded = common::settings_from_config(text, dir.path(), sandbox);
            let needs = loaded
                .rules
                .properties_needed(&loaded.settings.contacts.id_property);
            common::setup_properties(sandbox, needs).await;
            loaded
        }
        None => common::test_settings(dir.path()).into(),
    };
    loaded.settings.store.url = sqlite_url(&dir.path().join("paybridge.db"));
    common::spawn_app_in(dir, loaded, clock).await
}

/// The real binary: `paybridge store copy --from FROM --to TO` (no config file).
async fn store_copy(from: &str, to: &str) -> std::process::Output {
    let mut cmd = common::process::binary();
    cmd.args(["store", "copy", "--from", from, "--to", to])
        .env_remove("PAYBRIDGE_CONFIG")
        .current_dir(std::env::temp_dir());
    tokio::process::Command::from(cmd)
        .output()
        .await
        .expect("the binary runs")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The jobs of `customer`'s dunning sequence: (step, status, run_at).
async fn dunning_steps(store: &Store, customer: &str) -> Vec<(i64, String, i64)> {
    store
        .sequence_jobs(customer, "payment_recovery")
        .await
        .expect("sequence jobs")
}

async fn all_events(store: &Store) -> BTreeMap<String, EventSummary> {
    store
        .list_events(&EventFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .expect("list events")
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect()
}

/// Posts `body` and claims its job as `worker` (it is the only one due).
async fn post_and_claim(app: &TestApp, body: &serde_json::Value, worker: &str) -> ClaimedJob {
    let r = app
        .post_signed(&serde_json::to_vec(body).expect("json"))
        .await;
    assert_eq!(r.status(), 200);
    let lease_until = app.clock.now_ms() + 60_000;
    let mut jobs = app
        .store
        .claim(worker, 10, lease_until)
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1, "only the new event's job is due: {jobs:?}");
    let job = jobs.remove(0);
    assert_eq!(job.event_id, body["id"].as_str().expect("id"));
    job
}

/// The one event of customer `cus_{name}`: its `customer.created`.
fn signup(name: &str) -> serde_json::Value {
    event(
        "customer.created.json",
        &format!("evt_{name}"),
        &format!("cus_{name}"),
        &format!("{name}@example.com"),
        1_790_000_000,
    )
}

/// Three customers' whole lives run (done, a dunning sequence's later steps scheduled), and
/// one customer each: retrying, dead, needs attention, running under a live lease, pending.
/// Copied to Postgres (the URL carrying a password, which is not printed), then served from
/// there with the clock past the lease and the retry: the waiting ones complete and the
/// sequences run to their end, and the CRM holds exactly one of everything, also after
/// every done event is run again (the copied step records say what was done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_in_every_state_moves_to_postgres_and_goes_on_from_there() {
    let sandbox = common::spawn_sandbox(hubspot_sandbox::SandboxConfig::default()).await;
    let slack = common::receiver::Receiver::start(vec![]).await;
    let provisioning = common::receiver::Receiver::start(vec![]).await;
    let config = common::starter_with_receivers(
        &format!("{}/slack", slack.url),
        &format!("{}/provision", provisioning.url),
    );
    let clock = Clock::manual(chrono::Utc::now().timestamp_millis());
    let app = sqlite_app(Some((&config, &sandbox)), clock.clone()).await;
    let done_customers = fill_in_every_state(&app).await;
    let before = all_events(&app.store).await;
    let dir = app.stop().await;
    let crm_before = sandbox.state();
    assert_eq!(records(&crm_before, "contacts").len(), 3);

    let db = pg::database().await;
    copy_without_showing_the_password(&dir.path().join("paybridge.db"), &db).await;
    let mut c = db.connect().await;
    let lease: (String, Option<String>) =
        sqlx::query_as("SELECT status, locked_by FROM jobs WHERE event_id = 'evt_cplease'")
            .fetch_one(&mut c)
            .await
            .expect("the leased job");
    let _ = c.close().await;
    assert_eq!(
        (lease.0.as_str(), lease.1.as_deref()),
        ("running", Some("gone-replica")),
        "the lease is copied as it is"
    );

    // Served from Postgres: the lease and the retry are past.
    clock.advance_ms(120_000);
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut loaded = common::settings_from_config(&config, dir2.path(), &sandbox);
    loaded.settings.store.url = db.url().to_owned();
    let app = common::spawn_app_in(dir2, loaded, clock.clone()).await;
    let copied = all_events(&app.store).await;
    assert_eq!(
        copied.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "every event is there"
    );
    for (id, e) in &before {
        let c = &copied[id];
        assert_eq!(
            (
                c.status,
                c.attempts,
                &c.last_error,
                &c.contact_id,
                c.received_at
            ),
            (
                e.status,
                e.attempts,
                &e.last_error,
                &e.contact_id,
                e.received_at
            ),
            "{id} as it was"
        );
    }
    app.drain().await;
    for _ in 0..2 {
        clock.advance_ms(4 * 86_400_000);
        app.drain().await;
    }
    assert_went_on(&before, &all_events(&app.store).await);
    for customer in &done_customers {
        let steps = dunning_steps(&app.store, customer).await;
        assert!(
            steps.len() >= 2 && steps.iter().all(|(_, status, _)| status == "done"),
            "the dunning sequence of {customer} ran to its end: {steps:?}"
        );
    }
    assert_one_of_everything(&sandbox.state(), &done_customers);
    for (kind, n) in [("deals", 3), ("tickets", 3)] {
        assert_eq!(
            records(&crm_before, kind).len(),
            n,
            "{kind} were made before the copy, and not again after"
        );
    }

    // Every done event run again: the copied step records skip what was done.
    let done: Vec<String> = before
        .values()
        .filter(|e| e.status == EventStatus::Done)
        .map(|e| e.id.clone())
        .collect();
    let again = app.store.retry_events(&done).await.expect("retry");
    assert_eq!(again.len(), done.len());
    app.drain().await;
    assert_one_of_everything(&sandbox.state(), &done_customers);
    app.stop().await;
}

/// The SQLite store of the round trip: three whole lives done (their dunning sequences'
/// later steps scheduled), then one customer each retrying, dead, needing attention,
/// running under a live lease (of a replica that died) and pending. Returns the three.
async fn fill_in_every_state(app: &TestApp) -> Vec<String> {
    let mut done_customers = Vec::new();
    for i in 0..3 {
        let (events, x) = customer_story("cpdone", i, 1_790_000_000);
        for e in &events {
            let r = app.post_signed(&serde_json::to_vec(e).expect("json")).await;
            assert_eq!(r.status(), 200);
        }
        done_customers.push(x.customer);
    }
    app.drain().await;
    for customer in &done_customers {
        let steps = dunning_steps(&app.store, customer).await;
        assert!(
            steps.iter().any(|(_, status, _)| status == "pending"),
            "a later dunning step is scheduled for {customer}: {steps:?}"
        );
    }
    let now = app.clock.now_ms();
    let retry = JobOutcome::Retry {
        run_at: now + 60_000,
        error: "HubSpot answered 503".into(),
        count_attempt: true,
    };
    let dead = JobOutcome::Dead {
        error: "VALIDATION_ERROR".into(),
    };
    let attention = JobOutcome::NeedsAttention {
        error: "email belongs to another customer's contact".into(),
        contact_id: None,
    };
    for (name, outcome) in [("cpretry", retry), ("cpdead", dead), ("cpattn", attention)] {
        let job = post_and_claim(app, &signup(name), "w").await;
        let recorded = app.store.finish("w", &job, &outcome).await.expect("finish");
        assert!(recorded, "{name}");
    }
    // A replica that died mid-job: its lease runs for another minute.
    post_and_claim(app, &signup("cplease"), "gone-replica").await;
    let r = app
        .post_signed(&serde_json::to_vec(&signup("cppending")).expect("json"))
        .await;
    assert_eq!(r.status(), 200);

    let events = all_events(&app.store).await;
    for (id, status) in [
        ("evt_cpretry", EventStatus::Retrying),
        ("evt_cpdead", EventStatus::Dead),
        ("evt_cpattn", EventStatus::NeedsAttention),
        ("evt_cplease", EventStatus::Pending),
        ("evt_cppending", EventStatus::Pending),
    ] {
        assert_eq!(events[id].status, status, "{id}");
    }
    let done = events.values().filter(|e| e.status == EventStatus::Done);
    assert_eq!(done.count(), 15, "three whole lives done");
    done_customers
}

/// `store copy` of `source` into `db` by the binary, the URL carrying a password: it
/// succeeds, prints the URL redacted and a count line per table.
async fn copy_without_showing_the_password(source: &Path, db: &pg::TestDatabase) {
    let to = with_password(db.url(), "hunter2-not-printed");
    let copied = store_copy(&sqlite_url(source), &to).await;
    let out = text(&copied);
    assert!(copied.status.success(), "{out}");
    assert!(
        !out.contains("hunter2"),
        "the password is not printed: {out}"
    );
    assert!(out.contains(":***@"), "the URL is shown redacted: {out}");
    let events_line = out
        .lines()
        .find(|l| l.starts_with("events "))
        .unwrap_or_else(|| panic!("a line for events: {out}"));
    let counts: Vec<&str> = events_line.split_whitespace().collect();
    assert_eq!(counts, ["events", "20", "20"], "{out}");
    for table in [
        "jobs",
        "steps",
        "watermarks",
        "contacts",
        "customers",
        "timeline",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{table} "))),
            "{table} copied: {out}"
        );
    }
}

/// After serving from Postgres: what waited ran (the lease reclaimed, attempt 2), what was
/// dead, needed attention or was done is as it was.
fn assert_went_on(before: &BTreeMap<String, EventSummary>, after: &BTreeMap<String, EventSummary>) {
    for id in ["evt_cpretry", "evt_cplease", "evt_cppending"] {
        assert_eq!(after[id].status, EventStatus::Done, "{id} ran on Postgres");
    }
    assert_eq!(
        after["evt_cplease"].attempts, 2,
        "the expired lease was reclaimed"
    );
    let settled = before
        .iter()
        .filter(|(id, e)| e.status != EventStatus::Pending && id.as_str() != "evt_cpretry");
    for (id, e) in settled {
        assert_eq!(
            (after[id].status, after[id].attempts, after[id].finished_at),
            (e.status, e.attempts, e.finished_at),
            "{id} is not run again"
        );
    }
}

/// The CRM of the round trip: one contact per customer that ran (none for the dead and the
/// one needing attention), and the whole lives' records as tests/pipeline.rs counts them
/// (the onboarding task and deal, the dunning ticket, the sequence's note on day 3 and its
/// tasks on days 3 and 7), none twice.
fn assert_one_of_everything(state: &serde_json::Value, done_customers: &[String]) {
    let contacts = records(state, "contacts");
    let mut by_customer: BTreeMap<String, usize> = BTreeMap::new();
    for c in &contacts {
        if let Some(id) = c["properties"]["stripe_customer_id"].as_str() {
            *by_customer.entry(id.to_owned()).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = done_customers
        .iter()
        .cloned()
        .chain(["cus_cpretry", "cus_cplease", "cus_cppending"].map(String::from))
        .map(|c| (c, 1))
        .collect();
    assert_eq!(by_customer, expected, "one contact per customer that ran");
    assert_eq!(contacts.len(), 6);
    for (kind, n) in [("tasks", 9), ("deals", 3), ("tickets", 3), ("notes", 3)] {
        assert_eq!(records(state, kind).len(), n, "{kind}: none twice");
    }
}

/// Runs `statements` on the SQLite file at `path` (created if missing).
async fn sqlite_exec(path: &Path, statements: &[&str]) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut c = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("open the SQLite file");
    for statement in statements {
        sqlx::query(statement)
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let _ = c.close().await;
}

/// How many events the target database holds.
async fn pg_events(db: &pg::TestDatabase) -> i64 {
    let mut c = db.connect().await;
    let events = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut c)
        .await
        .expect("count");
    let _ = c.close().await;
    events
}

/// A store with one event (no workers ran), in a temp dir.
async fn small_store() -> (tempfile::TempDir, String) {
    let app = sqlite_app(None, Clock::system()).await;
    let body = common::event_json("evt_small_1", "invoice.paid", "cus_small", 1_790_000_000);
    assert_eq!(app.post_signed(&body).await.status(), 200);
    let dir = app.stop().await;
    let url = sqlite_url(&dir.path().join("paybridge.db"));
    (dir, url)
}

/// A second copy into the same database: exit 2 naming the tables that hold rows, the
/// password of the URL not printed, nothing added.
#[tokio::test]
async fn a_target_holding_rows_is_refused_with_exit_2_and_left_as_it_was() {
    let (_dir, from) = small_store().await;
    let db = pg::database().await;
    let first = store_copy(&from, db.url()).await;
    assert!(first.status.success(), "{}", text(&first));

    let to = with_password(db.url(), "s3cret-pw");
    let again = store_copy(&from, &to).await;
    let out = text(&again);
    assert_eq!(again.status.code(), Some(2), "{out}");
    assert!(out.contains("the target is not empty"), "{out}");
    assert!(
        out.contains("events") && out.contains("jobs"),
        "names the tables: {out}"
    );
    assert!(
        !out.contains("s3cret-pw"),
        "the password is not printed: {out}"
    );
    assert_eq!(pg_events(&db).await, 1, "nothing added");
}

/// A mistyped path (not created), a SQLite file of something else and a store of a newer
/// paybridge: each refused with exit 2 before a row is copied.
#[tokio::test]
async fn a_source_that_is_not_a_paybridge_store_of_this_version_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other.db");
    sqlite_exec(&other, &["CREATE TABLE notes (body TEXT)"]).await;
    let db = pg::database().await;
    let missing = sqlite_url(&dir.path().join("typo.db"));
    let refused = store_copy(&missing, db.url()).await;
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{out}");
    assert!(out.contains("typo.db: no such file"), "{out}");
    assert!(!dir.path().join("typo.db").exists(), "not created");

    let refused = store_copy(&sqlite_url(&other), db.url()).await;
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{out}");
    assert!(out.contains("not a paybridge store"), "{out}");

    // A store written by a newer paybridge (one migration more).
    let (_store_dir, from) = small_store().await;
    sqlite_exec(
        Path::new(from.trim_start_matches("sqlite://")),
        &["INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)"],
    )
    .await;
    let refused = store_copy(&from, db.url()).await;
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{out}");
    assert!(out.contains("schema version 999"), "{out}");
    assert_eq!(pg_events(&db).await, 0, "nothing copied");
}

/// A store being written (webhooks arriving all along) is copied from one snapshot: every
/// event copied has its job and every job its event. Read table by table without the one
/// read transaction, the jobs of events that arrived after `events` was read would come
/// without them (refused by the foreign key) or events without their jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_during_the_copy_is_copied_from_one_snapshot() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = Arc::new(sqlite_app(None, Clock::system()).await);
    let post = |app: Arc<TestApp>, id: String| async move {
        let body = common::event_json(&id, "invoice.paid", "cus_busy", 1_790_000_000);
        app.post_signed(&body).await.status()
    };
    for batch in 0..20 {
        let posts: Vec<_> = (0..100)
            .map(|i| tokio::spawn(post(app.clone(), format!("evt_before_{batch}_{i}"))))
            .collect();
        for p in posts {
            assert_eq!(p.await.expect("posted"), 200);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (app, stop) = (app.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(post(app.clone(), format!("evt_during_{n}")).await, 200);
                n += 1;
            }
            n
        }
    });
    let db = pg::database().await;
    let copied = store_copy(&sqlite_url(&app.db_path), db.url()).await;
    stop.store(true, Ordering::Relaxed);
    let during = writer.await.expect("the writer ends");
    let out = text(&copied);
    assert!(copied.status.success(), "{out}");
    assert!(during > 0, "webhooks arrived during the copy");

    let mut c = db.connect().await;
    let (events, jobs, orphans): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events),
                (SELECT count(*) FROM jobs WHERE kind = 'event'),
                (SELECT count(*) FROM events e WHERE NOT EXISTS
                   (SELECT 1 FROM jobs j WHERE j.event_id = e.id))",
    )
    .fetch_one(&mut c)
    .await
    .expect("counts");
    let _ = c.close().await;
    assert!(events >= 2_000, "{events}");
    assert_eq!((jobs, orphans), (events, 0), "each event with its job");
    match Arc::try_unwrap(app) {
        Ok(app) => {
            app.stop().await;
        }
        Err(_) => panic!("the app is still shared"),
    }
}

/// A target no Postgres answers at: exit 2, the cause said, the URL named without its
/// password, and nothing of the source's changed.
#[tokio::test]
async fn an_unreachable_target_is_named_without_its_password() {
    let (_dir, from) = small_store().await;
    // Port 1 on loopback: nothing listens there.
    let refused = store_copy(&from, "postgres://app:pw-not-printed@127.0.0.1:1/pay").await;
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{out}");
    assert!(out.contains("postgres://app:***@127.0.0.1:1/pay"), "{out}");
    assert!(out.contains("cannot connect"), "the cause is said: {out}");
    assert!(!out.contains("pw-not-printed"), "{out}");
}

/// An id SQLite's AUTOINCREMENT gave out is never given again on Postgres, also when its
/// row is gone (the sequence moves past `sqlite_sequence`, not only past the largest id).
#[tokio::test]
async fn ids_sqlite_gave_out_are_not_given_again() {
    let (_dir, from) = small_store().await;
    let row = |id| {
        format!(
            "INSERT INTO timeline (id, event_id, at, attempt, message) \
             VALUES ({id}, 'evt_small_1', 0, 1, 'x')"
        )
    };
    let (one, two, three) = (row(1), row(2), row(3));
    sqlite_exec(
        Path::new(from.trim_start_matches("sqlite://")),
        &[&one, &two, &three, "DELETE FROM timeline WHERE id = 3"],
    )
    .await;
    let db = pg::database().await;
    let copied = store_copy(&from, db.url()).await;
    assert!(copied.status.success(), "{}", text(&copied));
    let mut c = db.connect().await;
    let next: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('timeline', 'id'))")
        .fetch_one(&mut c)
        .await
        .expect("nextval");
    let _ = c.close().await;
    assert_eq!(next, 4, "3 was given out before the copy");
}
