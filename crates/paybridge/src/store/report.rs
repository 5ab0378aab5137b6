//! The reads behind `paybridge report`: the events of a window, the payloads of the
//! payment events (failed → recovered, cancellations), actions by kind, job retries.
//! The report itself is computed above the store, from these rows.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Store, StoreError, status_from_db};
use crate::domain::EventStatus;

/// One event of a report's window: how it ended and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub kind: String,
    pub source: String,
    pub status: EventStatus,
    /// event.created, unix seconds
    pub created: i64,
    /// unix ms
    pub finished_at: Option<i64>,
    /// At least one of its steps is done.
    pub acted: bool,
}

/// One payment-related event with its raw payload (None once purged by retention).
#[derive(Debug, Clone)]
pub struct PaymentPayload {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub payload: Option<Vec<u8>>,
}

/// The event types the report reads payloads of.
pub const PAYMENT_TYPES: &[&str] = &[
    "invoice.payment_failed",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.deleted",
];

impl Store {
    /// Every event created at or after `since_secs` (received at or after `received_from_ms`,
    /// which lets the `received_at` index narrow the scan), with whether any of its steps
    /// was done.
    pub async fn report_events(
        &self,
        since_secs: i64,
        received_from_ms: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.type, e.source, e.status, e.created, e.finished_at,
                    CASE WHEN EXISTS (SELECT 1 FROM steps s WHERE s.event_id = e.id AND s.status = 'done')
                         THEN 1 ELSE 0 END AS acted
             FROM events e
             WHERE e.received_at >= $1 AND e.created >= $2",
        )
        .bind(received_from_ms)
        .bind(since_secs)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    kind: r.try_get("type")?,
                    source: r.try_get("source")?,
                    status: status_from_db(r.try_get::<&str, _>("status")?),
                    created: r.try_get("created")?,
                    finished_at: r.try_get("finished_at")?,
                    acted: r.try_get::<i64, _>("acted")? != 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// One page (by id, ascending, after `after`) of the payment events created at or
    /// after `since_secs`, payloads included.
    pub async fn report_payment_page(
        &self,
        since_secs: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<PaymentPayload>, StoreError> {
        let mut q = super::sql::Builder::new(
            "SELECT id, type, created, payload FROM events WHERE created >= ",
        );
        q.push_bind(since_secs)
            .push(" AND type IN (")
            .push_list(PAYMENT_TYPES.iter().copied())
            .push(")");
        if let Some(after) = after {
            q.push(" AND id > ").push_bind(after.to_owned());
        }
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(limit.max(1)));
        let rows = q.build().fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| {
                Ok(PaymentPayload {
                    id: r.try_get("id")?,
                    kind: r.try_get("type")?,
                    created: r.try_get("created")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Steps done (an action performed) at or after `since_ms`, by kind.
    pub async fn report_actions(&self, since_ms: i64) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM steps WHERE status = 'done' AND finished_at >= $1 GROUP BY kind",
        )
        .bind(since_ms)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("kind")?,
                    u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Attempts beyond the first, summed over the jobs (events and sequence steps) of the
    /// events created at or after `since_secs`. Rate-limit reschedules are not attempts;
    /// `events retry` starts a job's count again.
    pub async fn report_retries(
        &self,
        since_secs: i64,
        received_from_ms: i64,
    ) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(CASE WHEN j.attempts > 1 THEN j.attempts - 1 ELSE 0 END), 0) AS BIGINT)
             FROM jobs j JOIN events e ON e.id = j.event_id
             WHERE e.received_at >= $1 AND e.created >= $2",
        )
        .bind(received_from_ms)
        .bind(since_secs)
        .fetch_one(self.reader())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
