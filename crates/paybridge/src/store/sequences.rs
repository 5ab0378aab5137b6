//! Sequences (delayed steps such as dunning) live in the queue: each pending step is a job
//! of kind `sequence_step` in the customer's lane, due at its `run_at`. Starting one
//! enqueues its first step; cancelling marks the pending steps `cancelled`. Customer
//! profiles (email, name, metadata) are kept here too.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{StepStart, Store, StoreError};
use crate::domain::CustomerProfile;

impl Store {
    /// Starts `sequence` for a lane unless one is already running there; records the
    /// start step as done in the same transaction. Returns whether it started.
    pub async fn start_sequence(
        &self,
        step: StepStart<'_>,
        lane: &str,
        sequence: &str,
        first_run_at: i64,
    ) -> Result<bool, StoreError> {
        let now = self.clock().now_ms();
        let (key, event_id, rule, action_index, kind, detail) = (
            step.key.to_owned(),
            step.event_id.to_owned(),
            step.rule.to_owned(),
            step.action_index,
            step.kind.to_owned(),
            step.detail.to_string(),
        );
        let (lane, sequence) = (lane.to_owned(), sequence.to_owned());
        let started = self
            .write(move |c| {
                Box::pin(async move {
                    let running: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM jobs WHERE lane = $1 AND kind = 'sequence_step' AND sequence = $2
                           AND status IN ('pending', 'retrying', 'running')",
                    )
                    .bind(&lane)
                    .bind(&sequence)
                    .fetch_one(&mut *c)
                    .await?;
                    let started = running == 0;
                    if started {
                        sqlx::query(
                            "INSERT INTO jobs (event_id, kind, lane, created, status, run_at, sequence, step_index)
                             VALUES ($1, 'sequence_step', $2, $3, 'pending', $4, $5, 0)",
                        )
                        .bind(&event_id)
                        .bind(&lane)
                        .bind(first_run_at.div_euclid(1000))
                        .bind(first_run_at)
                        .bind(&sequence)
                        .execute(&mut *c)
                        .await?;
                    }
                    let result = serde_json::json!({ "started": started, "first_step_at": first_run_at });
                    sqlx::query(
                        "INSERT INTO steps (key, event_id, rule, action_index, kind, status, detail, result, started_at, finished_at)
                         VALUES ($1, $2, $3, $4, $5, 'done', $6, $7, $8, $8)
                         ON CONFLICT(key) DO UPDATE SET status = 'done', result = excluded.result, finished_at = excluded.finished_at",
                    )
                    .bind(&key)
                    .bind(&event_id)
                    .bind(&rule)
                    .bind(action_index)
                    .bind(&kind)
                    .bind(&detail)
                    .bind(result.to_string())
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                    Ok(started)
                })
            })
            .await?;
        if started {
            self.jobs_notify().notify_one();
        }
        Ok(started)
    }

    /// Cancels the pending steps of these sequences in a lane, of those started by an event
    /// created no later than `created_by` (unix seconds; an older event delivered late does
    /// not cancel what a newer one started); returns how many.
    pub async fn cancel_sequences(
        &self,
        lane: &str,
        sequences: &[&str],
        reason: &str,
        created_by: i64,
    ) -> Result<u64, StoreError> {
        let (lane, reason) = (lane.to_owned(), reason.to_owned());
        let sequences: Vec<String> = sequences.iter().map(|s| (*s).to_owned()).collect();
        self.write(move |c| {
            Box::pin(async move {
                let mut cancelled = 0;
                for sequence in &sequences {
                    cancelled += sqlx::query(
                        "UPDATE jobs SET status = 'cancelled', last_error = $1
                         WHERE lane = $2 AND kind = 'sequence_step' AND sequence = $3 AND status IN ('pending', 'retrying')
                           AND COALESCE((SELECT e.created FROM events e WHERE e.id = jobs.event_id), 0) <= $4",
                    )
                    .bind(&reason)
                    .bind(&lane)
                    .bind(sequence)
                    .bind(created_by)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                }
                Ok(cancelled)
            })
        })
        .await
    }

    /// Types of the customer's events created after `created` that were already applied.
    pub async fn applied_event_types_after(
        &self,
        customer: &str,
        created: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT type FROM events WHERE customer = $1 AND created > $2 AND status = 'done'",
        )
        .bind(customer)
        .bind(created)
        .fetch_all(self.reader())
        .await?)
    }

    /// The steps of a sequence for a lane: (step index, status, run_at), oldest first.
    pub async fn sequence_jobs(
        &self,
        lane: &str,
        sequence: &str,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT step_index, status, run_at FROM jobs WHERE lane = $1 AND kind = 'sequence_step' AND sequence = $2 ORDER BY id",
        )
        .bind(lane)
        .bind(sequence)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("step_index")?,
                    r.try_get("status")?,
                    r.try_get("run_at")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn customer_profile(
        &self,
        customer: &str,
    ) -> Result<Option<CustomerProfile>, StoreError> {
        let row = sqlx::query("SELECT email, name, metadata FROM customers WHERE customer = $1")
            .bind(customer)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| {
            let metadata: String = r.try_get("metadata")?;
            Ok(CustomerProfile {
                id: Some(customer.to_owned()),
                email: r.try_get("email")?,
                name: r.try_get("name")?,
                metadata: serde_json::from_str::<BTreeMap<String, String>>(&metadata)
                    .unwrap_or_default(),
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Keeps a customer's profile, unless newer data (a later `created`) is already kept.
    pub async fn remember_profile(
        &self,
        customer: &str,
        profile: &CustomerProfile,
        created: i64,
    ) -> Result<(), StoreError> {
        let customer = customer.to_owned();
        let (email, name) = (profile.email.clone(), profile.name.clone());
        let metadata = serde_json::to_string(&profile.metadata).unwrap_or_else(|_| "{}".into());
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO customers (customer, email, name, metadata, created) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT(customer) DO UPDATE SET
                         email = COALESCE(excluded.email, customers.email),
                         name = COALESCE(excluded.name, customers.name),
                         metadata = excluded.metadata,
                         created = excluded.created
                     WHERE excluded.created >= customers.created",
                )
                .bind(&customer)
                .bind(&email)
                .bind(&name)
                .bind(&metadata)
                .bind(created)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }
}
