//! The webhook inbox: `POST /_sandbox/inbox/{name}` records what a config's Slack and
//! provisioning actions send, without auth, limits or faults; state lists it, reset clears it.

mod common;

use common::spawn;
use hubspot_sandbox::Faults;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_inbox_records_headers_and_body_and_reset_empties_it() {
    let api = spawn().await;
    // Faults and rate limits are HubSpot's: the inbox answers through an outage.
    api.sandbox.set_faults(Faults {
        force_429: true,
        ..Faults::default()
    });
    let r = api
        .http
        .post(api.url("/_sandbox/inbox/slack-finance"))
        .header("Content-Type", "application/json")
        .header("X-Custom", "one")
        .body(r#"{"text":"Refund of $10.00"}"#)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.expect("body"), "ok");
    let r = api
        .http
        .post(api.url("/_sandbox/inbox/provisioning"))
        .body("not json")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);

    let state = api.sandbox.state();
    let inbox = state["inbox"].as_array().expect("inbox listed");
    assert_eq!(inbox.len(), 2, "{inbox:#?}");
    assert_eq!(inbox[0]["name"], "slack-finance");
    assert_eq!(inbox[0]["body"], json!({"text": "Refund of $10.00"}));
    assert_eq!(inbox[0]["headers"]["content-type"], "application/json");
    assert_eq!(inbox[0]["headers"]["x-custom"], "one");
    assert!(inbox[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(inbox[1]["name"], "provisioning");
    assert_eq!(inbox[1]["body"], "not json");
    assert_eq!(
        api.sandbox.stats()["total_calls"],
        0,
        "inbox calls are not HubSpot calls"
    );

    api.sandbox.set_faults(Faults::default());
    let r = api
        .control(reqwest::Method::POST, "/_sandbox/reset", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(api.sandbox.state()["inbox"], json!([]));
}
