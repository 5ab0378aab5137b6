//! Group commit: one writer task owns intake's writes. Handlers send (event, reply) on a
//! bounded channel; the writer takes what is waiting, commits it in one transaction (one
//! fsync), then answers every reply. Nothing is answered before its commit. A full channel
//! answers `Busy` at once (the handler turns it into 503, which Stripe retries).

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{StoreError, lane_of};
use crate::domain::{Clock, CustomerId, EventId, EventStatus};

/// Events waiting for the writer beyond this answer 503.
const QUEUE_CAPACITY: usize = 8_192;
/// At most this many events per transaction.
const MAX_BATCH: usize = 1_024;
/// Rows per multi-row INSERT (SQLite allows 32,766 bound variables).
const ROWS_PER_STATEMENT: usize = 256;

/// An event ready to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub customer: Option<CustomerId>,
    /// webhook | replay | backfill
    pub source: &'static str,
    /// Pending (a job is enqueued) or Ignored (no rule handles the type).
    pub status: EventStatus,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Stored now (and enqueued, unless ignored).
    New,
    /// The id was already stored: nothing was written.
    Duplicate,
}

type Reply = oneshot::Sender<Result<IntakeOutcome, String>>;

pub(super) struct IntakeHandle {
    /// Taken on close; the writer stops once every sender is gone and the queue is empty.
    sender: std::sync::RwLock<Option<mpsc::Sender<(NewEvent, Reply)>>>,
    writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub(super) fn start(pool: SqlitePool, clock: Clock, jobs: Arc<Notify>) -> IntakeHandle {
    let (sender, rx) = mpsc::channel(QUEUE_CAPACITY);
    let task = tokio::spawn(writer(pool, clock, rx, jobs));
    IntakeHandle {
        sender: std::sync::RwLock::new(Some(sender)),
        writer: tokio::sync::Mutex::new(Some(task)),
    }
}

impl IntakeHandle {
    pub(super) async fn submit(&self, event: NewEvent) -> Result<IntakeOutcome, StoreError> {
        let sender = match self.sender.read() {
            Ok(guard) => guard.clone().ok_or(StoreError::Closed)?,
            Err(_) => return Err(StoreError::Closed),
        };
        let (reply, answer) = oneshot::channel();
        sender.try_send((event, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        })?;
        drop(sender);
        match answer.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(message)) => Err(StoreError::Db(sqlx::Error::Protocol(message))),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Stops accepting, lets the writer commit everything already submitted, waits for it.
    pub(super) async fn close(&self) {
        if let Ok(mut guard) = self.sender.write() {
            guard.take();
        }
        if let Some(task) = self.writer.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn writer(
    pool: SqlitePool,
    clock: Clock,
    mut rx: mpsc::Receiver<(NewEvent, Reply)>,
    jobs: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // `recv` returns None only when every sender is dropped and the queue is empty.
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        match commit(&pool, &batch, clock.now_ms()).await {
            Ok(new_ids) => {
                let mut claimed = HashSet::new();
                for (event, reply) in batch.drain(..) {
                    let id = event.id.as_str();
                    let outcome = if new_ids.contains(id) && claimed.insert(id.to_owned()) {
                        IntakeOutcome::New
                    } else {
                        IntakeOutcome::Duplicate
                    };
                    let _ = reply.send(Ok(outcome));
                }
                metrics::histogram!("paybridge_intake_batch_size").record(claimed.len() as f64);
                if !claimed.is_empty() {
                    metrics::counter!("paybridge_queue_pushed_total")
                        .increment(claimed.len() as u64);
                    jobs.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "intake commit failed; answering 503");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// One transaction: insert the events (duplicates skipped by the primary key) and the jobs
/// of the new, pending ones. Returns the ids that were new.
async fn commit(
    pool: &SqlitePool,
    batch: &[(NewEvent, Reply)],
    received_at: i64,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut new_ids = HashSet::new();
    if batch.is_empty() {
        return Ok(new_ids);
    }
    let mut tx = pool.begin().await?;
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO events (id, type, created, livemode, api_version, customer, source, status, received_at, payload) ",
        );
        insert.push_values(chunk, |mut row, (e, _)| {
            row.push_bind(e.id.as_str())
                .push_bind(&e.kind)
                .push_bind(e.created)
                .push_bind(e.livemode)
                .push_bind(e.api_version.as_deref())
                .push_bind(e.customer.as_ref().map(CustomerId::as_str))
                .push_bind(e.source)
                .push_bind(e.status.as_str())
                .push_bind(received_at)
                .push_bind(&e.payload);
        });
        insert.push(" ON CONFLICT(id) DO NOTHING RETURNING id");
        let inserted: Vec<String> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        let mut seen = HashSet::new();
        let jobs: Vec<&NewEvent> = chunk
            .iter()
            .map(|(e, _)| e)
            .filter(|e| e.status == EventStatus::Pending)
            .filter(|e| inserted.contains(e.id.as_str()) && seen.insert(e.id.as_str()))
            .collect();
        if !jobs.is_empty() {
            let mut enqueue: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO jobs (event_id, kind, lane, created, status, run_at) ",
            );
            enqueue.push_values(jobs, |mut row, e| {
                row.push_bind(e.id.as_str())
                    .push_bind("event")
                    .push_bind(lane_of(&e.id, e.customer.as_ref()))
                    .push_bind(e.created)
                    .push_bind("pending")
                    .push_bind(received_at);
            });
            enqueue.build().execute(&mut *tx).await?;
        }
        new_ids.extend(inserted);
    }
    tx.commit().await?;
    Ok(new_ids)
}
