//! The claim loop: `worker.concurrency` jobs in flight, woken by intake, leases renewed
//! while jobs run, in-flight jobs finished on shutdown.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::job::run_job;
use super::{Pipeline, outage};

/// How long shutdown waits for in-flight jobs before leaving them to lease expiry.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub struct Pool {
    pipeline: Pipeline,
}

/// The longest wait between claims while the store refuses them.
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Pool {
    pub fn new(pipeline: Pipeline) -> Self {
        Self { pipeline }
    }

    pub async fn run(self, cancel: CancellationToken) {
        let p = self.pipeline;
        let i = &p.inner;
        let concurrency = i.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let held: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let renewer = tokio::spawn(renew_leases(p.clone(), held.clone(), cancel.clone()));
        let prober = tokio::spawn(outage::probe(p.clone(), cancel.clone()));
        let wake = i.store.jobs_notify();
        tracing::info!(worker = %i.worker_id, concurrency, "workers started");
        // Consecutive claims the store refused (the database is away): the wait before the
        // next grows from 250 ms to 5 s, so a replica does not hammer a database that is
        // coming back, and finds it again within seconds.
        let mut store_failures: u32 = 0;
        loop {
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = cancel.cancelled() => break,
            };
            outage::release_if_recovered(&p).await;
            let mut batch = vec![first];
            while let Ok(more) = permits.clone().try_acquire_owned() {
                batch.push(more);
            }
            let lease_until = i.clock.now_ms() + i.lease.as_millis() as i64;
            let jobs = match i
                .store
                .claim(&i.worker_id, batch.len() as i64, lease_until)
                .await
            {
                Ok(jobs) => {
                    if store_failures > 0 {
                        tracing::info!(failures = store_failures, "the store answers again");
                    }
                    store_failures = 0;
                    jobs
                }
                Err(e) => {
                    store_failures = store_failures.saturating_add(1);
                    if store_failures == 1 || store_failures.is_multiple_of(20) {
                        tracing::error!(error = %e, failures = store_failures, "claiming jobs failed; backing off");
                    }
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                drop(batch);
                let wait = if store_failures > 0 {
                    Duration::from_millis(250u64 << store_failures.min(5)).min(STORE_BACKOFF_MAX)
                } else {
                    match i.store.next_run_at().await {
                        Ok(Some(at)) => {
                            Duration::from_millis((at - i.clock.now_ms()).clamp(5, 1_000) as u64)
                        }
                        _ => Duration::from_secs(1),
                    }
                };
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => break,
                }
                continue;
            }
            metrics::counter!("paybridge_queue_popped_total").increment(jobs.len() as u64);
            for (job, permit) in jobs.into_iter().zip(batch.drain(..)) {
                // A job still running here whose lease lapsed (renewals held up by a busy
                // store) can be claimed again: the running attempt keeps it (the claim
                // renewed its lease), never a second one beside it.
                let again = held.lock().is_ok_and(|mut h| !h.insert(job.id));
                if again {
                    tracing::warn!(event_id = %job.event_id, "a job still running here was claimed again after its lease lapsed; the running attempt keeps it");
                    drop(permit);
                    continue;
                }
                let (p, held) = (p.clone(), held.clone());
                tokio::spawn(async move {
                    let id = job.id;
                    run_job(&p, job).await;
                    if let Ok(mut h) = held.lock() {
                        h.remove(&id);
                    }
                    drop(permit);
                });
            }
        }
        tracing::info!("workers stopping; finishing in-flight jobs");
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(SHUTDOWN_GRACE, permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight jobs did not finish in time; their leases will expire and they will run again"
            );
        }
        renewer.abort();
        prober.abort();
    }
}

async fn renew_leases(p: Pipeline, held: Arc<Mutex<HashSet<i64>>>, cancel: CancellationToken) {
    let i = &p.inner;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(i.lease / 3) => {}
            _ = cancel.cancelled() => {}
        }
        let ids: Vec<i64> = held
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default();
        if !ids.is_empty() {
            let until = i.clock.now_ms() + i.lease.as_millis() as i64;
            if let Err(e) = i.store.renew(&i.worker_id, &ids, until).await {
                tracing::warn!(error = %e, "lease renewal failed");
            }
        }
        if cancel.is_cancelled() && ids.is_empty() {
            return;
        }
    }
}

/// Runs every job that can run, until none is left (tests and one-shot commands). Event
/// jobs waiting for a retry are waited for: with a manual clock the clock jumps to them.
/// Returns how many runs happened.
pub async fn drain(p: &Pipeline) -> anyhow::Result<usize> {
    let i = &p.inner;
    let mut runs = 0;
    loop {
        outage::release_if_recovered(p).await;
        let lease_until = i.clock.now_ms() + i.lease.as_millis() as i64;
        let jobs = i
            .store
            .claim(&i.worker_id, i.concurrency.max(1) as i64, lease_until)
            .await?;
        if jobs.is_empty() {
            match i.store.next_retry_at().await? {
                None => return Ok(runs),
                Some(at) => {
                    let now = i.clock.now_ms();
                    // Due but not claimable: it waits behind an earlier event of its lane
                    // whose retry is later. Wait for that one (a manual clock would
                    // otherwise never get there).
                    let at = if at <= now {
                        i.store.next_retry_after(now).await?.unwrap_or(at)
                    } else {
                        at
                    };
                    if at > now {
                        if i.clock.is_manual() {
                            i.clock.set_ms(at);
                        } else {
                            tokio::time::sleep(Duration::from_millis((at - now) as u64)).await;
                        }
                    }
                    continue;
                }
            }
        }
        metrics::counter!("paybridge_queue_popped_total").increment(jobs.len() as u64);
        let mut set = JoinSet::new();
        for job in jobs {
            runs += 1;
            let p = p.clone();
            set.spawn(async move { run_job(&p, job).await });
        }
        while set.join_next().await.is_some() {}
    }
}

/// Runs the jobs that are due now, until none is, without waiting for any retry (tests and
/// one-shot tools that move the clock themselves). Returns how many runs happened.
pub async fn run_due(p: &Pipeline) -> anyhow::Result<usize> {
    let i = &p.inner;
    let mut runs = 0;
    loop {
        outage::release_if_recovered(p).await;
        let lease_until = i.clock.now_ms() + i.lease.as_millis() as i64;
        let jobs = i
            .store
            .claim(&i.worker_id, i.concurrency.max(1) as i64, lease_until)
            .await?;
        if jobs.is_empty() {
            return Ok(runs);
        }
        let mut set = JoinSet::new();
        for job in jobs {
            runs += 1;
            let p = p.clone();
            set.spawn(async move { run_job(&p, job).await });
        }
        while set.join_next().await.is_some() {}
    }
}
