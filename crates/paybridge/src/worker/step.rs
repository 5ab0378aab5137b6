//! Acting on a plan: the contact is resolved (when a step needs one) and its watermarks
//! read once, then each step runs through one [`StepContext`]: what the run knows, the
//! step, and the step's record from an earlier attempt. A step already `done` is skipped;
//! a non-idempotent effect records `started` first (`create` says how an interrupted one
//! is found again). Shadow mode records the plan instead.
//!
//! Reading the watermarks once is exact: a customer's jobs never run at once, and a write
//! of this run raises a watermark only to this event's own `created`, which never makes a
//! later property of the same event stale.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::execute::execute;
use super::resolve::{Resolved, resolve};
use super::{Log, Pipeline, WorkError};
use crate::config::WorkerMode;
use crate::domain::PaymentFact;
use crate::hubspot::{Contact, HubspotError, Properties};
use crate::rules::plan::Owner;
use crate::rules::{Action, Step};
use crate::store::{StepRecord, StepStart};

/// Everything one step acts with.
pub(crate) struct StepContext<'a> {
    pub p: &'a Pipeline,
    pub fact: &'a PaymentFact,
    /// The contact of this run, when one was resolved.
    pub contact: Option<&'a Resolved>,
    /// The stale guard: property → `created` of the event that last wrote it on the contact.
    pub watermarks: &'a BTreeMap<String, i64>,
    pub step: &'a Step,
    /// This step's row from an earlier attempt, if any.
    pub existing: Option<StepRecord>,
    /// The action as recorded in the steps ledger.
    pub detail: Value,
    pub log: &'a mut Log,
}

impl StepContext<'_> {
    /// The step as the steps ledger keys and describes it.
    pub fn start(&self) -> StepStart<'_> {
        StepStart {
            key: &self.step.key,
            event_id: self.fact.event_id.as_str(),
            rule: &self.step.rule,
            action_index: self.step.index as i64,
            kind: self.step.action.kind(),
            detail: &self.detail,
        }
    }

    /// Records `started` (durably) before a non-idempotent effect.
    pub async fn started(&self) -> Result<(), WorkError> {
        self.p.inner.store.step_started(self.start()).await?;
        Ok(())
    }

    /// Records the step's end: `done`, `skipped` or `planned`, with its result.
    pub async fn finished(&self, status: &str, result: Option<&Value>) -> Result<(), WorkError> {
        self.p
            .inner
            .store
            .step_finished(self.start(), status, result, None)
            .await?;
        Ok(())
    }

    /// An earlier attempt recorded `started` and no result: the effect may have happened.
    pub fn interrupted(&self) -> bool {
        self.existing
            .as_ref()
            .is_some_and(|s| s.status == "started")
    }

    pub fn say(&mut self, message: impl Into<String>) {
        self.log.say(message);
    }
}

/// Runs planned steps in order. Returns the contact acted on.
pub(crate) async fn act(
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
    let no_watermarks = BTreeMap::new();
    if i.mode == WorkerMode::Shadow {
        for step in steps {
            let cx = StepContext {
                p,
                fact,
                contact: None,
                watermarks: &no_watermarks,
                step,
                existing: None,
                detail: json!(step.action),
                log: &mut *log,
            };
            cx.finished("planned", None).await?;
            log.say(format!(
                "shadow mode: would run {} ({}); nothing was written",
                step.key,
                step.action.kind()
            ));
        }
        return Ok(None);
    }
    let mut contact = if steps.iter().any(|s| s.action.needs_contact()) {
        let preload = first_write(p, steps).await?;
        resolve(p, fact, preload.as_ref(), log).await?
    } else {
        None
    };
    let mut owner_read = read_owner_alongside(p, contact.as_ref(), steps);
    let writes_properties = steps
        .iter()
        .any(|s| matches!(s.action, Action::UpdateContact { .. }));
    let watermarks = match &contact {
        Some(c) if writes_properties => i.store.watermarks(&c.id).await?,
        _ => no_watermarks,
    };
    for step in steps {
        if for_contact_owner(step)
            && let (Some(read), Some(c)) = (owner_read.take(), contact.as_mut())
            && let Ok(Ok(Some(found))) = read.await
        {
            c.owner = found.get("hubspot_owner_id").map(str::to_owned);
            c.owner_known = true;
        }
        let existing = i.store.step(&step.key).await?;
        if existing.as_ref().is_some_and(|s| s.status == "done") {
            log.say(format!("step {} already done; skipped", step.key));
            continue;
        }
        let mut cx = StepContext {
            p,
            fact,
            contact: contact.as_ref(),
            watermarks: &watermarks,
            step,
            existing,
            detail: json!(step.action),
            log: &mut *log,
        };
        execute(&mut cx).await.map_err(|e| in_step(e, step))?;
    }
    Ok(contact.map(|c| c.id))
}

/// A step that creates a record for the contact's owner.
fn for_contact_owner(step: &Step) -> bool {
    matches!(
        &step.action,
        Action::CreateTask { owner, .. }
            | Action::CreateTicket { owner, .. }
            | Action::CreateDeal { owner, .. } if *owner == Owner::ContactOwner
    )
}

type OwnerRead = tokio::task::JoinHandle<Result<Option<Contact>, HubspotError>>;

/// When a step after the first creates a record for the contact's owner and the owner is
/// not known yet: the contact is read while the steps before it run, not after them (one
/// wait for HubSpot less; a failed read is left to the step, which reads again).
fn read_owner_alongside(
    p: &Pipeline,
    contact: Option<&Resolved>,
    steps: &[Step],
) -> Option<OwnerRead> {
    let c = contact.filter(|c| !c.owner_known)?;
    if !steps.iter().skip(1).any(for_contact_owner) {
        return None;
    }
    let (hubspot, id) = (p.inner.hubspot.clone(), c.id.clone());
    Some(tokio::spawn(async move {
        hubspot.contact_by("hs_object_id", &id).await
    }))
}

/// What the run's first step on the contact writes, when it is a property update not done
/// yet: a contact created for this run carries it, and an email to attach goes with it.
/// (Before the stale guard: a new contact has no watermarks, and for a known one only the
/// email rides along.)
async fn first_write(p: &Pipeline, steps: &[Step]) -> Result<Option<Properties>, WorkError> {
    let Some(step) = steps.iter().find(|s| s.action.needs_contact()) else {
        return Ok(None);
    };
    let Action::UpdateContact {
        properties,
        aggregates,
    } = &step.action
    else {
        return Ok(None);
    };
    if p.inner
        .store
        .step(&step.key)
        .await?
        .is_some_and(|s| s.status == "done")
    {
        return Ok(None);
    }
    Ok(Some(
        properties
            .iter()
            .chain(aggregates)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ))
}

/// A refusal retrying cannot cure (a 400 from HubSpot's write validation, say) names the
/// rule and the action it came from, for the dead letter.
fn in_step(e: WorkError, step: &Step) -> WorkError {
    let place = |what: String| {
        WorkError::Terminal(format!(
            "rule {}, action {} ({}): {what}",
            step.rule,
            step.index,
            step.action.kind()
        ))
    };
    match e {
        WorkError::Hubspot(h) if h.is_terminal() => place(h.to_string()),
        WorkError::Terminal(message) => place(message),
        other => other,
    }
}
