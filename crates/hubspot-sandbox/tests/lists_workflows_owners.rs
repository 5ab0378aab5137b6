//! Lists, workflow enrolment, owners and pipelines from the default seed.

mod common;

use common::spawn;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn list_membership_add_and_remove_with_hubspots_spelling() {
    let api = spawn().await;
    let a = api.contact(json!({"email": "a@example.com"})).await;
    let b = api.contact(json!({"email": "b@example.com"})).await;
    let r = api
        .put("/crm/v3/lists/1/memberships/add", json!([a, b, "999999"]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"recordsIdsAdded": [a, b], "recordIdsRemoved": [], "recordIdsMissing": ["999999"]})
    );
    let r = api.put("/crm/v3/lists/1/memberships/add", json!([a])).await;
    assert_eq!(
        r.body["recordsIdsAdded"],
        json!([]),
        "already a member: ignored"
    );

    let r = api.get("/crm/v3/lists/1/memberships").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"][0]["recordId"], json!(a));
    assert!(r.body["results"][0]["membershipTimestamp"].is_string());

    let r = api
        .put("/crm/lists/2026-09/1/memberships/remove", json!([b]))
        .await;
    assert_eq!(
        r.body,
        json!({"recordsIdsAdded": [], "recordIdsRemoved": [b], "recordIdsMissing": []})
    );

    let r = api.get("/crm/v3/lists/1").await;
    assert_eq!(r.body["list"]["name"], "Product B cross-sell");
    assert_eq!(r.body["list"]["processingType"], "MANUAL");
    assert_eq!(r.body["list"]["size"], 1);
    let lists = &api.sandbox.state()["lists"];
    assert_eq!(lists[0]["members"], json!([a]));

    let r = api
        .get("/crm/v3/lists/object-type-id/0-1/name/Refund follow-up")
        .await;
    assert_eq!(r.body["list"]["listId"], "2");
}

#[tokio::test]
async fn list_membership_rules() {
    let api = spawn().await;
    let a = api.contact(json!({"email": "a@example.com"})).await;
    let r = api
        .post("/crm/v3/lists/1/memberships/add", json!([a]))
        .await;
    assert_eq!(
        r.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "memberships are PUT only"
    );
    let r = api.put("/crm/v3/lists/3/memberships/add", json!([a])).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "DYNAMIC lists refuse writes"
    );
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
    let r = api
        .put("/crm/v3/lists/77/memberships/add", json!([a]))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .put(
            "/crm/v3/lists/2/memberships/add-and-remove",
            json!({"recordIdsToAdd": [a], "recordIdsToRemove": []}),
        )
        .await;
    assert_eq!(r.body["recordsIdsAdded"], json!([a]));
}

#[tokio::test]
async fn workflow_enrolment() {
    let api = spawn().await;
    let id = api.contact(json!({"email": "w@example.com"})).await;
    let r = api
        .call(
            Method::POST,
            "/automation/v2/workflows/123456/enrollments/contacts/w@example.com",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.body, serde_json::Value::Null);
    let r = api
        .call(
            Method::POST,
            "/automation/v2/workflows/999/enrollments/contacts/w@example.com",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["category"], "OBJECT_NOT_FOUND");
    let r = api
        .call(
            Method::POST,
            "/automation/v2/workflows/222/enrollments/contacts/nobody@example.com",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let enrollments = &api.sandbox.state()["enrollments"];
    assert_eq!(enrollments.as_array().map(Vec::len), Some(1));
    assert_eq!(enrollments[0]["workflowId"], "123456");
    assert_eq!(enrollments[0]["contactId"], json!(id));
    assert_eq!(enrollments[0]["email"], "w@example.com");

    // The contact's current enrolments (by vid): each workflow once, its v2 id a number.
    let enrolled = format!("/automation/v2/workflows/enrollments/contacts/{id}");
    let r = api.get(&enrolled).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.body);
    assert_eq!(r.body[0]["id"], 123456);
    let other = api.contact(json!({"email": "x@example.com"})).await;
    let r = api
        .get(&format!(
            "/automation/v2/workflows/enrollments/contacts/{other}"
        ))
        .await;
    assert_eq!(r.body, json!([]));
    let r = api
        .get("/automation/v2/workflows/enrollments/contacts/424242")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn owners_and_pipelines() {
    let api = spawn().await;
    let r = api
        .get("/crm/v3/owners?email=grace.success@example.com")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    let owner = &r.body["results"][0];
    assert_eq!(owner["id"], "102");
    assert_eq!(owner["type"], "PERSON");
    assert!(owner["userId"].is_u64());
    let r = api.get("/crm/v3/owners/?limit=2").await;
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.body["paging"]["next"]["after"], "2");
    assert_eq!(
        api.get("/crm/owners/2026-09/101").await.body["email"],
        "ada.manager@example.com"
    );

    let r = api.get("/crm/v3/pipelines/tickets").await;
    let stages: Vec<&str> = r.body["results"][0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(r.body["results"][0]["id"], "0");
    assert_eq!(stages, ["1", "2", "3", "4"]);
    let r = api.get("/crm/pipelines/2026-09/deals/default").await;
    let stages: Vec<&str> = r.body["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(stages.first(), Some(&"appointmentscheduled"));
    assert!(stages.contains(&"closedwon") && stages.contains(&"closedlost"));
}
