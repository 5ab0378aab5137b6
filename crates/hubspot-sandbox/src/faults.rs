//! Fault injection: a share of 502/503 answers, added latency, a full outage
//! for a time window, and 429 storms. Switchable at start (`SandboxConfig`)
//! and at run time (`/_sandbox/faults`, `Sandbox::set_faults`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Default: no faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share (0.0–1.0) of non-control requests answered 502 or 503.
    pub error_rate: f64,
    /// Added to every non-control request, in milliseconds.
    pub latency_ms: u64,
    /// Until then, every HubSpot call answers 503. JSON: an RFC 3339 string or null.
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time")]
    pub outage_until: Option<SystemTime>,
    /// Every HubSpot call answers 429 (TEN_SECONDLY_ROLLING).
    pub force_429: bool,
}

fn ser_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&crate::clock::iso(DateTime::<Utc>::from(*t))),
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

pub(crate) struct FaultSwitch {
    faults: Mutex<Faults>,
}

impl FaultSwitch {
    pub fn new(faults: Faults) -> FaultSwitch {
        FaultSwitch {
            faults: Mutex::new(faults),
        }
    }

    pub fn get(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.get().latency_ms)
    }

    /// Decides the fate of one request. `hubspot` is false for Stripe calls,
    /// which only get errors and latency (outages and 429 storms are HubSpot's).
    pub fn roll(&self, hubspot: bool) -> Injected {
        let f = self.get();
        if hubspot {
            let now = SystemTime::from(crate::clock::wall());
            if f.outage_until.is_some_and(|until| now < until) {
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
