//! Fault injection and the control API.

mod common;

use std::time::{Duration, SystemTime};

use common::{spawn, spawn_with};
use hubspot_sandbox::{Faults, SandboxConfig, Seed, SeedRecord};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn outage_answers_503_to_every_hubspot_call_until_it_ends() {
    let api = spawn().await;
    let r = api
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"outage_secs": 60})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["outage_until"].is_string());
    let r = api.get("/crm/v3/objects/contacts").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.header("X-HubSpot-Correlation-Id").is_some());
    // The control API is never faulted.
    assert_eq!(
        api.control(Method::GET, "/_sandbox/state", None)
            .await
            .status,
        StatusCode::OK
    );
    api.sandbox.set_faults(Faults {
        outage_until: Some(SystemTime::now() - Duration::from_secs(1)),
        ..Faults::default()
    });
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::OK
    );
    assert_eq!(api.sandbox.stats()["faults_served"], 1);
}

#[tokio::test(start_paused = true)]
async fn an_outage_ends_by_itself_when_its_time_has_passed() {
    let api = spawn().await;
    let r = api
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"outage_secs": 30})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "29 s into a 30 s outage"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::OK,
        "the outage is over"
    );

    // An outage given as a wall-clock end lasts the time left until then.
    api.sandbox.set_faults(Faults {
        outage_until: Some(SystemTime::now() + Duration::from_secs(30)),
        ..Faults::default()
    });
    tokio::time::advance(Duration::from_secs(29)).await;
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::OK
    );
    assert_eq!(api.sandbox.stats()["faults_served"], 2);

    // An endless outage is cut to a century rather than overflowing the clock.
    let r = api
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"outage_secs": u64::MAX})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(start_paused = true)]
async fn storms_errors_and_latency() {
    let api = spawn_with(SandboxConfig {
        faults: Faults {
            force_429: true,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    let r = api.get("/crm/v3/objects/contacts").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(r.header("Retry-After"), None, "HubSpot documents none");
    api.sandbox.set_faults(Faults {
        force_429: true,
        storm_retry_after_s: Some(30),
        ..Faults::default()
    });
    let r = api.get("/crm/v3/objects/contacts").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("Retry-After"), Some("30"), "as a gateway may send");

    api.sandbox.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    for _ in 0..10 {
        let r = api.get("/crm/v3/objects/contacts").await;
        assert!(matches!(r.status.as_u16(), 502 | 503), "{}", r.status);
    }
    let r = api
        .http
        .get(api.url("/v1/customers"))
        .bearer_auth("sk_test_x")
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_server_error(), "Stripe calls fail too");

    let r = api
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"latency_ms": 150})),
        )
        .await;
    assert_eq!(
        r.body["error_rate"], 0.0,
        "posting faults replaces them all"
    );
    // The paused clock moves only by the sandbox's injected sleep.
    let start = tokio::time::Instant::now();
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::OK
    );
    assert!(start.elapsed() >= Duration::from_millis(150));
    let got = api.control(Method::GET, "/_sandbox/faults", None).await;
    assert_eq!(got.body["latency_ms"], 150);
    // A range: each request waits a draw from it, and the draws differ.
    api.control(
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"latency_ms": 100, "latency_max_ms": 200})),
    )
    .await;
    let mut waits = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let start = tokio::time::Instant::now();
        api.get("/crm/v3/objects/contacts").await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_millis(260),
            "{waited:?}"
        );
        waits.insert(waited.as_millis());
    }
    assert!(waits.len() > 1, "drawn, not fixed: {waits:?}");
    api.control(
        Method::POST,
        "/_sandbox/faults",
        Some(json!({"latency_ms": 150})),
    )
    .await;
    let stats = api.sandbox.stats();
    assert_eq!(stats["faults_served"], 13, "two 429s, eleven 5xx");
    assert_eq!(stats["stripe_calls"], 1);
    let r = api
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"error_rate": 2.0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn state_seed_and_reset() {
    let api = spawn().await;
    let state = api.control(Method::GET, "/_sandbox/state", None).await.body;
    for key in [
        "contacts",
        "tasks",
        "notes",
        "tickets",
        "deals",
        "lists",
        "enrollments",
        "properties",
        "groups",
        "owners",
        "stripe",
    ] {
        assert!(!state[key].is_null(), "{key}");
    }
    assert_eq!(state["owners"].as_array().map(Vec::len), Some(3));
    assert_eq!(state["lists"][2]["processingType"], "DYNAMIC");
    assert_eq!(state, api.sandbox.state());

    api.contact(json!({"email": "temp@example.com"})).await;
    let seed = json!({
        "tokens": [{"token": "pat-eu1-extra", "scopes": ["crm.objects.contacts.read"]}],
        "contacts": [{"id": "5000", "properties": {"email": "seeded@example.com", "firstname": "Seed"}}],
        "tasks": [{"properties": {"hs_timestamp": "2026-10-01T00:00:00Z"},
                   "associations": [{"to": {"id": "5000"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}]}],
        "lists": [{"listId": "9", "name": "Seeded", "members": ["5000"]}],
        "properties": {"contacts": [{"name": "tier", "label": "Tier", "type": "string", "fieldType": "text", "groupName": "stripe"}]},
        "stripe": {"customers": [{"id": "cus_seed", "object": "customer", "created": 1_700_000_000}]}
    });
    let r = api
        .control(Method::POST, "/_sandbox/seed", Some(seed))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = api
        .get("/crm/v3/objects/contacts/5000?properties=firstname")
        .await;
    assert_eq!(r.body["properties"]["firstname"], "Seed");
    let r = api
        .call_as(
            Some("pat-eu1-extra"),
            Method::GET,
            "/crm/v3/objects/contacts/5000",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        api.sandbox.state()["tasks"][0]["associations"]["contacts"],
        json!(["5000"])
    );
    assert_eq!(
        api.get("/crm/v3/properties/contacts/tier").await.status,
        StatusCode::OK
    );
    let next = api
        .contact(json!({"email": "after-seed@example.com"}))
        .await;
    assert!(
        next.parse::<u64>().expect("numeric") > 5000,
        "ids continue after seeded ones"
    );

    let bad = api
        .control(
            Method::POST,
            "/_sandbox/seed",
            Some(json!({"contacts": [{"properties": {"nope": "1"}}]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["error"].as_str().expect("error").contains("nope"));

    let r = api.control(Method::POST, "/_sandbox/reset", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let state = api.sandbox.state();
    assert!(state["contacts"].as_array().expect("contacts").is_empty());
    assert_eq!(state["lists"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        api.sandbox.stats()["total_calls"],
        0,
        "stats start over too"
    );
}

#[tokio::test]
async fn a_seed_file_replaces_the_default_seed() {
    let dir = std::env::temp_dir().join(format!("sandbox-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("seed.json");
    let seed = Seed {
        contacts: vec![SeedRecord {
            id: None,
            properties: serde_json::from_value(json!({"email": "file@example.com"})).expect("map"),
            associations: Vec::new(),
        }],
        ..Seed::default()
    };
    std::fs::write(&path, serde_json::to_string(&seed).expect("json")).expect("write");
    let loaded = Seed::from_file(&path).expect("loads");
    assert_eq!(loaded, seed);
    let api = spawn_with(SandboxConfig {
        seed: Some(loaded),
        ..SandboxConfig::default()
    })
    .await;
    let state = api.sandbox.state();
    assert_eq!(
        state["contacts"][0]["properties"]["email"],
        "file@example.com"
    );
    assert!(state["owners"].as_array().expect("owners").is_empty());
    assert!(
        state["properties"]["contacts"]
            .as_array()
            .expect("props")
            .len()
            > 10,
        "HubSpot's defaults stay"
    );
    std::fs::remove_dir_all(&dir).ok();
    assert!(Seed::from_file(dir.join("missing.json")).is_err());
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let api = spawn().await;
    let url = api.url("/_sandbox/stats");
    api.sandbox.shutdown().await;
    assert!(reqwest::get(url).await.is_err());
}

#[tokio::test]
async fn run_binds_returns_on_shutdown_and_reports_a_taken_port() {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    // A shutdown future that is already resolved: run binds, then stops gracefully.
    hubspot_sandbox::run(addr, SandboxConfig::default(), async {})
        .await
        .expect("run binds and returns Ok on shutdown");
    let api = spawn().await;
    let taken = hubspot_sandbox::run(api.sandbox.addr(), SandboxConfig::default(), async {}).await;
    let message = format!("{:#}", taken.expect_err("the port is in use"));
    assert!(message.contains("binding the sandbox"), "{message}");
}

/// Guards the sandbox's lost answers after the write (issue 17): with the whole share of
/// writes lost, a create is carried out and its client gets a 502 (`gateway`) or no answer
/// at all (`dropped`); reads, searches and batch reads are never lost.
#[tokio::test]
async fn a_share_of_writes_is_carried_out_and_its_answer_lost() {
    use hubspot_sandbox::LostAs;

    let api = spawn().await;
    // Set through the control API, as a user's own tests would.
    let r = api
        .control(
            Method::POST,
            "/_sandbox/faults",
            Some(json!({"lost_answer_rate": 1.0, "lost_answer_as": "gateway"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["lost_answer_as"], "gateway");
    let r = api
        .post(
            "/crm/v3/objects/contacts",
            json!({"properties": {"email": "gateway@example.com"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.body["category"], "SERVICE_UNAVAILABLE", "{}", r.body);

    api.sandbox.set_faults(Faults {
        lost_answer_rate: 1.0,
        lost_answer_as: LostAs::Dropped,
        ..Faults::default()
    });
    let sent = api
        .http
        .post(api.url("/crm/v3/objects/contacts"))
        .bearer_auth(&api.token)
        .json(&json!({"properties": {"email": "dropped@example.com"}}))
        .send()
        .await;
    assert!(
        sent.is_err(),
        "the connection closes without an answer: {:?}",
        sent.map(|r| r.status())
    );

    // Both writes were carried out.
    let state = api.sandbox.state();
    let emails: Vec<&str> = state["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter_map(|c| c["properties"]["email"].as_str())
        .collect();
    assert_eq!(emails, ["gateway@example.com", "dropped@example.com"]);

    // Reads are answered, lost share or not.
    assert_eq!(
        api.get("/crm/v3/objects/contacts").await.status,
        StatusCode::OK
    );
    let search = json!({"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "gateway@example.com"}
    ]}]});
    assert_eq!(
        api.post("/crm/v3/objects/contacts/search", search)
            .await
            .status,
        StatusCode::OK
    );
    let read = json!({"idProperty": "email", "inputs": [{"id": "gateway@example.com"}], "properties": ["email"]});
    assert_eq!(
        api.post("/crm/v3/objects/contacts/batch/read", read)
            .await
            .status,
        StatusCode::OK
    );
    let stats = api.sandbox.stats();
    assert_eq!(stats["answers_lost"], 2, "{stats}");
    assert_eq!(stats["faults_served"], 2, "{stats}");
}

/// Guards `answer_delay_ms` (issue 17): the write is carried out at once and its answer
/// held, so a client killed meanwhile never hears of a write that happened.
#[tokio::test]
async fn a_delayed_answer_comes_after_the_write() {
    let api = spawn().await;
    api.sandbox.set_faults(Faults {
        answer_delay_ms: 60_000,
        ..Faults::default()
    });
    let request = api
        .http
        .post(api.url("/crm/v3/objects/contacts"))
        .bearer_auth(&api.token)
        .json(&json!({"properties": {"email": "held@example.com"}}))
        .send();
    let pending = tokio::spawn(request);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while api.sandbox.state()["contacts"][0]["properties"]["email"] != "held@example.com" {
        assert!(
            std::time::Instant::now() < deadline,
            "the write never happened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!pending.is_finished(), "the answer is held after the write");
    pending.abort();
}
