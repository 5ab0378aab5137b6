//! The fewest HubSpot calls (issue 14): a new customer's contact is created in one call
//! that carries the event's properties; a burst's second event attaches the email within
//! its property update; a contact that already exists is found after HubSpot refuses the
//! create, and nothing is duplicated or lost on the way.

mod common;

use common::story::event;
use common::{spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{SandboxConfig, Seed, SeedRecord};
use paybridge::domain::{Clock, EventId, EventStatus};
use serde_json::{Value, json};

const T0: i64 = 1_790_000_000;

/// HubSpot calls of the app's token so far, by route.
fn calls(sandbox: &hubspot_sandbox::Sandbox) -> Value {
    sandbox.stats()["tokens"][SandboxConfig::default().token]["calls_by_route"].clone()
}

fn contacts(sandbox: &hubspot_sandbox::Sandbox) -> Vec<Value> {
    sandbox.state()["contacts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn prop<'a>(contact: &'a Value, name: &str) -> Option<&'a str> {
    contact["properties"][name].as_str()
}

/// A contact the portal has before paybridge runs.
fn seed_contact(sandbox: &hubspot_sandbox::Sandbox, id: &str, email: &str, firstname: &str) {
    sandbox
        .merge_seed(Seed {
            contacts: vec![SeedRecord {
                id: Some(id.into()),
                properties: json!({"email": email, "firstname": firstname})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                associations: Vec::new(),
            }],
            ..Seed::default()
        })
        .expect("seed");
}

async fn summary(app: &common::TestApp, id: &str) -> paybridge::store::EventSummary {
    app.store
        .get_event(&EventId::parse(id).expect("id"))
        .await
        .expect("get")
        .expect("stored")
        .summary
}

async fn post(app: &common::TestApp, e: &Value) {
    let r = app.post_signed(&serde_json::to_vec(e).expect("json")).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_customer_costs_one_create_and_its_next_event_one_update() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = spawn_app_with(|s| use_sandbox(s, &sandbox), Clock::system()).await;

    // A subscription event carries no email: created keyed by the customer, its status and
    // tier in the same call.
    let mut sub = event(
        "customer.subscription.updated.json",
        "evt_calls_sub",
        "cus_calls1",
        "",
        T0,
    );
    sub["data"]["object"]["status"] = "active".into();
    post(&app, &sub).await;
    assert_eq!(app.drain().await, 1);
    assert_eq!(
        calls(&sandbox),
        json!({"POST /crm/objects/2026-09/contacts/batch/create": 1}),
        "one create, no read, no separate update"
    );
    let all = contacts(&sandbox);
    assert_eq!(all.len(), 1);
    assert_eq!(prop(&all[0], "stripe_customer_id"), Some("cus_calls1"));
    assert_eq!(prop(&all[0], "stripe_subscription_status"), Some("active"));
    assert_eq!(prop(&all[0], "email"), None);

    // Its payment brings the email: written with the payment's properties, one update.
    let paid = event(
        "invoice.paid.json",
        "evt_calls_paid",
        "cus_calls1",
        "calls1@example.com",
        T0 + 60,
    );
    post(&app, &paid).await;
    assert_eq!(app.drain().await, 1);
    assert_eq!(
        calls(&sandbox),
        json!({
            "POST /crm/objects/2026-09/contacts/batch/create": 1,
            "POST /crm/objects/2026-09/contacts/batch/update": 1,
        })
    );
    let all = contacts(&sandbox);
    assert_eq!(all.len(), 1, "no twin");
    assert_eq!(prop(&all[0], "email"), Some("calls1@example.com"));
    assert_eq!(prop(&all[0], "stripe_delinquent"), Some("false"));
    assert!(prop(&all[0], "stripe_last_payment_date").is_some());
    assert_eq!(prop(&all[0], "stripe_subscription_status"), Some("active"));

    // The steps ledger says the first event's properties went with the create.
    let shown = app
        .store
        .steps_of("evt_calls_sub")
        .await
        .expect("steps")
        .into_iter()
        .filter_map(|s| s.result)
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        shown.contains(r#""with_create":["stripe_subscription_status""#),
        "{shown}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_contact_is_found_after_the_refused_create_and_linked_once() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    seed_contact(&sandbox, "777", "known@example.com", "Known");
    let app = spawn_app_with(|s| use_sandbox(s, &sandbox), Clock::system()).await;
    let paid = event(
        "invoice.paid.json",
        "evt_calls_known",
        "cus_known",
        "known@example.com",
        T0,
    );
    post(&app, &paid).await;
    assert_eq!(app.drain().await, 1);
    assert_eq!(
        summary(&app, "evt_calls_known").await.status,
        EventStatus::Done
    );
    let all = contacts(&sandbox);
    assert_eq!(all.len(), 1, "the existing contact, no twin: {all:#?}");
    assert_eq!(all[0]["id"], "777");
    assert_eq!(prop(&all[0], "stripe_customer_id"), Some("cus_known"));
    assert_eq!(prop(&all[0], "stripe_delinquent"), Some("false"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_for_the_owner_of_a_contact_just_created_reads_nothing() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let config = r#"
[[rules]]
name = "dunning"
on = ["invoice.payment_failed"]
actions = [
  { type = "create_ticket", subject = "Payment failed: {{ customer.email }}", priority = "HIGH", owner = "contact_owner" },
]
"#;
    let app = common::spawn_app_with_config(config, &sandbox, Clock::system()).await;
    let failed = event(
        "invoice.payment_failed.json",
        "evt_calls_failed",
        "cus_calls_owner",
        "owner@example.com",
        T0,
    );
    post(&app, &failed).await;
    assert_eq!(app.drain().await, 1);
    assert_eq!(
        calls(&sandbox),
        json!({
            "POST /crm/objects/2026-09/contacts/batch/create": 1,
            "POST /crm/objects/2026-09/tickets/batch/create": 1,
        }),
        "the contact's owner is known from its create: none"
    );
    let tickets = sandbox.state()["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tickets.len(), 1);
    assert_eq!(prop(&tickets[0], "hubspot_owner_id"), None, "unassigned");

    // Later, a person gives the contact an owner in HubSpot: the next ticket reads it.
    let contact = contacts(&sandbox)[0]["id"].as_str().expect("id").to_owned();
    let http = reqwest::Client::new();
    let r = http
        .patch(format!(
            "{}/crm/v3/objects/contacts/{contact}",
            sandbox.url()
        ))
        .bearer_auth(SandboxConfig::default().token)
        .json(&json!({"properties": {"hubspot_owner_id": "101"}}))
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_success(), "{}", r.status());
    let again = event(
        "invoice.payment_failed.json",
        "evt_calls_failed_again",
        "cus_calls_owner",
        "owner@example.com",
        T0 + 3_600,
    );
    post(&app, &again).await;
    assert_eq!(app.drain().await, 1);
    let tickets = sandbox.state()["tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tickets.len(), 2);
    assert!(
        tickets
            .iter()
            .any(|t| prop(t, "hubspot_owner_id") == Some("101")),
        "{tickets:#?}"
    );
    app.stop().await;
}

/// `contacts.match_email = false` as it behaves since contacts are created first (issue
/// 14, `worker/resolve.rs`). HubSpot keeps one contact per email and refuses a create that
/// repeats one, so a new customer whose email a contact already has cannot get a contact
/// of its own: with `create_missing = true` paybridge creates, is refused, and acts on the
/// contact that has the email (stamping the customer's id on it) whatever `match_email`
/// says — a setting that made the event fail instead would leave the customer with no
/// contact at all. Only without `create_missing` is the email not looked up: nothing is
/// created, the existing contact is left as it was, and the event is done with nothing to
/// act on. Fails if `match_email = false` is ignored there (the contact would be stamped)
/// or honoured after the refused create (the event would be dead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_match_email_off_only_a_refused_create_leads_to_the_contact_with_the_email() {
    for create_missing in [true, false] {
        let sandbox = spawn_sandbox(SandboxConfig::default()).await;
        seed_contact(&sandbox, "778", "taken@example.com", "Taken");
        let app = spawn_app_with(
            |s| {
                use_sandbox(s, &sandbox);
                s.contacts.match_email = false;
                s.contacts.create_missing = create_missing;
            },
            Clock::system(),
        )
        .await;
        let paid = event(
            "invoice.paid.json",
            "evt_calls_taken",
            "cus_taken",
            "taken@example.com",
            T0,
        );
        post(&app, &paid).await;
        assert_eq!(app.drain().await, 1);
        let summary = summary(&app, "evt_calls_taken").await;
        assert_eq!(summary.status, EventStatus::Done, "{summary:?}");
        let all = contacts(&sandbox);
        assert_eq!(all.len(), 1, "never a second contact: {all:#?}");
        assert_eq!(all[0]["id"], "778");
        let timeline: Vec<String> = app
            .store
            .timeline("evt_calls_taken")
            .await
            .expect("timeline")
            .into_iter()
            .map(|t| t.message)
            .collect();
        let said = |words: &str| timeline.iter().any(|m| m.contains(words));
        let calls = calls(&sandbox);
        if create_missing {
            assert_eq!(calls["POST /crm/objects/2026-09/contacts/batch/create"], 1);
            assert!(said("contact create refused"), "{timeline:#?}");
            assert!(
                said("contact found: 778 by email; stamped stripe_customer_id = cus_taken"),
                "{timeline:#?}"
            );
            assert_eq!(prop(&all[0], "stripe_customer_id"), Some("cus_taken"));
            assert_eq!(prop(&all[0], "stripe_delinquent"), Some("false"));
        } else {
            let writes: Vec<&String> = calls
                .as_object()
                .into_iter()
                .flat_map(|by_route| by_route.keys())
                .filter(|route| !route.ends_with("/batch/read"))
                .collect();
            assert!(writes.is_empty(), "only reads: {calls}");
            assert!(said("create_missing = false"), "{timeline:#?}");
            assert_eq!(prop(&all[0], "stripe_customer_id"), None);
            assert_eq!(prop(&all[0], "stripe_delinquent"), None);
        }
        app.stop().await;
    }
}
