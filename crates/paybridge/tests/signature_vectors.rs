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

/// The story-2 deliveries, signed by Stripe's official library (npm `stripe` 23.1.0
/// `generateTestHeaderString`), a thin event among them: each verifies, and each is
/// answered 200 and stored once (never a 400 for a correctly signed thin delivery).
#[tokio::test]
async fn the_story_2_deliveries_thin_included_are_accepted_as_stripe_signed_them() {
    let vectors: serde_json::Value =
        serde_json::from_slice(&fixture("story-2/signatures.json")).expect("vectors");
    let secret = vectors["secret"].as_str().expect("secret").to_owned();
    let all = vectors["vectors"].as_array().expect("vectors");
    assert_eq!(all.len(), 16);
    let clock = Clock::manual(0);
    let app = spawn_app_with(
        |s| s.stripe.webhook_secrets = vec![Secret::new(secret.clone())],
        clock.clone(),
    )
    .await;
    let mut thin = 0;
    for v in all {
        let file = v["file"].as_str().expect("file");
        let header = v["stripe_signature"].as_str().expect("header");
        let t = v["t"].as_i64().expect("t");
        let body = fixture(&format!("story-2/{file}"));
        assert_eq!(
            verify(header, &body, &[Secret::new(secret.clone())], 300, t),
            Ok(t),
            "{file}"
        );
        clock.set_ms(t * 1000);
        let r = app.post_with_header(&body, Some(header)).await;
        assert_eq!(r.status(), 200, "{file}");
        thin += usize::from(file.starts_with("v2.core.event"));
    }
    assert_eq!(thin, 1);
    assert_eq!(app.store.count_events().await.expect("count"), 16);
    app.stop().await;
}
