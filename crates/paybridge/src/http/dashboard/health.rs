//! The health strip: intake rate, queue depth, oldest pending age, HubSpot budget used,
//! 429s, dead letters, each with a state (ok, warn, alert = a person should look).
//!
//! The HubSpot numbers come from the client's call counts (`hubspot::CallCounts`), sampled
//! every few seconds: the budget used is the calls of the last 10 s against
//! `requests_per_10s`.

use std::collections::VecDeque;

use serde::Serialize;

use super::chart::fmt_count;
use crate::domain::time;
use crate::store::HealthCounts;

/// How far back the intake rate looks.
pub const INTAKE_WINDOW_MS: i64 = 5 * 60_000;
/// HubSpot's rolling window for `requests_per_10s`.
const BUDGET_WINDOW_MS: u64 = 10_000;
/// 429s this recent turn the tile red; older ones (within the hour) amber.
const RECENT_429_MS: u64 = 15 * 60_000;
const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Warn,
    Alert,
}

impl State {
    fn words(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warn => "Warning",
            State::Alert => "Needs attention",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tile {
    pub id: &'static str,
    pub label: &'static str,
    pub value: String,
    pub detail: String,
    pub state: State,
    /// The state in words, for screen readers (colour is not the only signal).
    pub state_text: &'static str,
}

fn tile(
    id: &'static str,
    label: &'static str,
    value: String,
    detail: String,
    state: State,
) -> Tile {
    Tile {
        id,
        label,
        value,
        detail,
        state,
        state_text: state.words(),
    }
}

/// A reading of the HubSpot client's call counts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// ms since the sampler started
    at: u64,
    calls: f64,
    rate_limited: f64,
}

/// What the call counts say over the recent windows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HubspotUsage {
    /// Calls over the last 10 s (scaled up when fewer seconds are known); None before
    /// two readings at least a second apart exist.
    pub calls_10s: Option<f64>,
    pub rate_limited_15m: f64,
    pub rate_limited_1h: f64,
    pub rate_limited_total: f64,
    pub calls_total: f64,
    /// How long the readings go back (ms), at most an hour.
    pub span_ms: u64,
}

/// Readings of the call counts, kept for an hour.
#[derive(Debug, Default)]
pub struct Samples {
    samples: VecDeque<Sample>,
}

impl Samples {
    /// Records a reading at `at` (ms, monotonic); readings older than an hour are dropped,
    /// but the newest of those is kept as the hour's baseline.
    pub fn record(&mut self, at: u64, calls: f64, rate_limited: f64) {
        if self.samples.back().is_some_and(|last| at < last.at + 500) {
            // Twice within half a second: keep the newer values, not another entry.
            if let Some(last) = self.samples.back_mut() {
                last.calls = calls;
                last.rate_limited = rate_limited;
            }
        } else {
            self.samples.push_back(Sample {
                at,
                calls,
                rate_limited,
            });
        }
        while self.samples.len() > 2 && self.samples[1].at + HOUR_MS <= at {
            self.samples.pop_front();
        }
    }

    /// The newest reading at or before `at`, else the oldest one.
    fn at_or_before(&self, at: u64) -> Option<&Sample> {
        self.samples
            .iter()
            .rev()
            .find(|s| s.at <= at)
            .or_else(|| self.samples.front())
    }

    pub fn usage(&self) -> HubspotUsage {
        let Some(now) = self.samples.back() else {
            return HubspotUsage::default();
        };
        let since = |window: u64| self.at_or_before(now.at.saturating_sub(window));
        // Calls per 10 s between the reading 10 s ago (or the oldest, when younger) and
        // now: exact when readings are 10 s apart, an average when they are further apart.
        let calls_10s = since(BUDGET_WINDOW_MS).and_then(|base| {
            let elapsed = now.at.saturating_sub(base.at);
            (elapsed >= 1_000).then(|| {
                (now.calls - base.calls).max(0.0) * BUDGET_WINDOW_MS as f64 / elapsed as f64
            })
        });
        let delta_429 = |window| {
            since(window)
                .map(|b| (now.rate_limited - b.rate_limited).max(0.0))
                .unwrap_or(0.0)
        };
        HubspotUsage {
            calls_10s,
            rate_limited_15m: delta_429(RECENT_429_MS),
            rate_limited_1h: delta_429(HOUR_MS),
            rate_limited_total: now.rate_limited,
            calls_total: now.calls,
            span_ms: self
                .samples
                .front()
                .map(|f| now.at.saturating_sub(f.at).min(HOUR_MS))
                .unwrap_or(0),
        }
    }
}

/// The strip, from the store's counts and the process's HubSpot usage.
pub fn tiles(
    counts: &HealthCounts,
    usage: &HubspotUsage,
    now_ms: i64,
    requests_per_10s: u32,
) -> Vec<Tile> {
    let per_min = counts.received as f64 / (INTAKE_WINDOW_MS as f64 / 60_000.0);
    let intake = tile(
        "intake",
        "Intake",
        format!("{}/min", fmt_count(round1(per_min))),
        format!(
            "{} event{} in the last 5 min",
            counts.received,
            plural(counts.received)
        ),
        State::Ok,
    );
    let depth_state = match counts.queue_depth {
        d if d > 10_000 => State::Alert,
        d if d > 1_000 => State::Warn,
        _ => State::Ok,
    };
    let queue = tile(
        "queue",
        "Queue depth",
        counts.queue_depth.to_string(),
        format!(
            "{} sequence step{} scheduled",
            counts.scheduled,
            plural(counts.scheduled)
        ),
        depth_state,
    );
    let oldest = match counts.oldest_waiting {
        Some(at) => {
            let age = (now_ms - at).max(0);
            let state = match age {
                a if a > 30 * 60_000 => State::Alert,
                a if a > 5 * 60_000 => State::Warn,
                _ => State::Ok,
            };
            tile(
                "oldest",
                "Oldest pending",
                time::duration_ms(age as f64),
                "waiting or retrying".into(),
                state,
            )
        }
        None => tile(
            "oldest",
            "Oldest pending",
            "none".into(),
            "nothing waiting".into(),
            State::Ok,
        ),
    };
    let budget = match usage.calls_10s {
        Some(calls) => {
            let pct = calls / f64::from(requests_per_10s.max(1)) * 100.0;
            tile(
                "budget",
                "HubSpot budget",
                format!("{pct:.0}%"),
                format!(
                    "{} of {requests_per_10s} calls / 10 s",
                    fmt_count(calls.round())
                ),
                if pct >= 80.0 { State::Warn } else { State::Ok },
            )
        }
        None => tile(
            "budget",
            "HubSpot budget",
            "–".into(),
            format!("measuring; limit {requests_per_10s} calls / 10 s"),
            State::Ok,
        ),
    };
    let detail = if usage.span_ms >= HOUR_MS {
        format!(
            "in the last hour; {} since start",
            fmt_count(usage.rate_limited_total)
        )
    } else {
        format!(
            "in the last {}",
            time::duration_ms(usage.span_ms.max(1_000) as f64)
        )
    };
    let throttled = tile(
        "throttled",
        "HubSpot 429s",
        fmt_count(usage.rate_limited_1h),
        detail,
        if usage.rate_limited_15m > 0.0 {
            State::Alert
        } else if usage.rate_limited_1h > 0.0 {
            State::Warn
        } else {
            State::Ok
        },
    );
    let dead = tile(
        "dead",
        "Dead letters",
        counts.dead.to_string(),
        format!("{} need{} attention", counts.needs_attention, {
            if counts.needs_attention == 1 { "s" } else { "" }
        }),
        if counts.dead > 0 || counts.needs_attention > 0 {
            State::Alert
        } else {
            State::Ok
        },
    );
    vec![intake, queue, oldest, budget, throttled, dead]
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_the_last_ten_seconds_of_calls() {
        let mut s = Samples::default();
        assert_eq!(s.usage().calls_10s, None);
        s.record(0, 100.0, 0.0);
        assert_eq!(s.usage().calls_10s, None, "one reading says nothing");
        s.record(2_000, 110.0, 0.0);
        // 10 calls in 2 s: 50 over a 10 s window.
        assert_eq!(s.usage().calls_10s, Some(50.0));
        for t in 1..=10 {
            s.record(2_000 + t * 2_000, 110.0 + t as f64 * 9.0, 0.0);
        }
        // At 22 s: the base is the reading at 12 s (155): 200 − 155 = 45.
        assert_eq!(s.usage().calls_10s, Some(45.0));
        // A quiet minute with a stale base: spread over the time between readings.
        s.record(82_000, 260.0, 0.0);
        assert_eq!(s.usage().calls_10s, Some(10.0));
    }

    #[test]
    fn rate_limits_are_counted_per_window() {
        let mut s = Samples::default();
        s.record(0, 0.0, 5.0);
        s.record(30 * 60_000, 0.0, 6.0);
        s.record(50 * 60_000, 0.0, 6.0);
        let u = s.usage();
        assert_eq!(u.rate_limited_total, 6.0);
        assert_eq!(u.rate_limited_1h, 1.0);
        assert_eq!(u.rate_limited_15m, 0.0);
        // Old readings fall out of the hour.
        s.record(3 * HOUR_MS, 0.0, 7.0);
        let u = s.usage();
        assert_eq!(u.rate_limited_1h, 1.0);
        assert_eq!(u.rate_limited_15m, 1.0);
        assert!(s.samples.len() <= 3, "{:?}", s.samples);
    }

    #[test]
    fn tiles_turn_red_when_a_person_is_needed() {
        let calm = HealthCounts {
            received: 12,
            queue_depth: 3,
            scheduled: 1,
            oldest_waiting: Some(1_000),
            dead: 0,
            needs_attention: 0,
        };
        let usage = HubspotUsage {
            calls_10s: Some(45.0),
            ..HubspotUsage::default()
        };
        let t = tiles(&calm, &usage, 61_000, 90);
        let by = |id: &str| t.iter().find(|t| t.id == id).expect("tile").clone();
        assert_eq!(by("intake").value, "2.4/min");
        assert_eq!(by("oldest").value, "1 min");
        assert_eq!(by("budget").value, "50%");
        assert!(t.iter().all(|t| t.state == State::Ok), "{t:?}");

        let bad = HealthCounts {
            dead: 2,
            oldest_waiting: Some(0),
            queue_depth: 5_000,
            ..calm
        };
        let usage = HubspotUsage {
            calls_10s: Some(85.0),
            rate_limited_15m: 1.0,
            rate_limited_1h: 3.0,
            ..usage
        };
        let t = tiles(&bad, &usage, 31 * 60_000 + 1, 90);
        let by = |id: &str| t.iter().find(|t| t.id == id).expect("tile").clone();
        assert_eq!(by("dead").state, State::Alert);
        assert_eq!(by("dead").state_text, "Needs attention");
        assert_eq!(by("oldest").state, State::Alert);
        assert_eq!(by("queue").state, State::Warn);
        assert_eq!(by("budget").state, State::Warn);
        assert_eq!(by("throttled").state, State::Alert);
        assert_eq!(by("throttled").value, "3");

        let attention = HealthCounts {
            needs_attention: 1,
            ..calm
        };
        let t = tiles(&attention, &HubspotUsage::default(), 0, 90);
        let dead = t.iter().find(|t| t.id == "dead").expect("tile");
        assert_eq!(dead.state, State::Alert);
        assert_eq!(dead.detail, "1 needs attention");
        let budget = t.iter().find(|t| t.id == "budget").expect("tile");
        assert_eq!(budget.value, "–");
    }
}
