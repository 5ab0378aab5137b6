//! Realistic event streams built from the fixtures' shapes: many customers, each with a
//! short life, plus what the CRM must show at the end.

use serde_json::Value;

use super::fixture;

fn template(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture JSON")
}

/// One event: the fixture `name` re-keyed to `id`, `customer`, `created`.
pub fn event(name: &str, id: &str, customer: &str, email: &str, created: i64) -> Value {
    let mut e = template(name);
    e["id"] = id.into();
    e["created"] = created.into();
    let object = &mut e["data"]["object"];
    if object["object"] == "customer" {
        object["id"] = customer.into();
        object["email"] = email.into();
    } else {
        object["customer"] = customer.into();
    }
    if object["object"] == "invoice" {
        object["customer_email"] = email.into();
        object["id"] = format!("in_{id}").into();
    }
    if object["object"] == "charge" {
        object["id"] = format!("ch_{id}").into();
    }
    e
}

pub struct Expected {
    pub customer: String,
    pub email: String,
    pub status: String,
    pub last_payment_date: String,
    pub last_failed_date: String,
    pub delinquent: String,
}

pub fn iso_date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Customer `i`'s five events and the end state they imply. The customer signs up,
/// pays, a renewal fails, and the subscription ends `active` (every third customer,
/// the card was updated) or `past_due`.
pub fn customer_story(prefix: &str, i: usize, base: i64) -> (Vec<Value>, Expected) {
    let customer = format!("cus_{prefix}{i}");
    let email = format!("{prefix}{i}@example.com");
    let t = base + i as i64 * 3_600;
    let final_status = if i.is_multiple_of(3) {
        "active"
    } else {
        "past_due"
    };
    let mut events = vec![
        event(
            "customer.created.json",
            &format!("evt_{prefix}{i}_0"),
            &customer,
            &email,
            t,
        ),
        event(
            "customer.subscription.created.json",
            &format!("evt_{prefix}{i}_1"),
            &customer,
            &email,
            t + 10,
        ),
        event(
            "invoice.paid.json",
            &format!("evt_{prefix}{i}_2"),
            &customer,
            &email,
            t + 20,
        ),
        event(
            "invoice.payment_failed.json",
            &format!("evt_{prefix}{i}_3"),
            &customer,
            &email,
            t + 86_400 * 30,
        ),
        event(
            "customer.subscription.updated.json",
            &format!("evt_{prefix}{i}_4"),
            &customer,
            &email,
            t + 86_400 * 30 + 10,
        ),
    ];
    events[1]["data"]["object"]["status"] = "active".into();
    events[4]["data"]["object"]["status"] = final_status.into();
    (
        events,
        Expected {
            customer,
            email,
            status: final_status.into(),
            last_payment_date: iso_date(t + 20),
            last_failed_date: iso_date(t + 86_400 * 30),
            delinquent: "true".into(),
        },
    )
}

/// Customer `i`'s story (see [`customer_story`]) with Stripe's second attempt at the failed
/// renewal: `invoice.payment_failed` "occurs whenever an invoice payment attempt fails"
/// (https://docs.stripe.com/api/events/types), so a retried invoice sends it again; here
/// five seconds after the first, same invoice, `attempt_count` 2. Six events; the end
/// state is the first failure's (the same day).
pub fn customer_story_with_retry(prefix: &str, i: usize, base: i64) -> (Vec<Value>, Expected) {
    let (mut events, mut expected) = customer_story(prefix, i, base);
    let first = events[3].clone();
    let created = first["created"].as_i64().expect("created") + 5;
    let mut retry = event(
        "invoice.payment_failed.json",
        &format!("evt_{prefix}{i}_5"),
        &expected.customer,
        &expected.email,
        created,
    );
    retry["data"]["object"]["id"] = first["data"]["object"]["id"].clone();
    retry["data"]["object"]["attempt_count"] = 2.into();
    expected.last_failed_date = iso_date(created);
    events.push(retry);
    (events, expected)
}

/// `customers` stories (ids from `prefix`), the events `again` picks from them delivered
/// a second time, everything shuffled (deterministically, from `seed`).
fn redelivered(
    prefix: &str,
    customers: usize,
    story: impl Fn(&str, usize, i64) -> (Vec<Value>, Expected),
    seed: u64,
    again: impl FnOnce(&mut rand::rngs::StdRng, &[Value]) -> Vec<Value>,
) -> (Vec<Value>, Vec<Expected>) {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    let mut events = Vec::new();
    let mut expected = Vec::new();
    for i in 0..customers {
        let (e, x) = story(prefix, i, 1_790_000_000);
        events.extend(e);
        expected.push(x);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let twice = again(&mut rng, &events);
    events.extend(twice);
    events.shuffle(&mut rng);
    (events, expected)
}

/// `customers` stories (ids from `prefix`), a share `again` of their events delivered a
/// second time, everything shuffled (deterministically, from `seed`).
pub fn shuffled_stories(
    prefix: &str,
    customers: usize,
    again: f64,
    seed: u64,
) -> (Vec<Value>, Vec<Expected>) {
    redelivered(prefix, customers, customer_story, seed, |rng, events| {
        events
            .iter()
            .filter(|_| rand::Rng::random_bool(rng, again))
            .cloned()
            .collect()
    })
}

/// `customers` stories told by `story` (ids from `prefix`) as exactly `deliveries`
/// deliveries: every event once, and as many distinct events as it takes a second time,
/// everything shuffled (deterministically, from `seed`). Panics when `deliveries` is below
/// the events' count or above twice it.
pub fn shuffled_deliveries(
    prefix: &str,
    customers: usize,
    story: impl Fn(&str, usize, i64) -> (Vec<Value>, Expected),
    deliveries: usize,
    seed: u64,
) -> (Vec<Value>, Vec<Expected>) {
    redelivered(prefix, customers, story, seed, |rng, events| {
        let distinct = events.len();
        assert!(
            (distinct..=2 * distinct).contains(&deliveries),
            "{deliveries} deliveries of {distinct} events"
        );
        rand::seq::index::sample(rng, distinct, deliveries - distinct)
            .iter()
            .map(|i| events[i].clone())
            .collect()
    })
}
