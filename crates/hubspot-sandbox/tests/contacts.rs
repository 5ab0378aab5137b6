//! Contacts: create, get, update, batch operations, validation and HubSpot's write rules.

mod common;

use common::spawn;
use hubspot_sandbox::{BackwardLifecycle, Behaviour};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn is_iso_millis(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    s.len() == 24 && s.ends_with('Z') && s.as_bytes().get(19) == Some(&b'.')
}

#[tokio::test]
async fn create_returns_201_with_string_values_and_iso_timestamps() {
    let api = spawn().await;
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "Ada@Example.com", "firstname": "Ada", "lastname": "Lovelace"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_str().expect("id is a string");
    assert!(id.parse::<u64>().is_ok());
    assert_eq!(r.body["archived"], json!(false));
    assert!(is_iso_millis(&r.body["createdAt"]), "{}", r.body);
    assert!(is_iso_millis(&r.body["updatedAt"]));
    let props = &r.body["properties"];
    assert_eq!(
        props["email"], "ada@example.com",
        "emails are stored lowercased"
    );
    assert_eq!(props["hs_object_id"], json!(id));
    assert!(props["createdate"].is_string() && props["lastmodifieddate"].is_string());
    assert!(r.header("X-HubSpot-Correlation-Id").is_some());
}

#[tokio::test]
async fn duplicate_email_is_409_with_the_existing_id_in_the_message() {
    let api = spawn().await;
    let id = api.contact(json!({"email": "grace@example.com"})).await;
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "GRACE@example.com"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["category"], "CONFLICT");
    assert_eq!(
        r.body["message"],
        json!(format!("Contact already exists. Existing ID: {id}"))
    );
    assert_eq!(
        r.body["correlationId"].as_str(),
        r.header("X-HubSpot-Correlation-Id"),
        "body and header carry the same correlation id"
    );
}

#[tokio::test]
async fn get_by_id_and_by_email_with_default_and_chosen_properties() {
    let api = spawn().await;
    let id = api
        .contact(json!({"email": "a@example.com", "firstname": "A", "phone": "123"}))
        .await;
    let r = api.get(&format!("/crm/v3/objects/contacts/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let keys: Vec<&String> = r.body["properties"]
        .as_object()
        .expect("properties")
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
    assert_eq!(
        r.body["properties"]["lastname"],
        Value::Null,
        "unset defaults are null"
    );

    let r = api
        .get("/crm/v3/objects/contacts/A@EXAMPLE.COM?idProperty=email&properties=phone,firstname")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], json!(id));
    assert_eq!(
        r.body["properties"],
        json!({"phone": "123", "firstname": "A"})
    );

    // Object type ids and the date-versioned path family serve the same records.
    let r = api.get(&format!("/crm/objects/2026-09/0-1/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], json!(id));
}

#[tokio::test]
async fn missing_record_is_404_object_not_found() {
    let api = spawn().await;
    let r = api.get("/crm/v3/objects/contacts/999999").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["category"], "OBJECT_NOT_FOUND");
    assert_eq!(r.body["status"], "error");
    assert!(r.body["correlationId"].is_string());
    let r = api
        .patch(
            "/crm/v3/objects/contacts/nobody@example.com?idProperty=email",
            json!({"properties": {"firstname": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_updates_and_empty_string_clears() {
    let api = spawn().await;
    let id = api
        .contact(json!({"email": "p@example.com", "firstname": "P", "phone": "1"}))
        .await;
    let r = api
        .patch(
            &format!("/crm/v3/objects/contacts/{id}"),
            json!({"properties": {"firstname": "Q", "phone": ""}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["properties"]["firstname"], "Q");
    let r = api
        .get(&format!(
            "/crm/v3/objects/contacts/{id}?properties=phone,firstname"
        ))
        .await;
    assert_eq!(
        r.body["properties"],
        json!({"phone": null, "firstname": "Q"})
    );
    // By email, too.
    let r = api
        .patch(
            "/crm/v3/objects/contacts/p@example.com?idProperty=email",
            json!({"properties": {"lastname": "R"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["properties"]["lastname"], "R");
}

#[tokio::test]
async fn unknown_property_is_400_with_hubspots_embedded_json_message() {
    let api = spawn().await;
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "x@example.com", "foo": "bar"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
    let message = r.body["message"].as_str().expect("message");
    let prefix = r#"Property values were not valid: [{"isValid":false,"message":"Property \"foo\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"foo","#;
    assert!(message.starts_with(prefix), "{message}");
    let embedded: Value = serde_json::from_str(
        message
            .strip_prefix("Property values were not valid: ")
            .expect("prefix"),
    )
    .expect("the message embeds a JSON array");
    assert_eq!(
        embedded[0]["localizedErrorMessage"],
        "Property \"foo\" does not exist"
    );
    assert!(
        api.sandbox.state()["contacts"]
            .as_array()
            .expect("contacts")
            .is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn values_are_validated_by_type() {
    let api = spawn().await;
    // Custom properties of each type, as `paybridge setup` creates them.
    for body in [
        json!({"name": "paid_on", "label": "Paid on", "type": "date", "fieldType": "date", "groupName": "contactinformation"}),
        json!({"name": "paid", "label": "Paid", "type": "number", "fieldType": "number", "groupName": "contactinformation"}),
        json!({"name": "late", "label": "Late", "type": "bool", "fieldType": "booleancheckbox", "groupName": "contactinformation",
               "options": [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]}),
    ] {
        let r = api.post("/crm/v3/properties/contacts", body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let cases = [
        ("lifecyclestage", json!("partner"), "INVALID_OPTION"),
        ("paid_on", json!("1430438401000"), "INVALID_DATE"),
        ("paid_on", json!("yesterday"), "INVALID_DATE"),
        ("paid", json!("12,50"), "INVALID_FLOAT"),
        ("late", json!("yes"), "INVALID_BOOLEAN"),
        ("hs_object_id", json!("5"), "READ_ONLY_VALUE"),
    ];
    for (prop, value, code) in cases {
        let r = api
            .post(
                "/crm/v3/objects/contacts",
                json!({"properties": {prop: value}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{prop}={value}");
        let message = r.body["message"].as_str().expect("message");
        assert!(
            message.contains(&format!("\"error\":\"{code}\"")),
            "{prop}: {message}"
        );
    }
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"paid_on": "1430438400000", "paid": 49.5, "late": "TRUE"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["properties"]["paid_on"], "2015-05-01");
    assert_eq!(
        r.body["properties"]["paid"], "49.5",
        "numbers come back as strings"
    );
    assert_eq!(r.body["properties"]["late"], "true");
}

/// Whether a v3/2026-09 write of an earlier lifecycle stage is applied, ignored or refused
/// is not settled (issue 12, H5): one switch per answer.
#[tokio::test]
async fn a_backward_lifecyclestage_is_applied_ignored_or_refused_as_switched() {
    let api = spawn().await;
    let stage = |r: &common::Reply| r.body["properties"]["lifecyclestage"].clone();
    for (how, status, kept) in [
        (BackwardLifecycle::Apply, StatusCode::OK, "lead"),
        (BackwardLifecycle::Ignore, StatusCode::OK, "customer"),
        (
            BackwardLifecycle::Reject,
            StatusCode::BAD_REQUEST,
            "customer",
        ),
    ] {
        api.sandbox.set_behaviour(Behaviour {
            backward_lifecycle: how,
            ..Behaviour::default()
        });
        let id = api
            .contact(json!({"email": format!("{how:?}@example.com"), "lifecyclestage": "lead"}))
            .await;
        let path = format!("/crm/v3/objects/contacts/{id}");
        let r = api
            .patch(&path, json!({"properties": {"lifecyclestage": "customer"}}))
            .await;
        assert_eq!(stage(&r), "customer", "forward always works");
        let r = api
            .patch(&path, json!({"properties": {"lifecyclestage": "lead"}}))
            .await;
        assert_eq!(r.status, status, "{how:?}: {}", r.body);
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(r.body["category"], "VALIDATION_ERROR");
        }
        let r = api.get(&format!("{path}?properties=lifecyclestage")).await;
        assert_eq!(stage(&r), kept, "{how:?}");
        // Cleared first, an earlier stage is accepted whatever the switch.
        api.patch(&path, json!({"properties": {"lifecyclestage": ""}}))
            .await;
        let r = api
            .patch(
                &path,
                json!({"properties": {"lifecyclestage": "subscriber"}}),
            )
            .await;
        assert_eq!(stage(&r), "subscriber", "{how:?}");
    }
}

#[tokio::test]
async fn batch_read_reports_missing_ids_with_207() {
    let api = spawn().await;
    let a = api
        .contact(json!({"email": "a@example.com", "firstname": "A"}))
        .await;
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"inputs": [{"id": a}, {"id": "424242"}], "properties": ["firstname"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["status"], "COMPLETE");
    assert_eq!(r.body["numErrors"], 1);
    assert_eq!(
        r.body["results"][0]["properties"],
        json!({"firstname": "A"})
    );
    let err = &r.body["errors"][0];
    assert_eq!(err["category"], "OBJECT_NOT_FOUND");
    assert_eq!(err["context"]["ids"], json!(["424242"]));
    for field in ["status", "message", "context", "errors", "links"] {
        assert!(!err[field].is_null(), "StandardError carries {field}");
    }
    assert!(r.body["startedAt"].is_string() && r.body["completedAt"].is_string());

    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/read",
            json!({"idProperty": "email", "inputs": [{"id": "A@example.com"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"][0]["id"], json!(a));
}

#[tokio::test]
async fn batch_upsert_by_email_and_by_unique_property_sets_new_flag() {
    let api = spawn().await;
    let r = api
        .post(
            "/crm/v3/properties/contacts",
            json!({"name": "stripe_customer_id", "label": "Stripe Customer ID", "type": "string", "fieldType": "text",
                   "groupName": "contactinformation", "hasUniqueValue": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let upsert = json!({"inputs": [
        {"id": "cus_1", "idProperty": "stripe_customer_id", "properties": {"email": "one@example.com"}},
        {"id": "cus_2", "idProperty": "stripe_customer_id", "properties": {"email": "two@example.com"}},
    ]});
    let r = api
        .post("/crm/v3/objects/contacts/batch/upsert", upsert.clone())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["results"][0]["new"], true);
    assert_eq!(
        r.body["results"][0]["properties"]["stripe_customer_id"],
        "cus_1"
    );
    let first_id = r.body["results"][0]["id"].clone();
    let r = api
        .post("/crm/v3/objects/contacts/batch/upsert", upsert)
        .await;
    assert_eq!(
        r.body["results"][0]["new"], false,
        "the second upsert updates"
    );
    assert_eq!(r.body["results"][0]["id"], first_id);
    assert_eq!(
        api.sandbox.state()["contacts"]
            .as_array()
            .expect("contacts")
            .len(),
        2,
        "created once"
    );

    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [{"id": "ONE@example.com", "idProperty": "email", "properties": {"firstname": "One"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["results"][0]["new"], false,
        "email matches case-insensitively"
    );
    assert_eq!(r.body["results"][0]["id"], first_id);
}

#[tokio::test]
async fn upsert_needs_a_unique_id_property_and_at_most_100_inputs() {
    let api = spawn().await;
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [{"id": "Ada", "idProperty": "firstname", "properties": {}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["category"], "VALIDATION_ERROR");

    let inputs: Vec<Value> = (0..101)
        .map(
            |i| json!({"id": format!("u{i}@example.com"), "idProperty": "email", "properties": {}}),
        )
        .collect();
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({ "inputs": inputs }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
    let inputs: Vec<Value> = (0..100)
        .map(
            |i| json!({"id": format!("u{i}@example.com"), "idProperty": "email", "properties": {}}),
        )
        .collect();
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({ "inputs": inputs }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"].as_array().expect("results").len(), 100);
}

/// Batch create: a 207 with per-input errors only when every input carries an
/// `objectWriteTraceId` (Using Object APIs, "Multi-status errors for batch create
/// requests"); without, all or nothing. Batch update reports unknown ids in a 207.
#[tokio::test]
async fn batch_create_is_all_or_nothing_unless_traced_and_update_reports_partial_failures() {
    let api = spawn().await;
    let existing = api.contact(json!({"email": "taken@example.com"})).await;
    let contacts = |api: &common::Api| api.sandbox.state()["contacts"].as_array().map(Vec::len);
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [
                {"properties": {"email": "new@example.com"}},
                {"properties": {"email": "taken@example.com"}},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["category"], "CONFLICT");
    assert_eq!(
        r.body["message"],
        json!(format!("Contact already exists. Existing ID: {existing}"))
    );
    assert_eq!(contacts(&api), Some(1), "nothing was created");

    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [
                {"properties": {"email": "new@example.com"}, "objectWriteTraceId": "a"},
                {"properties": {"email": "taken@example.com"}, "objectWriteTraceId": "b"},
                {"properties": {"nope": "1"}, "objectWriteTraceId": "c"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS, "{}", r.body);
    assert_eq!(r.body["status"], "COMPLETE");
    assert_eq!(r.body["numErrors"], 2);
    assert_eq!(r.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        r.body["results"][0]["properties"]["email"],
        "new@example.com"
    );
    assert!(
        r.body["results"][0].get("objectWriteTraceId").is_none(),
        "not echoed by default"
    );
    let errors = &r.body["errors"];
    assert_eq!(
        (&errors[0]["status"], &errors[0]["category"]),
        (&json!("error"), &json!("CONFLICT"))
    );
    assert_eq!(errors[0]["context"]["objectWriteTraceId"], json!(["b"]));
    assert_eq!(errors[0]["context"]["existingId"], json!([existing]));
    assert_eq!(errors[1]["category"], "VALIDATION_ERROR");
    assert_eq!(errors[1]["context"]["objectWriteTraceId"], json!(["c"]));
    assert_eq!(contacts(&api), Some(2));

    api.sandbox.set_behaviour(Behaviour {
        echo_trace_ids: true,
        ..Behaviour::default()
    });
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [
                {"properties": {"email": "one@example.com"}, "objectWriteTraceId": "x1"},
                {"properties": {"email": "two@example.com"}, "objectWriteTraceId": "x2"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let echoed: Vec<(&Value, &Value)> = r.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|c| (&c["objectWriteTraceId"], &c["properties"]["email"]))
        .collect();
    assert_eq!(
        echoed,
        [
            (&json!("x2"), &json!("two@example.com")),
            (&json!("x1"), &json!("one@example.com"))
        ],
        "echoed, and not in input order"
    );

    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [
                {"id": existing, "properties": {"firstname": "T"}},
                {"id": "5555555", "properties": {"firstname": "X"}},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["results"][0]["properties"]["firstname"], "T");
    assert_eq!(r.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(r.body["errors"][0]["context"]["ids"], json!(["5555555"]));

    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/create",
            json!({"inputs": [{"properties": {"email": "ok@example.com"}}, {"properties": {"nope": "1"}}]}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "invalid properties fail the whole batch"
    );
    assert_eq!(contacts(&api), Some(4));
}

#[tokio::test]
async fn unique_values_are_enforced_with_409() {
    let api = spawn().await;
    api.post(
        "/crm/v3/properties/contacts",
        json!({"name": "stripe_customer_id", "label": "Stripe Customer ID", "type": "string", "fieldType": "text",
               "groupName": "contactinformation", "hasUniqueValue": true}),
    )
    .await;
    let first = api
        .contact(json!({"email": "a@example.com", "stripe_customer_id": "cus_A"}))
        .await;
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "b@example.com", "stripe_customer_id": "cus_A"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["category"], "CONFLICT");
    assert!(
        r.body["message"]
            .as_str()
            .expect("message")
            .contains(&first)
    );
    let second = api.contact(json!({"email": "b@example.com"})).await;
    let r = api
        .patch(
            &format!("/crm/v3/objects/contacts/{second}"),
            json!({"properties": {"stripe_customer_id": "cus_A"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // After the first record lets go of the value, the second may take it.
    api.patch(
        &format!("/crm/v3/objects/contacts/{first}"),
        json!({"properties": {"stripe_customer_id": ""}}),
    )
    .await;
    let r = api
        .patch(
            &format!("/crm/v3/objects/contacts/{second}"),
            json!({"properties": {"stripe_customer_id": "cus_A"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn list_pages_by_id_and_archive_is_idempotent() {
    let api = spawn().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            api.contact(json!({"email": format!("c{i}@example.com")}))
                .await,
        );
    }
    let r = api.get("/crm/v3/objects/contacts?limit=2").await;
    assert_eq!(r.body["results"].as_array().expect("results").len(), 2);
    let after = r.body["paging"]["next"]["after"]
        .as_str()
        .expect("after")
        .to_owned();
    let r = api
        .get(&format!("/crm/v3/objects/contacts?limit=2&after={after}"))
        .await;
    assert_eq!(r.body["results"][0]["id"], json!(ids[2]));
    assert!(r.body.get("paging").is_none());
    let del = api
        .call(
            reqwest::Method::DELETE,
            &format!("/crm/v3/objects/contacts/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let del = api
        .call(
            reqwest::Method::DELETE,
            &format!("/crm/v3/objects/contacts/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get(&format!("/crm/v3/objects/contacts/{}", ids[0]))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn malformed_json_is_a_hubspot_validation_error() {
    let api = spawn().await;
    let r = api
        .http
        .post(api.url("/crm/v3/objects/contacts"))
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["category"], "VALIDATION_ERROR");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("Invalid input JSON")
    );
}

#[tokio::test]
async fn upsert_by_customer_id_onto_a_taken_email_fails_that_input_only() {
    let api = spawn().await;
    api.post(
        "/crm/v3/properties/contacts",
        json!({"name": "stripe_customer_id", "label": "Stripe Customer ID", "type": "string", "fieldType": "text",
               "groupName": "contactinformation", "hasUniqueValue": true}),
    )
    .await;
    let existing = api.contact(json!({"email": "known@example.com"})).await;
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/upsert",
            json!({"inputs": [
                {"id": "cus_new", "idProperty": "stripe_customer_id", "properties": {"email": "known@example.com"}},
                {"id": "cus_other", "idProperty": "stripe_customer_id", "properties": {"email": "fresh@example.com"}},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS, "{}", r.body);
    assert_eq!(
        r.body["results"][0]["properties"]["stripe_customer_id"],
        "cus_other"
    );
    assert_eq!(r.body["errors"][0]["category"], "CONFLICT");
    assert_eq!(
        r.body["errors"][0]["message"],
        json!(format!("Contact already exists. Existing ID: {existing}"))
    );
    assert_eq!(r.body["errors"][0]["context"]["ids"], json!(["cus_new"]));
}
