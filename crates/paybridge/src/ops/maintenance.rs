//! Housekeeping that runs beside the workers: purging raw payloads past retention, on one
//! replica at a time (the `retention` lease, see `singleton`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often retention is applied.
const EVERY: Duration = Duration::from_secs(3_600);

pub async fn run(store: Store, retention_days: u32, cancel: CancellationToken) {
    let holder = super::singleton::holder_name();
    loop {
        let before = store.clock().now_ms() - i64::from(retention_days) * 86_400_000;
        let purge = store.purge_payloads(before);
        match super::singleton::exclusively(&store, "retention", &holder, purge).await {
            Ok(None) | Ok(Some(Ok(0))) => {}
            Ok(Some(Err(e))) | Err(e) => {
                tracing::warn!(error = %e, "payload retention failed; will try again")
            }
            Ok(Some(Ok(n))) => tracing::info!(
                purged = n,
                retention_days,
                "raw payloads past retention deleted"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
