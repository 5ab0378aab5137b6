//! A Stripe event (either API-version rendering) → one `PaymentFact`.
//!
//! Where the email comes from matters (research/stripe.md §4): customers carry `email`,
//! invoices `customer_email`, Checkout sessions `customer_details.email`. Charges carry the
//! *card's* billing email, which may be stale, and disputes none: for those the fact has no
//! email and the worker asks Stripe's API (or its own memory of the customer).

use std::collections::BTreeMap;

use serde_json::Value;

use super::event::customer_of;
use crate::domain::{
    ChargeFacts, EventId, InvoiceFacts, Money, Outcome, PaymentFact, ProductRef, SubscriptionFacts,
};

#[derive(Debug, thiserror::Error)]
#[error("the stored payload is not a Stripe event: {0}")]
pub struct NormaliseError(String);

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn text(v: &Value, path: &str) -> Option<String> {
    at(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn int(v: &Value, path: &str) -> Option<i64> {
    at(v, path).and_then(Value::as_i64)
}

/// An id field that may be expanded into an object.
fn id_ref(v: &Value, path: &str) -> Option<String> {
    match at(v, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn money(v: &Value, amount_path: &str) -> Option<Money> {
    let amount = int(v, amount_path)?;
    let currency = text(v, "currency")?;
    Some(Money::new(amount, &currency))
}

/// Parses a stored event payload into a fact.
pub fn normalise(payload: &[u8]) -> Result<PaymentFact, NormaliseError> {
    let event: Value =
        serde_json::from_slice(payload).map_err(|e| NormaliseError(e.to_string()))?;
    let id = text(&event, "id").ok_or_else(|| NormaliseError("no id".into()))?;
    let event_id = EventId::parse(&id).map_err(|e| NormaliseError(e.to_string()))?;
    let event_type = text(&event, "type").ok_or_else(|| NormaliseError("no type".into()))?;
    let object = at(&event, "data.object")
        .filter(|o| o.is_object())
        .ok_or_else(|| NormaliseError("no data.object".into()))?;
    let object_kind = text(object, "object").unwrap_or_default();

    let mut fact = PaymentFact {
        event_id,
        occurred_at: int(&event, "created").unwrap_or_default(),
        livemode: at(&event, "livemode")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        customer: customer_of(object),
        email: None,
        name: None,
        customer_metadata: BTreeMap::new(),
        object_id: text(object, "id"),
        metadata: string_map(object.get("metadata")),
        outcome: outcome_of(&event_type, object),
        amount: None,
        amount_refunded: None,
        products: Vec::new(),
        subscription: None,
        invoice: None,
        charge: None,
        object_kind: object_kind.clone(),
        event_type,
    };

    read_object(&mut fact, &event, object);
    if let Some(email) = &mut fact.email {
        *email = email.trim().to_ascii_lowercase();
    }
    Ok(fact)
}

/// The fields of the event's object, by its kind, into `fact`.
fn read_object(fact: &mut PaymentFact, event: &Value, object: &Value) {
    match fact.object_kind.as_str() {
        "customer" => {
            fact.email = text(object, "email");
            fact.name = text(object, "name");
            fact.customer_metadata = fact.metadata.clone();
        }
        "invoice" => {
            fact.email = text(object, "customer_email");
            fact.name = text(object, "customer_name");
            let paid = fact.outcome == Outcome::PaymentSucceeded;
            fact.amount = money(object, if paid { "amount_paid" } else { "amount_due" });
            fact.products = invoice_products(object);
            fact.invoice = Some(InvoiceFacts {
                id: text(object, "id").unwrap_or_default(),
                billing_reason: text(object, "billing_reason"),
                attempt_count: int(object, "attempt_count"),
                next_payment_attempt: int(object, "next_payment_attempt"),
                status: text(object, "status"),
                hosted_invoice_url: text(object, "hosted_invoice_url"),
            });
            // Basil moved the subscription under `parent`; older versions have it on top.
            let subscription = id_ref(object, "parent.subscription_details.subscription")
                .or_else(|| id_ref(object, "subscription"));
            fact.subscription = subscription.map(|id| SubscriptionFacts {
                id,
                status: None,
                previous_status: None,
                cancel_at_period_end: None,
                cancellation_reason: None,
            });
        }
        "subscription" => {
            fact.products = subscription_products(object);
            fact.amount = subscription_amount(object);
            fact.subscription = Some(SubscriptionFacts {
                id: text(object, "id").unwrap_or_default(),
                status: text(object, "status"),
                previous_status: text(event, "data.previous_attributes.status"),
                cancel_at_period_end: at(object, "cancel_at_period_end").and_then(Value::as_bool),
                cancellation_reason: text(object, "cancellation_details.reason"),
            });
        }
        "charge" => {
            fact.amount = money(object, "amount");
            fact.amount_refunded = money(object, "amount_refunded");
            fact.charge = Some(ChargeFacts {
                id: text(object, "id").unwrap_or_default(),
                status: text(object, "status"),
                failure_code: text(object, "failure_code"),
                failure_message: text(object, "failure_message"),
                refunded: at(object, "refunded")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            });
        }
        "refund" => {
            fact.amount_refunded = money(object, "amount");
            fact.charge = id_ref(object, "charge").map(|id| ChargeFacts {
                id,
                status: None,
                failure_code: None,
                failure_message: None,
                refunded: false,
            });
        }
        "payment_intent" => {
            fact.amount = money(object, "amount");
        }
        "checkout.session" => {
            fact.email =
                text(object, "customer_details.email").or_else(|| text(object, "customer_email"));
            fact.name = text(object, "customer_details.name");
            fact.amount = money(object, "amount_total");
            fact.subscription = id_ref(object, "subscription").map(|id| SubscriptionFacts {
                id,
                status: None,
                previous_status: None,
                cancel_at_period_end: None,
                cancellation_reason: None,
            });
        }
        "dispute" => {
            fact.amount = money(object, "amount");
            fact.charge = id_ref(object, "charge").map(|id| ChargeFacts {
                id,
                status: text(object, "status"),
                failure_code: None,
                failure_message: text(object, "reason"),
                refunded: false,
            });
        }
        _ => {}
    }
}

fn outcome_of(event_type: &str, object: &Value) -> Outcome {
    match event_type {
        "invoice.paid"
        | "invoice.payment_succeeded"
        | "charge.succeeded"
        | "payment_intent.succeeded"
        | "checkout.session.async_payment_succeeded" => Outcome::PaymentSucceeded,
        "invoice.payment_failed"
        | "charge.failed"
        | "payment_intent.payment_failed"
        | "checkout.session.async_payment_failed"
        | "invoice.payment_action_required" => Outcome::PaymentFailed,
        "charge.refunded" | "refund.created" | "refund.updated" => Outcome::Refunded,
        "customer.deleted" => Outcome::CustomerDeleted,
        "customer.created" | "customer.updated" => Outcome::CustomerChanged,
        "checkout.session.completed" => {
            if text(object, "payment_status").as_deref() == Some("unpaid") {
                // Delayed payment methods: wait for async_payment_succeeded.
                Outcome::CheckoutCompleted
            } else {
                Outcome::PaymentSucceeded
            }
        }
        t if t.starts_with("customer.subscription.") => Outcome::SubscriptionChanged,
        t if t.starts_with("charge.dispute.") => Outcome::Disputed,
        _ => Outcome::Other,
    }
}

/// Invoice lines: `pricing.price_details` since basil, `price` before.
fn invoice_products(invoice: &Value) -> Vec<ProductRef> {
    let Some(lines) = at(invoice, "lines.data").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut products: Vec<ProductRef> = Vec::new();
    for line in lines {
        let product = ProductRef {
            price_id: id_ref(line, "pricing.price_details.price").or_else(|| id_ref(line, "price")),
            product_id: id_ref(line, "pricing.price_details.product")
                .or_else(|| id_ref(line, "price.product")),
            name: None,
        };
        if !products.contains(&product) {
            products.push(product);
        }
    }
    products
}

fn subscription_products(subscription: &Value) -> Vec<ProductRef> {
    let Some(items) = at(subscription, "items.data").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| ProductRef {
            price_id: id_ref(item, "price"),
            product_id: id_ref(item, "price.product"),
            name: text(item, "price.product.name").or_else(|| text(item, "price.nickname")),
        })
        .collect()
}

/// The recurring amount of a subscription (sum of unit amount × quantity).
fn subscription_amount(subscription: &Value) -> Option<Money> {
    let items = at(subscription, "items.data").and_then(Value::as_array)?;
    let currency = text(subscription, "currency")
        .or_else(|| items.first().and_then(|i| text(i, "price.currency")))?;
    let total = items
        .iter()
        .map(|i| int(i, "price.unit_amount").unwrap_or(0) * int(i, "quantity").unwrap_or(1))
        .sum();
    Some(Money::new(total, &currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/stripe/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn fact(name: &str) -> PaymentFact {
        normalise(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn both_api_versions_give_the_same_fact() {
        for name in [
            "charge.succeeded.json",
            "customer.subscription.updated.json",
            "invoice.paid.json",
            "invoice.payment_failed.json",
        ] {
            let current = fact(name);
            let legacy = fact(&format!("legacy-2024-06-20/{name}"));
            assert_eq!(current, legacy, "{name}");
        }
    }

    #[test]
    fn invoice_paid_for_a_new_subscription() {
        let f = fact("invoice.paid.json");
        assert_eq!(f.outcome, Outcome::PaymentSucceeded);
        assert_eq!(
            f.customer.as_ref().map(|c| c.as_str()),
            Some("cus_T7aLp4qZ9cXn2W")
        );
        assert_eq!(f.email.as_deref(), Some("ada.lovelace@example.com"));
        assert_eq!(f.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(f.amount, Some(Money::new(4900, "usd")));
        let invoice = f.invoice.expect("invoice facts");
        assert_eq!(
            invoice.billing_reason.as_deref(),
            Some("subscription_create")
        );
        assert_eq!(invoice.attempt_count, Some(1));
        assert_eq!(
            f.subscription.map(|s| s.id).as_deref(),
            Some("sub_1S4kPqQmT3xK8rLv0cH2mN5a")
        );
        assert_eq!(
            f.products[0].product_id.as_deref(),
            Some("prod_T7aL2pWq8sYv3N")
        );
        assert_eq!(f.occurred_at, 1788257651);
    }

    #[test]
    fn failed_renewal_uses_the_invoice_email_not_the_card() {
        let f = fact("invoice.payment_failed.json");
        assert_eq!(f.outcome, Outcome::PaymentFailed);
        assert_eq!(
            f.email.as_deref(),
            Some("ada@analytical-engines.example.org")
        );
        let invoice = f.invoice.expect("invoice");
        assert_eq!(
            invoice.billing_reason.as_deref(),
            Some("subscription_cycle")
        );
        assert_eq!(invoice.next_payment_attempt, Some(1791112800));
        let charge = fact("charge.failed.json");
        assert_eq!(
            charge.email, None,
            "a charge's billing email is the card's, not trusted"
        );
        assert_eq!(
            charge.charge.and_then(|c| c.failure_code).as_deref(),
            Some("card_declined")
        );
    }

    #[test]
    fn subscriptions_refunds_disputes_and_customers() {
        let s = fact("customer.subscription.updated.json");
        let sub = s.subscription.expect("subscription");
        assert_eq!(sub.status.as_deref(), Some("past_due"));
        assert_eq!(sub.previous_status.as_deref(), Some("active"));
        assert_eq!(s.products[0].name.as_deref(), Some("Pro (monthly)"));
        assert_eq!(s.amount, Some(Money::new(4900, "usd")));

        let r = fact("charge.refunded.json");
        assert_eq!(r.outcome, Outcome::Refunded);
        assert_eq!(r.amount_refunded, Some(Money::new(1000, "usd")));
        assert!(!r.charge.expect("charge").refunded, "partial refund");

        let d = fact("charge.dispute.created.json");
        assert_eq!(d.outcome, Outcome::Disputed);
        assert_eq!(d.customer, None);
        assert_eq!(d.email, None);

        let c = fact("customer.updated.json");
        assert_eq!(
            c.email.as_deref(),
            Some("ada@analytical-engines.example.org")
        );
        assert_eq!(
            c.customer_metadata.get("app_user_id").map(String::as_str),
            Some("usr_4821")
        );

        let deleted = fact("customer.subscription.deleted.json");
        let sub = deleted.subscription.expect("subscription");
        assert_eq!(sub.status.as_deref(), Some("canceled"));
        assert_eq!(sub.cancellation_reason.as_deref(), Some("payment_failed"));

        let checkout = fact("checkout.session.completed.json");
        assert_eq!(checkout.outcome, Outcome::PaymentSucceeded);
        assert_eq!(checkout.email.as_deref(), Some("ada.lovelace@example.com"));
    }
}
