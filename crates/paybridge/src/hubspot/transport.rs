//! One HTTP call to HubSpot: bearer auth, the shared limiter, 429 as "wait", errors
//! classified, metrics per route class.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::HubspotError;
use super::breaker::{Admission, Breaker};
use super::daily::{AccountZone, Daily, resets_at};
use super::limiter::{Bucket, Limiter};
use crate::basics::Secret;
use crate::hubspot::ApiVersion;

pub struct Transport {
    http: reqwest::Client,
    base: String,
    token: Secret,
    pub version: ApiVersion,
    pub limiter: Arc<Limiter>,
    /// How long one call may keep waiting out 429s before the job is rescheduled.
    max_rate_limited: Duration,
    /// Calls answered and 429s, kept for `paybridge report` (see `crate::ops::usage`).
    pub counts: Arc<CallCounts>,
    /// The hold after a DAILY 429 (see `daily.rs`).
    pub daily: Daily,
    /// Stops calls while HubSpot fails broadly (see `breaker.rs`).
    pub breaker: Breaker,
}

/// HubSpot calls this client made that were answered (any status), and the 429s among
/// them: since they were last taken (for the store), and in all (for the dashboard).
#[derive(Debug, Default)]
pub struct CallCounts {
    calls: AtomicU64,
    rate_limited: AtomicU64,
    calls_total: AtomicU64,
    rate_limited_total: AtomicU64,
}

impl CallCounts {
    fn record(&self, status: StatusCode) {
        let limited = u64::from(status == StatusCode::TOO_MANY_REQUESTS);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.calls_total.fetch_add(1, Ordering::Relaxed);
        self.rate_limited.fetch_add(limited, Ordering::Relaxed);
        self.rate_limited_total
            .fetch_add(limited, Ordering::Relaxed);
    }

    /// The counts since the client was built: `(calls, rate_limited)`.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.calls_total.load(Ordering::Relaxed),
            self.rate_limited_total.load(Ordering::Relaxed),
        )
    }

    /// The counts so far, reset to zero: `(calls, rate_limited)`.
    pub fn take(&self) -> (u64, u64) {
        (
            self.calls.swap(0, Ordering::Relaxed),
            self.rate_limited.swap(0, Ordering::Relaxed),
        )
    }

    /// Puts counts back (they could not be stored).
    pub fn give_back(&self, calls: u64, rate_limited: u64) {
        self.calls.fetch_add(calls, Ordering::Relaxed);
        self.rate_limited.fetch_add(rate_limited, Ordering::Relaxed);
    }
}

/// A call's answer: status and JSON body (Null when empty).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Transport {
    pub fn new(
        base: &str,
        token: Secret,
        version: ApiVersion,
        limiter: Arc<Limiter>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("paybridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            version,
            limiter,
            max_rate_limited: Duration::from_secs(120),
            counts: Arc::default(),
            daily: Daily::default(),
            breaker: Breaker::default(),
        })
    }

    /// Path of an object API: `/crm/v3/objects/{t}` or `/crm/objects/2026-09/{t}`.
    pub fn objects(&self, object_type: &str) -> String {
        match self.version {
            ApiVersion::V3 => format!("/crm/v3/objects/{object_type}"),
            ApiVersion::Dated2026_09 => format!("/crm/objects/2026-09/{object_type}"),
        }
    }

    /// Path of another CRM family: `properties`, `lists`, `owners`, `pipelines`.
    pub fn family(&self, family: &str) -> String {
        match self.version {
            ApiVersion::V3 => format!("/crm/v3/{family}"),
            ApiVersion::Dated2026_09 => format!("/crm/{family}/2026-09"),
        }
    }

    /// Reading a record's associations (v4 in the legacy family).
    pub fn associations(&self, from: &str, id: &str, to: &str) -> String {
        match self.version {
            ApiVersion::V3 => format!("/crm/v4/objects/{from}/{id}/associations/{to}"),
            ApiVersion::Dated2026_09 => {
                format!("/crm/objects/2026-09/{from}/{id}/associations/{to}")
            }
        }
    }

    /// Account info (`/account-info/v3/…` or `/account-info/2026-09/…`).
    pub fn account_info(&self, what: &str) -> String {
        match self.version {
            ApiVersion::V3 => format!("/account-info/v3/{what}"),
            ApiVersion::Dated2026_09 => format!("/account-info/2026-09/{what}"),
        }
    }

    pub async fn call(
        &self,
        route: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, HubspotError> {
        let bucket = if route.ends_with("search") {
            Bucket::Search
        } else {
            Bucket::Standard
        };
        if self.daily.take_want_zone() {
            self.read_zone().await;
        }
        let started = Instant::now();
        loop {
            if let Some(wait) = self.daily.held_for() {
                return Err(HubspotError::RateLimited {
                    policy: "DAILY".into(),
                    retry_after: Some(wait),
                });
            }
            let admission = self.breaker.admit();
            if let Admission::Refused(retry_after) = admission {
                return Err(HubspotError::Unavailable { retry_after });
            }
            // A batch's first call: its batcher took the room already.
            let waited = if bucket == Bucket::Standard && super::batch::take_prepaid() {
                Duration::ZERO
            } else {
                self.limiter.acquire(bucket).await
            };
            metrics::histogram!("paybridge_hubspot_limiter_wait_seconds")
                .record(waited.as_secs_f64());
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(self.token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            let call_started = Instant::now();
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    self.breaker.record(admission, true);
                    metrics::counter!("paybridge_hubspot_calls_total", "route" => route, "status" => "error").increment(1);
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else if e.is_connect() {
                        "connection failed"
                    } else {
                        "request failed"
                    };
                    return Err(HubspotError::Retryable {
                        route,
                        status: None,
                        message: format!("{kind}: {}", without_url(&e)),
                        retry_after: None,
                    });
                }
            };
            let status = response.status();
            self.breaker.record(
                admission,
                status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT,
            );
            self.counts.record(status);
            metrics::counter!("paybridge_hubspot_calls_total", "route" => route, "status" => status_class(status)).increment(1);
            metrics::histogram!("paybridge_hubspot_call_seconds", "route" => route)
                .record(call_started.elapsed().as_secs_f64());
            self.observe_headers(response.headers());
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let json = read_json(response).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                self.rate_limited(route, bucket, &json, retry_after, started)
                    .await?;
                continue;
            }
            if status.is_success() {
                return Ok(Answer {
                    status: status.as_u16(),
                    body: json,
                });
            }
            return Err(refusal(route, status, json, retry_after));
        }
    }

    /// A 429: wait, do not fail. A rolling or secondly limit pauses the whole limiter until
    /// the window allows again (Ok: call again); a DAILY one holds every call until the
    /// account's day starts over, and so does a limit that outlasts `max_rate_limited`.
    async fn rate_limited(
        &self,
        route: &'static str,
        bucket: Bucket,
        json: &Value,
        retry_after: Option<Duration>,
        started: Instant,
    ) -> Result<(), HubspotError> {
        metrics::counter!("paybridge_hubspot_429_total", "route" => route).increment(1);
        let policy = json
            .get("policyName")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        if policy == "DAILY" {
            // Another call in flight may have set the hold already.
            if let Some(wait) = self.daily.held_for() {
                return Err(HubspotError::RateLimited {
                    policy,
                    retry_after: Some(wait),
                });
            }
            let usage = self
                .get_raw(&self.account_info("api-usage/daily/private-apps"))
                .await;
            let until = self
                .daily
                .reset_time(usage.and_then(|u| resets_at(&u, self.daily.now_ms())));
            self.daily.hold_until(until);
            let wait = Duration::from_millis((until - self.daily.now_ms()).max(0) as u64);
            tracing::warn!(
                route,
                wait_s = wait.as_secs(),
                "HubSpot's daily limit is spent; every call waits until it resets"
            );
            return Err(HubspotError::RateLimited {
                policy,
                retry_after: Some(wait),
            });
        }
        let min = retry_after.unwrap_or(match policy.as_str() {
            "SECONDLY" => Duration::from_secs(1),
            _ => Duration::from_secs(2),
        });
        tracing::warn!(route, policy = %policy, wait_ms = min.as_millis() as u64, "HubSpot answered 429; pausing every call");
        if started.elapsed() > self.max_rate_limited {
            return Err(HubspotError::RateLimited {
                policy,
                retry_after: Some(if retry_after.is_some() {
                    min
                } else {
                    Duration::from_secs(60)
                }),
            });
        }
        self.limiter.pause_for_window(bucket, min).await;
        Ok(())
    }

    /// A GET outside the retry loop (account info while the day's budget runs out): None
    /// for anything but a 2xx JSON answer.
    async fn get_raw(&self, path: &str) -> Option<Value> {
        self.limiter.acquire(Bucket::Standard).await;
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token.expose())
            .send()
            .await
            .ok()?;
        let status = response.status();
        self.counts.record(status);
        if !status.is_success() {
            return None;
        }
        Some(read_json(response).await).filter(Value::is_object)
    }

    /// Reads the account's time zone (for the daily limit's reset) while it can.
    pub async fn read_zone(&self) -> Option<AccountZone> {
        let details = self.get_raw(&self.account_info("details")).await?;
        let zone = AccountZone::from_details(&details)?;
        self.daily.remember_zone(zone.clone());
        Some(zone)
    }

    /// `X-HubSpot-RateLimit-Remaining: 0` means the account's window is spent (perhaps by
    /// another app or process sharing the token): hold everyone back for a moment.
    fn observe_headers(&self, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        self.daily.observe(
            number("x-hubspot-ratelimit-daily"),
            number("x-hubspot-ratelimit-daily-remaining"),
        );
        let remaining = number("x-hubspot-ratelimit-remaining");
        if remaining.is_some_and(|r| r <= 0) {
            let interval = headers
                .get("x-hubspot-ratelimit-interval-milliseconds")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(10_000);
            self.limiter
                .pause(Duration::from_millis((interval / 10).clamp(100, 2_000)));
        }
    }
}

/// The body as JSON (`Null` when empty, a string when not JSON), at most 4 MiB read.
async fn read_json(mut response: reqwest::Response) -> Value {
    const MAX: usize = 4 << 20;
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk[..chunk.len().min(MAX - bytes.len())]);
        if bytes.len() >= MAX {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        429 => "429",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// reqwest errors print the URL; ours carries no secret, but keep messages short.
fn without_url(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut text = String::new();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    if text.is_empty() { e.to_string() } else { text }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A non-429 failure in HubSpot's words: 408 and 5xx are worth retrying, the rest are not.
fn refusal(
    route: &'static str,
    status: StatusCode,
    json: Value,
    retry_after: Option<Duration>,
) -> HubspotError {
    let message = Some(super::answer::words(&json))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| truncate(&json.to_string(), 500));
    if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        return HubspotError::Retryable {
            route,
            status: Some(status.as_u16()),
            message,
            retry_after,
        };
    }
    HubspotError::Terminal {
        route,
        status: status.as_u16(),
        category: json
            .get("category")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_owned(),
        message,
        correlation_id: json
            .get("correlationId")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}
