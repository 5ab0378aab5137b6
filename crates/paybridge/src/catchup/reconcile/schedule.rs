//! `[stripe] reconcile_every`: `reconcile --fix` on a schedule, inside `serve`. One replica
//! at a time: the run holds the store's `reconcile` lease (renewed while it runs; a dead
//! replica's lease expires). Its HubSpot reads are background work, taking at most
//! `reconcile_budget_share` of the request window (`hubspot::limiter::in_background`), so
//! live events keep the rest. An interrupted run (a restart) is resumed by the next turn.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ReconcileError, ReconcileOptions, Reconciler};
use crate::hubspot::limiter::in_background;
use crate::ops::singleton::exclusively;

/// The lease's name (see `ops::singleton`).
pub const LEASE: &str = "reconcile";
/// How often a replica looks whether a run is due (or its lease free).
const LOOK_EVERY: Duration = Duration::from_secs(60);

impl Reconciler {
    /// Runs every `every` until cancelled, as `holder` (this replica).
    pub async fn schedule(self, every: Duration, holder: String, cancel: CancellationToken) {
        loop {
            match self.scheduled_turn(every, &holder, &cancel).await {
                Ok(_) => {}
                Err(ReconcileError::Cancelled) => return,
                Err(e) => {
                    metrics::counter!("paybridge_reconcile_runs_total", "trigger" => "schedule", "result" => "error").increment(1);
                    tracing::warn!(error = %e, "scheduled reconcile failed; the next turn resumes it");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(LOOK_EVERY) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// One look: when a run is due and the lease is ours, the run (resuming an
    /// interrupted one). Whether it ran.
    pub async fn scheduled_turn(
        &self,
        every: Duration,
        holder: &str,
        cancel: &CancellationToken,
    ) -> Result<bool, ReconcileError> {
        let now = self.store.clock().now_ms();
        let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let unfinished = self.store.reconcile_unfinished().await?;
        let due = unfinished.is_some()
            || self
                .store
                .reconcile_last_complete()
                .await?
                .is_none_or(|last| now - last >= every_ms);
        if !due {
            return Ok(false);
        }
        let options = ReconcileOptions {
            customer: None,
            resume: unfinished.is_some(),
            fix: true,
            trigger: "schedule",
        };
        let run = async {
            tracing::info!(resume = options.resume, "scheduled reconcile starts");
            in_background(self.run(&options, cancel, &mut |_| {})).await
        };
        let Some(result) = exclusively(&self.store, LEASE, holder, run).await? else {
            return Ok(false);
        };
        let state = result?;
        tracing::info!(
            run = %state.run,
            customers = state.customers,
            drift = state.drift,
            repairs = state.repairs_queued,
            "scheduled reconcile finished"
        );
        Ok(true)
    }
}
