//! One writer task owns the store's write connection (SQLite's, or one to Postgres per
//! replica); every write of the process goes through it (DESIGN: group commit). It takes everything waiting — webhooks to store, and units of
//! work from the workers (a step's start, a property write, a job's outcome…) — runs them
//! in ONE transaction, each unit inside its own SAVEPOINT so one failing unit fails alone,
//! commits (one fsync for all), then answers every caller. Nothing is answered before its
//! commit, so what a caller was told is durable. Intake has its own bounded queue: when it
//! is full, a webhook is answered 503 at once and Stripe retries; workers wait instead.
//! On Postgres the replicas' writers take turns (see `commit`).

use std::any::Any;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use sqlx::AnyPool;

use super::Conn;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

use super::StoreError;
use super::intake::{IntakeOutcome, NewEvent, insert};
use crate::domain::Clock;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Output = Box<dyn Any + Send>;
type Unit =
    Box<dyn for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Result<Output, sqlx::Error>> + Send>;

/// An arbitrary, fixed key for the replicas' write lock (Postgres).
const WRITE_LOCK: i64 = 0x7062_7772_6974_6500;

/// Webhooks waiting for the writer beyond this are answered 503.
const INTAKE_CAPACITY: usize = 8_192;
const UNIT_CAPACITY: usize = 8_192;
/// At most this many requests per transaction.
const MAX_BATCH: usize = 1_024;

type IntakeReply = oneshot::Sender<Result<IntakeOutcome, String>>;
type UnitReply = oneshot::Sender<Result<Output, String>>;

struct Senders {
    intake: mpsc::Sender<(NewEvent, IntakeReply)>,
    units: mpsc::Sender<(Unit, UnitReply)>,
}

pub(super) struct Writer {
    /// Taken on close; the task stops once every sender is gone and the queues are empty.
    senders: RwLock<Option<Senders>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Writer {
    pub(super) fn start(pool: AnyPool, clock: Clock, jobs: Arc<Notify>) -> Self {
        let (intake, intake_rx) = mpsc::channel(INTAKE_CAPACITY);
        let (units, units_rx) = mpsc::channel(UNIT_CAPACITY);
        let task = tokio::spawn(run(pool, clock, jobs, intake_rx, units_rx));
        Self {
            senders: RwLock::new(Some(Senders { intake, units })),
            task: Mutex::new(Some(task)),
        }
    }

    pub(super) async fn intake(&self, event: NewEvent) -> Result<IntakeOutcome, StoreError> {
        let sender = match self.senders.read() {
            Ok(s) => s
                .as_ref()
                .map(|s| s.intake.clone())
                .ok_or(StoreError::Closed)?,
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

    /// Runs `f` in the next group commit; returns its value once committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send + 'static,
    {
        let unit: Unit = Box::new(move |conn: &mut Conn| {
            let fut = f(conn);
            Box::pin(async move { fut.await.map(|t| Box::new(t) as Output) })
        });
        let sender = match self.senders.read() {
            Ok(s) => s
                .as_ref()
                .map(|s| s.units.clone())
                .ok_or(StoreError::Closed)?,
            Err(_) => return Err(StoreError::Closed),
        };
        let (reply, answer) = oneshot::channel();
        sender
            .send((unit, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        drop(sender);
        match answer.await {
            Ok(Ok(output)) => output.downcast::<T>().map(|t| *t).map_err(|_| {
                StoreError::Db(sqlx::Error::Protocol(
                    "writer returned an unexpected type".into(),
                ))
            }),
            Ok(Err(message)) => Err(StoreError::Db(sqlx::Error::Protocol(message))),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Stops accepting, commits everything already accepted, waits for the task.
    pub(super) async fn close(&self) {
        if let Ok(mut s) = self.senders.write() {
            s.take();
        }
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn run(
    pool: AnyPool,
    clock: Clock,
    jobs: Arc<Notify>,
    mut intake_rx: mpsc::Receiver<(NewEvent, IntakeReply)>,
    mut units_rx: mpsc::Receiver<(Unit, UnitReply)>,
) {
    let mut events: Vec<(NewEvent, IntakeReply)> = Vec::new();
    let mut units: Vec<(Unit, UnitReply)> = Vec::new();
    let (mut intake_open, mut units_open) = (true, true);
    while intake_open || units_open {
        // Wait for the first request, from either queue.
        tokio::select! {
            item = intake_rx.recv(), if intake_open => match item {
                Some(item) => events.push(item),
                None => intake_open = false,
            },
            item = units_rx.recv(), if units_open => match item {
                Some(item) => units.push(item),
                None => units_open = false,
            },
        }
        // Then take whatever else is already waiting.
        while events.len() + units.len() < MAX_BATCH {
            if let Ok(item) = intake_rx.try_recv() {
                events.push(item);
                continue;
            }
            match units_rx.try_recv() {
                Ok(item) => units.push(item),
                Err(_) => break,
            }
        }
        if events.is_empty() && units.is_empty() {
            continue;
        }
        commit(&pool, &clock, &jobs, &mut events, &mut units).await;
    }
}

async fn commit(
    pool: &AnyPool,
    clock: &Clock,
    jobs: &Notify,
    events: &mut Vec<(NewEvent, IntakeReply)>,
    units: &mut Vec<(Unit, UnitReply)>,
) {
    let batch: Vec<NewEvent> = events.iter().map(|(e, _)| e.clone()).collect();
    let outcome = async {
        let mut tx = pool.begin().await?;
        if super::Dialect::of(&tx) == super::Dialect::Postgres {
            // Replicas write one group commit at a time (a lock held to this commit): no two
            // replicas' transactions ever wait on each other's rows, so they cannot deadlock
            // whatever mix of units they carry (shared rows: counters, products, leases,
            // meta), and a claim always sees every lease committed before it. Under READ
            // COMMITTED each statement then reads the newest commits. One group commit
            // takes a few milliseconds and carries everything waiting, so replicas queue
            // briefly rather than fight.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(WRITE_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let new_ids = if batch.is_empty() {
            HashSet::new()
        } else {
            insert(&mut tx, &batch, clock.now_ms()).await?
        };
        let mut results = Vec::with_capacity(units.len());
        // Each unit runs in its own savepoint. Ending one and opening the next is a single
        // round trip (on Postgres every statement is one; SQLite runs them in-process).
        let count = units.len();
        if count > 0 {
            sqlx::Executor::execute(&mut *tx, "SAVEPOINT unit").await?;
        }
        for (i, (unit, _)) in units
            .iter_mut()
            .map(|(u, r)| (std::mem::replace(u, noop()), r))
            .enumerate()
        {
            let last = i + 1 == count;
            let end = match unit(&mut tx).await {
                Ok(output) => {
                    results.push(Ok(output));
                    if last {
                        "RELEASE unit"
                    } else {
                        "RELEASE unit; SAVEPOINT unit"
                    }
                }
                Err(e) => {
                    results.push(Err(e.to_string()));
                    if last {
                        "ROLLBACK TO unit; RELEASE unit"
                    } else {
                        "ROLLBACK TO unit; RELEASE unit; SAVEPOINT unit"
                    }
                }
            };
            // A query without arguments: one simple-protocol round trip on Postgres, however
            // many statements it holds.
            sqlx::Executor::execute(&mut *tx, end).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>((new_ids, results))
    }
    .await;
    let size = events.len() + units.len();
    match outcome {
        Ok((new_ids, results)) => {
            let mut claimed = HashSet::new();
            for (event, reply) in events.drain(..) {
                let id = event.id.as_str();
                let outcome = if new_ids.contains(id) && claimed.insert(id.to_owned()) {
                    IntakeOutcome::New
                } else {
                    IntakeOutcome::Duplicate
                };
                let _ = reply.send(Ok(outcome));
            }
            for ((_, reply), result) in units.drain(..).zip(results) {
                let _ = reply.send(result);
            }
            metrics::histogram!("paybridge_store_commit_size").record(size as f64);
            if !claimed.is_empty() {
                metrics::counter!("paybridge_queue_pushed_total").increment(claimed.len() as u64);
                jobs.notify_one();
            }
        }
        Err(e) => {
            tracing::error!(error = %e, events = events.len(), units = units.len(), "commit failed; intake answers 503");
            let message = e.to_string();
            for (_, reply) in events.drain(..) {
                let _ = reply.send(Err(message.clone()));
            }
            for (_, reply) in units.drain(..) {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}

/// A placeholder left where a unit was taken out to run.
fn noop() -> Unit {
    Box::new(|_conn: &mut Conn| Box::pin(async { Ok(Box::new(()) as Output) }))
}
