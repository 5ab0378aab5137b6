//! Properties and property groups.

mod common;

use common::spawn;
use reqwest::StatusCode;
use serde_json::json;

fn status_prop() -> serde_json::Value {
    let options: Vec<serde_json::Value> = [
        "active",
        "trialing",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
        "incomplete",
        "incomplete_expired",
    ]
    .iter()
    .map(|v| json!({"label": v, "value": v}))
    .collect();
    json!({
        "name": "stripe_subscription_status", "label": "Subscription Status", "type": "enumeration", "fieldType": "select",
        "groupName": "stripe", "options": options
    })
}

#[tokio::test]
async fn groups_and_properties_are_created_once() {
    let api = spawn().await;
    let r = api.post("/crm/v3/properties/contacts", status_prop()).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "the group must exist first"
    );
    let r = api
        .post(
            "/crm/v3/properties/contacts/groups",
            json!({"name": "stripe", "label": "Stripe"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.body,
        json!({"name": "stripe", "label": "Stripe", "displayOrder": -1, "archived": false})
    );
    let r = api
        .post(
            "/crm/v3/properties/contacts/groups",
            json!({"name": "stripe", "label": "Stripe"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        api.get("/crm/v3/properties/contacts/groups/stripe")
            .await
            .status,
        StatusCode::OK
    );

    let r = api.post("/crm/v3/properties/contacts", status_prop()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["type"], "enumeration");
    assert_eq!(r.body["options"].as_array().map(Vec::len), Some(8));
    assert_eq!(r.body["hubspotDefined"], false);
    let r = api.post("/crm/v3/properties/contacts", status_prop()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["category"], "CONFLICT");

    let r = api
        .get("/crm/properties/2026-09/0-1/stripe_subscription_status")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["groupName"], "stripe");
    let r = api.get("/crm/v3/properties/contacts").await;
    let names: Vec<&str> = r.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for n in [
        "email",
        "firstname",
        "lastname",
        "phone",
        "company",
        "lifecyclestage",
        "hubspot_owner_id",
        "createdate",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    assert_eq!(
        api.get("/crm/v3/properties/contacts/nope").await.status,
        StatusCode::NOT_FOUND
    );

    // The new property validates values.
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"stripe_subscription_status": "gone"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"stripe_subscription_status": "past_due"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn type_and_field_type_must_pair() {
    let api = spawn().await;
    for (ty, field) in [
        ("bool", "text"),
        ("date", "number"),
        ("string", "select"),
        ("number", "text"),
        ("enumeration", "text"),
    ] {
        let r = api
            .post(
                "/crm/v3/properties/contacts",
                json!({"name": "p", "label": "P", "type": ty, "fieldType": field, "groupName": "contactinformation",
                       "options": [{"label": "A", "value": "a"}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{ty}/{field}");
    }
    let r = api
        .post(
            "/crm/v3/properties/contacts",
            json!({"name": "e", "label": "E", "type": "enumeration", "fieldType": "select", "groupName": "contactinformation"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "enumerations need options"
    );
    let r = api
        .post(
            "/crm/v3/properties/deals",
            json!({"name": "stripe_lifetime_value", "label": "LTV", "type": "number", "fieldType": "number", "groupName": "dealinformation"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn default_properties_of_every_type_are_seeded() {
    let api = spawn().await;
    let expect = [
        (
            "tasks",
            vec![
                "hs_timestamp",
                "hs_task_subject",
                "hs_task_body",
                "hs_task_status",
                "hs_task_priority",
                "hs_task_type",
                "hubspot_owner_id",
            ],
        ),
        ("notes", vec!["hs_timestamp", "hs_note_body"]),
        (
            "tickets",
            vec![
                "subject",
                "content",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_priority",
                "hs_ticket_category",
            ],
        ),
        (
            "deals",
            vec![
                "dealname",
                "amount",
                "pipeline",
                "dealstage",
                "closedate",
                "hubspot_owner_id",
            ],
        ),
    ];
    for (ty, props) in expect {
        for p in props {
            let r = api.get(&format!("/crm/v3/properties/{ty}/{p}")).await;
            assert_eq!(r.status, StatusCode::OK, "{ty}.{p}");
        }
    }
    let r = api.get("/crm/v3/properties/contacts/lifecyclestage").await;
    let values: Vec<&str> = r.body["options"]
        .as_array()
        .expect("options")
        .iter()
        .filter_map(|o| o["value"].as_str())
        .collect();
    assert_eq!(
        values,
        [
            "subscriber",
            "lead",
            "marketingqualifiedlead",
            "salesqualifiedlead",
            "opportunity",
            "customer",
            "evangelist",
            "other"
        ]
    );
    let r = api.get("/crm/v3/properties/deals/dealstage").await;
    assert!(
        r.body["options"]
            .as_array()
            .expect("options")
            .iter()
            .any(|o| o["value"] == "closedwon")
    );
}
