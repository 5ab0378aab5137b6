//! Data minimisation: raw payloads (which carry card and address details Stripe sends) are
//! deleted once an event is finished and older than `store.payload_retention_days`. What
//! operators need afterwards — type, customer, status, steps, timeline — stays.

use super::{Store, StoreError};

impl Store {
    /// Drops the payloads of finished events received before `before_ms`; returns how many.
    pub async fn purge_payloads(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(move |c| {
            Box::pin(async move {
                Ok(sqlx::query(
                    "UPDATE events SET payload = NULL
                     WHERE payload IS NOT NULL AND received_at < $1
                       AND status IN ('done', 'ignored', 'dead', 'needs_attention')
                       AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = events.id
                                       AND j.status IN ('pending', 'retrying', 'running'))",
                )
                .bind(before_ms)
                .execute(&mut *c)
                .await?
                .rows_affected())
            })
        })
        .await
    }
}
