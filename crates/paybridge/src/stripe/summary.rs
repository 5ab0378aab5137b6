//! A payload summary safe to show an operator: what the event is about, never card data,
//! addresses or payment-method details.

use serde_json::{Map, Value, json};

use super::normalise;

pub fn summarise(payload: &[u8]) -> Value {
    let Ok(fact) = normalise(payload) else {
        return json!({ "error": "the payload is not a readable Stripe event" });
    };
    let mut out = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.insert(k.to_owned(), Value::String(v));
        }
    };
    put(
        "object",
        Some(format!(
            "{} {}",
            fact.object_kind,
            fact.object_id.clone().unwrap_or_default()
        )),
    );
    put("customer", fact.customer.as_ref().map(ToString::to_string));
    put("email", fact.email.clone());
    put("name", fact.name.clone());
    put("amount", fact.amount.as_ref().map(|m| m.display()));
    put(
        "refunded",
        fact.amount_refunded.as_ref().map(|m| m.display()),
    );
    put("livemode", Some(fact.livemode.to_string()));
    if let Some(s) = &fact.subscription {
        put("subscription", Some(s.id.clone()));
        put("subscription_status", s.status.clone());
    }
    if let Some(i) = &fact.invoice {
        put("billing_reason", i.billing_reason.clone());
        put("attempt_count", i.attempt_count.map(|n| n.to_string()));
    }
    if let Some(c) = &fact.charge {
        put("charge", Some(c.id.clone()));
        put("failure", c.failure_message.clone());
    }
    let products: Vec<String> = fact
        .products
        .iter()
        .filter_map(|p| p.name.clone().or_else(|| p.product_id.clone()))
        .collect();
    if !products.is_empty() {
        put("products", Some(products.join(", ")));
    }
    Value::Object(out)
}
