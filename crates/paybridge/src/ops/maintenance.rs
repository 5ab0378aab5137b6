//! Housekeeping that runs beside the workers: purging raw payloads past retention.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often retention is applied.
const EVERY: Duration = Duration::from_secs(3_600);

pub async fn run(store: Store, retention_days: u32, cancel: CancellationToken) {
    loop {
        let before = store.clock().now_ms() - i64::from(retention_days) * 86_400_000;
        match store.purge_payloads(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                purged = n,
                retention_days,
                "raw payloads past retention deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "payload retention failed; will try again"),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
