//! What the worker records as it goes: steps (exactly-once effects), watermarks (the stale
//! guard), the customer → contact map, the charge ledger, and the event's timeline.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::Conn;
use super::sql::Builder;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    pub key: String,
    pub rule: String,
    pub action_index: i64,
    pub kind: String,
    pub status: String,
    pub detail: Option<serde_json::Value>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub at: i64,
    pub attempt: i64,
    pub message: String,
}

/// A new step about to run.
pub struct StepStart<'a> {
    pub key: &'a str,
    pub event_id: &'a str,
    pub rule: &'a str,
    pub action_index: i64,
    pub kind: &'a str,
    pub detail: &'a serde_json::Value,
}

fn json_column(
    row: &sqlx::any::AnyRow,
    name: &str,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let text: Option<String> = row.try_get(name)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// A step's identity and detail, owned (units of work outlive the caller's borrows).
struct OwnedStep {
    key: String,
    event_id: String,
    rule: String,
    action_index: i64,
    kind: String,
    detail: String,
}

impl StepStart<'_> {
    fn owned(&self) -> OwnedStep {
        OwnedStep {
            key: self.key.to_owned(),
            event_id: self.event_id.to_owned(),
            rule: self.rule.to_owned(),
            action_index: self.action_index,
            kind: self.kind.to_owned(),
            detail: self.detail.to_string(),
        }
    }
}

/// Inserts or finishes a step row on an open transaction.
async fn upsert_step(
    c: &mut Conn,
    s: &OwnedStep,
    status: &str,
    result: Option<String>,
    error: Option<String>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO steps (key, event_id, rule, action_index, kind, status, detail, result, error, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         ON CONFLICT(key) DO UPDATE SET status = excluded.status, detail = excluded.detail,
             result = excluded.result, error = excluded.error, finished_at = excluded.finished_at",
    )
    .bind(&s.key)
    .bind(&s.event_id)
    .bind(&s.rule)
    .bind(s.action_index)
    .bind(&s.kind)
    .bind(status)
    .bind(&s.detail)
    .bind(result)
    .bind(error)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

impl Store {
    pub async fn step(&self, key: &str) -> Result<Option<StepRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT key, rule, action_index, kind, status, detail, result, error, started_at, finished_at
             FROM steps WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| step_from_row(&r))
            .transpose()
            .map_err(StoreError::from)
    }

    pub async fn steps_of(&self, event_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, rule, action_index, kind, status, detail, result, error, started_at, finished_at
             FROM steps WHERE event_id = $1 ORDER BY started_at, rule, action_index",
        )
        .bind(event_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(step_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// Records (durably) that a step starts, before its effect. Keeps a finished row as is.
    pub async fn step_started(&self, s: StepStart<'_>) -> Result<(), StoreError> {
        let s = s.owned();
        let now = self.clock().now_ms();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO steps (key, event_id, rule, action_index, kind, status, detail, started_at)
                     VALUES ($1, $2, $3, $4, $5, 'started', $6, $7)
                     ON CONFLICT(key) DO UPDATE SET detail = excluded.detail
                     WHERE steps.status IN ('started', 'failed')",
                )
                .bind(&s.key)
                .bind(&s.event_id)
                .bind(&s.rule)
                .bind(s.action_index)
                .bind(&s.kind)
                .bind(&s.detail)
                .bind(now)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Records a step's end: `done`, `skipped`, `failed` or `planned` (shadow mode).
    pub async fn step_finished(
        &self,
        s: StepStart<'_>,
        status: &str,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let s = s.owned();
        let status = status.to_owned();
        let result = result.map(|r| r.to_string());
        let error = error.map(str::to_owned);
        let now = self.clock().now_ms();
        self.write(move |c| {
            Box::pin(async move { upsert_step(c, &s, &status, result, error, now).await })
        })
        .await
    }

    /// The stale guard's memory for a contact: property → created of its last write.
    pub async fn watermarks(&self, contact_id: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT property, created FROM watermarks WHERE contact_id = $1")
            .bind(contact_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("property")?, r.try_get("created")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// After a property write: raise the watermarks and mark the step done, together.
    pub async fn record_property_write(
        &self,
        contact_id: &str,
        written: &[String],
        created: i64,
        step: StepStart<'_>,
        result: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let step = step.owned();
        let (contact_id, written, result) =
            (contact_id.to_owned(), written.to_vec(), result.to_string());
        let now = self.clock().now_ms();
        self.write(move |c| {
            Box::pin(async move {
                for property in &written {
                    sqlx::query(
                        "INSERT INTO watermarks (contact_id, property, created, event_id) VALUES ($1, $2, $3, $4)
                         ON CONFLICT(contact_id, property) DO UPDATE SET created = excluded.created, event_id = excluded.event_id
                         WHERE excluded.created >= watermarks.created",
                    )
                    .bind(&contact_id)
                    .bind(property)
                    .bind(created)
                    .bind(&step.event_id)
                    .execute(&mut *c)
                    .await?;
                }
                upsert_step(c, &step, "done", Some(result), None, now).await
            })
        })
        .await
    }

    /// The customer's contact id and email, as remembered.
    pub async fn contact_for(
        &self,
        customer: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(self
            .contact_memory(customer)
            .await?
            .map(|m| (m.contact_id, m.email)))
    }

    /// What is remembered of the customer's contact, and when it was last remembered.
    pub async fn contact_memory(
        &self,
        customer: &str,
    ) -> Result<Option<ContactMemory>, StoreError> {
        let row =
            sqlx::query("SELECT contact_id, email, updated_at FROM contacts WHERE customer = $1")
                .bind(customer)
                .fetch_optional(self.reader())
                .await?;
        row.map(|r| {
            Ok(ContactMemory {
                contact_id: r.try_get("contact_id")?,
                email: r.try_get("email")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    pub async fn remember_contact(
        &self,
        customer: &str,
        contact_id: &str,
        email: Option<&str>,
    ) -> Result<(), StoreError> {
        let (customer, contact_id, email) = (
            customer.to_owned(),
            contact_id.to_owned(),
            email.map(str::to_owned),
        );
        let now = self.clock().now_ms();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO contacts (customer, contact_id, email, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT(customer) DO UPDATE SET contact_id = excluded.contact_id,
                         email = COALESCE(excluded.email, contacts.email), updated_at = excluded.updated_at",
                )
                .bind(&customer)
                .bind(&contact_id)
                .bind(&email)
                .bind(now)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The contact was deleted or merged in HubSpot: resolve again next time.
    pub async fn forget_contact(&self, customer: &str) -> Result<(), StoreError> {
        let customer = customer.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query("DELETE FROM contacts WHERE customer = $1")
                    .bind(&customer)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn log_timeline(
        &self,
        event_id: &str,
        attempt: i64,
        lines: &[(i64, String)],
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let (event_id, lines) = (event_id.to_owned(), lines.to_vec());
        self.write(move |c| {
            Box::pin(async move {
                let mut q =
                    Builder::new("INSERT INTO timeline (event_id, at, attempt, message) VALUES ");
                for (i, (at, message)) in lines.iter().enumerate() {
                    q.push(if i == 0 { "(" } else { ", (" })
                        .push_bind(event_id.clone())
                        .push(", ")
                        .push_bind(*at)
                        .push(", ")
                        .push_bind(attempt)
                        .push(", ")
                        .push_bind(message.clone())
                        .push(")");
                }
                q.build().execute(&mut *c).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn timeline(&self, event_id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, attempt, message FROM timeline WHERE event_id = $1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineEntry {
                    at: r.try_get("at")?,
                    attempt: r.try_get("attempt")?,
                    message: r.try_get("message")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

fn step_from_row(r: &sqlx::any::AnyRow) -> Result<StepRecord, sqlx::Error> {
    Ok(StepRecord {
        key: r.try_get("key")?,
        rule: r.try_get("rule")?,
        action_index: r.try_get("action_index")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        detail: json_column(r, "detail")?,
        result: json_column(r, "result")?,
        error: r.try_get("error")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// A customer's contact as remembered: its id, its email, when (unix ms).
#[derive(Debug, Clone)]
pub struct ContactMemory {
    pub contact_id: String,
    pub email: Option<String>,
    pub updated_at: i64,
}
