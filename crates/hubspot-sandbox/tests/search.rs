//! Search: filters, sorts, paging, caps, and the index lag.

mod common;

use std::time::Duration;

use common::{spawn, spawn_with};
use hubspot_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn ids(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn eq(prop: &str, value: &str) -> Value {
    json!({"filterGroups": [{"filters": [{"propertyName": prop, "operator": "EQ", "value": value}]}]})
}

#[tokio::test(start_paused = true)]
async fn a_write_reaches_search_only_after_the_lag() {
    let lag = Duration::from_millis(300);
    let api = spawn_with(SandboxConfig {
        search_lag: lag,
        ..SandboxConfig::default()
    })
    .await;
    let id = api
        .contact(json!({"email": "late@example.com", "firstname": "Old"}))
        .await;
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            eq("email", "late@example.com"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 0, "not yet indexed");
    // A direct read sees the write at once.
    assert_eq!(
        api.get(&format!("/crm/v3/objects/contacts/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::advance(lag).await;
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            eq("email", "late@example.com"),
        )
        .await;
    assert_eq!(ids(&r.body), vec![id.clone()]);

    // An update is also seen late: search still returns the indexed (old) values.
    api.patch(
        &format!("/crm/v3/objects/contacts/{id}"),
        json!({"properties": {"firstname": "New"}}),
    )
    .await;
    let r = api
        .post("/crm/v3/objects/contacts/search", eq("firstname", "New"))
        .await;
    assert_eq!(r.body["total"], 0);
    let r = api
        .post("/crm/v3/objects/contacts/search", eq("firstname", "Old"))
        .await;
    assert_eq!(r.body["results"][0]["properties"]["firstname"], "Old");
    tokio::time::advance(lag).await;
    let r = api
        .post("/crm/v3/objects/contacts/search", eq("firstname", "New"))
        .await;
    assert_eq!(ids(&r.body), vec![id]);
}

#[tokio::test]
async fn filter_groups_or_filters_and_and_every_operator() {
    let api = spawn_with(common::unlimited()).await;
    let a = api.contact(json!({"email": "ann@alpha.com", "firstname": "Ann", "lifecyclestage": "lead", "createdate": "2024-01-01T00:00:00Z"})).await;
    let b = api.contact(json!({"email": "bob@beta.com", "firstname": "Bob", "lifecyclestage": "customer", "createdate": "2024-06-01T00:00:00Z"})).await;
    let c = api
        .contact(json!({"email": "cy@alpha.com", "createdate": "2025-01-01T00:00:00Z"}))
        .await;
    let search = |filters: Value| {
        let api = &api;
        async move {
            let r = api
                .post(
                    "/crm/v3/objects/contacts/search",
                    json!({"filterGroups": [{"filters": filters}]}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let mut found = ids(&r.body);
            found.sort();
            found
        }
    };
    let f = |p: &str, op: &str, v: Value| json!({"propertyName": p, "operator": op, "value": v});
    assert_eq!(
        search(json!([f("email", "EQ", json!("ANN@alpha.com"))])).await,
        vec![a.clone()]
    );
    assert_eq!(
        search(json!([f("firstname", "NEQ", json!("Ann"))])).await,
        vec![b.clone(), c.clone()]
    );
    assert_eq!(
        search(json!([f(
            "createdate",
            "LT",
            json!("2024-06-01T00:00:00Z")
        )]))
        .await,
        vec![a.clone()]
    );
    assert_eq!(
        search(json!([f("createdate", "LTE", json!("1717200000000"))])).await,
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        search(json!([f("createdate", "GT", json!("2024-06-01"))])).await,
        vec![c.clone()]
    );
    assert_eq!(
        search(json!([f("createdate", "GTE", json!("2024-06-01"))])).await,
        vec![b.clone(), c.clone()]
    );
    assert_eq!(
        search(json!([{"propertyName": "createdate", "operator": "BETWEEN", "value": "2024-02-01", "highValue": "2024-12-31"}])).await,
        vec![b.clone()]
    );
    assert_eq!(
        search(json!([{"propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "customer"]}])).await,
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        search(
            json!([{"propertyName": "lifecyclestage", "operator": "NOT_IN", "values": ["lead"]}])
        )
        .await,
        vec![b.clone(), c.clone()]
    );
    assert_eq!(
        search(json!([{"propertyName": "firstname", "operator": "HAS_PROPERTY"}])).await,
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        search(json!([{"propertyName": "firstname", "operator": "NOT_HAS_PROPERTY"}])).await,
        vec![c.clone()]
    );
    assert_eq!(
        search(json!([f("email", "CONTAINS_TOKEN", json!("alpha.com"))])).await,
        vec![a.clone(), c.clone()]
    );
    assert_eq!(
        search(json!([f("email", "CONTAINS_TOKEN", json!("*@beta.com"))])).await,
        vec![b.clone()]
    );
    // AND within a group.
    assert_eq!(
        search(json!([f("email", "CONTAINS_TOKEN", json!("alpha.com")), {"propertyName": "firstname", "operator": "HAS_PROPERTY"}])).await,
        vec![a.clone()]
    );
    // OR across groups.
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"filterGroups": [
                {"filters": [f("firstname", "EQ", json!("Ann"))]},
                {"filters": [f("firstname", "EQ", json!("Bob"))]},
            ]}),
        )
        .await;
    assert_eq!(r.body["total"], 2);
}

#[tokio::test]
async fn sorts_in_both_forms_properties_and_paging() {
    let api = spawn().await;
    for (i, name) in ["Cleo", "Abe", "Bea"].iter().enumerate() {
        api.contact(json!({"email": format!("s{i}@example.com"), "firstname": name}))
            .await;
    }
    let names = |b: &Value| -> Vec<String> {
        b["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                r["properties"]["firstname"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    };
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"sorts": ["firstname"], "properties": ["firstname"]}),
        )
        .await;
    assert_eq!(names(&r.body), ["Abe", "Bea", "Cleo"]);
    assert_eq!(
        r.body["results"][0]["properties"]
            .as_object()
            .expect("props")
            .len(),
        1,
        "only the listed properties"
    );
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}], "limit": 2}),
        )
        .await;
    assert_eq!(names(&r.body), ["Cleo", "Bea"]);
    assert_eq!(r.body["total"], 3);
    let keys: Vec<&String> = r.body["results"][0]["properties"]
        .as_object()
        .expect("props")
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "createdate",
            "email",
            "firstname",
            "hs_object_id",
            "lastmodifieddate",
            "lastname"
        ]
    );
    let after = r.body["paging"]["next"]["after"]
        .as_str()
        .expect("after")
        .to_owned();
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"sorts": [{"propertyName": "firstname", "direction": "DESCENDING"}], "limit": 2, "after": after}),
        )
        .await;
    assert_eq!(names(&r.body), ["Abe"]);
    assert!(r.body.get("paging").is_none());
    assert!(
        r.header("X-HubSpot-RateLimit-Remaining").is_none(),
        "search answers carry no rate-limit headers"
    );
    assert!(r.header("X-HubSpot-Correlation-Id").is_some());
}

#[tokio::test]
async fn limits_of_search_are_enforced() {
    let api = spawn().await;
    let r = api
        .post("/crm/v3/objects/contacts/search", json!({"limit": 201}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"limit": 200, "after": "10000"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "paging past 10,000 results is refused"
    );
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"after": "9990", "limit": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let groups: Vec<Value> = (0..6)
        .map(|_| json!({"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}))
        .collect();
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"filterGroups": groups}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_10000_result_cap_stops_paging() {
    let api = spawn_with(common::unlimited()).await;
    let mut batch = Vec::new();
    for i in 0..10_050 {
        batch.push(
            json!({"id": format!("bulk{i}@example.com"), "idProperty": "email", "properties": {}}),
        );
        if batch.len() == 100 {
            let r = api
                .post(
                    "/crm/v3/objects/contacts/batch/upsert",
                    json!({"inputs": batch}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK);
            batch = Vec::new();
        }
    }
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": batch}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"limit": 200, "after": "9700"}),
        )
        .await;
    assert_eq!(r.body["total"], 10_050, "total counts every match");
    assert_eq!(r.body["paging"]["next"]["after"], "9900");
    let last = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"limit": 100, "after": "9900"}),
        )
        .await;
    assert!(
        last.body.get("paging").is_none(),
        "no next page past the cap: {}",
        last.body["paging"]
    );
    let past = api
        .post(
            "/crm/v3/objects/contacts/search",
            json!({"limit": 100, "after": "10000"}),
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
}
