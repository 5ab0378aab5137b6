//! Intake's part of a group commit: the events waiting at that moment inserted with
//! multi-row statements (duplicates skipped by the primary key) and the jobs of the new
//! pending ones, in the writer's transaction (see `writer`).

use std::collections::HashSet;

use super::Conn;
use super::sql::Builder;

use super::lane_of;
use crate::domain::{CustomerId, EventId, EventSource, EventStatus, PayloadKind};

/// Rows per multi-row INSERT (SQLite allows 32,766 bound variables, Postgres 65,535).
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
    pub source: EventSource,
    /// Pending (a job is enqueued) or Ignored (no rule handles the type).
    pub status: EventStatus,
    pub payload: Vec<u8>,
    pub payload_kind: PayloadKind,
    /// A guest payment's email: its lane when there is no customer.
    pub guest_email: Option<String>,
}

impl NewEvent {
    /// The queue lane: the customer, else the guest's email, else the event itself.
    fn lane(&self) -> String {
        match (&self.customer, &self.guest_email) {
            (None, Some(email)) => format!("guest:{email}"),
            _ => lane_of(&self.id, self.customer.as_ref()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// Stored now (and enqueued, unless ignored).
    New,
    /// The id was already stored: nothing was written.
    Duplicate,
}

/// Inserts the events (duplicates skipped by the primary key) and the jobs of the new,
/// pending ones, on the writer's open transaction. Returns the ids that were new.
pub(super) async fn insert(
    tx: &mut Conn,
    batch: &[NewEvent],
    received_at: i64,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut new_ids = HashSet::new();
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Builder::new(
            "INSERT INTO events (id, type, created, livemode, api_version, customer, source, status, received_at, payload, payload_kind) VALUES ",
        );
        for (i, e) in chunk.iter().enumerate() {
            insert.push(if i == 0 { "(" } else { ", (" });
            insert
                .push_bind(e.id.to_string())
                .push(", ")
                .push_bind(e.kind.clone())
                .push(", ")
                .push_bind(e.created)
                .push(", ")
                .push_bind(i64::from(e.livemode))
                .push(", ")
                .push_bind(e.api_version.clone())
                .push(", ")
                .push_bind(e.customer.as_ref().map(|c| c.as_str().to_owned()))
                .push(", ")
                .push_bind(e.source.as_str())
                .push(", ")
                .push_bind(e.status.as_str())
                .push(", ")
                .push_bind(received_at)
                .push(", ")
                .push_bind(e.payload.clone())
                .push(", ")
                .push_bind(e.payload_kind.as_str())
                .push(")");
        }
        insert.push(" ON CONFLICT(id) DO NOTHING RETURNING id");
        let inserted: Vec<String> = insert.build_scalar().fetch_all(&mut *tx).await?;
        let inserted: HashSet<String> = inserted.into_iter().collect();
        let mut seen = HashSet::new();
        let jobs: Vec<&NewEvent> = chunk
            .iter()
            .filter(|e| e.status == EventStatus::Pending)
            .filter(|e| inserted.contains(e.id.as_str()) && seen.insert(e.id.as_str()))
            .collect();
        if !jobs.is_empty() {
            let mut enqueue = Builder::new(
                "INSERT INTO jobs (event_id, kind, lane, created, status, run_at) VALUES ",
            );
            for (i, e) in jobs.into_iter().enumerate() {
                enqueue.push(if i == 0 { "(" } else { ", (" });
                enqueue
                    .push_bind(e.id.to_string())
                    .push(", 'event', ")
                    .push_bind(e.lane())
                    .push(", ")
                    .push_bind(e.created)
                    .push(", 'pending', ")
                    .push_bind(received_at)
                    .push(")");
            }
            enqueue.build().execute(&mut *tx).await?;
        }
        new_ids.extend(inserted);
    }
    Ok(new_ids)
}
