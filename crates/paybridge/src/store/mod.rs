//! Durable storage: events, the job queue, step results, watermarks. SQLite through sqlx
//! (Postgres shares the schema's shape). Knows nothing of the worker above it.
//!
//! Durability: WAL with `synchronous = FULL`. An acknowledged webhook has been fsynced to the
//! WAL before the 200 leaves, so it survives `kill -9` *and* power loss. `NORMAL` would
//! survive `kill -9` but may lose the last commits on power loss; the group commit
//! (see `intake`) makes FULL affordable: one fsync carries every event waiting at that moment.

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
mod steps;
mod stripe_memory;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::domain::{Clock, CustomerId, EventId, EventStatus};

pub use admin::{RunProgress, hour_of};
pub use dashboard::{DoneEvent, FailedInvoice, HealthCounts, LogFilter, LogRow, OutcomeCount};
pub use events::{EventFilter, EventRecord, EventSummary};
pub use intake::{IntakeOutcome, NewEvent};
pub use queue::{ClaimedJob, JobOutcome, NextStep};
pub use reconcile::{Finding, FindingKind, LastWrite, RunRow};
pub use report::{EventRow, PAYMENT_TYPES, PaymentPayload};
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

/// The handle every part of paybridge uses. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// One connection, owned by the writer task: writers never fight over SQLite's lock.
    write: SqlitePool,
    /// Concurrent readers (WAL lets them read while the writer commits).
    read: SqlitePool,
    writer: writer::Writer,
    clock: Clock,
    /// Woken when jobs are enqueued, so idle workers start at once.
    jobs: Arc<tokio::sync::Notify>,
    /// The background checkpoint task and its stop switch.
    checkpoints: tokio::sync::Mutex<
        Option<(
            tokio_util::sync::CancellationToken,
            tokio::task::JoinHandle<()>,
        )>,
    >,
}

/// Copies the WAL into the database file in the background (PASSIVE: never blocks the
/// writer or readers), and truncates the WAL when the store closes.
async fn checkpoints(pool: SqlitePool, stop: tokio_util::sync::CancellationToken) {
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

/// How long a write waits for SQLite's lock before the request fails (and intake answers 503).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

impl Store {
    /// Opens (creating if needed) the database at `url` and runs migrations.
    pub async fn open(url: &str, clock: Clock) -> anyhow::Result<Self> {
        if url.starts_with("postgres") {
            anyhow::bail!(
                "store.url: the Postgres backend is not available in this build yet; use sqlite://PATH"
            );
        }
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("store.url `{url}` is not a SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // A background task checkpoints often (see `checkpoints`), so the writer's own
        // automatic checkpoint rarely has anything left to do inside a webhook's commit.
        // (Measured: turning the writer's off entirely was slower and had a worse p99.)
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the SQLite database {url}"))?;
        migrate::run(&write)
            .await
            .context("cannot migrate the database")?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await
            .with_context(|| format!("cannot open {url} for reading"))?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open {url} for checkpoints"))?;
        let stop_checkpoints = tokio_util::sync::CancellationToken::new();
        let checkpoints = tokio::spawn(checkpoints(checkpointer, stop_checkpoints.clone()));
        let jobs = Arc::new(tokio::sync::Notify::new());
        let writer = writer::Writer::start(write.clone(), clock.clone(), jobs.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                write,
                read,
                writer,
                clock,
                jobs,
                checkpoints: tokio::sync::Mutex::new(Some((stop_checkpoints, checkpoints))),
            }),
        })
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
        F: for<'c> FnOnce(
                &'c mut sqlx::SqliteConnection,
            ) -> writer::BoxFuture<'c, Result<T, sqlx::Error>>
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
    }

    /// `SELECT 1` on both pools: the store can read and the writer connection is alive.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.inner.read).await?;
        sqlx::query("SELECT 1").execute(&self.inner.write).await?;
        Ok(())
    }

    pub async fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?1")
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
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                )
                .bind(&key)
                .bind(&value)
                .execute(&mut *c)
                .await?;
                sqlx::query_scalar("SELECT value FROM meta WHERE key = ?1")
                    .bind(&key)
                    .fetch_one(&mut *c)
                    .await
            })
        })
        .await
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
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
}
