//! Fault injection: a share of 502/503 answers, added latency, a full outage
//! for a time window, 429 storms, and writes carried out whose answer is lost. Switchable
//! at start (`SandboxConfig`) and at run time (`/_sandbox/faults`, `Sandbox::set_faults`).
//!
//! Every fault but the lost answers is decided before the handler runs, so nothing is
//! written. A lost answer comes after the write: what a client sees when a gateway or the
//! network between it and HubSpot fails once HubSpot has done the work (RFC 9110 §15.6.3:
//! a 502 is a gateway's "invalid response from an inbound server"; §15.6.5: a 504 its
//! timeout). A client that retries must find what its first call made before making it
//! again.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::time::Instant;

use crate::clock;

/// Default: no faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share (0.0–1.0) of non-control requests answered 502 or 503.
    pub error_rate: f64,
    /// Added to every non-control request, in milliseconds, before it is handled.
    pub latency_ms: u64,
    /// With a value above `latency_ms`, each request's added latency is drawn uniformly
    /// from `latency_ms..=latency_max_ms` instead (an API answering in 100–200 ms, say).
    pub latency_max_ms: u64,
    /// Added to every non-control request after it is handled, before its answer goes out
    /// (a slow gateway): a write is done and its answer late, so a client that dies
    /// meanwhile never hears of it.
    pub answer_delay_ms: u64,
    /// Until then, every HubSpot call answers 503. JSON: an RFC 3339 string or null.
    /// The time left until then when the faults are set is counted on the
    /// monotonic clock, so a paused test ends the outage by advancing time.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub outage_until: Option<SystemTime>,
    /// Every HubSpot call answers 429 (TEN_SECONDLY_ROLLING).
    pub force_429: bool,
    /// With a value, the 429s of `force_429` carry `Retry-After: <seconds>`. HubSpot
    /// documents no `Retry-After` on CRM 429s (research §10: it is seen on the OAuth token
    /// endpoint's 429s, PostHog/posthog#64726), but RFC 6585 §4 lets any 429 carry one, so
    /// a gateway in front of HubSpot may send it. Off by default.
    pub storm_retry_after_s: Option<u64>,
    /// Route keys as `/_sandbox/stats` shows them (e.g.
    /// `POST /crm/objects/2026-09/tasks/batch/create`): the next successful call of each
    /// is carried out, and its answer lost (504, as when a gateway times out after the
    /// write). Each entry is used once.
    pub lost_answers: Vec<String>,
    /// Share (0.0–1.0) of successful writes (POST, PUT, PATCH, DELETE other than searches
    /// and batch reads) that are carried out and whose answer is then lost, as
    /// `lost_answer_as` says.
    pub lost_answer_rate: f64,
    /// How an answer of `lost_answer_rate` is lost.
    pub lost_answer_as: LostAs,
}

/// How a write's answer is lost after the write is applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LostAs {
    /// A gateway's 502 in HubSpot's error shape.
    Gateway,
    /// The connection is closed without an answer.
    Dropped,
    /// Either of the two, at random for each lost answer.
    #[default]
    Either,
}

/// How one write's answer is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Answered with this gateway status (504 for a named route, 502 for the share).
    Gateway(u16),
    /// The connection is closed.
    Dropped,
}

fn ser_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&clock::iso(DateTime::<Utc>::from(*t))),
        None => s.serialize_none(),
    }
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    let raw: Option<String> = Option::deserialize(d)?;
    raw.map(|r| {
        DateTime::parse_from_rfc3339(&r)
            .map(|t| SystemTime::from(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom)
    })
    .transpose()
}

/// What to do with one request before it reaches its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    None,
    Outage,
    Storm,
    Error(u16),
}

/// Longer outages are cut to this, so no clock arithmetic can overflow.
const LONGEST_OUTAGE: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

pub(crate) struct FaultSwitch {
    current: Mutex<Current>,
}

/// The faults as set, and when the outage ends on the monotonic clock.
struct Current {
    faults: Faults,
    outage_ends: Option<Instant>,
}

impl FaultSwitch {
    pub fn new(faults: Faults) -> FaultSwitch {
        FaultSwitch {
            current: Mutex::new(Current::from(faults)),
        }
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self) -> Faults {
        self.current().faults.clone()
    }

    pub fn set(&self, faults: Faults) {
        *self.current() = Current::from(faults);
    }

    /// `faults` with an outage from now, `lasting` that long.
    pub fn set_with_outage(&self, mut faults: Faults, lasting: Duration) {
        let lasting = lasting.min(LONGEST_OUTAGE);
        faults.outage_until = Some(SystemTime::from(clock::wall()) + lasting);
        *self.current() = Current {
            faults,
            outage_ends: Some(clock::now() + lasting),
        };
    }

    /// Whether the answer of this successful call of `route` (a write when `write`) is to
    /// be lost, and how: first a named route (used once), then the share of writes.
    pub fn lose_answer(&self, route: &str, write: bool) -> Option<Lost> {
        let mut current = self.current();
        let named = &mut current.faults.lost_answers;
        if let Some(i) = named.iter().position(|r| r == route) {
            named.remove(i);
            return Some(Lost::Gateway(504));
        }
        let share = current.faults.lost_answer_rate.clamp(0.0, 1.0);
        if !write || share <= 0.0 || !rand::random_bool(share) {
            return None;
        }
        Some(match current.faults.lost_answer_as {
            LostAs::Gateway => Lost::Gateway(502),
            LostAs::Dropped => Lost::Dropped,
            LostAs::Either if rand::random_bool(0.5) => Lost::Gateway(502),
            LostAs::Either => Lost::Dropped,
        })
    }

    /// The latency to add to one request: fixed, or drawn from the range.
    pub fn latency(&self) -> Duration {
        let f = self.get();
        let ms = if f.latency_max_ms > f.latency_ms {
            rand::random_range(f.latency_ms..=f.latency_max_ms)
        } else {
            f.latency_ms
        };
        Duration::from_millis(ms)
    }

    pub fn answer_delay(&self) -> Duration {
        Duration::from_millis(self.get().answer_delay_ms)
    }

    /// Decides the fate of one request. `hubspot` is false for Stripe calls,
    /// which only get errors and latency (outages and 429 storms are HubSpot's).
    pub fn roll(&self, hubspot: bool) -> Injected {
        let (f, outage_ends) = {
            let current = self.current();
            (current.faults.clone(), current.outage_ends)
        };
        if hubspot {
            if outage_ends.is_some_and(|end| clock::now() < end) {
                return Injected::Outage;
            }
            if f.force_429 {
                return Injected::Storm;
            }
        }
        if f.error_rate > 0.0 && rand::random_bool(f.error_rate.clamp(0.0, 1.0)) {
            return Injected::Error(if rand::random_bool(0.5) { 502 } else { 503 });
        }
        Injected::None
    }
}

impl From<Faults> for Current {
    /// `outage_until` is a wall-clock time; the outage ends after the time left
    /// until then, measured from now on the monotonic clock (tokio's, so a
    /// paused test ends it with `tokio::time::advance`).
    fn from(faults: Faults) -> Current {
        let outage_ends = faults.outage_until.map(|until| {
            let left = until
                .duration_since(SystemTime::from(clock::wall()))
                .unwrap_or(Duration::ZERO)
                .min(LONGEST_OUTAGE);
            clock::now() + left
        });
        Current {
            faults,
            outage_ends,
        }
    }
}
