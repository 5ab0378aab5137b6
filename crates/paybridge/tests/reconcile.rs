//! Reconcile against the sandbox's HubSpot and Stripe: deliberate drift (properties edited
//! through HubSpot's API, a contact deleted, a subscription cancelled in Stripe with no
//! event sent, a customer deleted in Stripe, two contacts claiming one customer) is
//! reported exactly; `--fix` repairs what can be repaired through the pipeline; a second
//! run finds no drift; a repair older than a live event leaves the live event's value; an
//! interrupted run resumes after its cursor.

mod common;

use std::collections::BTreeSet;

use common::process::{run_command, sandbox_config_file};
use common::{TestApp, spawn_app_with, spawn_sandbox, spawn_sandbox_with, use_sandbox};
use hubspot_sandbox::{Sandbox, SandboxConfig, Seed, SeedRecord, SeedStripe};
use paybridge::basics::Secret;
use paybridge::catchup::reconcile::{
    Current, ReconcileError, ReconcileOptions, ReconcileProgress, Reconciler, Repairs,
};
use paybridge::domain::Clock;
use paybridge::store::{Finding, FindingKind};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

const STRIPE_KEY: &str = "sk_test_reconcile_0123456789";
const BASE: i64 = 1_780_000_000;

fn customer(n: u32, delinquent: bool) -> Value {
    json!({"id": format!("cus_r{n}"), "object": "customer", "created": BASE + i64::from(n) * 100,
           "email": format!("r{n}@example.com"), "name": format!("Ada{n} Lovelace"),
           "livemode": false, "delinquent": delinquent, "metadata": {}})
}

fn subscription(n: u32, status: &str, plan: &str) -> Value {
    json!({"id": format!("sub_r{n}"), "object": "subscription", "customer": format!("cus_r{n}"),
           "created": BASE + i64::from(n) * 100 + 1, "status": status, "currency": "usd",
           "livemode": false, "cancel_at_period_end": false,
           "items": {"object": "list", "data": [{"id": format!("si_r{n}"), "object": "subscription_item",
              "quantity": 1, "price": {"id": format!("price_{plan}"), "object": "price", "currency": "usd",
              "nickname": plan, "product": "prod_reconcile", "unit_amount": 4900}}]}})
}

fn charge(id: &str, n: u32, at: i64, status: &str, amount: i64, refunded: i64) -> Value {
    json!({"id": id, "object": "charge", "customer": format!("cus_r{n}"), "created": at,
           "status": status, "amount": amount, "amount_refunded": refunded, "currency": "usd",
           "refunded": refunded == amount, "livemode": false})
}

/// Five customers: r1 active with one payment; r2 active, paid and partly refunded; r3
/// active, its renewal failed (delinquent); r4 trialing, no charge; r5 no subscription,
/// one payment.
fn stripe_seed() -> SeedStripe {
    let day = 86_400;
    SeedStripe {
        customers: vec![
            customer(1, false),
            customer(2, false),
            customer(3, true),
            customer(4, false),
            customer(5, false),
        ],
        subscriptions: vec![
            subscription(1, "active", "Pro (monthly)"),
            subscription(2, "active", "Basic (monthly)"),
            subscription(3, "active", "Pro (monthly)"),
            subscription(4, "trialing", "Pro (monthly)"),
        ],
        objects: vec![
            charge("ch_r1", 1, BASE + 10 * day, "succeeded", 4900, 0),
            charge("ch_r2", 2, BASE + 11 * day, "succeeded", 2900, 1000),
            charge("ch_r3a", 3, BASE + 12 * day, "succeeded", 4900, 0),
            charge("ch_r3b", 3, BASE + 42 * day, "failed", 4900, 0),
            charge("ch_r5", 5, BASE + 13 * day, "succeeded", 1500, 0),
        ],
        ..SeedStripe::default()
    }
}

async fn app_for(sandbox: &Sandbox) -> TestApp {
    spawn_app_with(
        |s| {
            use_sandbox(s, sandbox);
            s.stripe.api_key = Some(Secret::new(STRIPE_KEY.into()));
            s.stripe.api_base = sandbox.url();
        },
        Clock::system(),
    )
    .await
}

/// A sandbox with [`stripe_seed`]'s Stripe and an empty HubSpot, and the app on it.
async fn seeded() -> (Sandbox, TestApp) {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    sandbox
        .merge_seed(Seed {
            stripe: stripe_seed(),
            ..Seed::default()
        })
        .expect("seed");
    let app = app_for(&sandbox).await;
    (sandbox, app)
}

fn api(sandbox: &Sandbox) -> paybridge::stripe::api::StripeApi {
    paybridge::stripe::api::StripeApi::new(&sandbox.url(), Secret::new(STRIPE_KEY.into()))
        .expect("client")
}

fn repairs(app: &TestApp) -> Repairs {
    let intake =
        paybridge::app::services::intake(&paybridge::rules::RuleSet::default(), app.store.clone());
    Repairs::new(intake, false)
}

fn reconciler(app: &TestApp, sandbox: &Sandbox, fix: bool) -> Reconciler {
    Reconciler::new(
        api(sandbox),
        app.pipeline.hubspot().clone(),
        app.store.clone(),
        "stripe_customer_id",
        fix.then(|| repairs(app)),
    )
}

/// One run over every customer (repairs drained with `fix`); its findings.
async fn reconcile(
    app: &TestApp,
    sandbox: &Sandbox,
    fix: bool,
) -> (ReconcileProgress, Vec<Finding>) {
    let options = ReconcileOptions {
        fix,
        trigger: "command",
        ..ReconcileOptions::default()
    };
    let state = reconciler(app, sandbox, fix)
        .run(&options, &CancellationToken::new(), &mut |_| {})
        .await
        .expect("reconcile runs");
    if fix {
        app.drain().await;
    }
    let findings = app
        .store
        .reconcile_findings(&state.run)
        .await
        .expect("findings");
    (state, findings)
}

/// A finding as (kind, customer, property, Stripe's value, HubSpot's value).
type Seen = (FindingKind, String, String, Option<String>, Option<String>);

fn seen(findings: &[Finding]) -> BTreeSet<Seen> {
    findings
        .iter()
        .map(|f| {
            (
                f.kind,
                f.customer.clone(),
                f.property.clone(),
                f.stripe_value.clone(),
                f.hubspot_value.clone(),
            )
        })
        .collect()
}

fn finding(
    kind: FindingKind,
    customer: &str,
    property: &str,
    stripe: Option<&str>,
    hubspot: Option<&str>,
) -> Seen {
    (
        kind,
        customer.to_owned(),
        property.to_owned(),
        stripe.map(str::to_owned),
        hubspot.map(str::to_owned),
    )
}

/// The contact claiming `customer` in the sandbox's state.
fn contact_of(sandbox: &Sandbox, customer: &str) -> Value {
    sandbox.state()["contacts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["properties"]["stripe_customer_id"] == customer)
        .cloned()
        .unwrap_or_else(|| panic!("no contact claims {customer}"))
}

/// A person edits the contact claiming `customer` through HubSpot's API; its id.
async fn edit_contact(sandbox: &Sandbox, customer: &str, body: Value) -> String {
    let id = contact_of(sandbox, customer)["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/crm/v3/objects/contacts/{id}");
    hubspot_call(sandbox, reqwest::Method::PATCH, &path, Some(body)).await;
    id
}

/// A page of the app's admin listener (dashboard, metrics).
async fn admin_get(app: &TestApp, path: &str) -> String {
    let answer = app
        .client
        .get(format!("{}{path}", app.admin_url))
        .bearer_auth("admin-test-token-0123456789abcdef")
        .send()
        .await
        .expect("the admin listener answers");
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
    answer.text().await.expect("text")
}

/// A HubSpot API call with the sandbox's token (a person editing the CRM).
async fn hubspot_call(sandbox: &Sandbox, method: reqwest::Method, path: &str, body: Option<Value>) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", sandbox.url()))
        .bearer_auth(SandboxConfig::default().token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.expect("HubSpot answers");
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reported_exactly_repaired_and_gone_on_the_next_run() {
    let (sandbox, app) = seeded().await;

    // No contact yet: five customers without one; --fix creates them, with every property.
    let (first, findings) = reconcile(&app, &sandbox, false).await;
    assert_eq!(first.customers, 5);
    let none: BTreeSet<Seen> = (1..=5)
        .map(|n| {
            let email = format!("r{n}@example.com");
            finding(
                FindingKind::NoContact,
                &format!("cus_r{n}"),
                "",
                Some(&email),
                None,
            )
        })
        .collect();
    assert_eq!(seen(&findings), none);
    let (fixed, _) = reconcile(&app, &sandbox, true).await;
    assert_eq!(fixed.repairs_queued, 5);
    let r2 = contact_of(&sandbox, "cus_r2")["properties"].clone();
    assert_eq!(r2["stripe_lifetime_value"], "19.00", "{r2}");
    assert_eq!(r2["stripe_refund_issued"], "true");
    assert_eq!(r2["stripe_subscription_tier"], "Basic (monthly)");
    assert_eq!(r2["email"], "r2@example.com");
    let r3 = contact_of(&sandbox, "cus_r3")["properties"].clone();
    assert_eq!(r3["stripe_delinquent"], "true");
    assert_eq!(
        r3["stripe_last_payment_failed_date"],
        paybridge::domain::time::iso_date(BASE + 42 * 86_400)
    );
    let (_, clean) = reconcile(&app, &sandbox, false).await;
    assert_eq!(
        seen(&clean),
        BTreeSet::new(),
        "HubSpot agrees after the repairs"
    );

    // The drift.
    edit_contact(&sandbox, "cus_r1", json!({"properties": {"stripe_subscription_status": "canceled", "stripe_lifetime_value": "10"}})).await;
    let r2 = contact_of(&sandbox, "cus_r2")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    hubspot_call(
        &sandbox,
        reqwest::Method::DELETE,
        &format!("/crm/v3/objects/contacts/{r2}"),
        None,
    )
    .await;
    let mut cancelled = subscription(3, "canceled", "Pro (monthly)");
    cancelled["canceled_at"] = json!(BASE + 50 * 86_400);
    let mut deleted = customer(4, false);
    deleted["deleted"] = json!(true);
    sandbox
        .merge_seed(Seed {
            stripe: SeedStripe {
                subscriptions: vec![cancelled],
                customers: vec![deleted],
                ..SeedStripe::default()
            },
            ..Seed::default()
        })
        .expect("Stripe changes with no event sent");

    let (drifted, findings) = reconcile(&app, &sandbox, false).await;
    let r4 = contact_of(&sandbox, "cus_r4")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let expected: BTreeSet<Seen> = [
        finding(
            FindingKind::Drift,
            "cus_r1",
            "stripe_lifetime_value",
            Some("49.00"),
            Some("10"),
        ),
        finding(
            FindingKind::Drift,
            "cus_r1",
            "stripe_subscription_status",
            Some("active"),
            Some("canceled"),
        ),
        finding(
            FindingKind::NoContact,
            "cus_r2",
            "",
            Some("r2@example.com"),
            None,
        ),
        finding(
            FindingKind::Drift,
            "cus_r3",
            "stripe_subscription_status",
            Some("canceled"),
            Some("active"),
        ),
        finding(
            FindingKind::UnknownCustomer,
            "cus_r4",
            "",
            None,
            Some("cus_r4"),
        ),
        // Deleting a customer cancels its subscriptions.
        finding(
            FindingKind::Drift,
            "cus_r4",
            "stripe_subscription_status",
            Some("canceled"),
            Some("trialing"),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen(&findings), expected, "no more, no less");
    assert_eq!(
        drifted.customers, 4,
        "the deleted customer is not listed by Stripe"
    );
    // Each drift names the last event paybridge applied for the property: the repair.
    let status = findings
        .iter()
        .find(|f| f.customer == "cus_r1" && f.property == "stripe_subscription_status")
        .expect("r1's status");
    assert_eq!(
        status.last_event.as_deref(),
        Some(format!("evt_reconcile_{}_cus_r1", fixed.run).as_str())
    );
    let unknown = findings
        .iter()
        .find(|f| f.kind == FindingKind::UnknownCustomer)
        .expect("r4");
    assert_eq!(unknown.contact_id, r4);
    assert_eq!(unknown.detail.as_deref(), Some("deleted in Stripe"));

    // The dashboard shows the last run, drift by property.
    let page = admin_get(&app, "/").await;
    for part in [
        "Last reconcile",
        "report only",
        "subscription status 3 (0 fixed)",
        "lifetime value 1 (0 fixed)",
        &drifted.run,
    ] {
        assert!(page.contains(part), "{part} on the dashboard");
    }

    // --fix: the drift and the missing contact are repaired, the deleted customer's
    // contact shows its subscription cancelled; that contact's claim stays reported.
    let (repaired, findings) = reconcile(&app, &sandbox, true).await;
    assert_eq!(repaired.repairs_queued, 4, "r1, r2, r3 and r4's contact");
    let ids: BTreeSet<String> = findings
        .iter()
        .filter_map(|f| f.repair_event.clone())
        .collect();
    for id in &ids {
        let event = app
            .store
            .get_event_summary(id)
            .await
            .expect("store")
            .expect("the repair is in the event log");
        assert_eq!(event.source, "reconcile");
        assert_eq!(event.status.as_str(), "done", "{id}");
    }
    assert_eq!(
        contact_of(&sandbox, "cus_r1")["properties"]["stripe_subscription_status"],
        "active"
    );
    for cancelled in ["cus_r3", "cus_r4"] {
        assert_eq!(
            contact_of(&sandbox, cancelled)["properties"]["stripe_subscription_status"],
            "canceled",
            "{cancelled}"
        );
    }
    // The repair entered Stripe's charges in the ledger: the next charge adds to them.
    let now = app.clock.now_secs();
    let next = json!({"id": "evt_live_r1_charge", "object": "event", "created": now,
        "livemode": false, "type": "charge.succeeded", "api_version": "2026-08-26.dahlia",
        "data": {"object": charge("ch_r1_next", 1, now, "succeeded", 1000, 0)}});
    let next = serde_json::to_vec(&next).expect("json");
    assert_eq!(app.post_signed(&next).await.status(), 200);
    app.drain().await;
    assert_eq!(
        contact_of(&sandbox, "cus_r1")["properties"]["stripe_lifetime_value"],
        "59.00",
        "49.00 from Stripe's list, then 10.00"
    );
    sandbox
        .merge_seed(Seed {
            stripe: SeedStripe {
                objects: vec![charge("ch_r1_next", 1, now, "succeeded", 1000, 0)],
                ..SeedStripe::default()
            },
            ..Seed::default()
        })
        .expect("Stripe has the charge too");
    let (_, after) = reconcile(&app, &sandbox, false).await;
    assert_eq!(
        seen(&after),
        [finding(
            FindingKind::UnknownCustomer,
            "cus_r4",
            "",
            None,
            Some("cus_r4")
        )]
        .into_iter()
        .collect::<BTreeSet<_>>(),
        "no drift left; the deleted customer's contact stays reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_older_than_a_live_event_leaves_the_newer_value() {
    let (sandbox, app) = seeded().await;
    reconcile(&app, &sandbox, true).await;
    let read_at = app.clock.now_secs();
    // A live event newer than the repair's read of Stripe is applied first...
    let live = common::event_json(
        "evt_live_cancel",
        "customer.subscription.updated",
        "cus_r1",
        read_at + 60,
    );
    let live = {
        let mut v: Value = serde_json::from_slice(&live).expect("json");
        v["data"]["object"]["status"] = json!("canceled");
        serde_json::to_vec(&v).expect("json")
    };
    assert_eq!(app.post_signed(&live).await.status(), 200);
    app.drain().await;
    // ...then a repair made from Stripe's state as read before it.
    let mut findings = vec![Finding {
        kind: FindingKind::Drift,
        customer: "cus_r1".into(),
        contact_id: String::new(),
        property: "stripe_subscription_status".into(),
        stripe_value: Some("active".into()),
        hubspot_value: Some("past_due".into()),
        last_event: None,
        last_event_created: None,
        detail: None,
        repair_event: None,
    }];
    let want = [("stripe_subscription_status".to_owned(), "active".to_owned())]
        .into_iter()
        .collect();
    let current = Current {
        id: "cus_r1",
        customer: &customer(1, false),
        properties: &want,
        ledger: &[],
        read_at,
    };
    let queued = repairs(&app)
        .queue("race", &current, &mut findings)
        .await
        .expect("queued");
    assert_eq!(queued, 1);
    app.drain().await;
    assert_eq!(
        contact_of(&sandbox, "cus_r1")["properties"]["stripe_subscription_status"],
        "canceled",
        "the newer event's value stays"
    );
    // A run that read Stripe before that event does not call its write drift.
    let (_, findings) = reconcile(&app, &sandbox, false).await;
    assert!(
        !findings
            .iter()
            .any(|f| f.property == "stripe_subscription_status"),
        "{findings:?}"
    );
    let timeline = app
        .store
        .timeline("evt_reconcile_race_cus_r1")
        .await
        .expect("timeline");
    assert!(
        timeline.iter().any(|t| t
            .message
            .contains("stripe_subscription_status skipped: a newer event already wrote it")),
        "{timeline:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_after_its_cursor() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let mut stripe = SeedStripe::default();
    for n in 0..250u32 {
        stripe.customers.push(customer(1000 + n, false));
    }
    sandbox
        .merge_seed(Seed {
            stripe,
            ..Seed::default()
        })
        .expect("seed");
    let app = app_for(&sandbox).await;
    let cancel = CancellationToken::new();
    let options = ReconcileOptions {
        trigger: "command",
        ..ReconcileOptions::default()
    };
    // Interrupted once the first page of customers is stored.
    let stop = cancel.clone();
    let interrupted = reconciler(&app, &sandbox, false)
        .run(&options, &cancel, &mut |p| {
            if p.customers >= 100 {
                stop.cancel();
            }
        })
        .await;
    assert!(
        matches!(interrupted, Err(ReconcileError::Cancelled)),
        "{interrupted:?}"
    );
    let run = app
        .store
        .reconcile_unfinished()
        .await
        .expect("store")
        .expect("an unfinished run");
    assert_eq!(run.customers, 100);
    assert_eq!(
        run.cursor.as_deref(),
        Some("cus_r1150"),
        "newest first: 1249 down to 1150"
    );
    let requests_before = sandbox.stripe_requests().len();

    let resumed = reconciler(&app, &sandbox, false)
        .run(
            &ReconcileOptions {
                resume: true,
                ..options.clone()
            },
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .expect("resumed");
    assert_eq!(resumed.run, run.run);
    assert_eq!((resumed.customers_before, resumed.customers), (100, 150));
    let requests = sandbox.stripe_requests();
    let customer_pages: Vec<&Value> = requests[requests_before..]
        .iter()
        .filter(|r| r["path"] == "/v1/customers")
        .collect();
    assert_eq!(
        customer_pages.len(),
        2,
        "150 customers after the cursor: two pages"
    );
    let findings = app
        .store
        .reconcile_findings(&run.run)
        .await
        .expect("findings");
    let missing: BTreeSet<&str> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::NoContact)
        .map(|f| f.customer.as_str())
        .collect();
    assert_eq!(missing.len(), 250, "every customer, each once");
    let again = reconciler(&app, &sandbox, false)
        .run(
            &ReconcileOptions {
                resume: true,
                ..options
            },
            &CancellationToken::new(),
            &mut |_| {},
        )
        .await;
    assert!(
        matches!(again, Err(ReconcileError::NothingToResume(_))),
        "{again:?}"
    );
}

/// A portal where `stripe_customer_id` was made by hand without unique values: HubSpot
/// refuses batch reads by it, and two contacts can hold one customer. Both are reported
/// (the comparison uses the contacts read by search).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_contacts_claiming_one_customer_are_reported() {
    let mut defs = paybridge::rules::properties::builtin("stripe_customer_id");
    for d in &mut defs {
        d.unique = false;
    }
    let sandbox = spawn_sandbox_with(SandboxConfig::default(), defs).await;
    let contact = |id: &str, customer: &str| {
        let mut properties = Map::new();
        properties.insert("stripe_customer_id".into(), customer.into());
        properties.insert("email".into(), format!("{id}@example.com").into());
        SeedRecord {
            id: Some(id.to_owned()),
            properties,
            associations: Vec::new(),
        }
    };
    sandbox
        .merge_seed(Seed {
            stripe: SeedStripe {
                customers: vec![customer(5, false)],
                objects: vec![charge("ch_r5", 5, BASE + 86_400, "succeeded", 1500, 0)],
                ..SeedStripe::default()
            },
            contacts: vec![contact("501", "cus_r5"), contact("502", "cus_r5")],
            ..Seed::default()
        })
        .expect("seed");
    let app = app_for(&sandbox).await;
    let (_, findings) = reconcile(&app, &sandbox, false).await;
    let twice: BTreeSet<(&str, &str)> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::ClaimedTwice)
        .map(|f| (f.customer.as_str(), f.contact_id.as_str()))
        .collect();
    assert_eq!(
        twice,
        [("cus_r5", "501"), ("cus_r5", "502")].into_iter().collect()
    );
    // Each contact's own drift is reported too (neither shows the payment).
    let drift: BTreeSet<(&str, &str)> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Drift && f.property == "stripe_last_payment_amount")
        .map(|f| {
            (
                f.contact_id.as_str(),
                f.stripe_value.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        drift,
        [("501", "15.00"), ("502", "15.00")].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_reports_fixes_and_prints_outside_text_safely() {
    let (sandbox, app) = seeded().await;
    drop(app);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = sandbox_config_file(dir.path(), &sandbox, STRIPE_KEY);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let out = run_command(&config, &["reconcile", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["customers_compared"], 5);
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["no_contact"; 5]);

    let out = run_command(&config, &["reconcile", "--fix"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("5 customers without a contact"), "{stdout}");
    assert!(stdout.contains("5 repaired"), "{stdout}");
    assert!(
        text(&out.stderr).contains("reconcile (done)"),
        "progress: {}",
        text(&out.stderr)
    );
    assert_eq!(
        contact_of(&sandbox, "cus_r5")["properties"]["stripe_lifetime_value"],
        "15.00",
        "the command ran the repairs itself"
    );

    // Each repair is in the event log with source `reconcile`, its step and its timeline.
    let out = run_command(&config, &["events", "list", "--json"]).await;
    let events: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let repair = events
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["customer"] == "cus_r5")
        .expect("the repair of cus_r5");
    let id = repair["id"].as_str().expect("id");
    assert!(id.starts_with("evt_reconcile_"), "{repair}");
    assert_eq!(repair["status"], "done", "{repair}");
    let out = run_command(&config, &["events", "show", id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for part in [
        "reconcile",
        &format!("{id}:reconcile:0"),
        "stripe_lifetime_value=15.00",
    ] {
        assert!(shown.contains(part), "{part} in {shown}");
    }

    // A hand edit with a terminal escape sequence in it.
    let r1 = edit_contact(
        &sandbox,
        "cus_r1",
        json!({"properties": {"stripe_subscription_tier": "Pro\u{1b}[2J"}}),
    )
    .await;
    let out = run_command(&config, &["reconcile"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("drift"))
        .unwrap_or_else(|| panic!("a drift line: {stdout}"));
    for part in [
        "cus_r1",
        &r1,
        "stripe_subscription_tier",
        "Pro (monthly)",
        "Pro\\u{1b}[2J",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(stdout.contains(" 1 drift"), "{stdout}");

    let out = run_command(&config, &["reconcile", "--customer", "cus_r1", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["customers_compared"], 1);
    assert_eq!(
        report["findings"][0]["property"],
        "stripe_subscription_tier"
    );
    assert_eq!(report["findings"][0]["hubspot_value"], "Pro\u{1b}[2J");
    assert_eq!(report["findings"].as_array().map(Vec::len), Some(1));

    let out = run_command(&config, &["reconcile", "--customer", "not a customer"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_runs_on_the_replica_holding_the_lease_when_due() {
    use paybridge::catchup::reconcile::schedule::LEASE;
    let (sandbox, app) = seeded().await;
    let every = std::time::Duration::from_secs(24 * 3600);
    let cancel = CancellationToken::new();
    let replica = reconciler(&app, &sandbox, true);
    // Another replica holds the lease: this one does not run.
    assert!(
        app.store
            .lease(LEASE, "other", 60_000)
            .await
            .expect("lease")
    );
    let ran = replica
        .scheduled_turn(every, "this", &cancel)
        .await
        .expect("turn");
    assert!(!ran, "the lease is another replica's");
    app.store
        .release_lease(LEASE, "other")
        .await
        .expect("release");
    assert!(
        replica
            .scheduled_turn(every, "this", &cancel)
            .await
            .expect("turn"),
        "due (never ran) and the lease is free"
    );
    app.drain().await;
    let run = app
        .store
        .reconcile_last_run()
        .await
        .expect("store")
        .expect("a run");
    assert_eq!(
        (run.trigger.as_str(), run.fix, run.complete),
        ("schedule", true, true)
    );
    assert_eq!(
        contact_of(&sandbox, "cus_r2")["properties"]["stripe_lifetime_value"],
        "19.00",
        "the scheduled run repairs"
    );
    let metrics = admin_get(&app, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("paybridge_reconcile_runs_total{")
                && l.contains("trigger=\"schedule\"")
                && l.contains("result=\"ok\"")),
        "{metrics}"
    );
    assert!(
        metrics.contains("paybridge_reconcile_last_run_findings{"),
        "{metrics}"
    );
    assert!(
        app.store
            .lease(LEASE, "other", 60_000)
            .await
            .expect("lease"),
        "the lease was given back"
    );
    app.store
        .release_lease(LEASE, "other")
        .await
        .expect("release");
    assert!(
        !replica
            .scheduled_turn(every, "this", &cancel)
            .await
            .expect("turn"),
        "not due again for a day"
    );
}

#[test]
fn reconcile_every_is_off_by_default_and_checked() {
    let load = |stripe: &str| {
        paybridge::app::load::load_from_str(
            Some(&format!(
                "[stripe]\nwebhook_secrets = [\"whsec_x\"]\n{stripe}\n[hubspot]\ntoken = \"t\"\n"
            )),
            None,
            &std::collections::HashMap::new(),
        )
    };
    let default = load("").expect("loads");
    assert_eq!(default.settings.stripe.reconcile_every, None);
    assert_eq!(default.settings.stripe.reconcile_budget_share, 0.3);
    let set =
        load("api_key = \"sk_test_x\"\nreconcile_every = \"24h\"\nreconcile_budget_share = 0.5")
            .expect("loads");
    assert_eq!(
        set.settings.stripe.reconcile_every,
        Some(std::time::Duration::from_secs(24 * 3600))
    );
    assert_eq!(set.settings.stripe.reconcile_budget_share, 0.5);
    let Err(refused) = load("reconcile_every = \"10m\"\nreconcile_budget_share = 2") else {
        panic!("a bad schedule is refused");
    };
    let refused = refused.to_string();
    for part in [
        "stripe.reconcile_every: must be at least 1h",
        "stripe.reconcile_every: needs stripe.api_key",
        "stripe.reconcile_budget_share: must be a share",
    ] {
        assert!(refused.contains(part), "{part} in {refused}");
    }
}
