//! Shared by the flow benchmarks (drain, trickle, steady, outage): the HubSpot sandbox with
//! HubSpot's limits, paybridge's real store, workers, limiter and batchers in this process,
//! Stripe events made from the fixtures and stored as intake stores them, and the figures:
//! HubSpot calls per event, payment → CRM latency (an event's arrival to its `done`), the
//! final statuses.

#![allow(dead_code)]

#[path = "stats.rs"]
mod stats;
pub use stats::percentile;
#[path = "sandbox.rs"]
mod sandbox;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubspot_sandbox::{Faults, Sandbox, SandboxConfig};
use paybridge::app::services::Services;
use paybridge::domain::{Clock, CustomerId, EventId, EventSource, EventStatus};
use paybridge::store::{EventFilter, EventSummary, NewEvent, Store};
use paybridge::worker::{Pipeline, Pool};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The app token's name in the sandbox (its calls are the ones counted).
pub const TOKEN: &str = "sandbox-token";

/// Rules of the mixed benchmarks: the dunning ticket (for the contact's owner, once per
/// invoice) and a note on a refund, beside the built-in financial tagging.
pub const TICKET_AND_NOTE_RULES: &str = r#"
[[rules]]
name = "dunning"
on = ["invoice.payment_failed"]
actions = [
  { type = "create_ticket", subject = "Payment failed: {{ customer.email }} ({{ amount_formatted }})", priority = "HIGH", owner = "contact_owner", once_per = "{{ invoice.id }}" },
]

[[rules]]
name = "refund"
on = ["charge.refunded"]
actions = [
  { type = "create_note", body = "Refund issued: {{ amount_formatted }}." },
]
"#;

pub struct Options {
    /// paybridge's budget (`[hubspot] requests_per_10s`); the sandbox allows HubSpot's 100.
    pub requests_per_10s: u32,
    /// HubSpot's answer time, drawn from this range (ms).
    pub latency_ms: (u64, u64),
    /// `[[rules]]` beside the built-in financial tagging.
    pub rules: &'static str,
}

pub struct Bench {
    pub sandbox: Sandbox,
    /// The first replica's store (on Postgres every replica's store is one database).
    pub store: Store,
    pub requests_per_10s: u32,
    /// One pipeline per replica, on its own store.
    replicas: Vec<(Store, Pipeline)>,
    cancel: CancellationToken,
    workers: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// What a run did, read from the sandbox and the store.
pub struct Figures {
    pub events: usize,
    pub calls: u64,
    pub by_route: Value,
    pub rate_limited: u64,
    pub max_in_any_10s: u64,
    pub statuses: BTreeMap<String, usize>,
    /// Payment → CRM of the events done: arrival to done.
    pub latencies: Vec<Duration>,
    pub contacts: usize,
    /// When the last event finished (unix ms).
    pub last_finished_ms: i64,
}

impl Bench {
    /// A sandbox, the properties the rules write (set up with a token of its own, so the
    /// measured budget is untouched), and the pipeline on a SQLite store of its own, its
    /// workers not started yet.
    pub async fn start(options: Options) -> anyhow::Result<Bench> {
        Self::start_replicas(options, None, 1).await
    }

    /// As [`start`](Self::start), with `replicas` replicas' services (each its own store,
    /// HubSpot client and pipeline, built as `serve` builds them) on the store at
    /// `store_url` (a SQLite file of its own when None). On Postgres their HubSpot clients
    /// take their calls from the one budget the replicas share.
    pub async fn start_replicas(
        options: Options,
        store_url: Option<&str>,
        replicas: usize,
    ) -> anyhow::Result<Bench> {
        let per_10s = options.requests_per_10s;
        let sandbox = Sandbox::spawn(SandboxConfig {
            requests_per_10s: (per_10s + per_10s / 9).max(100),
            faults: Faults {
                latency_ms: options.latency_ms.0,
                latency_max_ms: options.latency_ms.1,
                ..Faults::default()
            },
            ..SandboxConfig::default()
        })
        .await?;
        let dir = tempfile::tempdir()?;
        let url = store_url.map_or_else(
            || format!("sqlite://{}", dir.path().join("bench.db").display()),
            str::to_owned,
        );
        let config = format!(
            "[store]\nurl = \"{url}\"\n[stripe]\nwebhook_secrets = [\"whsec_bench_flow_0123456789\"]\n[hubspot]\napi_base = \"{}\"\ntoken = \"{TOKEN}\"\nrequests_per_10s = {per_10s}\n{}",
            sandbox.url(),
            options.rules
        );
        let loaded = paybridge::app::load::load_from_str(
            Some(&config),
            None,
            &std::collections::HashMap::new(),
        )
        .map_err(|e| anyhow::anyhow!("the benchmark's config: {e}"))?;
        let settings = loaded.settings;
        sandbox::setup_properties(
            &sandbox,
            loaded
                .rules
                .properties_needed(&settings.contacts.id_property),
        )
        .await?;
        let clock = Clock::system();
        let mut built = Vec::new();
        for _ in 0..replicas.max(1) {
            let store = Store::open(&settings.store.url, clock.clone()).await?;
            let services =
                Services::build(&settings, Arc::clone(&loaded.rules), store, clock.clone())?;
            built.push((services.store, services.pipeline));
        }
        Ok(Bench {
            sandbox,
            store: built[0].0.clone(),
            requests_per_10s: per_10s,
            replicas: built,
            cancel: CancellationToken::new(),
            workers: Vec::new(),
            _dir: dir,
        })
    }

    /// Starts every replica's workers (`worker.concurrency` jobs in flight each).
    pub fn start_workers(&mut self) {
        for (_, pipeline) in &self.replicas {
            let pool = Pool::new(pipeline.clone());
            self.workers
                .push(tokio::spawn(pool.run(self.cancel.clone())));
        }
    }

    /// Stores one event as intake does (event and job in one commit).
    pub async fn intake(&self, event: &Value) -> anyhow::Result<()> {
        intake(&self.store, event).await
    }

    /// Waits until no job is left to run (done, dead or waiting for a person).
    pub async fn wait_until_idle(&self) -> anyhow::Result<()> {
        while self.store.queue_depth().await? > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Stops the workers and reads the figures.
    pub async fn finish(self) -> anyhow::Result<Figures> {
        self.cancel.cancel();
        for workers in self.workers {
            workers.await?;
        }
        let stats = self.sandbox.stats();
        let token = &stats["tokens"][TOKEN];
        let events = all_events(&self.store).await?;
        let mut statuses = BTreeMap::new();
        for e in &events {
            *statuses.entry(e.status.as_str().to_owned()).or_default() += 1;
        }
        let mut latencies: Vec<Duration> = events
            .iter()
            .filter(|e| e.status == EventStatus::Done)
            .filter_map(|e| e.finished_at.map(|f| (f - e.received_at).max(0)))
            .map(|ms| Duration::from_millis(ms as u64))
            .collect();
        latencies.sort();
        let contacts = self.sandbox.state()["contacts"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        let figures = Figures {
            events: events.len(),
            calls: token["calls"].as_u64().unwrap_or(0),
            by_route: token["calls_by_route"].clone(),
            rate_limited: stats["total_429"].as_u64().unwrap_or(0),
            max_in_any_10s: token["max_in_any_10s"].as_u64().unwrap_or(0),
            statuses,
            latencies,
            contacts,
            last_finished_ms: events
                .iter()
                .filter_map(|e| e.finished_at)
                .max()
                .unwrap_or(0),
        };
        for (store, _) in &self.replicas {
            store.close().await;
        }
        Ok(figures)
    }
}

impl Figures {
    /// Prints calls per event, latency and statuses; an error unless every event is done.
    pub fn print_and_check(&self) -> anyhow::Result<()> {
        println!(
            "HubSpot calls: {} ({:.4} per event); by route: {}",
            self.calls,
            self.calls as f64 / self.events.max(1) as f64,
            self.by_route
        );
        println!(
            "429s served: {}; highest calls in any 10 s: {}",
            self.rate_limited, self.max_in_any_10s
        );
        println!(
            "payment -> CRM: p50 {} ms, p99 {} ms, max {} ms ({} events done)",
            percentile(&self.latencies, 50.0).as_millis(),
            percentile(&self.latencies, 99.0).as_millis(),
            self.latencies
                .last()
                .copied()
                .unwrap_or_default()
                .as_millis(),
            self.latencies.len()
        );
        println!(
            "final statuses: {}; contacts in HubSpot: {}",
            self.statuses
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.contacts
        );
        let done = self.statuses.get("done").copied().unwrap_or(0);
        anyhow::ensure!(
            done == self.events,
            "{} of {} events are not done",
            self.events - done,
            self.events
        );
        Ok(())
    }
}

/// Every stored event (up to 10,000).
async fn all_events(store: &Store) -> anyhow::Result<Vec<EventSummary>> {
    Ok(store
        .list_events(&EventFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await?)
}

/// Stores one event as intake does.
pub async fn intake(store: &Store, e: &Value) -> anyhow::Result<()> {
    let id = e["id"].as_str().unwrap_or_default();
    let customer = e["data"]["object"]["customer"]
        .as_str()
        .or_else(|| e["data"]["object"]["id"].as_str())
        .unwrap_or_default();
    store
        .intake(NewEvent {
            id: EventId::parse(id)?,
            kind: e["type"].as_str().unwrap_or_default().to_owned(),
            created: e["created"].as_i64().unwrap_or_default(),
            livemode: false,
            api_version: None,
            customer: Some(CustomerId::parse(customer)?),
            source: EventSource::Webhook,
            status: EventStatus::Pending,
            payload: serde_json::to_vec(e)?,
            payload_kind: Default::default(),
            guest_email: None,
        })
        .await?;
    Ok(())
}

/// The fixtures the events are made from.
pub fn template(kind: &str) -> anyhow::Result<Value> {
    let text = match kind {
        "customer.subscription.updated" => {
            include_str!("../../fixtures/stripe/customer.subscription.updated.json")
        }
        "invoice.paid" => include_str!("../../fixtures/stripe/invoice.paid.json"),
        "invoice.payment_failed" => {
            include_str!("../../fixtures/stripe/invoice.payment_failed.json")
        }
        "charge.refunded" => include_str!("../../fixtures/stripe/charge.refunded.json"),
        other => anyhow::bail!("no fixture for {other}"),
    };
    Ok(serde_json::from_str(text)?)
}

/// The fixture of `kind` re-keyed: its id, `created`, customer (and the invoice's email),
/// and object ids of its own.
pub fn event(
    kind: &str,
    id: &str,
    customer: &str,
    email: Option<&str>,
    created: i64,
) -> anyhow::Result<Value> {
    let mut e = template(kind)?;
    e["id"] = id.into();
    e["created"] = created.into();
    let object = &mut e["data"]["object"];
    object["customer"] = customer.into();
    if object["object"] == "invoice" {
        object["id"] = format!("in_{id}").into();
        if let Some(email) = email {
            object["customer_email"] = email.into();
        }
    }
    if object["object"] == "charge" {
        object["id"] = format!("ch_{id}").into();
        if let (Some(email), true) = (email, object["billing_details"].is_object()) {
            object["billing_details"]["email"] = email.into();
        }
    }
    Ok(e)
}

/// Event `i` of the ticket/note mix for customer `customer` (of `customers`): one in
/// five a failed payment (a ticket), one in eight a refund (a note), the rest payments.
pub fn mixed_event(
    prefix: &str,
    i: usize,
    customers: usize,
    created: i64,
) -> anyhow::Result<Value> {
    let c = i % customers;
    let kind = if i % 5 == 4 {
        "invoice.payment_failed"
    } else if i % 8 == 7 {
        "charge.refunded"
    } else {
        "invoice.paid"
    };
    let email = format!("{prefix}{c}@example.com");
    event(
        kind,
        &format!("evt_{prefix}_{i}"),
        &format!("cus_{prefix}{c}"),
        Some(&email),
        created,
    )
}

/// Feeds `events` at `per_s` a second, on schedule (not drifting with slow intakes);
/// `make(i)` builds event `i`. Returns when the last one is stored.
pub async fn feed(
    store: &Store,
    events: usize,
    per_s: f64,
    make: impl Fn(usize) -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    for i in 0..events {
        let at = started + Duration::from_secs_f64(i as f64 / per_s);
        tokio::time::sleep_until(at).await;
        intake(store, &make(i)?).await?;
    }
    Ok(())
}

/// The trickle and steady benchmarks: feeds the ticket/note mix at `per_s` with HubSpot answering in 100–200 ms, and prints the figures.
pub async fn mixed_run(
    events: usize,
    customers: usize,
    per_s: f64,
    prefix: &str,
) -> anyhow::Result<()> {
    let mut bench = Bench::start(Options {
        requests_per_10s: 90,
        latency_ms: (100, 200),
        rules: TICKET_AND_NOTE_RULES,
    })
    .await?;
    bench.start_workers();
    let started = Instant::now();
    let base = 1_790_000_000i64;
    feed(&bench.store, events, per_s, |i| {
        mixed_event(prefix, i, customers, base + i as i64)
    })
    .await?;
    bench.wait_until_idle().await?;
    println!(
        "{events} events for {customers} customers at {per_s}/s, HubSpot answering in 100-200 ms: all handled {:.1} s after the first arrived",
        secs(started)
    );
    bench.finish().await?.print_and_check()
}

/// The drain benchmarks' burst, stored before the workers start: per customer a
/// subscription update (no email), then an invoice payment (with the email).
pub async fn store_burst(store: &Store, events: usize, customers: usize) -> anyhow::Result<()> {
    let base = 1_790_000_000i64;
    let mut submits = Vec::with_capacity(4_096);
    for i in 0..events {
        let c = i % customers;
        let second = i >= customers;
        let kind = if second {
            "invoice.paid"
        } else {
            "customer.subscription.updated"
        };
        let email = format!("drain{c}@example.com");
        let e = event(
            kind,
            &format!("evt_drain_{i}"),
            &format!("cus_drain{c}"),
            second.then_some(email.as_str()),
            base + i as i64,
        )?;
        if submits.len() >= 4_096 {
            for s in submits.drain(..) {
                s.await??;
            }
        }
        let store = store.clone();
        submits.push(tokio::spawn(async move { intake(&store, &e).await }));
    }
    for s in submits {
        s.await??;
    }
    Ok(())
}

/// Starts the workers on the stored burst, waits until it is drained, and prints the
/// drain time against the time the budget allows for the calls it took, then the figures.
pub async fn drain(mut bench: Bench, events: usize, customers: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    bench.start_workers();
    bench.wait_until_idle().await?;
    let elapsed = started.elapsed();
    let per_10s = bench.requests_per_10s;
    let figures = bench.finish().await?;

    println!(
        "drained {events} events for {customers} new customers in {:.1} s",
        elapsed.as_secs_f64()
    );
    let calls = figures.calls;
    let rate = f64::from(per_10s) / 10.0;
    // The first window's budget is available at once; every call beyond it needs 1/rate s.
    let allowed = (calls as f64 - f64::from(per_10s)).max(0.0) / rate;
    let steady = calls as f64 / rate;
    println!(
        "time the limit ({per_10s} per 10 s) allows for {calls} calls: {:.1} s at its sustained rate, drain took {:.2}x that ({:.1} s if the first window were spent at once: {:.2}x)",
        steady,
        elapsed.as_secs_f64() / steady.max(0.001),
        allowed,
        elapsed.as_secs_f64() / allowed.max(0.001)
    );
    figures.print_and_check()
}

/// Seconds since `since`, for progress lines.
pub fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}
