//! One run of one job, start to finish: the attempt's span and timeline, the outcome
//! (done, retry with backoff, dead letter, needs attention), its metrics and alert.

use super::outage;
use super::process::{process_event, process_sequence_step};
use super::{Log, Pipeline, WorkError};
use crate::hubspot::HubspotError;
use crate::store::{ClaimedJob, JobOutcome};
use tracing::Instrument;

pub(crate) async fn run_job(p: &Pipeline, job: ClaimedJob) {
    let span = tracing::info_span!("job", event_id = %job.event_id, lane = %job.lane, attempt = job.attempt);
    async {
        let i = &p.inner;
        let mut log = Log::new(i.clock.clone());
        log.say(format!("attempt {} started", job.attempt));
        let started = std::time::Instant::now();
        let result = if job.kind == "sequence_step" {
            process_sequence_step(p, &job, &mut log).await
        } else {
            process_event(p, &job, &mut log).await.map(|c| (c, None))
        };
        let now = i.clock.now_ms();
        let (outcome, hubspot_down) = match result {
            Ok((contact_id, next)) => {
                log.say("done");
                (JobOutcome::Done { contact_id, next }, false)
            }
            Err(e) => {
                let down = matches!(&e, WorkError::Hubspot(h) if h.is_outage());
                let outcome = match outage::deferred(p, job.id, &e, &mut log) {
                    Some(deferred) => deferred,
                    None => failed(p, &job, e, now, &mut log).await,
                };
                (outcome, down)
            }
        };
        outage::note_outcome(p, job.id, &outcome, hubspot_down);
        metrics::counter!("paybridge_job_attempts_total", "outcome" => outcome_label(&outcome, hubspot_down)).increment(1);
        metrics::histogram!("paybridge_job_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = i.store.log_timeline(&job.event_id, job.attempt, &log.lines).await {
            tracing::warn!(error = %e, "could not store the timeline");
        }
        match i.store.finish(&i.worker_id, &job, &outcome).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the lease was lost before the outcome was recorded; another worker owns the job"),
            Err(e) => tracing::error!(error = %e, "could not record the outcome; the lease will expire and the job run again"),
        }
        if let JobOutcome::Done { .. } = outcome {
            record_latency(p, &job).await;
        }
        if let JobOutcome::Dead { error } = &outcome {
            metrics::counter!("paybridge_dead_letters_total").increment(1);
            alert(p, &job, error).await;
        }
    }
    .instrument(span)
    .await
}

/// How a failed run ends: waiting for a person, a rate limit waited out, a dead letter,
/// or a retry after its backoff.
async fn failed(
    p: &Pipeline,
    job: &ClaimedJob,
    e: WorkError,
    now: i64,
    log: &mut Log,
) -> JobOutcome {
    let i = &p.inner;
    match e {
        WorkError::NeedsAttention {
            message,
            contact_id,
        } => {
            log.say(format!("needs attention: {message}"));
            JobOutcome::NeedsAttention {
                error: message,
                contact_id,
            }
        }
        WorkError::Hubspot(HubspotError::RateLimited {
            policy,
            retry_after,
        }) => {
            if policy == "DAILY" {
                daily_limit_alert(p).await;
            }
            let wait = retry_after.unwrap_or(std::time::Duration::from_secs(10));
            log.say(format!("HubSpot rate limit ({policy}) persists; rescheduled in {} s, not counted as an attempt", wait.as_secs()));
            JobOutcome::Retry {
                run_at: now + wait.as_millis() as i64,
                error: format!("rate limited ({policy})"),
                count_attempt: false,
            }
        }
        e if e.is_terminal() => {
            log.say(format!("failed for good: {e}"));
            JobOutcome::Dead {
                error: e.to_string(),
            }
        }
        e if job.attempt >= i.max_attempts => {
            log.say(format!(
                "attempt {} failed: {e}; no attempts left",
                job.attempt
            ));
            JobOutcome::Dead {
                error: format!("gave up after {} attempts: {e}", job.attempt),
            }
        }
        e => {
            let delay = i.backoff.delay(job.attempt, e.retry_after());
            log.say(format!(
                "attempt {} failed: {e}; next attempt in {} ms",
                job.attempt,
                delay.as_millis()
            ));
            JobOutcome::Retry {
                run_at: now + delay.as_millis() as i64,
                error: e.to_string(),
                count_attempt: true,
            }
        }
    }
}

fn outcome_label(o: &JobOutcome, hubspot_down: bool) -> &'static str {
    match o {
        JobOutcome::Retry {
            count_attempt: false,
            ..
        } if hubspot_down => "waiting_for_hubspot",
        JobOutcome::Done { .. } => "done",
        JobOutcome::Retry {
            count_attempt: true,
            ..
        } => "retry",
        JobOutcome::Retry { .. } => "rate_limited",
        JobOutcome::Dead { .. } => "dead",
        JobOutcome::NeedsAttention { .. } => "needs_attention",
    }
}

async fn record_latency(p: &Pipeline, job: &ClaimedJob) {
    if let Ok(Some(event)) = p.inner.store.get_event_summary(&job.event_id).await {
        let seconds = (p.inner.clock.now_ms() - event.created * 1000) as f64 / 1000.0;
        metrics::histogram!("paybridge_payment_to_crm_seconds").record(seconds.max(0.0));
    }
}

async fn alert(p: &Pipeline, job: &ClaimedJob, error: &str) {
    let Some(alerter) = p.inner.alerter.clone() else {
        return;
    };
    match p.inner.store.claim_alert(&job.event_id).await {
        Ok(true) => {
            let summary = p
                .inner
                .store
                .get_event_summary(&job.event_id)
                .await
                .ok()
                .flatten();
            let (kind, customer) = summary
                .map(|s| (s.kind, s.customer.unwrap_or_else(|| "-".into())))
                .unwrap_or_default();
            alerter
                .dead_letter(&job.event_id, &kind, &customer, error)
                .await;
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not record the alert"),
    }
}

/// One alert per daily-limit hold (the HubSpot client owes it once per reset time).
async fn daily_limit_alert(p: &Pipeline) {
    let Some((until, zone)) = p.inner.hubspot.take_daily_alert() else {
        return;
    };
    let zone = zone.map_or_else(
        || "the account's time zone is unknown, so HubSpot is asked again hourly".to_owned(),
        |z| format!("midnight in the account's time zone, {}", z.name),
    );
    let when = crate::domain::time::precise(until);
    tracing::error!(until = %when, "HubSpot's daily API limit is spent; every HubSpot call waits until it resets ({zone})");
    metrics::counter!("paybridge_hubspot_daily_limit_total").increment(1);
    if let Some(alerter) = p.inner.alerter.clone() {
        alerter.daily_limit(&when, &zone).await;
    }
}
