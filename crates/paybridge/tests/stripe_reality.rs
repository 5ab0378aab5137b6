//! Stripe as it really is (issue 11): each behaviour Stripe documents, end to end through
//! the starter config, signed webhooks and the sandbox (HubSpot and Stripe's API), with the
//! exact CRM state afterwards and a redelivery that changes nothing. The events are the
//! `fixtures/stripe/story-2` files, shaped as Stripe's current API version sends them.

mod common;

use common::crm::{map, records, written};

use std::collections::BTreeMap;

use common::receiver::Receiver;
use common::{TestApp, settings_from_config, spawn_app_in};
use hubspot_sandbox::{Sandbox, SandboxConfig, Seed, SeedRecord, SeedStripe};
use paybridge::basics::Secret;
use paybridge::domain::{Clock, EventId, EventStatus, PayloadKind};
use serde_json::{Map, Value, json};

/// After every fixture event (2026-11-06); the clock is manual.
const NOW_MS: i64 = 1_794_000_000_000;
const DAY_MS: i64 = 86_400_000;
const STRIPE_KEY: &str = "sk_test_reality_0123456789";
/// The secret the story-2 fixtures were signed with by Stripe's own library.
const FIXTURE_SECRET: &str = "whsec_paybridge_notes_fixture_secret";
const ADA: &str = "cus_T7aLp4qZ9cXn2W";
const FAILED_INVOICE: &str = "in_1SBxE9QmT3xK8rLvR3tY6uIo";

fn story_bytes(name: &str) -> Vec<u8> {
    common::fixture(&format!("story-2/{name}"))
}

fn story(name: &str) -> Value {
    serde_json::from_slice(&story_bytes(name)).expect("fixture JSON")
}

fn shared(name: &str) -> Value {
    serde_json::from_slice(&common::fixture(name)).expect("fixture JSON")
}

fn api_object(name: &str) -> Value {
    serde_json::from_slice(&common::fixture(&format!("api/{name}"))).expect("fixture JSON")
}

struct World {
    sandbox: Sandbox,
    slack: Receiver,
    provisioning: Receiver,
    clock: Clock,
    config: String,
    app: TestApp,
}

struct Options {
    /// Give the app `stripe.api_key` (the sandbox's Stripe API).
    key: bool,
    /// Appended to the starter config.
    extra: &'static str,
    stripe: SeedStripe,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            key: true,
            extra: "",
            stripe: SeedStripe::default(),
        }
    }
}

/// The starter config pointed at this test's receivers and the sandbox, with or without
/// a Stripe key.
fn config_text(
    sandbox: &Sandbox,
    slack: &Receiver,
    provisioning: &Receiver,
    o: &Options,
) -> String {
    let starter = common::starter_with_receivers(
        &format!("{}/slack", slack.url),
        &format!("{}/provision", provisioning.url),
    );
    let mut root: toml::Table = toml::from_str(&format!("{starter}\n{}", o.extra)).expect("TOML");
    if let Some(toml::Value::Table(stripe)) = root.get_mut("stripe") {
        stripe.insert("api_base".into(), sandbox.url().into());
        if o.key {
            stripe.insert("api_key".into(), STRIPE_KEY.into());
        }
    }
    toml::to_string(&root).expect("TOML")
}

async fn world(o: Options) -> World {
    let sandbox = common::spawn_sandbox(SandboxConfig::default()).await;
    sandbox
        .merge_seed(Seed {
            stripe: o.stripe.clone(),
            ..Seed::default()
        })
        .expect("seed Stripe");
    let slack = Receiver::start(Vec::new()).await;
    let provisioning = Receiver::start(Vec::new()).await;
    let clock = Clock::manual(NOW_MS);
    let config = config_text(&sandbox, &slack, &provisioning, &o);
    let app = start(
        tempfile::tempdir().expect("tempdir"),
        &config,
        &sandbox,
        &clock,
    )
    .await;
    World {
        sandbox,
        slack,
        provisioning,
        clock,
        config,
        app,
    }
}

/// The app of `config` in `dir`, accepting the test secret and the fixtures' own.
async fn start(dir: tempfile::TempDir, config: &str, sandbox: &Sandbox, clock: &Clock) -> TestApp {
    let mut loaded = settings_from_config(config, dir.path(), sandbox);
    loaded
        .settings
        .stripe
        .webhook_secrets
        .push(Secret::new(FIXTURE_SECRET.into()));
    common::setup_loaded_properties(sandbox, &loaded).await;
    spawn_app_in(dir, loaded, clock.clone()).await
}

impl World {
    /// POSTs `event` signed now; Stripe's answer must be 200.
    async fn post(&self, event: &Value) -> Value {
        let r = self
            .app
            .post_signed(&serde_json::to_vec(event).expect("JSON"))
            .await;
        assert_eq!(r.status(), 200, "{event}");
        r.json().await.expect("JSON answer")
    }

    /// POSTs a fixture's exact bytes with the header Stripe's library made for them.
    async fn post_as_stripe_signed(&self, file: &str) -> reqwest::Response {
        let vectors: Value =
            serde_json::from_slice(&story_bytes("signatures.json")).expect("vectors");
        let v = vectors["vectors"]
            .as_array()
            .and_then(|all| all.iter().find(|v| v["file"] == file))
            .unwrap_or_else(|| panic!("no vector for {file}"));
        let t = v["t"].as_i64().expect("t");
        let now = self.clock.now_ms();
        self.clock.set_ms(t * 1000);
        let r = self
            .app
            .post_with_header(&story_bytes(file), v["stripe_signature"].as_str())
            .await;
        self.clock.set_ms(now);
        r
    }

    fn state(&self) -> Value {
        self.sandbox.state()
    }

    async fn event(&self, id: &str) -> paybridge::store::EventSummary {
        self.app
            .store
            .get_event_summary(EventId::parse(id).expect("id").as_str())
            .await
            .expect("read")
            .expect("stored")
    }

    /// The texts Slack received, in order.
    fn slack_texts(&self) -> Vec<String> {
        self.slack
            .received()
            .iter()
            .map(|r| {
                let v: Value = serde_json::from_slice(&r.body).expect("JSON");
                v["text"].as_str().unwrap_or("").to_owned()
            })
            .collect()
    }
}

fn date(unix_secs: i64) -> String {
    common::story::iso_date(unix_secs)
}

/// The only contact, asserting there is exactly one.
fn only_contact(state: &Value) -> Value {
    let all = records(state, "contacts");
    assert_eq!(all.len(), 1, "one contact: {all:#?}");
    all.into_iter().next().expect("one")
}

/// The engagements and objects paybridge may create, for "nothing created twice".
fn created_records(state: &Value) -> Value {
    json!({
        "contacts": state["contacts"].as_array().map(Vec::len),
        "tasks": state["tasks"],
        "notes": state["notes"],
        "tickets": state["tickets"],
        "deals": state["deals"],
        "enrollments": state["enrollments"],
        "lists": state["lists"],
    })
}

fn seed_contact(sandbox: &Sandbox, id: &str, email: &str) {
    let mut properties = Map::new();
    properties.insert("email".into(), email.into());
    properties.insert("firstname".into(), "Someone".into());
    sandbox
        .merge_seed(Seed {
            contacts: vec![SeedRecord {
                id: Some(id.into()),
                properties,
                associations: Vec::new(),
            }],
            ..Seed::default()
        })
        .expect("seed the contact");
}

/// The step's marker in a task or note body: visible text, since HubSpot's rich-text
/// sanitiser may drop comments (issue 12, H4).
fn marker(key: &str) -> String {
    format!("<p>[paybridge:{key}]</p>")
}

// ─── 1. Thin events ─────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_thin_event_is_accepted_fetched_with_the_key_and_runs_the_same_rules() {
    let w = world(Options {
        stripe: SeedStripe {
            objects: vec![
                api_object("v1.invoices.retrieve.in_1SBxE9QmT3xK8rLvR3tY6uIo.json"),
                api_object("v1.products.retrieve.prod_T7aL2pWq8sYv3N.json"),
            ],
            ..SeedStripe::default()
        },
        ..Options::default()
    })
    .await;
    let thin = story("v2.core.event.v1.invoice.payment_failed.json");
    let id = thin["id"].as_str().expect("id");
    // Exactly as Stripe delivers it: its bytes, its library's signature.
    let r = w
        .post_as_stripe_signed("v2.core.event.v1.invoice.payment_failed.json")
        .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("JSON");
    assert_eq!(
        answer,
        json!({"received": true, "id": id, "duplicate": false, "status": "pending"})
    );
    let stored = w.event(id).await;
    assert_eq!(
        (
            stored.kind.as_str(),
            stored.payload_kind,
            stored.customer.as_deref()
        ),
        ("invoice.payment_failed", PayloadKind::Thin, None),
        "stored under its snapshot name; no customer until fetched"
    );
    w.app.drain().await;

    let stored = w.event(id).await;
    assert_eq!(stored.status, EventStatus::Done, "{:?}", stored.last_error);
    assert_eq!(stored.customer.as_deref(), Some(ADA), "known once fetched");
    let requests = w.sandbox.stripe_requests();
    let paths: Vec<&Value> = requests.iter().map(|r| &r["path"]).collect();
    assert_eq!(
        paths,
        [
            &json!(format!("/v1/invoices/{FAILED_INVOICE}")),
            &json!("/v1/products/prod_T7aL2pWq8sYv3N"),
            &json!(format!("/v1/invoices/{FAILED_INVOICE}")),
        ],
        "the related object, its product's name; the sequence's first step reads the object's current state again"
    );
    for r in &requests {
        assert_eq!(
            r["stripe_version"],
            paybridge::stripe::api::DEFAULT_API_VERSION
        );
        assert_eq!(r["stripe_context"], Value::Null);
        assert_eq!(r["status"], 200);
    }

    // The same rules as for the snapshot event of the fetched invoice.
    let state = w.state();
    let contact = only_contact(&state);
    assert_eq!(
        written(&contact),
        map(&[
            ("email", "ada@analytical-engines.example.org"),
            ("firstname", "Ada"),
            ("lastname", "Lovelace"),
            ("stripe_customer_id", ADA),
            ("stripe_last_payment_failed_date", "2026-10-04"),
            ("stripe_delinquent", "true"),
        ])
    );
    let tickets = records(&state, "tickets");
    assert_eq!(tickets.len(), 1);
    let url =
        api_object("v1.invoices.retrieve.in_1SBxE9QmT3xK8rLvR3tY6uIo.json")["hosted_invoice_url"]
            .as_str()
            .expect("url")
            .to_owned();
    assert_eq!(
        written(&tickets[0]),
        map(&[
            ("subject", "Payment failed: Ada Lovelace ($49.00)"),
            ("content", &format!("Attempt 2 failed. Invoice: {url}")),
            ("hs_pipeline", "0"),
            ("hs_pipeline_stage", "1"),
            ("hs_ticket_priority", "HIGH"),
            ("hs_ticket_category", "BILLING_ISSUE"),
            (
                "paybridge_key",
                &format!("{ADA}:dunning:0:{FAILED_INVOICE}")
            ),
        ])
    );
    let enrolled: Vec<Value> = records(&state, "enrollments")
        .iter()
        .map(|e| json!([e["workflowId"], e["email"]]))
        .collect();
    assert_eq!(
        enrolled,
        [json!(["222", "ada@analytical-engines.example.org"])]
    );

    // Redelivered, and the snapshot event of the same failure arrives too (a second
    // destination): nothing happens twice.
    let before = created_records(&state);
    let again = w
        .post_as_stripe_signed("v2.core.event.v1.invoice.payment_failed.json")
        .await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again["duplicate"], true);
    w.post(&story("invoice.payment_failed.attempt-2.json"))
        .await;
    w.app.drain().await;
    assert_eq!(created_records(&w.state()), before);
    w.app.stop().await;
}

#[tokio::test]
async fn without_a_key_a_thin_event_waits_and_check_says_so_then_runs_once_a_key_is_set() {
    let o = Options {
        key: false,
        ..Options::default()
    };
    let w = world(o).await;
    w.sandbox
        .merge_seed(Seed {
            stripe: SeedStripe {
                objects: vec![api_object(
                    "v1.invoices.retrieve.in_1SBxE9QmT3xK8rLvR3tY6uIo.json",
                )],
                ..SeedStripe::default()
            },
            ..Seed::default()
        })
        .expect("seed");
    let thin = story("v2.core.event.v1.invoice.payment_failed.json");
    let id = thin["id"].as_str().expect("id");
    let r = w
        .post_as_stripe_signed("v2.core.event.v1.invoice.payment_failed.json")
        .await;
    assert_eq!(
        r.status(),
        200,
        "never a 400 for a correctly signed delivery"
    );
    w.app.drain().await;
    let waiting = w.event(id).await;
    assert_eq!(waiting.status, EventStatus::NeedsAttention);
    let reason = waiting.last_error.clone().expect("a reason");
    assert!(
        reason.starts_with(paybridge::store::THIN_NEEDS_KEY)
            && reason.contains("set [stripe] api_key"),
        "{reason}"
    );
    assert!(
        records(&w.state(), "contacts").is_empty(),
        "nothing acted on"
    );
    assert!(w.sandbox.stripe_requests().is_empty());

    // `paybridge check` on the same store reports it.
    let check_config = w.app.dir.path().join("check.toml");
    std::fs::write(
        &check_config,
        format!(
            "[store]\nurl = \"{}\"\n[stripe]\nwebhook_secrets = [\"whsec_x\"]\n[hubspot]\ntoken = \"{}\"\napi_base = \"{}\"\n",
            common::pg::store_url_for(w.app.dir.path()),
            SandboxConfig::default().token,
            w.sandbox.url()
        ),
    )
    .expect("write");
    let out = tokio::process::Command::from({
        let mut c = common::process::binary();
        c.arg("--config")
            .arg(&check_config)
            .arg("check")
            .env_remove("PAYBRIDGE_CONFIG")
            .env("PAYBRIDGE_LOG", "warn");
        c
    })
    .output()
    .await
    .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("waiting"))
        .unwrap_or_else(|| panic!("no waiting line: {text}"));
    assert!(
        line.contains("FAIL")
            && line.contains(&format!(
                "1 thin event(s) wait for stripe.api_key (e.g. {id})"
            )),
        "{line}"
    );

    // A key is set and the service restarts: the waiting event runs by itself.
    let World {
        sandbox,
        slack,
        provisioning,
        clock,
        app,
        ..
    } = w;
    let dir = app.stop().await;
    let with_key = config_text(&sandbox, &slack, &provisioning, &Options::default());
    let app = start(dir, &with_key, &sandbox, &clock).await;
    app.drain().await;
    let done = app
        .store
        .get_event_summary(id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(done.status, EventStatus::Done, "{:?}", done.last_error);
    let state = sandbox.state();
    assert_eq!(
        only_contact(&state)["properties"]["stripe_customer_id"],
        ADA
    );
    assert_eq!(records(&state, "tickets").len(), 1);
    app.stop().await;
}

// ─── 2. Guest payments ──────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_guest_checkout_gets_a_contact_by_email_which_the_later_customer_joins() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    let checkout = story("checkout.session.completed.guest.json");
    let charge = story("charge.succeeded.guest.json");
    assert_eq!(checkout["data"]["object"]["customer"], Value::Null);
    w.post(&checkout).await;
    w.post(&charge).await;
    w.app.drain().await;
    // The charge (a minute earlier) created the contact; the session found it by email.
    let expected = map(&[
        ("email", "charles.babbage@example.com"),
        ("stripe_last_payment_date", "2026-10-10"),
        ("stripe_last_payment_amount", "29.00"),
        ("stripe_delinquent", "false"),
    ]);
    let state = w.state();
    assert_eq!(
        written(&only_contact(&state)),
        expected,
        "no Stripe Customer ID yet"
    );
    for e in [&checkout, &charge] {
        let id = e["id"].as_str().expect("id");
        assert_eq!(w.event(id).await.status, EventStatus::Done);
    }

    // Redelivered: the same state.
    w.post(&checkout).await;
    w.post(&charge).await;
    w.app.drain().await;
    assert_eq!(written(&only_contact(&w.state())), expected);

    // The guest becomes a Stripe customer: the same contact is linked, no twin.
    let mut created = shared("customer.created.json");
    created["id"] = "evt_guest_becomes_customer".into();
    created["data"]["object"]["id"] = "cus_babbage1".into();
    created["data"]["object"]["email"] = "charles.babbage@example.com".into();
    w.post(&created).await;
    w.app.drain().await;
    let mut linked = expected.clone();
    linked.insert("stripe_customer_id".into(), "cus_babbage1".into());
    assert_eq!(written(&only_contact(&w.state())), linked);
    w.app.stop().await;
}

// ─── 3. Once per invoice, not per attempt ───────────────────────────────────────────

#[tokio::test]
async fn a_second_failed_attempt_of_the_same_invoice_opens_no_second_ticket_or_sequence() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    let first = shared("invoice.payment_failed.json");
    let second = story("invoice.payment_failed.attempt-2.json");
    assert_eq!(
        first["data"]["object"]["id"],
        second["data"]["object"]["id"]
    );
    w.post(&first).await;
    w.app.drain().await;
    let state = w.state();
    let tickets = records(&state, "tickets");
    assert_eq!(tickets.len(), 1);
    let jobs = w
        .app
        .store
        .sequence_jobs(ADA, "payment_recovery")
        .await
        .expect("jobs");
    assert_eq!(jobs.len(), 2, "step 0 done, step 1 pending: {jobs:?}");

    w.clock.advance_ms(DAY_MS);
    w.post(&second).await;
    w.post(&second).await;
    w.app.drain().await;
    let after = w.state();
    assert_eq!(
        records(&after, "tickets"),
        tickets,
        "the first attempt's ticket only"
    );
    assert_eq!(
        written(&tickets[0])["paybridge_key"],
        format!("{ADA}:dunning:0:{FAILED_INVOICE}")
    );
    assert!(written(&tickets[0])["content"].starts_with("Attempt 1 failed."));
    assert_eq!(
        records(&after, "enrollments").len(),
        1,
        "the sequence was not restarted"
    );
    assert_eq!(
        w.app
            .store
            .sequence_jobs(ADA, "payment_recovery")
            .await
            .expect("jobs"),
        jobs
    );
    let second_id = second["id"].as_str().expect("id");
    let rules: Vec<(String, String)> = w
        .app
        .store
        .steps_of(second_id)
        .await
        .expect("steps")
        .into_iter()
        .map(|s| (s.rule, s.status))
        .collect();
    assert_eq!(rules, [("financial".to_owned(), "done".to_owned())]);
    let timeline = w.app.store.timeline(second_id).await.expect("timeline");
    assert!(
        timeline
            .iter()
            .any(|t| t.message
                == format!("step {ADA}:dunning:0:{FAILED_INVOICE} already done; skipped")),
        "{timeline:#?}"
    );
    // attempt_count and next_payment_attempt stay available to rules: the contact shows
    // the latest failure's date.
    assert_eq!(
        written(&only_contact(&after))["stripe_last_payment_failed_date"],
        date(second["created"].as_i64().expect("created"))
    );
    w.app.stop().await;
}

// ─── 4. Status from subscriptions only; a $0 invoice is not a payment ───────────────

#[tokio::test]
async fn a_trial_is_trialing_with_no_payment_and_onboarding_waits_for_the_first_paid_invoice() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    let trialing = story("customer.subscription.created.trialing.json");
    let trial_invoice = story("invoice.paid.trial.json");
    w.post(&trialing).await;
    w.post(&trial_invoice).await;
    w.app.drain().await;
    let state = w.state();
    assert_eq!(
        written(&only_contact(&state)),
        map(&[
            ("email", "grace.hopper@example.org"),
            ("stripe_customer_id", "cus_TBgH5kR2mP8wQz"),
            ("stripe_subscription_status", "trialing"),
            ("stripe_subscription_tier", "Pro (monthly)"),
        ]),
        "trialing, no payment, not a customer yet"
    );
    assert!(records(&state, "tasks").is_empty() && records(&state, "deals").is_empty());
    assert_eq!(
        w.provisioning.received().len(),
        1,
        "access from the trial's start"
    );

    // The trial ends: the first invoice that takes money.
    let mut converted = trial_invoice.clone();
    converted["id"] = "evt_trial_converted_1".into();
    converted["created"] = 1_793_006_200.into();
    let invoice = &mut converted["data"]["object"];
    invoice["id"] = "in_trial_converted_1".into();
    invoice["billing_reason"] = "subscription_cycle".into();
    for field in ["amount_paid", "amount_due", "total", "subtotal"] {
        invoice[field] = 4900.into();
    }
    w.post(&converted).await;
    let mut active = story("customer.subscription.updated.cancel_at.json");
    active["data"]["object"]["cancel_at"] = Value::Null;
    w.post(&active).await;
    w.app.drain().await;
    let state = w.state();
    let contact = only_contact(&state);
    assert_eq!(
        written(&contact),
        map(&[
            ("email", "grace.hopper@example.org"),
            ("lifecyclestage", "customer"),
            ("stripe_customer_id", "cus_TBgH5kR2mP8wQz"),
            ("stripe_subscription_status", "active"),
            ("stripe_subscription_tier", "Pro (monthly)"),
            ("stripe_last_payment_date", &date(1_793_006_200)),
            ("stripe_last_payment_amount", "49.00"),
            ("stripe_delinquent", "false"),
        ])
    );
    let subjects: Vec<Value> = records(&state, "tasks")
        .iter()
        .map(|t| t["properties"]["hs_task_subject"].clone())
        .collect();
    assert_eq!(subjects, [json!("Thank-you call: Grace Hopper")]);
    let deals = records(&state, "deals");
    assert_eq!(deals.len(), 1);
    assert_eq!(deals[0]["properties"]["amount"], "49.00");
    assert_eq!(
        w.provisioning.received().len(),
        1,
        "provisioned once, at the trial"
    );

    // Redelivered: nothing twice.
    let before = created_records(&state);
    w.post(&converted).await;
    w.post(&trial_invoice).await;
    w.app.drain().await;
    assert_eq!(created_records(&w.state()), before);
    assert_eq!(w.provisioning.received().len(), 1);
    w.app.stop().await;
}

// ─── 6. Refunds ─────────────────────────────────────────────────────────────────────

/// The guest story's charge and refunds, as a Stripe customer's (so the lifetime value
/// applies).
fn customer_refund(name: &str) -> Value {
    let mut e = story(name);
    e["data"]["object"]["customer"] = "cus_refunds1".into();
    e
}

async fn refund_story(lowered_after_failure: bool) {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    let charge = "ch_3SGeQ2QmT3xK8rLv0aB1cD2e";
    let p2 = customer_refund("charge.refunded.partial-2.json");
    for name in [
        "charge.succeeded.guest.json",
        "refund.created.partial-1.json",
        "charge.refunded.partial-1.json",
    ] {
        w.post(&customer_refund(name)).await;
    }
    w.post(&p2).await;
    w.post(&customer_refund("refund.failed.json")).await;
    let mut expected_ltv = "20.00";
    let mut texts = vec![
        format!("Refund of $9.00 to charles.babbage@example.com (charge {charge})"),
        format!("Refund of $10.00 to charles.babbage@example.com (charge {charge})"),
        "Refund re_3SGeQ2QmT3xK8rLv0Rf2Xy9z of $10.00 to charles.babbage@example.com failed (expired_or_canceled_card): the money did not go back".to_owned(),
    ];
    if lowered_after_failure {
        // Stripe's material does not say whether a failed refund lowers the charge's
        // running `amount_refunded`. If it does, a later refund's event shows the lowered
        // total (900 + a new 500), which must not count the failed refund twice.
        let mut p3 = p2.clone();
        p3["id"] = "evt_refund_after_failure".into();
        p3["created"] = 1_792_700_000.into();
        p3["data"]["object"]["amount_refunded"] = 1400.into();
        p3["data"]["previous_attributes"]["amount_refunded"] = 900.into();
        w.post(&p3).await;
        expected_ltv = "15.00";
        texts.push(format!(
            "Refund of $5.00 to charles.babbage@example.com (charge {charge})"
        ));
    }
    w.app.drain().await;
    let state = w.state();
    let contact = only_contact(&state);
    assert_eq!(
        written(&contact),
        map(&[
            ("email", "charles.babbage@example.com"),
            ("stripe_customer_id", "cus_refunds1"),
            ("stripe_last_payment_date", "2026-10-10"),
            ("stripe_last_payment_amount", "29.00"),
            ("stripe_delinquent", "false"),
            ("stripe_refund_issued", "true"),
            ("stripe_lifetime_value", expected_ltv),
        ])
    );
    assert_eq!(w.slack_texts(), texts);
    let refund_tasks = records(&state, "tasks").len();
    assert_eq!(
        refund_tasks,
        texts.len() - 1,
        "a task per refund, none for the failure"
    );
    let failed = w.event("evt_3SGeQ2QmT3xK8rLv0Fp6Ls2D").await;
    assert_eq!(failed.status, EventStatus::Done);

    // Redelivered: nothing twice.
    let before = created_records(&state);
    w.post(&p2).await;
    w.post(&customer_refund("refund.failed.json")).await;
    w.app.drain().await;
    assert_eq!(created_records(&w.state()), before);
    assert_eq!(w.slack_texts(), texts);
    w.app.stop().await;
}

#[tokio::test]
async fn each_refund_counts_its_own_amount_and_a_failed_refund_is_not_a_refund() {
    refund_story(false).await;
}

#[tokio::test]
async fn a_failed_refund_is_counted_once_when_stripe_lowers_the_running_total() {
    refund_story(true).await;
}

// ─── 7. Product names ───────────────────────────────────────────────────────────────

#[tokio::test]
async fn the_tier_is_the_product_name_with_a_key_and_the_price_lookup_key_without() {
    let tiered = story("customer.subscription.created.tiered.json");
    for (key, tier) in [(true, "Team"), (false, "team_monthly_volume")] {
        let w = world(Options {
            key,
            stripe: SeedStripe {
                objects: vec![api_object("v1.products.retrieve.prod_TCj5Tm8Nb2Vc4X.json")],
                ..SeedStripe::default()
            },
            ..Options::default()
        })
        .await;
        w.post(&tiered).await;
        w.app.drain().await;
        w.post(&tiered).await;
        let mut updated = tiered.clone();
        updated["id"] = "evt_tiered_updated".into();
        updated["type"] = "customer.subscription.updated".into();
        updated["created"] = 1_792_500_000.into();
        w.post(&updated).await;
        w.app.drain().await;
        assert_eq!(
            written(&only_contact(&w.state())),
            map(&[
                ("stripe_customer_id", "cus_TCj6mN9pQ2rS4t"),
                ("stripe_subscription_status", "active"),
                ("stripe_subscription_tier", tier),
            ]),
            "key: {key}"
        );
        let product_reads: Vec<Value> = w
            .sandbox
            .stripe_requests()
            .into_iter()
            .filter(|r| r["path"] == "/v1/products/prod_TCj5Tm8Nb2Vc4X")
            .collect();
        assert_eq!(
            product_reads.len(),
            usize::from(key),
            "read once, then from the store"
        );
        w.app.stop().await;
    }
}

// ─── 8. Disputes ────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_dispute_finds_its_customer_through_the_charge_and_opens_a_high_priority_ticket() {
    let w = world(Options {
        stripe: SeedStripe {
            objects: vec![api_object(
                "v1.charges.retrieve.ch_3SHk1MQmT3xK8rLv1nW3eR5t.json",
            )],
            ..SeedStripe::default()
        },
        ..Options::default()
    })
    .await;
    let dispute = story("charge.dispute.created.guest.json");
    w.post(&dispute).await;
    w.post(&dispute).await;
    w.app.drain().await;
    let state = w.state();
    let contact = only_contact(&state);
    assert_eq!(
        written(&contact),
        map(&[("email", "mary.somerville@example.com")]),
        "a guest's charge: its receipt email"
    );
    let tickets = records(&state, "tickets");
    assert_eq!(tickets.len(), 1);
    let charge = "ch_3SHk1MQmT3xK8rLv1nW3eR5t";
    assert_eq!(
        written(&tickets[0]),
        map(&[
            (
                "subject",
                "Dispute: mary.somerville@example.com ($29.00, product_not_received)"
            ),
            (
                "content",
                &format!(
                    "Charge {charge} is disputed (product_not_received, needs_response). Evidence due by 2026-11-12T23:59:59Z."
                )
            ),
            ("hs_pipeline", "0"),
            ("hs_pipeline_stage", "1"),
            ("hs_ticket_priority", "HIGH"),
            ("hs_ticket_category", "BILLING_ISSUE"),
            (
                "paybridge_key",
                "guest:mary.somerville@example.com:dispute:0:du_1SLd3FQmT3xK8rLvB8nM2qW4"
            ),
        ])
    );
    assert_eq!(
        tickets[0]["associations"]["contacts"],
        json!([contact["id"]])
    );
    assert_eq!(
        w.slack_texts(),
        [
            "Dispute of $29.00 by mary.somerville@example.com (product_not_received); evidence due 2026-11-12T23:59:59Z"
        ]
    );
    let reads: Vec<Value> = w
        .sandbox
        .stripe_requests()
        .into_iter()
        .map(|r| r["path"].clone())
        .collect();
    assert_eq!(reads, [json!(format!("/v1/charges/{charge}"))]);
    w.app.stop().await;
}

#[tokio::test]
async fn without_a_key_a_dispute_finds_its_customer_from_the_charge_events_already_seen() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    // The charge's events come first (a dispute follows days later).
    w.post(&shared("charge.succeeded.json")).await;
    w.app.drain().await;
    w.post(&shared("charge.dispute.created.json")).await;
    w.app.drain().await;
    let state = w.state();
    let contact = only_contact(&state);
    assert_eq!(contact["properties"]["stripe_customer_id"], ADA);
    let tickets = records(&state, "tickets");
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(
        tickets[0]["properties"]["subject"],
        "Dispute: ada.lovelace@example.com ($39.00, fraudulent)"
    );
    assert_eq!(
        tickets[0]["properties"]["paybridge_key"],
        format!("{ADA}:dispute:0:du_1SDq8vQmT3xK8rLvM4nB6vCx")
    );
    w.post(&shared("charge.dispute.created.json")).await;
    w.app.drain().await;
    assert_eq!(records(&w.state(), "tickets").len(), 1);
    w.app.stop().await;
}

// ─── 10. Cancellations, Accounts v2, amounts ────────────────────────────────────────

const CANCELLATION_RULE: &str = r#"
[[rules]]
name = "cancellation"
on = ["customer.subscription.updated"]
if = "subscription.cancel_at"
actions = [{ type = "create_note", body = "Cancels {{ subscription.cancel_at_iso }} ({{ subscription.cancellation_reason }}, {{ subscription.cancellation_feedback }}: {{ subscription.cancellation_comment }})" }]
"#;

#[tokio::test]
async fn a_scheduled_cancellation_and_its_reasons_reach_the_rules() {
    let w = world(Options {
        key: false,
        extra: CANCELLATION_RULE,
        ..Options::default()
    })
    .await;
    let event = story("customer.subscription.updated.cancel_at.json");
    w.post(&event).await;
    w.post(&event).await;
    w.app.drain().await;
    let notes = records(&w.state(), "notes");
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let id = event["id"].as_str().expect("id");
    assert_eq!(
        notes[0]["properties"]["hs_note_body"],
        format!(
            "Cancels 2026-11-26T09:15:00Z (cancellation_requested, switched_service: Moving the team to another tool.){}",
            marker(&format!("{id}:cancellation:0"))
        )
    );
    w.app.stop().await;
}

#[tokio::test]
async fn an_accounts_v2_customer_and_a_tiered_invoice_are_read_as_stripe_sends_them() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    // `customer_account` is the identity where `customer` is absent.
    let mut paid = story("invoice.paid.customer-account.json");
    paid["data"]["object"]["customer"] = Value::Null;
    w.post(&paid).await;
    // A tiered price: the invoice's own amount, not unit_amount × quantity.
    w.post(&story("invoice.paid.tiered.json")).await;
    w.app.drain().await;
    let state = w.state();
    let by_customer: BTreeMap<String, Value> = records(&state, "contacts")
        .into_iter()
        .map(|c| {
            (
                c["properties"]["stripe_customer_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                c,
            )
        })
        .collect();
    let hedy = &by_customer["acct_1SM2xKQmT3xK8rLvHl"];
    assert_eq!(hedy["properties"]["email"], "hedy.lamarr@example.org");
    assert_eq!(hedy["properties"]["stripe_last_payment_amount"], "49.00");
    let katherine = &by_customer["cus_TCj6mN9pQ2rS4t"];
    assert_eq!(
        katherine["properties"]["stripe_last_payment_amount"],
        "180.00"
    );
    let deal_amounts: Vec<Value> = records(&state, "deals")
        .iter()
        .map(|d| d["properties"]["amount"].clone())
        .collect();
    assert_eq!(deal_amounts.len(), 2);
    assert!(deal_amounts.contains(&json!("180.00")), "{deal_amounts:?}");
    let provisioned: Vec<Value> = w
        .provisioning
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("JSON")["customer"].clone())
        .collect();
    assert!(
        provisioned.contains(&json!("acct_1SM2xKQmT3xK8rLvHl")),
        "{provisioned:?}"
    );
    let before = created_records(&state);
    w.post(&paid).await;
    w.app.drain().await;
    assert_eq!(created_records(&w.state()), before);
    w.app.stop().await;
}

// ─── 11. Every contact gets an email when Stripe has one ────────────────────────────

#[tokio::test]
async fn a_customer_known_only_from_charges_gets_an_email() {
    // Without a key: the charge's billing email.
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    let charge = shared("charge.succeeded.json");
    w.post(&charge).await;
    w.post(&charge).await;
    w.app.drain().await;
    assert_eq!(
        only_contact(&w.state())["properties"]["email"],
        "ada.lovelace@example.com"
    );
    w.app.stop().await;

    // With a key: the customer object's email wins over the card's.
    let mut customer = shared("customer.updated.json")["data"]["object"].clone();
    customer["created"] = 1_788_257_644.into();
    let w = world(Options {
        stripe: SeedStripe {
            customers: vec![customer],
            ..SeedStripe::default()
        },
        ..Options::default()
    })
    .await;
    w.post(&charge).await;
    w.app.drain().await;
    assert_eq!(
        only_contact(&w.state())["properties"]["email"],
        "ada@analytical-engines.example.org"
    );
    assert_eq!(
        w.sandbox
            .stripe_requests()
            .iter()
            .filter(|r| r["path"] == format!("/v1/customers/{ADA}"))
            .count(),
        1
    );
    w.app.stop().await;

    // No email anywhere yet: the first later event that has one fills it.
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    let mut bare = charge.clone();
    bare["data"]["object"]["billing_details"]["email"] = Value::Null;
    w.post(&bare).await;
    w.app.drain().await;
    assert_eq!(only_contact(&w.state())["properties"]["email"], Value::Null);
    w.post(&shared("invoice.payment_failed.json")).await;
    w.app.drain().await;
    assert_eq!(
        only_contact(&w.state())["properties"]["email"],
        "ada@analytical-engines.example.org"
    );
    w.app.stop().await;
}

// ─── 12. The email follows Stripe ───────────────────────────────────────────────────

fn renamed() -> Value {
    let mut updated = shared("customer.updated.json");
    updated["data"]["object"]["name"] = "Augusta Ada King".into();
    updated["data"]["previous_attributes"]["name"] = "Ada Lovelace".into();
    updated
}

#[tokio::test]
async fn a_changed_email_and_name_are_written_to_the_contact() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    w.post(&shared("customer.created.json")).await;
    w.app.drain().await;
    let updated = renamed();
    w.post(&updated).await;
    w.post(&updated).await;
    w.app.drain().await;
    assert_eq!(
        written(&only_contact(&w.state())),
        map(&[
            ("email", "ada@analytical-engines.example.org"),
            ("firstname", "Augusta"),
            ("lastname", "Ada King"),
            ("stripe_customer_id", ADA),
        ])
    );
    w.app.stop().await;
}

#[tokio::test]
async fn a_new_email_another_contact_has_waits_for_a_person_and_overwrites_nothing() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    w.post(&shared("customer.created.json")).await;
    w.app.drain().await;
    let ours = only_contact(&w.state());
    seed_contact(&w.sandbox, "7001", "ada@analytical-engines.example.org");
    let updated = renamed();
    w.post(&updated).await;
    w.app.drain().await;
    let id = updated["id"].as_str().expect("id");
    let event = w.event(id).await;
    assert_eq!(event.status, EventStatus::NeedsAttention);
    let reason = event.last_error.expect("reason");
    assert!(
        reason.contains("ada@analytical-engines.example.org")
            && reason.contains("contact 7001")
            && reason.contains(&format!("contact {}", ours["id"].as_str().expect("id"))),
        "{reason}"
    );
    let state = w.state();
    let contacts = records(&state, "contacts");
    let ours_now = contacts
        .iter()
        .find(|c| c["id"] == ours["id"])
        .expect("ours");
    assert_eq!(written(ours_now), written(&ours), "nothing overwritten");
    let other = contacts.iter().find(|c| c["id"] == "7001").expect("other");
    assert_eq!(
        written(other),
        map(&[
            ("email", "ada@analytical-engines.example.org"),
            ("firstname", "Someone")
        ])
    );
    w.app.stop().await;
}

#[tokio::test]
async fn with_follow_email_off_the_contact_keeps_its_email() {
    let w = world(Options {
        key: false,
        extra: "",
        ..Options::default()
    })
    .await;
    let World {
        sandbox,
        slack,
        provisioning,
        clock,
        config,
        app,
    } = w;
    let dir = app.stop().await;
    let config = config.replace("follow_email = true", "follow_email = false");
    assert!(config.contains("follow_email = false"));
    let app = start(dir, &config, &sandbox, &clock).await;
    let w = World {
        sandbox,
        slack,
        provisioning,
        clock,
        config,
        app,
    };
    w.post(&shared("customer.created.json")).await;
    w.post(&renamed()).await;
    w.app.drain().await;
    assert_eq!(
        written(&only_contact(&w.state())),
        map(&[
            ("email", "ada.lovelace@example.com"),
            ("firstname", "Ada"),
            ("lastname", "Lovelace"),
            ("stripe_customer_id", ADA),
        ])
    );
    w.app.stop().await;
}

// ─── 13. Clock skew is explained ────────────────────────────────────────────────────

#[tokio::test]
async fn a_delivery_refused_for_its_time_names_both_clocks() {
    let w = world(Options {
        key: false,
        ..Options::default()
    })
    .await;
    let body = serde_json::to_vec(&shared("customer.created.json")).expect("JSON");
    let now = w.clock.now_secs();
    let header = paybridge::stripe::sign(common::SECRET, now - 400, &body);
    let r = w.app.post_with_header(&body, Some(&header)).await;
    assert_eq!(r.status(), 400);
    let error: Value = r.json().await.expect("JSON");
    assert_eq!(error["error"], "signature_expired");
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("t={}", now - 400))
            && message.contains(&format!("this server's clock ({now}"))
            && message.contains("400 s behind"),
        "{message}"
    );
    assert_eq!(w.app.store.count_events().await.expect("count"), 0);
    // Stripe retries with a fresh signature: accepted.
    assert_eq!(w.app.post_signed(&body).await.status(), 200);
    w.app.stop().await;
}
