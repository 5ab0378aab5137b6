//! Realistic test events for `paybridge simulate` (like `stripe trigger`): the real shapes of
//! `fixtures/stripe/*.json`, compiled into the binary, re-keyed for one customer.
//!
//! Pure: no I/O. Re-keying is consistent within one build (or one story): every Stripe id the
//! fixture refers to (`sub_…`, `in_…`, `ch_…`, `pi_…`, `il_…`, `txn_…`, …) gets one fresh
//! `…_sim…` id, the customer id becomes the chosen one, the email every email field, the
//! fixture's price (USD 49.00) the chosen amount, and every timestamp moves by the same delta
//! as the event's `created`. Card data stays as the fixtures have it (synthetic test data).

mod rekey;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use serde_json::{Value, json};

use crate::domain::CustomerId;
use rekey::{Rekey, Walk, fresh_id};

/// The current-shape fixtures (`2026-08-26.dahlia`), keyed by event type.
const FIXTURES: &[(&str, &str)] = &[
    (
        "charge.dispute.created",
        include_str!("../../../fixtures/stripe/charge.dispute.created.json"),
    ),
    (
        "charge.failed",
        include_str!("../../../fixtures/stripe/charge.failed.json"),
    ),
    (
        "charge.refunded",
        include_str!("../../../fixtures/stripe/charge.refunded.json"),
    ),
    (
        "charge.succeeded",
        include_str!("../../../fixtures/stripe/charge.succeeded.json"),
    ),
    (
        "checkout.session.completed",
        include_str!("../../../fixtures/stripe/checkout.session.completed.json"),
    ),
    (
        "customer.created",
        include_str!("../../../fixtures/stripe/customer.created.json"),
    ),
    (
        "customer.deleted",
        include_str!("../../../fixtures/stripe/customer.deleted.json"),
    ),
    (
        "customer.subscription.created",
        include_str!("../../../fixtures/stripe/customer.subscription.created.json"),
    ),
    (
        "customer.subscription.deleted",
        include_str!("../../../fixtures/stripe/customer.subscription.deleted.json"),
    ),
    (
        "customer.subscription.updated",
        include_str!("../../../fixtures/stripe/customer.subscription.updated.json"),
    ),
    (
        "customer.updated",
        include_str!("../../../fixtures/stripe/customer.updated.json"),
    ),
    (
        "invoice.paid",
        include_str!("../../../fixtures/stripe/invoice.paid.json"),
    ),
    (
        "invoice.payment_failed",
        include_str!("../../../fixtures/stripe/invoice.payment_failed.json"),
    ),
    (
        "invoice.payment_succeeded",
        include_str!("../../../fixtures/stripe/invoice.payment_succeeded.json"),
    ),
    (
        "payment_intent.payment_failed",
        include_str!("../../../fixtures/stripe/payment_intent.payment_failed.json"),
    ),
    (
        "payment_intent.succeeded",
        include_str!("../../../fixtures/stripe/payment_intent.succeeded.json"),
    ),
    (
        "refund.created",
        include_str!("../../../fixtures/stripe/refund.created.json"),
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

fn is_product_id(p: &str) -> bool {
    p.starts_with("prod_")
        && p.len() <= 255
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn format_usd(minor: i64) -> String {
    format!("${}.{:02}", minor / 100, minor % 100)
}
