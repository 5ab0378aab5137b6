//! Reading the event log: listing with filters and paging, one event with its payload.

use serde::Serialize;
use sqlx::{Row, any::AnyRow};

use super::sql::Builder;

use super::{Store, StoreError, status_from_db};
use crate::domain::{EventId, EventStatus, PayloadKind};

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub status: Option<EventStatus>,
    pub kind: Option<String>,
    pub customer: Option<String>,
    /// Newest first; `after` is the id of the last event of the previous page.
    pub after: Option<String>,
    pub limit: u32,
}

/// One line of the event log.
#[derive(Debug, Clone, Serialize)]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: EventStatus,
    pub customer: Option<String>,
    /// event.created, unix seconds
    pub created: i64,
    /// unix milliseconds
    pub received_at: i64,
    pub finished_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub contact_id: Option<String>,
    pub source: String,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// `snapshot` or `thin` (the object was fetched from Stripe's API).
    pub payload_kind: PayloadKind,
}

/// One event with its raw payload (None once purged by retention).
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub summary: EventSummary,
    pub payload: Option<Vec<u8>>,
}

const SUMMARY_COLUMNS: &str = "id, type, status, customer, created, received_at, finished_at, \
     attempts, last_error, contact_id, source, livemode, api_version, payload_kind";

fn summary(row: &AnyRow) -> Result<EventSummary, sqlx::Error> {
    Ok(EventSummary {
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        status: status_from_db(row.try_get::<&str, _>("status")?),
        customer: row.try_get("customer")?,
        created: row.try_get("created")?,
        received_at: row.try_get("received_at")?,
        finished_at: row.try_get("finished_at")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        contact_id: row.try_get("contact_id")?,
        source: row.try_get("source")?,
        livemode: row.try_get::<i64, _>("livemode")? != 0,
        api_version: row.try_get("api_version")?,
        payload_kind: PayloadKind::from_db(row.try_get::<&str, _>("payload_kind")?),
    })
}

impl Store {
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventSummary>, StoreError> {
        let mut q = Builder::new(format!("SELECT {SUMMARY_COLUMNS} FROM events WHERE 1 = 1"));
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &filter.kind {
            q.push(" AND type = ").push_bind(kind.clone());
        }
        if let Some(customer) = &filter.customer {
            q.push(" AND customer = ").push_bind(customer.clone());
        }
        if let Some(after) = &filter.after {
            // Keyset paging on (received_at, id), newest first.
            q.push(" AND (received_at, id) < (SELECT received_at, id FROM events WHERE id = ")
                .push_bind(after.clone())
                .push(")");
        }
        q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit.clamp(1, 10_000)));
        let rows = q.build().fetch_all(self.reader()).await?;
        Ok(rows.iter().map(summary).collect::<Result<_, _>>()?)
    }

    pub async fn get_event(&self, id: &EventId) -> Result<Option<EventRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS}, payload FROM events WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.reader())
        .await?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(EventRecord {
                summary: summary(&row)?,
                payload: row.try_get("payload")?,
            })),
        }
    }

    pub async fn get_event_summary(&self, id: &str) -> Result<Option<EventSummary>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|r| summary(&r)).transpose()?)
    }

    pub async fn count_events(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(self.reader())
            .await?)
    }

    /// Jobs waiting or running (the queue depth).
    pub async fn queue_depth(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'retrying', 'running')",
        )
        .fetch_one(self.reader())
        .await?)
    }
}
