//! Stripe's current state of a customer → the contact properties paybridge would have
//! written from it, in the worker's own names and formats: each value is planned by the
//! built-in financial tagging (`rules::financial::plan`) from a Stripe-shaped event around
//! the object that decides it, so nothing about the properties is said twice.
//!
//! What decides each property (objects of the Stripe API, stripe-node `*.d.ts`):
//! - status and tier: the customer's current subscription (`GET /v1/subscriptions?
//!   status=all`), chosen as backfill chooses it (active, trialing, past_due, … newest
//!   first among equals); the tier is the product's name read from Stripe's API when known;
//! - last payment date and amount: the newest succeeded charge that took money
//!   (`GET /v1/charges`, `status: "succeeded"`, `amount > 0`), dated by its `created`;
//! - last failed payment: the newest `status: "failed"` charge;
//! - refund issued: any charge with `amount_refunded > 0`;
//! - lifetime value: paid minus refunded over the succeeded charges, in the currency of the
//!   newest charge (the worker's ledger, from Stripe's own list);
//! - delinquent: the customer's `delinquent` ("Tracks the most recent state change on any
//!   invoice belonging to the customer. Paying an invoice or marking it uncollectible via
//!   the API will set this field to false. An automatic payment failure or passing the
//!   `invoice.due_date` will set this field to `true`", stripe-node `Customers.d.ts`);
//! - email: the customer's `email`, lowercased as the worker reads it.
//!
//! A property Stripe's objects say nothing about (no subscription, no charge) is not
//! expected: an empty HubSpot value is then no drift.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::domain::Money;
use crate::rules::{Action, Extras, financial};
use crate::stripe::event::customer_of;
use crate::stripe::normalise_value;

/// What a customer's charges say, gathered from Stripe's list of charges.
#[derive(Debug, Clone, Default)]
pub struct Charges {
    /// The newest succeeded charge that took money.
    last_paid: Option<Value>,
    /// The newest failed charge.
    last_failed: Option<Value>,
    /// The newest charge with a refund.
    refunded: Option<Value>,
    /// Paid minus refunded, per currency (minor units).
    totals: BTreeMap<String, i64>,
    /// The currency of the newest charge, and its `created`.
    newest: Option<(i64, String)>,
    /// Each charge as the worker's ledger keeps it: paid (succeeded only) and refunded.
    ledger: Vec<LedgerEntry>,
}

/// One charge as the worker's ledger keeps it (minor units).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LedgerEntry {
    pub charge: String,
    pub currency: String,
    pub paid: i64,
    pub refunded: i64,
}

/// The fields of a charge the comparison reads (Stripe's objects are kilobytes; a run
/// keeps three per customer).
fn slim_charge(charge: &Value) -> Value {
    let mut slim = serde_json::Map::new();
    for key in [
        "id",
        "object",
        "customer",
        "created",
        "status",
        "amount",
        "amount_refunded",
        "currency",
        "refunded",
        "livemode",
    ] {
        if let Some(v) = charge.get(key) {
            slim.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(slim)
}

/// The fields of a subscription the comparison reads: status and the items' prices
/// (id, product id and name, nickname, lookup key).
fn slim_subscription(sub: &Value) -> Value {
    let items: Vec<Value> = sub
        .pointer("/items/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|item| {
            let price = item.get("price").cloned().unwrap_or(Value::Null);
            let product = match price.get("product") {
                Some(Value::Object(p)) => json!({"id": p.get("id"), "name": p.get("name")}),
                other => other.cloned().unwrap_or(Value::Null),
            };
            json!({"price": {"id": price.get("id"), "product": product,
                "nickname": price.get("nickname"), "lookup_key": price.get("lookup_key")}})
        })
        .collect();
    json!({
        "id": sub.get("id"), "object": "subscription", "customer": sub.get("customer"),
        "status": sub.get("status"), "created": sub.get("created"),
        "livemode": sub.get("livemode"), "items": {"data": items},
    })
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Keeps `charge` in `slot` when it is newer than what is there.
fn keep_newest(slot: &mut Option<Value>, charge: &Value) {
    if slot
        .as_ref()
        .is_none_or(|c| int(c, "created") < int(charge, "created"))
    {
        *slot = Some(slim_charge(charge));
    }
}

impl Charges {
    /// Enters one charge of the customer.
    pub fn add(&mut self, charge: &Value) {
        let created = int(charge, "created");
        let currency = text(charge, "currency")
            .unwrap_or("usd")
            .to_ascii_lowercase();
        let refunded = int(charge, "amount_refunded");
        match text(charge, "status") {
            Some("succeeded") => {
                let amount = int(charge, "amount");
                *self.totals.entry(currency.clone()).or_default() += amount - refunded;
                if amount > 0 {
                    keep_newest(&mut self.last_paid, charge);
                }
            }
            Some("failed") => keep_newest(&mut self.last_failed, charge),
            _ => {}
        }
        if refunded > 0 {
            keep_newest(&mut self.refunded, charge);
        }
        if let Some(id) = text(charge, "id") {
            let succeeded = text(charge, "status") == Some("succeeded");
            self.ledger.push(LedgerEntry {
                charge: id.to_owned(),
                currency: currency.clone(),
                paid: if succeeded { int(charge, "amount") } else { 0 },
                refunded,
            });
        }
        if self.newest.as_ref().is_none_or(|(c, _)| *c < created) {
            self.newest = Some((created, currency));
        }
    }
}

impl Charges {
    /// The charges as ledger entries (`charge`, `currency`, `paid`, `refunded`): a repair
    /// of the lifetime value enters them, so the next charge event adds to Stripe's total
    /// instead of to what webhooks brought.
    pub fn ledger(&self) -> &[LedgerEntry] {
        &self.ledger
    }
}

/// Every customer's charges, from the pages of Stripe's list.
#[derive(Debug, Default)]
pub struct ChargeBook(HashMap<String, Charges>);

impl ChargeBook {
    pub fn add_page(&mut self, charges: &[Value]) {
        for charge in charges {
            if let Some(customer) = customer_of(charge) {
                self.0.entry(customer.to_string()).or_default().add(charge);
            }
        }
    }

    pub fn of(&self, customer: &str) -> Option<&Charges> {
        self.0.get(customer)
    }
}

/// Each customer's current subscription, from the pages of Stripe's list.
#[derive(Debug, Default)]
pub struct SubscriptionBook(HashMap<String, (u8, i64, Value)>);

impl SubscriptionBook {
    pub fn add_page(&mut self, subscriptions: &[Value]) {
        for sub in subscriptions {
            let Some(customer) = customer_of(sub) else {
                continue;
            };
            let rank = crate::catchup::backfill::rank(text(sub, "status").unwrap_or(""));
            let created = int(sub, "created");
            let better = |(r, c, _): &(u8, i64, Value)| rank < *r || (rank == *r && created > *c);
            let slot = self.0.entry(customer.to_string());
            match slot {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    if better(o.get()) {
                        o.insert((rank, created, slim_subscription(sub)));
                    }
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((rank, created, slim_subscription(sub)));
                }
            }
        }
    }

    pub fn of(&self, customer: &str) -> Option<&Value> {
        self.0.get(customer).map(|(_, _, s)| s)
    }

    /// Every product id the current subscriptions name.
    pub fn product_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .0
            .values()
            .flat_map(|(_, _, s)| product_ids(s))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// The product ids a subscription's items name.
pub fn product_ids(subscription: &Value) -> Vec<String> {
    subscription
        .pointer("/items/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| match item.pointer("/price/product") {
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// The properties the financial tagging plans for a Stripe-shaped `kind` event around
/// `object` at `created` (with product names known from Stripe's API).
fn planned(
    kind: &str,
    object: &Value,
    created: i64,
    names: &HashMap<String, String>,
) -> BTreeMap<String, String> {
    let event = json!({
        "id": "evt_reconcile_expected",
        "object": "event",
        "created": created,
        "livemode": object.get("livemode").cloned().unwrap_or(Value::Bool(false)),
        "type": kind,
        "data": {"object": object},
    });
    let Ok(mut fact) = normalise_value(&event) else {
        return BTreeMap::new();
    };
    for product in &mut fact.products {
        if let Some(name) = product.product_id.as_ref().and_then(|id| names.get(id)) {
            product.name = Some(name.clone());
        }
    }
    match financial::plan(&fact, &Extras::default()).map(|s| s.action) {
        Some(Action::UpdateContact { properties, .. }) => properties,
        _ => BTreeMap::new(),
    }
}

/// Copies `names` from `from` into `into`.
fn take(into: &mut BTreeMap<String, String>, from: BTreeMap<String, String>, names: &[&str]) {
    for name in names {
        if let Some(v) = from.get(*name) {
            into.insert((*name).to_owned(), v.clone());
        }
    }
}

/// The contact properties Stripe's current state of `customer` gives.
pub fn expected(
    customer: &Value,
    subscription: Option<&Value>,
    charges: Option<&Charges>,
    product_names: &HashMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(email) = text(customer, "email")
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty())
    {
        out.insert("email".to_owned(), email);
    }
    if let Some(d) = customer.get("delinquent").and_then(Value::as_bool) {
        out.insert("stripe_delinquent".to_owned(), d.to_string());
    }
    if let Some(sub) = subscription {
        let props = planned(
            "customer.subscription.updated",
            sub,
            int(sub, "created"),
            product_names,
        );
        take(
            &mut out,
            props,
            &["stripe_subscription_status", "stripe_subscription_tier"],
        );
    }
    let Some(charges) = charges else {
        return out;
    };
    if let Some(c) = &charges.last_paid {
        let props = planned("charge.succeeded", c, int(c, "created"), product_names);
        take(
            &mut out,
            props,
            &["stripe_last_payment_date", "stripe_last_payment_amount"],
        );
    }
    if let Some(c) = &charges.last_failed {
        let props = planned("charge.failed", c, int(c, "created"), product_names);
        take(&mut out, props, &["stripe_last_payment_failed_date"]);
    }
    if let Some(c) = &charges.refunded {
        let props = planned("charge.refunded", c, int(c, "created"), product_names);
        take(&mut out, props, &["stripe_refund_issued"]);
    }
    if let Some((_, currency)) = &charges.newest {
        let total = charges.totals.get(currency).copied().unwrap_or(0);
        out.insert(
            "stripe_lifetime_value".to_owned(),
            Money::new(total, currency).major_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(id: &str, created: i64, status: &str, amount: i64, refunded: i64) -> Value {
        json!({"id": id, "object": "charge", "customer": "cus_1", "created": created,
               "status": status, "amount": amount, "amount_refunded": refunded,
               "currency": "usd", "refunded": refunded == amount && amount > 0})
    }

    #[test]
    fn charges_give_payments_failures_refunds_and_lifetime_value() {
        let mut book = ChargeBook::default();
        book.add_page(&[
            charge("ch_3", 1_788_300_000, "failed", 4900, 0),
            charge("ch_2", 1_788_257_651, "succeeded", 4900, 1000),
            charge("ch_1", 1_785_000_000, "succeeded", 4900, 0),
        ]);
        let customer = json!({"id": "cus_1", "email": " Ada@Example.COM ", "delinquent": true});
        let props = expected(&customer, None, book.of("cus_1"), &HashMap::new());
        let want: BTreeMap<String, String> = [
            ("email", "ada@example.com"),
            ("stripe_delinquent", "true"),
            ("stripe_last_payment_date", "1788220800000"),
            ("stripe_last_payment_amount", "49.00"),
            ("stripe_last_payment_failed_date", "1788220800000"),
            ("stripe_refund_issued", "true"),
            ("stripe_lifetime_value", "88.00"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(props, want);
        let ledger = book.of("cus_1").map(Charges::ledger).unwrap_or(&[]);
        assert_eq!(
            ledger
                .iter()
                .map(|e| (e.charge.as_str(), e.paid, e.refunded))
                .collect::<Vec<_>>(),
            [("ch_3", 0, 0), ("ch_2", 4900, 1000), ("ch_1", 4900, 0)],
            "a failed charge paid nothing"
        );
    }

    #[test]
    fn an_expanded_products_name_survives_what_a_run_keeps() {
        let sub = json!({"id": "sub_1", "object": "subscription", "customer": "cus_1",
            "status": "active", "created": 1, "default_payment_method": {"card": {"last4": "4242"}},
            "items": {"data": [{"id": "si_1", "price": {"id": "price_1", "currency": "usd",
                "nickname": "pro-monthly", "product": {"id": "prod_1", "name": "Pro", "images": []}}}]}});
        let mut book = SubscriptionBook::default();
        book.add_page(&[sub]);
        let kept = book.of("cus_1").expect("kept");
        assert!(kept.get("default_payment_method").is_none(), "{kept}");
        let props = expected(&json!({"id": "cus_1"}), Some(kept), None, &HashMap::new());
        assert_eq!(
            props.get("stripe_subscription_tier").map(String::as_str),
            Some("Pro")
        );
    }

    #[test]
    fn the_current_subscription_gives_status_and_the_products_name() {
        let sub = |id: &str, status: &str, created: i64| {
            json!({"id": id, "object": "subscription", "customer": "cus_1", "status": status,
                   "created": created, "items": {"data": [{"price": {"id": "price_1",
                   "product": "prod_1", "nickname": "Pro (monthly)", "currency": "usd"}}]}})
        };
        let mut book = SubscriptionBook::default();
        book.add_page(&[sub("sub_2", "canceled", 20), sub("sub_1", "past_due", 10)]);
        let customer = json!({"id": "cus_1"});
        let props = expected(&customer, book.of("cus_1"), None, &HashMap::new());
        assert_eq!(
            props.get("stripe_subscription_status").map(String::as_str),
            Some("past_due"),
            "a live subscription before a newer cancelled one"
        );
        assert_eq!(
            props.get("stripe_subscription_tier").map(String::as_str),
            Some("Pro (monthly)")
        );
        let names = HashMap::from([("prod_1".to_owned(), "Pro".to_owned())]);
        let named = expected(&customer, book.of("cus_1"), None, &names);
        assert_eq!(
            named.get("stripe_subscription_tier").map(String::as_str),
            Some("Pro")
        );
        assert_eq!(book.product_ids(), ["prod_1"]);
        assert!(!props.contains_key("stripe_lifetime_value"), "no charge");
    }
}
