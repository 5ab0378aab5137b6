//! paybridge's HubSpot client on its own against the sandbox, where HubSpot's answers
//! decide what the client does next: a batch HubSpot refuses for one bad input, a 429 that
//! names how long to wait (`Retry-After`), and `X-HubSpot-RateLimit-Remaining: 0` when
//! another process sharing the token has spent the window. The rate-limit tests run on
//! tokio's paused clock, which the sandbox's limits and the client's limiter both read:
//! the waits are exact, not measured against a wall clock.

mod common;

use std::time::Duration;

use common::{hubspot_client, spawn_sandbox, spawn_sandbox_with};
use hubspot_sandbox::{Faults, Sandbox, SandboxConfig, Seed, SeedRecord};
use paybridge::hubspot::Properties;
use paybridge::rules::PropertyKind;
use serde_json::{Map, Value};
use tokio::time::Instant;

const BATCH_UPDATE: &str = "POST /crm/objects/2026-09/contacts/batch/update";

fn token_stats(sandbox: &Sandbox) -> Value {
    sandbox.stats()["tokens"][SandboxConfig::default().token].clone()
}

fn seed_contact(id: &str, customer: &str, status: &str) -> SeedRecord {
    let mut properties = Map::new();
    properties.insert("stripe_customer_id".into(), customer.into());
    properties.insert("stripe_subscription_status".into(), status.into());
    SeedRecord {
        id: Some(id.into()),
        properties,
        associations: Vec::new(),
    }
}

fn status_in_hubspot(sandbox: &Sandbox, id: &str) -> String {
    let state = sandbox.state();
    let contact = state["contacts"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("contact {id} in {state}"));
    contact["properties"]["stripe_subscription_status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Guards the batcher's split (`hubspot/batch.rs`): HubSpot validates every input of a
/// batch update before writing any and refuses the whole batch with one 400
/// (VALIDATION_ERROR) when a single value is bad — here a portal whose subscription status
/// property lacks the `paused` option. The client must send each input again alone: the
/// two good updates are written, only the bad one fails, with HubSpot's words. Without the
/// split all three fail (and their events go to the dead letters for another customer's
/// value).
#[tokio::test]
async fn a_batch_refused_for_one_input_is_sent_again_one_by_one_and_only_that_input_fails() {
    let defs = paybridge::rules::properties::builtin("stripe_customer_id")
        .into_iter()
        .map(|mut need| {
            if let PropertyKind::Select(options) = &mut need.kind {
                options.retain(|o| o != "paused");
            }
            need
        })
        .collect();
    let sandbox = spawn_sandbox_with(SandboxConfig::default(), defs).await;
    sandbox
        .merge_seed(Seed {
            contacts: vec![
                seed_contact("501", "cus_split_a", "active"),
                seed_contact("502", "cus_split_b", "active"),
                seed_contact("503", "cus_split_c", "active"),
            ],
            ..Seed::default()
        })
        .expect("seed");
    let hubspot = hubspot_client(&sandbox, 100);
    let update = |id: &'static str, status: &str| {
        let properties = Properties::from([("stripe_subscription_status".into(), status.into())]);
        hubspot.update_contact(id, properties)
    };
    // Joined in one task: all three are queued before the batcher runs, so they share one
    // call.
    let (a, b, c) = tokio::join!(
        update("501", "paused"),
        update("502", "past_due"),
        update("503", "canceled"),
    );

    assert_eq!(
        token_stats(&sandbox)["calls_by_route"][BATCH_UPDATE],
        4,
        "one batch of three refused, then each input alone"
    );
    let refused = a.expect_err("the bad value is refused");
    assert!(refused.is_terminal(), "{refused:?}");
    assert_eq!(refused.category(), Some("VALIDATION_ERROR"), "{refused:?}");
    assert!(
        refused
            .message()
            .contains("paused was not one of the allowed options"),
        "HubSpot's words: {refused}"
    );
    let b = b.expect("the second input is written");
    let c = c.expect("the third input is written");
    assert_eq!(b.get("stripe_subscription_status"), Some("past_due"));
    assert_eq!(c.get("stripe_subscription_status"), Some("canceled"));
    assert_eq!(status_in_hubspot(&sandbox, "501"), "active");
    assert_eq!(status_in_hubspot(&sandbox, "502"), "past_due");
    assert_eq!(status_in_hubspot(&sandbox, "503"), "canceled");
}

/// Guards `Retry-After` on a 429 (`hubspot/transport.rs`): when the answer says how long to
/// wait (HubSpot documents none for CRM 429s, but a gateway in front may send one, RFC 6585
/// §4), no call goes out before it has passed — not the caller's retry, not another
/// caller's call. The sandbox answers one 429 with `Retry-After: 30`, then nothing more
/// refuses; a client that ignored the header would call again once its 10-second window
/// had room, at about 10 s.
#[tokio::test(start_paused = true)]
async fn a_429s_retry_after_holds_every_call_for_that_long() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let hubspot = hubspot_client(&sandbox, 100);
    sandbox.set_faults(Faults {
        force_429: true,
        storm_retry_after_s: Some(30),
        ..Faults::default()
    });
    let start = Instant::now();
    let first = tokio::spawn({
        let hubspot = hubspot.clone();
        async move {
            let found = hubspot.contact_by("email", "first@example.com").await;
            (found, Instant::now())
        }
    });
    // The storm ends as soon as it has refused one call.
    while token_stats(&sandbox)["rate_limited"] != 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sandbox.set_faults(Faults::default());
    // Another caller, after the 429: it waits too.
    let second = hubspot.contact_by("email", "second@example.com").await;
    let second_done = Instant::now();
    let (first, first_done) = first.await.expect("the first call's task");

    assert_eq!(first.expect("the first call ends answered"), None);
    assert_eq!(second.expect("the second call ends answered"), None);
    for (which, done) in [("retried", first_done), ("other", second_done)] {
        let waited = done - start;
        assert!(
            waited >= Duration::from_secs(30) && waited < Duration::from_secs(32),
            "the {which} call was answered after {waited:?}, Retry-After said 30 s"
        );
    }
    let stats = token_stats(&sandbox);
    assert_eq!(stats["rate_limited"], 1, "{stats}");
    assert_eq!(stats["calls"], 3, "one refused, then two answered: {stats}");
}

/// Guards the `X-HubSpot-RateLimit-Remaining` pause (`Transport::observe_headers`): the
/// token's 10-second window is shared with another process (another paybridge replica, a
/// script), so paybridge's own budget does not know it is spent. When an answer says
/// nothing remains, every call waits a moment before going out. Here the window (10 calls)
/// fills at t = 0 and t = 9.5 s, and frees at t = 10 s: a client that went on at once
/// would be refused (429), one that held back is answered.
#[tokio::test(start_paused = true)]
async fn remaining_zero_in_an_answer_holds_the_next_call_until_the_window_has_room() {
    let sandbox = spawn_sandbox(SandboxConfig {
        requests_per_10s: 10,
        ..SandboxConfig::default()
    })
    .await;
    // paybridge's budget is ten times the token's: only HubSpot's headers can hold it back.
    let hubspot = hubspot_client(&sandbox, 100);
    let start = Instant::now();
    assert_eq!(hubspot.contact_by("email", "a@example.com").await, Ok(None));
    // Another process with the same token spends 8 more of the window.
    let other = reqwest::Client::new();
    for _ in 0..8 {
        let r = other
            .get(format!(
                "{}/crm/objects/2026-09/contacts?limit=1",
                sandbox.url()
            ))
            .bearer_auth(SandboxConfig::default().token)
            .send()
            .await
            .expect("the other process's call");
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep_until(start + Duration::from_millis(9_500)).await;
    // The window's tenth call: answered with `X-HubSpot-RateLimit-Remaining: 0`.
    assert_eq!(hubspot.contact_by("email", "b@example.com").await, Ok(None));
    let answered = Instant::now();
    assert_eq!(hubspot.contact_by("email", "c@example.com").await, Ok(None));
    let held = Instant::now() - answered;

    let stats = token_stats(&sandbox);
    assert_eq!(stats["rate_limited"], 0, "no call refused: {stats}");
    assert_eq!(stats["calls"], 11, "{stats}");
    assert!(
        held >= Duration::from_millis(500),
        "the call after Remaining: 0 went out {held:?} later, before the window had room"
    );
}
