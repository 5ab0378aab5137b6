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
    /// `[contacts] follow_email`: a customer's changed email and name go to the contact.
    pub follow_email: bool,
}

/// Whether a payment event took money: a $0 invoice (a trial's first invoice: "An
/// immediate invoice is still created, but for $0", docs.stripe.com/billing/subscriptions/
/// trials) is paid without being a payment.
fn took_money(fact: &PaymentFact) -> bool {
    match &fact.invoice {
        Some(invoice) => invoice
            .amount_paid
            .as_ref()
            .or(fact.amount.as_ref())
            .is_some_and(|m| m.minor > 0),
        None => fact.amount.as_ref().is_none_or(|m| m.minor > 0),
    }
}

/// The contact properties of a payment, failure or refund.
fn payment_properties(fact: &PaymentFact, properties: &mut BTreeMap<String, String>) {
    let kind = fact.event_type.as_str();
    match fact.outcome {
        Outcome::PaymentSucceeded
            if (kind == "invoice.paid" || kind == "charge.succeeded") && took_money(fact) =>
        {
            properties.insert(
                "stripe_last_payment_date".into(),
                hubspot_date(fact.occurred_at),
            );
            if let Some(amount) = &fact.amount {
                properties.insert("stripe_last_payment_amount".into(), amount.major_string());
            }
            properties.insert("stripe_delinquent".into(), "false".into());
        }
        Outcome::PaymentFailed if kind == "invoice.payment_failed" || kind == "charge.failed" => {
            properties.insert(
                "stripe_last_payment_failed_date".into(),
                hubspot_date(fact.occurred_at),
            );
            properties.insert("stripe_delinquent".into(), "true".into());
        }
        Outcome::Refunded if kind == "charge.refunded" => {
            properties.insert("stripe_refund_issued".into(), "true".into());
        }
        _ => {}
    }
}

/// `customer.updated` with a changed email or name (`previous_attributes`), when
/// `follow_email` is on: the contact follows Stripe. The worker refuses an email that
/// another contact already has.
fn followed_identity(
    fact: &PaymentFact,
    extras: &Extras,
    properties: &mut BTreeMap<String, String>,
) {
    if !extras.follow_email
        || fact.object_kind != "customer"
        || fact.event_type != "customer.updated"
    {
        return;
    }
    if fact.changed.iter().any(|k| k == "email")
        && let Some(email) = &fact.email
    {
        properties.insert("email".into(), email.clone());
    }
    if fact.changed.iter().any(|k| k == "name")
        && let Some(name) = fact
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
    {
        let (first, last) = name.split_once(' ').unwrap_or((name, ""));
        properties.insert("firstname".into(), first.to_owned());
        properties.insert("lastname".into(), last.trim().to_owned());
    }
}

pub fn plan(fact: &PaymentFact, extras: &Extras) -> Option<Step> {
    // A guest payment (no customer) acts on the contact of its email.
    if fact.customer.is_none() && fact.email.is_none() && fact.fallback_email.is_none() {
        return None;
    }
    let mut properties = BTreeMap::new();
    let mut aggregates = BTreeMap::new();
    // Status and tier come from subscription objects only: an invoice says nothing
    // reliable about its subscription's status (a trial's $0 invoice is paid while the
    // subscription is `trialing`; a failed first invoice leaves it `incomplete`).
    if fact.object_kind == "subscription"
        && let Some(sub) = &fact.subscription
    {
        if let Some(status) = &sub.status {
            properties.insert("stripe_subscription_status".into(), status.clone());
        }
        if let Some(tier) = fact
            .products
            .iter()
            .find_map(|p| p.name.clone().or_else(|| p.product_id.clone()))
        {
            properties.insert("stripe_subscription_tier".into(), tier);
        }
    }
    payment_properties(fact, &mut properties);
    followed_identity(fact, extras, &mut properties);
    if let Some(ltv) = &extras.lifetime_value {
        aggregates.insert("stripe_lifetime_value".into(), ltv.major_string());
    }
    let key = step_key(fact.event_id.as_str(), RULE, 0);
    if properties.is_empty() && aggregates.is_empty() {
        // Nothing financial to write, but the event names a customer (or a guest's email):
        // the contact is found or created and linked ("Stripe Customer ID — every event with
        // a customer"), and a contact created without an email gets the event's.
        let links = fact.outcome != Outcome::CustomerDeleted;
        return links.then(|| Step {
            key,
            rule: RULE.into(),
            index: 0,
            action: Action::LinkContact,
        });
    }
    Some(Step {
        key,
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
            paid.get("stripe_subscription_status"),
            None,
            "status comes from subscription objects only"
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
        assert!(!failed.contains_key("stripe_subscription_status"));

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
                follow_email: true,
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

    #[test]
    fn a_trial_invoice_is_not_a_payment() {
        let trial = props(plan(
            &fact("story-2/invoice.paid.trial.json"),
            &Extras::default(),
        ));
        assert!(trial.is_empty(), "{trial:?}");
        let step = plan(&fact("story-2/invoice.paid.trial.json"), &Extras::default());
        assert_eq!(
            step.map(|s| s.action),
            Some(Action::LinkContact),
            "no payment property; the contact is linked (and gets the invoice's email)"
        );
        let trialing = props(plan(
            &fact("story-2/customer.subscription.created.trialing.json"),
            &Extras::default(),
        ));
        assert_eq!(
            trialing
                .get("stripe_subscription_status")
                .map(String::as_str),
            Some("trialing")
        );
    }

    #[test]
    fn a_changed_email_and_name_follow_stripe_when_asked() {
        let f = fact("customer.updated.json");
        assert!(f.changed.iter().any(|k| k == "email"), "{:?}", f.changed);
        let follow = Extras {
            follow_email: true,
            ..Extras::default()
        };
        let p = props(plan(&f, &follow));
        assert_eq!(
            p.get("email").map(String::as_str),
            Some("ada@analytical-engines.example.org")
        );
        assert!(
            props(plan(&f, &Extras::default())).is_empty(),
            "follow_email = false"
        );
        let created = props(plan(&fact("customer.created.json"), &follow));
        assert!(
            created.is_empty(),
            "a new customer changes nothing: {created:?}"
        );
    }

    #[test]
    fn guests_get_payments_but_no_status() {
        let charge = props(plan(
            &fact("story-2/charge.succeeded.guest.json"),
            &Extras::default(),
        ));
        assert_eq!(
            charge.get("stripe_last_payment_amount").map(String::as_str),
            Some("29.00")
        );
        let checkout = plan(
            &fact("story-2/checkout.session.completed.guest.json"),
            &Extras::default(),
        );
        assert_eq!(checkout.map(|s| s.action), Some(Action::LinkContact));
        assert!(
            plan(
                &fact("story-2/charge.dispute.created.guest.json"),
                &Extras::default()
            )
            .is_none(),
            "no customer and no email until the worker reads the charge"
        );
        assert!(plan(&fact("customer.deleted.json"), &Extras::default()).is_none());
    }
}
