//! Backfill: bring the customers Stripe already has (and their current subscription) into
//! HubSpot through the same pipeline as live events — intake, lanes, workers, the shared
//! rate limiter and batchers — so nothing about it is special once queued.
//!
//! First one pass over every subscription (`GET /v1/subscriptions?status=all&limit=100`:
//! "Passing in a value of `all` will return subscriptions of all statuses", stripe-node
//! `SubscriptionListParams`), keeping each customer's current one in the store; then one
//! pass over the customers. That is two list passes in all, instead of one subscriptions
//! call per customer. Every request goes through the client's Stripe-side limiter
//! (`[stripe] requests_per_s`, default 20; Stripe allows 25 per endpoint and 100 in all,
//! shared with the merchant's own application: docs.stripe.com/rate-limits), and every page
//! is retried through 429s and 5xx with a doubling wait: they slow the run, never end it.
//!
//! For each customer (Stripe's list order: newest first) it stores two synthetic events,
//! shaped like Stripe's own:
//! - `customer.updated` with the customer object (`evt_backfill_{run}_{cus}`): the contact
//!   is found (by Stripe Customer ID, then email) or created, and the customer's email,
//!   name and metadata are remembered for templates and conditions;
//! - `customer.subscription.updated` with the customer's current subscription
//!   (`evt_backfill_{run}_{sub}`; the first of active, trialing, past_due, unpaid, paused,
//!   incomplete, canceled, newest first among equals): status and tier.
//!
//! Their `created` is the time the objects were read (the state they show is that
//! recent), so a webhook older than the backfill never overwrites it, and one newer does.
//! Rules on those two types run for them too (`event.id` starts with `evt_backfill_`).
//!
//! Resumable: the run id, the last customer whose events are stored (the cursor, used as
//! `starting_after`), and the count so far are kept in `meta`, written after each page's
//! events are committed. An interruption between the two re-reads at most one page, whose
//! events the dedupe by id recognises. Customers created meanwhile come first in Stripe's
//! order, before the cursor: their webhooks bring them.
//!
//! Live traffic keeps its share: the next page is fetched only once fewer than a window of
//! this run's events wait in the queue, so a webhook never queues behind more than that.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::domain::{EventId, EventSource};
use crate::intake::{Intake, Received};
use crate::store::{RunProgress, Store, StoreError};
use crate::stripe::Envelope;
use crate::stripe::api::{MAX_PAGE, ReadError, StripeApi, StripeApiError};
use crate::worker::Pipeline;

/// Where a run is kept in `meta`: its id, the last customer whose events are stored, how
/// many customers it went through, and whether Stripe's list is exhausted.
pub const META_RUN: &str = "backfill_run";
pub const META_CURSOR: &str = "backfill_cursor";
pub const META_CUSTOMERS: &str = "backfill_customers";
pub const META_COMPLETE: &str = "backfill_complete";
/// The run whose pass over every subscription is complete.
pub const META_SUBSCRIPTIONS: &str = "backfill_subscriptions_read";

#[derive(Debug, Clone, Default)]
pub struct BackfillOptions {
    /// At most this many customers in this invocation.
    pub limit: Option<u64>,
    /// Continue the last run after its cursor instead of starting a new one.
    pub resume: bool,
}

/// Who runs the queued events, and how the backfill keeps pace with them.
pub enum Drive<'a> {
    /// Only store them (a worker somewhere takes them when it can).
    Enqueue,
    /// Run the workers here after every page until nothing is runnable (tests).
    Drain(&'a Pipeline),
    /// Workers run elsewhere (a server, or a pool the command started): fetch the next page
    /// once fewer than `window` of this run's events are waiting; at the end, wait for all.
    Wait { window: u64 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillProgress {
    pub run: String,
    pub resumed: bool,
    /// Customers this invocation will go through (counted before starting; capped by
    /// `--limit`); None until counted.
    pub total_customers: Option<u64>,
    /// Customers gone through by this invocation.
    pub customers: u64,
    /// Customers gone through by earlier invocations of the same run.
    pub customers_before: u64,
    pub subscriptions: u64,
    /// Subscriptions listed by the pass over every subscription (this invocation).
    pub subscriptions_listed: u64,
    pub pages: u64,
    /// Stripe API requests sent, 429s met, and retries made (429s, 5xx, network).
    pub stripe_requests: u64,
    pub stripe_throttled: u64,
    pub stripe_retried: u64,
    /// Events stored by this invocation.
    pub new: u64,
    /// Events already stored (re-read after an interruption).
    pub known: u64,
    /// Stripe's customer list is exhausted: the run is complete.
    pub complete: bool,
    /// This run's events in the store, by state.
    pub queue: RunProgress,
}

impl BackfillProgress {
    /// The id prefix of this run's events.
    pub fn prefix(&self) -> String {
        run_prefix(&self.run)
    }
}

pub fn run_prefix(run: &str) -> String {
    format!("evt_backfill_{run}_")
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Stripe(#[from] StripeApiError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("Stripe's answer to {0} is not a list")]
    NotAList(String),
    #[error("interrupted")]
    Cancelled,
    /// `--resume` with nothing to resume.
    #[error("{0}")]
    NothingToResume(String),
}

impl From<ReadError> for BackfillError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Api(e) => Self::Stripe(e),
            ReadError::NotAList(path) => Self::NotAList(path),
            ReadError::Cancelled => Self::Cancelled,
        }
    }
}

pub struct Backfiller {
    api: StripeApi,
    intake: Intake,
}

impl Backfiller {
    pub fn new(api: StripeApi, intake: Intake) -> Self {
        Self { api, intake }
    }

    fn store(&self) -> &Store {
        self.intake.store()
    }

    pub async fn run(
        &self,
        options: &BackfillOptions,
        drive: Drive<'_>,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&BackfillProgress) + Send),
    ) -> Result<BackfillProgress, BackfillError> {
        let mut state = self.start(options).await?;
        let cursor = self.store().meta_get(META_CURSOR).await?;
        let prefix = state.prefix();
        state.queue = self.store().run_progress(&prefix).await?;
        progress(&state);
        self.read_subscriptions(&mut state, cancel, progress)
            .await?;
        state.total_customers = Some(self.count(cursor.clone(), options.limit, cancel).await?);
        self.api_counts(&mut state);
        progress(&state);
        let mut pages = self
            .api
            .pages("/v1/customers", Vec::new())
            .patient()
            .starting_after(cursor);
        loop {
            let left = options.limit.map(|l| l.saturating_sub(state.customers));
            if left == Some(0) {
                break;
            }
            pages.set_limit(left.unwrap_or(MAX_PAGE));
            let customers = pages.next(cancel).await?.unwrap_or_default();
            let Some(last) = customers
                .last()
                .and_then(|c| c.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                state.complete = true;
                break;
            };
            let has_more = pages.has_more();
            state.pages += 1;
            let run = state.run.clone();
            self.page(&run, &customers, &mut state).await?;
            state.customers += customers.len() as u64;
            self.api_counts(&mut state);
            let done_in_run = state.customers_before + state.customers;
            self.store()
                .meta_set(&[
                    (META_CURSOR, Some(last)),
                    (META_CUSTOMERS, Some(done_in_run.to_string())),
                    (META_COMPLETE, (!has_more).then(|| "1".to_owned())),
                ])
                .await?;
            state.complete = !has_more;
            self.keep_pace(&drive, &prefix, &mut state, cancel, progress)
                .await?;
            if !has_more {
                break;
            }
        }
        if state.complete {
            self.store()
                .meta_set(&[(META_COMPLETE, Some("1".to_owned()))])
                .await?;
        }
        // The end: everything this run stored is finished (or, when only enqueueing, queued).
        if let Drive::Wait { .. } = drive {
            self.keep_pace(
                &Drive::Wait { window: 1 },
                &prefix,
                &mut state,
                cancel,
                progress,
            )
            .await?;
        }
        state.queue = self.store().run_progress(&prefix).await?;
        progress(&state);
        Ok(state)
    }

    fn api_counts(&self, state: &mut BackfillProgress) {
        (
            state.stripe_requests,
            state.stripe_throttled,
            state.stripe_retried,
        ) = self.api.counts();
    }

    /// The pass over every subscription: each customer's current one kept in the store for
    /// this run (skipped when resuming a run whose pass was complete).
    async fn read_subscriptions(
        &self,
        state: &mut BackfillProgress,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&BackfillProgress) + Send),
    ) -> Result<(), BackfillError> {
        let store = self.store();
        if store.meta_get(META_SUBSCRIPTIONS).await?.as_deref() == Some(state.run.as_str()) {
            return Ok(());
        }
        store.backfill_forget_other_runs(&state.run).await?;
        let query = vec![("status".to_owned(), "all".to_owned())];
        let mut pages = self.api.pages("/v1/subscriptions", query).patient();
        while let Some(page) = pages.next(cancel).await? {
            state.subscriptions_listed += page.len() as u64;
            let kept: Vec<(String, i64, i64, String)> = page
                .iter()
                .filter_map(|sub| {
                    let customer = crate::stripe::event::customer_of(sub)?;
                    let status = sub.get("status").and_then(Value::as_str).unwrap_or("");
                    let created = sub.get("created").and_then(Value::as_i64).unwrap_or(0);
                    let json = serde_json::to_string(sub).ok()?;
                    Some((customer.to_string(), i64::from(rank(status)), created, json))
                })
                .collect();
            store.backfill_keep_subscriptions(&state.run, kept).await?;
            self.api_counts(state);
            progress(state);
        }
        store
            .meta_set(&[(META_SUBSCRIPTIONS, Some(state.run.clone()))])
            .await?;
        Ok(())
    }

    /// A new run, or the last one to resume.
    async fn start(&self, options: &BackfillOptions) -> Result<BackfillProgress, BackfillError> {
        let run = self.store().meta_get(META_RUN).await?;
        if options.resume {
            let Some(run) = run else {
                return Err(BackfillError::NothingToResume(
                    "there is no backfill to resume; run `paybridge backfill` to start one".into(),
                ));
            };
            if self.store().meta_get(META_COMPLETE).await?.is_some() {
                return Err(BackfillError::NothingToResume(format!(
                    "the last backfill (run {run}) went through every customer; nothing to resume (run `paybridge backfill` without --resume to start again)"
                )));
            }
            let before = self
                .store()
                .meta_get(META_CUSTOMERS)
                .await?
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            return Ok(BackfillProgress {
                run,
                resumed: true,
                customers_before: before,
                ..BackfillProgress::default()
            });
        }
        let run = crate::domain::random_hex(4);
        self.store()
            .meta_set(&[
                (META_RUN, Some(run.clone())),
                (META_CURSOR, None),
                (META_CUSTOMERS, Some("0".into())),
                (META_COMPLETE, None),
            ])
            .await?;
        Ok(BackfillProgress {
            run,
            ..BackfillProgress::default()
        })
    }

    /// How many customers follow `cursor` (at most `limit`): one cheap list pass, so that
    /// progress has a total and an ETA (Stripe lists have no count).
    async fn count(
        &self,
        cursor: Option<String>,
        limit: Option<u64>,
        cancel: &CancellationToken,
    ) -> Result<u64, BackfillError> {
        let mut pages = self
            .api
            .pages("/v1/customers", Vec::new())
            .patient()
            .starting_after(cursor);
        let mut n = 0;
        loop {
            if let Some(l) = limit.filter(|l| n >= *l) {
                return Ok(l);
            }
            let Some(page) = pages.next(cancel).await? else {
                return Ok(limit.map_or(n, |l| l.min(n)));
            };
            n += page.len() as u64;
        }
    }

    /// One page of customers: the customer events stored, then the events of their
    /// current subscriptions (kept by the pass over every subscription), so each lane runs
    /// the customer's first.
    async fn page(
        &self,
        run: &str,
        customers: &[Value],
        state: &mut BackfillProgress,
    ) -> Result<(), BackfillError> {
        let now = self.store().clock().now_secs();
        let (ids, live): (Vec<String>, Vec<&Value>) =
            crate::stripe::event::live_customers(customers)
                .into_iter()
                .unzip();
        let mut current = self.store().backfill_subscriptions_of(run, &ids).await?;
        let customer_events: Vec<(Envelope, Vec<u8>)> = live
            .iter()
            .filter_map(|c| synthetic(run, "customer.updated", now, c))
            .collect();
        // In page order, so the lanes' tie-break (insertion) is deterministic enough; the
        // subscription events follow in a second commit.
        current.sort_by_key(|(id, _)| ids.iter().position(|i| i == id));
        let subscription_events: Vec<(Envelope, Vec<u8>)> = current
            .iter()
            .filter_map(|(_, json)| serde_json::from_str::<Value>(json).ok())
            .filter_map(|s| synthetic(run, "customer.subscription.updated", now, &s))
            .collect();
        state.subscriptions += subscription_events.len() as u64;
        for batch in [customer_events, subscription_events] {
            let mut failure = None;
            for result in self.intake.receive_all(batch, EventSource::Backfill).await {
                match result {
                    Ok(Received::Duplicate) => state.known += 1,
                    Ok(Received::Queued | Received::Ignored) => state.new += 1,
                    Err(e) => failure = Some(e),
                }
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Lets the workers catch up according to `drive`, reporting progress meanwhile.
    async fn keep_pace(
        &self,
        drive: &Drive<'_>,
        prefix: &str,
        state: &mut BackfillProgress,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&BackfillProgress) + Send),
    ) -> Result<(), BackfillError> {
        match drive {
            Drive::Enqueue => {}
            Drive::Drain(pipeline) => {
                if let Err(e) = crate::worker::drain(pipeline).await {
                    tracing::warn!(error = %format!("{e:#}"), "draining the backfill's events failed");
                }
            }
            Drive::Wait { window } => loop {
                state.queue = self.store().run_progress(prefix).await?;
                progress(state);
                if state.queue.waiting < *window {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = cancel.cancelled() => return Err(BackfillError::Cancelled),
                }
            },
        }
        state.queue = self.store().run_progress(prefix).await?;
        progress(state);
        Ok(())
    }
}

/// The rank of a subscription status when choosing the one the contact shows.
pub(crate) fn rank(status: &str) -> u8 {
    match status {
        "active" => 0,
        "trialing" => 1,
        "past_due" => 2,
        "unpaid" => 3,
        "paused" => 4,
        "incomplete" => 5,
        "canceled" => 6,
        "incomplete_expired" => 7,
        _ => 8,
    }
}

/// A Stripe-shaped event around `object`, read as intake reads any event (None if the
/// object has no usable id).
fn synthetic(run: &str, kind: &str, created: i64, object: &Value) -> Option<(Envelope, Vec<u8>)> {
    let object_id = object.get("id").and_then(Value::as_str)?;
    let id = EventId::parse(&format!("{}{object_id}", run_prefix(run))).ok()?;
    let livemode = object
        .get("livemode")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let event = json!({
        "id": id.as_str(),
        "object": "event",
        "api_version": Value::Null,
        "created": created,
        "livemode": livemode,
        "pending_webhooks": 0,
        "request": { "id": Value::Null, "idempotency_key": Value::Null },
        "type": kind,
        "data": { "object": object },
    });
    let payload = serde_json::to_vec(&event).ok()?;
    let envelope = Envelope::parse(&payload).ok()?;
    Some((envelope, payload))
}

/// Time left, from the pace so far: this invocation's events finished per second against
/// the events its customers are expected to bring (the average so far × the total).
pub fn eta(
    state: &BackfillProgress,
    finished_at_start: u64,
    elapsed: Duration,
) -> Option<Duration> {
    let total = state.total_customers?;
    if state.customers == 0 || elapsed.is_zero() {
        return None;
    }
    let stored = state.new + state.known;
    let expected = stored as f64 / state.customers as f64 * total as f64;
    let finished = state.queue.finished.saturating_sub(finished_at_start) as f64;
    if finished <= 0.0 {
        return None;
    }
    let rate = finished / elapsed.as_secs_f64();
    let left = (expected - finished).max(0.0);
    Some(Duration::from_secs_f64(left / rate))
}
