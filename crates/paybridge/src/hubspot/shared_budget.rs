//! One HubSpot budget for every replica (issue 16). HubSpot counts a private app's calls
//! per app, not per process: 100 (Free/Starter) or 190 (Professional/Enterprise) per
//! rolling 10 s (HubSpot's private apps overview, developers.hubspot.com/docs/apps/
//! legacy-apps/private-apps/overview, its limits table; the 429's policy is
//! `TEN_SECONDLY_ROLLING`), and CRM search 5 requests per second per account (HubSpot's
//! CRM search guide, developers.hubspot.com/docs/api/crm/search, "Limitations"; its
//! answers carry no rate headers). With several `serve` processes the SUM of
//! their calls must stay within `requests_per_10s` in every 10-second window and
//! `search_per_s` in every second, so the processes share one token bucket per limiter
//! bucket, a row of the UNLOGGED table `hubspot_budget` (migrations/postgres/0061).
//!
//! The process's own [`Limiter`](super::limiter::Limiter) stays in front (its windows,
//! pacing and background share); a call it admits then takes one token here: a short
//! transaction locks the row, refills it on the DATABASE's clock (replicas' clocks differ),
//! takes a token or learns how long to wait, and commits. A 429 on any replica writes
//! `paused_until_ms` on every row, which stops every replica.
//!
//! # Why no HubSpot window holds more than the budget
//!
//! A bucket of rate `r` whose tokens stay within `[0, b]`, each admission taking a whole
//! token, admits in any span of length `T` at most (tokens at its start) + `r·T` − (tokens
//! at its end) ≤ `b + r·T` calls, and since calls are whole, at most `⌊b + r·T⌋`. A call
//! reaches HubSpot between its admission and `D` later, so the calls HubSpot counts in one
//! window `W` were admitted within a span of `W + D`: at most `⌊b + r·(W + D)⌋`. We take
//! `r = max / (W + 2D)` and `b = max + 1 − r·(W + D) − ε`, so `b + r·(W + D) < max + 1`
//! and its floor is at most `max`. And `b ≥ 1` (a token can be taken at all): `r·(W + D)
//! < max`. (The agreed `b = max(1, ⌊max − r·(W + D)⌋)` holds by the same argument; the
//! fraction above it costs nothing in the bound and absorbs a taker's late wake-up, which
//! otherwise loses the refill while the bucket sits full: without it, drain slowed by the
//! round trip per call.)
//! - Standard: `W` = 10 s, `D` = 250 ms: `r = max / 10.5 s`, the budget drains at 95% of
//!   `max` per 10 s (drain time 1.05× the bound); at `max` = 90, `b` ≈ 3.1.
//! - Search: `W` = 1 s. The proportional `D` = 25 ms is not a real network's spread, and
//!   250 ms would cost a third of the search budget; we take `D` = 100 ms (`r = max / 1.2
//!   s`, 83% of `search_per_s`; search serves only reconcile's scans). The default
//!   `search_per_s` = 4 also sits below HubSpot's 5: even a 250 ms spread then gives
//!   `⌊1.32 + 3.33·1.25⌋` = 5 in HubSpot's second, its own limit.
//!
//! The row lock orders the takes of every replica; `refilled_ms` never moves back
//! (`greatest`), so a clock read before the lock was granted only refills less. A row found
//! missing (first use, or the unlogged table emptied by a crash) starts with no tokens,
//! which never grants more than the lost state would have.
//!
//! # When Postgres does not answer
//!
//! Failing open could exceed HubSpot's limit, so a call waits: each attempt is bounded by
//! [`DB_TIMEOUT`], then retried after a backoff from 250 ms to 2 s, logged at most every
//! 10 s. Within a process one caller per bucket talks to the database at a time (the others
//! queue in order behind it), so a hundred waiting calls cost one round trip per token.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::time::Instant;

use super::limiter::Bucket;
use crate::http::throttle::{LogLimiter, monotonic_ms};

/// The longest one round trip to the budget may take before it counts as failed.
pub const DB_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a take that found the bucket short keeps [`SharedBudget::is_tight`] true.
const TIGHT_FOR: Duration = Duration::from_secs(1);
const DAY_MS: i64 = 86_400_000;
/// How much the burst stays below the bound's edge (floating point).
const EPSILON: f64 = 0.01;

/// Milliseconds on the database's clock.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// A bucket's rate and burst (see the module's proof).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub rate_per_ms: f64,
    pub burst: f64,
}

impl Params {
    /// For `max` calls per `window`, counted at HubSpot up to `spread` after admission.
    pub fn new(max: usize, window: Duration, spread: Duration) -> Self {
        let max = max.max(1) as f64;
        let (w, d) = (window.as_secs_f64() * 1e3, spread.as_secs_f64() * 1e3);
        let rate_per_ms = max / (w + 2.0 * d);
        let burst = (max + 1.0 - rate_per_ms * (w + d) - EPSILON).max(1.0);
        Self { rate_per_ms, burst }
    }

    pub fn standard(requests_per_10s: usize) -> Self {
        Self::new(
            requests_per_10s,
            Duration::from_secs(10),
            Duration::from_millis(250),
        )
    }

    pub fn search(search_per_s: usize) -> Self {
        Self::new(
            search_per_s,
            Duration::from_secs(1),
            Duration::from_millis(100),
        )
    }
}

/// A bucket's row: its tokens as of `refilled_ms`, and any pause, on the database's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub tokens: f64,
    pub refilled_ms: i64,
    pub paused_until_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Take {
    /// A token was taken; `left` remain.
    Granted { left: f64 },
    /// Paused, or less than a token: ask again after this long.
    Wait(Duration),
}

/// The row refilled to `now_ms` and one token taken if there is one and no pause holds:
/// the row to write back and the outcome. Pure, so the bound can be checked alone.
pub fn take(row: Row, now_ms: i64, p: Params) -> (Row, Take) {
    let elapsed = now_ms.saturating_sub(row.refilled_ms).max(0) as f64;
    let tokens = (row.tokens + elapsed * p.rate_per_ms).min(p.burst);
    let refilled = Row {
        tokens,
        refilled_ms: row.refilled_ms.max(now_ms),
        paused_until_ms: row.paused_until_ms,
    };
    if row.paused_until_ms > now_ms {
        let ms = row.paused_until_ms.saturating_sub(now_ms);
        return (refilled, Take::Wait(Duration::from_millis(ms as u64)));
    }
    if tokens < 1.0 {
        let ms = ((1.0 - tokens) / p.rate_per_ms).ceil().max(1.0);
        return (refilled, Take::Wait(Duration::from_millis(ms as u64)));
    }
    let left = tokens - 1.0;
    (
        Row {
            tokens: left,
            ..refilled
        },
        Take::Granted { left },
    )
}

/// The budget every replica shares through Postgres.
pub struct SharedBudget {
    pool: PgPool,
    standard: Params,
    search: Params,
    /// One caller per bucket talks to the database at a time (a fair lock: in order).
    standard_turn: tokio::sync::Mutex<()>,
    search_turn: tokio::sync::Mutex<()>,
    tight_until: Mutex<Option<Instant>>,
    /// Attempts that failed (Postgres unreachable or erring), since the start.
    errors: AtomicU64,
    failing: AtomicBool,
    log: LogLimiter,
}

impl SharedBudget {
    pub fn new(pool: PgPool, requests_per_10s: usize, search_per_s: usize) -> Self {
        Self {
            pool,
            standard: Params::standard(requests_per_10s),
            search: Params::search(search_per_s),
            standard_turn: tokio::sync::Mutex::new(()),
            search_turn: tokio::sync::Mutex::new(()),
            tight_until: Mutex::new(None),
            errors: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            log: LogLimiter::new(10_000),
        }
    }

    fn bucket(&self, bucket: Bucket) -> (&'static str, Params, &tokio::sync::Mutex<()>) {
        match bucket {
            Bucket::Standard => ("standard", self.standard, &self.standard_turn),
            Bucket::Search => ("search", self.search, &self.search_turn),
        }
    }

    /// Waits until a token of `bucket` is ours. Never gives up and never admits without a
    /// token: while Postgres does not answer it retries with a bounded backoff.
    pub async fn take(&self, bucket: Bucket) {
        let (name, params, turn) = self.bucket(bucket);
        let _turn = turn.lock().await;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let attempt = tokio::time::timeout(DB_TIMEOUT, self.try_take(name, params)).await;
            match attempt.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer in {DB_TIMEOUT:?}"))) {
                Ok(Take::Granted { left }) => {
                    self.recovered();
                    if left < params.burst / 2.0 {
                        self.mark_tight();
                    }
                    return;
                }
                Ok(Take::Wait(wait)) => {
                    self.recovered();
                    self.mark_tight();
                    backoff = BACKOFF_FIRST;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    self.failed(&e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn try_take(&self, name: &str, params: Params) -> anyhow::Result<Take> {
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        let (row, now_ms) = match lock_row(&mut tx, name).await? {
            Some(found) => found,
            None => {
                create_row(&mut tx, name).await?;
                lock_row(&mut tx, name)
                    .await?
                    .context("the budget's row is missing right after its insert")?
            }
        };
        let (row, outcome) = take(row, now_ms, params);
        // A wait changes nothing worth writing (but the commit keeps a row just created).
        if let Take::Granted { .. } = outcome {
            sqlx::query(
                "UPDATE hubspot_budget SET tokens = $2, refilled_ms = $3 WHERE bucket = $1",
            )
            .bind(name)
            .bind(row.tokens)
            .bind(row.refilled_ms)
            .execute(&mut *tx)
            .await
            .context("taking a token")?;
        }
        tx.commit().await.context("committing the budget")?;
        Ok(outcome)
    }

    /// Waits until `bucket` has a token and no pause holds, without taking it. Returns at
    /// once when the database does not answer ([`take`](Self::take) waits for it then).
    pub async fn ready(&self, bucket: Bucket) {
        let (name, params, _) = self.bucket(bucket);
        loop {
            let peek = tokio::time::timeout(DB_TIMEOUT, self.peek(name, params)).await;
            match peek {
                Ok(Ok(Some(wait))) => {
                    self.mark_tight();
                    tokio::time::sleep(wait).await;
                }
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    tracing::debug!(error = %format!("{e:#}"), "could not read the shared HubSpot budget");
                    return;
                }
                Err(_) => return,
            }
        }
    }

    async fn peek(&self, name: &str, params: Params) -> anyhow::Result<Option<Duration>> {
        let found: Option<(f64, i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT tokens, refilled_ms, paused_until_ms, {NOW_MS} FROM hubspot_budget WHERE bucket = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .context("reading the budget")?;
        Ok(
            found.and_then(|(tokens, refilled_ms, paused_until_ms, now_ms)| {
                let row = Row {
                    tokens,
                    refilled_ms,
                    paused_until_ms,
                };
                match take(row, now_ms, params).1 {
                    Take::Wait(wait) => Some(wait),
                    Take::Granted { .. } => None,
                }
            }),
        )
    }

    /// Stops every replica's calls, in both buckets, for `duration` from now (on the
    /// database's clock); a longer pause already set stays.
    pub async fn pause(&self, duration: Duration) {
        // At most a day: a pause is seconds; the bound keeps the sum within a BIGINT.
        let ms = i64::try_from(duration.as_millis()).map_or(DAY_MS, |ms| ms.min(DAY_MS));
        let sql = format!(
            "INSERT INTO hubspot_budget (bucket, tokens, refilled_ms, paused_until_ms) \
             SELECT b.bucket, 0, n.ms, n.ms + $1 \
             FROM (SELECT {NOW_MS} AS ms) AS n, (VALUES ('standard'), ('search')) AS b(bucket) \
             ON CONFLICT (bucket) DO UPDATE SET paused_until_ms = \
               greatest(hubspot_budget.paused_until_ms, excluded.paused_until_ms)"
        );
        let write = sqlx::query(&sql).bind(ms).execute(&self.pool);
        match tokio::time::timeout(DB_TIMEOUT, write).await {
            Ok(Ok(_)) => self.recovered(),
            Ok(Err(e)) => self.failed(&anyhow::Error::new(e).context("writing a pause")),
            Err(_) => self.failed(&anyhow::anyhow!(
                "writing a pause: no answer in {DB_TIMEOUT:?}"
            )),
        }
    }

    /// Whether the shared bucket paces the calls now: within the last second a take had
    /// to wait or left less than half the burst. Batchers then gather before calling.
    pub fn is_tight(&self) -> bool {
        self.tight_until
            .lock()
            .is_ok_and(|t| t.is_some_and(|until| until > Instant::now()))
    }

    fn mark_tight(&self) {
        if let Ok(mut t) = self.tight_until.lock() {
            *t = Some(Instant::now() + TIGHT_FOR);
        }
    }

    /// Attempts that failed so far (Postgres unreachable, timed out or erring).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn failed(&self, e: &anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        if let Some(suppressed) = self.log.admit(monotonic_ms()) {
            tracing::warn!(
                error = %format!("{e:#}"),
                suppressed,
                "the shared HubSpot budget in Postgres does not answer; HubSpot calls wait for it"
            );
        }
    }

    fn recovered(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("the shared HubSpot budget in Postgres answers again");
        }
    }
}

/// The row, locked until the transaction ends, and the database's time once it is ours.
async fn lock_row(
    tx: &mut Transaction<'_, Postgres>,
    name: &str,
) -> anyhow::Result<Option<(Row, i64)>> {
    let found: Option<(f64, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT tokens, refilled_ms, paused_until_ms, {NOW_MS} FROM hubspot_budget \
         WHERE bucket = $1 FOR UPDATE"
    ))
    .bind(name)
    .fetch_optional(&mut **tx)
    .await
    .context("locking the budget's row")?;
    Ok(found.map(|(tokens, refilled_ms, paused_until_ms, now_ms)| {
        let row = Row {
            tokens,
            refilled_ms,
            paused_until_ms,
        };
        (row, now_ms)
    }))
}

/// A bucket's first row: no tokens (see the module's note on a missing row).
async fn create_row(tx: &mut Transaction<'_, Postgres>, name: &str) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO hubspot_budget (bucket, tokens, refilled_ms) VALUES ($1, 0, {NOW_MS}) \
         ON CONFLICT (bucket) DO NOTHING"
    ))
    .bind(name)
    .execute(&mut **tx)
    .await
    .context("creating the budget's row")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admission times (ms) of callers asking as fast as they can, each arriving `late` ms
    /// after the bucket could first grant, on the bucket alone.
    fn admissions(p: Params, until_ms: i64, late: i64) -> Vec<i64> {
        let mut row = Row {
            tokens: 0.0,
            refilled_ms: 0,
            paused_until_ms: 0,
        };
        let (mut now, mut times) = (0, Vec::new());
        while now < until_ms {
            let (next, outcome) = take(row, now, p);
            row = next;
            match outcome {
                Take::Granted { .. } => times.push(now),
                Take::Wait(wait) => now += wait.as_millis() as i64 + late,
            }
        }
        times
    }

    fn busiest(times: &[i64], span_ms: i64) -> usize {
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|t| **t < times[i] + span_ms)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_span_of_the_window_plus_the_spread_holds_more_than_the_budget() {
        for max in [1, 2, 10, 20, 40, 90, 100, 190] {
            let p = Params::standard(max);
            assert!(p.burst >= 1.0, "{max}: {p:?}");
            for late in [0, 1, 7, 60] {
                let times = admissions(p, 60_000, late);
                let most = busiest(&times, 10_250);
                assert!(most <= max, "{max} per 10 s, {late} ms late: {most}");
            }
            // Drained at ~95% of the budget (the first token takes 1/rate to come), even
            // when every taker wakes a little late.
            if max >= 10 {
                let times = admissions(p, 60_000, 2);
                let least = 6.0 * max as f64 * 0.93;
                assert!(times.len() as f64 >= least, "{max}: {}", times.len());
            }
        }
        for max in [1, 2, 4, 5, 10] {
            let p = Params::search(max);
            let most = busiest(&admissions(p, 20_000, 1), 1_100);
            assert!(most <= max, "{max} per second: {most}");
        }
    }

    #[test]
    fn a_pause_or_an_empty_bucket_waits_and_the_clock_never_refills_backwards() {
        let p = Params::standard(20);
        let full = Row {
            tokens: p.burst,
            refilled_ms: 1_000,
            paused_until_ms: 4_000,
        };
        assert_eq!(
            take(full, 1_500, p).1,
            Take::Wait(Duration::from_millis(2_500))
        );
        let (after, granted) = take(full, 4_000, p);
        assert!(matches!(granted, Take::Granted { .. }), "{granted:?}");
        // A clock read before another replica's later take refills nothing.
        let (again, _) = take(after, 3_000, p);
        assert_eq!(again.refilled_ms, after.refilled_ms);
        assert!((again.tokens - after.tokens).abs() < 1e-9);
        let empty = Row {
            tokens: 0.0,
            ..after
        };
        let Take::Wait(wait) = take(empty, 4_000, p).1 else {
            panic!("granted from an empty bucket");
        };
        assert_eq!(
            wait,
            Duration::from_millis(525),
            "one token at 20 per 10.5 s"
        );
    }
}
