//! How the Stripe side of the sandbox behaves where Stripe's published material leaves a
//! choice, one switch per plausible answer, plus what Stripe documents and paybridge must
//! live with: its request rate limit and the `Stripe-Version` header.
//!
//! - Rate limit: "Live mode: 100 operations; Sandbox: 25 operations … API endpoints have a
//!   default limit of 25 requests per second" (docs.stripe.com/rate-limits); a refused
//!   request is `429 Too Many Requests` with `error.code = "rate_limit"` (stripe-node
//!   `Error.js` maps it to `StripeRateLimitError`). Its `error.type` is not settled
//!   (`invalid_request_error` per the documented enum, `rate_limit_error` in older SDKs):
//!   [`StripeBehaviour::rate_limit_error_type`] picks one.
//! - `types[]` of the Events API takes "up to 20 strings containing specific event names";
//!   only `type` takes a `*` (stripe-node `EventListParams`). What Stripe answers to a
//!   wildcard in `types[]` is not published: [`WildcardTypes`] answers 400 or an empty list.
//! - `Date`: every HTTP origin server with a clock sends one (RFC 9110 §6.6.1);
//!   [`StripeBehaviour::clock_offset_secs`] makes Stripe's clock disagree with the host's.
//! - `Stripe-Version`: a malformed version is refused with 400 like Stripe's "Invalid
//!   Stripe API version"; the versions received are recorded for tests.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

/// The answer to a `*` in `types[]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WildcardTypes {
    /// 400 `invalid_request_error` / `parameter_invalid`, `param: "types[N]"`.
    #[default]
    Refuse,
    /// 200 with only the events whose type is literally the pattern (none).
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StripeBehaviour {
    /// Requests per rolling second before 429 (Stripe's sandbox: 25). 0: no limit.
    pub requests_per_s: u32,
    pub wildcard_types: WildcardTypes,
    /// `error.type` of a 429 body.
    pub rate_limit_error_type: String,
    /// Seconds added to the real clock in the `Date` header.
    pub clock_offset_secs: i64,
}

impl Default for StripeBehaviour {
    fn default() -> Self {
        Self {
            requests_per_s: 25,
            wildcard_types: WildcardTypes::Refuse,
            rate_limit_error_type: "invalid_request_error".into(),
            clock_offset_secs: 0,
        }
    }
}

/// Requests recorded at most (oldest dropped first).
const MAX_LOG: usize = 10_000;

/// The moving parts: the switches, the rolling second, and what was asked.
#[derive(Debug, Clone, Default)]
pub(crate) struct StripeTraffic {
    pub behaviour: StripeBehaviour,
    window: VecDeque<Instant>,
    pub rate_limited: u64,
    /// `{method, path, query, stripe_version, stripe_context, status}` per request.
    pub log: VecDeque<Value>,
}

impl StripeTraffic {
    pub fn new(behaviour: StripeBehaviour) -> Self {
        Self {
            behaviour,
            ..Self::default()
        }
    }

    /// Admits a request now, or says it is over the rate (and counts that).
    pub fn admit(&mut self, now: Instant) -> bool {
        let limit = self.behaviour.requests_per_s as usize;
        if limit == 0 {
            return true;
        }
        while self
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.window.pop_front();
        }
        if self.window.len() >= limit {
            self.rate_limited += 1;
            return false;
        }
        self.window.push_back(now);
        true
    }

    pub fn record(&mut self, entry: Value) {
        if self.log.len() >= MAX_LOG {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    pub fn json(&self) -> Value {
        json!({
            "behaviour": self.behaviour,
            "rate_limited": self.rate_limited,
            "requests": self.log,
        })
    }
}

/// A Stripe version as Stripe names them: `2026-08-26.dahlia`, or a bare date (before
/// 2024-09-30.acacia).
pub(crate) fn valid_version(v: &str) -> bool {
    let (date, name) = v.split_once('.').unwrap_or((v, "x"));
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()
        && date.len() == 10
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase())
}

/// The `Date` header value (IMF-fixdate) for `secs`.
pub(crate) fn http_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_dates() {
        assert!(valid_version("2026-08-26.dahlia"));
        assert!(valid_version("2024-06-20"));
        assert!(!valid_version("latest"));
        assert!(!valid_version("2026-13-01.x"));
        assert_eq!(http_date(1_791_112_808), "Sun, 04 Oct 2026 11:20:08 GMT");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_per_rolling_second() {
        let mut t = StripeTraffic::new(StripeBehaviour {
            requests_per_s: 2,
            ..StripeBehaviour::default()
        });
        let start = Instant::now();
        assert!(t.admit(start));
        assert!(t.admit(start));
        assert!(!t.admit(start + Duration::from_millis(999)));
        assert!(t.admit(start + Duration::from_secs(1)));
        assert_eq!(t.rate_limited, 1);
    }
}
