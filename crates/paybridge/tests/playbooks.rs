//! Every playbook of SPEC §1, end to end: the starter config `paybridge init` writes, real
//! signed webhooks, the sandbox's exact CRM state afterwards. The clock is manual, so due
//! dates and sequence steps land on known milliseconds; workers are driven by `drain`.

mod common;

use common::crm::{map, records, written};

use std::collections::BTreeMap;

use common::receiver::{Received, Receiver};
use common::{TestApp, restart_app_with_config, spawn_app_with_config, spawn_sandbox};
use hubspot_sandbox::{Faults, Sandbox, SandboxConfig, Seed, SeedRecord};
use paybridge::basics::Secret;
use paybridge::domain::{Clock, EventId, EventStatus};
use paybridge::stripe::simulate::{SimOptions, StoryOutcome, build_event, story};
use serde_json::{Map, Value, json};

/// The events' time (unix seconds, 2026-09-21); the app's clock starts a minute later.
const T0: i64 = 1_790_000_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
// What the tests sign provisioning calls with (in place of the starter's example).
use common::PROVISIONING_SECRET;
/// The product the starter's upsell rule looks for (the fixtures' Pro plan).
const PRO: &str = "prod_T7aL2pWq8sYv3N";

/// A sandbox, the starter config pointed at local receivers, and the app running it.
struct World {
    sandbox: Sandbox,
    slack: Receiver,
    provisioning: Receiver,
    clock: Clock,
    config: String,
    app: TestApp,
}

async fn world(provisioning_script: Vec<u16>) -> World {
    world_with(provisioning_script, |text| text).await
}

async fn world_with(provisioning_script: Vec<u16>, edit: impl FnOnce(String) -> String) -> World {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let slack = Receiver::start(Vec::new()).await;
    let provisioning = Receiver::start(provisioning_script).await;
    let clock = Clock::manual((T0 + 60) * 1000);
    let config = edit(starter_for(&slack, &provisioning));
    let app = spawn_app_with_config(&config, &sandbox, clock.clone()).await;
    World {
        sandbox,
        slack,
        provisioning,
        clock,
        config,
        app,
    }
}

/// The starter pointed at this test's receivers.
fn starter_for(slack: &Receiver, provisioning: &Receiver) -> String {
    common::starter_with_receivers(
        &format!("{}/slack", slack.url),
        &format!("{}/provision", provisioning.url),
    )
}

impl World {
    async fn post(&self, event: &Value) {
        let r = self
            .app
            .post_signed(&serde_json::to_vec(event).expect("JSON"))
            .await;
        assert_eq!(r.status(), 200, "{event}");
    }

    fn state(&self) -> Value {
        self.sandbox.state()
    }

    /// Stops the app and builds a new one on the same SQLite file, sandbox and clock.
    async fn restart(self) -> World {
        let World {
            sandbox,
            slack,
            provisioning,
            clock,
            config,
            app,
        } = self;
        let dir = app.stop().await;
        let app = restart_app_with_config(dir, &config, &sandbox, clock.clone()).await;
        World {
            sandbox,
            slack,
            provisioning,
            clock,
            config,
            app,
        }
    }

    async fn sequence_jobs(&self, customer: &str) -> Vec<(i64, String, i64)> {
        self.app
            .store
            .sequence_jobs(customer, "payment_recovery")
            .await
            .expect("sequence jobs")
    }

    async fn event_status(&self, id: &str) -> (EventStatus, i64) {
        let e = self
            .app
            .store
            .get_event(&EventId::parse(id).expect("id"))
            .await
            .expect("read")
            .expect("stored")
            .summary;
        (e.status, e.attempts)
    }
}

fn opts(customer: &str, email: &str) -> SimOptions {
    SimOptions::new(Some(customer.into()), Some(email.into()), None, None).expect("options")
}

/// A contact that exists before paybridge sees the customer, owned by `owner`.
fn seed_contact(sandbox: &Sandbox, id: &str, email: &str, owner: &str) {
    let properties: Map<String, Value> = [
        ("email", email),
        ("firstname", "Ada"),
        ("lastname", "Lovelace"),
        ("hubspot_owner_id", owner),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
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

fn id_of(event: &Value) -> &str {
    event["id"].as_str().expect("event id")
}

fn at<'a>(event: &'a Value, pointer: &str) -> &'a str {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {event}"))
}

/// The one contact linked to `customer`.
fn contact_of(state: &Value, customer: &str) -> Value {
    let found: Vec<Value> = records(state, "contacts")
        .into_iter()
        .filter(|c| c["properties"]["stripe_customer_id"] == customer)
        .collect();
    assert_eq!(found.len(), 1, "one contact for {customer}: {found:#?}");
    found.into_iter().next().expect("one")
}

fn associated(record: &Value, kind: &str) -> Value {
    record["associations"][kind].clone()
}

/// The marker paybridge puts in the text of a task's or note's body (see
/// `hubspot::richtext`: text survives HubSpot's sanitiser where a comment may not).
fn marker(key: &str) -> String {
    format!("<p>[paybridge:{key}]</p>")
}

/// HubSpot's `hs_timestamp` for a unix-ms instant, as the sandbox stores datetimes.
fn datetime(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .expect("a time")
}

fn date(unix_secs: i64) -> String {
    common::story::iso_date(unix_secs)
}

/// The association type ids HubSpot reports from a record to contacts.
async fn association_types(sandbox: &Sandbox, kind: &str, id: &str) -> Vec<u64> {
    let body: Value = reqwest::Client::new()
        .get(format!(
            "{}/crm/v4/objects/{kind}/{id}/associations/contacts",
            sandbox.url()
        ))
        .bearer_auth(SandboxConfig::default().token)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON");
    body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            r["associationTypes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|t| t["typeId"].as_u64())
        .collect()
}

fn list_members(state: &Value, list_id: &str) -> Value {
    records(state, "lists")
        .into_iter()
        .find(|l| l["listId"] == list_id)
        .map(|l| l["members"].clone())
        .unwrap_or_else(|| panic!("list {list_id}"))
}

/// Enrolments without their timestamps.
fn enrollments(state: &Value) -> Vec<Value> {
    records(state, "enrollments")
        .into_iter()
        .map(|e| json!({"workflowId": e["workflowId"], "email": e["email"], "contactId": e["contactId"]}))
        .collect()
}

/// The engagements and objects paybridge may create, for "nothing created twice".
fn created_records(state: &Value) -> Value {
    json!({
        "tasks": state["tasks"],
        "notes": state["notes"],
        "tickets": state["tickets"],
        "deals": state["deals"],
        "enrollments": state["enrollments"],
        "lists": state["lists"],
    })
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn onboarding_makes_a_customer_enrols_them_and_gives_their_owner_a_thank_you_call() {
    let w = world(Vec::new()).await;
    seed_contact(&w.sandbox, "5001", "onboard@example.com", "101");
    let paid = build_event(
        "invoice.paid",
        &opts("cus_onboard1", "onboard@example.com"),
        T0,
    )
    .expect("event");
    assert_eq!(
        paid["data"]["object"]["billing_reason"],
        "subscription_create"
    );
    w.post(&paid).await;
    w.app.drain().await;
    let now = w.clock.now_ms();
    let id = id_of(&paid);

    let state = w.state();
    let contact = contact_of(&state, "cus_onboard1");
    assert_eq!(contact["id"], "5001", "found by email, not created");
    assert_eq!(
        written(&contact),
        map(&[
            ("email", "onboard@example.com"),
            ("firstname", "Ada"),
            ("lastname", "Lovelace"),
            ("hubspot_owner_id", "101"),
            ("lifecyclestage", "customer"),
            ("stripe_customer_id", "cus_onboard1"),
            ("stripe_last_payment_date", &date(T0)),
            ("stripe_last_payment_amount", "49.00"),
            ("stripe_delinquent", "false"),
        ])
    );
    assert_eq!(
        enrollments(&state),
        [json!({"workflowId": "123456", "email": "onboard@example.com", "contactId": "5001"})]
    );

    let tasks = records(&state, "tasks");
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    // Once per subscription (`once_per`), keyed in the customer's lane.
    let sub = at(
        &paid,
        "/data/object/parent/subscription_details/subscription",
    );
    let task_key = format!("cus_onboard1:onboarding:2:{sub}");
    assert_eq!(
        written(&tasks[0]),
        map(&[
            ("hs_task_subject", "Thank-you call: Ada Lovelace"),
            (
                "hs_task_body",
                &format!(
                    "New subscription customer, first payment $49.00.{}",
                    marker(&task_key)
                )
            ),
            ("hs_timestamp", &datetime(now + DAY_MS)),
            ("hs_task_status", "NOT_STARTED"),
            ("hs_task_priority", "HIGH"),
            ("hs_task_type", "CALL"),
            ("hubspot_owner_id", "101"),
        ])
    );
    assert_eq!(associated(&tasks[0], "contacts"), json!(["5001"]));
    let task_id = tasks[0]["id"].as_str().expect("task id");
    assert_eq!(
        association_types(&w.sandbox, "tasks", task_id).await,
        [204],
        "task → contact, HUBSPOT_DEFINED 204"
    );

    let deals = records(&state, "deals");
    assert_eq!(deals.len(), 1, "{deals:#?}");
    assert_eq!(
        written(&deals[0]),
        map(&[
            ("dealname", "Ada Lovelace: new subscription"),
            ("amount", "49.00"),
            ("pipeline", "default"),
            ("dealstage", "closedwon"),
            ("closedate", &datetime(now)),
            ("hubspot_owner_id", "101"),
            ("paybridge_key", &format!("cus_onboard1:onboarding:3:{sub}")),
        ])
    );
    assert_eq!(associated(&deals[0], "contacts"), json!(["5001"]));
    assert!(records(&state, "tickets").is_empty());
    assert!(records(&state, "notes").is_empty());
    assert_eq!(w.event_status(id).await, (EventStatus::Done, 1));

    // Delivered again and re-run by an operator: nothing happens twice.
    let before = created_records(&state);
    w.post(&paid).await;
    assert_eq!(
        w.app
            .store
            .retry_events(&[id.to_owned()])
            .await
            .expect("retry"),
        [id.to_owned()]
    );
    w.app.drain().await;
    assert_eq!(created_records(&w.state()), before);
    assert_eq!(w.provisioning.received().len(), 1);
    w.app.stop().await;
}

#[tokio::test]
async fn provisioning_is_one_signed_post_with_the_step_key_despite_redelivery_and_rerun() {
    let w = world(Vec::new()).await;
    let customer = "cus_provision1";
    let paid =
        build_event("invoice.paid", &opts(customer, "provision@example.com"), T0).expect("event");
    let id = id_of(&paid);
    w.post(&paid).await;
    w.post(&paid).await;
    w.app.drain().await;
    let called_at = w.clock.now_secs();
    // The job runs again (an operator's retry); the call is already done.
    w.clock.advance_ms(60_000);
    assert_eq!(
        w.app
            .store
            .retry_events(&[id.to_owned()])
            .await
            .expect("retry"),
        [id.to_owned()]
    );
    assert_eq!(w.app.drain().await, 1, "the job ran a second time");

    let received = w.provisioning.received();
    assert_eq!(received.len(), 1, "exactly one POST");
    let call = &received[0];
    assert_eq!(call.path, "/provision");
    assert_eq!(header(call, "content-type"), "application/json");
    let sub = at(
        &paid,
        "/data/object/parent/subscription_details/subscription",
    );
    assert_eq!(
        header(call, "idempotency-key"),
        format!("{customer}:provisioning:0:{sub}")
    );
    let signature = header(call, "paybridge-signature");
    assert!(
        signature.starts_with(&format!("t={called_at},v1=")),
        "{signature}"
    );
    let signed_at = paybridge::stripe::verify(
        signature,
        &call.body,
        &[Secret::new(PROVISIONING_SECRET.into())],
        300,
        called_at,
    )
    .expect("HMAC-SHA256 of \"{t}.{body}\" under the configured secret");
    assert_eq!(signed_at, called_at);
    assert!(
        paybridge::stripe::verify(
            signature,
            &call.body,
            &[Secret::new("another-secret".into())],
            300,
            called_at
        )
        .is_err()
    );
    let body: Value = serde_json::from_slice(&call.body).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "event": id,
            "customer": customer,
            "email": "provision@example.com",
            "product": PRO,
            "subscription": at(&paid, "/data/object/parent/subscription_details/subscription"),
        })
    );
    assert_eq!(w.event_status(id).await, (EventStatus::Done, 1));
    w.app.stop().await;
}

#[tokio::test]
async fn provisioning_is_retried_until_the_app_answers_2xx_with_the_same_key_and_body() {
    let w = world(vec![503, 500]).await;
    let paid = build_event(
        "invoice.paid",
        &opts("cus_provision2", "provision2@example.com"),
        T0,
    )
    .expect("event");
    let id = id_of(&paid);
    w.post(&paid).await;
    w.app.drain().await;

    let received = w.provisioning.received();
    assert_eq!(received.len(), 3, "503, 500, then 200");
    let sub = at(
        &paid,
        "/data/object/parent/subscription_details/subscription",
    );
    for call in &received {
        assert_eq!(
            header(call, "idempotency-key"),
            format!("cus_provision2:provisioning:0:{sub}")
        );
        assert_eq!(call.body, received[0].body, "the same payload every time");
        let signature = header(call, "paybridge-signature");
        let t: i64 = signature
            .strip_prefix("t=")
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse().ok())
            .expect("t=");
        paybridge::stripe::verify(
            signature,
            &call.body,
            &[Secret::new(PROVISIONING_SECRET.into())],
            300,
            t,
        )
        .expect("each attempt is signed");
    }
    assert_eq!(w.event_status(id).await, (EventStatus::Done, 3));
    let state = w.state();
    assert_eq!(records(&state, "tasks").len(), 1, "CRM steps ran once");
    assert_eq!(records(&state, "deals").len(), 1);
    assert_eq!(records(&state, "enrollments").len(), 1);
    w.app.stop().await;
}

#[tokio::test]
async fn a_payment_for_product_a_puts_the_contact_on_the_cross_sell_list() {
    let w = world(Vec::new()).await;
    let pro =
        build_event("invoice.paid", &opts("cus_upsellA", "a@example.com"), T0).expect("event");
    let other = build_event(
        "invoice.paid",
        &SimOptions::new(
            Some("cus_upsellB".into()),
            Some("b@example.com".into()),
            None,
            Some("prod_OtherProduct1".into()),
        )
        .expect("options"),
        T0,
    )
    .expect("event");
    assert_eq!(
        at(
            &other,
            "/data/object/lines/data/0/pricing/price_details/product"
        ),
        "prod_OtherProduct1"
    );
    w.post(&pro).await;
    w.post(&other).await;
    w.app.drain().await;

    let state = w.state();
    let a = contact_of(&state, "cus_upsellA");
    contact_of(&state, "cus_upsellB");
    assert_eq!(list_members(&state, "1"), json!([a["id"]]));
    assert_eq!(list_members(&state, "2"), json!([]));
    let steps = w.app.store.steps_of(id_of(&pro)).await.expect("steps");
    let upsell: Vec<(&str, &str)> = steps
        .iter()
        .filter(|s| s.rule == "upsell-product-b")
        .map(|s| (s.kind.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(upsell, [("add_to_list", "done")]);
    let other_rules: Vec<String> = w
        .app
        .store
        .steps_of(id_of(&other))
        .await
        .expect("steps")
        .into_iter()
        .map(|s| s.rule)
        .collect();
    assert!(
        !other_rules.iter().any(|r| r == "upsell-product-b"),
        "{other_rules:?}"
    );
    w.app.stop().await;
}

#[tokio::test]
async fn dunning_opens_a_ticket_runs_the_sequence_on_time_and_hands_over_to_a_human() {
    let mut w = world(Vec::new()).await;
    let customer = "cus_dunningA";
    seed_contact(&w.sandbox, "5101", "dunning-a@example.com", "101");
    let events = story(
        &opts(customer, "dunning-a@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    let failed = &events[6];
    assert_eq!(failed["type"], "invoice.payment_failed");
    let id = id_of(failed).to_owned();
    let url = at(failed, "/data/object/hosted_invoice_url").to_owned();
    w.post(failed).await;
    let start = w.clock.now_ms();
    w.app.drain().await;

    let state = w.state();
    assert_eq!(
        written(&contact_of(&state, customer)),
        map(&[
            ("email", "dunning-a@example.com"),
            ("firstname", "Ada"),
            ("lastname", "Lovelace"),
            ("hubspot_owner_id", "101"),
            ("stripe_customer_id", customer),
            ("stripe_last_payment_failed_date", &date(T0 - 3)),
            ("stripe_delinquent", "true"),
        ])
    );
    let invoice = at(failed, "/data/object/id").to_owned();
    let tickets = records(&state, "tickets");
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    assert_eq!(
        written(&tickets[0]),
        map(&[
            ("subject", "Payment failed: Ada Lovelace ($49.00)"),
            ("content", &format!("Attempt 1 failed. Invoice: {url}")),
            ("hs_pipeline", "0"),
            ("hs_pipeline_stage", "1"),
            ("hs_ticket_priority", "HIGH"),
            ("hs_ticket_category", "BILLING_ISSUE"),
            ("hubspot_owner_id", "101"),
            ("paybridge_key", &format!("{customer}:dunning:0:{invoice}")),
        ])
    );
    assert_eq!(associated(&tickets[0], "contacts"), json!(["5101"]));
    // Step 0 ("0h") ran at once: the recovery workflow.
    assert_eq!(
        enrollments(&state),
        [json!({"workflowId": "222", "email": "dunning-a@example.com", "contactId": "5101"})]
    );
    assert!(records(&state, "tasks").is_empty());
    assert_eq!(
        w.sequence_jobs(customer).await,
        [
            (0, "done".to_owned(), start),
            (1, "pending".to_owned(), start + 3 * DAY_MS)
        ]
    );

    // One millisecond early, nothing is due.
    w.clock.set_ms(start + 3 * DAY_MS - 1);
    assert_eq!(w.app.drain().await, 0);
    assert!(records(&w.state(), "notes").is_empty());

    w.clock.set_ms(start + 3 * DAY_MS);
    assert_eq!(w.app.drain().await, 1, "step 1 ran");
    let state = w.state();
    let notes = records(&state, "notes");
    assert_eq!(notes.len(), 1);
    assert_eq!(
        written(&notes[0]),
        map(&[
            (
                "hs_note_body",
                &format!(
                    "Payment still failing after 3 days ($49.00).{}",
                    marker(&format!("{id}:seq:payment_recovery:1:0"))
                )
            ),
            ("hs_timestamp", &datetime(start + 3 * DAY_MS)),
        ])
    );
    assert_eq!(associated(&notes[0], "contacts"), json!(["5101"]));
    let tasks = records(&state, "tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        written(&tasks[0]),
        map(&[
            (
                "hs_task_subject",
                "Email Ada Lovelace: payment still failing"
            ),
            (
                "hs_task_body",
                &format!(
                    "Send the invoice link: {url}{}",
                    marker(&format!("{id}:seq:payment_recovery:1:1"))
                )
            ),
            ("hs_timestamp", &datetime(start + 3 * DAY_MS)),
            ("hs_task_status", "NOT_STARTED"),
            ("hs_task_priority", "MEDIUM"),
            ("hs_task_type", "EMAIL"),
            ("hubspot_owner_id", "101"),
        ])
    );
    assert_eq!(
        w.sequence_jobs(customer).await[2],
        (2, "pending".to_owned(), start + 7 * DAY_MS)
    );

    // A restart between the steps changes nothing.
    let before = created_records(&state);
    w = w.restart().await;
    assert_eq!(w.app.drain().await, 0);
    assert_eq!(created_records(&w.state()), before);

    w.clock.set_ms(start + 7 * DAY_MS);
    assert_eq!(w.app.drain().await, 1, "the last step ran");
    let state = w.state();
    let tasks = records(&state, "tasks");
    assert_eq!(tasks.len(), 2);
    let last = tasks
        .iter()
        .find(|t| t["properties"]["hs_task_subject"] == "Payment recovery ended: call Ada Lovelace")
        .expect("the task for a human");
    assert_eq!(
        written(last),
        map(&[
            (
                "hs_task_subject",
                "Payment recovery ended: call Ada Lovelace"
            ),
            (
                "hs_task_body",
                &format!(
                    "Automatic recovery is over; $49.00 is still unpaid.{}",
                    marker(&format!("{id}:seq:payment_recovery:2:0"))
                )
            ),
            ("hs_timestamp", &datetime(start + 7 * DAY_MS)),
            ("hs_task_status", "NOT_STARTED"),
            ("hs_task_priority", "HIGH"),
            ("hs_task_type", "CALL"),
            ("hubspot_owner_id", "101"),
        ])
    );
    assert_eq!(associated(last, "contacts"), json!(["5101"]));
    assert_eq!(
        w.sequence_jobs(customer).await,
        [
            (0, "done".to_owned(), start),
            (1, "done".to_owned(), start + 3 * DAY_MS),
            (2, "done".to_owned(), start + 7 * DAY_MS),
        ],
        "it stops after the last step"
    );
    // Each step finished at its own time on the injected clock.
    let finished: Vec<(String, Option<i64>)> = w
        .app
        .store
        .steps_of(&id)
        .await
        .expect("steps")
        .into_iter()
        .filter(|s| s.rule.starts_with("seq:"))
        .map(|s| (s.key, s.finished_at))
        .collect();
    assert_eq!(
        finished,
        [
            (format!("{id}:seq:payment_recovery:0:0"), Some(start)),
            (
                format!("{id}:seq:payment_recovery:1:0"),
                Some(start + 3 * DAY_MS)
            ),
            (
                format!("{id}:seq:payment_recovery:1:1"),
                Some(start + 3 * DAY_MS)
            ),
            (
                format!("{id}:seq:payment_recovery:2:0"),
                Some(start + 7 * DAY_MS)
            ),
        ]
    );

    // Months later, redelivered and re-run: nothing more, nothing twice.
    w.clock.advance_ms(30 * DAY_MS);
    let before = created_records(&w.state());
    w.post(failed).await;
    w.app
        .store
        .retry_events(std::slice::from_ref(&id))
        .await
        .expect("retry");
    w.app.drain().await;
    assert_eq!(created_records(&w.state()), before);
    assert_eq!(
        w.sequence_jobs(customer).await.len(),
        3,
        "not started again"
    );
    w.app.stop().await;
}

#[tokio::test]
async fn invoice_paid_cancels_what_remains_of_the_dunning_sequence() {
    let mut w = world(Vec::new()).await;
    let customer = "cus_dunningB";
    let events = story(
        &opts(customer, "dunning-b@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    let (failed, paid) = (&events[6], &events[8]);
    assert_eq!(paid["type"], "invoice.paid");
    assert_eq!(paid["data"]["object"]["id"], failed["data"]["object"]["id"]);
    w.post(failed).await;
    let start = w.clock.now_ms();
    w.app.drain().await;
    w.clock.set_ms(start + 3 * DAY_MS);
    assert_eq!(w.app.drain().await, 1, "step 1 ran");
    assert_eq!(records(&w.state(), "tasks").len(), 1);

    // The customer pays between step 1 and step 2.
    w.clock.advance_ms(HOUR_MS);
    w.post(paid).await;
    w.app.drain().await;
    assert_eq!(
        w.sequence_jobs(customer).await,
        [
            (0, "done".to_owned(), start),
            (1, "done".to_owned(), start + 3 * DAY_MS),
            (2, "cancelled".to_owned(), start + 7 * DAY_MS),
        ]
    );
    let timeline = w.app.store.timeline(id_of(paid)).await.expect("timeline");
    assert!(
        timeline
            .iter()
            .any(|t| t.message == "1 pending step(s) of payment_recovery cancelled by this event"),
        "{timeline:#?}"
    );
    let state = w.state();
    let contact = contact_of(&state, customer);
    assert_eq!(contact["properties"]["stripe_delinquent"], "false");
    assert_eq!(
        contact["properties"]["stripe_subscription_status"],
        Value::Null,
        "a paid invoice says nothing of the subscription's status; its own events do"
    );

    // Restarted, and long after step 2's time: the cancelled step never runs.
    let before = created_records(&state);
    w = w.restart().await;
    w.clock.set_ms(start + 30 * DAY_MS);
    assert_eq!(w.app.drain().await, 0);
    assert_eq!(created_records(&w.state()), before);
    let subjects: Vec<Value> = records(&w.state(), "tasks")
        .iter()
        .map(|t| t["properties"]["hs_task_subject"].clone())
        .collect();
    assert_eq!(
        subjects,
        [json!("Email Ada Lovelace: payment still failing")]
    );
    assert_eq!(w.sequence_jobs(customer).await[2].1, "cancelled");
    w.app.stop().await;
}

/// Guards dunning against Stripe's delivery order (issue 17, found by the kill -9 test):
/// last month's `invoice.paid`, delivered late (a retry), arrives after this month's
/// failure started the recovery sequence. It is an older event about another invoice: the
/// sequence goes on. Before, it cancelled every remaining step.
#[tokio::test]
async fn a_late_older_invoice_paid_does_not_cancel_the_recovery_of_a_newer_failure() {
    let w = world(Vec::new()).await;
    let customer = "cus_dunningC";
    let events = story(
        &opts(customer, "dunning-c@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    let failed = &events[6];
    let first_paid = events
        .iter()
        .find(|e| e["type"] == "invoice.paid")
        .expect("the first payment");
    assert!(first_paid["created"].as_i64() < failed["created"].as_i64());
    assert_ne!(
        first_paid["data"]["object"]["id"],
        failed["data"]["object"]["id"]
    );
    w.post(failed).await;
    let start = w.clock.now_ms();
    w.app.drain().await;
    w.post(first_paid).await;
    w.app.drain().await;
    assert_eq!(
        w.sequence_jobs(customer).await,
        [
            (0, "done".to_owned(), start),
            (1, "pending".to_owned(), start + 3 * DAY_MS)
        ],
        "the recovery goes on"
    );
    w.clock.set_ms(start + 3 * DAY_MS);
    assert_eq!(w.app.drain().await, 1, "step 1 ran");
    assert_eq!(records(&w.state(), "notes").len(), 1);
    w.app.stop().await;
}

#[tokio::test]
async fn a_refund_tells_finance_on_slack_tags_the_contact_and_asks_success_why() {
    let w = world(Vec::new()).await;
    let customer = "cus_refund1";
    let events = story(
        &opts(customer, "refund@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    let (created, succeeded, refunded) = (&events[0], &events[4], &events[5]);
    assert_eq!(refunded["type"], "charge.refunded");
    let charge = at(refunded, "/data/object/id");
    assert_eq!(succeeded["data"]["object"]["id"], charge, "the same charge");
    for e in [created, succeeded, refunded] {
        w.post(e).await;
    }
    w.app.drain().await;
    let now = w.clock.now_ms();

    let messages = w.slack.received();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].path, "/slack");
    let body: Value = serde_json::from_slice(&messages[0].body).expect("Slack JSON");
    assert_eq!(
        body,
        json!({"text": format!("Refund of $10.00 to Ada Lovelace (charge {charge})")})
    );

    let state = w.state();
    let contact = contact_of(&state, customer);
    assert_eq!(contact["properties"]["stripe_refund_issued"], "true");
    assert_eq!(contact["properties"]["stripe_lifetime_value"], "39.00");
    let tasks = records(&state, "tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        written(&tasks[0]),
        map(&[
            (
                "hs_task_subject",
                "Ask Ada Lovelace why they asked for a refund"
            ),
            (
                "hs_task_body",
                &marker(&format!("{}:refund:0", id_of(refunded)))
            ),
            ("hs_timestamp", &datetime(now + DAY_MS)),
            ("hs_task_status", "NOT_STARTED"),
            ("hs_task_type", "CALL"),
            ("hubspot_owner_id", "102"),
        ])
    );
    assert_eq!(associated(&tasks[0], "contacts"), json!([contact["id"]]));
    assert_eq!(list_members(&state, "2"), json!([contact["id"]]));

    // Redelivered and re-run: one Slack message, one task.
    let before = created_records(&state);
    w.post(refunded).await;
    w.app
        .store
        .retry_events(&[id_of(refunded).to_owned()])
        .await
        .expect("retry");
    w.app.drain().await;
    assert_eq!(w.slack.received().len(), 1);
    assert_eq!(created_records(&w.state()), before);
    w.app.stop().await;
}

#[tokio::test]
async fn an_enterprise_failure_goes_to_the_account_manager_and_nothing_automatic_runs() {
    let w = world(Vec::new()).await;
    let customer = "cus_enterprise1";
    let events = story(
        &opts(customer, "cfo@enterprise.example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    let mut created = events[0].clone();
    created["data"]["object"]["metadata"]["tier"] = "enterprise".into();
    let failed = &events[6];
    let url = at(failed, "/data/object/hosted_invoice_url").to_owned();
    w.post(&created).await;
    w.post(failed).await;
    w.app.drain().await;
    let now = w.clock.now_ms();

    let state = w.state();
    let contact = contact_of(&state, customer);
    let tasks = records(&state, "tasks");
    assert_eq!(tasks.len(), 1, "{tasks:#?}");
    assert_eq!(
        written(&tasks[0]),
        map(&[
            (
                "hs_task_subject",
                "Enterprise payment failed: call Ada Lovelace"
            ),
            (
                "hs_task_body",
                &format!(
                    "$49.00 failed (attempt 1). No automatic emails were sent. Invoice: {url}{}",
                    marker(&format!(
                        "{customer}:dunning-enterprise:0:{}",
                        at(failed, "/data/object/id")
                    ))
                )
            ),
            ("hs_timestamp", &datetime(now + 4 * HOUR_MS)),
            ("hs_task_status", "NOT_STARTED"),
            ("hs_task_priority", "HIGH"),
            ("hs_task_type", "CALL"),
            ("hubspot_owner_id", "101"),
        ])
    );
    assert_eq!(associated(&tasks[0], "contacts"), json!([contact["id"]]));
    assert!(records(&state, "tickets").is_empty(), "no dunning ticket");
    assert!(records(&state, "notes").is_empty());
    assert!(enrollments(&state).is_empty(), "no recovery workflow");
    assert!(w.sequence_jobs(customer).await.is_empty(), "no sequence");
    let rules: Vec<String> = w
        .app
        .store
        .steps_of(id_of(failed))
        .await
        .expect("steps")
        .into_iter()
        .map(|s| s.rule)
        .collect();
    assert_eq!(
        rules,
        ["dunning-enterprise", "financial"],
        "no `dunning` step"
    );
    // The tagging still keeps the record straight.
    assert_eq!(contact["properties"]["stripe_delinquent"], "true");

    // A week on, nothing automatic has happened.
    w.clock.advance_ms(8 * DAY_MS);
    assert_eq!(w.app.drain().await, 0);
    assert_eq!(records(&w.state(), "tasks").len(), 1);
    w.app.stop().await;
}

#[tokio::test]
async fn subscription_status_and_tier_follow_stripe_through_pause_resume_and_cancellation() {
    let w = world(Vec::new()).await;
    let customer = "cus_lifecycle1";
    let o = opts(customer, "lifecycle@example.com");
    let created = build_event("customer.subscription.created", &o, T0).expect("event");
    let updated = build_event("customer.subscription.updated", &o, T0 + 10).expect("event");
    let with = |base: &Value, id: &str, kind: &str, status: &str, created: i64| {
        let mut e = base.clone();
        e["id"] = id.into();
        e["type"] = kind.into();
        e["created"] = created.into();
        e["data"]["object"]["status"] = status.into();
        e
    };
    let paused = with(
        &updated,
        "evt_lifecyclePaused1",
        "customer.subscription.paused",
        "paused",
        T0 + 20,
    );
    let resumed = with(
        &updated,
        "evt_lifecycleResumed1",
        "customer.subscription.resumed",
        "active",
        T0 + 30,
    );
    let deleted = build_event("customer.subscription.deleted", &o, T0 + 40).expect("event");
    let status = |w: &World| {
        let c = contact_of(&w.state(), customer);
        (
            c["properties"]["stripe_subscription_status"].clone(),
            c["properties"]["stripe_subscription_tier"].clone(),
        )
    };
    for (event, expected) in [
        (&created, "active"),
        (&updated, "past_due"),
        (&paused, "paused"),
        (&resumed, "active"),
        (&deleted, "canceled"),
    ] {
        w.post(event).await;
        w.app.drain().await;
        assert_eq!(
            status(&w),
            (json!(expected), json!("Pro (monthly)")),
            "after {}",
            event["type"]
        );
    }
    // An update from before the cancellation, delivered late, does not revive it.
    let late = with(
        &updated,
        "evt_lifecycleLate1",
        "customer.subscription.updated",
        "active",
        T0 + 35,
    );
    w.post(&late).await;
    w.app.drain().await;
    assert_eq!(status(&w).0, json!("canceled"));

    // The churn rule keeps a note of the end.
    let notes = records(&w.state(), "notes");
    assert_eq!(notes.len(), 1);
    let subscription = at(&deleted, "/data/object/id");
    let reason = deleted
        .pointer("/data/object/cancellation_details/reason")
        .and_then(Value::as_str)
        .unwrap_or("no reason given");
    assert_eq!(
        notes[0]["properties"]["hs_note_body"],
        format!(
            "Subscription {subscription} ended ({reason}).{}",
            marker(&format!("{}:churned:2", id_of(&deleted)))
        )
    );
    w.app.stop().await;
}

#[tokio::test]
async fn financial_tagging_keeps_every_stripe_property_current_through_a_whole_story() {
    let w = world(Vec::new()).await;
    let customer = "cus_story1";
    let events = story(
        &opts(customer, "story@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    let kinds: Vec<&str> = events.iter().map(|e| at(e, "/type")).collect();
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
    for e in &events {
        w.post(e).await;
    }
    w.app.drain().await;
    let state = w.state();
    let contact = contact_of(&state, customer);
    assert_eq!(
        written(&contact),
        map(&[
            ("email", "story@example.com"),
            ("firstname", "Ada"),
            ("lastname", "Lovelace"),
            ("lifecyclestage", "customer"),
            ("stripe_customer_id", customer),
            ("stripe_subscription_status", "active"),
            ("stripe_subscription_tier", "Pro (monthly)"),
            ("stripe_last_payment_date", &date(T0 - 1)),
            ("stripe_last_payment_amount", "49.00"),
            ("stripe_last_payment_failed_date", &date(T0 - 3)),
            // 49.00 paid, 10.00 of it refunded.
            ("stripe_lifetime_value", "39.00"),
            ("stripe_refund_issued", "true"),
            ("stripe_delinquent", "false"),
        ])
    );
    let done = w
        .app
        .store
        .list_events(&paybridge::store::EventFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("events");
    assert_eq!(done.len(), events.len());
    assert!(
        done.iter().all(|e| e.status == EventStatus::Done),
        "{done:#?}"
    );

    // Every event delivered again and every job re-run: each charge counts once, and no
    // task, ticket, deal or note is created twice.
    let before = created_records(&state);
    for e in &events {
        w.post(e).await;
    }
    let ids: Vec<String> = events.iter().map(|e| id_of(e).to_owned()).collect();
    assert_eq!(
        w.app.store.retry_events(&ids).await.expect("retry").len(),
        ids.len()
    );
    w.app.drain().await;
    let state = w.state();
    assert_eq!(created_records(&state), before);
    assert_eq!(
        contact_of(&state, customer)["properties"]["stripe_lifetime_value"],
        "39.00"
    );
    assert_eq!(records(&state, "contacts").len(), 1);
    w.app.stop().await;
}

#[tokio::test]
async fn a_contact_that_exists_is_found_by_the_email_stripe_gave_at_sign_up() {
    // customer.created carries the email; subscription.created does not; invoice.paid does.
    let w = world(Vec::new()).await;
    seed_contact(&w.sandbox, "5301", "known@example.com", "102");
    let customer = "cus_known1";
    let events = story(
        &opts(customer, "known@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    for e in &events[..4] {
        w.post(e).await;
    }
    w.app.drain().await;
    let state = w.state();
    assert_eq!(records(&state, "contacts").len(), 1, "no second contact");
    assert_eq!(contact_of(&state, customer)["id"], "5301");
    for e in &events[..4] {
        assert_eq!(
            w.event_status(id_of(e)).await.0,
            EventStatus::Done,
            "{}",
            e["type"]
        );
    }
    w.app.stop().await;
}

#[tokio::test]
async fn shadow_mode_plans_and_records_every_action_and_writes_nothing() {
    let w = world_with(Vec::new(), |text| {
        let shadow = text.replace("# mode = \"live\"", "mode = \"shadow\"");
        assert_ne!(shadow, text, "the starter has the mode line");
        shadow
    })
    .await;
    let events = story(
        &opts("cus_shadow1", "shadow@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    for e in &events {
        w.post(e).await;
    }
    w.app.drain().await;
    w.clock.advance_ms(8 * DAY_MS);
    w.app.drain().await;

    let paid = &events[3];
    let steps = w.app.store.steps_of(id_of(paid)).await.expect("steps");
    let planned: Vec<(String, &str, &str)> = steps
        .iter()
        .map(|s| (s.key.clone(), s.kind.as_str(), s.status.as_str()))
        .collect();
    let id = id_of(paid);
    let (once, sub) = (
        "cus_shadow1",
        at(
            paid,
            "/data/object/parent/subscription_details/subscription",
        ),
    );
    assert_eq!(
        planned,
        [
            (format!("{id}:financial:0"), "update_contact", "planned"),
            (
                format!("{once}:onboarding:0:{sub}"),
                "update_contact",
                "planned"
            ),
            (
                format!("{once}:onboarding:1:{sub}"),
                "enroll_workflow",
                "planned"
            ),
            (
                format!("{once}:onboarding:2:{sub}"),
                "create_task",
                "planned"
            ),
            (
                format!("{once}:onboarding:3:{sub}"),
                "create_deal",
                "planned"
            ),
            (
                format!("{once}:provisioning:0:{sub}"),
                "call_webhook",
                "planned"
            ),
            (format!("{id}:upsell-product-b:0"), "add_to_list", "planned"),
        ]
    );
    for e in &events {
        let (status, _) = w.event_status(id_of(e)).await;
        assert_eq!(status, EventStatus::Done, "{}", e["type"]);
    }

    // Nothing reached HubSpot, Slack or the provisioning endpoint.
    let stats = w.sandbox.stats();
    let app_token = SandboxConfig::default().token;
    // No call at all with the app's token. The statistics list every token that made a
    // call (setup's is there), so an absent entry means none, not a changed shape.
    let tokens = stats["tokens"]
        .as_object()
        .unwrap_or_else(|| panic!("calls by token: {stats}"));
    assert!(tokens.contains_key("setup-token"), "{stats}");
    assert!(!tokens.contains_key(&app_token), "{stats}");
    let state = w.state();
    for kind in [
        "contacts",
        "tasks",
        "notes",
        "tickets",
        "deals",
        "enrollments",
    ] {
        assert!(records(&state, kind).is_empty(), "{kind}: {}", state[kind]);
    }
    for list in ["1", "2"] {
        assert_eq!(list_members(&state, list), json!([]));
    }
    assert!(w.slack.received().is_empty());
    assert!(w.provisioning.received().is_empty());
    assert!(
        w.sequence_jobs("cus_shadow1").await.is_empty(),
        "no sequence started"
    );

    // `paybridge events show` lists the planned actions (the real binary, on the store).
    let dir = w.app.stop().await;
    let config = dir.path().join("events.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\n[stripe]\nwebhook_secrets = [\"whsec_unused\"]\n[hubspot]\nsandbox = true\n",
            common::pg::store_url_for(dir.path())
        ),
    )
    .expect("write config");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_paybridge"))
        .arg("--config")
        .arg(&config)
        .args(["events", "show", id])
        .env_remove("PAYBRIDGE_CONFIG")
        .output()
        .await
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (key, kind, _) in &planned {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(key.as_str()))
            .unwrap_or_else(|| panic!("no line for {key} in:\n{stdout}"));
        assert!(line.contains(kind) && line.contains("planned"), "{line}");
    }
    assert!(stdout.contains("shadow mode: would run"), "{stdout}");
}

/// The CRM after a customer's whole life (`events`) through the starter's playbooks, the
/// dunning sequence run to its end, under `faults`: every record as paybridge wrote it
/// (without HubSpot's ids and the times the manual clock's retries move), the enrolments,
/// and each list's size; and the routes of the writes HubSpot carried out.
async fn crm_after_story(events: &[Value], faults: Faults) -> (Value, Vec<String>) {
    let w = world(Vec::new()).await;
    w.sandbox.set_faults(faults);
    for e in events {
        w.post(e).await;
    }
    w.app.drain().await;
    for _ in 0..3 {
        w.clock.advance_ms(4 * DAY_MS);
        w.app.drain().await;
    }
    let stats = w.sandbox.stats();
    w.sandbox.set_faults(Faults::default());
    let token = SandboxConfig::default().token;
    let writes: Vec<String> = stats["tokens"][token.as_str()]["calls_by_route"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(route, _)| route.clone())
        .filter(|r| {
            !r.starts_with("GET ") && !r.ends_with("/search") && !r.ends_with("/batch/read")
        })
        .collect();
    let state = w.state();
    let timeless = |record: &Value| {
        let mut props = written(record);
        for moved in ["hs_timestamp", "closedate"] {
            props.remove(moved);
        }
        props
    };
    let mut crm = Map::new();
    for kind in ["contacts", "tasks", "notes", "tickets", "deals"] {
        let mut made: Vec<BTreeMap<String, String>> =
            records(&state, kind).iter().map(timeless).collect();
        made.sort();
        crm.insert(kind.into(), json!(made));
    }
    let mut enrolled: Vec<Value> = records(&state, "enrollments")
        .iter()
        .map(|e| json!([e["workflowId"], e["email"]]))
        .collect();
    enrolled.sort_by_key(|e| e.to_string());
    crm.insert("enrollments".into(), json!(enrolled));
    let sizes: Vec<Value> = records(&state, "lists")
        .iter()
        .map(|l| json!([l["listId"], l["members"].as_array().map(Vec::len)]))
        .collect();
    crm.insert("lists".into(), json!(sizes));
    crm.insert(
        "answers_lost".into(),
        json!(stats["answers_lost"].as_u64().unwrap_or(0) > 0),
    );
    w.app.stop().await;
    (Value::Object(crm), writes)
}

/// Guards "never acts twice" in every playbook where HubSpot did the work and paybridge
/// did not hear it (issue 17): a customer's whole life, recovered or cancelled, against a
/// sandbox that loses the first answer of every kind of write it carries out (contact,
/// task, note, ticket, deal, enrolment, list membership…), then a fifth of the rest (a 502
/// or a dropped connection), ends in exactly the CRM of the same life without faults: the
/// same contact, tasks, notes, tickets, deals, enrolments and list members, none twice.
#[tokio::test]
async fn every_playbook_ends_in_the_same_crm_when_answers_are_lost() {
    for outcome in [StoryOutcome::Recovered, StoryOutcome::Cancelled] {
        let events = story(&opts("cus_lossy", "lossy@example.com"), outcome, T0);
        let (mut clean, writes) = crm_after_story(&events, Faults::default()).await;
        for kind in ["tasks", "tickets", "deals", "enrollments"] {
            assert!(
                clean[kind].as_array().is_some_and(|r| !r.is_empty()),
                "{outcome:?} makes {kind}: {clean:#}"
            );
        }
        assert!(writes.len() >= 5, "{writes:?}");
        let lossy = Faults {
            lost_answers: writes,
            lost_answer_rate: 0.2,
            ..Faults::default()
        };
        let (lossy, _) = crm_after_story(&events, lossy).await;
        assert_eq!(lossy["answers_lost"], true);
        clean["answers_lost"] = true.into();
        assert_eq!(lossy, clean, "{outcome:?}");
    }
}

/// Guards `[contacts] create_missing = false` (issue 17, untested before): a customer with
/// no contact gets none, and nothing that needs one is made (the steps are skipped, the
/// events done); a customer whose email a contact already has is still found by it and
/// tagged.
#[tokio::test]
async fn without_create_missing_only_existing_contacts_are_acted_on() {
    let w = world_with(Vec::new(), |text| {
        let edited = text.replace("create_missing = true", "create_missing = false");
        assert_ne!(edited, text, "the starter sets create_missing");
        edited
    })
    .await;
    seed_contact(&w.sandbox, "5301", "known@example.com", "101");
    let unknown = story(
        &opts("cus_unknown", "unknown@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    let known = story(
        &opts("cus_known", "known@example.com"),
        StoryOutcome::Recovered,
        T0,
    );
    for e in unknown.iter().chain(&known) {
        w.post(e).await;
    }
    w.app.drain().await;
    for e in unknown.iter().chain(&known) {
        assert_eq!(
            w.event_status(id_of(e)).await.0,
            EventStatus::Done,
            "{}",
            e["type"]
        );
    }
    let state = w.state();
    let contacts = records(&state, "contacts");
    assert_eq!(contacts.len(), 1, "no contact created: {contacts:#?}");
    assert_eq!(contacts[0]["id"], "5301");
    assert_eq!(
        contacts[0]["properties"]["stripe_customer_id"], "cus_known",
        "the known customer's contact is found by email and tagged"
    );
    // Everything the starter made is the known customer's.
    for kind in ["tasks", "tickets", "deals", "notes"] {
        for r in records(&state, kind) {
            assert_eq!(associated(&r, "contacts"), json!(["5301"]), "{kind}");
        }
    }
    assert!(
        !records(&state, "deals").is_empty(),
        "onboarding ran for the known one"
    );
    w.app.stop().await;
}

/// Guards `hubspot.api_version = "v3"` end to end (issue 17, untested before): a whole
/// customer life through the starter's playbooks on the legacy paths makes the same CRM
/// as on the date-versioned ones, and no call uses a 2026-09 path.
#[tokio::test]
async fn the_v3_paths_run_every_playbook_like_the_dated_ones() {
    let events = story(
        &opts("cus_vthree", "vthree@example.com"),
        StoryOutcome::Cancelled,
        T0,
    );
    let (dated, _) = crm_after_story(&events, Faults::default()).await;
    let w = world_with(Vec::new(), |text| {
        let edited = text.replace("api_version = \"2026-09\"", "api_version = \"v3\"");
        assert_ne!(edited, text, "the starter names the API version");
        edited
    })
    .await;
    for e in &events {
        w.post(e).await;
    }
    w.app.drain().await;
    let stats = w.sandbox.stats();
    let token = SandboxConfig::default().token;
    let routes: Vec<&String> = stats["tokens"][token.as_str()]["calls_by_route"]
        .as_object()
        .map(|r| r.keys().collect())
        .unwrap_or_default();
    assert!(routes.len() >= 5, "{stats}");
    let dated_paths: Vec<&&String> = routes.iter().filter(|r| r.contains("2026-09")).collect();
    assert!(dated_paths.is_empty(), "{dated_paths:?}");
    let state = w.state();
    for kind in ["tasks", "tickets", "deals"] {
        assert_eq!(
            records(&state, kind).len(),
            dated[kind].as_array().map(Vec::len).unwrap_or(0),
            "{kind}"
        );
    }
    w.app.stop().await;
}
