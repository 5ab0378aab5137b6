//! Intake benchmark: signed webhooks per second accepted and durably stored (group commit),
//! then acknowledgement latency at a fixed offered rate. SQLite (WAL, synchronous=FULL) by
//! default; Postgres with `--postgres`, by one replica or several.
//!
//!     cargo run --release -p paybridge --example intake_bench [-- EVENTS CONCURRENCY RATE SECONDS DIR]
//!     cargo run --release -p paybridge --example intake_bench -- --postgres ADMIN_URL [--replicas N] [EVENTS CONCURRENCY RATE SECONDS]
//!
//! Defaults: 50000 events over 64 connections, then 500 req/s for 10 s. The load generator
//! runs in the same process (sharing the machine's cores), so the numbers are conservative.
//! Only 200s count as acknowledged. The SQLite files go under DIR, by default the
//! project's `target/intake_bench` (a temporary directory is often tmpfs, where fsync costs
//! nothing); the directory and its file system are printed.
//!
//! With `--postgres ADMIN_URL` (a role that may create databases, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`), each phase runs on a database of its own,
//! created on that server and dropped afterwards. `--replicas N` (default 1) starts N
//! `Application`s in this process, each with its own listener, store pools and group-commit
//! writer, on the same database, as N `serve` processes behind a load balancer would be;
//! requests go to them round-robin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use paybridge::app::Application;
use paybridge::basics::Secret;
use paybridge::config::Settings;
use paybridge::domain::Clock;
use paybridge::store::{Store, redacted_url};
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

#[path = "support/stats.rs"]
mod stats;

const SECRET: &str = "whsec_bench_0123456789";

fn body_for(template: &serde_json::Value, id: &str, customer: usize) -> Vec<u8> {
    let mut event = template.clone();
    event["id"] = id.into();
    event["data"]["object"]["customer"] = format!("cus_bench{customer}").into();
    serde_json::to_vec(&event).expect("serialise")
}

/// Where the events are stored.
enum Backend {
    /// SQLite files in fresh directories under this one.
    Sqlite(std::path::PathBuf),
    /// Fresh databases on this Postgres server (the admin URL), shared by `replicas` apps.
    Postgres { admin: String, replicas: usize },
}

/// What the command line asks for.
struct Args {
    backend: Backend,
    events: usize,
    concurrency: usize,
    rate: u64,
    seconds: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut positional = Vec::new();
    let mut postgres = None;
    let mut replicas = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--postgres" => postgres = Some(args.next().context("--postgres needs a URL")?),
            "--replicas" => {
                replicas = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .context("--replicas needs a number above 0")?;
            }
            _ => positional.push(arg),
        }
    }
    let number = |i: usize, default: u64| {
        positional
            .get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let backend = match postgres {
        Some(admin) => Backend::Postgres { admin, replicas },
        None => {
            let base = match positional.get(4) {
                Some(dir) => std::path::PathBuf::from(dir),
                None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/intake_bench"),
            };
            std::fs::create_dir_all(&base)?;
            Backend::Sqlite(base.canonicalize()?)
        }
    };
    Ok(Args {
        backend,
        events: number(0, 50_000) as usize,
        concurrency: number(1, 64) as usize,
        rate: number(2, 500),
        seconds: number(3, 10),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    match &args.backend {
        Backend::Sqlite(base) => println!(
            "store: SQLite files under {} ({})",
            base.display(),
            file_system(base)
        ),
        Backend::Postgres { admin, replicas } => println!(
            "store: Postgres, a fresh database per phase on {}; {replicas} replica(s) \
             (Applications in this process, each its own listener, pools and writer), \
             requests round-robin",
            redacted_url(admin)
        ),
    }
    let template: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/stripe/invoice.paid.json"))?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    let target = start(&args.backend).await?;
    let measured = throughput(&args, &template, &client, &target).await;
    target.stop().await?;
    measured?;

    // Phase 2, on a fresh store (the steady state of a running service, not the aftermath of
    // the burst above).
    let target = start(&args.backend).await?;
    let measured = latency(&args, &template, &client, &target).await;
    target.stop().await?;
    measured
}

/// Phase 1: every event posted as fast as `concurrency` connections allow. Bodies are built
/// and signed before the clock starts.
async fn throughput(
    args: &Args,
    template: &serde_json::Value,
    client: &reqwest::Client,
    target: &Target,
) -> anyhow::Result<()> {
    let events = args.events;
    let now = chrono::Utc::now().timestamp();
    let prepared: Vec<(Vec<u8>, String)> = (0..events)
        .map(|i| {
            let body = body_for(template, &format!("evt_bench_{i}"), i % 5_000);
            let header = paybridge::stripe::sign(SECRET, now, &body);
            (body, header)
        })
        .collect();
    let prepared = Arc::new(prepared);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, urls, prepared, next) = (
            client.clone(),
            target.urls.clone(),
            prepared.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((body, header)) = prepared.get(i) else {
                    break;
                };
                let ok = client
                    .post(&urls[i % urls.len()])
                    .header("Stripe-Signature", header)
                    .body(body.clone())
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                if !ok {
                    failures += 1;
                }
            }
            failures
        }));
    }
    let mut failures = 0;
    for t in tasks {
        failures += t.await?;
    }
    let elapsed = started.elapsed();
    let stored = target.store.count_events().await?;
    let acknowledged = events - failures;
    println!(
        "throughput: {events} signed webhooks over {} connections in {:.2} s = {:.0} events/s acknowledged with 200 (durable), {failures} not 200, {stored} rows stored",
        args.concurrency,
        elapsed.as_secs_f64(),
        acknowledged as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Phase 2: latency at a fixed offered rate (open loop: a request is due every 1/rate s,
/// whether or not earlier ones have been answered; latency counts from when it was due).
async fn latency(
    args: &Args,
    template: &serde_json::Value,
    client: &reqwest::Client,
    target: &Target,
) -> anyhow::Result<()> {
    let (rate, seconds) = (args.rate, args.seconds);
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let now = chrono::Utc::now().timestamp();
        let body = body_for(template, &format!("evt_latency_{i}"), i % 5_000);
        let header = paybridge::stripe::sign(SECRET, now, &body);
        let (client, url) = (client.clone(), target.urls[i % target.urls.len()].clone());
        tasks.push(tokio::spawn(async move {
            let ok = client
                .post(&url)
                .header("Stripe-Signature", header)
                .body(body)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false);
            (due.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failures = 0;
    for t in tasks {
        let (latency, ok) = t.await?;
        if !ok {
            failures += 1;
        }
        latencies.push(latency);
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "latency at {rate} req/s for {seconds} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {failures} not 200",
        ms(stats::percentile(&latencies, 50.0)),
        ms(stats::percentile(&latencies, 99.0)),
        latencies.last().copied().map(ms).unwrap_or_default(),
    );
    Ok(())
}

/// The file system `path` is on (its longest mount point in /proc/mounts), e.g. `ext4` or
/// `tmpfs`; "unknown" elsewhere.
fn file_system(path: &std::path::Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max()
        .map(|(_, kind)| kind)
        .unwrap_or_else(|| "unknown".into())
}

/// The running apps (intake only) of one phase and what they store in.
struct Target {
    /// Each app's webhook URL.
    urls: Arc<Vec<String>>,
    store: Store,
    cancel: CancellationToken,
    servers: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    storage: Storage,
}

/// Where a phase's data lives, removed when it ends.
enum Storage {
    Directory { _dir: tempfile::TempDir },
    Database { admin: String, name: String },
}

/// Starts the phase's apps on a fresh store: one on a new SQLite file, or `replicas` on a
/// new Postgres database.
async fn start(backend: &Backend) -> anyhow::Result<Target> {
    let (store_url, storage, replicas) = match backend {
        Backend::Sqlite(base) => {
            let dir = tempfile::tempdir_in(base)?;
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            (url, Storage::Directory { _dir: dir }, 1)
        }
        Backend::Postgres { admin, replicas } => {
            let (url, name) = create_database(admin).await?;
            let storage = Storage::Database {
                admin: admin.clone(),
                name,
            };
            (url, storage, *replicas)
        }
    };
    let cancel = CancellationToken::new();
    let mut urls = Vec::new();
    let mut servers = Vec::new();
    let mut store = None;
    for _ in 0..replicas {
        let mut settings = Settings::defaults();
        settings.server.listen = "127.0.0.1:0".parse()?;
        settings.server.admin_listen = "127.0.0.1:0".parse()?;
        settings.store.url = store_url.clone();
        settings.stripe.webhook_secrets = vec![Secret::new(SECRET.into())];
        // Intake alone: the workers would compete for the same two cores (see drain_bench
        // for them).
        let app = Application::build_with(
            settings.into(),
            Clock::system(),
            paybridge::app::Options {
                run_workers: false,
                ..Default::default()
            },
        )
        .await?;
        urls.push(format!("http://{}/webhooks/stripe", app.public_addr()));
        store.get_or_insert_with(|| app.store().clone());
        servers.push(tokio::spawn(app.run_until_stopped(cancel.clone())));
    }
    Ok(Target {
        urls: Arc::new(urls),
        store: store.context("no replica started")?,
        cancel,
        servers,
        storage,
    })
}

impl Target {
    /// Stops the apps, then drops the phase's database (Postgres) or directory.
    async fn stop(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        for server in self.servers {
            server.await??;
        }
        drop(self.store);
        if let Storage::Database { admin, name } = &self.storage {
            on_server(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await?;
        }
        Ok(())
    }
}

/// A fresh database on the admin URL's server: its URL (the admin URL's role) and name.
async fn create_database(admin: &str) -> anyhow::Result<(String, String)> {
    let name = format!(
        "intake_bench_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let mut url = reqwest::Url::parse(admin)
        .with_context(|| format!("--postgres {} is not a URL", redacted_url(admin)))?;
    url.set_path(&format!("/{name}"));
    // The name is ours (lowercase letters, digits, underscores): no quoting needed.
    on_server(admin, &format!("CREATE DATABASE {name}")).await?;
    Ok((url.to_string(), name))
}

/// Runs one statement on the admin URL's connection.
async fn on_server(admin: &str, statement: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin)
        .await
        .with_context(|| format!("connecting to {}", redacted_url(admin)))?;
    sqlx::raw_sql(statement)
        .execute(&mut conn)
        .await
        .with_context(|| format!("{statement} on {}", redacted_url(admin)))?;
    let _ = conn.close().await;
    Ok(())
}
