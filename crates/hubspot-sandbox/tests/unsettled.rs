//! What HubSpot's published material does not settle, one switch per plausible answer
//! (issue 12), and the endpoints that came with it: merges, v4 flows and id mappings,
//! account details and daily usage, object schemas and the portal's write rules.

mod common;

use common::{Api, spawn, spawn_with};
use hubspot_sandbox::{
    Account, Behaviour, MappingFields, MergedRead, RichText, SandboxConfig, Seed, SeedRequirement,
    SeedToken, SeedWorkflow, TicketScopes, UniqueClash,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn unique_property(api: &Api, object_type: &str, name: &str) {
    let r = api
        .post(
            &format!("/crm/v3/properties/{object_type}"),
            json!({"name": name, "label": name, "type": "string", "fieldType": "text",
                   "groupName": "ticketinformation", "hasUniqueValue": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

fn ticket(key: &str) -> Value {
    json!({"properties": {"subject": "S", "hs_pipeline": "0", "hs_pipeline_stage": "1", "paybridge_key": key}})
}

#[tokio::test]
async fn a_duplicate_unique_value_is_answered_as_switched() {
    let api = spawn().await;
    unique_property(&api, "tickets", "paybridge_key").await;
    let first = api.post("/crm/v3/objects/tickets", ticket("k1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    for (how, status, category) in [
        (UniqueClash::Conflict, StatusCode::CONFLICT, "CONFLICT"),
        (
            UniqueClash::ObjectAlreadyExists,
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
        ),
        (
            UniqueClash::Validation,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
        ),
    ] {
        api.sandbox.set_behaviour(Behaviour {
            unique_clash: how,
            ..Behaviour::default()
        });
        let r = api.post("/crm/v3/objects/tickets", ticket("k1")).await;
        assert_eq!((r.status, &r.body["category"]), (status, &json!(category)));
        let message = r.body["message"].as_str().unwrap_or_default();
        match how {
            UniqueClash::Conflict => assert!(message.contains("Existing ID:"), "{message}"),
            UniqueClash::ObjectAlreadyExists => {
                assert_eq!(r.body["errors"][0]["in"], "paybridge_key")
            }
            UniqueClash::Validation => assert!(
                message.contains("already has that value paybridge_key"),
                "{message}"
            ),
        }
    }
    assert_eq!(
        api.sandbox.state()["tickets"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn html_bodies_are_kept_wrapped_or_stripped_of_comments_as_switched() {
    let api = spawn().await;
    let body = "Call them.<!-- hidden --><p>[paybridge:evt_1:refund:0]</p>";
    for (how, stored) in [
        (RichText::Verbatim, body.to_owned()),
        (
            RichText::Wrap,
            format!(
                "<div style=\"\" dir=\"auto\" data-top-level=\"true\"><p style=\"margin:0;\">{body}</p></div>"
            ),
        ),
        (
            RichText::StripComments,
            "Call them.<p>[paybridge:evt_1:refund:0]</p>".to_owned(),
        ),
    ] {
        api.sandbox.set_behaviour(Behaviour {
            rich_text: how,
            ..Behaviour::default()
        });
        let r = api
            .post(
                "/crm/v3/objects/notes",
                json!({"properties": {"hs_timestamp": "2026-10-01T00:00:00Z", "hs_note_body": body}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(
            r.body["properties"]["hs_note_body"],
            json!(stored),
            "{how:?}"
        );
    }
}

#[tokio::test]
async fn a_merged_contact_answers_single_calls_but_not_batch_updates() {
    let api = spawn().await;
    let keep = api
        .contact(json!({"email": "keep@example.com", "firstname": "Keep"}))
        .await;
    let gone = api
        .contact(json!({"email": "gone@example.com", "lastname": "Gone"}))
        .await;
    let r = api
        .control(
            Method::POST,
            "/_sandbox/merge",
            Some(json!({"primary": keep, "merged": gone})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let state = api.sandbox.state();
    let contacts = state["contacts"].as_array().expect("contacts");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["properties"]["lastname"], "Gone", "filled in");
    assert_eq!(contacts[0]["properties"]["email"], "keep@example.com");
    assert_eq!(
        contacts[0]["properties"]["hs_merged_object_ids"],
        json!(gone)
    );

    let r = api
        .patch(
            &format!("/crm/v3/objects/contacts/{gone}"),
            json!({"properties": {"firstname": "Single"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["id"],
        json!(keep),
        "the basic update takes the old id"
    );
    let r = api
        .post(
            "/crm/v3/objects/contacts/batch/update",
            json!({"inputs": [{"id": gone, "properties": {"firstname": "Batch"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(r.body["errors"][0]["context"]["ids"], json!([gone]));

    let read =
        json!({"inputs": [{"id": gone}], "properties": ["firstname", "hs_merged_object_ids"]});
    let r = api
        .post("/crm/v3/objects/contacts/batch/read", read.clone())
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS, "omitted by default");
    assert_eq!(r.body["results"], json!([]));
    api.sandbox.set_behaviour(Behaviour {
        merged_batch_read: MergedRead::Surviving,
        ..Behaviour::default()
    });
    let r = api.post("/crm/v3/objects/contacts/batch/read", read).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"][0]["id"], json!(keep));
    assert_eq!(
        r.body["results"][0]["properties"],
        json!({"firstname": "Single", "hs_merged_object_ids": gone})
    );
}

#[tokio::test]
async fn flows_and_workflow_id_mappings_translate_both_ways_with_the_switched_names() {
    let api = spawn_with(SandboxConfig {
        seed: Some(Seed {
            workflows: vec![
                SeedWorkflow {
                    id: "222".into(),
                    name: "Payment recovery".into(),
                    flow_id: Some("585051946".into()),
                    ..SeedWorkflow::default()
                },
                SeedWorkflow {
                    id: "123456".into(),
                    ..SeedWorkflow::default()
                },
            ],
            ..Seed::standard()
        }),
        ..SandboxConfig::default()
    })
    .await;
    let r = api.get("/automation/v4/flows/585051946").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        (
            &r.body["type"],
            &r.body["isEnabled"],
            &r.body["objectTypeId"]
        ),
        (&json!("CONTACT_FLOW"), &json!(true), &json!("0-1"))
    );
    assert_eq!(
        api.get("/automation/v4/flows/222").await.status,
        StatusCode::NOT_FOUND
    );
    let r = api
        .post(
            "/automation/v2/workflows/585051946/enrollments/contacts/x@example.com",
            json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "a flowId is no v2 id");

    let path = "/automation/v4/workflow-id-mappings/batch/read";
    let documented = json!({"inputs": [
        {"type": "FLOW_ID", "flowId": "585051946"},
        {"type": "WORKFLOW_ID", "workflowId": "123456"},
    ]});
    let legacy = json!({"inputs": [{"type": "FLOW_ID", "flowMigrationStatuses": "585051946"}]});
    let r = api.post(path, documented.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["results"],
        json!([{"flowId": 585051946, "workflowId": 222}, {"flowId": 9123456, "workflowId": 123456}])
    );
    assert_eq!(
        api.post(path, legacy.clone()).await.status,
        StatusCode::BAD_REQUEST
    );

    api.sandbox.set_behaviour(Behaviour {
        workflow_mapping_fields: MappingFields::Legacy,
        ..Behaviour::default()
    });
    let r = api.post(path, documented.clone()).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["results"], json!([]));
    let r = api.post(path, legacy.clone()).await;
    assert_eq!(
        r.body["results"],
        json!([{"flowId": 585051946, "workflowId": 222}])
    );

    api.sandbox.set_behaviour(Behaviour {
        workflow_mapping_fields: MappingFields::Both,
        ..Behaviour::default()
    });
    assert_eq!(api.post(path, documented).await.status, StatusCode::OK);
    assert_eq!(api.post(path, legacy).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_daily_limit_resets_at_the_accounts_midnight_as_details_and_usage_say() {
    let api = spawn_with(SandboxConfig {
        daily_limit: 3,
        account: Account {
            time_zone: "US/Eastern".into(),
            utc_offset_minutes: -240,
        },
        ..SandboxConfig::default()
    })
    .await;
    let r = api.get("/account-info/2026-09/details").await;
    assert_eq!(
        (
            &r.body["timeZone"],
            &r.body["utcOffset"],
            &r.body["utcOffsetMilliseconds"]
        ),
        (&json!("US/Eastern"), &json!("-04:00"), &json!(-14_400_000))
    );
    api.get("/crm/v3/owners").await;
    let r = api
        .get("/account-info/v3/api-usage/daily/private-apps")
        .await;
    let usage = &r.body["results"][0];
    assert_eq!(
        (&usage["usageLimit"], &usage["currentUsage"]),
        (&json!(3), &json!(3))
    );
    let resets =
        chrono::DateTime::parse_from_rfc3339(usage["resetsAt"].as_str().expect("resetsAt"))
            .expect("an RFC 3339 time");
    assert_eq!(
        resets
            .with_timezone(&chrono::FixedOffset::west_opt(4 * 3600).expect("offset"))
            .time(),
        chrono::NaiveTime::MIN,
        "midnight in New York"
    );
    let r = api.get("/crm/v3/owners").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["policyName"], "DAILY");
    let r = api.control(Method::POST, "/_sandbox/new-day", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get("/crm/v3/owners").await.status, StatusCode::OK);

    api.sandbox.set_behaviour(Behaviour {
        api_usage: false,
        ..Behaviour::default()
    });
    let r = api
        .get("/account-info/v3/api-usage/daily/private-apps")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_portals_write_rules_are_enforced_on_dated_paths_and_listed_as_switched() {
    let api = spawn_with(SandboxConfig {
        seed: Some(Seed {
            requirements: [
                (
                    "tickets".to_owned(),
                    vec![SeedRequirement {
                        property: "hs_ticket_category".into(),
                        when: None,
                    }],
                ),
                (
                    "deals".to_owned(),
                    vec![SeedRequirement {
                        property: "closedate".into(),
                        when: Some(hubspot_sandbox::SeedCondition {
                            property: "dealstage".into(),
                            value: "closedwon".into(),
                        }),
                    }],
                ),
            ]
            .into(),
            ..Seed::standard()
        }),
        ..SandboxConfig::default()
    })
    .await;
    let plain =
        json!({"properties": {"subject": "S", "hs_pipeline": "0", "hs_pipeline_stage": "1"}});
    let r = api
        .post("/crm/objects/2026-09/tickets", plain.clone())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
    assert_eq!(
        r.body["errors"],
        json!([{"code": "MISSING_REQUIRED_PROPERTY",
                "message": "A value for hs_ticket_category must be provided",
                "context": {"propertyName": ["hs_ticket_category"]}}])
    );
    let r = api.post("/crm/v3/objects/tickets", plain.clone()).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "v3 does not enforce by default"
    );
    let deal =
        json!({"properties": {"dealname": "D", "pipeline": "default", "dealstage": "closedwon"}});
    let r = api
        .post(
            "/crm/objects/2026-09/deals/batch/create",
            json!({"inputs": [{"properties": deal["properties"], "objectWriteTraceId": "t1"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS, "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["errors"][0]["code"],
        "MISSING_CONDITIONAL_REQUIRED_PROPERTY"
    );
    assert_eq!(
        r.body["errors"][0]["context"]["objectWriteTraceId"],
        json!(["t1"])
    );

    let r = api.get("/crm-object-schemas/v3/schemas/tickets").await;
    assert_eq!(
        r.body["requiredProperties"],
        json!([
            "hs_pipeline",
            "hs_pipeline_stage",
            "subject",
            "hs_ticket_category"
        ])
    );
    api.sandbox.set_behaviour(Behaviour {
        schema_lists_requirements: false,
        requirements_on_v3: true,
        ..Behaviour::default()
    });
    let r = api.get("/crm-object-schemas/2026-09/schemas/tickets").await;
    assert_eq!(
        r.body["requiredProperties"],
        json!(["hs_pipeline", "hs_pipeline_stage", "subject"])
    );
    let r = api.post("/crm/v3/objects/tickets", plain).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "v3 enforces when switched"
    );
}

#[tokio::test]
async fn ticket_routes_take_the_legacy_or_the_granular_scopes_as_switched() {
    let api = spawn_with(SandboxConfig {
        seed: Some(Seed {
            tokens: vec![
                SeedToken {
                    token: "legacy".into(),
                    scopes: vec!["tickets".into()],
                },
                SeedToken {
                    token: "granular".into(),
                    scopes: vec![
                        "crm.objects.tickets.read".into(),
                        "crm.objects.tickets.write".into(),
                    ],
                },
            ],
            ..Seed::standard()
        }),
        ..SandboxConfig::default()
    })
    .await;
    for (how, legacy, granular) in [
        (TicketScopes::Either, StatusCode::OK, StatusCode::OK),
        (TicketScopes::Legacy, StatusCode::OK, StatusCode::FORBIDDEN),
        (
            TicketScopes::Granular,
            StatusCode::FORBIDDEN,
            StatusCode::OK,
        ),
    ] {
        api.sandbox.set_behaviour(Behaviour {
            ticket_scopes: how,
            ..Behaviour::default()
        });
        for (token, want) in [("legacy", legacy), ("granular", granular)] {
            let r = api
                .call_as(Some(token), Method::GET, "/crm/v3/objects/tickets", None)
                .await;
            assert_eq!(r.status, want, "{how:?} {token}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn a_lost_answer_leaves_the_write_done() {
    let api = spawn().await;
    let route = "POST /crm/v3/objects/contacts".to_owned();
    api.sandbox.set_faults(hubspot_sandbox::Faults {
        lost_answers: vec![route],
        ..hubspot_sandbox::Faults::default()
    });
    let create = json!({"properties": {"email": "lost@example.com"}});
    let r = api.post("/crm/v3/objects/contacts", create.clone()).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        api.sandbox.state()["contacts"][0]["properties"]["email"],
        "lost@example.com"
    );
    let r = api.post("/crm/v3/objects/contacts", create).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "used once");
}
