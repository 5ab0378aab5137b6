//! Bearer auth, scopes, token introspection, the three rate limits, and statistics.

mod common;

use std::time::Duration;

use common::{spawn, spawn_with};
use hubspot_sandbox::{SandboxConfig, Seed, SeedToken};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn limited_token_config() -> SandboxConfig {
    let mut seed = Seed::standard();
    seed.tokens.push(SeedToken {
        token: "pat-na1-readonly".into(),
        scopes: vec!["crm.objects.contacts.read".into()],
    });
    SandboxConfig {
        seed: Some(seed),
        ..SandboxConfig::default()
    }
}

#[tokio::test]
async fn missing_or_unknown_token_is_401() {
    let api = spawn().await;
    for token in [None, Some("pat-na1-wrong")] {
        let r = api
            .call_as(token, Method::GET, "/crm/v3/objects/contacts", None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["status"], "error");
        assert_eq!(r.body["category"], "INVALID_AUTHENTICATION");
        assert!(
            r.body["message"]
                .as_str()
                .expect("message")
                .starts_with("Authentication credentials not found.")
        );
        assert_eq!(
            r.body["correlationId"].as_str(),
            r.header("X-HubSpot-Correlation-Id")
        );
        assert_eq!(r.header("x-hubspot-auth-failure"), Some("401 Unauthorized"));
    }
}

#[tokio::test]
async fn a_token_without_the_scope_gets_missing_scopes() {
    let api = spawn_with(limited_token_config()).await;
    let t = Some("pat-na1-readonly");
    let r = api
        .call_as(t, Method::GET, "/crm/v3/objects/contacts", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .call_as(
            t,
            Method::POST,
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "x@example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let correlation = r.body["correlationId"]
        .as_str()
        .expect("correlation id")
        .to_owned();
    assert_eq!(
        r.body,
        json!({
            "status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            "correlationId": correlation,
            "errors": [{"message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES",
        })
    );
    let r = api
        .call_as(
            t,
            Method::PUT,
            "/crm/v3/lists/1/memberships/add",
            Some(json!([])),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["crm.lists.read"])
    );
    let r = api
        .call_as(t, Method::GET, "/crm/v3/objects/tickets", None)
        .await;
    assert_eq!(
        r.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["tickets", "crm.objects.tickets.read"]),
        "the legacy scope or the granular one (switch ticket_scopes, default either)"
    );
    let r = api
        .call_as(
            t,
            Method::POST,
            "/automation/v2/workflows/222/enrollments/contacts/x@example.com",
            None,
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["context"]["requiredGranularScopes"],
        json!(["automation"])
    );
}

#[tokio::test]
async fn token_introspection_needs_no_scope() {
    let api = spawn_with(limited_token_config()).await;
    let r = api
        .call_as(
            None,
            Method::POST,
            "/oauth/v2/private-apps/get/access-token-info",
            Some(json!({"tokenKey": "pat-na1-readonly"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["scopes"], json!(["crm.objects.contacts.read"]));
    assert!(r.body["hubId"].is_u64() && r.body["appId"].is_u64() && r.body["userId"].is_u64());
    let r = api
        .call_as(
            None,
            Method::POST,
            "/oauth/v2/private-apps/get/access-token-info",
            Some(json!({"tokenKey": common::TOKEN})),
        )
        .await;
    assert!(
        r.body["scopes"]
            .as_array()
            .expect("scopes")
            .contains(&json!("crm.objects.contacts.write"))
    );
}

#[tokio::test(start_paused = true)]
async fn the_101st_call_in_ten_seconds_is_429_and_costs_nothing() {
    let api = spawn().await;
    for i in 1..=100 {
        let r = api.get("/crm/v3/objects/contacts?limit=1").await;
        assert_eq!(r.status, StatusCode::OK, "call {i}");
        assert_eq!(r.header("X-HubSpot-RateLimit-Max"), Some("100"));
        assert_eq!(
            r.header("X-HubSpot-RateLimit-Remaining"),
            Some((100 - i).to_string().as_str())
        );
        assert_eq!(
            r.header("X-HubSpot-RateLimit-Interval-Milliseconds"),
            Some("10000")
        );
        assert_eq!(r.header("X-HubSpot-RateLimit-Daily"), Some("250000"));
        assert_eq!(
            r.header("X-HubSpot-RateLimit-Daily-Remaining"),
            Some((250_000 - i).to_string().as_str())
        );
    }
    for _ in 0..3 {
        let r = api.get("/crm/v3/objects/contacts?limit=1").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let correlation = r.body["correlationId"]
            .as_str()
            .expect("correlation")
            .to_owned();
        assert_eq!(
            r.header("X-HubSpot-Correlation-Id"),
            Some(correlation.as_str())
        );
        assert_eq!(
            r.body,
            json!({
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": correlation,
                "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": r.body["groupName"],
            })
        );
        assert!(
            r.body["groupName"]
                .as_str()
                .expect("group")
                .starts_with("publicapi:")
        );
        assert_eq!(r.header("X-HubSpot-RateLimit-Remaining"), Some("0"));
        assert_eq!(
            r.header("X-HubSpot-RateLimit-Daily-Remaining"),
            Some("249900"),
            "429s consume nothing"
        );
    }
    // Search has its own bucket, so it still works.
    let r = api.post("/crm/v3/objects/contacts/search", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let stats = api.sandbox.stats();
    let t = &stats["tokens"][common::TOKEN];
    assert_eq!(t["calls"], 104);
    assert_eq!(t["rate_limited"], 3);
    assert_eq!(t["max_in_any_10s"], 100);
    assert_eq!(t["search_calls"], 1);
    assert_eq!(t["calls_by_route"]["GET /crm/v3/objects/contacts"], 103);
    assert_eq!(
        t["calls_by_route"]["POST /crm/v3/objects/contacts/search"],
        1
    );
    assert_eq!(stats["total_429"], 3);
}

#[tokio::test(start_paused = true)]
async fn the_ten_second_window_rolls() {
    let api = spawn_with(SandboxConfig {
        requests_per_10s: 2,
        ..SandboxConfig::default()
    })
    .await;
    let status = || async { api.get("/crm/v3/owners").await.status };
    assert_eq!(status().await, StatusCode::OK, "t = 0");
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(status().await, StatusCode::OK, "t = 4 s");
    assert_eq!(
        status().await,
        StatusCode::TOO_MANY_REQUESTS,
        "t = 4 s, full"
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(
        status().await,
        StatusCode::OK,
        "t = 10 s: the call at 0 left"
    );
    assert_eq!(
        status().await,
        StatusCode::TOO_MANY_REQUESTS,
        "t = 10 s, full"
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(
        status().await,
        StatusCode::OK,
        "t = 14 s: the call at 4 s left"
    );
    let t = &api.sandbox.stats()["tokens"][common::TOKEN];
    assert_eq!(t["max_in_any_10s"], 2);
    assert_eq!(t["rate_limited"], 2);
}

#[tokio::test(start_paused = true)]
async fn search_has_a_per_second_limit_without_rate_headers() {
    let api = spawn_with(SandboxConfig {
        search_per_s: 2,
        ..SandboxConfig::default()
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            api.post("/crm/v3/objects/contacts/search", json!({}))
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = api.post("/crm/v3/objects/contacts/search", json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["message"], "You have reached your secondly limit.");
    assert_eq!(r.body["policyName"], "SECONDLY");
    assert_eq!(r.body["errorType"], "RATE_LIMIT");
    assert!(r.header("X-HubSpot-RateLimit-Remaining").is_none());
    assert!(r.header("X-HubSpot-RateLimit-Daily").is_none());
    // The window rolls: a second later search works again.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        api.post("/crm/v3/objects/contacts/search", json!({}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_daily_budget_runs_out() {
    let api = spawn_with(SandboxConfig {
        daily_limit: 3,
        ..SandboxConfig::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(api.get("/crm/v3/owners").await.status, StatusCode::OK);
    }
    let r = api.get("/crm/v3/owners").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["message"], "You have reached your daily limit.");
    assert_eq!(r.body["policyName"], "DAILY");
    assert_eq!(r.header("X-HubSpot-RateLimit-Daily-Remaining"), Some("0"));
}

#[tokio::test(start_paused = true)]
async fn limits_are_per_token() {
    let mut config = limited_token_config();
    config.requests_per_10s = 2;
    let api = spawn_with(config).await;
    for _ in 0..2 {
        assert_eq!(
            api.get("/crm/v3/objects/contacts").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = api
        .call_as(
            Some("pat-na1-readonly"),
            Method::GET,
            "/crm/v3/objects/contacts",
            None,
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(
        api.sandbox.stats()["tokens"]["pat-na1-readonly"]["calls"],
        1
    );
}
