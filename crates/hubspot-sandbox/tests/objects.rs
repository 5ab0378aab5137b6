//! Tasks, notes, tickets and deals: inline associations, required fields,
//! pipelines, upsert by a unique property, associations v4.

mod common;

use common::{spawn, spawn_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn assoc(to: &str, type_id: u32) -> Value {
    json!([{"to": {"id": to}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}])
}

#[tokio::test]
async fn task_with_contact_association_and_v4_read_back() {
    let api = spawn().await;
    let contact = api.contact(json!({"email": "t@example.com"})).await;
    let r = api
        .post(
            "/crm/v3/objects/tasks",
            json!({"properties": {"hs_timestamp": "2026-10-02T09:00:00Z", "hs_task_subject": "Thank-you call",
                                   "hs_task_priority": "HIGH", "hs_task_type": "CALL", "hubspot_owner_id": "101"},
                   "associations": assoc(&contact, 204)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let task = r.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        r.body["properties"]["hs_timestamp"],
        "2026-10-02T09:00:00.000Z"
    );
    assert_eq!(r.body["properties"]["hs_task_subject"], "Thank-you call");

    let r = api
        .get(&format!(
            "/crm/v4/objects/contacts/{contact}/associations/tasks"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"][0]["toObjectId"].to_string(), task);
    assert_eq!(
        r.body["results"][0]["associationTypes"],
        json!([{"category": "HUBSPOT_DEFINED", "typeId": 203, "label": null}]),
        "contact→task is 203"
    );
    let r = api
        .get(&format!(
            "/crm/objects/2026-09/0-27/{task}/associations/0-1"
        ))
        .await;
    assert_eq!(r.body["results"][0]["associationTypes"][0]["typeId"], 204);
    let r = api
        .get(&format!(
            "/crm/v3/objects/tasks/{task}?associations=contacts"
        ))
        .await;
    assert_eq!(
        r.body["associations"]["contacts"]["results"][0],
        json!({"id": contact, "type": "task_to_contact"})
    );

    let state = api.sandbox.state();
    assert_eq!(state["contacts"][0]["associations"]["tasks"], json!([task]));
    assert_eq!(
        state["tasks"][0]["associations"]["contacts"],
        json!([contact])
    );
}

#[tokio::test]
async fn each_engagement_type_uses_its_own_association_type_id() {
    let api = spawn().await;
    let contact = api.contact(json!({"email": "n@example.com"})).await;
    let cases = [
        (
            "notes",
            json!({"hs_timestamp": "1759309200000", "hs_note_body": "Refund issued"}),
            202,
            201,
        ),
        (
            "tickets",
            json!({"subject": "Payment failed", "hs_pipeline": "0", "hs_pipeline_stage": "1", "hs_ticket_priority": "HIGH"}),
            16,
            15,
        ),
        (
            "deals",
            json!({"dealname": "Product B", "pipeline": "default", "dealstage": "appointmentscheduled", "amount": "49.00"}),
            3,
            4,
        ),
    ];
    for (ty, props, type_id, reverse) in cases {
        let wrong = api
            .post(
                &format!("/crm/v3/objects/{ty}"),
                json!({"properties": props, "associations": assoc(&contact, 204)}),
            )
            .await;
        assert_eq!(
            wrong.status,
            StatusCode::BAD_REQUEST,
            "{ty} with the task type id"
        );
        let missing = api
            .post(
                &format!("/crm/v3/objects/{ty}"),
                json!({"properties": props, "associations": assoc("987654", type_id)}),
            )
            .await;
        assert_eq!(
            missing.status,
            StatusCode::BAD_REQUEST,
            "{ty} to an unknown contact"
        );
        let ok = api
            .post(
                &format!("/crm/v3/objects/{ty}"),
                json!({"properties": props, "associations": assoc(&contact, type_id)}),
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED, "{ty}: {}", ok.body);
        let r = api
            .get(&format!(
                "/crm/v4/objects/contacts/{contact}/associations/{ty}"
            ))
            .await;
        assert_eq!(
            r.body["results"][0]["associationTypes"][0]["typeId"], reverse,
            "{ty}"
        );
    }
    let state = api.sandbox.state();
    assert_eq!(
        state["contacts"][0]["associations"]["deals"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        state["contacts"][0]["associations"]["notes"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(
        api.sandbox.state()["tasks"]
            .as_array()
            .expect("tasks")
            .is_empty()
    );
}

#[tokio::test]
async fn required_fields_and_pipelines_are_checked() {
    let api = spawn().await;
    let missing = |r: &common::Reply, name: &str| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        let m = r.body["message"].as_str().unwrap_or("").to_owned();
        assert!(m.contains(&format!("\"name\":\"{name}\"")), "{m}");
    };
    let r = api
        .post(
            "/crm/v3/objects/tasks",
            json!({"properties": {"hs_task_subject": "x"}}),
        )
        .await;
    missing(&r, "hs_timestamp");
    let r = api
        .post(
            "/crm/v3/objects/notes",
            json!({"properties": {"hs_note_body": "x"}}),
        )
        .await;
    missing(&r, "hs_timestamp");
    let r = api
        .post(
            "/crm/v3/objects/tickets",
            json!({"properties": {"subject": "x", "hs_pipeline": "0"}}),
        )
        .await;
    missing(&r, "hs_pipeline_stage");
    let r = api
        .post(
            "/crm/v3/objects/deals",
            json!({"properties": {"dealname": "x", "pipeline": "default"}}),
        )
        .await;
    missing(&r, "dealstage");
    let r = api
        .post("/crm/v3/objects/tickets", json!({"properties": {"subject": "x", "hs_pipeline": "0", "hs_pipeline_stage": "closedwon"}}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a deal stage is not a ticket stage"
    );
    let r = api
        .post("/crm/v3/objects/deals", json!({"properties": {"dealname": "x", "pipeline": "default", "dealstage": "closedwon", "closedate": "2026-10-01"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = api
        .post("/crm/v3/objects/tickets", json!({"properties": {"subject": "x", "hs_pipeline": "0", "hs_pipeline_stage": "4", "hs_ticket_category": "reports"}}))
        .await;
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("INVALID_OPTION")
    );
}

#[tokio::test]
async fn tickets_and_deals_upsert_once_by_paybridge_key() {
    let api = spawn_with(common::unlimited()).await;
    for ty in ["tickets", "deals"] {
        let r = api
            .post(
                &format!("/crm/v3/properties/{ty}"),
                json!({"name": "paybridge_key", "label": "paybridge key", "type": "string", "fieldType": "text",
                       "groupName": if ty == "tickets" { "ticketinformation" } else { "dealinformation" }, "hasUniqueValue": true}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let ticket = json!({"inputs": [{"id": "evt_1:ticket", "idProperty": "paybridge_key",
        "properties": {"subject": "Payment failed", "hs_pipeline": "0", "hs_pipeline_stage": "1", "hs_ticket_priority": "HIGH"}}]});
    let first = api
        .post("/crm/v3/objects/tickets/batch/upsert", ticket.clone())
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["results"][0]["new"], true);
    let again = api
        .post("/crm/v3/objects/tickets/batch/upsert", ticket)
        .await;
    assert_eq!(again.body["results"][0]["new"], false);
    assert_eq!(
        again.body["results"][0]["id"],
        first.body["results"][0]["id"]
    );
    assert_eq!(
        api.sandbox.state()["tickets"].as_array().map(Vec::len),
        Some(1)
    );

    // An upsert that would create without the required fields fails that input only.
    let r = api
        .post("/crm/v3/objects/deals/batch/upsert", json!({"inputs": [
            {"id": "k1", "idProperty": "paybridge_key", "properties": {"dealname": "A", "pipeline": "default", "dealstage": "closedwon"}},
            {"id": "k2", "idProperty": "paybridge_key", "properties": {"dealname": "B"}},
        ]}))
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS, "{}", r.body);
    assert_eq!(r.body["results"][0]["new"], true);
    assert_eq!(r.body["numErrors"], 1);

    // A list page of tickets.
    let r = api
        .get("/crm/v3/objects/tickets?properties=subject,paybridge_key")
        .await;
    assert_eq!(
        r.body["results"][0]["properties"],
        json!({"subject": "Payment failed", "paybridge_key": "evt_1:ticket"})
    );
}

#[tokio::test]
async fn v4_association_writes_and_batch_read() {
    let api = spawn().await;
    let contact = api.contact(json!({"email": "v4@example.com"})).await;
    let lonely = api.contact(json!({"email": "lonely@example.com"})).await;
    let deal = api
        .post("/crm/v3/objects/deals", json!({"properties": {"dealname": "D", "pipeline": "default", "dealstage": "qualifiedtobuy"}}))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = api
        .call(
            reqwest::Method::PUT,
            &format!("/crm/v4/objects/deals/{deal}/associations/default/contacts/{contact}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["results"][0]["associationSpec"]["associationTypeId"],
        3
    );
    let r = api
        .post(
            "/crm/v4/associations/contacts/deals/batch/read",
            json!({"inputs": [{"id": contact}, {"id": lonely}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["results"][0]["from"]["id"], json!(contact));
    assert_eq!(
        r.body["results"][0]["to"][0]["associationTypes"][0]["typeId"],
        4
    );
    assert_eq!(
        r.body["errors"][0]["context"]["fromObjectId"],
        json!([lonely])
    );
    let r = api
        .post(
            "/crm/associations/2026-09/contacts/deals/batch/read",
            json!({"inputs": [{"id": contact}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .call(
            reqwest::Method::DELETE,
            &format!("/crm/v4/objects/deals/{deal}/associations/contacts/{contact}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .get(&format!(
            "/crm/v4/objects/contacts/{contact}/associations/deals"
        ))
        .await;
    assert_eq!(r.body["results"], json!([]));
    let r = api
        .put(
            &format!("/crm/v4/objects/deals/{deal}/associations/contacts/{contact}"),
            json!([{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}
