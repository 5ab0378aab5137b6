//! Dashboard sessions: created at sign-in, revoked at sign-out, looked up on every
//! signed-in request. Rows are keyed by a hash of the session's nonce.

use super::{Store, StoreError};

impl Store {
    /// Records a new session (and forgets those that expired).
    pub async fn session_create(
        &self,
        id: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
                    .bind(now_ms)
                    .execute(&mut *c)
                    .await?;
                sqlx::query(
                    "INSERT INTO sessions (id, created_ms, expires_ms) VALUES ($1, $2, $3)
                     ON CONFLICT(id) DO NOTHING",
                )
                .bind(&id)
                .bind(now_ms)
                .bind(expires_ms)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Whether the session exists, has not expired and was not revoked.
    pub async fn session_active(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sessions WHERE id = $1 AND revoked_ms IS NULL AND expires_ms > $2",
        )
        .bind(id)
        .bind(now_ms)
        .fetch_optional(self.reader())
        .await?;
        Ok(found.is_some())
    }

    /// Ends a session for good (sign-out).
    pub async fn session_revoke(&self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE sessions SET revoked_ms = $2 WHERE id = $1")
                    .bind(&id)
                    .bind(now_ms)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }
}
