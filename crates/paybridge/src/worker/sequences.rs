//! Starting and stopping delayed sequences (dunning): a sequence's next step is a job with
//! a future `run_at` in the customer's lane (see `store::sequences`).

use serde_json::json;

use super::WorkError;
use super::step::StepContext;
use crate::domain::time;

/// Starts (`start`) or stops the sequence `name` for the step's customer.
pub(crate) async fn execute(
    cx: &mut StepContext<'_>,
    name: &str,
    start: bool,
) -> Result<(), WorkError> {
    let (p, fact, step) = (cx.p, cx.fact, cx.step);
    let i = &p.inner;
    let Some(customer) = &fact.customer else {
        cx.finished("skipped", Some(&json!({"reason": "no customer"})))
            .await?;
        cx.say(format!("sequence {name} needs a customer; skipped"));
        return Ok(());
    };
    let Some(sequence) = i.ruleset.sequence(name) else {
        return Err(WorkError::Terminal(format!(
            "sequence {name} is not in the config"
        )));
    };
    if !start {
        let n = i
            .store
            .cancel_sequences(
                customer.as_str(),
                &[name],
                &format!("stopped by {}", step.key),
                i64::MAX,
            )
            .await?;
        cx.finished("done", Some(&json!({"cancelled": n}))).await?;
        cx.say(format!(
            "sequence {name} stopped ({n} pending step(s) cancelled)"
        ));
        return Ok(());
    }
    // Out of order: if an event that cancels this sequence was already applied and is newer
    // than the trigger, the sequence is moot (e.g. the invoice is already paid).
    let later = i
        .store
        .applied_event_types_after(customer.as_str(), fact.occurred_at)
        .await?;
    if let Some(cancelling) = later.iter().find(|t| sequence.cancel_on.matches(t)) {
        cx.finished(
            "skipped",
            Some(&json!({"reason": format!("a newer {cancelling} was already applied")})),
        )
        .await?;
        cx.say(format!(
            "sequence {name} not started: a newer {cancelling} was already applied"
        ));
        return Ok(());
    }
    let first = i.clock.now_ms() + sequence.first_after().as_millis() as i64;
    let started = i
        .store
        .start_sequence(cx.start(), customer.as_str(), name, first)
        .await?;
    if started {
        cx.say(format!(
            "sequence {name} started; step 0 due {}",
            time::precise(first)
        ));
    } else {
        cx.say(format!(
            "sequence {name} is already running for {customer}; not started twice"
        ));
    }
    Ok(())
}
