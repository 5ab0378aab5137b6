//! Replay: recover events Stripe has and the store has not, from Stripe's Events API
//! (`GET /v1/events`, newest first, 30 days back; research/stripe.md §3). Each page goes
//! through the front door (`crate::intake`) — the same dedupe by event id as webhooks —
//! oldest first within the page; the per-customer lanes order the work by `event.created`, and the stale guard
//! keeps an older event from overwriting newer data, as for webhooks Stripe delivers late.
//!
//! Shared by `paybridge replay`, `POST /api/replay` and `serve`'s schedule
//! (`[stripe] replay_every`).

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::domain::EventSource;
use crate::intake::{Intake, Received};
use crate::store::{Store, StoreError};
use crate::stripe::Envelope;
use crate::stripe::api::{ReadError, StripeApi, StripeApiError};

/// Stripe keeps events for 30 days.
pub const WINDOW_SECS: i64 = 30 * 86_400;
/// Stripe accepts at most 20 `types[]`, exact names only.
const MAX_TYPES: usize = 20;
/// A scheduled replay looks this far before the previous run's start (late listings).
pub const SCHEDULE_OVERLAP_SECS: i64 = 600;
const SCHEDULE_META_KEY: &str = "replay_schedule_last";
/// How often a replica looks whether the scheduled replay is due.
const SCHEDULE_LOOK_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// unix seconds; clamped to Stripe's 30-day window
    pub since: i64,
    /// Event types (or `*` patterns); empty = every type.
    pub types: Vec<String>,
    /// Only events Stripe could not deliver to at least one endpoint (`delivery_success=false`).
    pub undelivered: bool,
}

/// What a replay did. Every listed event is counted in exactly one of `new`, `ignored`,
/// `known` or `unreadable`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReplayCounts {
    /// The `created[gte]` used (unix seconds), after clamping to 30 days.
    pub since: i64,
    pub pages: u64,
    /// Events Stripe listed.
    pub fetched: u64,
    /// Stored now and queued for the workers.
    pub new: u64,
    /// Stored now as `ignored`: no rule handles the type.
    pub ignored: u64,
    /// Already in the store (a webhook or an earlier replay brought them).
    pub known: u64,
    /// Not a readable Stripe event (skipped; logged).
    pub unreadable: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Stripe(#[from] StripeApiError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("Stripe's answer to {0} is not an event list")]
    NotAList(String),
    #[error("interrupted")]
    Cancelled,
}

impl From<ReadError> for ReplayError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Api(e) => Self::Stripe(e),
            ReadError::NotAList(path) => Self::NotAList(path),
            ReadError::Cancelled => Self::Cancelled,
        }
    }
}

/// Everything a replay needs; cheap to clone.
#[derive(Clone)]
pub struct Replayer {
    api: StripeApi,
    intake: Intake,
}

impl Replayer {
    pub fn new(api: StripeApi, intake: Intake) -> Self {
        Self { api, intake }
    }

    pub fn store(&self) -> &Store {
        self.intake.store()
    }

    /// Lists what Stripe has since `request.since` and stores what is new. `progress` is
    /// called after every page.
    pub async fn run(
        &self,
        request: &ReplayRequest,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&ReplayCounts) + Send),
    ) -> Result<ReplayCounts, ReplayError> {
        let now = self.store().clock().now_secs();
        let mut counts = ReplayCounts {
            since: request.since.max(now - WINDOW_SECS),
            ..ReplayCounts::default()
        };
        // Patterns become exact names here: `types[]` takes no wildcard. More than 20
        // names: several listings (an event is counted once). Patterns that match no
        // known type list nothing (never everything).
        let names = crate::rules::stripe_types::expand(&request.types);
        let groups: Vec<Vec<String>> = if request.types.is_empty() {
            vec![Vec::new()]
        } else {
            names.chunks(MAX_TYPES).map(<[String]>::to_vec).collect()
        };
        let mut seen: HashSet<String> = HashSet::new();
        for types in groups {
            let mut query = vec![("created[gte]".to_owned(), counts.since.to_string())];
            query.extend(types.iter().map(|t| ("types[]".to_owned(), t.clone())));
            if request.undelivered {
                query.push(("delivery_success".to_owned(), "false".to_owned()));
            }
            let mut pages = self.api.pages("/v1/events", query);
            while let Some(page) = pages.next(cancel).await? {
                counts.pages += 1;
                let fresh: Vec<&Value> = page
                    .iter()
                    .rev()
                    .filter(|e| {
                        e.get("id")
                            .and_then(Value::as_str)
                            .is_none_or(|id| seen.insert(id.to_owned()))
                    })
                    .collect();
                self.store_page(&fresh, &mut counts).await?;
                progress(&counts);
            }
        }
        Ok(counts)
    }

    /// Stores a page's events together (one group commit), counting each outcome.
    async fn store_page(
        &self,
        events: &[&Value],
        counts: &mut ReplayCounts,
    ) -> Result<(), ReplayError> {
        let mut readable = Vec::with_capacity(events.len());
        for event in events {
            counts.fetched += 1;
            // Re-serialised: there is no signature to keep (it came from Stripe's API with
            // our key); the stored bytes are what the worker normalises.
            let Ok(payload) = serde_json::to_vec(event) else {
                counts.unreadable += 1;
                continue;
            };
            match Envelope::parse(&payload) {
                Ok(envelope) => readable.push((envelope, payload)),
                Err(e) => {
                    tracing::warn!(error = %e, "a listed event is not readable; skipped");
                    counts.unreadable += 1;
                }
            }
        }
        let mut failure = None;
        for result in self.intake.receive_all(readable, EventSource::Replay).await {
            let label = match result {
                Ok(Received::Duplicate) => {
                    counts.known += 1;
                    "known"
                }
                Ok(Received::Ignored) => {
                    counts.ignored += 1;
                    "ignored"
                }
                Ok(Received::Queued) => {
                    counts.new += 1;
                    "new"
                }
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            metrics::counter!("paybridge_replay_events_total", "outcome" => label).increment(1);
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// `serve`'s schedule (`[stripe] replay_every`): [`Replayer::scheduled_run`] now and
    /// then every `every`, until cancelled. With several replicas, one runs it at a time
    /// (the `replay` lease) and only when it is due (the last run, recorded in the store,
    /// is `every` old), so the replicas do not replay the same window one after another.
    pub async fn schedule(self, every: Duration, cancel: CancellationToken) {
        let holder = crate::ops::singleton::holder_name();
        loop {
            let turn = self.scheduled_turn(every, &cancel);
            let result = crate::ops::singleton::exclusively(self.store(), "replay", &holder, turn)
                .await
                .map_err(ReplayError::from)
                .and_then(|r| r.transpose())
                .map(Option::flatten);
            match result {
                Ok(None) => {}
                Ok(Some(counts)) => {
                    metrics::counter!("paybridge_replay_runs_total", "trigger" => "schedule", "result" => "ok").increment(1);
                    if counts.new + counts.ignored > 0 {
                        tracing::warn!(
                            new = counts.new,
                            ignored = counts.ignored,
                            known = counts.known,
                            "scheduled replay found events no webhook brought"
                        );
                    } else {
                        tracing::info!(known = counts.known, "scheduled replay: nothing missed");
                    }
                }
                Err(ReplayError::Cancelled) => return,
                Err(e) => {
                    metrics::counter!("paybridge_replay_runs_total", "trigger" => "schedule", "result" => "error").increment(1);
                    tracing::warn!(error = %e, "scheduled replay failed; the next run covers the same window");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every.min(SCHEDULE_LOOK_EVERY)) => {}
                _ = cancel.cancelled() => return,
            }
        }
    }

    /// A scheduled run if one is due (Some(its counts)), else None.
    async fn scheduled_turn(
        &self,
        every: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<ReplayCounts>, ReplayError> {
        let now = self.store().clock().now_secs();
        let every_secs = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
        let last = self
            .store()
            .meta_get(SCHEDULE_META_KEY)
            .await?
            .and_then(|last| last.parse::<i64>().ok());
        if last.is_some_and(|last| now - last < every_secs) {
            return Ok(None);
        }
        self.scheduled_run(every, cancel).await.map(Some)
    }

    /// One scheduled replay of every type: from the previous successful run's start minus
    /// [`SCHEDULE_OVERLAP_SECS`] (the first run ever looks back `every`); its own start is
    /// recorded once it succeeded, so a failed run's window is covered by the next.
    pub async fn scheduled_run(
        &self,
        every: Duration,
        cancel: &CancellationToken,
    ) -> Result<ReplayCounts, ReplayError> {
        let started = self.store().clock().now_secs();
        let since = match self.store().meta_get(SCHEDULE_META_KEY).await? {
            Some(last) => last.parse::<i64>().ok(),
            None => None,
        }
        .map(|last| last - SCHEDULE_OVERLAP_SECS)
        .unwrap_or(started - i64::try_from(every.as_secs()).unwrap_or(i64::MAX / 2));
        let request = ReplayRequest {
            since,
            types: Vec::new(),
            undelivered: false,
        };
        let counts = self.run(&request, cancel, &mut |_| {}).await?;
        self.store()
            .meta_set(&[(SCHEDULE_META_KEY, Some(started.to_string()))])
            .await?;
        Ok(counts)
    }
}

/// `--since`: a duration back from now (`90m`, `24h`, `3d`), an RFC 3339 time
/// (`2026-11-01T08:00:00Z`), a date (`2026-11-01`, midnight UTC) or unix seconds.
pub fn parse_since(text: &str, now_secs: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(d) = crate::basics::parse_duration(text) {
        return Ok(now_secs - i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp());
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map_err(|e| e.to_string());
    }
    Err(format!(
        "`{text}` is not a time: use a duration back from now (24h, 3d), an RFC 3339 time (2026-11-01T08:00:00Z), a date (2026-11-01) or unix seconds"
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_durations_times_dates_and_unix_seconds() {
        let now = 1_790_000_000;
        assert_eq!(parse_since("24h", now), Ok(now - 86_400));
        assert_eq!(parse_since("30d", now), Ok(now - 30 * 86_400));
        assert_eq!(parse_since("2026-11-01T08:00:00Z", now), Ok(1_793_520_000));
        assert_eq!(parse_since("2026-11-01", now), Ok(1_793_491_200));
        assert_eq!(parse_since("1793491200", now), Ok(1_793_491_200));
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("", now).is_err());
    }
}
