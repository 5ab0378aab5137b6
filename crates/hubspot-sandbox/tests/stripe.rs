//! The Stripe API subset: events, customers, subscriptions, invoices.

mod common;

use common::{Api, spawn};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const FIXTURES: &[&str] = &[
    "charge.dispute.created",
    "charge.failed",
    "charge.refunded",
    "charge.succeeded",
    "checkout.session.completed",
    "customer.created",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.updated",
    "customer.updated",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "refund.created",
];

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../paybridge/fixtures/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

async fn stripe(api: &Api, path: &str) -> (StatusCode, Value) {
    let r = api
        .http
        .get(api.url(path))
        .bearer_auth("sk_test_sandbox")
        .send()
        .await
        .expect("sent");
    let status = r.status();
    assert!(r.headers().get("request-id").is_some());
    (status, r.json().await.expect("json"))
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

/// All fixtures, re-stamped an hour apart ending now (in file order: the first is the oldest).
async fn restamped(api: &Api) -> Vec<String> {
    let mut order = Vec::new();
    for (i, name) in FIXTURES.iter().enumerate() {
        let mut event = fixture(name);
        event["created"] = json!(now() - 3600 * (FIXTURES.len() - i) as i64);
        let delivered = !name.starts_with("invoice.payment_failed");
        order.push(event["id"].as_str().expect("id").to_owned());
        let r = api
            .control(
                Method::POST,
                "/_sandbox/stripe/events",
                Some(json!({"event": event, "delivered": delivered})),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    order.reverse();
    order
}

#[tokio::test]
async fn api_keys_are_required() {
    let api = spawn().await;
    let r = api
        .http
        .get(api.url("/v1/events"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("You did not provide an API key.")
    );
    let r = api
        .http
        .get(api.url("/v1/events"))
        .bearer_auth("sk_live_abcdef123456")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = api
        .http
        .get(api.url("/v1/events"))
        .basic_auth("rk_test_restricted", Some(""))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::OK, "curl -u style keys work");
}

#[tokio::test]
async fn only_the_last_30_days_of_events_are_served() {
    let api = spawn().await;
    for name in FIXTURES {
        api.sandbox.record_stripe_event(fixture(name), true);
    }
    let (status, body) = stripe(&api, "/v1/events?limit=100").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "list");
    assert_eq!(body["url"], "/v1/events");
    let recent: Vec<String> = FIXTURES
        .iter()
        .map(|n| fixture(n))
        .filter(|e| e["created"].as_i64().expect("created") >= now() - 30 * 86_400)
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids(&body), recent);
    let old = fixture("invoice.paid");
    let (status, body) = stripe(
        &api,
        &format!("/v1/events/{}", old["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn events_page_newest_first_with_cursors() {
    let api = spawn().await;
    let newest_first = restamped(&api).await;
    let (_, body) = stripe(&api, "/v1/events").await;
    assert_eq!(ids(&body).len(), 10, "default limit 10");
    assert_eq!(body["has_more"], true);
    let mut seen = Vec::new();
    let mut path = "/v1/events?limit=4".to_owned();
    loop {
        let (status, body) = stripe(&api, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = ids(&body);
        seen.extend(page.clone());
        if body["has_more"] != true {
            break;
        }
        path = format!(
            "/v1/events?limit=4&starting_after={}",
            page.last().expect("a page")
        );
    }
    assert_eq!(seen, newest_first);
    let (_, body) = stripe(
        &api,
        &format!("/v1/events?limit=2&ending_before={}", newest_first[5]),
    )
    .await;
    assert_eq!(ids(&body), newest_first[3..5].to_vec());
    assert_eq!(body["has_more"], true);
    let (_, body) = stripe(&api, &format!("/v1/events/{}", newest_first[0])).await;
    assert_eq!(body["id"], json!(newest_first[0]));
}

#[tokio::test]
async fn events_filter_by_type_types_delivery_and_created() {
    let api = spawn().await;
    restamped(&api).await;
    let types = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["type"].as_str().expect("type").to_owned())
            .collect()
    };
    let (_, body) = stripe(&api, "/v1/events?type=invoice.*&limit=100").await;
    assert_eq!(
        types(&body),
        [
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.paid"
        ]
    );
    let (_, body) = stripe(&api, "/v1/events?type=customer.subscription.deleted").await;
    assert_eq!(types(&body), ["customer.subscription.deleted"]);
    let (_, body) = stripe(
        &api,
        "/v1/events?types[]=charge.refunded&types[]=customer.created",
    )
    .await;
    assert_eq!(types(&body), ["customer.created", "charge.refunded"]);
    let (_, body) = stripe(&api, "/v1/events?types[0]=charge.refunded").await;
    assert_eq!(
        types(&body),
        ["charge.refunded"],
        "stripe-python's indexed arrays"
    );
    let (_, body) = stripe(&api, "/v1/events?delivery_success=false").await;
    assert_eq!(types(&body), ["invoice.payment_failed"]);
    let (_, body) = stripe(
        &api,
        &format!(
            "/v1/events?created[gte]={}&limit=100",
            now() - 3 * 3600 - 60
        ),
    )
    .await;
    assert_eq!(ids(&body).len(), 3);
    let (_, body) = stripe(
        &api,
        &format!(
            "/v1/events?created[lt]={}&limit=100",
            now() - 16 * 3600 - 1800
        ),
    )
    .await;
    assert_eq!(ids(&body).len(), 1);
    for bad in [
        "/v1/events?type=a&types[]=b",
        "/v1/events?limit=0",
        "/v1/events?limit=101",
        "/v1/events?colour=blue",
        "/v1/events?starting_after=evt_nope",
        "/v1/events?starting_after=a&ending_before=b",
    ] {
        let (status, body) = stripe(&api, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    let many: String = (0..21).map(|i| format!("types[]=t{i}&")).collect();
    assert_eq!(
        stripe(&api, &format!("/v1/events?{many}")).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn customers_subscriptions_and_invoices() {
    let api = spawn().await;
    let customer = fixture("customer.created")["data"]["object"].clone();
    let mut deleted = fixture("customer.deleted")["data"]["object"].clone();
    deleted["id"] = json!("cus_gone");
    deleted["deleted"] = json!(true);
    let active = fixture("customer.subscription.created")["data"]["object"].clone();
    let canceled = {
        let mut s = fixture("customer.subscription.deleted")["data"]["object"].clone();
        s["id"] = json!("sub_canceled");
        s
    };
    let invoice = fixture("invoice.paid")["data"]["object"].clone();
    let seed = json!({"stripe": {"customers": [customer, deleted], "subscriptions": [active, canceled], "invoices": [invoice]}});
    assert_eq!(
        api.control(Method::POST, "/_sandbox/seed", Some(seed))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let (status, body) = stripe(&api, "/v1/customers/cus_T7aLp4qZ9cXn2W").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["email"],
        fixture("customer.created")["data"]["object"]["email"]
    );
    let (_, body) = stripe(&api, "/v1/customers/cus_gone").await;
    assert_eq!(
        body,
        json!({"id": "cus_gone", "object": "customer", "deleted": true})
    );
    let (status, body) = stripe(&api, "/v1/customers/cus_unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "resource_missing");
    assert_eq!(body["error"]["message"], "No such customer: 'cus_unknown'");
    let (_, body) = stripe(&api, "/v1/customers").await;
    assert_eq!(
        ids(&body),
        ["cus_T7aLp4qZ9cXn2W"],
        "deleted customers are not listed"
    );

    let (_, body) = stripe(&api, "/v1/subscriptions").await;
    assert_eq!(
        ids(&body),
        ["sub_1S4kPqQmT3xK8rLv0cH2mN5a"],
        "canceled ones are left out by default"
    );
    let (_, body) = stripe(
        &api,
        "/v1/subscriptions?status=all&customer=cus_T7aLp4qZ9cXn2W",
    )
    .await;
    assert_eq!(ids(&body).len(), 2);
    let (_, body) = stripe(&api, "/v1/subscriptions?status=canceled").await;
    assert_eq!(ids(&body), ["sub_canceled"]);
    let (_, body) = stripe(&api, "/v1/subscriptions?customer=cus_other").await;
    assert!(ids(&body).is_empty());

    let invoice_id = fixture("invoice.paid")["data"]["object"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, body) = stripe(&api, &format!("/v1/invoices/{invoice_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["billing_reason"], "subscription_create");
}

#[tokio::test]
async fn a_thousand_customers_page_out_in_order() {
    let api = spawn().await;
    let customers: Vec<Value> = (0..1000)
        .map(|i| json!({"id": format!("cus_{i:04}"), "object": "customer", "created": 1_700_000_000 + i, "email": format!("c{i}@example.com")}))
        .collect();
    let subs: Vec<Value> = (0..1000)
        .map(|i| json!({"id": format!("sub_{i:04}"), "object": "subscription", "created": 1_700_000_000 + i,
                        "customer": format!("cus_{i:04}"), "status": if i % 10 == 0 { "canceled" } else { "active" }}))
        .collect();
    let r = api
        .control(
            Method::POST,
            "/_sandbox/seed",
            Some(json!({"stripe": {"customers": customers, "subscriptions": subs}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let mut all = Vec::new();
    let mut path = "/v1/customers?limit=100".to_owned();
    loop {
        let (_, body) = stripe(&api, &path).await;
        let page = ids(&body);
        all.extend(page.clone());
        if body["has_more"] != true {
            break;
        }
        path = format!(
            "/v1/customers?limit=100&starting_after={}",
            page.last().expect("page")
        );
    }
    assert_eq!(all.len(), 1000);
    assert_eq!(
        all.first().map(String::as_str),
        Some("cus_0999"),
        "newest first"
    );
    assert_eq!(all.last().map(String::as_str), Some("cus_0000"));
    let (_, body) = stripe(&api, "/v1/customers?email=c5@example.com").await;
    assert_eq!(ids(&body), ["cus_0005"]);
    let (_, body) = stripe(&api, "/v1/subscriptions?limit=100").await;
    assert_eq!(ids(&body).len(), 100);
    assert_eq!(body["has_more"], true);
}
