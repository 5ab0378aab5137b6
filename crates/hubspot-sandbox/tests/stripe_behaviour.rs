//! The Stripe side as Stripe documents it, and a switch for each answer it does not
//! document: objects by id and thin events, `types[]` with a wildcard, the rate limit's
//! 429, `Stripe-Version`, and the `Date` header on Stripe's clock.

mod common;

use common::{Api, spawn_with};
use hubspot_sandbox::{SandboxConfig, Seed, SeedStripe, StripeBehaviour, WildcardTypes};
use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "sk_test_behaviour";

fn fixture(path: &str) -> Value {
    let path = format!(
        "{}/../paybridge/fixtures/stripe/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

async fn stripe_get(
    api: &Api,
    path: &str,
    version: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut r = api.http.get(api.url(path)).bearer_auth(KEY);
    if let Some(v) = version {
        r = r.header("Stripe-Version", v);
    }
    let r = r.send().await.expect("sent");
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn with(behaviour: StripeBehaviour) -> Api {
    let api = spawn_with(SandboxConfig {
        stripe: behaviour,
        ..SandboxConfig::default()
    })
    .await;
    let thin = fixture("story-2/v2.core.event.v1.invoice.payment_failed.json");
    let mut retrieved = fixture(
        "api/v2.core.events.retrieve.evt_test_65TcK4xQmT3xK8rLv16TcK4pW2nB8vC3xZ9qL5sD7fG1hJ0kM4.json",
    );
    retrieved["id"] = thin["id"].clone();
    let mut event = fixture("invoice.paid.json");
    event["created"] = json!(chrono::Utc::now().timestamp() - 60);
    api.sandbox
        .merge_seed(Seed {
            stripe: SeedStripe {
                objects: vec![
                    fixture("api/v1.charges.retrieve.ch_3SHk1MQmT3xK8rLv1nW3eR5t.json"),
                    fixture("api/v1.products.retrieve.prod_TCj5Tm8Nb2Vc4X.json"),
                    fixture(
                        "api/v1.prices.retrieve.price_1SJk4LQmT3xK8rLvTe4mS8vD.expand-tiers.json",
                    ),
                    fixture("api/v1.invoices.retrieve.in_1SBxE9QmT3xK8rLvR3tY6uIo.json"),
                ],
                thin_events: vec![retrieved],
                events: vec![hubspot_sandbox::SeedStripeEvent {
                    event,
                    delivered: true,
                }],
                ..SeedStripe::default()
            },
            ..Seed::default()
        })
        .expect("seed");
    api
}

#[tokio::test]
async fn objects_are_retrieved_by_id_and_a_missing_one_is_resource_missing() {
    let api = with(StripeBehaviour::default()).await;
    let (status, _, body) = stripe_get(&api, "/v1/charges/ch_3SHk1MQmT3xK8rLv1nW3eR5t", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["receipt_email"], "mary.somerville@example.com");
    let (status, _, body) = stripe_get(&api, "/v1/products/prod_TCj5Tm8Nb2Vc4X", None).await;
    assert_eq!(
        (status, body["name"].clone()),
        (StatusCode::OK, json!("Team"))
    );
    let (status, _, body) = stripe_get(&api, "/v1/products/prod_gone", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["message"], "No such product: 'prod_gone'");
    // A price's tiers only when expanded.
    let price = "/v1/prices/price_1SJk4LQmT3xK8rLvTe4mS8vD";
    let (_, _, plain) = stripe_get(&api, price, None).await;
    assert!(plain.get("tiers").is_none(), "{plain}");
    let (_, _, expanded) = stripe_get(&api, &format!("{price}?expand[]=tiers"), None).await;
    assert_eq!(expanded["tiers"].as_array().map(Vec::len), Some(2));
    // A thin event's related object and the event itself.
    let (status, _, invoice) =
        stripe_get(&api, "/v1/invoices/in_1SBxE9QmT3xK8rLvR3tY6uIo", None).await;
    assert_eq!(
        (status, invoice["attempt_count"].clone()),
        (StatusCode::OK, json!(2))
    );
    let thin = fixture("story-2/v2.core.event.v1.invoice.payment_failed.json");
    let id = thin["id"].as_str().expect("id");
    let (status, _, event) = stripe_get(&api, &format!("/v2/core/events/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(event["snapshot_event"], "evt_1SCyA1QmT3xK8rLvKp4Wd8Zs");
    assert_eq!(event["related_object"], thin["related_object"]);
}

#[tokio::test]
async fn a_wildcard_in_types_is_refused_or_matches_nothing_by_switch() {
    let refuse = with(StripeBehaviour::default()).await;
    let (status, _, body) = stripe_get(&refuse, "/v1/events?types[]=invoice.*", None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "parameter_invalid");
    assert_eq!(body["error"]["param"], "types[0]");
    let empty = with(StripeBehaviour {
        wildcard_types: WildcardTypes::Empty,
        ..StripeBehaviour::default()
    })
    .await;
    let (status, _, body) = stripe_get(&empty, "/v1/events?types[]=invoice.*", None).await;
    assert_eq!((status, body["data"].clone()), (StatusCode::OK, json!([])));
    for api in [&refuse, &empty] {
        // Exact names, and `type` with a wildcard (documented), find the event.
        for q in ["types[]=invoice.paid", "type=invoice.*"] {
            let (status, _, body) = stripe_get(api, &format!("/v1/events?{q}"), None).await;
            assert_eq!(status, 200, "{q}");
            assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{q}");
        }
    }
}

#[tokio::test]
async fn beyond_the_rate_stripe_answers_429_with_the_switched_error_type() {
    for kind in ["invalid_request_error", "rate_limit_error"] {
        let api = with(StripeBehaviour {
            requests_per_s: 2,
            rate_limit_error_type: kind.into(),
            ..StripeBehaviour::default()
        })
        .await;
        let path = "/v1/products/prod_TCj5Tm8Nb2Vc4X";
        assert_eq!(stripe_get(&api, path, None).await.0, 200);
        assert_eq!(stripe_get(&api, path, None).await.0, 200);
        let (status, _, body) = stripe_get(&api, path, None).await;
        assert_eq!(status, 429);
        assert_eq!(body["error"]["code"], "rate_limit");
        assert_eq!(body["error"]["type"], kind);
        let statuses: Vec<Value> = api
            .sandbox
            .stripe_requests()
            .iter()
            .map(|r| r["status"].clone())
            .collect();
        assert_eq!(statuses, [json!(200), json!(200), json!(429)]);
    }
}

#[tokio::test]
async fn stripe_version_is_checked_and_recorded_and_date_follows_stripes_clock() {
    let api = with(StripeBehaviour {
        clock_offset_secs: 3_600,
        ..StripeBehaviour::default()
    })
    .await;
    let path = "/v1/products/prod_TCj5Tm8Nb2Vc4X";
    let (status, _, body) = stripe_get(&api, path, Some("latest")).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Invalid Stripe API version: latest"
    );
    let (status, headers, _) = stripe_get(&api, path, Some("2026-08-26.dahlia")).await;
    assert_eq!(status, 200);
    let date = headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
        .expect("a Date header");
    let ahead = date.timestamp() - chrono::Utc::now().timestamp();
    assert!((3_590..=3_601).contains(&ahead), "{ahead}");
    let versions: Vec<Value> = api
        .sandbox
        .stripe_requests()
        .iter()
        .map(|r| r["stripe_version"].clone())
        .collect();
    assert_eq!(versions, [json!("latest"), json!("2026-08-26.dahlia")]);
    // The switches can be changed at run time through the control API.
    let r = api
        .control(
            reqwest::Method::POST,
            "/_sandbox/stripe/behaviour",
            Some(json!({"clock_offset_secs": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .control(reqwest::Method::GET, "/_sandbox/stripe/behaviour", None)
        .await;
    assert_eq!(r.body["clock_offset_secs"], 0);
    assert_eq!(
        r.body["requests_per_s"], 25,
        "unset fields take Stripe's defaults"
    );
}
