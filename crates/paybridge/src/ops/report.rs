//! `paybridge report`: the impact numbers, computed from the store's own records.
//! [`build`] reads the rows (`store::report`); everything else here is pure and turns them
//! into a [`Report`].
//!
//! What each number counts (the window is `[since, until]`; "in the window" means
//! `event.created` in it unless said otherwise):
//! - `events`: events in the window, by status and by source (webhook, replay, backfill).
//! - `payment_to_crm`: for events in the window that came from Stripe (webhook or replay,
//!   not backfill), finished `done` with at least one step done: `finished_at −
//!   event.created`, in ms; percentiles by nearest rank (the smallest value with at least
//!   p% of the values at or below it), so every figure is a measured value.
//! - `payments.failed`: distinct invoices with an `invoice.payment_failed` in the window
//!   (`failed_events` counts every failed attempt). `recovered`: those with an
//!   `invoice.paid` (or `invoice.payment_succeeded`) for the same invoice created at or
//!   after its first failure, whenever that arrived; `time_to_recover` from the first
//!   failure to that payment, in seconds. `recovery_rate` = recovered / failed.
//! - `churn`: subscriptions with a `customer.subscription.deleted` in the window.
//!   `involuntary`: Stripe gave `cancellation_details.reason = payment_failed`, or an
//!   invoice of that subscription failed (up to [`LOOKBACK_SECS`] before the window) and
//!   was not paid before the cancellation. The rest are `voluntary`.
//! - `actions`: steps done (HubSpot writes, Slack messages, provisioning calls, sequence
//!   starts…) whose `finished_at` is in the window, by action kind. `minutes_saved` = Σ
//!   count × `[report] minutes_per_action` of the kind (else its `default`).
//! - `hubspot.calls` / `hubspot.rate_limited`: HubSpot calls answered (any status) and the
//!   429s among them, as counted by the processes that ran the workers and flushed into the
//!   store per hour (the hour of `since` is counted whole).
//! - `retries`: attempts beyond the first of the jobs of the window's events.
//! - `dead_letters` / `needs_attention`: events in the window in that status now.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

pub use crate::domain::Latency;
use crate::domain::latency::percentile;
use crate::domain::{EventStatus, time};
use crate::store::EventRow;
use crate::store::{Store, StoreError};
use crate::stripe::normalise;

/// Payment payloads read per query.
const PAGE: u32 = 1_000;
/// Events are received after they are created; this much earlier is read to allow for
/// clocks that disagree.
const SKEW_MS: i64 = 3_600_000;

/// Reads the history of `[since_ms, now_ms]` and computes the report.
pub async fn build(
    store: &Store,
    since_ms: i64,
    now_ms: i64,
    minutes_per_action: &BTreeMap<String, f64>,
) -> Result<Report, StoreError> {
    let since_secs = since_ms.div_euclid(1000);
    let mut history = History {
        since_ms,
        until_ms: now_ms,
        events: store.report_events(since_secs, since_ms - SKEW_MS).await?,
        actions: store.report_actions(since_ms).await?,
        counters: store.counters_since(since_ms).await?,
        retries: store.report_retries(since_secs, since_ms - SKEW_MS).await?,
        ..History::default()
    };
    let mut after: Option<String> = None;
    loop {
        let page = store
            .report_payment_page(since_secs - LOOKBACK_SECS, after.as_deref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for p in &page {
            match &p.payload {
                Some(bytes) => history
                    .payments
                    .extend(payment_row(&p.kind, p.created, bytes)),
                None if p.created >= since_secs => history.purged_payloads += 1,
                None => {}
            }
        }
    }
    Ok(compute(&history, minutes_per_action))
}

/// How far before the window a failed invoice is looked for when deciding whether a
/// cancellation in the window was involuntary (Stripe's retry schedules are at most ~2 months).
pub const LOOKBACK_SECS: i64 = 60 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    Failed,
    Paid,
    Cancelled,
}

/// What a payment event says (read from its payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub kind: PaymentKind,
    pub created: i64,
    pub invoice: Option<String>,
    pub subscription: Option<String>,
    /// `cancellation_details.reason` of a cancelled subscription.
    pub reason: Option<String>,
}

/// A payment row from a stored event, or None for other types or unreadable payloads.
pub fn payment_row(kind: &str, created: i64, payload: &[u8]) -> Option<PaymentRow> {
    let kind = match kind {
        "invoice.payment_failed" => PaymentKind::Failed,
        "invoice.paid" | "invoice.payment_succeeded" => PaymentKind::Paid,
        "customer.subscription.deleted" => PaymentKind::Cancelled,
        _ => return None,
    };
    let fact = normalise(payload).ok()?;
    let subscription = fact.subscription.as_ref().map(|s| s.id.clone());
    Some(PaymentRow {
        kind,
        created,
        invoice: fact.invoice.as_ref().map(|i| i.id.clone()),
        reason: fact
            .subscription
            .as_ref()
            .and_then(|s| s.cancellation_reason.clone()),
        subscription,
    })
}

/// Everything the report is computed from.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub since_ms: i64,
    pub until_ms: i64,
    pub events: Vec<EventRow>,
    /// Payment events created from `since − LOOKBACK_SECS` on.
    pub payments: Vec<PaymentRow>,
    /// Payment events in the window whose payload was purged (not linkable).
    pub purged_payloads: u64,
    pub actions: BTreeMap<String, u64>,
    pub counters: BTreeMap<String, i64>,
    pub retries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub since: String,
    pub until: String,
    pub events: EventCounts,
    pub payment_to_crm: Latency,
    pub payments: Payments,
    pub churn: Churn,
    pub actions: Actions,
    pub minutes_saved: f64,
    pub hubspot: HubspotUsage,
    pub retries: u64,
    pub dead_letters: u64,
    pub needs_attention: u64,
    /// Payment events in the window whose raw payload was purged by retention
    /// (`store.payload_retention_days`): they count nowhere in `payments` and `churn`.
    pub unlinkable_payment_events: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventCounts {
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_source: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Payments {
    pub failed: u64,
    pub failed_events: u64,
    pub recovered: u64,
    /// recovered / failed (None without failures).
    pub recovery_rate: Option<f64>,
    pub time_to_recover: Durations,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Durations {
    pub count: u64,
    pub p50_secs: Option<i64>,
    pub p95_secs: Option<i64>,
    pub max_secs: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Churn {
    pub cancelled: u64,
    pub involuntary: u64,
    pub voluntary: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actions {
    pub total: u64,
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HubspotUsage {
    pub calls: u64,
    pub rate_limited: u64,
}

fn iso(ms: i64) -> String {
    time::rfc3339(ms).unwrap_or_else(|| ms.to_string())
}

pub fn compute(h: &History, minutes_per_action: &BTreeMap<String, f64>) -> Report {
    let since_secs = h.since_ms.div_euclid(1000);
    let window = EventsOfWindow::count(&h.events, since_secs);
    let invoices = Invoices::read(&h.payments, since_secs);
    let (actions, minutes_saved) = actions(&h.actions, minutes_per_action);
    let counter =
        |name: &str| u64::try_from(h.counters.get(name).copied().unwrap_or(0)).unwrap_or(0);
    Report {
        since: iso(h.since_ms),
        until: iso(h.until_ms),
        events: window.events,
        payment_to_crm: window.payment_to_crm,
        payments: invoices.payments(),
        churn: invoices.churn(&h.payments, since_secs),
        actions,
        minutes_saved,
        hubspot: HubspotUsage {
            calls: counter("hubspot_calls"),
            rate_limited: counter("hubspot_429"),
        },
        retries: h.retries,
        dead_letters: window.dead,
        needs_attention: window.attention,
        unlinkable_payment_events: h.purged_payloads,
    }
}

/// The events created in the window: counts, payment → CRM time, failures.
struct EventsOfWindow {
    events: EventCounts,
    payment_to_crm: Latency,
    dead: u64,
    attention: u64,
}

impl EventsOfWindow {
    fn count(rows: &[EventRow], since_secs: i64) -> Self {
        let mut events = EventCounts::default();
        let mut latencies = Vec::new();
        let (mut dead, mut attention) = (0, 0);
        for e in rows.iter().filter(|e| e.created >= since_secs) {
            events.total += 1;
            *events
                .by_status
                .entry(e.status.as_str().to_owned())
                .or_default() += 1;
            *events.by_source.entry(e.source.clone()).or_default() += 1;
            match e.status {
                EventStatus::Dead => dead += 1,
                EventStatus::NeedsAttention => attention += 1,
                // Backfills and reconcile repairs follow no payment: no time to the CRM.
                EventStatus::Done
                    if e.acted && !matches!(e.source.as_str(), "backfill" | "reconcile") =>
                {
                    if let Some(finished) = e.finished_at {
                        latencies.push((finished - e.created * 1000).max(0));
                    }
                }
                _ => {}
            }
        }
        Self {
            events,
            payment_to_crm: Latency::of(latencies),
            dead,
            attention,
        }
    }
}

/// Invoices: the first failure of each in the window, and every payment time.
struct Invoices<'a> {
    first_failure: BTreeMap<&'a str, i64>,
    failed_events: u64,
    paid_at: HashMap<&'a str, Vec<i64>>,
    /// Every failure of a subscription's invoices (lookback included), for churn.
    sub_failures: HashMap<&'a str, Vec<(&'a str, i64)>>,
}

impl<'a> Invoices<'a> {
    fn read(payments: &'a [PaymentRow], since_secs: i64) -> Self {
        let mut invoices = Self {
            first_failure: BTreeMap::new(),
            failed_events: 0,
            paid_at: HashMap::new(),
            sub_failures: HashMap::new(),
        };
        for p in payments {
            match (p.kind, p.invoice.as_deref()) {
                (PaymentKind::Failed, Some(invoice)) => {
                    if let Some(sub) = p.subscription.as_deref() {
                        invoices
                            .sub_failures
                            .entry(sub)
                            .or_default()
                            .push((invoice, p.created));
                    }
                    if p.created >= since_secs {
                        invoices.failed_events += 1;
                        let first = invoices.first_failure.entry(invoice).or_insert(p.created);
                        *first = (*first).min(p.created);
                    }
                }
                (PaymentKind::Paid, Some(invoice)) => {
                    invoices.paid_at.entry(invoice).or_default().push(p.created)
                }
                _ => {}
            }
        }
        invoices
    }

    /// The first payment of `invoice` in `[from, to]`.
    fn paid_between(&self, invoice: &str, from: i64, to: i64) -> Option<i64> {
        self.paid_at
            .get(invoice)
            .into_iter()
            .flatten()
            .filter(|t| **t >= from && **t <= to)
            .min()
            .copied()
    }

    fn payments(&self) -> Payments {
        let mut recover_times = Vec::new();
        for (invoice, failed) in &self.first_failure {
            if let Some(paid) = self.paid_between(invoice, *failed, i64::MAX) {
                recover_times.push(paid - failed);
            }
        }
        recover_times.sort_unstable();
        let failed = self.first_failure.len() as u64;
        let recovered = recover_times.len() as u64;
        Payments {
            failed,
            failed_events: self.failed_events,
            recovered,
            recovery_rate: (failed > 0).then(|| recovered as f64 / failed as f64),
            time_to_recover: Durations {
                count: recovered,
                p50_secs: percentile(&recover_times, 50),
                p95_secs: percentile(&recover_times, 95),
                max_secs: recover_times.last().copied(),
            },
        }
    }

    /// Cancellations in the window, one per subscription (its earliest).
    fn churn(&self, payments: &[PaymentRow], since_secs: i64) -> Churn {
        let mut cancelled: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
        for p in payments {
            if p.kind != PaymentKind::Cancelled || p.created < since_secs {
                continue;
            }
            let Some(sub) = p.subscription.as_deref() else {
                continue;
            };
            let by_stripe = p.reason.as_deref() == Some("payment_failed");
            let entry = cancelled.entry(sub).or_insert((p.created, by_stripe));
            if p.created < entry.0 {
                *entry = (p.created, by_stripe);
            }
        }
        let mut churn = Churn::default();
        for (sub, (at, by_stripe)) in &cancelled {
            churn.cancelled += 1;
            let unpaid_failure =
                self.sub_failures
                    .get(sub)
                    .into_iter()
                    .flatten()
                    .any(|(invoice, failed)| {
                        *failed <= *at && self.paid_between(invoice, *failed, *at).is_none()
                    });
            if *by_stripe || unpaid_failure {
                churn.involuntary += 1;
            } else {
                churn.voluntary += 1;
            }
        }
        churn
    }
}

/// Actions by kind, and the minutes they saved.
fn actions(
    done: &BTreeMap<String, u64>,
    minutes_per_action: &BTreeMap<String, f64>,
) -> (Actions, f64) {
    let by_kind: BTreeMap<String, u64> = done
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    let default_minutes = minutes_per_action.get("default").copied().unwrap_or(0.0);
    let minutes_saved = by_kind
        .iter()
        .map(|(kind, n)| {
            *n as f64
                * minutes_per_action
                    .get(kind)
                    .copied()
                    .unwrap_or(default_minutes)
        })
        .sum();
    let actions = Actions {
        total: by_kind.values().sum(),
        by_kind,
    };
    (actions, minutes_saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        kind: &str,
        source: &str,
        status: EventStatus,
        created: i64,
        finished: Option<i64>,
    ) -> EventRow {
        EventRow {
            kind: kind.into(),
            source: source.into(),
            status,
            created,
            finished_at: finished,
            acted: true,
        }
    }

    fn pay(
        kind: PaymentKind,
        created: i64,
        invoice: Option<&str>,
        sub: Option<&str>,
    ) -> PaymentRow {
        PaymentRow {
            kind,
            created,
            invoice: invoice.map(str::to_owned),
            subscription: sub.map(str::to_owned),
            reason: None,
        }
    }

    #[test]
    fn latency_counts_only_stripe_events_that_acted_in_the_window() {
        let since = 1_000_000;
        let mut quiet = event(
            "customer.created",
            "webhook",
            EventStatus::Done,
            since + 1,
            Some((since + 1) * 1000 + 5),
        );
        quiet.acted = false;
        let h = History {
            since_ms: since * 1000,
            until_ms: (since + 100) * 1000,
            events: vec![
                event(
                    "invoice.paid",
                    "webhook",
                    EventStatus::Done,
                    since,
                    Some(since * 1000 + 300),
                ),
                event(
                    "invoice.paid",
                    "replay",
                    EventStatus::Done,
                    since + 1,
                    Some((since + 1) * 1000 + 900),
                ),
                event(
                    "customer.updated",
                    "backfill",
                    EventStatus::Done,
                    since + 2,
                    Some((since + 2) * 1000 + 50_000),
                ),
                event(
                    "invoice.paid",
                    "webhook",
                    EventStatus::Done,
                    since - 1,
                    Some(since * 1000),
                ),
                event(
                    "invoice.paid",
                    "webhook",
                    EventStatus::Dead,
                    since + 3,
                    Some((since + 3) * 1000),
                ),
                quiet,
            ],
            ..History::default()
        };
        let r = compute(&h, &BTreeMap::new());
        assert_eq!(
            r.payment_to_crm,
            Latency {
                count: 2,
                p50_ms: Some(300),
                p95_ms: Some(900),
                p99_ms: Some(900),
                max_ms: Some(900)
            }
        );
        assert_eq!(r.events.total, 5);
        assert_eq!(r.dead_letters, 1);
        assert_eq!(r.events.by_source.get("backfill"), Some(&1));
    }

    #[test]
    fn recovery_counts_invoices_not_attempts_and_churn_needs_an_unpaid_failure() {
        let since = 10_000_000;
        let h = History {
            since_ms: since * 1000,
            until_ms: (since + 1_000_000) * 1000,
            payments: vec![
                // in_1 fails twice, paid a day after the first failure.
                pay(PaymentKind::Failed, since + 10, Some("in_1"), Some("sub_1")),
                pay(
                    PaymentKind::Failed,
                    since + 3_610,
                    Some("in_1"),
                    Some("sub_1"),
                ),
                pay(
                    PaymentKind::Paid,
                    since + 86_410,
                    Some("in_1"),
                    Some("sub_1"),
                ),
                // in_2 fails, never paid, its subscription is cancelled.
                pay(PaymentKind::Failed, since + 20, Some("in_2"), Some("sub_2")),
                pay(PaymentKind::Cancelled, since + 500_000, None, Some("sub_2")),
                // in_3 failed before the window, unpaid: its cancellation is involuntary.
                pay(
                    PaymentKind::Failed,
                    since - 86_400,
                    Some("in_3"),
                    Some("sub_3"),
                ),
                pay(PaymentKind::Cancelled, since + 30, None, Some("sub_3")),
                // sub_1 cancelled after its invoice was paid: voluntary.
                pay(PaymentKind::Cancelled, since + 400_000, None, Some("sub_1")),
                // an old payment of in_4 before its failure does not recover it.
                pay(PaymentKind::Paid, since + 5, Some("in_4"), None),
                pay(PaymentKind::Failed, since + 50, Some("in_4"), None),
            ],
            ..History::default()
        };
        let r = compute(&h, &BTreeMap::new());
        assert_eq!(r.payments.failed, 3, "in_1, in_2, in_4");
        assert_eq!(r.payments.failed_events, 4);
        assert_eq!(r.payments.recovered, 1);
        assert_eq!(r.payments.recovery_rate, Some(1.0 / 3.0));
        assert_eq!(r.payments.time_to_recover.p50_secs, Some(86_400));
        assert_eq!(
            r.churn,
            Churn {
                cancelled: 3,
                involuntary: 2,
                voluntary: 1
            }
        );
    }

    #[test]
    fn minutes_saved_uses_the_kind_then_the_default() {
        let h = History {
            actions: BTreeMap::from([
                ("update_contact".to_owned(), 10),
                ("create_ticket".to_owned(), 2),
            ]),
            ..History::default()
        };
        let minutes = BTreeMap::from([
            ("default".to_owned(), 3.0),
            ("create_ticket".to_owned(), 5.0),
        ]);
        let r = compute(&h, &minutes);
        assert_eq!(r.minutes_saved, 40.0);
        assert_eq!(r.actions.total, 12);
    }
}
