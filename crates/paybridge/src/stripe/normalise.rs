//! A Stripe event (either API-version rendering, or a thin event's fetched object) → one
//! `PaymentFact`.
//!
//! Where the email comes from matters (research/stripe.md §4): customers carry `email`,
//! invoices `customer_email`, Checkout sessions `customer_details.email`. Charges carry the
//! email the payment was made with (`receipt_email`, the card's `billing_details.email`),
//! which may be stale: it is the fact's `fallback_email`, used only when the worker knows
//! nothing better (its memory of the customer, Stripe's API). Disputes carry none.

use std::collections::BTreeMap;

use serde_json::Value;

use super::event::customer_of;
use crate::domain::{
    ChargeFacts, DisputeFacts, EventId, InvoiceFacts, Money, Outcome, PaymentFact, ProductRef,
    RefundFacts, SubscriptionFacts,
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
    normalise_value(&event)
}

/// [`normalise`] of an event already parsed (a thin event's snapshot shape, see `thin`).
pub fn normalise_value(event: &Value) -> Result<PaymentFact, NormaliseError> {
    let id = text(event, "id").ok_or_else(|| NormaliseError("no id".into()))?;
    let event_id = EventId::parse(&id).map_err(|e| NormaliseError(e.to_string()))?;
    let event_type = text(event, "type").ok_or_else(|| NormaliseError("no type".into()))?;
    let object = at(event, "data.object")
        .filter(|o| o.is_object())
        .ok_or_else(|| NormaliseError("no data.object".into()))?;
    let object_kind = text(object, "object").unwrap_or_default();

    let mut fact = PaymentFact {
        event_id,
        occurred_at: int(event, "created").unwrap_or_default(),
        livemode: at(event, "livemode")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        customer: customer_of(object),
        email: None,
        fallback_email: None,
        name: None,
        customer_metadata: BTreeMap::new(),
        object_id: text(object, "id"),
        metadata: string_map(object.get("metadata")),
        changed: at(event, "data.previous_attributes")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        outcome: outcome_of(&event_type, object),
        amount: None,
        amount_refunded: None,
        refund: None,
        dispute: None,
        products: Vec::new(),
        subscription: None,
        invoice: None,
        charge: None,
        object_kind: object_kind.clone(),
        event_type,
    };

    read_object(&mut fact, event, object);
    for email in [&mut fact.email, &mut fact.fallback_email] {
        if let Some(e) = email {
            *e = e.trim().to_ascii_lowercase();
        }
        if email
            .as_deref()
            .is_some_and(|e| e.is_empty() || e.len() > 254)
        {
            *email = None;
        }
    }
    Ok(fact)
}

/// The fields of the event's object, by its kind, into `fact`.
///
/// Where the email comes from, best first (issue "every contact gets an email"): the
/// customer object's `email`, the invoice's `customer_email`, the Checkout session's
/// `customer_details.email` (stripe-node `Checkout/Sessions.d.ts`: "When a Customer is not
/// created, you can still retrieve email … with customer_details"); a charge's
/// `receipt_email` then `billing_details.email` (`Charges.d.ts`) only as a fallback.
fn read_object(fact: &mut PaymentFact, event: &Value, object: &Value) {
    match fact.object_kind.as_str() {
        "customer" => {
            fact.email = text(object, "email");
            fact.name = text(object, "name");
            fact.customer_metadata = fact.metadata.clone();
        }
        "invoice" => read_invoice(fact, object),
        "subscription" => read_subscription(fact, event, object),
        "charge" => read_charge(fact, event, object),
        "refund" => read_refund(fact, object),
        "payment_intent" => {
            fact.amount = money(object, "amount");
            fact.fallback_email = text(object, "receipt_email");
        }
        "checkout.session" => {
            fact.email =
                text(object, "customer_details.email").or_else(|| text(object, "customer_email"));
            fact.name = text(object, "customer_details.name");
            fact.amount = money(object, "amount_total");
            fact.subscription = id_ref(object, "subscription").map(|id| SubscriptionFacts {
                id,
                ..SubscriptionFacts::default()
            });
        }
        "dispute" => read_dispute(fact, object),
        _ => {}
    }
}

/// An invoice: its own amounts (`amount_paid`, `amount_due`, `total`; stripe-node
/// `Invoices.d.ts`), never a price × quantity (tiered prices have no unit amount).
fn read_invoice(fact: &mut PaymentFact, object: &Value) {
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
        amount_paid: money(object, "amount_paid"),
        amount_due: money(object, "amount_due"),
        total: money(object, "total"),
        first_payment: false,
    });
    // Basil moved the subscription under `parent`; older versions have it on top.
    let subscription = id_ref(object, "parent.subscription_details.subscription")
        .or_else(|| id_ref(object, "subscription"));
    fact.subscription = subscription.map(|id| SubscriptionFacts {
        id,
        ..SubscriptionFacts::default()
    });
}

/// A subscription, with its scheduled cancellation (`cancel_at`, set while
/// `cancel_at_period_end` stays false since basil: docs.stripe.com/changelog/basil/
/// 2025-07-30/cancel-at-enums) and every cancellation detail (stripe-node
/// `Subscriptions.d.ts` `cancellation_details {comment, feedback, reason}`).
fn read_subscription(fact: &mut PaymentFact, event: &Value, object: &Value) {
    fact.products = subscription_products(object);
    fact.amount = subscription_amount(object);
    fact.subscription = Some(SubscriptionFacts {
        id: text(object, "id").unwrap_or_default(),
        status: text(object, "status"),
        previous_status: text(event, "data.previous_attributes.status"),
        cancel_at_period_end: at(object, "cancel_at_period_end").and_then(Value::as_bool),
        cancel_at: int(object, "cancel_at"),
        canceled_at: int(object, "canceled_at"),
        ended_at: int(object, "ended_at"),
        cancellation_reason: text(object, "cancellation_details.reason"),
        cancellation_feedback: text(object, "cancellation_details.feedback"),
        cancellation_comment: text(object, "cancellation_details.comment"),
        trial_end: int(object, "trial_end"),
    });
}

/// A charge. `amount_refunded` is the running total ("can be less than the amount
/// attribute on the charge if a partial refund was issued", `Charges.d.ts`); the amount
/// of *this* refund is the rise since `previous_attributes.amount_refunded`.
fn read_charge(fact: &mut PaymentFact, event: &Value, object: &Value) {
    fact.amount = money(object, "amount");
    fact.amount_refunded = money(object, "amount_refunded");
    fact.fallback_email =
        text(object, "receipt_email").or_else(|| text(object, "billing_details.email"));
    let id = text(object, "id").unwrap_or_default();
    if fact.outcome == Outcome::Refunded
        && let Some(total) = &fact.amount_refunded
    {
        let before = int(event, "data.previous_attributes.amount_refunded").unwrap_or(0);
        fact.refund = Some(RefundFacts {
            amount: Some(Money::new(total.minor - before, &total.currency)),
            charge: Some(id.clone()),
            ..RefundFacts::default()
        });
    }
    fact.charge = Some(ChargeFacts {
        id,
        status: text(object, "status"),
        failure_code: text(object, "failure_code"),
        failure_message: text(object, "failure_message"),
        refunded: at(object, "refunded")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    });
}

/// A refund object (`Refunds.d.ts`: `status` "pending, requires_action, succeeded,
/// failed, or canceled", `failure_reason`).
fn read_refund(fact: &mut PaymentFact, object: &Value) {
    fact.amount_refunded = money(object, "amount");
    let charge = id_ref(object, "charge");
    fact.refund = Some(RefundFacts {
        id: text(object, "id"),
        amount: money(object, "amount"),
        status: text(object, "status"),
        failure_reason: text(object, "failure_reason"),
        reason: text(object, "reason"),
        charge: charge.clone(),
    });
    fact.charge = charge.map(|id| ChargeFacts {
        id,
        ..ChargeFacts::default()
    });
}

/// A dispute carries `charge` and `payment_intent`, no customer and no email
/// (`Disputes.d.ts`); the worker finds the customer through the charge.
fn read_dispute(fact: &mut PaymentFact, object: &Value) {
    fact.amount = money(object, "amount");
    let charge = id_ref(object, "charge");
    fact.dispute = Some(DisputeFacts {
        id: text(object, "id").unwrap_or_default(),
        amount: money(object, "amount"),
        reason: text(object, "reason"),
        status: text(object, "status"),
        // "Will be 0 if the customer's bank … doesn't allow a response".
        evidence_due_by: int(object, "evidence_details.due_by").filter(|t| *t > 0),
        charge: charge.clone(),
    });
    fact.charge = charge.map(|id| ChargeFacts {
        id,
        ..ChargeFacts::default()
    });
}

/// What happened. A refund counts only when its own status says the money went back
/// (`succeeded`, or `pending` on its way); `refund.failed` ("Occurs whenever a refund has
/// failed", stripe-node `Events.d.ts`) and failed or cancelled refunds are not refunds.
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
        "charge.refunded" => Outcome::Refunded,
        "refund.failed" => Outcome::RefundFailed,
        "refund.created" | "refund.updated" | "charge.refund.updated" => {
            match text(object, "status").as_deref() {
                Some("failed" | "canceled") => Outcome::RefundFailed,
                Some("succeeded" | "pending") | None => Outcome::Refunded,
                Some(_) => Outcome::Other,
            }
        }
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
            name: text(line, "price.product.name"),
        };
        if !products.contains(&product) {
            products.push(product);
        }
    }
    products
}

/// Webhooks never expand `price.product` (research S7), so without the API the name is
/// the price's `nickname`, then its `lookup_key`; the worker asks the API when it can.
fn subscription_products(subscription: &Value) -> Vec<ProductRef> {
    let Some(items) = at(subscription, "items.data").and_then(Value::as_array) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| ProductRef {
            price_id: id_ref(item, "price"),
            product_id: id_ref(item, "price.product"),
            name: text(item, "price.product.name")
                .or_else(|| text(item, "price.nickname"))
                .or_else(|| text(item, "price.lookup_key")),
        })
        .collect()
}

/// The recurring amount of a subscription, only when the subscription itself states it:
/// every item priced per unit (`billing_scheme = per_unit`, licensed) and no discount.
/// Tiered and metered prices have no `unit_amount` ("Only set if billing_scheme=per_unit",
/// `Prices.d.ts`) and discounts change the total: then None, and the amount comes from the
/// invoice's own amounts.
fn subscription_amount(subscription: &Value) -> Option<Money> {
    let items = at(subscription, "items.data").and_then(Value::as_array)?;
    let discounted = at(subscription, "discounts")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty())
        || at(subscription, "discount").is_some();
    if discounted {
        return None;
    }
    let currency = text(subscription, "currency")
        .or_else(|| items.first().and_then(|i| text(i, "price.currency")))?;
    let mut total = 0;
    for item in items {
        let per_unit = text(item, "price.billing_scheme").is_none_or(|s| s == "per_unit");
        let metered = text(item, "price.recurring.usage_type").as_deref() == Some("metered");
        if !per_unit || metered {
            return None;
        }
        total += int(item, "price.unit_amount")? * int(item, "quantity").unwrap_or(1);
    }
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
            "a charge's billing email is the card's, only a fallback"
        );
        assert_eq!(
            charge.fallback_email.as_deref(),
            Some("ada.lovelace@example.com"),
            "billing_details.email, the old address"
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
        assert_eq!(
            r.refund.as_ref().and_then(|r| r.amount.clone()),
            Some(Money::new(1000, "usd"))
        );
        assert!(!r.charge.expect("charge").refunded, "partial refund");

        let d = fact("charge.dispute.created.json");
        assert_eq!(d.outcome, Outcome::Disputed);
        assert_eq!(d.customer, None);
        assert_eq!(d.email, None);
        assert_eq!(
            d.dispute.as_ref().map(|d| d.reason.as_deref()),
            Some(Some("fraudulent"))
        );

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

    fn story(name: &str) -> PaymentFact {
        fact(&format!("story-2/{name}"))
    }

    #[test]
    fn guests_pay_with_an_email_and_no_customer() {
        let checkout = story("checkout.session.completed.guest.json");
        assert_eq!(checkout.customer, None);
        assert_eq!(
            checkout.email.as_deref(),
            Some("charles.babbage@example.com")
        );
        assert_eq!(checkout.outcome, Outcome::PaymentSucceeded);
        let charge = story("charge.succeeded.guest.json");
        assert_eq!(charge.customer, None);
        assert_eq!(charge.email, None);
        assert_eq!(
            charge.fallback_email.as_deref(),
            Some("charles.babbage@example.com")
        );
    }

    #[test]
    fn each_refund_is_its_own_amount_and_failures_are_not_refunds() {
        let first = story("charge.refunded.partial-1.json");
        let second = story("charge.refunded.partial-2.json");
        assert_eq!(
            second.amount_refunded,
            Some(Money::new(1900, "usd")),
            "running total"
        );
        assert_eq!(
            first.refund.and_then(|r| r.amount),
            Some(Money::new(900, "usd"))
        );
        assert_eq!(
            second.refund.and_then(|r| r.amount),
            Some(Money::new(1000, "usd")),
            "1900 - previous 900"
        );
        let created = story("refund.created.partial-1.json");
        assert_eq!(created.outcome, Outcome::Refunded);
        assert_eq!(
            created.refund.and_then(|r| r.amount),
            Some(Money::new(900, "usd"))
        );
        let failed = story("refund.failed.json");
        assert_eq!(failed.outcome, Outcome::RefundFailed);
        let refund = failed.refund.expect("refund");
        assert_eq!(refund.status.as_deref(), Some("failed"));
        assert_eq!(
            refund.failure_reason.as_deref(),
            Some("expired_or_canceled_card")
        );
        assert_eq!(refund.amount, Some(Money::new(1000, "usd")));
    }

    #[test]
    fn a_trial_invoice_is_zero_and_a_tiered_price_has_no_unit_amount() {
        let trial = story("invoice.paid.trial.json");
        let invoice = trial.invoice.expect("invoice");
        assert_eq!(invoice.amount_paid, Some(Money::new(0, "usd")));
        assert_eq!(
            invoice.billing_reason.as_deref(),
            Some("subscription_create")
        );
        let tiered = story("customer.subscription.created.tiered.json");
        assert_eq!(
            tiered.amount, None,
            "no unit_amount × quantity for a tiered price"
        );
        assert_eq!(
            tiered.products[0].name.as_deref(),
            Some("team_monthly_volume"),
            "lookup key"
        );
        let paid = story("invoice.paid.tiered.json");
        assert_eq!(
            paid.amount,
            Some(Money::new(18000, "usd")),
            "the invoice's own amount"
        );
    }

    #[test]
    fn cancellations_disputes_and_accounts_v2() {
        let s = story("customer.subscription.updated.cancel_at.json");
        let sub = s.subscription.expect("subscription");
        assert_eq!(sub.cancel_at, Some(1795684500));
        assert_eq!(sub.cancel_at_period_end, Some(false));
        assert_eq!(
            sub.cancellation_reason.as_deref(),
            Some("cancellation_requested")
        );
        assert_eq!(
            sub.cancellation_feedback.as_deref(),
            Some("switched_service")
        );
        assert_eq!(
            sub.cancellation_comment.as_deref(),
            Some("Moving the team to another tool.")
        );
        let d = story("charge.dispute.created.guest.json");
        let dispute = d.dispute.expect("dispute");
        assert_eq!(dispute.evidence_due_by, Some(1794527999));
        assert_eq!(dispute.status.as_deref(), Some("needs_response"));
        assert_eq!(
            dispute.charge.as_deref(),
            Some("ch_3SHk1MQmT3xK8rLv1nW3eR5t")
        );
        let both = story("invoice.paid.customer-account.json");
        assert_eq!(
            both.customer.map(|c| c.to_string()).as_deref(),
            Some("cus_TDm8Hl2Qw4Er6T")
        );
        let mut only_account: Value =
            serde_json::from_slice(&fixture("story-2/invoice.paid.customer-account.json"))
                .expect("JSON");
        only_account["data"]["object"]["customer"] = Value::Null;
        let f = normalise_value(&only_account).expect("fact");
        assert_eq!(
            f.customer.map(|c| c.to_string()).as_deref(),
            Some("acct_1SM2xKQmT3xK8rLvHl"),
            "customer_account where customer is absent"
        );
    }
}
