//! Durable storage: events, the job queue, step results, watermarks. One set of queries
//! through sqlx's `Any` driver on two backends: SQLite (one process) and Postgres (several
//! replicas on one database, issue 16). Where their SQL differs, [`sql::Dialect`] says
//! which text runs. Knows nothing of the worker above it.
//!
//! Durability on SQLite: WAL with `synchronous = FULL`. An acknowledged webhook has been
//! fsynced to the WAL before the 200 leaves, so it survives `kill -9` *and* power loss.
//! `NORMAL` would survive `kill -9` but may lose the last commits on power loss; the group
//! commit (see `writer`) makes FULL affordable: one fsync carries every event waiting at
//! that moment. On Postgres the same writer group-commits on its own connection, and the
//! server's `synchronous_commit` (on by default) makes the commit durable before the 200.

mod admin;
mod dashboard;
mod events;
mod intake;
mod migrate;
mod queue;
mod reconcile;
mod report;
mod retention;
mod sequences;
mod sessions;
mod sql;
mod steps;
mod stripe_memory;
mod writer;

use std::sync::{Arc, Once};
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool};

use crate::domain::{Clock, CustomerId, EventId, EventStatus};

pub use admin::{RunProgress, hour_of};
pub use dashboard::{DoneEvent, FailedInvoice, HealthCounts, LogFilter, LogRow, OutcomeCount};
pub use events::{EventFilter, EventRecord, EventSummary};
pub use intake::{IntakeOutcome, NewEvent};
pub use migrate::latest as latest_migration;
pub use queue::{ClaimedJob, JobOutcome, NextStep};
pub use reconcile::{Finding, FindingKind, LastWrite, RunRow};
pub use report::{EventRow, PAYMENT_TYPES, PaymentPayload};
pub use sql::{Dialect, redacted_url};
pub use steps::{ContactMemory, StepRecord, StepStart, TimelineEntry};
pub use stripe_memory::{CachedProduct, THIN_NEEDS_KEY};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Intake is saturated; the caller should answer 503 so Stripe retries.
    #[error("the store is busy (intake queue full)")]
    Busy,
    #[error("the store is shut down")]
    Closed,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// The database could not be reached when the store was opened (exit code 2: the URL, the
/// network or the server must be fixed; the message names the URL without its password).
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to Postgres at {url}: {cause}")]
pub struct Unreachable {
    pub url: String,
    pub cause: String,
}

/// A connection of the writer's transaction (either backend).
pub(crate) type Conn = AnyConnection;

/// The handle every part of paybridge uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dialect: Dialect,
    /// One connection, owned by the writer task: every write of the process is
    /// group-committed through it (on SQLite, writers never fight over the lock).
    write: AnyPool,
    /// Concurrent readers (WAL lets them read while the writer commits).
    read: AnyPool,
    /// Postgres only: a small native pool for what is not a group-committed write (the
    /// replicas' shared HubSpot budget).
    postgres: Option<sqlx::PgPool>,
    writer: writer::Writer,
    clock: Clock,
    /// Woken when jobs are enqueued, so idle workers start at once.
    jobs: Arc<tokio::sync::Notify>,
    /// SQLite only: the background checkpoint task and its stop switch.
    checkpoints: tokio::sync::Mutex<
        Option<(
            tokio_util::sync::CancellationToken,
            tokio::task::JoinHandle<()>,
        )>,
    >,
}

/// Copies the WAL into the database file in the background (PASSIVE: never blocks the
/// writer or readers), and truncates the WAL when the store closes.
async fn checkpoints(pool: AnyPool, stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.cancelled() => break,
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
    {
        tracing::debug!(error = %e, "final checkpoint skipped");
    }
    pool.close().await;
}

/// Every SQLite connection's settings. `busy_timeout`: how long a write waits for SQLite's
/// lock before the request fails (and intake answers 503).
const WRITER_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 2000",
    "PRAGMA foreign_keys = ON",
];
const READER_PRAGMAS: &[&str] = &["PRAGMA busy_timeout = 2000"];
/// Every Postgres connection's settings: a replica cut off in the middle of a transaction
/// (its locks held, the replicas' write lock among them) is ended by the server after 30 s
/// instead of whenever TCP notices; no lock is waited for longer than 10 s (the write
/// then fails, and intake answers 503).
const POSTGRES_SETTINGS: &[&str] = &[
    "SET idle_in_transaction_session_timeout = '30s'",
    "SET lock_timeout = '10s'",
];

async fn session_settings(
    c: &mut AnyConnection,
    statements: &'static [&'static str],
) -> Result<(), sqlx::Error> {
    for statement in statements {
        sqlx::query(statement).execute(&mut *c).await?;
    }
    Ok(())
}

/// How long a Postgres query may wait for a connection: past it intake answers 503 (Stripe
/// retries) and workers back off, instead of hanging while the database is away.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections to Postgres per replica: the writer's one, `pool_size` readers (`[store]
/// pool_size`), two for the shared HubSpot budget.
pub const DEFAULT_POOL_SIZE: u32 = 8;
const PG_NATIVE: u32 = 2;

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// A SQLite URL with the open mode set (`rwc` creates the file, `ro` reads only).
fn sqlite_url(url: &str, mode: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let query: Vec<&str> = url
        .split_once('?')
        .map(|(_, q)| q.split('&').filter(|p| !p.starts_with("mode=")).collect())
        .unwrap_or_default();
    let mut out = format!("{base}?mode={mode}");
    for p in query.into_iter().filter(|p| !p.is_empty()) {
        out.push('&');
        out.push_str(p);
    }
    out
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or
    /// `postgres://…`) and runs migrations.
    pub async fn open(url: &str, clock: Clock) -> anyhow::Result<Self> {
        Self::open_with(url, clock, DEFAULT_POOL_SIZE).await
    }

    /// [`Store::open`] with `pool_size` reading connections on Postgres (`[store] pool_size`).
    pub async fn open_with(url: &str, clock: Clock, pool_size: u32) -> anyhow::Result<Self> {
        install_drivers();
        match Dialect::of_url(url) {
            Some(Dialect::Postgres) => Self::open_postgres(url, clock, pool_size.max(1)).await,
            Some(Dialect::Sqlite) => Self::open_sqlite(url, clock).await,
            None => anyhow::bail!(
                "store.url `{}` is neither sqlite://PATH nor postgres://USER@HOST/DATABASE",
                redacted_url(url)
            ),
        }
    }

    async fn open_sqlite(url: &str, clock: Clock) -> anyhow::Result<Self> {
        // A background task checkpoints often (see `checkpoints`), so the writer's own
        // automatic checkpoint rarely has anything left to do inside a webhook's commit.
        // (Measured: turning the writer's off entirely was slower and had a worse p99.)
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|c, _| Box::pin(session_settings(c, WRITER_PRAGMAS)))
            .connect(&sqlite_url(url, "rwc"))
            .await
            .with_context(|| format!("cannot open the SQLite database {url}"))?;
        migrate::run(&write, Dialect::Sqlite)
            .await
            .context("cannot migrate the database")?;
        let read = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|c, _| Box::pin(session_settings(c, READER_PRAGMAS)))
            .connect(&sqlite_url(url, "ro"))
            .await
            .with_context(|| format!("cannot open {url} for reading"))?;
        let checkpointer = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&sqlite_url(url, "rw"))
            .await
            .with_context(|| format!("cannot open {url} for checkpoints"))?;
        let stop_checkpoints = tokio_util::sync::CancellationToken::new();
        let checkpoints = tokio::spawn(checkpoints(checkpointer, stop_checkpoints.clone()));
        Ok(Self::assemble(
            Dialect::Sqlite,
            write,
            read,
            None,
            clock,
            Some((stop_checkpoints, checkpoints)),
        ))
    }

    async fn open_postgres(url: &str, clock: Clock, pool_size: u32) -> anyhow::Result<Self> {
        let shown = redacted_url(url);
        let unreachable = |e: sqlx::Error| Unreachable {
            url: shown.clone(),
            cause: e.to_string(),
        };
        let options = || {
            AnyPoolOptions::new()
                .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                .test_before_acquire(true)
                .after_connect(|c, _| Box::pin(session_settings(c, POSTGRES_SETTINGS)))
        };
        let write = options()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(unreachable)?;
        migrate::run(&write, Dialect::Postgres)
            .await
            .with_context(|| format!("cannot migrate the Postgres database at {shown}"))?;
        let read = options()
            .max_connections(pool_size)
            .connect(url)
            .await
            .map_err(unreachable)?;
        let native_options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
            .map_err(unreachable)?
            .options([
                ("idle_in_transaction_session_timeout", "30s"),
                ("lock_timeout", "10s"),
            ]);
        let native = sqlx::postgres::PgPoolOptions::new()
            .max_connections(PG_NATIVE)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_with(native_options)
            .await
            .map_err(unreachable)?;
        Ok(Self::assemble(
            Dialect::Postgres,
            write,
            read,
            Some(native),
            clock,
            None,
        ))
    }

    fn assemble(
        dialect: Dialect,
        write: AnyPool,
        read: AnyPool,
        postgres: Option<sqlx::PgPool>,
        clock: Clock,
        checkpoints: Option<(
            tokio_util::sync::CancellationToken,
            tokio::task::JoinHandle<()>,
        )>,
    ) -> Self {
        let jobs = Arc::new(tokio::sync::Notify::new());
        let writer = writer::Writer::start(write.clone(), clock.clone(), jobs.clone());
        Self {
            inner: Arc::new(Inner {
                dialect,
                write,
                read,
                postgres,
                writer,
                clock,
                jobs,
                checkpoints: tokio::sync::Mutex::new(checkpoints),
            }),
        }
    }

    /// Which database this store runs on.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// Postgres only: a native pool on the store's database (the replicas' shared HubSpot
    /// budget lives there).
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        self.inner.postgres.clone()
    }

    pub fn jobs_notify(&self) -> Arc<tokio::sync::Notify> {
        self.inner.jobs.clone()
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Stores an event and enqueues its job in one transaction (group-committed with
    /// whatever else is arriving). Returns only after the commit.
    pub async fn intake(&self, event: NewEvent) -> Result<IntakeOutcome, StoreError> {
        self.inner.writer.intake(event).await
    }

    /// Runs `f` inside the next group commit and returns its value once committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> writer::BoxFuture<'c, Result<T, sqlx::Error>>
            + Send
            + 'static,
    {
        self.inner.writer.write(f).await
    }

    /// Waits until everything accepted has been committed, then stops the writer.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        if let Some((stop, task)) = self.inner.checkpoints.lock().await.take() {
            stop.cancel();
            let _ = task.await;
        }
        self.inner.read.close().await;
        self.inner.write.close().await;
        if let Some(pool) = &self.inner.postgres {
            pool.close().await;
        }
    }

    /// `SELECT 1` on both pools: the store can read and the writer connection is alive.
    /// Bounded: a database that does not answer within two seconds is not ready.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let both = async {
            sqlx::query("SELECT 1").execute(&self.inner.read).await?;
            sqlx::query("SELECT 1").execute(&self.inner.write).await?;
            Ok::<_, sqlx::Error>(())
        };
        match tokio::time::timeout(Duration::from_secs(2), both).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Db(sqlx::Error::PoolTimedOut)),
        }
    }

    pub async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.inner.read)
            .await?)
    }

    /// Sets `key` only if absent; returns the value that is stored afterwards.
    pub async fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING",
                )
                .bind(&key)
                .bind(&value)
                .execute(&mut *c)
                .await?;
                sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(&key)
                    .fetch_one(&mut *c)
                    .await
            })
        })
        .await
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.inner.read
    }
}

/// The lane of a job: the customer, or the event itself when it has no customer.
pub fn lane_of(event: &EventId, customer: Option<&CustomerId>) -> String {
    match customer {
        Some(c) => c.to_string(),
        None => event.to_string(),
    }
}

pub(crate) fn status_from_db(s: &str) -> EventStatus {
    s.parse().unwrap_or(EventStatus::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guards the durability argument at the top of this file (issue 17): the connection
    /// every write goes through runs WAL with `synchronous = FULL` (2), not `NORMAL` (1),
    /// which could lose the last commits (and the record that a task was created) on power
    /// loss.
    #[tokio::test]
    async fn the_writer_runs_wal_with_synchronous_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("d.db").display());
        let store = Store::open(&url, Clock::system()).await.expect("open");
        let (synchronous, journal): (i64, String) = store
            .write(|c| {
                Box::pin(async move {
                    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
                        .fetch_one(&mut *c)
                        .await?;
                    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                        .fetch_one(&mut *c)
                        .await?;
                    Ok((synchronous, journal))
                })
            })
            .await
            .expect("pragmas");
        assert_eq!((synchronous, journal.as_str()), (2, "wal"));
        store.close().await;
    }

    /// Units submitted together share a group commit; one that fails is rolled back alone
    /// (its savepoint), the others commit. On both backends.
    async fn one_failing_unit_fails_alone(store: &Store) {
        let unit = |key: &'static str, fail: bool| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |c| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO meta (key, value) VALUES ($1, 'v')")
                                .bind(key)
                                .execute(&mut *c)
                                .await?;
                            if fail {
                                sqlx::query("SELECT no_such_column FROM meta")
                                    .execute(&mut *c)
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .await
            })
        };
        let (a, b, c) = (unit("a", false), unit("b", true), unit("c", false));
        assert!(a.await.expect("join").is_ok());
        assert!(b.await.expect("join").is_err(), "the bad unit fails");
        assert!(c.await.expect("join").is_ok());
        for (key, kept) in [("a", true), ("b", false), ("c", true)] {
            assert_eq!(
                store.meta_get(key).await.expect("read").is_some(),
                kept,
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn one_failing_unit_fails_alone_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("d.db").display());
        let store = Store::open(&url, Clock::system()).await.expect("open");
        one_failing_unit_fails_alone(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn one_failing_unit_fails_alone_on_postgres() {
        use sqlx::Connection as _;
        let admin = std::env::var("PAYBRIDGE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!(
            "pbu_{}_{}",
            std::process::id(),
            crate::domain::random_hex(4)
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("a Postgres answers (scripts/test provides one)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create");
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("the admin URL names a database"),
        };
        let store = Store::open(&url, Clock::system()).await.expect("open");
        one_failing_unit_fails_alone(&store).await;
        store.close().await;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .expect("drop");
    }
}
