use super::*;
use crate::domain::{Money, Outcome};
use crate::stripe::{Envelope, normalise};

const NOW: i64 = 1_800_000_000;

fn opts() -> SimOptions {
    SimOptions::new(
        Some("cus_simTest123".into()),
        Some("grace@example.org".into()),
        Some(12_345),
        Some("prod_simWidgets01".into()),
    )
    .expect("valid options")
}

/// Every string in the JSON, with the key it sits under.
fn strings(v: &Value, key: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| strings(v, k, out)),
        Value::Array(a) => a.iter().for_each(|v| strings(v, key, out)),
        Value::String(s) => out.push((key.to_owned(), s.clone())),
        _ => {}
    }
}

#[test]
fn the_fixture_list_matches_the_files() {
    let dir = format!("{}/fixtures/stripe", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "signature-vectors.json")
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    files.sort();
    assert_eq!(supported_types(), files);
    for (kind, text) in FIXTURES {
        let v: Value = serde_json::from_str(text).expect("fixture JSON");
        assert_eq!(v["type"], *kind, "{kind}: file name and type agree");
    }
}

#[test]
fn every_fixture_type_builds_parses_and_normalises_for_the_chosen_customer() {
    let o = opts();
    for kind in supported_types() {
        let event = build_event(kind, &o, NOW).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let body = serde_json::to_vec(&event).expect("serialise");
        let envelope = Envelope::parse(&body).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(envelope.kind, kind);
        assert_eq!(envelope.created, NOW);
        assert!(envelope.id.as_str().starts_with("evt_sim"), "{kind}");
        assert!(!envelope.livemode, "{kind}: test mode");
        let fact = normalise(&body).unwrap_or_else(|e| panic!("{kind}: {e}"));
        if kind == "charge.dispute.created" {
            // A dispute names no customer (research/stripe.md §4).
            assert_eq!(fact.customer, None);
        } else {
            assert_eq!(
                fact.customer.as_ref().map(|c| c.as_str()),
                Some("cus_simTest123"),
                "{kind}"
            );
        }
        if let Some(email) = &fact.email {
            assert_eq!(email, "grace@example.org", "{kind}");
        }
        if let Some(amount) = &fact.amount {
            assert_eq!(*amount, Money::new(12_345, "usd"), "{kind}");
        }
        for product in &fact.products {
            assert_eq!(
                product.product_id.as_deref(),
                Some("prod_simWidgets01"),
                "{kind}"
            );
        }
        // Nothing of the fixtures' customer is left, and no timestamp is years away.
        let text = serde_json::to_string(&event).expect("serialise");
        for old in [
            "cus_T7aLp4qZ9cXn2W",
            "sub_1S4kPqQmT3xK8rLv0cH2mN5a",
            "in_1S4kPrQmT3xK8rLvb6Yt1ZqW",
            "in_1SBxE9QmT3xK8rLvR3tY6uIo",
            "ch_3S4kPsQmT3xK8rLv1Ks0uR4t",
            "pi_3S4kPsQmT3xK8rLv1p8XwQ2e",
            "prod_T7aL2pWq8sYv3N",
            "price_1S4k2LQmT3xK8rLvA9dE7fGh",
            "ada.lovelace@example.com",
            "ada@analytical-engines",
            "usr_4821",
        ] {
            assert!(!text.contains(old), "{kind}: `{old}` left in the event");
        }
        let mut all = Vec::new();
        strings(&event, "", &mut all);
        for (key, value) in &all {
            if key.ends_with("email") && value.contains('@') {
                assert!(value.contains("grace"), "{kind}: {key} = {value}");
            }
        }
    }
}

#[test]
fn the_card_data_is_kept_as_the_fixtures_have_it() {
    let event = build_event("charge.succeeded", &opts(), NOW).expect("builds");
    let card = &event["data"]["object"]["payment_method_details"]["card"];
    assert_eq!(card["last4"], "4242");
    assert_eq!(card["brand"], "visa");
}

#[test]
fn ids_are_fresh_per_build_and_consistent_within_an_event() {
    let o = opts();
    let a = build_event("invoice.paid", &o, NOW).expect("builds");
    let b = build_event("invoice.paid", &o, NOW).expect("builds");
    assert_ne!(a["id"], b["id"]);
    assert_ne!(a["data"]["object"]["id"], b["data"]["object"]["id"]);
    let invoice = a["data"]["object"]["id"].as_str().expect("invoice id");
    assert!(invoice.starts_with("in_sim"), "{invoice}");
    let line = &a["data"]["object"]["lines"]["data"][0];
    assert_eq!(line["invoice"], invoice);
    assert_eq!(
        a["data"]["object"]["lines"]["url"],
        format!("/v1/invoices/{invoice}/lines")
    );
    assert_eq!(line["amount"], 12_345);
    assert_eq!(line["pricing"]["unit_amount_decimal"], "12345");
    assert_eq!(line["description"], "1 × Pro (at $123.45 / month)");
    let sub = line["subscription"].as_str().expect("subscription");
    assert!(sub.starts_with("sub_sim"), "{sub}");
    assert_eq!(
        a["data"]["object"]["parent"]["subscription_details"]["subscription"],
        sub
    );
    // Timestamps moved with `created`: the invoice was finalised just before the event.
    let finalized = a["data"]["object"]["status_transitions"]["finalized_at"]
        .as_i64()
        .expect("finalized_at");
    assert!((NOW - 60..=NOW).contains(&finalized), "{finalized}");
}

#[test]
fn refunds_stay_partial_and_disputes_cover_the_charge() {
    let o = opts();
    let refunded = build_event("charge.refunded", &o, NOW).expect("builds");
    let fact = normalise(&serde_json::to_vec(&refunded).expect("json")).expect("fact");
    assert_eq!(fact.amount_refunded, Some(Money::new(1_000, "usd")));
    assert_eq!(fact.charge.map(|c| c.refunded), Some(false));

    let small = SimOptions::new(None, None, Some(500), None).expect("options");
    let refunded = build_event("charge.refunded", &small, NOW).expect("builds");
    assert_eq!(refunded["data"]["object"]["amount_refunded"], 500);
    assert_eq!(refunded["data"]["object"]["refunded"], true);

    let dispute = build_event("charge.dispute.created", &o, NOW).expect("builds");
    assert_eq!(dispute["data"]["object"]["amount"], 12_345);
    let txn = &dispute["data"]["object"]["balance_transactions"][0];
    assert_eq!(txn["amount"], -12_345);
    assert_eq!(txn["net"], -12_345 - 1_500);
}

#[test]
fn defaults_and_bad_options() {
    let d = SimOptions::new(None, None, None, None).expect("defaults");
    assert!(d.customer.starts_with("cus_sim"), "{}", d.customer);
    assert_eq!(
        d.email,
        format!("{}@example.com", d.customer.to_ascii_lowercase())
    );
    assert_eq!(d.amount, 4_900);
    let event = build_event("invoice.paid", &d, NOW).expect("builds");
    assert_eq!(
        event["data"]["object"]["lines"]["data"][0]["pricing"]["price_details"]["product"],
        "prod_T7aL2pWq8sYv3N",
        "no --product keeps the fixtures' catalog"
    );
    assert!(SimOptions::new(Some("bob".into()), None, None, None).is_err());
    assert!(SimOptions::new(None, Some("nope".into()), None, None).is_err());
    assert!(SimOptions::new(None, None, Some(0), None).is_err());
    assert!(SimOptions::new(None, None, None, Some("widgets".into())).is_err());
    let unknown = build_event("invoice.created", &d, NOW).expect_err("no fixture");
    assert!(unknown.contains("invoice.paid"), "{unknown}");
    assert_eq!("cancelled".parse(), Ok(StoryOutcome::Cancelled));
    assert!("maybe".parse::<StoryOutcome>().is_err());
}

#[test]
fn the_story_is_one_customer_in_order() {
    let o = opts();
    let events = story(&o, StoryOutcome::Recovered, NOW);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        kinds,
        [
            "customer.created",
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid",
            "charge.succeeded",
            "charge.refunded",
            "invoice.payment_failed",
            "customer.subscription.updated",
            "invoice.paid",
            "customer.subscription.updated",
        ]
    );
    let facts: Vec<_> = events
        .iter()
        .map(|e| normalise(&serde_json::to_vec(e).expect("json")).expect("fact"))
        .collect();
    let created: Vec<i64> = facts.iter().map(|f| f.occurred_at).collect();
    let expected: Vec<i64> = (NOW - 9..=NOW).collect();
    assert_eq!(created, expected, "a second apart, ending now");
    let mut ids: Vec<&str> = facts.iter().map(|f| f.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "every event has its own id");
    for f in &facts {
        assert_eq!(
            f.customer.as_ref().map(|c| c.as_str()),
            Some("cus_simTest123")
        );
    }
    let sub = |i: usize| facts[i].subscription.as_ref().map(|s| s.id.clone());
    let subscription = sub(2).expect("subscription");
    for i in [1, 3, 6, 7, 8, 9] {
        assert_eq!(sub(i).as_deref(), Some(subscription.as_str()), "event {i}");
    }
    let invoice = |i: usize| facts[i].invoice.clone().expect("invoice facts");
    let first = invoice(3);
    assert_eq!(first.billing_reason.as_deref(), Some("subscription_create"));
    assert_eq!(
        events[1]["data"]["object"]["invoice"], first.id,
        "checkout names the first invoice"
    );
    let failed = invoice(6);
    assert_eq!(failed.billing_reason.as_deref(), Some("subscription_cycle"));
    assert_eq!(failed.attempt_count, Some(1));
    assert_ne!(failed.id, first.id);
    let recovered = invoice(8);
    assert_eq!(
        recovered.id, failed.id,
        "the failed invoice is the one paid"
    );
    assert_eq!(recovered.status.as_deref(), Some("paid"));
    assert_eq!(recovered.next_payment_attempt, None);
    assert_eq!(facts[8].outcome, Outcome::PaymentSucceeded);
    assert_eq!(facts[8].amount, Some(Money::new(12_345, "usd")));
    let charge = |i: usize| facts[i].charge.clone().expect("charge");
    assert_eq!(
        charge(4).id,
        charge(5).id,
        "the refund is of the first charge"
    );
    assert_eq!(facts[5].amount_refunded, Some(Money::new(1_000, "usd")));
    let status = |i: usize| {
        let s = facts[i].subscription.clone().expect("subscription");
        (s.previous_status, s.status)
    };
    assert_eq!(status(2).1.as_deref(), Some("active"));
    assert_eq!(status(7), (Some("active".into()), Some("past_due".into())));
    assert_eq!(status(9), (Some("past_due".into()), Some("active".into())));
}

#[test]
fn the_cancelled_story_ends_with_the_subscription_deleted() {
    let events = story(&opts(), StoryOutcome::Cancelled, NOW);
    assert_eq!(events.len(), 9);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "customer.subscription.deleted");
    assert_eq!(last["data"]["object"]["status"], "canceled");
    assert_eq!(
        last["data"]["object"]["id"],
        events[2]["data"]["object"]["id"]
    );
    assert_eq!(last["created"], NOW);
}
