//! A circuit breaker in front of HubSpot (issue 14). When HubSpot fails broadly — five
//! calls in a row answered 5xx/408 or not answered at all, or half of the last twenty —
//! calls stop reaching it: each is refused at once ([`HubspotError::Unavailable`]) and its
//! job waits without spending an attempt. One call at a time goes through as a probe,
//! first 1 s after opening, then at doubling intervals up to 5 s: an outage's end is seen
//! within 5 s, for at most two calls per 10 s. The first answer that is not a failure (a
//! 2xx, a 4xx, a 429: HubSpot is there) closes the breaker and counts a recovery; the
//! workers then release every job waiting on HubSpot at once, instead of letting each sit
//! out its own backoff while HubSpot is already healthy.
//!
//! [`HubspotError::Unavailable`]: super::HubspotError::Unavailable

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::Clock;

/// Failures in a row that open the breaker.
const CONSECUTIVE: u32 = 5;
/// The recent calls looked at, and the share of failures among them that opens it.
const RECENT: usize = 20;
const RECENT_FAILED: usize = 10;
const FIRST_PROBE_MS: i64 = 1_000;
const LONGEST_PROBE_INTERVAL_MS: i64 = 5_000;
/// A probe that has not answered by then (the client's timeout is 30 s) is given up.
const PROBE_GIVEN_UP_MS: i64 = 35_000;

/// Whether a call may go to HubSpot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed.
    Go,
    /// The breaker is open and this call is its probe: record its outcome as one.
    Probe,
    /// The breaker is open: the call is not made; the next probe is due in this long.
    Refused(Duration),
}

#[derive(Default)]
pub struct Breaker {
    state: Mutex<State>,
    clock: Mutex<Clock>,
    recoveries: AtomicU64,
}

#[derive(Default)]
struct State {
    /// The last calls' outcomes, `true` for a failure.
    recent: VecDeque<bool>,
    consecutive: u32,
    open: Option<Open>,
}

struct Open {
    next_probe_ms: i64,
    interval_ms: i64,
    /// While a probe is in flight, until when it is waited for.
    probing_until_ms: Option<i64>,
}

impl Breaker {
    pub fn use_clock(&self, clock: Clock) {
        if let Ok(mut c) = self.clock.lock() {
            *c = clock;
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.lock().map(|c| c.now_ms()).unwrap_or_default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(&self) -> Admission {
        let now = self.now_ms();
        let mut state = self.state();
        let Some(open) = &mut state.open else {
            return Admission::Go;
        };
        let probing = open.probing_until_ms.is_some_and(|until| until > now);
        if probing || now < open.next_probe_ms {
            return Admission::Refused(Duration::from_millis(
                (open.next_probe_ms - now).max(0) as u64
            ));
        }
        open.probing_until_ms = Some(now + PROBE_GIVEN_UP_MS);
        Admission::Probe
    }

    /// A call's outcome: `failed` for a 5xx, a 408 or no answer.
    pub fn record(&self, admission: Admission, failed: bool) {
        let now = self.now_ms();
        let mut state = self.state();
        state.recent.push_back(failed);
        while state.recent.len() > RECENT {
            state.recent.pop_front();
        }
        if !failed {
            state.consecutive = 0;
            if state.open.take().is_some() {
                state.recent.clear();
                metrics::gauge!("paybridge_hubspot_breaker_open").set(0.0);
                self.recoveries.fetch_add(1, Ordering::SeqCst);
                tracing::info!("HubSpot answers again: circuit breaker closed");
            }
            return;
        }
        state.consecutive += 1;
        match &mut state.open {
            Some(open) if admission == Admission::Probe => {
                open.interval_ms = (open.interval_ms * 2).min(LONGEST_PROBE_INTERVAL_MS);
                open.next_probe_ms = now + open.interval_ms;
                open.probing_until_ms = None;
            }
            Some(_) => {}
            None => {
                let failures = state.recent.iter().filter(|f| **f).count();
                if state.consecutive >= CONSECUTIVE || failures >= RECENT_FAILED {
                    tracing::warn!(
                        consecutive = state.consecutive,
                        failures,
                        "HubSpot is failing broadly: circuit breaker open; jobs wait without spending attempts, probing from 1 s to every 5 s"
                    );
                    metrics::counter!("paybridge_hubspot_breaker_opened_total").increment(1);
                    metrics::gauge!("paybridge_hubspot_breaker_open").set(1.0);
                    state.open = Some(Open {
                        next_probe_ms: now + FIRST_PROBE_MS,
                        interval_ms: FIRST_PROBE_MS,
                        probing_until_ms: None,
                    });
                }
            }
        }
    }

    pub fn is_open(&self) -> bool {
        self.state().open.is_some()
    }

    /// How long until the next probe (zero when closed, or when one is due).
    pub fn until_probe(&self) -> Duration {
        let now = self.now_ms();
        self.state().open.as_ref().map_or(Duration::ZERO, |o| {
            Duration::from_millis((o.next_probe_ms - now).max(0) as u64)
        })
    }

    /// How many times the breaker closed after being open.
    pub fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (Breaker, Clock) {
        let clock = Clock::manual(1_000_000);
        let b = Breaker::default();
        b.use_clock(clock.clone());
        (b, clock)
    }

    #[test]
    fn opens_after_five_failures_in_a_row_probes_one_at_a_time_and_closes_on_an_answer() {
        let (b, clock) = breaker();
        for _ in 0..4 {
            assert_eq!(b.admit(), Admission::Go);
            b.record(Admission::Go, true);
        }
        assert!(!b.is_open(), "four failures are not an outage");
        b.record(Admission::Go, true);
        assert!(b.is_open());
        assert_eq!(b.admit(), Admission::Refused(Duration::from_secs(1)));
        clock.advance_ms(1_000);
        assert_eq!(b.admit(), Admission::Probe);
        assert!(
            matches!(b.admit(), Admission::Refused(_)),
            "one probe at a time"
        );
        // The probe fails: the next is twice as far, up to 5 s.
        b.record(Admission::Probe, true);
        assert_eq!(b.until_probe(), Duration::from_secs(2));
        for expected in [4, 5, 5] {
            clock.advance_ms(b.until_probe().as_millis() as i64);
            assert_eq!(b.admit(), Admission::Probe);
            b.record(Admission::Probe, true);
            assert_eq!(b.until_probe(), Duration::from_secs(expected));
        }
        assert_eq!(b.recoveries(), 0);
        clock.advance_ms(5_000);
        assert_eq!(b.admit(), Admission::Probe);
        b.record(Admission::Probe, false);
        assert!(!b.is_open());
        assert_eq!(b.recoveries(), 1);
        assert_eq!(b.admit(), Admission::Go);
    }

    #[test]
    fn scattered_failures_do_not_open_it_and_a_lost_probe_is_given_up() {
        let (b, clock) = breaker();
        // One call in five fails, for long: never five in a row, never half of twenty.
        for i in 0..200 {
            b.record(Admission::Go, i % 5 == 0);
        }
        assert!(!b.is_open());
        for _ in 0..5 {
            b.record(Admission::Go, true);
        }
        clock.advance_ms(1_000);
        assert_eq!(b.admit(), Admission::Probe);
        // Its answer never comes (the caller went away): another probe after a while.
        clock.advance_ms(PROBE_GIVEN_UP_MS - 1);
        assert!(matches!(b.admit(), Admission::Refused(_)));
        clock.advance_ms(1);
        assert_eq!(b.admit(), Admission::Probe);
    }

    #[test]
    fn half_of_the_last_twenty_failing_opens_it_without_five_in_a_row() {
        let (b, _clock) = breaker();
        let mut calls = 0;
        while !b.is_open() {
            // Two failures, one answer: never more than two in a row.
            b.record(Admission::Go, calls % 3 != 2);
            calls += 1;
            assert!(calls <= 20, "still closed after {calls} calls");
        }
        assert!(calls >= 14, "opened after {calls} calls");
    }
}
