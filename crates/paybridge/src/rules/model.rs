//! The compiled rule set: rules, sequences and their action templates, as checked at load,
//! and the questions asked of it (which event types it handles, which sequences an event
//! cancels).

use std::collections::BTreeMap;
use std::time::Duration;

use minijinja::Environment;

use super::FINANCIAL_TYPES;
use super::actions::ActionTemplate;
use super::patterns::TypePatterns;
use super::template::Text;
use super::template::environment;

/// The compiled rules and sequences of a configuration.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// In config order: plans list their steps in this order.
    pub rules: Vec<Rule>,
    pub sequences: BTreeMap<String, Sequence>,
    /// Holds every compiled template (named by its config path).
    pub(super) env: Environment<'static>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub on: TypePatterns,
    /// The `if` expression's source (compiled and checked at load).
    pub condition: Option<String>,
    pub actions: Vec<Configured>,
}

/// One action as configured: what it does, and what it happens once for.
#[derive(Debug, Clone, PartialEq)]
pub struct Configured {
    pub action: ActionTemplate,
    /// `once_per = "{{ invoice.id }}"`: the rendered value, not the event, keys the step
    /// (`{lane}:{rule}:{action}:{value}`), so the same invoice's second failed attempt finds
    /// the step done and skips it (DESIGN.md, "`once_per`").
    pub once_per: Option<Text>,
}

#[derive(Debug, Clone)]
pub struct Sequence {
    pub name: String,
    /// Event types (of the same customer) that cancel the pending steps.
    pub cancel_on: TypePatterns,
    /// Non-empty; `after` never decreases. The last step is where a human takes over.
    pub steps: Vec<SequenceStep>,
}

#[derive(Debug, Clone)]
pub struct SequenceStep {
    /// Counted from the start of the sequence (the triggering event), not from the
    /// previous step: `0h`, `3d`, `7d` run on day 0, 3 and 7.
    pub after: Duration,
    pub actions: Vec<Configured>,
}

impl Sequence {
    /// When the first step runs, counted from the triggering event.
    pub fn first_after(&self) -> Duration {
        self.steps.first().map_or(Duration::ZERO, |s| s.after)
    }

    /// The wait between step `index` and the next one (None after the last step).
    pub fn delay_after(&self, index: usize) -> Option<Duration> {
        let this = self.steps.get(index)?;
        let next = self.steps.get(index + 1)?;
        Some(next.after.saturating_sub(this.after))
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            sequences: BTreeMap::new(),
            env: environment(),
        }
    }
}

impl RuleSet {
    /// The event types something acts on: the built-in financial tagging's and
    /// [`Self::rule_types`]. Intake stores every other type as `ignored`.
    pub fn handled_types(&self) -> TypePatterns {
        let mut handled = TypePatterns::new(FINANCIAL_TYPES.iter().copied());
        handled.extend(&self.rule_types());
        handled
    }

    /// Every event type a rule's `on` or a sequence's `cancel_on` names.
    pub fn rule_types(&self) -> TypePatterns {
        let mut types = TypePatterns::default();
        for rule in &self.rules {
            types.extend(&rule.on);
        }
        for sequence in self.sequences.values() {
            types.extend(&sequence.cancel_on);
        }
        types
    }

    /// The exact event types to subscribe a Stripe endpoint to: what something here acts
    /// on, patterns expanded against Stripe's list. Sending more only adds `ignored` rows.
    pub fn event_types_to_send(&self) -> Vec<String> {
        let mut types = super::stripe_types::expand(self.handled_types().as_slice());
        types.sort();
        types
    }

    pub fn sequence(&self, name: &str) -> Option<&Sequence> {
        self.sequences.get(name)
    }

    /// The sequences an event of this type cancels.
    pub fn sequences_cancelled_by(&self, event_type: &str) -> Vec<&str> {
        self.sequences
            .values()
            .filter(|s| s.cancel_on.matches(event_type))
            .map(|s| s.name.as_str())
            .collect()
    }

    /// Every action template, rules first, then each sequence's steps.
    pub(super) fn all_actions(&self) -> impl Iterator<Item = &ActionTemplate> {
        self.rules
            .iter()
            .flat_map(|r| r.actions.iter())
            .chain(
                self.sequences
                    .values()
                    .flat_map(|s| s.steps.iter().flat_map(|step| step.actions.iter())),
            )
            .map(|c| &c.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::starter;

    #[test]
    fn handled_types_are_the_financial_ones_and_the_rules() {
        let empty = RuleSet::default().handled_types();
        for t in [
            "customer.created",
            "invoice.paid",
            "customer.subscription.deleted",
        ] {
            assert!(empty.matches(t), "{t}");
        }
        assert!(!empty.matches("payout.paid"));
        assert!(!empty.matches("invoice.upcoming"));

        let starter = starter();
        assert!(starter.handled_types().matches("customer.created"));
        assert!(!starter.rule_types().matches("customer.created"));
        assert!(starter.handled_types().matches("charge.refunded"));
    }
}
