//! Email coverage (issue 11, item 11): customers whose events are only charges, through
//! the real pipeline against the sandbox, without and with `stripe.api_key`. Prints how
//! many contacts ended up without an email.
//!
//! Each customer has a charge.succeeded and a charge.failed; like real card payments, some
//! charges carry a receipt email, some only the card's billing email, some neither (one
//! customer in five). The sandbox's Stripe API knows every customer's email.
//!
//!     cargo run --release -p paybridge --example email_coverage [-- CUSTOMERS]

use std::sync::Arc;

use hubspot_sandbox::{Sandbox, SandboxConfig, Seed, SeedStripe, SeedToken};
use paybridge::basics::Secret;
use paybridge::config::Settings;
use paybridge::domain::{Clock, EventSource};
use paybridge::hubspot::HubSpot;
use paybridge::rules::RuleSet;
use paybridge::store::Store;
use paybridge::stripe::Envelope;
use paybridge::worker::Pipeline;
use serde_json::{Value, json};

const KEY: &str = "sk_test_email_coverage";

fn charge(template: &Value, customer: usize, kind: &str, n: usize) -> Value {
    let mut e = template.clone();
    e["id"] = format!("evt_cov_{customer}_{n}").into();
    e["type"] = kind.into();
    e["created"] = (1_790_000_000 + (customer * 10 + n) as i64).into();
    let o = &mut e["data"]["object"];
    o["id"] = format!("ch_cov_{customer}_{n}").into();
    o["customer"] = format!("cus_cov{customer}").into();
    let email = format!("cov{customer}@example.com");
    o["receipt_email"] = if customer % 5 < 2 {
        email.clone().into()
    } else {
        Value::Null
    };
    o["billing_details"]["email"] = if customer % 5 < 4 {
        email.into()
    } else {
        Value::Null
    };
    if kind == "charge.failed" {
        o["status"] = "failed".into();
    }
    e
}

async fn run(customers: usize, with_key: bool) -> anyhow::Result<(usize, usize, u64, u64)> {
    let sandbox = Sandbox::spawn(SandboxConfig {
        requests_per_10s: 100_000,
        search_per_s: 1_000,
        ..SandboxConfig::default()
    })
    .await?;
    sandbox.merge_seed(Seed {
        tokens: vec![SeedToken {
            token: "setup".into(),
            scopes: vec![
                "crm.schemas.contacts.write".into(),
                "crm.schemas.contacts.read".into(),
            ],
        }],
        stripe: SeedStripe {
            customers: (0..customers)
                .map(|c| {
                    json!({"id": format!("cus_cov{c}"), "object": "customer", "created": 1_789_000_000,
                           "email": format!("cov{c}@example.com"), "name": format!("Customer {c}")})
                })
                .collect(),
            ..SeedStripe::default()
        },
        ..Default::default()
    })?;
    let setup = HubSpot::new(
        &sandbox.url(),
        Secret::new("setup".into()),
        paybridge::hubspot::ApiVersion::Dated2026_09,
        10_000,
        100,
        "stripe_customer_id",
    )?;
    let defs: Vec<_> = paybridge::rules::properties::builtin("stripe_customer_id")
        .iter()
        .map(paybridge::ops::setup::definition)
        .filter(|d| d.object_type == "contacts")
        .collect();
    paybridge::ops::setup::ensure(&setup, &defs, false).await?;

    let dir = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.store.url = format!("sqlite://{}", dir.path().join("cov.db").display());
    settings.hubspot.api_base = sandbox.url();
    settings.hubspot.token = Some(Secret::new("sandbox-token".into()));
    settings.hubspot.requests_per_10s = 10_000;
    settings.stripe.api_base = sandbox.url();
    if with_key {
        settings.stripe.api_key = Some(Secret::new(KEY.into()));
    }
    let clock = Clock::system();
    let store = Store::open(&settings.store.url, clock.clone()).await?;
    let rules = Arc::new(RuleSet::default());
    let hubspot = paybridge::app::services::hubspot(&settings)?
        .ok_or_else(|| anyhow::anyhow!("no HubSpot client"))?;
    let stripe = paybridge::app::services::stripe(&settings)?;
    let pipeline = Pipeline::new(
        &settings,
        rules.clone(),
        store.clone(),
        hubspot,
        stripe,
        clock,
    )?;
    let intake = paybridge::app::services::intake(&rules, store.clone());
    let template: Value =
        serde_json::from_str(include_str!("../fixtures/stripe/charge.succeeded.json"))?;
    let mut events = Vec::new();
    for c in 0..customers {
        for (n, kind) in ["charge.succeeded", "charge.failed"].iter().enumerate() {
            let payload = serde_json::to_vec(&charge(&template, c, kind, n))?;
            events.push((Envelope::parse(&payload)?, payload));
        }
    }
    for r in intake.receive_all(events, EventSource::Webhook).await {
        r?;
    }
    paybridge::worker::drain(&pipeline).await?;
    let state = sandbox.state();
    let contacts = state["contacts"].as_array().cloned().unwrap_or_default();
    let without = contacts
        .iter()
        .filter(|c| c["properties"]["email"].as_str().is_none_or(str::is_empty))
        .count();
    let stripe_calls = sandbox.stats()["stripe_calls"].as_u64().unwrap_or(0);
    let throttled = state["stripe"]["traffic"]["rate_limited"]
        .as_u64()
        .unwrap_or(0);
    store.close().await;
    Ok((contacts.len(), without, stripe_calls, throttled))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let customers: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    println!(
        "{customers} customers, charge events only (receipt email 2 in 5, billing email 4 in 5)"
    );
    for with_key in [false, true] {
        let (contacts, without, calls, throttled) = run(customers, with_key).await?;
        println!(
            "  {:<22} {contacts} contacts, {without} without an email, {calls} Stripe API calls ({throttled} answered 429)",
            if with_key {
                "with stripe.api_key:"
            } else {
                "without an API key:"
            }
        );
    }
    Ok(())
}
