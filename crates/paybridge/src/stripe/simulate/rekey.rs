//! Re-keying a fixture for one customer's story: fresh ids for the objects of the story,
//! the chosen customer, email and amount, timestamps moved with the event's `created`.

use std::collections::HashMap;

use rand::Rng as _;
use serde_json::Value;

use super::{FIXTURE_AMOUNT, FIXTURES, PER_CUSTOMER_PREFIXES, SimOptions, TIMESTAMPS};

/// Old fixture id → new id, shared by every event of one build or story.
pub(super) struct Rekey {
    ids: HashMap<String, String>,
    product: Option<String>,
}

impl Rekey {
    pub(super) fn new(opts: &SimOptions) -> Self {
        Self {
            ids: HashMap::new(),
            product: opts.product.clone(),
        }
        .with_customer(&opts.customer)
    }

    fn with_customer(mut self, customer: &str) -> Self {
        // The fixtures tell one customer's story: every `cus_` id in them is that customer.
        for (_, text) in FIXTURES {
            for token in tokens(text) {
                if token.starts_with("cus_") && is_id(token) {
                    self.ids.insert(token.to_owned(), customer.to_owned());
                }
            }
        }
        self
    }

    /// The new id for `old`, or None when `old` is not an id to re-key.
    fn map(&mut self, old: &str) -> Option<String> {
        if !is_id(old) {
            return None;
        }
        if let Some(new) = self.ids.get(old) {
            return Some(new.clone());
        }
        let prefix = prefix_of(old);
        let new = match (prefix, &self.product) {
            ("prod", Some(product)) => product.clone(),
            ("price", Some(_)) => fresh_id("price"),
            _ if PER_CUSTOMER_PREFIXES.contains(&prefix) => fresh_id(prefix),
            _ => return None,
        };
        self.ids.insert(old.to_owned(), new.clone());
        Some(new)
    }
}

/// `cs_test_abc` → `cs_test`, `in_abc` → `in`.
fn prefix_of(id: &str) -> &str {
    for two_part in ["cs_test", "cs_live"] {
        if id.starts_with(two_part) && id.as_bytes().get(two_part.len()) == Some(&b'_') {
            return two_part;
        }
    }
    id.split_once('_').map_or("", |(p, _)| p)
}

/// A Stripe-style id: a lowercase prefix, `_`, then at least 8 letters and digits (the
/// fixtures' app user id `usr_4821`, in metadata and `client_reference_id`, is shorter).
fn is_id(s: &str) -> bool {
    let prefix = prefix_of(s);
    let Some(rest) = s.get(prefix.len() + 1..) else {
        return false;
    };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && rest.len() >= if prefix == "usr" { 1 } else { 8 }
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The maximal runs of `[A-Za-z0-9_]` in `s` (ids inside URLs and descriptions).
fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
}

/// `{prefix}_sim` + 16 random letters and digits.
pub(super) fn fresh_id(prefix: &str) -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    format!("{prefix}_sim{random}")
}

fn is_money_key(key: &str) -> bool {
    key.contains("amount") || key.contains("total")
}

/// One event's walk through its JSON, replacing what belongs to the fixtures' customer.
pub(super) struct Walk<'a> {
    pub(super) rekey: &'a mut Rekey,
    pub(super) opts: &'a SimOptions,
    /// Added to every timestamp.
    pub(super) delta: i64,
    /// The fixtures' price as text (`$49.00`) and its replacement.
    pub(super) price_text: (String, String),
}

impl Walk<'_> {
    pub(super) fn value(&mut self, value: &mut Value, key: Option<&str>, previous: bool) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let previous = previous || k == "previous_attributes";
                    self.value(v, Some(k), previous);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.value(item, key, previous);
                }
            }
            Value::String(s) => {
                if let Some(new) = self.string(s, key.unwrap_or(""), previous) {
                    *s = new;
                }
            }
            Value::Number(n) => {
                if let Some(new) = n.as_i64().and_then(|n| self.integer(n, key.unwrap_or(""))) {
                    *value = new.into();
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    fn string(&mut self, s: &str, key: &str, previous: bool) -> Option<String> {
        if matches!(key, "email" | "customer_email" | "receipt_email") && s.contains('@') {
            return Some(if previous {
                // customer.updated: the address before the change.
                match self.opts.email.split_once('@') {
                    Some((local, domain)) => format!("{local}.previous@{domain}"),
                    None => format!("previous.{}", self.opts.email),
                }
            } else {
                self.opts.email.clone()
            });
        }
        if is_money_key(key) && s == FIXTURE_AMOUNT.to_string() {
            // `unit_amount_decimal`, `amount_decimal`
            return Some(self.opts.amount.to_string());
        }
        if let Some(new) = self.rekey.map(s) {
            return Some(new);
        }
        // Ids inside URLs (`/v1/invoices/in_…/lines`) and descriptions.
        let mut out = s.to_owned();
        let mut changed = false;
        let olds: Vec<String> = tokens(s)
            // A client secret is `{id}_secret_{random}`.
            .map(|t| t.split("_secret_").next().unwrap_or(t).to_owned())
            .collect();
        for old in olds {
            if let Some(new) = self.rekey.map(&old) {
                out = out.replace(&old, &new);
                changed = true;
            }
        }
        let (fixture_price, price) = &self.price_text;
        if out.contains(fixture_price.as_str()) {
            out = out.replace(fixture_price.as_str(), price);
            changed = true;
        }
        changed.then_some(out)
    }

    fn integer(&self, n: i64, key: &str) -> Option<i64> {
        if is_money_key(key) {
            return (n.abs() == FIXTURE_AMOUNT).then(|| n.signum() * self.opts.amount);
        }
        TIMESTAMPS.contains(&n).then_some(n + self.delta)
    }
}
