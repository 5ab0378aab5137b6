//! One HubSpot budget for several replicas (issue 16), on a real Postgres: three limiters
//! (three replicas, each with its own pool) share one database, and together stay within
//! the budget in every window, drain it without waste, stop together on a pause, and wait
//! (neither hang nor admit) while Postgres does not answer.
//!
//! Each test creates and drops its own database on the server of
//! `PAYBRIDGE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

mod common;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hubspot_sandbox::SandboxConfig;
use paybridge::hubspot::Properties;
use paybridge::hubspot::limiter::{Bucket, Limiter};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::Instant;

const MIGRATION: &str = include_str!("../migrations/postgres/0061_hubspot_budget.sql");

/// A database of its own, dropped (WITH FORCE) when the test ends, passing or not.
struct TestDb {
    admin_url: String,
    name: String,
    options: PgConnectOptions,
}

impl TestDb {
    async fn create() -> TestDb {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin_url = std::env::var("PAYBRIDGE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let admin = PgPool::connect(&admin_url)
            .await
            .expect("Postgres answers at PAYBRIDGE_TEST_DATABASE_URL or 127.0.0.1:5432");
        let name = format!(
            "paybridge_budget_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        admin.close().await;
        let options = PgConnectOptions::from_str(&admin_url)
            .expect("the admin URL parses")
            .database(&name);
        let db = TestDb {
            admin_url,
            name,
            options,
        };
        let pool = db.pool().await;
        sqlx::raw_sql(MIGRATION)
            .execute(&pool)
            .await
            .expect("the budget's migration");
        pool.close().await;
        db
    }

    /// A replica's own pool.
    async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect_with(self.options.clone())
            .await
            .expect("connect to the test database")
    }

    fn upstream(&self) -> SocketAddr {
        let host = self.options.get_host();
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{host}:{}", self.options.get_port())
            .parse()
            .expect("Postgres on an IP address")
    }

    async fn replicas(
        &self,
        n: usize,
        requests_per_10s: u32,
        search_per_s: u32,
    ) -> Vec<Arc<Limiter>> {
        let mut replicas = Vec::new();
        for _ in 0..n {
            replicas.push(self.replica(requests_per_10s, search_per_s).await);
        }
        replicas
    }

    /// A replica's limiter sharing the budget in this database.
    async fn replica(&self, requests_per_10s: u32, search_per_s: u32) -> Arc<Limiter> {
        let limiter = Limiter::new(requests_per_10s, search_per_s);
        limiter.share(self.pool().await);
        Arc::new(limiter)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Its own runtime on its own thread: Drop may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let admin = PgPool::connect(&url).await.expect("reconnect to drop");
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .expect("drop the test database");
            });
        });
        dropped.join().expect("the test database dropped");
    }
}

/// `tasks` callers per replica acquiring `bucket` as fast as they can for `run_for`: each
/// replica's admission times, from the start.
async fn hammer(
    replicas: &[Arc<Limiter>],
    tasks: usize,
    bucket: Bucket,
    run_for: Duration,
) -> Vec<Vec<Duration>> {
    let start = Instant::now();
    let deadline = start + run_for;
    let mut handles = Vec::new();
    for (r, limiter) in replicas.iter().enumerate() {
        for _ in 0..tasks {
            let limiter = limiter.clone();
            handles.push(tokio::spawn(async move {
                let mut times = Vec::new();
                while let Ok(_waited) =
                    tokio::time::timeout_at(deadline, limiter.acquire(bucket)).await
                {
                    times.push(start.elapsed());
                }
                (r, times)
            }));
        }
    }
    let mut by_replica = vec![Vec::new(); replicas.len()];
    for handle in handles {
        let (r, times) = handle.await.expect("a caller ran");
        by_replica[r].extend(times);
    }
    by_replica
}

/// The most admissions within any span of `window` (starting at an admission).
fn busiest(times: &[Duration], window: Duration) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn all_sorted(by_replica: &[Vec<Duration>]) -> Vec<Duration> {
    let mut all: Vec<Duration> = by_replica.iter().flatten().copied().collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_together_stay_within_the_ten_second_budget_and_drain_it() {
    let db = TestDb::create().await;
    let max = 40;
    let replicas = db.replicas(3, max, 10).await;
    let run_for = Duration::from_secs(25);
    let by_replica = hammer(&replicas, 40, Bucket::Standard, run_for).await;
    let all = all_sorted(&by_replica);
    let most = busiest(&all, Duration::from_secs(10));
    let counts: Vec<usize> = by_replica.iter().map(Vec::len).collect();
    println!(
        "{} admitted in {run_for:?} ({counts:?} per replica), busiest 10 s: {most}",
        all.len()
    );
    assert!(most <= max as usize, "{most} calls within 10 s");
    // No waste: the budget's bound over the run is 40 per 10 s, 100 calls.
    let bound = max as f64 * run_for.as_secs_f64() / 10.0;
    assert!(
        all.len() as f64 >= 0.9 * bound,
        "{} admitted, bound {bound}",
        all.len()
    );
    for count in &counts {
        assert!(*count * 10 >= all.len(), "a replica starved: {counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_together_stay_within_the_search_budget_every_second() {
    let db = TestDb::create().await;
    let max = 10;
    let replicas = db.replicas(3, 100, max).await;
    let run_for = Duration::from_secs(10);
    let by_replica = hammer(&replicas, 40, Bucket::Search, run_for).await;
    let all = all_sorted(&by_replica);
    let most = busiest(&all, Duration::from_secs(1));
    println!(
        "{} searches in {run_for:?}, busiest second: {most}",
        all.len()
    );
    assert!(most <= max as usize, "{most} searches within 1 s");
    // The search bucket runs at max / 1.2 s (its 100 ms spread, see shared_budget.rs):
    // ~83 in 10 s. At least 90% of that.
    let design = f64::from(max) / 1.2 * run_for.as_secs_f64();
    assert!(
        all.len() as f64 >= 0.9 * design,
        "{} searches, the design allows {design}",
        all.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_on_one_replica_stops_the_others_in_both_buckets() {
    let db = TestDb::create().await;
    let (a, b, c) = (
        db.replica(100, 5).await,
        db.replica(100, 5).await,
        db.replica(100, 5).await,
    );
    // Warm: every replica can call (the bucket fills in ~1/rate).
    for limiter in [&a, &b, &c] {
        limiter.acquire(Bucket::Standard).await;
    }
    a.pause_everywhere(Duration::from_secs(3)).await;
    let started = Instant::now();
    let (standard, search) = tokio::join!(
        async {
            b.acquire(Bucket::Standard).await;
            started.elapsed()
        },
        async {
            c.acquire(Bucket::Search).await;
            started.elapsed()
        },
    );
    for waited in [standard, search] {
        assert!(
            waited >= Duration::from_millis(2_900) && waited < Duration::from_secs(5),
            "waited {waited:?} after another replica paused for 3 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batchers_on_another_replica_see_the_shared_pressure() {
    let db = TestDb::create().await;
    // 40 per 10 s: the shared bucket refills a token every ~262 ms, holds under two; each
    // replica's own pacing burst is 4, so one call leaves its own limiter loose.
    let (a, b) = (db.replica(40, 5).await, db.replica(40, 5).await);
    // A's first call waits for the empty new bucket's first token (~262 ms), by when B's
    // own limiter has refilled past half its pacing burst.
    a.acquire(Bucket::Standard).await;
    // B's own limiter is loose, but the shared bucket is empty: B's batchers wait in
    // `ready` for the next token without taking it...
    let started = Instant::now();
    b.ready(Bucket::Standard).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "ready after {waited:?}"
    );
    assert!(b.is_tight(), "B sees the budget tight");
    // ...which is still there for whoever acquires first (taken, the next is ~262 ms off).
    let started = Instant::now();
    a.acquire(Bucket::Standard).await;
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "the token `ready` waited for was taken: {:?}",
        started.elapsed()
    );
}

/// The whole client: three `HubSpot`s (three replicas) `sharing` one budget create 450
/// contacts as they trickle in (each replica one every 20 ms for 3 s) against a sandbox that
/// enforces HubSpot's rolling window at 20 per 10 s. HubSpot never has to say 429, its
/// busiest window stays within the budget, and the batchers fill their batches (a few
/// calls for 450 records). Without the shared budget each replica spends its own 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_sharing_the_budget_get_no_429_and_still_fill_their_batches() {
    let db = TestDb::create().await;
    let budget = 20;
    let sandbox = common::spawn_sandbox(SandboxConfig {
        requests_per_10s: budget,
        ..SandboxConfig::default()
    })
    .await;
    let mut handles = Vec::new();
    for replica in 0..3 {
        let client = common::hubspot_client(&sandbox, budget).sharing(db.pool().await);
        for i in 0..150u64 {
            let client = client.clone();
            handles.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 * i)).await;
                let email = format!("r{replica}-{i}@example.com");
                client
                    .create_contact(Properties::from([("email".into(), email)]))
                    .await
            }));
        }
    }
    for handle in handles {
        handle.await.expect("ran").expect("the contact is created");
    }
    let stats = sandbox.stats()["tokens"][SandboxConfig::default().token].clone();
    println!("{stats}");
    assert_eq!(stats["rate_limited"], 0, "HubSpot answered 429: {stats}");
    let busiest = stats["max_in_any_10s"].as_u64().unwrap_or(u64::MAX);
    assert!(busiest <= u64::from(budget), "{busiest} calls in 10 s");
    let calls = stats["calls"].as_u64().unwrap_or(u64::MAX);
    assert!(calls <= 15, "{calls} calls for 450 contacts");
}

/// A TCP forwarder to Postgres that can go down (refuse and cut every connection) and up.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("the proxy's address");
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (is_up, conns) = (up.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !is_up.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("conns").push(task.abort_handle());
            }
        });
        Proxy { addr, up, open }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for conn in self.open.lock().expect("conns").drain(..) {
            conn.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_does_not_answer_calls_wait_with_a_bounded_backoff_then_resume() {
    let db = TestDb::create().await;
    let proxy = Proxy::start(db.upstream()).await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(db.options.clone().host("127.0.0.1").port(proxy.addr.port()));
    let limiter = Limiter::new(100, 5);
    limiter.share(pool);
    limiter.acquire(Bucket::Standard).await;
    let budget = limiter.shared_budget().expect("shared");
    assert_eq!(budget.errors(), 0);

    proxy.down();
    let outage = Duration::from_secs(4);
    let during = tokio::time::timeout(outage, limiter.acquire(Bucket::Standard)).await;
    assert!(
        during.is_err(),
        "admitted without the shared budget (fail open)"
    );
    // Backoff 250 ms, 500 ms, 1 s, 2 s: about five attempts in 4 s, not a spin.
    let errors = budget.errors();
    assert!(
        (2..=8).contains(&errors),
        "{errors} failed attempts in {outage:?}"
    );

    proxy.up();
    let started = Instant::now();
    let after = tokio::time::timeout(Duration::from_secs(10), limiter.acquire(Bucket::Standard));
    assert!(after.await.is_ok(), "no call once Postgres answered again");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "resumed after {waited:?}");
}
