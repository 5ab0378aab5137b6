//! The built-in financial tagging (SPEC §1): keep the `stripe_*` contact properties current.

use std::collections::BTreeMap;

use super::plan::{Action, Step, step_key};
pub use crate::domain::time::{hubspot_date, iso_date};
use crate::domain::{Money, Outcome, PaymentFact};

pub const RULE: &str = "financial";

/// Facts the planner cannot know from the event alone (computed by the worker).
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// The customer's lifetime value after this event (paid minus refunded, per charge).
    pub lifetime_value: Option<Money>,
}

pub fn plan(fact: &PaymentFact, extras: &Extras) -> Option<Step> {
    fact.customer.as_ref()?;
    let mut properties = BTreeMap::new();
    let mut aggregates = BTreeMap::new();
    let kind = fact.event_type.as_str();
    let is_invoice = fact.invoice.is_some();
    let is_charge = fact.object_kind == "charge";

    if let Some(sub) = &fact.subscription {
        if let Some(status) = &sub.status {
            properties.insert("stripe_subscription_status".into(), status.clone());
        }
        if fact.object_kind == "subscription"
            && let Some(tier) = fact
                .products
                .iter()
                .find_map(|p| p.name.clone().or_else(|| p.product_id.clone()))
        {
            properties.insert("stripe_subscription_tier".into(), tier);
        }
    }
    match fact.outcome {
        Outcome::PaymentSucceeded if kind == "invoice.paid" || kind == "charge.succeeded" => {
            properties.insert(
                "stripe_last_payment_date".into(),
                hubspot_date(fact.occurred_at),
            );
            if let Some(amount) = &fact.amount {
                properties.insert("stripe_last_payment_amount".into(), amount.major_string());
            }
            properties.insert("stripe_delinquent".into(), "false".into());
            if is_invoice && fact.subscription.is_some() {
                properties.insert("stripe_subscription_status".into(), "active".into());
            }
        }
        Outcome::PaymentFailed if kind == "invoice.payment_failed" || kind == "charge.failed" => {
            properties.insert(
                "stripe_last_payment_failed_date".into(),
                hubspot_date(fact.occurred_at),
            );
            properties.insert("stripe_delinquent".into(), "true".into());
            if is_invoice && fact.subscription.is_some() {
                properties.insert("stripe_subscription_status".into(), "past_due".into());
            }
        }
        Outcome::Refunded if kind == "charge.refunded" => {
            properties.insert("stripe_refund_issued".into(), "true".into());
        }
        _ => {}
    }
    if is_charge && let Some(ltv) = &extras.lifetime_value {
        aggregates.insert("stripe_lifetime_value".into(), ltv.major_string());
    }
    if properties.is_empty() && aggregates.is_empty() {
        // A customer event writes no financial property, but it is the moment the customer
        // gets (or is linked to) a contact: "Stripe Customer ID — every event with a customer".
        if fact.object_kind == "customer" && fact.outcome == Outcome::CustomerChanged {
            return Some(Step {
                key: step_key(fact.event_id.as_str(), RULE, 0),
                rule: RULE.into(),
                index: 0,
                action: Action::LinkContact,
            });
        }
        return None;
    }
    Some(Step {
        key: step_key(fact.event_id.as_str(), RULE, 0),
        rule: RULE.into(),
        index: 0,
        action: Action::UpdateContact {
            properties,
            aggregates,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::normalise;

    fn fact(name: &str) -> PaymentFact {
        let path = format!("{}/fixtures/stripe/{name}", env!("CARGO_MANIFEST_DIR"));
        normalise(&std::fs::read(path).expect("fixture")).expect("normalises")
    }

    fn props(step: Option<Step>) -> BTreeMap<String, String> {
        match step.map(|s| s.action) {
            Some(Action::LinkContact) => BTreeMap::new(),
            Some(Action::UpdateContact {
                mut properties,
                aggregates,
            }) => {
                properties.extend(aggregates);
                properties
            }
            Some(other) => panic!("the financial step only updates the contact: {other:?}"),
            None => BTreeMap::new(),
        }
    }

    #[test]
    fn dates_are_midnight_utc_in_ms() {
        assert_eq!(hubspot_date(1788257651), "1788220800000");
        assert_eq!(iso_date(1788257651), "2026-09-01");
    }

    #[test]
    fn each_fixture_writes_what_the_spec_table_says() {
        let paid = props(plan(&fact("invoice.paid.json"), &Extras::default()));
        assert_eq!(
            paid.get("stripe_last_payment_amount").map(String::as_str),
            Some("49.00")
        );
        assert_eq!(
            paid.get("stripe_last_payment_date").map(String::as_str),
            Some("1788220800000")
        );
        assert_eq!(
            paid.get("stripe_subscription_status").map(String::as_str),
            Some("active")
        );
        assert_eq!(
            paid.get("stripe_delinquent").map(String::as_str),
            Some("false")
        );

        let failed = props(plan(
            &fact("invoice.payment_failed.json"),
            &Extras::default(),
        ));
        assert_eq!(
            failed.get("stripe_delinquent").map(String::as_str),
            Some("true")
        );
        assert!(failed.contains_key("stripe_last_payment_failed_date"));
        assert!(!failed.contains_key("stripe_last_payment_amount"));

        let sub = props(plan(
            &fact("customer.subscription.updated.json"),
            &Extras::default(),
        ));
        assert_eq!(
            sub.get("stripe_subscription_status").map(String::as_str),
            Some("past_due")
        );
        assert_eq!(
            sub.get("stripe_subscription_tier").map(String::as_str),
            Some("Pro (monthly)")
        );

        let cancelled = props(plan(
            &fact("customer.subscription.deleted.json"),
            &Extras::default(),
        ));
        assert_eq!(
            cancelled
                .get("stripe_subscription_status")
                .map(String::as_str),
            Some("canceled")
        );

        let refund = props(plan(
            &fact("charge.refunded.json"),
            &Extras {
                lifetime_value: Some(Money::new(3900, "usd")),
            },
        ));
        assert_eq!(
            refund.get("stripe_refund_issued").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            refund.get("stripe_lifetime_value").map(String::as_str),
            Some("39.00")
        );

        let created = plan(&fact("customer.created.json"), &Extras::default());
        assert_eq!(created.map(|s| s.action), Some(Action::LinkContact));
        assert!(
            plan(&fact("charge.dispute.created.json"), &Extras::default()).is_none(),
            "no customer"
        );
    }
}
