//! One run of one job: payload → fact → plan → contact → steps, then the outcome.

use serde_json::json;
use tracing::Instrument;

use super::execute::execute;
use super::resolve::resolve;
use super::{Log, Pipeline, WorkError};
use crate::config::WorkerMode;
use crate::domain::{CustomerProfile, Money, PaymentFact, time};
use crate::hubspot::HubspotError;
use crate::rules::{self, Extras, Step};
use crate::store::{ClaimedJob, JobOutcome, NextStep, StepStart};
use crate::stripe::normalise;

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
        let outcome = match result {
            Ok((contact_id, next)) => {
                log.say("done");
                JobOutcome::Done { contact_id, next }
            }
            Err(WorkError::NeedsAttention { message, contact_id }) => {
                log.say(format!("needs attention: {message}"));
                JobOutcome::NeedsAttention { error: message, contact_id }
            }
            Err(WorkError::Hubspot(HubspotError::RateLimited { policy, retry_after })) => {
                let wait = retry_after.unwrap_or(std::time::Duration::from_secs(10));
                log.say(format!("HubSpot rate limit ({policy}) persists; rescheduled in {} s, not counted as an attempt", wait.as_secs()));
                JobOutcome::Retry {
                    run_at: now + wait.as_millis() as i64,
                    error: format!("rate limited ({policy})"),
                    count_attempt: false,
                }
            }
            Err(e) if e.is_terminal() => {
                log.say(format!("failed for good: {e}"));
                JobOutcome::Dead { error: e.to_string() }
            }
            Err(e) if job.attempt >= i.max_attempts => {
                log.say(format!("attempt {} failed: {e}; no attempts left", job.attempt));
                JobOutcome::Dead {
                    error: format!("gave up after {} attempts: {e}", job.attempt),
                }
            }
            Err(e) => {
                let delay = i.backoff.delay(job.attempt, e.retry_after());
                log.say(format!("attempt {} failed: {e}; next attempt in {} ms", job.attempt, delay.as_millis()));
                JobOutcome::Retry {
                    run_at: now + delay.as_millis() as i64,
                    error: e.to_string(),
                    count_attempt: true,
                }
            }
        };
        metrics::counter!("paybridge_job_attempts_total", "outcome" => outcome_label(&outcome)).increment(1);
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

fn outcome_label(o: &JobOutcome) -> &'static str {
    match o {
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

async fn process_event(
    p: &Pipeline,
    job: &ClaimedJob,
    log: &mut Log,
) -> Result<Option<String>, WorkError> {
    let i = &p.inner;
    let fact = load_fact(p, &job.event_id).await?;
    if let Some(customer) = &fact.customer {
        let cancelled_sequences = i.ruleset.sequences_cancelled_by(&fact.event_type);
        if !cancelled_sequences.is_empty() {
            let reason = format!("cancelled by {} ({})", fact.event_type, fact.event_id);
            let n = i
                .store
                .cancel_sequences(customer.as_str(), &cancelled_sequences, &reason)
                .await?;
            if n > 0 {
                log.say(format!(
                    "{n} pending step(s) of {} cancelled by this event",
                    cancelled_sequences.join(", ")
                ));
            }
        }
    }
    let profile = profile(p, &fact, log).await?;
    let extras = extras(p, &fact).await?;
    let context = rules::context(&fact, &profile);
    let planned = rules::plan_event(&i.ruleset, &fact, &extras, &context, i.clock.now_ms());
    for warning in &planned.warnings {
        log.say(format!("rule warning: {warning}"));
    }
    run_steps(p, &fact, &planned.steps, log).await
}

/// A due step of a sequence: rendered from its triggering event, run, and the next step
/// scheduled from this one's due time.
pub(crate) async fn process_sequence_step(
    p: &Pipeline,
    job: &ClaimedJob,
    log: &mut Log,
) -> Result<(Option<String>, Option<NextStep>), WorkError> {
    let i = &p.inner;
    let (Some(name), Some(index)) = (&job.sequence, job.step_index) else {
        return Err(WorkError::Terminal(
            "a sequence job without its sequence".into(),
        ));
    };
    let fact = load_fact(p, &job.event_id).await?;
    let profile = profile(p, &fact, log).await?;
    let context = rules::context(&fact, &profile);
    let Some((planned, delay)) = i.ruleset.sequence_step_planned(
        name,
        index as usize,
        &job.event_id,
        &context,
        i.clock.now_ms(),
    ) else {
        log.say(format!(
            "sequence {name} has no step {index} in the current config; it ends here"
        ));
        return Ok((None, None));
    };
    log.say(format!("sequence {name}: step {index} is due"));
    for warning in &planned.warnings {
        log.say(format!("rule warning: {warning}"));
    }
    let contact = run_steps(p, &fact, &planned.steps, log).await?;
    let next = delay.map(|d| NextStep {
        step_index: index + 1,
        run_at: job.run_at + d.as_millis() as i64,
    });
    match &next {
        Some(n) => log.say(format!(
            "sequence {name}: step {} scheduled for {}",
            n.step_index,
            time::precise(n.run_at)
        )),
        None => log.say(format!("sequence {name}: last step done")),
    }
    Ok((contact, next))
}

async fn load_fact(p: &Pipeline, event_id: &str) -> Result<PaymentFact, WorkError> {
    let payload = p.inner.store.payload(event_id).await?.ok_or_else(|| {
        WorkError::Terminal(
            "the raw payload was purged (store.payload_retention_days); replay it from Stripe"
                .into(),
        )
    })?;
    normalise(&payload).map_err(|e| WorkError::Terminal(e.to_string()))
}

/// What templates and conditions know of the customer: the event's own data, then what
/// the store remembers (customer events, earlier API reads).
async fn profile(
    p: &Pipeline,
    fact: &PaymentFact,
    _log: &mut Log,
) -> Result<CustomerProfile, WorkError> {
    let i = &p.inner;
    let Some(customer) = &fact.customer else {
        return Ok(CustomerProfile {
            email: fact.email.clone(),
            name: fact.name.clone(),
            ..CustomerProfile::default()
        });
    };
    let kept = i.store.customer_profile(customer.as_str()).await?;
    if fact.object_kind == "customer" {
        let from_event = CustomerProfile {
            id: Some(customer.to_string()),
            email: fact.email.clone(),
            name: fact.name.clone(),
            metadata: fact.customer_metadata.clone(),
        };
        i.store
            .remember_profile(customer.as_str(), &from_event, fact.occurred_at)
            .await?;
        return Ok(from_event);
    }
    let mut profile = kept.unwrap_or_else(|| CustomerProfile {
        id: Some(customer.to_string()),
        ..CustomerProfile::default()
    });
    if let Some(email) = &fact.email {
        profile.email = Some(email.clone());
    }
    if let Some(name) = &fact.name {
        profile.name = Some(name.clone());
    }
    Ok(profile)
}

/// Runs planned steps: shadow mode records them, else the contact is resolved (when a step
/// needs one) and each step executed in order. Returns the contact acted on.
async fn run_steps(
    p: &Pipeline,
    fact: &PaymentFact,
    steps: &[Step],
    log: &mut Log,
) -> Result<Option<String>, WorkError> {
    let i = &p.inner;
    if steps.is_empty() {
        log.say(format!("no rule acts on {}", fact.event_type));
        return Ok(None);
    }
    log.say(format!(
        "planned {} step(s): {}",
        steps.len(),
        steps
            .iter()
            .map(|s| s.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if i.mode == WorkerMode::Shadow {
        for step in steps {
            let detail = json!(step.action);
            i.store
                .step_finished(start_of(fact, step, &detail), "planned", None, None)
                .await?;
            log.say(format!(
                "shadow mode: would run {} ({}); nothing was written",
                step.key,
                step.action.kind()
            ));
        }
        return Ok(None);
    }
    let contact = if steps.iter().any(|s| s.action.needs_contact()) {
        resolve(p, fact, log).await?
    } else {
        None
    };
    for step in steps {
        execute(p, fact, contact.as_ref(), step, log).await?;
    }
    Ok(contact.map(|c| c.id))
}

pub(crate) fn start_of<'a>(
    fact: &'a PaymentFact,
    step: &'a Step,
    detail: &'a serde_json::Value,
) -> StepStart<'a> {
    StepStart {
        key: &step.key,
        event_id: fact.event_id.as_str(),
        rule: &step.rule,
        action_index: step.index as i64,
        kind: step.action.kind(),
        detail,
    }
}

/// Facts the plan needs from the store: the lifetime value after a charge event.
async fn extras(p: &Pipeline, fact: &PaymentFact) -> Result<Extras, WorkError> {
    let (Some(customer), Some(charge)) = (&fact.customer, &fact.charge) else {
        return Ok(Extras::default());
    };
    if fact.object_kind != "charge" {
        return Ok(Extras::default());
    }
    let currency = fact
        .amount
        .as_ref()
        .or(fact.amount_refunded.as_ref())
        .map(|m| m.currency.clone())
        .unwrap_or_else(|| "usd".into());
    let succeeded = charge.status.as_deref() == Some("succeeded");
    let paid = succeeded
        .then(|| fact.amount.as_ref().map(|m| m.minor))
        .flatten();
    let refunded = fact.amount_refunded.as_ref().map(|m| m.minor);
    let total = p
        .inner
        .store
        .ledger_record(
            customer.as_str(),
            &charge.id,
            &currency,
            paid.or(Some(0)),
            refunded,
        )
        .await?;
    Ok(Extras {
        lifetime_value: Some(Money::new(total, &currency)),
    })
}
