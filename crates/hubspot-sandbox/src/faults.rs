//! Fault injection: a share of 502/503 answers, added latency, a full outage
//! for a time window, and 429 storms. Switchable at start (`SandboxConfig`)
//! and at run time (`/_sandbox/faults`, `Sandbox::set_faults`).

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
    /// Added to every non-control request, in milliseconds.
    pub latency_ms: u64,
    /// With a value above `latency_ms`, each request's added latency is drawn uniformly
    /// from `latency_ms..=latency_max_ms` instead (an API answering in 100–200 ms, say).
    pub latency_max_ms: u64,
    /// Until then, every HubSpot call answers 503. JSON: an RFC 3339 string or null.
    /// The time left until then when the faults are set is counted on the
    /// monotonic clock, so a paused test ends the outage by advancing time.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub outage_until: Option<SystemTime>,
    /// Every HubSpot call answers 429 (TEN_SECONDLY_ROLLING).
    pub force_429: bool,
    /// Route keys as `/_sandbox/stats` shows them (e.g.
    /// `POST /crm/objects/2026-09/tasks/batch/create`): the next successful call of each
    /// is carried out, and its answer lost (504, as when a gateway times out after the
    /// write). Each entry is used once.
    pub lost_answers: Vec<String>,
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

    /// Whether the answer of this successful call of `route` is to be lost (used once).
    pub fn lose_answer(&self, route: &str) -> bool {
        let mut current = self.current();
        let lost = &mut current.faults.lost_answers;
        match lost.iter().position(|r| r == route) {
            Some(i) => {
                lost.remove(i);
                true
            }
            None => false,
        }
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
