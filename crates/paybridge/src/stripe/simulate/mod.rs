//! Realistic test events for `paybridge simulate` (like `stripe trigger`): the real shapes of
//! `fixtures/stripe/*.json`, compiled into the binary, re-keyed for one customer.
//!
//! Pure: no I/O. Re-keying is consistent within one build (or one story): every Stripe id the
//! fixture refers to (`sub_…`, `in_…`, `ch_…`, `pi_…`, `il_…`, `txn_…`, …) gets one fresh
//! `…_sim…` id, the customer id becomes the chosen one, the email every email field, the
//! fixture's price (USD 49.00) the chosen amount, and every timestamp moves by the same delta
//! as the event's `created`. Card data stays as the fixtures have it (synthetic test data).

use std::collections::HashMap;
use std::str::FromStr;

use rand::Rng as _;
use serde_json::{Value, json};

use crate::domain::CustomerId;

/// The current-shape fixtures (`2026-08-26.dahlia`), keyed by event type.
const FIXTURES: &[(&str, &str)] = &[
    (
        "charge.dispute.created",
        include_str!("../../fixtures/stripe/charge.dispute.created.json"),
    ),
    (
        "charge.failed",
        include_str!("../../fixtures/stripe/charge.failed.json"),
    ),
    (
        "charge.refunded",
        include_str!("../../fixtures/stripe/charge.refunded.json"),
    ),
    (
        "charge.succeeded",
        include_str!("../../fixtures/stripe/charge.succeeded.json"),
    ),
    (
        "checkout.session.completed",
        include_str!("../../fixtures/stripe/checkout.session.completed.json"),
    ),
    (
        "customer.created",
        include_str!("../../fixtures/stripe/customer.created.json"),
    ),
    (
        "customer.deleted",
        include_str!("../../fixtures/stripe/customer.deleted.json"),
    ),
    (
        "customer.subscription.created",
        include_str!("../../fixtures/stripe/customer.subscription.created.json"),
    ),
    (
        "customer.subscription.deleted",
        include_str!("../../fixtures/stripe/customer.subscription.deleted.json"),
    ),
    (
        "customer.subscription.updated",
        include_str!("../../fixtures/stripe/customer.subscription.updated.json"),
    ),
    (
        "customer.updated",
        include_str!("../../fixtures/stripe/customer.updated.json"),
    ),
    (
        "invoice.paid",
        include_str!("../../fixtures/stripe/invoice.paid.json"),
    ),
    (
        "invoice.payment_failed",
        include_str!("../../fixtures/stripe/invoice.payment_failed.json"),
    ),
    (
        "invoice.payment_succeeded",
        include_str!("../../fixtures/stripe/invoice.payment_succeeded.json"),
    ),
    (
        "payment_intent.payment_failed",
        include_str!("../../fixtures/stripe/payment_intent.payment_failed.json"),
    ),
    (
        "payment_intent.succeeded",
        include_str!("../../fixtures/stripe/payment_intent.succeeded.json"),
    ),
    (
        "refund.created",
        include_str!("../../fixtures/stripe/refund.created.json"),
    ),
];

/// What the fixtures charge (USD 49.00 a month), in minor units.
const FIXTURE_AMOUNT: i64 = 4_900;
/// Stripe's largest amount (8 digits of minor units).
const MAX_AMOUNT: i64 = 99_999_999;
/// Integers in this range are unix timestamps (2017 … 2039); amounts never are.
const TIMESTAMPS: std::ops::RangeInclusive<i64> = 1_500_000_000..=2_200_000_000;
/// Id prefixes whose objects belong to one customer's story and get fresh ids (`usr_` is the
/// customer's user id in the seller's own app, in metadata). Catalog (`prod_`, `price_`) and
/// account-level ids (`acct_`, `pmc_`) are kept.
const PER_CUSTOMER_PREFIXES: &[&str] = &[
    "cus", "sub", "si", "in", "il", "ch", "py", "pi", "pm", "re", "du", "txn", "req", "cs_test",
    "cs_live", "seti", "src", "usr",
];

/// The event types `build_event` knows, sorted.
pub fn supported_types() -> Vec<&'static str> {
    FIXTURES.iter().map(|(kind, _)| *kind).collect()
}

/// Who the simulated events are about, and for how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// `cus_…`
    pub customer: String,
    pub email: String,
    /// Minor units (cents), in the fixtures' currency (usd).
    pub amount: i64,
    /// Replaces the fixtures' product id (and gives its price a fresh id); None keeps it.
    pub product: Option<String>,
}

impl SimOptions {
    /// Fills the defaults (a random `cus_sim…`, `{customer}@example.com`, 4900) and checks
    /// what was given.
    pub fn new(
        customer: Option<String>,
        email: Option<String>,
        amount: Option<i64>,
        product: Option<String>,
    ) -> Result<Self, String> {
        let customer = match customer {
            Some(c) => {
                CustomerId::parse(&c).map_err(|e| format!("--customer: {e}"))?;
                c
            }
            None => fresh_id("cus"),
        };
        let email = match email {
            Some(e) => {
                let e = e.trim().to_owned();
                match e.split_once('@') {
                    Some((local, domain)) if !local.is_empty() && domain.contains('.') => e,
                    _ => return Err(format!("--email: `{e}` is not an email address")),
                }
            }
            None => format!("{}@example.com", customer.to_ascii_lowercase()),
        };
        let amount = amount.unwrap_or(FIXTURE_AMOUNT);
        if !(1..=MAX_AMOUNT).contains(&amount) {
            return Err(format!(
                "--amount: {amount} is out of range (minor units, 1 to {MAX_AMOUNT})"
            ));
        }
        if let Some(bad) = product.as_deref().filter(|p| !is_product_id(p)) {
            return Err(format!(
                "--product: `{bad}` is not a Stripe product id (prod_…)"
            ));
        }
        Ok(Self {
            customer,
            email,
            amount,
            product,
        })
    }
}

impl Default for SimOptions {
    /// A new random customer paying the fixtures' 4900.
    fn default() -> Self {
        let customer = fresh_id("cus");
        Self {
            email: format!("{}@example.com", customer.to_ascii_lowercase()),
            customer,
            amount: FIXTURE_AMOUNT,
            product: None,
        }
    }
}

/// How `story` ends after the failed renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoryOutcome {
    /// The failed invoice is paid and the subscription is active again.
    #[default]
    Recovered,
    /// The subscription is cancelled.
    Cancelled,
}

impl FromStr for StoryOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "recovered" => Ok(Self::Recovered),
            "cancelled" | "canceled" => Ok(Self::Cancelled),
            other => Err(format!(
                "`{other}` is not an outcome: recovered | cancelled"
            )),
        }
    }
}

/// One event of type `kind` for `opts.customer`, created at `now` (unix seconds).
pub fn build_event(kind: &str, opts: &SimOptions, now: i64) -> Result<Value, String> {
    build(kind, Variant::AsIs, opts, now, &mut Rekey::new(opts))
}

/// A whole customer's life, in order, a second apart, ending at `now`: sign-up, first
/// payment, a partial refund, a failed renewal, then recovery or cancellation. The same
/// customer, email, subscription, invoice and charge ids throughout.
pub fn story(opts: &SimOptions, outcome: StoryOutcome, now: i64) -> Vec<Value> {
    let mut steps = vec![
        ("customer.created", Variant::AsIs),
        ("checkout.session.completed", Variant::AsIs),
        ("customer.subscription.created", Variant::SubscriptionActive),
        ("invoice.paid", Variant::AsIs),
        ("charge.succeeded", Variant::AsIs),
        ("charge.refunded", Variant::AsIs),
        ("invoice.payment_failed", Variant::AsIs),
        ("customer.subscription.updated", Variant::AsIs),
    ];
    match outcome {
        StoryOutcome::Recovered => {
            steps.push(("invoice.payment_failed", Variant::FailedInvoicePaid));
            steps.push((
                "customer.subscription.updated",
                Variant::SubscriptionRecovered,
            ));
        }
        StoryOutcome::Cancelled => {
            steps.push(("customer.subscription.deleted", Variant::AsIs));
        }
    }
    let mut rekey = Rekey::new(opts);
    let first = now - (steps.len() as i64 - 1);
    steps
        .into_iter()
        .enumerate()
        .filter_map(|(i, (kind, variant))| {
            // Every kind above has a compiled-in fixture (tested), so nothing is dropped.
            build(kind, variant, opts, first + i as i64, &mut rekey).ok()
        })
        .collect()
}

/// Story-specific changes to a fixture, made before re-keying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    AsIs,
    /// `customer.subscription.created` with status `active`.
    SubscriptionActive,
    /// `invoice.payment_failed`'s invoice, now paid: an `invoice.paid` event.
    FailedInvoicePaid,
    /// `customer.subscription.updated` from `past_due` back to `active`.
    SubscriptionRecovered,
}

fn template(kind: &str) -> Result<Value, String> {
    let text = FIXTURES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, text)| *text)
        .ok_or_else(|| {
            format!(
                "there is no simulated `{kind}` event; supported types: {}",
                supported_types().join(", ")
            )
        })?;
    serde_json::from_str(text).map_err(|e| format!("the built-in `{kind}` fixture: {e}"))
}

fn build(
    kind: &str,
    variant: Variant,
    opts: &SimOptions,
    now: i64,
    rekey: &mut Rekey,
) -> Result<Value, String> {
    let mut event = template(kind)?;
    let fixture_created = event
        .get("created")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("the built-in `{kind}` fixture has no `created`"))?;
    apply_variant(&mut event, variant);
    let mut walk = Walk {
        rekey,
        opts,
        delta: now - fixture_created,
        price_text: (format_usd(FIXTURE_AMOUNT), format_usd(opts.amount)),
    };
    walk.value(&mut event, None, false);
    if let Some(top) = event.as_object_mut() {
        top.insert("id".into(), fresh_id("evt").into());
        top.insert("created".into(), now.into());
    }
    fix_amounts(&mut event, opts.amount);
    Ok(event)
}

fn apply_variant(event: &mut Value, variant: Variant) {
    let created = event.get("created").and_then(Value::as_i64);
    match variant {
        Variant::AsIs => {}
        Variant::SubscriptionActive => {
            set(event, &["data", "object", "status"], json!("active"));
        }
        Variant::FailedInvoicePaid => {
            set(event, &["type"], json!("invoice.paid"));
            set(
                event,
                &["request"],
                json!({"id": null, "idempotency_key": null}),
            );
            let due = event
                .pointer("/data/object/amount_due")
                .cloned()
                .unwrap_or(Value::Null);
            for (key, value) in [
                ("status", json!("paid")),
                ("amount_paid", due),
                ("amount_remaining", json!(0)),
                ("attempt_count", json!(2)),
                ("attempted", json!(true)),
                ("auto_advance", json!(false)),
                ("next_payment_attempt", Value::Null),
            ] {
                set(event, &["data", "object", key], value);
            }
            set(
                event,
                &["data", "object", "status_transitions", "paid_at"],
                created.map_or(Value::Null, Value::from),
            );
        }
        Variant::SubscriptionRecovered => {
            set(event, &["data", "object", "status"], json!("active"));
            set(
                event,
                &["data", "previous_attributes"],
                json!({"status": "past_due"}),
            );
        }
    }
}

/// Sets `path` inside nested objects; does nothing where a parent is not an object.
fn set(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for key in parents {
        match at.get_mut(*key) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(object) = at.as_object_mut() {
        object.insert((*last).to_owned(), new);
    }
}

/// Amounts that are not the fixtures' price: refunds stay partial (never above the amount)
/// and a dispute is for the whole charge.
fn fix_amounts(event: &mut Value, amount: i64) {
    let Some(object) = event.pointer_mut("/data/object") else {
        return;
    };
    match object.get("object").and_then(Value::as_str) {
        Some("charge") => {
            let refunded = object
                .get("amount_refunded")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if refunded > 0 {
                let refunded = refunded.min(amount);
                set(object, &["amount_refunded"], refunded.into());
                set(object, &["refunded"], (refunded >= amount).into());
            }
        }
        Some("refund") => {
            if let Some(refund) = object.get("amount").and_then(Value::as_i64) {
                set(object, &["amount"], refund.min(amount).into());
            }
        }
        Some("dispute") => {
            set(object, &["amount"], amount.into());
            if let Some(txns) = object
                .get_mut("balance_transactions")
                .and_then(Value::as_array_mut)
            {
                for txn in txns {
                    let fee = txn.get("fee").and_then(Value::as_i64).unwrap_or(0);
                    set(txn, &["amount"], (-amount).into());
                    set(txn, &["net"], (-amount - fee).into());
                }
            }
        }
        _ => {}
    }
}

/// Old fixture id → new id, shared by every event of one build or story.
struct Rekey {
    ids: HashMap<String, String>,
    product: Option<String>,
}

impl Rekey {
    fn new(opts: &SimOptions) -> Self {
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

fn is_product_id(p: &str) -> bool {
    p.starts_with("prod_")
        && p.len() <= 255
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
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
fn fresh_id(prefix: &str) -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    format!("{prefix}_sim{random}")
}

fn format_usd(minor: i64) -> String {
    format!("${}.{:02}", minor / 100, minor % 100)
}

fn is_money_key(key: &str) -> bool {
    key.contains("amount") || key.contains("total")
}

struct Walk<'a> {
    rekey: &'a mut Rekey,
    opts: &'a SimOptions,
    /// Added to every timestamp.
    delta: i64,
    /// The fixtures' price as text (`$49.00`) and its replacement.
    price_text: (String, String),
}

impl Walk<'_> {
    fn value(&mut self, value: &mut Value, key: Option<&str>, previous: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Money, Outcome};
    use crate::stripe::{Envelope, normalise};

    const NOW: i64 = 1_800_000_000;

    fn opts() -> SimOptions {
        SimOptions::new(
            Some("cus_simTest123".into()),
            Some("grace@example.org".into()),
            Some(12_345),
            Some("prod_simWidgets01".into()),
        )
        .expect("valid options")
    }

    /// Every string in the JSON, with the key it sits under.
    fn strings(v: &Value, key: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| strings(v, k, out)),
            Value::Array(a) => a.iter().for_each(|v| strings(v, key, out)),
            Value::String(s) => out.push((key.to_owned(), s.clone())),
            _ => {}
        }
    }

    #[test]
    fn the_fixture_list_matches_the_files() {
        let dir = format!("{}/fixtures/stripe", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixtures dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && n != "signature-vectors.json")
            .map(|n| n.trim_end_matches(".json").to_owned())
            .collect();
        files.sort();
        assert_eq!(supported_types(), files);
        for (kind, text) in FIXTURES {
            let v: Value = serde_json::from_str(text).expect("fixture JSON");
            assert_eq!(v["type"], *kind, "{kind}: file name and type agree");
        }
    }

    #[test]
    fn every_fixture_type_builds_parses_and_normalises_for_the_chosen_customer() {
        let o = opts();
        for kind in supported_types() {
            let event = build_event(kind, &o, NOW).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let body = serde_json::to_vec(&event).expect("serialise");
            let envelope = Envelope::parse(&body).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(envelope.kind, kind);
            assert_eq!(envelope.created, NOW);
            assert!(envelope.id.as_str().starts_with("evt_sim"), "{kind}");
            assert!(!envelope.livemode, "{kind}: test mode");
            let fact = normalise(&body).unwrap_or_else(|e| panic!("{kind}: {e}"));
            if kind == "charge.dispute.created" {
                // A dispute names no customer (research/stripe.md §4).
                assert_eq!(fact.customer, None);
            } else {
                assert_eq!(
                    fact.customer.as_ref().map(|c| c.as_str()),
                    Some("cus_simTest123"),
                    "{kind}"
                );
            }
            if let Some(email) = &fact.email {
                assert_eq!(email, "grace@example.org", "{kind}");
            }
            if let Some(amount) = &fact.amount {
                assert_eq!(*amount, Money::new(12_345, "usd"), "{kind}");
            }
            for product in &fact.products {
                assert_eq!(
                    product.product_id.as_deref(),
                    Some("prod_simWidgets01"),
                    "{kind}"
                );
            }
            // Nothing of the fixtures' customer is left, and no timestamp is years away.
            let text = serde_json::to_string(&event).expect("serialise");
            for old in [
                "cus_T7aLp4qZ9cXn2W",
                "sub_1S4kPqQmT3xK8rLv0cH2mN5a",
                "in_1S4kPrQmT3xK8rLvb6Yt1ZqW",
                "in_1SBxE9QmT3xK8rLvR3tY6uIo",
                "ch_3S4kPsQmT3xK8rLv1Ks0uR4t",
                "pi_3S4kPsQmT3xK8rLv1p8XwQ2e",
                "prod_T7aL2pWq8sYv3N",
                "price_1S4k2LQmT3xK8rLvA9dE7fGh",
                "ada.lovelace@example.com",
                "ada@analytical-engines",
                "usr_4821",
            ] {
                assert!(!text.contains(old), "{kind}: `{old}` left in the event");
            }
            let mut all = Vec::new();
            strings(&event, "", &mut all);
            for (key, value) in &all {
                if key.ends_with("email") && value.contains('@') {
                    assert!(value.contains("grace"), "{kind}: {key} = {value}");
                }
            }
        }
    }

    #[test]
    fn the_card_data_is_kept_as_the_fixtures_have_it() {
        let event = build_event("charge.succeeded", &opts(), NOW).expect("builds");
        let card = &event["data"]["object"]["payment_method_details"]["card"];
        assert_eq!(card["last4"], "4242");
        assert_eq!(card["brand"], "visa");
    }

    #[test]
    fn ids_are_fresh_per_build_and_consistent_within_an_event() {
        let o = opts();
        let a = build_event("invoice.paid", &o, NOW).expect("builds");
        let b = build_event("invoice.paid", &o, NOW).expect("builds");
        assert_ne!(a["id"], b["id"]);
        assert_ne!(a["data"]["object"]["id"], b["data"]["object"]["id"]);
        let invoice = a["data"]["object"]["id"].as_str().expect("invoice id");
        assert!(invoice.starts_with("in_sim"), "{invoice}");
        let line = &a["data"]["object"]["lines"]["data"][0];
        assert_eq!(line["invoice"], invoice);
        assert_eq!(
            a["data"]["object"]["lines"]["url"],
            format!("/v1/invoices/{invoice}/lines")
        );
        assert_eq!(line["amount"], 12_345);
        assert_eq!(line["pricing"]["unit_amount_decimal"], "12345");
        assert_eq!(line["description"], "1 × Pro (at $123.45 / month)");
        let sub = line["subscription"].as_str().expect("subscription");
        assert!(sub.starts_with("sub_sim"), "{sub}");
        assert_eq!(
            a["data"]["object"]["parent"]["subscription_details"]["subscription"],
            sub
        );
        // Timestamps moved with `created`: the invoice was finalised just before the event.
        let finalized = a["data"]["object"]["status_transitions"]["finalized_at"]
            .as_i64()
            .expect("finalized_at");
        assert!((NOW - 60..=NOW).contains(&finalized), "{finalized}");
    }

    #[test]
    fn refunds_stay_partial_and_disputes_cover_the_charge() {
        let o = opts();
        let refunded = build_event("charge.refunded", &o, NOW).expect("builds");
        let fact = normalise(&serde_json::to_vec(&refunded).expect("json")).expect("fact");
        assert_eq!(fact.amount_refunded, Some(Money::new(1_000, "usd")));
        assert_eq!(fact.charge.map(|c| c.refunded), Some(false));

        let small = SimOptions::new(None, None, Some(500), None).expect("options");
        let refunded = build_event("charge.refunded", &small, NOW).expect("builds");
        assert_eq!(refunded["data"]["object"]["amount_refunded"], 500);
        assert_eq!(refunded["data"]["object"]["refunded"], true);

        let dispute = build_event("charge.dispute.created", &o, NOW).expect("builds");
        assert_eq!(dispute["data"]["object"]["amount"], 12_345);
        let txn = &dispute["data"]["object"]["balance_transactions"][0];
        assert_eq!(txn["amount"], -12_345);
        assert_eq!(txn["net"], -12_345 - 1_500);
    }

    #[test]
    fn defaults_and_bad_options() {
        let d = SimOptions::new(None, None, None, None).expect("defaults");
        assert!(d.customer.starts_with("cus_sim"), "{}", d.customer);
        assert_eq!(
            d.email,
            format!("{}@example.com", d.customer.to_ascii_lowercase())
        );
        assert_eq!(d.amount, 4_900);
        let event = build_event("invoice.paid", &d, NOW).expect("builds");
        assert_eq!(
            event["data"]["object"]["lines"]["data"][0]["pricing"]["price_details"]["product"],
            "prod_T7aL2pWq8sYv3N",
            "no --product keeps the fixtures' catalog"
        );
        assert!(SimOptions::new(Some("bob".into()), None, None, None).is_err());
        assert!(SimOptions::new(None, Some("nope".into()), None, None).is_err());
        assert!(SimOptions::new(None, None, Some(0), None).is_err());
        assert!(SimOptions::new(None, None, None, Some("widgets".into())).is_err());
        let unknown = build_event("invoice.created", &d, NOW).expect_err("no fixture");
        assert!(unknown.contains("invoice.paid"), "{unknown}");
        assert_eq!("cancelled".parse(), Ok(StoryOutcome::Cancelled));
        assert!("maybe".parse::<StoryOutcome>().is_err());
    }

    #[test]
    fn the_story_is_one_customer_in_order() {
        let o = opts();
        let events = story(&o, StoryOutcome::Recovered, NOW);
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect();
        assert_eq!(
            kinds,
            [
                "customer.created",
                "checkout.session.completed",
                "customer.subscription.created",
                "invoice.paid",
                "charge.succeeded",
                "charge.refunded",
                "invoice.payment_failed",
                "customer.subscription.updated",
                "invoice.paid",
                "customer.subscription.updated",
            ]
        );
        let facts: Vec<_> = events
            .iter()
            .map(|e| normalise(&serde_json::to_vec(e).expect("json")).expect("fact"))
            .collect();
        let created: Vec<i64> = facts.iter().map(|f| f.occurred_at).collect();
        let expected: Vec<i64> = (NOW - 9..=NOW).collect();
        assert_eq!(created, expected, "a second apart, ending now");
        let mut ids: Vec<&str> = facts.iter().map(|f| f.event_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), events.len(), "every event has its own id");
        for f in &facts {
            assert_eq!(
                f.customer.as_ref().map(|c| c.as_str()),
                Some("cus_simTest123")
            );
        }
        let sub = |i: usize| facts[i].subscription.as_ref().map(|s| s.id.clone());
        let subscription = sub(2).expect("subscription");
        for i in [1, 3, 6, 7, 8, 9] {
            assert_eq!(sub(i).as_deref(), Some(subscription.as_str()), "event {i}");
        }
        let invoice = |i: usize| facts[i].invoice.clone().expect("invoice facts");
        let first = invoice(3);
        assert_eq!(first.billing_reason.as_deref(), Some("subscription_create"));
        assert_eq!(
            events[1]["data"]["object"]["invoice"], first.id,
            "checkout names the first invoice"
        );
        let failed = invoice(6);
        assert_eq!(failed.billing_reason.as_deref(), Some("subscription_cycle"));
        assert_eq!(failed.attempt_count, Some(1));
        assert_ne!(failed.id, first.id);
        let recovered = invoice(8);
        assert_eq!(
            recovered.id, failed.id,
            "the failed invoice is the one paid"
        );
        assert_eq!(recovered.status.as_deref(), Some("paid"));
        assert_eq!(recovered.next_payment_attempt, None);
        assert_eq!(facts[8].outcome, Outcome::PaymentSucceeded);
        assert_eq!(facts[8].amount, Some(Money::new(12_345, "usd")));
        let charge = |i: usize| facts[i].charge.clone().expect("charge");
        assert_eq!(
            charge(4).id,
            charge(5).id,
            "the refund is of the first charge"
        );
        assert_eq!(facts[5].amount_refunded, Some(Money::new(1_000, "usd")));
        let status = |i: usize| {
            let s = facts[i].subscription.clone().expect("subscription");
            (s.previous_status, s.status)
        };
        assert_eq!(status(2).1.as_deref(), Some("active"));
        assert_eq!(status(7), (Some("active".into()), Some("past_due".into())));
        assert_eq!(status(9), (Some("past_due".into()), Some("active".into())));
    }

    #[test]
    fn the_cancelled_story_ends_with_the_subscription_deleted() {
        let events = story(&opts(), StoryOutcome::Cancelled, NOW);
        assert_eq!(events.len(), 9);
        let last = events.last().expect("events");
        assert_eq!(last["type"], "customer.subscription.deleted");
        assert_eq!(last["data"]["object"]["status"], "canceled");
        assert_eq!(
            last["data"]["object"]["id"],
            events[2]["data"]["object"]["id"]
        );
        assert_eq!(last["created"], NOW);
    }
}
