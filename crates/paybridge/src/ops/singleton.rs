//! Work that runs on one replica at a time (the scheduled replay, payload retention, the
//! scheduled reconcile): it holds a lease row in the store, renewed while it runs, given
//! back when it ends. A replica that dies holding it loses it when it expires; replicas
//! that find it held skip their turn. On SQLite there is one process, and the lease costs
//! one write.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// How long a lease lasts without being renewed (it is renewed every third of that).
const LEASE_MS: i64 = 5 * 60_000;

/// This process's name as a lease holder (and in logs): host, process id, a random tag.
pub fn holder_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        format!(
            "{}-{}-{}",
            crate::worker::hostname(),
            std::process::id(),
            crate::domain::random_hex(4)
        )
    })
    .clone()
}

/// Runs `work` if the lease `name` can be taken for `holder`: Some(its output), or None
/// when another replica holds it.
pub async fn exclusively<T>(
    store: &Store,
    name: &str,
    holder: &str,
    work: impl Future<Output = T>,
) -> Result<Option<T>, StoreError> {
    if !store.lease(name, holder, LEASE_MS).await? {
        tracing::debug!(lease = name, "held by another replica; skipping this turn");
        return Ok(None);
    }
    let stop = CancellationToken::new();
    let renew = {
        let (store, name, holder, stop) = (
            store.clone(),
            name.to_owned(),
            holder.to_owned(),
            stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 / 3)) => {}
                    _ = stop.cancelled() => return,
                }
                if let Err(e) = store.lease(&name, &holder, LEASE_MS).await {
                    tracing::warn!(lease = %name, error = %e, "a lease could not be renewed");
                }
            }
        })
    };
    let output = work.await;
    stop.cancel();
    let _ = renew.await;
    store.release_lease(name, holder).await?;
    Ok(Some(output))
}
