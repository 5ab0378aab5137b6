//! HubSpot usage kept for `paybridge report`: the client counts the calls answered and the
//! 429s in memory; this moves them into the store's hourly `counters` every
//! [`FLUSH_EVERY`] and once more at shutdown. A `kill -9` loses at most the counts of the
//! last interval (the calls themselves are still visible in HubSpot's own usage log).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::hubspot::CallCounts;
use crate::store::Store;

pub const FLUSH_EVERY: Duration = Duration::from_secs(15);

/// Adds what `counts` holds to the store (puts it back if the store refuses).
pub async fn flush(store: &Store, counts: &CallCounts) {
    let (calls, rate_limited) = counts.take();
    if calls == 0 && rate_limited == 0 {
        return;
    }
    let now = store.clock().now_ms();
    if let Err(e) = store
        .add_counters(
            now,
            &[("hubspot_calls", calls), ("hubspot_429", rate_limited)],
        )
        .await
    {
        tracing::warn!(error = %e, "could not store the HubSpot call counts; will try again");
        counts.give_back(calls, rate_limited);
    }
}

/// Flushes every [`FLUSH_EVERY`] until cancelled (the caller flushes once more after the
/// workers have stopped).
pub async fn run(store: Store, counts: Arc<CallCounts>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => flush(&store, &counts).await,
            _ = cancel.cancelled() => return,
        }
    }
}
