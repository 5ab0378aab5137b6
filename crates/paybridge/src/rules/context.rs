//! The template and expression context: a sanitised view of one event.
//!
//! Built field by field from the normalised fact (never from the raw payload), so what a
//! rule can see is exactly what is listed here: no card numbers, fingerprints, billing
//! addresses or payment-method details can reach a template, a HubSpot note or a Slack
//! message.
//!
//! ```text
//! event        { id, type, created (unix s), created_iso, livemode }
//! customer     { id, email, name, metadata {…} }      the profile's values win over the event's
//! amount       major units as a number (49 / 49.5), amount_minor (4900), currency ("usd"),
//! amount_formatted ("$49.00")                          null when the event has no amount
//! refund       { id, amount, amount_formatted, status, failure_reason, reason } | null
//!              (this refund: a charge.refunded's delta, or the refund object's amount)
//! dispute      { id, amount, amount_formatted, reason, status, evidence_due_by,
//!                evidence_due_by_iso } | null
//! invoice      { id, billing_reason, attempt_count, next_payment_attempt, status,
//!                hosted_invoice_url, amount_paid, amount_due, total, first_payment } | null
//! subscription { id, status, previous_status, cancel_at_period_end, cancel_at,
//!                cancel_at_iso, canceled_at, ended_at, trial_end, cancellation_reason,
//!                cancellation_feedback, cancellation_comment } | null
//! charge       { id, status, failure_code, failure_message, refunded } | null
//! products     [ { id, price_id, name } ]
//! product      the first of products | null
//! ```
//!
//! Every top-level key is always present (null when the event has no such object), so
//! `invoice.billing_reason` is simply empty for a charge event instead of an error.

use serde_json::{Map, Value, json};

use crate::domain::{CustomerProfile, Money, PaymentFact, time};

pub fn context(fact: &PaymentFact, profile: &CustomerProfile) -> Value {
    let mut metadata = fact.customer_metadata.clone();
    metadata.extend(profile.metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
    let customer = json!({
        "id": profile
            .id
            .clone()
            .or_else(|| fact.customer.as_ref().map(|c| c.as_str().to_owned())),
        "email": profile.email.clone().or_else(|| fact.email.clone()),
        "name": profile.name.clone().or_else(|| fact.name.clone()),
        "metadata": metadata,
    });
    let event = json!({
        "id": fact.event_id.as_str(),
        "type": fact.event_type,
        "created": fact.occurred_at,
        "created_iso": time::rfc3339(fact.occurred_at.saturating_mul(1000)),
        "livemode": fact.livemode,
    });
    let products: Vec<Value> = fact
        .products
        .iter()
        .map(|p| json!({ "id": p.product_id, "price_id": p.price_id, "name": p.name }))
        .collect();
    let currency = fact
        .amount
        .as_ref()
        .or(fact.amount_refunded.as_ref())
        .map(|m| m.currency.clone());

    let mut c = Map::new();
    c.insert("event".into(), event);
    c.insert("customer".into(), customer);
    c.insert(
        "amount".into(),
        fact.amount.as_ref().map_or(Value::Null, major_number),
    );
    c.insert(
        "amount_minor".into(),
        json!(fact.amount.as_ref().map(|m| m.minor)),
    );
    c.insert("currency".into(), json!(currency));
    c.insert(
        "amount_formatted".into(),
        json!(fact.amount.as_ref().map(Money::display)),
    );
    c.insert("refund".into(), refund(fact));
    c.insert("dispute".into(), dispute(fact));
    c.insert("invoice".into(), invoice(fact));
    c.insert("subscription".into(), subscription(fact));
    c.insert(
        "charge".into(),
        fact.charge.as_ref().map_or(Value::Null, |ch| {
            json!({
                "id": ch.id,
                "status": ch.status,
                "failure_code": ch.failure_code,
                "failure_message": ch.failure_message,
                "refunded": ch.refunded,
            })
        }),
    );
    c.insert(
        "product".into(),
        products.first().cloned().unwrap_or(Value::Null),
    );
    c.insert("products".into(), Value::Array(products));
    Value::Object(c)
}

fn amount(m: Option<&Money>) -> Value {
    m.map_or(Value::Null, major_number)
}

fn iso(secs: Option<i64>) -> Value {
    json!(secs.and_then(|s| time::rfc3339(s.saturating_mul(1000))))
}

fn refund(fact: &PaymentFact) -> Value {
    fact.refund.as_ref().map_or(Value::Null, |r| {
        json!({
            "id": r.id,
            "amount": amount(r.amount.as_ref()),
            "amount_formatted": r.amount.as_ref().map(Money::display),
            "status": r.status,
            "failure_reason": r.failure_reason,
            "reason": r.reason,
        })
    })
}

fn dispute(fact: &PaymentFact) -> Value {
    fact.dispute.as_ref().map_or(Value::Null, |d| {
        json!({
            "id": d.id,
            "amount": amount(d.amount.as_ref()),
            "amount_formatted": d.amount.as_ref().map(Money::display),
            "reason": d.reason,
            "status": d.status,
            "evidence_due_by": d.evidence_due_by,
            "evidence_due_by_iso": iso(d.evidence_due_by),
        })
    })
}

fn invoice(fact: &PaymentFact) -> Value {
    fact.invoice.as_ref().map_or(Value::Null, |i| {
        json!({
            "id": i.id,
            "billing_reason": i.billing_reason,
            "attempt_count": i.attempt_count,
            "next_payment_attempt": i.next_payment_attempt,
            "status": i.status,
            "hosted_invoice_url": i.hosted_invoice_url,
            "amount_paid": amount(i.amount_paid.as_ref()),
            "amount_due": amount(i.amount_due.as_ref()),
            "total": amount(i.total.as_ref()),
            "first_payment": i.first_payment,
        })
    })
}

fn subscription(fact: &PaymentFact) -> Value {
    fact.subscription.as_ref().map_or(Value::Null, |s| {
        json!({
            "id": s.id,
            "status": s.status,
            "previous_status": s.previous_status,
            "cancel_at_period_end": s.cancel_at_period_end,
            "cancel_at": s.cancel_at,
            "cancel_at_iso": iso(s.cancel_at),
            "canceled_at": s.canceled_at,
            "ended_at": s.ended_at,
            "trial_end": s.trial_end,
            "cancellation_reason": s.cancellation_reason,
            "cancellation_feedback": s.cancellation_feedback,
            "cancellation_comment": s.cancellation_comment,
        })
    })
}

/// Major units as a JSON number: whole amounts as integers (`49`), others as decimals
/// (`49.5`), so `{{ amount }}` reads naturally and `amount >= 1000` compares.
fn major_number(money: &Money) -> Value {
    let scale = 10i64.pow(money.decimals());
    if money.minor % scale == 0 {
        return json!(money.minor / scale);
    }
    money
        .major_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// A context with every field filled, used at config load to try each template and
/// expression once (which finds unknown filters and functions before any event arrives).
pub(crate) fn sample() -> Value {
    let Ok(event_id) = crate::domain::EventId::parse("evt_sample") else {
        return Value::Null;
    };
    let fact = PaymentFact {
        event_id,
        event_type: "invoice.paid".into(),
        occurred_at: 1_788_257_651,
        livemode: false,
        customer: crate::domain::CustomerId::parse("cus_sample").ok(),
        email: Some("ada@example.com".into()),
        fallback_email: Some("ada@example.com".into()),
        name: Some("Ada Lovelace".into()),
        customer_metadata: [("tier".to_owned(), "pro".to_owned())].into(),
        object_kind: "invoice".into(),
        object_id: Some("in_sample".into()),
        metadata: Default::default(),
        changed: Vec::new(),
        outcome: crate::domain::Outcome::PaymentSucceeded,
        amount: Some(Money::new(4900, "usd")),
        amount_refunded: Some(Money::new(0, "usd")),
        refund: Some(crate::domain::RefundFacts {
            id: Some("re_sample".into()),
            amount: Some(Money::new(1000, "usd")),
            status: Some("succeeded".into()),
            failure_reason: Some("declined".into()),
            reason: Some("requested_by_customer".into()),
            charge: Some("ch_sample".into()),
        }),
        dispute: Some(crate::domain::DisputeFacts {
            id: "dp_sample".into(),
            amount: Some(Money::new(4900, "usd")),
            reason: Some("fraudulent".into()),
            status: Some("needs_response".into()),
            evidence_due_by: Some(1_789_000_000),
            charge: Some("ch_sample".into()),
        }),
        products: vec![crate::domain::ProductRef {
            product_id: Some("prod_sample".into()),
            price_id: Some("price_sample".into()),
            name: Some("Pro".into()),
        }],
        subscription: Some(crate::domain::SubscriptionFacts {
            id: "sub_sample".into(),
            status: Some("active".into()),
            previous_status: Some("trialing".into()),
            cancel_at_period_end: Some(false),
            cancel_at: Some(1_790_000_000),
            canceled_at: Some(1_788_000_000),
            ended_at: None,
            cancellation_reason: Some("cancellation_requested".into()),
            cancellation_feedback: Some("too_expensive".into()),
            cancellation_comment: Some("sample".into()),
            trial_end: Some(1_788_000_000),
        }),
        invoice: Some(crate::domain::InvoiceFacts {
            id: "in_sample".into(),
            billing_reason: Some("subscription_create".into()),
            attempt_count: Some(1),
            next_payment_attempt: None,
            status: Some("paid".into()),
            hosted_invoice_url: Some("https://invoice.stripe.com/i/sample".into()),
            amount_paid: Some(Money::new(4900, "usd")),
            amount_due: Some(Money::new(4900, "usd")),
            total: Some(Money::new(4900, "usd")),
            first_payment: true,
        }),
        charge: Some(crate::domain::ChargeFacts {
            id: "ch_sample".into(),
            status: Some("succeeded".into()),
            failure_code: None,
            failure_message: None,
            refunded: false,
        }),
    };
    context(&fact, &CustomerProfile::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::normalise;

    fn fixture(path: &std::path::Path) -> PaymentFact {
        normalise(&std::fs::read(path).expect("fixture readable")).expect("fixture normalises")
    }

    fn fixtures() -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for dir in ["fixtures/stripe", "fixtures/stripe/legacy-2024-06-20"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
                let path = entry.expect("dir entry").path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name.ends_with(".json") && name != "signature-vectors.json" {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn no_card_data_reaches_the_context_of_any_fixture() {
        let forbidden = [
            "4242",
            "fingerprint",
            "last4",
            "exp_month",
            "exp_year",
            "payment_method",
            "line1",
            "line2",
            "postal_code",
            "SW1Y",
            "address",
            "brand",
            "cvc",
        ];
        let files = fixtures();
        assert!(files.len() >= 18, "{files:?}");
        for path in files {
            let raw = std::fs::read_to_string(&path).expect("fixture");
            let text = context(&fixture(&path), &CustomerProfile::default()).to_string();
            for word in forbidden {
                assert!(
                    !text.to_lowercase().contains(&word.to_lowercase()),
                    "{} leaks `{word}`: {text}",
                    path.display()
                );
            }
            // The fixtures do carry card data: the test would catch it.
            if path.ends_with("charge.succeeded.json") {
                assert!(raw.contains("4242") && raw.contains("fingerprint"));
            }
        }
    }

    #[test]
    fn shape_of_an_invoice_paid_context() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/stripe/invoice.paid.json");
        let profile = CustomerProfile {
            name: Some("Ada King".into()),
            metadata: [("tier".to_owned(), "enterprise".to_owned())].into(),
            ..CustomerProfile::default()
        };
        let c = context(&fixture(&path), &profile);
        assert_eq!(c["event"]["type"], "invoice.paid");
        assert_eq!(c["event"]["created_iso"], "2026-09-01T10:14:11Z");
        assert_eq!(c["customer"]["id"], "cus_T7aLp4qZ9cXn2W");
        assert_eq!(c["customer"]["email"], "ada.lovelace@example.com");
        assert_eq!(c["customer"]["name"], "Ada King", "the profile wins");
        assert_eq!(c["customer"]["metadata"]["tier"], "enterprise");
        assert_eq!(c["amount"], 49);
        assert_eq!(c["amount_minor"], 4900);
        assert_eq!(c["currency"], "usd");
        assert_eq!(c["amount_formatted"], "$49.00");
        assert_eq!(c["invoice"]["billing_reason"], "subscription_create");
        assert_eq!(c["subscription"]["id"], "sub_1S4kPqQmT3xK8rLv0cH2mN5a");
        assert_eq!(c["product"]["id"], "prod_T7aL2pWq8sYv3N");
        assert_eq!(c["charge"], Value::Null);
        let mut keys: Vec<&String> = c.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "amount",
                "amount_formatted",
                "amount_minor",
                "charge",
                "currency",
                "customer",
                "dispute",
                "event",
                "invoice",
                "product",
                "products",
                "refund",
                "subscription"
            ]
        );
        let sample = sample();
        let mut sample_keys: Vec<&String> = sample.as_object().expect("object").keys().collect();
        sample_keys.sort();
        assert_eq!(sample_keys, keys);
    }

    #[test]
    fn amounts_as_numbers() {
        assert_eq!(major_number(&Money::new(4950, "usd")), json!(49.5));
        assert_eq!(major_number(&Money::new(5000, "jpy")), json!(5000));
        assert_eq!(major_number(&Money::new(-1000, "usd")), json!(-10));
    }
}
