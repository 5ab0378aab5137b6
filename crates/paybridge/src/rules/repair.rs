//! A reconcile repair (`paybridge reconcile --fix`): paybridge's own event, planned as one
//! property write of the values Stripe's current state gives. Its step goes through the
//! stale guard like any event's, dated by the time Stripe's state was read, so a repair
//! never overwrites a newer event's write.

use std::collections::BTreeMap;

use super::plan::{Action, Step, step_key};
use crate::domain::PaymentFact;

/// The type of a repair event (not a Stripe type: no rule's `on` names it).
pub const EVENT_TYPE: &str = "paybridge.reconcile";
/// The rule name in its step key.
pub const RULE: &str = "reconcile";

/// The step of a repair: write `properties` on the customer's contact.
pub fn plan(fact: &PaymentFact, properties: BTreeMap<String, String>) -> Step {
    Step {
        key: step_key(fact.event_id.as_str(), RULE, 0),
        rule: RULE.into(),
        index: 0,
        action: Action::UpdateContact {
            properties,
            aggregates: BTreeMap::new(),
        },
    }
}
