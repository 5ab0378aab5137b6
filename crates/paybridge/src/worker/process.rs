//! A run reads, then plans, then acts. It reads the fact, the customer's profile and the
//! lifetime value (`read`); the rules turn them into keyed steps (pure, no I/O); the steps
//! then run one by one, each through its step context (`step`).

use super::read::{enrich, extras, load_fact, profile, repair_properties};
use super::step::act;
use super::{Log, Pipeline, WorkError};
use crate::domain::{PaymentFact, time};
use crate::rules;
use crate::store::{ClaimedJob, NextStep};

/// An event's job. Returns the contact acted on.
pub(crate) async fn process_event(
    p: &Pipeline,
    job: &ClaimedJob,
    log: &mut Log,
) -> Result<Option<String>, WorkError> {
    let i = &p.inner;
    let mut fact = load_fact(p, &job.event_id, log).await?;
    if fact.event_type == rules::repair::EVENT_TYPE {
        let properties = repair_properties(p, &fact).await?;
        log.say(format!(
            "reconcile repair: Stripe's current state gives {}",
            properties
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let step = rules::repair::plan(&fact, properties);
        return act(p, &fact, &[step], log).await;
    }
    enrich(p, &mut fact, log).await?;
    cancel_sequences(p, &fact, log).await?;
    let profile = profile(p, &fact).await?;
    let extras = extras(p, &fact).await?;
    let context = rules::context(&fact, &profile);
    let planned = rules::plan_event(&i.ruleset, &fact, &extras, &context, i.clock.now_ms());
    for warning in &planned.warnings {
        log.say(format!("rule warning: {warning}"));
    }
    act(p, &fact, &planned.steps, log).await
}

/// The pending steps of the sequences this event cancels (`cancel_on`) stop first, unless
/// a newer event started them (Stripe does not deliver in order: a late `invoice.paid` of
/// last month's invoice does not stop the recovery of this month's failed one).
async fn cancel_sequences(
    p: &Pipeline,
    fact: &PaymentFact,
    log: &mut Log,
) -> Result<(), WorkError> {
    let Some(customer) = &fact.customer else {
        return Ok(());
    };
    let cancelled = p.inner.ruleset.sequences_cancelled_by(&fact.event_type);
    if cancelled.is_empty() {
        return Ok(());
    }
    let reason = format!("cancelled by {} ({})", fact.event_type, fact.event_id);
    let n = p
        .inner
        .store
        .cancel_sequences(customer.as_str(), &cancelled, &reason, fact.occurred_at)
        .await?;
    if n > 0 {
        log.say(format!(
            "{n} pending step(s) of {} cancelled by this event",
            cancelled.join(", ")
        ));
    }
    Ok(())
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
    let fact = load_fact(p, &job.event_id, log).await?;
    let profile = profile(p, &fact).await?;
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
    let contact = act(p, &fact, &planned.steps, log).await?;
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
