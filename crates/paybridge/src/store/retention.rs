//! Data minimisation: raw payloads (which carry card and address details Stripe sends) are
//! deleted once an event is finished and older than `store.payload_retention_days`. What
//! operators need afterwards — type, customer, status, steps, timeline — stays.

use super::{Store, StoreError};

/// Payloads dropped per group commit: a first purge over months of events does not hold
/// the writer (and, on Postgres, every replica's writes) for long.
const PURGE_CHUNK: i64 = 1_000;

impl Store {
    /// Drops the payloads of finished events received before `before_ms`; returns how many.
    pub async fn purge_payloads(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            let n = self
                .write(move |c| {
                    Box::pin(async move {
                        Ok(sqlx::query(
                            "UPDATE events SET payload = NULL WHERE id IN (
                               SELECT e.id FROM events e
                               WHERE e.payload IS NOT NULL AND e.received_at < $1
                                 AND e.status IN ('done', 'ignored', 'dead', 'needs_attention')
                                 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id
                                                 AND j.status IN ('pending', 'retrying', 'running'))
                               LIMIT $2)",
                        )
                        .bind(before_ms)
                        .bind(PURGE_CHUNK)
                        .execute(&mut *c)
                        .await?
                        .rows_affected())
                    })
                })
                .await?;
            purged += n;
            if n < PURGE_CHUNK as u64 {
                return Ok(purged);
            }
        }
    }
}
