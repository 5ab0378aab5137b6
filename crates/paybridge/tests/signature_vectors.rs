//! The 221 Stripe-Signature vectors made with Stripe's official library: each one through
//! our verifier and through the real HTTP route, with an injected clock.

mod common;

use common::{fixture, spawn_app_with};
use paybridge::basics::Secret;
use paybridge::domain::Clock;
use paybridge::stripe::verify;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    secret: String,
    tolerance_secs: i64,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    fixture: String,
    case: String,
    header: String,
    now: i64,
    valid: bool,
    body_override: Option<String>,
}

fn load() -> Vectors {
    serde_json::from_slice(&fixture("signature-vectors.json")).expect("vectors parse")
}

fn body(v: &Vector) -> Vec<u8> {
    match &v.body_override {
        Some(b) => b.as_bytes().to_vec(),
        None => fixture(&v.fixture),
    }
}

#[test]
fn every_vector_verifies_as_stripe_says() {
    let all = load();
    assert_eq!(all.vectors.len(), 221);
    let secrets = [Secret::new(all.secret.clone())];
    let mut failures = Vec::new();
    for v in &all.vectors {
        let outcome = verify(&v.header, &body(v), &secrets, all.tolerance_secs, v.now);
        if outcome.is_ok() != v.valid {
            failures.push(format!("{} / {}: {:?}", v.fixture, v.case, outcome));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn every_vector_gets_the_expected_http_answer() {
    let all = load();
    let clock = Clock::manual(0);
    let secret = all.secret.clone();
    let app = spawn_app_with(
        |s| {
            s.stripe.webhook_secrets = vec![Secret::new(secret)];
            s.stripe.tolerance_secs = all.tolerance_secs;
        },
        clock.clone(),
    )
    .await;
    let mut valid_fixtures = std::collections::BTreeSet::new();
    for v in &all.vectors {
        clock.set_ms(v.now * 1000);
        let response = app.post_with_header(&body(v), Some(&v.header)).await;
        let status = response.status().as_u16();
        let expected = if v.valid { 200 } else { 400 };
        assert_eq!(status, expected, "{} / {}", v.fixture, v.case);
        if v.valid {
            valid_fixtures.insert(v.fixture.clone());
        } else {
            let error: serde_json::Value = response.json().await.expect("JSON error body");
            assert!(error["error"].is_string() && error["message"].is_string());
        }
    }
    // Each fixture stored once, whatever number of valid deliveries; nothing from refusals.
    assert_eq!(
        app.store.count_events().await.expect("count"),
        valid_fixtures.len() as i64
    );
    app.stop().await;
}
