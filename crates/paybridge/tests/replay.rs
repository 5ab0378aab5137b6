//! Replay from Stripe's Events API (the sandbox serves it): events Stripe has and no
//! webhook brought are found, stored once, processed once; a second replay adds nothing.

mod common;

use std::time::Duration;

use common::process::run_command;
use common::story::{customer_story, event};
use common::{TestApp, spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Sandbox, SandboxConfig};
use paybridge::basics::Secret;
use paybridge::catchup::replay::{ReplayCounts, ReplayRequest, Replayer};
use paybridge::domain::{Clock, EventId, EventStatus};
use paybridge::store::EventFilter;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const STRIPE_KEY: &str = "sk_test_replay_0123456789";

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn app_on(sandbox: &Sandbox, clock: Clock) -> TestApp {
    spawn_app_with(
        |s| {
            use_sandbox(s, sandbox);
            s.stripe.api_key = Some(Secret::new(STRIPE_KEY.into()));
            s.stripe.api_base = sandbox.url();
        },
        clock,
    )
    .await
}

fn replayer(app: &TestApp, sandbox: &Sandbox) -> Replayer {
    let api =
        paybridge::stripe::api::StripeApi::new(&sandbox.url(), Secret::new(STRIPE_KEY.into()))
            .expect("client");
    Replayer::new(
        api,
        paybridge::app::services::intake(&paybridge::rules::RuleSet::default(), app.store.clone()),
    )
}

fn id_of(e: &Value) -> String {
    e["id"].as_str().expect("id").to_owned()
}

/// Where a stored event came from (`webhook`, `replay`, …).
async fn source_of(app: &TestApp, id: &str) -> String {
    app.store
        .get_event(&EventId::parse(id).expect("id"))
        .await
        .expect("read")
        .expect("stored")
        .summary
        .source
}

/// Three customers' short stories over the last five days; customer 2's last two events
/// never reached us. Plus a type no rule handles (undelivered) and an event older than
/// Stripe's 30 days. Returns (delivered, missed, ignored id).
fn history(sandbox: &Sandbox) -> (Vec<Value>, Vec<Value>, String) {
    let mut delivered = Vec::new();
    let mut missed = Vec::new();
    for i in 0..3 {
        let t = now_secs() - 5 * 86_400 + i * 3_600;
        let customer = format!("cus_rp{i}");
        let email = format!("rp{i}@example.com");
        let script = [
            ("customer.created.json", t),
            ("customer.subscription.created.json", t + 10),
            ("invoice.paid.json", t + 20),
            ("invoice.payment_failed.json", t + 3 * 86_400),
            ("customer.subscription.updated.json", t + 3 * 86_400 + 10),
        ];
        for (k, (fixture, created)) in script.into_iter().enumerate() {
            let mut e = event(
                fixture,
                &format!("evt_rp{i}_{k}"),
                &customer,
                &email,
                created,
            );
            if k == 1 {
                e["data"]["object"]["status"] = "active".into();
            }
            if k == 4 {
                e["data"]["object"]["status"] = "past_due".into();
            }
            if i == 2 && k >= 3 {
                sandbox.record_stripe_event(e.clone(), false);
                missed.push(e);
            } else {
                sandbox.record_stripe_event(e.clone(), true);
                delivered.push(e);
            }
        }
    }
    let payout = json!({
        "id": "evt_rp_payout", "object": "event", "api_version": "2026-08-26.dahlia",
        "created": now_secs() - 3_600, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": "payout.paid",
        "data": {"object": {"id": "po_1", "object": "payout", "amount": 1000, "currency": "usd"}}
    });
    sandbox.record_stripe_event(payout, false);
    let old = event(
        "invoice.paid.json",
        "evt_rp_old",
        "cus_rpold",
        "old@example.com",
        now_secs() - 31 * 86_400,
    );
    sandbox.record_stripe_event(old, false);
    (delivered, missed, "evt_rp_payout".into())
}

#[tokio::test]
async fn missed_events_are_found_processed_once_and_a_second_replay_adds_nothing() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = app_on(&sandbox, Clock::system()).await;
    let (delivered, missed, ignored) = history(&sandbox);
    for e in &delivered {
        let r = app.post_signed(&serde_json::to_vec(e).expect("json")).await;
        assert_eq!(r.status(), 200);
    }
    let webhook_runs = app.drain().await;
    assert_eq!(webhook_runs, delivered.len());

    let r = replayer(&app, &sandbox);
    let cancel = CancellationToken::new();
    let request = ReplayRequest {
        since: now_secs() - 29 * 86_400,
        types: Vec::new(),
        undelivered: false,
    };
    let mut pages_seen = Vec::new();
    let counts = r
        .run(&request, &cancel, &mut |c| pages_seen.push(c.pages))
        .await
        .expect("replay");
    assert_eq!(
        counts,
        ReplayCounts {
            since: request.since,
            pages: 1,
            fetched: (delivered.len() + missed.len() + 1) as u64,
            new: missed.len() as u64,
            ignored: 1,
            known: delivered.len() as u64,
            unreadable: 0,
        }
    );
    assert_eq!(pages_seen, [1]);
    assert_eq!(
        app.drain().await,
        missed.len(),
        "each missed event runs once"
    );

    for e in &missed {
        let id = EventId::parse(&id_of(e)).expect("id");
        let stored = app
            .store
            .get_event(&id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored.summary.source, "replay");
        assert_eq!(stored.summary.status, EventStatus::Done, "{id}");
        assert_eq!(stored.summary.attempts, 1, "{id}");
        let steps = app.store.steps_of(id.as_str()).await.expect("steps");
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert_eq!(steps[0].status, "done");
    }
    let payout = app
        .store
        .get_event(&EventId::parse(&ignored).expect("id"))
        .await
        .expect("read")
        .expect("the unhandled type is stored");
    assert_eq!(payout.summary.status, EventStatus::Ignored);
    // Customer 2's contact shows what the missed events said: past_due since the failure.
    let state = sandbox.state();
    let contact = state["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["properties"]["stripe_customer_id"] == "cus_rp2")
        .expect("cus_rp2 has a contact")
        .clone();
    assert_eq!(
        contact["properties"]["stripe_subscription_status"],
        "past_due"
    );
    assert_eq!(contact["properties"]["stripe_delinquent"], "true");
    assert_eq!(state["contacts"].as_array().map(Vec::len), Some(3));

    let again = r.run(&request, &cancel, &mut |_| {}).await.expect("replay");
    assert_eq!(
        (again.new, again.ignored, again.known, again.fetched),
        (0, 0, counts.fetched, counts.fetched)
    );
    assert_eq!(app.drain().await, 0, "nothing new to run");
    let replayed = app
        .store
        .list_events(&EventFilter {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_iter()
        .filter(|e| e.source == "replay")
        .count();
    assert_eq!(replayed, missed.len() + 1);
    app.stop().await;
}

#[tokio::test]
async fn filters_reach_stripe_and_the_admin_api_replays_with_the_token_only() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = app_on(&sandbox, Clock::system()).await;
    let (delivered, missed, _) = history(&sandbox);

    // Without the token: refused, nothing stored.
    let refused = app
        .client
        .post(format!("{}/api/replay", app.admin_url))
        .json(&json!({"since": "29d"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);
    assert_eq!(app.store.count_events().await.expect("count"), 0);

    let replay = |body: Value| {
        let (client, url) = (app.client.clone(), format!("{}/api/replay", app.admin_url));
        async move {
            let r = client
                .post(url)
                .bearer_auth("admin-test-token-0123456789abcdef")
                .json(&body)
                .send()
                .await
                .expect("answered");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    // Only what Stripe could not deliver: customer 2's two events and the payout.
    let (status, counts) = replay(json!({"since": "29d", "undelivered": true})).await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["fetched"], 3);
    assert_eq!(counts["new"], 2);
    assert_eq!(counts["ignored"], 1);
    assert_eq!(counts["known"], 0);
    // One type: each customer's failed payment; customer 2's is known now.
    let (status, counts) = replay(json!({
        "since": "29d",
        "types": ["invoice.payment_failed"]
    }))
    .await;
    assert_eq!(status, 200, "{counts}");
    assert_eq!(counts["fetched"], 3, "{counts}");
    assert_eq!(counts["new"], 2);
    assert_eq!(counts["known"], 1);
    // A bad time is a 400 naming the problem.
    let (status, body) = replay(json!({"since": "last tuesday"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "bad_since");
    assert_eq!(
        app.store.count_events().await.expect("count"),
        5,
        "only what was asked for is stored (of {} delivered events, 2)",
        delivered.len()
    );
    assert_eq!(app.drain().await, missed.len() + 2);
    app.stop().await;
}

#[tokio::test]
async fn the_schedule_replays_from_its_last_run_and_records_it() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let start = now_secs() * 1000;
    let clock = Clock::manual(start);
    let app = app_on(&sandbox, clock.clone()).await;
    let r = replayer(&app, &sandbox);
    let cancel = CancellationToken::new();
    let every = Duration::from_secs(3_600);
    let event = |id: &str, created: i64| {
        let mut e = customer_story("sch", 0, created).0.remove(2);
        e["id"] = id.into();
        e
    };
    // Missed 10 minutes ago, and one missed 2 hours ago (before the first window).
    sandbox.record_stripe_event(event("evt_sch_recent", now_secs() - 600), false);
    sandbox.record_stripe_event(event("evt_sch_old", now_secs() - 7_200), false);
    let first = r.scheduled_run(every, &cancel).await.expect("first run");
    assert_eq!(
        first.since,
        start / 1000 - 3_600,
        "the first run looks back `every`"
    );
    assert_eq!((first.new, first.known), (1, 0));
    assert_eq!(
        app.store
            .meta_get("replay_schedule_last")
            .await
            .expect("meta"),
        Some((start / 1000).to_string())
    );
    // An hour later: from the last start minus the overlap; the old one stays out.
    clock.advance_ms(3_600_000);
    sandbox.record_stripe_event(event("evt_sch_new", now_secs() - 60), false);
    let second = r.scheduled_run(every, &cancel).await.expect("second run");
    assert_eq!(second.since, start / 1000 - 600);
    assert_eq!((second.new, second.known), (1, 1));
    assert_eq!(app.drain().await, 2);
    app.stop().await;
}

/// Guards paging (`stripe/api.rs`, `catchup/replay.rs`): Stripe lists at most 100 events a
/// page, newest first, and says `has_more`; the next page starts after the last id of the
/// one before. 250 missed events (several to a second, so pages break inside a second) are
/// three pages: every one is stored once, none twice, and a second replay finds them all
/// known. A replay that read only the first page would store 100.
#[tokio::test]
async fn a_replay_reads_every_page_stripe_has() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let app = app_on(&sandbox, Clock::system()).await;
    let base = now_secs() - 86_400;
    for i in 0..250 {
        let e = event(
            "invoice.paid.json",
            &format!("evt_page_{i:03}"),
            &format!("cus_page{}", i % 40),
            &format!("page{}@example.com", i % 40),
            base + i / 7,
        );
        sandbox.record_stripe_event(e, false);
    }
    let r = replayer(&app, &sandbox);
    let cancel = CancellationToken::new();
    let request = ReplayRequest {
        since: base - 60,
        types: Vec::new(),
        undelivered: false,
    };
    let counts = r.run(&request, &cancel, &mut |_| {}).await.expect("replay");
    assert_eq!(
        (counts.pages, counts.fetched, counts.new, counts.known),
        (3, 250, 250, 0),
        "{counts:?}"
    );
    let cursors: Vec<String> = sandbox
        .stripe_requests()
        .iter()
        .filter(|q| q["path"] == "/v1/events")
        .map(|q| q["query"].to_string())
        .collect();
    assert_eq!(cursors.len(), 3, "{cursors:#?}");
    assert!(
        cursors[1].contains("starting_after") && cursors[2].contains("starting_after"),
        "{cursors:#?}"
    );
    assert_eq!(app.store.count_events().await.expect("count"), 250);
    for i in [0, 99, 100, 101, 199, 200, 249] {
        let id = EventId::parse(&format!("evt_page_{i:03}")).expect("id");
        assert!(
            app.store.get_event(&id).await.expect("read").is_some(),
            "{id} stored"
        );
    }
    let again = r.run(&request, &cancel, &mut |_| {}).await.expect("replay");
    assert_eq!(
        (again.pages, again.new, again.known),
        (3, 0, 250),
        "{again:?}"
    );
    app.stop().await;
}

/// Guards the schedule's wiring (`app::spawn_housekeeping`, `[stripe] replay_every`): the
/// running app replays by itself, at once on start and then every `replay_every`, without
/// any command. An event Stripe has at start is stored by the first run; one Stripe gets
/// after that run is stored by a later one, no sooner than the interval after (measured
/// from when the first was seen). Without the wiring nothing is ever stored; a loop that
/// did not wait would store the second at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_replays_on_its_schedule() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let every = Duration::from_secs(2);
    let missed = |id: &str| {
        let mut e = customer_story("sched", 0, now_secs()).0.remove(2);
        e["id"] = id.into();
        e
    };
    sandbox.record_stripe_event(missed("evt_sched_first"), false);
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.stripe.api_key = Some(Secret::new(STRIPE_KEY.into()));
            s.stripe.api_base = sandbox.url();
            // Settings directly: a config file may not go below a minute.
            s.stripe.replay_every = Some(every);
        },
        Clock::system(),
    )
    .await;
    let stored = |id: &'static str| {
        let store = app.store.clone();
        async move {
            let id = EventId::parse(id).expect("id");
            // A bound only for a failing run.
            for _ in 0..600 {
                if store.get_event(&id).await.expect("read").is_some() {
                    return std::time::Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("{id} was never replayed");
        }
    };
    let first_seen = stored("evt_sched_first").await;
    sandbox.record_stripe_event(missed("evt_sched_second"), false);
    let second_seen = stored("evt_sched_second").await;
    assert!(
        second_seen - first_seen >= every / 2,
        "the next run came {:?} after the first, before its interval",
        second_seen - first_seen
    );
    for id in ["evt_sched_first", "evt_sched_second"] {
        assert_eq!(source_of(&app, id).await, "replay");
    }
    assert!(
        app.store
            .meta_get("replay_schedule_last")
            .await
            .expect("meta")
            .is_some(),
        "the run is recorded"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_command_replays_into_the_store_and_needs_an_api_key() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let (delivered, missed, _) = history(&sandbox);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |with_key: bool| {
        let key = if with_key {
            format!(
                "api_key = \"{STRIPE_KEY}\"\napi_base = \"{}\"\n",
                sandbox.url()
            )
        } else {
            String::new()
        };
        let path = dir.path().join(format!("paybridge-{with_key}.toml"));
        std::fs::write(
            &path,
            format!(
                "[store]\nurl = \"sqlite://{}\"\n[stripe]\nwebhook_secrets = [\"whsec_unused\"]\n{key}[hubspot]\ntoken = \"not-used\"\n",
                dir.path().join("paybridge.db").display()
            ),
        )
        .expect("write config");
        path
    };
    let run = |config: std::path::PathBuf, args: &'static [&'static str]| async move {
        let mut all = vec!["replay"];
        all.extend_from_slice(args);
        run_command(&config, &all).await
    };
    let out = run(config(false), &["--since", "1d"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stripe.api_key is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let with_key = config(true);
    let out = run(with_key.clone(), &["--since", "29d", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Value = serde_json::from_slice(&out.stdout).expect("JSON counts");
    let all = delivered.len() + missed.len();
    assert_eq!(counts["new"], all as u64);
    assert_eq!(counts["ignored"], 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("replay: page 1"),
        "plain progress lines off a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(with_key, &["--since", "29d"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("known      {:>6}", all + 1)),
        "{text}"
    );
    assert!(text.contains(&format!("new        {:>6}", 0)), "{text}");
}

/// `types[]` takes exact names only (stripe-node `EventListParams`: "An array of up to 20
/// strings containing specific event names"); what Stripe answers to a `*` there is not
/// published, so the sandbox refuses it (400) or matches nothing (200, empty), and replay
/// must find the same events under both: it sends exact names.
#[tokio::test]
async fn patterns_are_sent_as_exact_names_whatever_stripe_answers_to_a_wildcard() {
    for wildcard in [
        hubspot_sandbox::WildcardTypes::Refuse,
        hubspot_sandbox::WildcardTypes::Empty,
    ] {
        let sandbox = spawn_sandbox(SandboxConfig {
            stripe: hubspot_sandbox::StripeBehaviour {
                wildcard_types: wildcard,
                ..Default::default()
            },
            ..SandboxConfig::default()
        })
        .await;
        let app = app_on(&sandbox, Clock::system()).await;
        let (_, missed, _) = history(&sandbox);
        let request = ReplayRequest {
            since: now_secs() - 6 * 86_400,
            types: vec!["invoice.*".into(), "customer.subscription.*".into()],
            undelivered: true,
        };
        let r = replayer(&app, &sandbox);
        let counts = r
            .run(&request, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{wildcard:?}: {e}"));
        // Customer 2's missed invoice.payment_failed and customer.subscription.updated.
        assert_eq!(
            (counts.new, counts.known),
            (2, 0),
            "{wildcard:?}: {counts:?}"
        );
        let requests = sandbox.stripe_requests();
        let queries: Vec<&str> = requests
            .iter()
            .filter(|q| q["path"] == "/v1/events")
            .filter_map(|q| q["query"].as_str())
            .collect();
        assert!(!queries.is_empty());
        for q in &queries {
            assert!(!q.contains('*') && !q.contains("%2A"), "{q}");
            let n = q.matches("types%5B%5D=").count();
            assert!((1..=20).contains(&n), "{n} names in {q}");
        }
        // The expansion has more than 20 names: more than one listing, each name once.
        assert!(queries.len() >= 2, "{queries:?}");
        let listed = |name: &str| {
            queries
                .iter()
                .filter(|q| q.contains(&format!("types%5B%5D={name}&")))
                .count()
        };
        assert_eq!(listed("invoice.payment_failed"), 1);
        assert_eq!(listed("customer.subscription.updated"), 1);
        // Once more: Stripe lists them again, the store knows them.
        let again = r
            .run(&request, &CancellationToken::new(), &mut |_| {})
            .await
            .expect("again");
        assert_eq!((again.new, again.known), (0, 2), "{wildcard:?}");
        let missed_ids: Vec<String> = missed.iter().map(id_of).collect();
        for id in &missed_ids {
            assert_eq!(source_of(&app, id).await, "replay");
        }
        app.stop().await;
    }
}
