//! What the dashboard reads: the health strip's counts, the charts' series, the event log
//! with an email filter, one customer's email. Read pool only; every query is bounded by an
//! indexed time range or a status.

use serde::Serialize;
use sqlx::Row;

use super::sql::Builder;

use super::{Store, StoreError, status_from_db};
use crate::domain::EventStatus;

/// The numbers behind the health strip (times in unix ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HealthCounts {
    /// Events received since the `since` given.
    pub received: i64,
    /// Jobs waiting or running now: every event job, and sequence steps already due.
    pub queue_depth: i64,
    /// Sequence steps scheduled for later (not part of the depth).
    pub scheduled: i64,
    /// `received_at` of the oldest event still pending or retrying.
    pub oldest_waiting: Option<i64>,
    pub dead: i64,
    pub needs_attention: i64,
}

/// One bucket of the events-by-outcome chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeCount {
    /// Index of the bucket, counted from `since`.
    pub bucket: i64,
    pub status: EventStatus,
    pub count: i64,
}

/// One done event: when it finished, and how long after the payment (event.created).
/// Summaries of many are `domain::Latency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneEvent {
    pub finished_at: i64,
    pub ms: i64,
}

/// One invoice that failed at least once: when it first failed and, if it was paid after
/// that, when (event.created, unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedInvoice {
    pub invoice: String,
    pub failed_at: i64,
    pub recovered_at: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub status: Option<EventStatus>,
    pub kind: Option<String>,
    pub customer: Option<String>,
    /// The customer's email (case-insensitive), as remembered from customer events or
    /// contact resolution.
    pub email: Option<String>,
    /// Newest first; the id of the last event of the previous page.
    pub after: Option<String>,
    pub limit: u32,
}

/// One line of the dashboard's event log.
#[derive(Debug, Clone, Serialize)]
pub struct LogRow {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: EventStatus,
    pub customer: Option<String>,
    pub email: Option<String>,
    pub created: i64,
    pub received_at: i64,
    pub finished_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// The health strip's counts at `now` (ms), with `received` counted from `since` (ms).
    pub async fn health_counts(&self, since: i64, now: i64) -> Result<HealthCounts, StoreError> {
        let row = sqlx::query(
            "SELECT
                (SELECT COUNT(*) FROM events WHERE received_at >= $1) AS received,
                (SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'retrying', 'running')
                    AND (kind = 'event' OR run_at <= $2)) AS depth,
                (SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'retrying')
                    AND kind <> 'event' AND run_at > $2) AS scheduled,
                (SELECT MIN(received_at) FROM events WHERE status IN ('pending', 'retrying')) AS oldest,
                (SELECT COUNT(*) FROM events WHERE status = 'dead') AS dead,
                (SELECT COUNT(*) FROM events WHERE status = 'needs_attention') AS attention",
        )
        .bind(since)
        .bind(now)
        .fetch_one(self.reader())
        .await?;
        Ok(HealthCounts {
            received: row.try_get("received")?,
            queue_depth: row.try_get("depth")?,
            scheduled: row.try_get("scheduled")?,
            oldest_waiting: row.try_get("oldest")?,
            dead: row.try_get("dead")?,
            needs_attention: row.try_get("attention")?,
        })
    }

    /// Events received since `since` (ms) by bucket of `bucket_ms` and current status.
    pub async fn outcomes_by_bucket(
        &self,
        since: i64,
        bucket_ms: i64,
    ) -> Result<Vec<OutcomeCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT (received_at - $1) / $2 AS bucket, status, COUNT(*) AS n
             FROM events WHERE received_at >= $1 GROUP BY bucket, status",
        )
        .bind(since)
        .bind(bucket_ms.max(1))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutcomeCount {
                    bucket: r.try_get("bucket")?,
                    status: status_from_db(r.try_get::<&str, _>("status")?),
                    count: r.try_get("n")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Payment → CRM times of the webhook events done since `since` (ms): from the
    /// event's `created` (when Stripe saw it happen) to `finished_at`. Replayed and
    /// backfilled events are left out (their `created` is when they happened, not when
    /// paybridge could act).
    pub async fn latencies_since(&self, since: i64) -> Result<Vec<DoneEvent>, StoreError> {
        // The received_at bound (a week before) keeps the scan on the index.
        let rows = sqlx::query(
            "SELECT finished_at, finished_at - created * 1000 AS ms FROM events
             WHERE received_at >= $2 AND status = 'done' AND source = 'webhook'
               AND finished_at >= $1
             ORDER BY finished_at",
        )
        .bind(since)
        .bind(since - 7 * 86_400_000)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DoneEvent {
                    finished_at: r.try_get("finished_at")?,
                    ms: r.try_get::<i64, _>("ms")?.max(0),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Invoices whose payment failed (first `invoice.payment_failed` received since
    /// `since`, ms) and, for each, the first `invoice.paid`/`invoice.payment_succeeded` of
    /// the same invoice at or after the failure. The invoice id is read from the payload;
    /// once a payload is purged by retention its event counts as an invoice of its own.
    pub async fn failed_invoices_since(
        &self,
        since: i64,
    ) -> Result<Vec<FailedInvoice>, StoreError> {
        // The payload's `data.object.id`: SQLite's JSON functions, Postgres's jsonb (every
        // stored payload was parsed as JSON at intake).
        let invoice = self.dialect().pick(
            "CASE WHEN payload IS NOT NULL AND json_valid(CAST(payload AS TEXT))
                  THEN json_extract(CAST(payload AS TEXT), '$.data.object.id') END",
            "CASE WHEN payload IS NOT NULL
                  THEN convert_from(payload, 'UTF8')::jsonb #>> '{data,object,id}' END",
        );
        let sql = format!(
            "WITH inv AS (
                SELECT type, created, COALESCE({invoice}, id) AS invoice
                FROM events
                WHERE received_at >= $1
                  AND type IN ('invoice.payment_failed', 'invoice.paid', 'invoice.payment_succeeded')
             ),
             failed AS (
                SELECT invoice, MIN(created) AS failed_at FROM inv
                WHERE type = 'invoice.payment_failed' GROUP BY invoice
             )
             SELECT f.invoice AS invoice, f.failed_at AS failed_at,
                    (SELECT MIN(p.created) FROM inv p
                     WHERE p.invoice = f.invoice AND p.type <> 'invoice.payment_failed'
                       AND p.created >= f.failed_at) AS recovered_at
             FROM failed f ORDER BY f.failed_at"
        );
        let rows = sqlx::query(&sql)
            .bind(since)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FailedInvoice {
                    invoice: r.try_get("invoice")?,
                    failed_at: r.try_get("failed_at")?,
                    recovered_at: r.try_get("recovered_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The event log, newest first, with the customer's email when known. Asks for one
    /// more row than `limit` so the caller can tell whether an older page exists.
    pub async fn event_log(&self, filter: &LogFilter) -> Result<Vec<LogRow>, StoreError> {
        let mut q = Builder::new(
            "SELECT e.id, e.type, e.status, e.customer, COALESCE(cu.email, co.email) AS email,
                    e.created, e.received_at, e.finished_at, e.attempts, e.last_error
             FROM events e
             LEFT JOIN customers cu ON cu.customer = e.customer
             LEFT JOIN contacts co ON co.customer = e.customer
             WHERE 1 = 1",
        );
        if let Some(status) = filter.status {
            q.push(" AND e.status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &filter.kind {
            q.push(" AND e.type = ").push_bind(kind.clone());
        }
        if let Some(customer) = &filter.customer {
            q.push(" AND e.customer = ").push_bind(customer.clone());
        }
        if let Some(email) = &filter.email {
            // Emails match without regard to case (SQLite's NOCASE, Postgres's lower()).
            let (open, close) = self.dialect().pick_pair(
                ("email = ", " COLLATE NOCASE"),
                ("lower(email) = lower(", ")"),
            );
            q.push(" AND e.customer IN (SELECT customer FROM customers WHERE ")
                .push(open)
                .push_bind(email.clone())
                .push(close)
                .push(" UNION SELECT customer FROM contacts WHERE ")
                .push(open)
                .push_bind(email.clone())
                .push(close)
                .push(")");
        }
        if let Some(after) = &filter.after {
            q.push(" AND (e.received_at, e.id) < (SELECT received_at, id FROM events WHERE id = ")
                .push_bind(after.clone())
                .push(")");
        }
        q.push(" ORDER BY e.received_at DESC, e.id DESC LIMIT ")
            .push_bind(i64::from(filter.limit.clamp(1, 1_000)) + 1);
        let rows = q.build().fetch_all(self.reader()).await?;
        rows.iter()
            .map(|r| {
                Ok(LogRow {
                    id: r.try_get("id")?,
                    kind: r.try_get("type")?,
                    status: status_from_db(r.try_get::<&str, _>("status")?),
                    customer: r.try_get("customer")?,
                    email: r.try_get("email")?,
                    created: r.try_get("created")?,
                    received_at: r.try_get("received_at")?,
                    finished_at: r.try_get("finished_at")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The event types received since `since` (ms), for the log's type filter.
    pub async fn event_types_since(&self, since: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT type FROM events WHERE received_at >= $1 ORDER BY type LIMIT 200",
        )
        .bind(since)
        .fetch_all(self.reader())
        .await?)
    }

    /// The email paybridge knows for a Stripe customer (customer events first, then the
    /// contact it resolved).
    pub async fn customer_email(&self, customer: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE((SELECT email FROM customers WHERE customer = $1),
                             (SELECT email FROM contacts WHERE customer = $1))",
        )
        .bind(customer)
        .fetch_one(self.reader())
        .await?)
    }
}
