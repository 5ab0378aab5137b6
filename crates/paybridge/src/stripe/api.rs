//! The few Stripe API reads paybridge makes: a customer (for the email charges and disputes
//! do not carry), a thin event's related object, a product's name, a disputed charge, the
//! events list (replay), customers and subscriptions (backfill). Owns Stripe's list paging
//! (`limit`, `starting_after`, `has_more`), the retry of reads and the request budget.
//!
//! Every request carries `Stripe-Version` (`[stripe] api_version`): "requests made with
//! curl use your Stripe account's default API version" otherwise
//! (docs.stripe.com/api/versioning), and the objects paybridge reads must have the shapes
//! it was written for (the fixtures model `2026-08-26.dahlia`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::limiter::StripeLimiter;
use crate::basics::Secret;

/// Stripe's maximum page size.
pub const MAX_PAGE: u64 = 100;
/// Attempts of a retried read (waiting 1 s, 2 s, 4 s, 8 s between them).
const READ_ATTEMPTS: u32 = 5;
/// The longest wait between the attempts of a patient read.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The version the fixtures (and so paybridge's reading of objects) model.
pub const DEFAULT_API_VERSION: &str = "2026-08-26.dahlia";
/// Requests per second paybridge allows itself by default (Stripe: 25 per endpoint).
pub const DEFAULT_REQUESTS_PER_S: u32 = 20;
/// The largest response body read from Stripe.
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct StripeApi {
    http: reqwest::Client,
    base: String,
    key: Secret,
    version: String,
    limiter: StripeLimiter,
    counts: Arc<Counts>,
}

/// What the client met, for progress lines.
#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    throttled: AtomicU64,
    retried: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    #[error("Stripe API {path}: {message}")]
    Retryable { path: String, message: String },
    #[error("Stripe API {path} answered {status}: {message}")]
    Refused {
        path: String,
        status: u16,
        message: String,
    },
}

/// Why a retried or paged read stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Api(#[from] StripeApiError),
    #[error("Stripe's answer to {0} is not a list")]
    NotAList(String),
    #[error("interrupted")]
    Cancelled,
}

/// The customer fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeCustomer {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub deleted: bool,
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// One answer of Stripe's API: the status, the JSON body, and the `Date` header.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The server's clock (RFC 9110 §6.6.1 `Date`), when sent: `check` compares clocks.
    pub date: Option<chrono::DateTime<chrono::Utc>>,
    /// `Stripe-Should-Retry`: "The API may ask us not to retry … or advise us to retry …;
    /// we defer to that" (stripe-node `RequestSender.js` `_shouldRetry`).
    pub should_retry: Option<bool>,
}

impl StripeApi {
    pub fn new(base: &str, key: Secret) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("paybridge/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            key,
            version: DEFAULT_API_VERSION.to_owned(),
            limiter: StripeLimiter::new(DEFAULT_REQUESTS_PER_S),
            counts: Arc::default(),
        })
    }

    /// Sends `Stripe-Version: version` (`[stripe] api_version`).
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// At most `per_second` requests in any second (`[stripe] requests_per_s`).
    pub fn with_rate(mut self, per_second: u32) -> Self {
        self.limiter = StripeLimiter::new(per_second);
        self
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Requests sent, 429s met, and retries made so far by this client (and its clones).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.counts.requests.load(Ordering::Relaxed),
            self.counts.throttled.load(Ordering::Relaxed),
            self.counts.retried.load(Ordering::Relaxed),
        )
    }

    /// GET `path` with query pairs and optional `Stripe-Context`, within the budget; the
    /// answer whatever its status (network failures are errors).
    pub async fn request(
        &self,
        path: &str,
        query: &[(String, String)],
        context: Option<&str>,
    ) -> Result<Answer, StripeApiError> {
        self.limiter.acquire().await;
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose())
            .header("Stripe-Version", &self.version)
            .query(query);
        if let Some(context) = context {
            request = request.header("Stripe-Context", context);
        }
        let retryable = |message: String| StripeApiError::Retryable {
            path: path.to_owned(),
            message,
        };
        let mut response = request
            .send()
            .await
            .map_err(|e| retryable(e.without_url().to_string()))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let date = header("date")
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(&d).ok())
            .map(|d| d.with_timezone(&chrono::Utc));
        let should_retry = header("stripe-should-retry").map(|v| v == "true");
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| retryable(e.without_url().to_string()))?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(retryable(format!(
                    "the answer is larger than {MAX_BODY} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            date,
            should_retry,
        })
    }

    /// GET `path` with query pairs; 404 → Ok(None).
    pub async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Option<Value>, StripeApiError> {
        self.get_in(path, query, None).await
    }

    /// [`Self::get`] in a `Stripe-Context` (a thin event's `context`).
    pub async fn get_in(
        &self,
        path: &str,
        query: &[(String, String)],
        context: Option<&str>,
    ) -> Result<Option<Value>, StripeApiError> {
        let answer = self.request(path, query, context).await?;
        let status = answer.status;
        if (200..300).contains(&status) {
            return Ok(Some(answer.body));
        }
        if status == 404 {
            return Ok(None);
        }
        let message = answer
            .body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        if status == 429 {
            self.counts.throttled.fetch_add(1, Ordering::Relaxed);
        }
        let retry = answer
            .should_retry
            .unwrap_or(status == 429 || status == 409 || status >= 500);
        if retry {
            return Err(StripeApiError::Retryable {
                path: path.to_owned(),
                message: format!("{status}: {message}"),
            });
        }
        Err(StripeApiError::Refused {
            path: path.to_owned(),
            status,
            message,
        })
    }

    /// GET `path`, retried on Stripe's 429s, 5xx and network errors (1 s, 2 s, 4 s, 8 s);
    /// a 404 is an error here (the lists read this way always exist).
    pub async fn get_retrying(
        &self,
        path: &str,
        query: &[(String, String)],
        cancel: &CancellationToken,
    ) -> Result<Value, ReadError> {
        self.get_with_retries(path, query, cancel, Some(READ_ATTEMPTS))
            .await
    }

    /// [`Self::get_retrying`] with `attempts` (None: until it works or is cancelled, the
    /// wait doubling up to a minute: a backfill outlives Stripe's 429s and outages).
    async fn get_with_retries(
        &self,
        path: &str,
        query: &[(String, String)],
        cancel: &CancellationToken,
        attempts: Option<u32>,
    ) -> Result<Value, ReadError> {
        let mut delay = Duration::from_secs(1);
        let mut attempt = 1;
        loop {
            match self.get(path, query).await {
                Ok(Some(body)) => return Ok(body),
                Ok(None) => {
                    return Err(StripeApiError::Refused {
                        path: path.to_owned(),
                        status: 404,
                        message: "not found".into(),
                    }
                    .into());
                }
                Err(StripeApiError::Retryable { path, message })
                    if attempts.is_none_or(|a| attempt < a) =>
                {
                    tracing::warn!(%path, %message, attempt, wait_ms = delay.as_millis() as u64, "Stripe API call failed; retrying");
                    self.counts.retried.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(ReadError::Cancelled),
                    }
                    delay = (delay * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The list at `path` (with `query`), page by page: see [`Pager`].
    pub fn pages(&self, path: &str, query: Vec<(String, String)>) -> Pager<'_> {
        Pager {
            api: self,
            path: path.to_owned(),
            query,
            limit: MAX_PAGE,
            after: None,
            done: false,
            attempts: Some(READ_ATTEMPTS),
        }
    }

    /// A product's name and whether it is active (`GET /v1/products/{id}`, stripe-node
    /// `Products.d.ts`: `name` "The product's name, meant to be displayable to the
    /// customer"). None: no such product (a deleted one answers 404 `resource_missing`).
    pub async fn product(
        &self,
        id: &str,
    ) -> Result<Option<(Option<String>, Option<bool>)>, StripeApiError> {
        let Some(body) = self.get(&format!("/v1/products/{id}"), &[]).await? else {
            return Ok(None);
        };
        Ok(Some((
            body.get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            body.get("active").and_then(Value::as_bool),
        )))
    }

    /// A customer (`GET /v1/customers/{id}`; an Accounts v2 `acct_…` works there too:
    /// "You can also retrieve or update customer-configured Accounts using the
    /// /v1/customers endpoint", docs.stripe.com/connect/use-accounts-as-customers).
    pub async fn customer(&self, id: &str) -> Result<Option<StripeCustomer>, StripeApiError> {
        let Some(body) = self.get(&format!("/v1/customers/{id}"), &[]).await? else {
            return Ok(None);
        };
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Ok(Some(StripeCustomer {
            id: text("id").unwrap_or_else(|| id.to_owned()),
            email: text("email").map(|e| e.trim().to_ascii_lowercase()),
            name: text("name"),
            deleted: body
                .get("deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            metadata: body
                .get("metadata")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }
}

/// A Stripe list read page by page, newest first: each page asks for the objects after the
/// last one of the page before (`starting_after`) until Stripe says there are no more.
/// Every page is a [`StripeApi::get_retrying`].
pub struct Pager<'a> {
    api: &'a StripeApi,
    path: String,
    query: Vec<(String, String)>,
    limit: u64,
    after: Option<String>,
    done: bool,
    attempts: Option<u32>,
}

impl Pager<'_> {
    /// Every page is retried until it is read (or the run is cancelled): 429s and 5xx
    /// never end the list.
    pub fn patient(mut self) -> Self {
        self.attempts = None;
        self
    }

    /// Starts after the object `cursor` (a list read before, resumed).
    pub fn starting_after(mut self, cursor: Option<String>) -> Self {
        self.after = cursor;
        self
    }

    /// The size of the next pages (at most [`MAX_PAGE`]).
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit.min(MAX_PAGE);
    }

    /// The id of the last object read so far (or the starting cursor).
    pub fn cursor(&self) -> Option<&str> {
        self.after.as_deref()
    }

    /// Whether Stripe has more after the pages read so far.
    pub fn has_more(&self) -> bool {
        !self.done
    }

    /// The next page's objects (possibly none), or None once the list is exhausted.
    pub async fn next(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<Value>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        if cancel.is_cancelled() {
            return Err(ReadError::Cancelled);
        }
        let mut query = self.query.clone();
        query.push(("limit".to_owned(), self.limit.to_string()));
        if let Some(after) = &self.after {
            query.push(("starting_after".to_owned(), after.clone()));
        }
        let mut body = self
            .api
            .get_with_retries(&self.path, &query, cancel, self.attempts)
            .await?;
        let has_more = body
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let Some(Value::Array(data)) = body.get_mut("data").map(Value::take) else {
            return Err(ReadError::NotAList(self.path.clone()));
        };
        let last = data
            .last()
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.done = !has_more || last.is_none();
        if last.is_some() {
            self.after = last;
        }
        Ok(Some(data))
    }
}
