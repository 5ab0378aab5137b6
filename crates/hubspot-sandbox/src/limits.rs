//! HubSpot's rate limits per token, and the call statistics that go with them.
//!
//! - a true sliding 10-second window of `requests_per_10s` (so "the highest
//!   count in any 10 s window" is exact: it is reached at some admitted call);
//! - search has its own per-second window and is outside the 10-s window
//!   (`x-hubspot-rate-limit-exemptions: ["ten-secondly"]`, research §3);
//! - a daily budget. HubSpot resets it at midnight in the account's time zone
//!   (`SandboxConfig::account`).
//!
//! A call answered 429 consumes nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::SandboxConfig;
use crate::account::Account;
use crate::clock;

const TEN_SECONDS: Duration = Duration::from_secs(10);
const ONE_SECOND: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    TenSecondly,
    Secondly,
    Daily,
}

/// What the rate-limit headers report after an admitted call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub max: u32,
    pub remaining: u32,
    pub daily: u64,
    pub daily_remaining: u64,
}

#[derive(Debug, Default)]
struct TokenUsage {
    window: VecDeque<Instant>,
    search_window: VecDeque<Instant>,
    day: Option<NaiveDate>,
    daily_used: u64,
    max_in_any_10s: usize,
    calls: u64,
    calls_by_route: BTreeMap<String, u64>,
    rate_limited: u64,
    search_calls: u64,
}

#[derive(Debug, Default)]
struct Usage {
    tokens: HashMap<String, TokenUsage>,
    total_calls: u64,
    total_429: u64,
    faults_served: u64,
    /// Writes carried out whose answer was lost (also counted in `faults_served`).
    answers_lost: u64,
    stripe_calls: u64,
}

pub(crate) struct Limiter {
    per_10s: u32,
    per_s: u32,
    daily: u64,
    account: Account,
    usage: Mutex<Usage>,
}

fn prune(window: &mut VecDeque<Instant>, now: Instant, span: Duration) {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= span)
    {
        window.pop_front();
    }
}

impl Limiter {
    pub fn new(config: &SandboxConfig) -> Limiter {
        Limiter {
            per_10s: config.requests_per_10s,
            per_s: config.search_per_s,
            daily: config.daily_limit,
            account: config.account.clone(),
            usage: Mutex::new(Usage::default()),
        }
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn reset(&self) {
        *self.usage() = Usage::default();
    }

    /// Admits a call for `token` or names the policy that refuses it.
    pub fn admit(&self, token: &str, search: bool) -> Result<Budget, Policy> {
        let now = clock::now();
        let today = self.account.day(clock::wall());
        let mut usage = self.usage();
        let u = usage.tokens.entry(token.to_owned()).or_default();
        if u.day != Some(today) {
            u.day = Some(today);
            u.daily_used = 0;
        }
        prune(&mut u.window, now, TEN_SECONDS);
        prune(&mut u.search_window, now, ONE_SECOND);
        if u.daily_used >= self.daily {
            return Err(Policy::Daily);
        }
        if search {
            if u.search_window.len() >= self.per_s as usize {
                return Err(Policy::Secondly);
            }
            u.search_window.push_back(now);
        } else {
            if u.window.len() >= self.per_10s as usize {
                return Err(Policy::TenSecondly);
            }
            u.window.push_back(now);
            u.max_in_any_10s = u.max_in_any_10s.max(u.window.len());
        }
        u.daily_used += 1;
        let used = u32::try_from(u.window.len()).unwrap_or(u32::MAX);
        Ok(Budget {
            max: self.per_10s,
            remaining: self.per_10s.saturating_sub(used),
            daily: self.daily,
            daily_remaining: self.daily.saturating_sub(u.daily_used),
        })
    }

    /// Calls counted against `token`'s daily budget today.
    pub fn daily_used(&self, token: &str) -> u64 {
        let today = self.account.day(clock::wall());
        let usage = self.usage();
        usage
            .tokens
            .get(token)
            .filter(|u| u.day == Some(today))
            .map_or(0, |u| u.daily_used)
    }

    /// Every token's daily budget starts over (what midnight does).
    pub fn new_day(&self) {
        for u in self.usage().tokens.values_mut() {
            u.daily_used = 0;
        }
    }

    /// The budget as it stands, without admitting a call (for 429 headers).
    pub fn peek(&self, token: &str) -> Budget {
        let now = clock::now();
        let mut usage = self.usage();
        let u = usage.tokens.entry(token.to_owned()).or_default();
        prune(&mut u.window, now, TEN_SECONDS);
        let used = u32::try_from(u.window.len()).unwrap_or(u32::MAX);
        Budget {
            max: self.per_10s,
            remaining: self.per_10s.saturating_sub(used),
            daily: self.daily,
            daily_remaining: self.daily.saturating_sub(u.daily_used),
        }
    }

    /// Counts one HubSpot call. `token` is `None` when the caller had no known token.
    pub fn record(&self, token: Option<&str>, route: &str, search: bool, status: u16, fault: bool) {
        let mut usage = self.usage();
        usage.total_calls += 1;
        if status == 429 {
            usage.total_429 += 1;
        }
        if fault {
            usage.faults_served += 1;
        }
        if let Some(token) = token {
            let u = usage.tokens.entry(token.to_owned()).or_default();
            u.calls += 1;
            *u.calls_by_route.entry(route.to_owned()).or_default() += 1;
            if status == 429 {
                u.rate_limited += 1;
            }
            if search {
                u.search_calls += 1;
            }
        }
    }

    /// Counts a write carried out whose answer was lost.
    pub fn record_lost_answer(&self) {
        self.usage().answers_lost += 1;
    }

    pub fn record_stripe(&self, fault: bool) {
        let mut usage = self.usage();
        usage.stripe_calls += 1;
        if fault {
            usage.faults_served += 1;
        }
    }

    pub fn stats_json(&self) -> Value {
        let usage = self.usage();
        let tokens: serde_json::Map<String, Value> = usage
            .tokens
            .iter()
            .filter(|(_, u)| u.calls > 0)
            .map(|(t, u)| {
                (
                    t.clone(),
                    json!({
                        "calls": u.calls,
                        "calls_by_route": u.calls_by_route,
                        "rate_limited": u.rate_limited,
                        "max_in_any_10s": u.max_in_any_10s,
                        "search_calls": u.search_calls,
                        "daily_used": u.daily_used,
                    }),
                )
            })
            .collect();
        json!({
            "tokens": tokens,
            "total_calls": usage.total_calls,
            "total_429": usage.total_429,
            "faults_served": usage.faults_served,
            "answers_lost": usage.answers_lost,
            "stripe_calls": usage.stripe_calls,
        })
    }
}
