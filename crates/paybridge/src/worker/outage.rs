//! Jobs and a HubSpot outage (issue 14). While the HubSpot client's circuit breaker is
//! open (`hubspot/breaker.rs`), a job that meets it waits without spending an attempt, so
//! an outage never pushes a job toward the dead letters. The pool probes at the breaker's
//! pace; when HubSpot answers again, every job waiting on it — deferred by the breaker, or
//! backing off after a 5xx before the breaker opened — becomes due at once, and the queue
//! drains at the budget's pace instead of each job sitting out its own backoff.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Log, Pipeline, WorkError};
use crate::hubspot::HubspotError;
use crate::store::JobOutcome;

/// A deferred job runs again this long after the next probe is due, should nothing
/// release it sooner (no pool probing, as in one-shot drains): it then probes itself.
const AFTER_PROBE: Duration = Duration::from_secs(10);

/// The outcome of a run that met HubSpot failing broadly, or None for any other failure.
pub(crate) fn deferred(
    p: &Pipeline,
    job_id: i64,
    error: &WorkError,
    log: &mut Log,
) -> Option<JobOutcome> {
    let WorkError::Hubspot(e) = error else {
        return None;
    };
    let hubspot = &p.inner.hubspot;
    let broad = matches!(e, HubspotError::Unavailable { .. })
        || (e.is_outage() && hubspot.is_unavailable());
    if !broad {
        return None;
    }
    // Closed meanwhile (a probe succeeded since this run's call was refused): run again now.
    let wait = if hubspot.is_unavailable() {
        hubspot.until_probe() + AFTER_PROBE
    } else {
        Duration::ZERO
    };
    log.say(format!(
        "HubSpot is failing broadly ({e}); waiting for it to come back (at most {} s, sooner once a probe succeeds), not counted as an attempt",
        wait.as_secs()
    ));
    wait_on_hubspot(p, job_id);
    Some(JobOutcome::Retry {
        run_at: p.inner.clock.now_ms() + wait.as_millis() as i64,
        error: format!("waiting for HubSpot: {e}"),
        count_attempt: false,
    })
}

/// Remembers a job that waits for HubSpot (it failed for a 5xx or no answer: released
/// when HubSpot comes back), or forgets it.
pub(crate) fn note_outcome(p: &Pipeline, job_id: i64, outcome: &JobOutcome, hubspot_down: bool) {
    if hubspot_down && matches!(outcome, JobOutcome::Retry { .. }) {
        wait_on_hubspot(p, job_id);
    } else if let Ok(mut w) = p.inner.waiting_on_hubspot.lock() {
        w.remove(&job_id);
    }
}

fn wait_on_hubspot(p: &Pipeline, job_id: i64) {
    if let Ok(mut w) = p.inner.waiting_on_hubspot.lock() {
        w.insert(job_id);
    }
}

/// After HubSpot came back (the breaker closed since the last look): every job waiting
/// on it is due now.
pub(crate) async fn release_if_recovered(p: &Pipeline) {
    let i = &p.inner;
    let recoveries = i.hubspot.recoveries();
    if i.recoveries_seen
        .swap(recoveries, std::sync::atomic::Ordering::SeqCst)
        == recoveries
    {
        return;
    }
    let ids: Vec<i64> = match i.waiting_on_hubspot.lock() {
        Ok(mut w) => w.drain().collect(),
        Err(_) => return,
    };
    match i.store.run_now(&ids).await {
        Ok(n) => tracing::info!(
            released = n,
            "HubSpot answers again: the jobs waiting on it run now"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not release the jobs waiting on HubSpot; they run at their own time")
        }
    }
}

/// While the pool runs: a probe whenever the breaker wants one.
pub(crate) async fn probe(p: Pipeline, cancel: CancellationToken) {
    let hubspot = &p.inner.hubspot;
    loop {
        let wait = hubspot
            .until_probe()
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => return,
        }
        hubspot.probe_if_due().await;
    }
}
