//! The job queue: claim with a lease (never a transaction held across a HubSpot call),
//! one job per lane at a time in `created` order, reclaim of expired leases, and the
//! outcome of a run written to the job and its event together.

use sqlx::Row;

use super::sql::Builder;
use super::{Dialect, Store, StoreError};
use crate::domain::EventStatus;

#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub lane: String,
    /// Attempts including this one.
    pub attempt: i64,
    pub sequence: Option<String>,
    pub step_index: Option<i64>,
    /// When the job was due (unix ms): a sequence's next step is scheduled from it.
    pub run_at: i64,
}

/// The next step of a sequence, enqueued when the current one is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStep {
    pub step_index: i64,
    pub run_at: i64,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    Done {
        contact_id: Option<String>,
        /// For sequence steps: the following step, enqueued in the same transaction.
        next: Option<NextStep>,
    },
    /// Try again at `run_at` (unix ms). `count_attempt: false` for rate limiting.
    Retry {
        run_at: i64,
        error: String,
        count_attempt: bool,
    },
    /// A dead letter: out of attempts, or a terminal error.
    Dead { error: String },
    /// A person must decide; no retry.
    NeedsAttention {
        error: String,
        contact_id: Option<String>,
    },
}

/// The claim: runnable jobs whose lane has no job running under a live lease and no
/// earlier event job waiting, oldest first, leased to `$1` until `$2`. On Postgres the
/// rows are also locked (`FOR UPDATE SKIP LOCKED`): were writes ever not serialized by the
/// write lock, two claims would still not take the same job.
fn claim_sql(dialect: Dialect) -> String {
    format!(
        "UPDATE jobs SET status = 'running', locked_by = $1, locked_until = $2, attempts = attempts + 1
         WHERE id IN (
           SELECT j.id FROM jobs j
           WHERE j.status IN ('pending', 'retrying', 'running')
             AND ((j.status IN ('pending', 'retrying') AND j.run_at <= $3)
                  OR (j.status = 'running' AND j.locked_until <= $3))
             AND NOT EXISTS (
               SELECT 1 FROM jobs k
               WHERE k.lane = j.lane AND k.id != j.id
                 AND ((k.status = 'running' AND k.locked_until > $3)
                      OR (k.kind = 'event'
                          AND (k.status IN ('pending', 'retrying')
                               OR (k.status = 'running' AND k.locked_until <= $3))
                          AND (k.created < j.created OR (k.created = j.created AND k.id < j.id)))))
           ORDER BY j.created, j.id
           LIMIT $4{})
         RETURNING id, event_id, kind, lane, attempts, sequence, step_index, run_at",
        dialect.pick("", " FOR UPDATE OF j SKIP LOCKED")
    )
}

/// A claim slower than this on Postgres has the planner's statistics refreshed.
const SLOW_CLAIM: std::time::Duration = std::time::Duration::from_millis(500);

impl Store {
    /// Postgres: `ANALYZE` the queue's tables in the background, at most once a minute. The
    /// claim's plan depends on the planner's statistics of `jobs`; autovacuum keeps them,
    /// but on a server without it a fresh table's claims were measured at 9 s each at
    /// 10,000 jobs (10 ms once analysed).
    fn refresh_statistics(&self) {
        let Some(pool) = self.postgres_pool() else {
            return;
        };
        static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
        if let Ok(mut last) = LAST.lock() {
            if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(60)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        tokio::spawn(async move {
            match sqlx::query("ANALYZE jobs, events").execute(&pool).await {
                Ok(_) => tracing::info!("slow claims: the queue's planner statistics refreshed"),
                Err(e) => tracing::warn!(error = %e, "ANALYZE of the queue failed"),
            }
        });
    }

    /// Claims up to `limit` runnable jobs for `worker`, leased until `lease_until` (unix ms).
    pub async fn claim(
        &self,
        worker: &str,
        limit: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = self.clock().now_ms();
        let worker = worker.to_owned();
        let started = std::time::Instant::now();
        let rows = self
            .write(move |c| {
                Box::pin(async move {
                    // On Postgres this runs under the replicas' write lock (see `writer`):
                    // a claim sees every lease committed before it.
                    let dialect = Dialect::of(c);
                    sqlx::query(&claim_sql(dialect))
                        .bind(&worker)
                        .bind(lease_until)
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&mut *c)
                        .await
                })
            })
            .await?;
        if started.elapsed() > SLOW_CLAIM {
            self.refresh_statistics();
        }
        rows.iter()
            .map(|r| {
                Ok(ClaimedJob {
                    id: r.try_get("id")?,
                    event_id: r.try_get("event_id")?,
                    kind: r.try_get("kind")?,
                    lane: r.try_get("lane")?,
                    attempt: r.try_get("attempts")?,
                    sequence: r.try_get("sequence")?,
                    step_index: r.try_get("step_index")?,
                    run_at: r.try_get("run_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Extends the leases of jobs `worker` still holds.
    pub async fn renew(
        &self,
        worker: &str,
        jobs: &[i64],
        lease_until: i64,
    ) -> Result<(), StoreError> {
        let (worker, jobs) = (worker.to_owned(), jobs.to_vec());
        self.write(move |c| {
            Box::pin(async move {
                for chunk in jobs.chunks(500) {
                    let mut q = Builder::new("UPDATE jobs SET locked_until = ");
                    q.push_bind(lease_until)
                        .push(" WHERE status = 'running' AND locked_by = ")
                        .push_bind(worker.clone())
                        .push(" AND id IN (")
                        .push_list(chunk.iter().copied())
                        .push(")");
                    q.build().execute(&mut *c).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The earliest `run_at` of a waiting job (for the workers' sleep), unix ms.
    pub async fn next_run_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(run_at) FROM jobs WHERE status IN ('pending', 'retrying')",
        )
        .fetch_one(self.reader())
        .await?)
    }

    /// The earliest `run_at` of an event job waiting (first run or retry) or of any job
    /// waiting for a retry, unix ms. Scheduled sequence steps are not included: a test or a
    /// one-shot drain moves time past them on purpose.
    pub async fn next_retry_at(&self) -> Result<Option<i64>, StoreError> {
        self.next_retry_after(i64::MIN).await
    }

    /// [`Store::next_retry_at`] among the jobs not due by `after` (unix ms): what a drain
    /// waits for when every due job waits behind its lane's earlier event, which is itself
    /// waiting for its retry.
    pub async fn next_retry_after(&self, after: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(run_at) FROM jobs
             WHERE ((kind = 'event' AND status IN ('pending', 'retrying')) OR status = 'retrying')
               AND run_at > $1",
        )
        .bind(after)
        .fetch_one(self.reader())
        .await?)
    }

    /// Jobs waiting for a retry become due now (HubSpot came back after an outage: their
    /// backoff is moot). Returns how many were waiting.
    pub async fn run_now(&self, jobs: &[i64]) -> Result<u64, StoreError> {
        let now = self.clock().now_ms();
        let jobs = jobs.to_vec();
        self.write(move |c| {
            Box::pin(async move {
                let mut released = 0;
                for chunk in jobs.chunks(500) {
                    let mut q = Builder::new("UPDATE jobs SET run_at = ");
                    q.push_bind(now)
                        .push(" WHERE status = 'retrying' AND run_at > ")
                        .push_bind(now)
                        .push(" AND id IN (")
                        .push_list(chunk.iter().copied())
                        .push(")");
                    released += q.build().execute(&mut *c).await?.rows_affected();
                }
                Ok(released)
            })
        })
        .await
    }

    /// Records how a run ended, on the job and (for event jobs) on its event. Ignored if the
    /// lease was lost to another worker meanwhile. Returns whether it was recorded.
    pub async fn finish(
        &self,
        worker: &str,
        job: &ClaimedJob,
        outcome: &JobOutcome,
    ) -> Result<bool, StoreError> {
        let now = self.clock().now_ms();
        let (worker, job, outcome) = (worker.to_owned(), job.clone(), outcome.clone());
        self.write(move |tx| Box::pin(async move {
        let (job_status, run_at, error, attempts_delta) = match &outcome {
            JobOutcome::Done { .. } => ("done", None, None, 0),
            JobOutcome::Retry {
                run_at,
                error,
                count_attempt,
            } => (
                "retrying",
                Some(*run_at),
                Some(error.as_str()),
                if *count_attempt { 0 } else { -1 },
            ),
            JobOutcome::Dead { error } => ("dead", None, Some(error.as_str()), 0),
            JobOutcome::NeedsAttention { error, .. } => ("done", None, Some(error.as_str()), 0),
        };
        let updated = sqlx::query(
            "UPDATE jobs SET status = $1, run_at = COALESCE($2, run_at), last_error = $3,
                    attempts = attempts + $4, locked_by = NULL, locked_until = NULL
             WHERE id = $5 AND locked_by = $6 AND status = 'running'",
        )
        .bind(job_status)
        .bind(run_at)
        .bind(error)
        .bind(attempts_delta)
        .bind(job.id)
        .bind(&worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        if let (
            JobOutcome::Done {
                next: Some(next), ..
            },
            Some(sequence),
        ) = (&outcome, &job.sequence)
        {
            sqlx::query(
                "INSERT INTO jobs (event_id, kind, lane, created, status, run_at, sequence, step_index)
                 VALUES ($1, 'sequence_step', $2, $3, 'pending', $4, $5, $6)",
            )
            .bind(&job.event_id)
            .bind(&job.lane)
            .bind(next.run_at.div_euclid(1000))
            .bind(next.run_at)
            .bind(sequence)
            .bind(next.step_index)
            .execute(&mut *tx)
            .await?;
        }
        if job.kind == "event" {
            let (status, contact, finished) = match &outcome {
                JobOutcome::Done { contact_id, .. } => {
                    (EventStatus::Done, contact_id.as_deref(), Some(now))
                }
                JobOutcome::Retry { .. } => (EventStatus::Retrying, None, None),
                JobOutcome::Dead { .. } => (EventStatus::Dead, None, Some(now)),
                JobOutcome::NeedsAttention { contact_id, .. } => (
                    EventStatus::NeedsAttention,
                    contact_id.as_deref(),
                    Some(now),
                ),
            };
            sqlx::query(
                "UPDATE events SET status = $1, attempts = (SELECT attempts FROM jobs WHERE id = $2),
                        last_error = $3, contact_id = COALESCE($4, contact_id), finished_at = $5
                 WHERE id = $6",
            )
            .bind(status.as_str())
            .bind(job.id)
            .bind(error)
            .bind(contact)
            .bind(finished)
            .bind(&job.event_id)
            .execute(&mut *tx)
            .await?;
        }
        Ok(true)
        })).await
    }

    /// Puts events back in the queue (`events retry`): their job runs again from the
    /// first attempt, skipping steps already done. Returns the ids put back.
    pub async fn retry_events(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let now = self.clock().now_ms();
        let ids = ids.to_vec();
        let back = self.write(move |tx| Box::pin(async move {
        let mut back = Vec::new();
        for id in ids {
            let changed = sqlx::query(
                "UPDATE jobs SET status = 'pending', attempts = 0, run_at = $1, locked_by = NULL, locked_until = NULL
                 WHERE event_id = $2 AND kind = 'event' AND status IN ('dead', 'done', 'retrying')",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed > 0 {
                sqlx::query("UPDATE events SET status = 'pending', attempts = 0, finished_at = NULL WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                back.push(id);
            }
        }
        Ok(back)
        })).await?;
        self.jobs_notify().notify_one();
        Ok(back)
    }

    pub async fn dead_event_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM events WHERE status = 'dead' ORDER BY received_at")
                .fetch_all(self.reader())
                .await?,
        )
    }

    /// Marks the event alerted; true if this call did it (at most one alert per event).
    pub async fn claim_alert(&self, event_id: &str) -> Result<bool, StoreError> {
        let event_id = event_id.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                Ok(
                    sqlx::query("UPDATE events SET alerted = 1 WHERE id = $1 AND alerted = 0")
                        .bind(&event_id)
                        .execute(&mut *c)
                        .await?
                        .rows_affected()
                        == 1,
                )
            })
        })
        .await
    }

    pub async fn payload(&self, event_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT payload FROM events WHERE id = $1")
                .bind(event_id)
                .fetch_optional(self.reader())
                .await?
                .flatten(),
        )
    }
}
