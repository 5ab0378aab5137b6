//! Rules: configuration → a plan of keyed steps. Pure: no store, no HubSpot, no clock.
//!
//! By phase: `compile` (config as written → `model`, once at load), `render` (an event's
//! context → keyed steps of `plan`), `needs` (what the rules need from HubSpot). Each
//! action kind lives in one module of `actions`; `financial` is the built-in tagging.

pub mod actions;
pub mod compile;
pub mod context;
pub mod financial;
pub mod model;
pub mod needs;
pub mod patterns;
pub mod plan;
pub mod properties;
pub mod references;
pub mod render;
pub mod repair;
pub mod stripe_types;
pub mod template;

#[cfg(test)]
mod testing;

pub use actions::{ActionTemplate, action_types};
pub use context::context;
pub use financial::Extras;
pub use model::{Configured, Rule, RuleSet, Sequence, SequenceStep};
pub use needs::{Needs, PropertyKind, PropertyNeed};
pub use patterns::TypePatterns;
pub use plan::{Action, Owner, Planned, Step, step_key};

use crate::domain::PaymentFact;

/// The event types the built-in financial tagging keeps contact properties current from
/// (SPEC §1 "financial tagging" and "subscription lifecycle").
pub const FINANCIAL_TYPES: &[&str] = &[
    "customer.created",
    "customer.updated",
    "customer.subscription.*",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "checkout.session.completed",
    "refund.updated",
    "refund.failed",
];

/// The lane `once_per` keys are scoped to: the customer, else a guest's email, else the
/// event itself (as the queue's lanes).
pub fn lane_of_fact(fact: &PaymentFact) -> String {
    match (
        &fact.customer,
        fact.email.as_ref().or(fact.fallback_email.as_ref()),
    ) {
        (Some(c), _) => c.to_string(),
        (None, Some(email)) => format!("guest:{email}"),
        (None, None) => fact.event_id.to_string(),
    }
}

/// The whole plan for one event: the built-in financial step (if any), then the steps of
/// the configured rules in config order. `context` is [`context()`] of the same fact.
pub fn plan_event(
    ruleset: &RuleSet,
    fact: &PaymentFact,
    extras: &Extras,
    context: &serde_json::Value,
    now_ms: i64,
) -> Planned {
    let mut steps: Vec<Step> = financial::plan(fact, extras).into_iter().collect();
    let lane = lane_of_fact(fact);
    let rules = ruleset.plan_in_lane(
        fact.event_id.as_str(),
        &lane,
        &fact.event_type,
        context,
        now_ms,
    );
    steps.extend(rules.steps);
    Planned {
        steps,
        warnings: rules.warnings,
    }
}
