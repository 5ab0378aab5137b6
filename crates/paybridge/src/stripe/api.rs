//! The few Stripe API reads paybridge makes: a customer (for the email charges and disputes
//! do not carry), the events list (replay), customers and subscriptions (backfill). Owns
//! Stripe's list paging (`limit`, `starting_after`, `has_more`) and the retry of reads.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::basics::Secret;

/// Stripe's maximum page size.
pub const MAX_PAGE: u64 = 100;
/// Attempts of a retried read (waiting 1 s, 2 s, 4 s, 8 s between them).
const READ_ATTEMPTS: u32 = 5;

#[derive(Clone)]
pub struct StripeApi {
    http: reqwest::Client,
    base: String,
    key: Secret,
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

impl StripeApi {
    pub fn new(base: &str, key: Secret) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .user_agent(concat!("paybridge/", env!("CARGO_PKG_VERSION")))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// GET `path` with query pairs; 404 → Ok(None).
    pub async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Option<Value>, StripeApiError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose())
            .query(query)
            .send()
            .await
            .map_err(|e| StripeApiError::Retryable {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(Some(body));
        }
        if status.as_u16() == 404 {
            return Ok(None);
        }
        let message = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(StripeApiError::Retryable {
                path: path.to_owned(),
                message: format!("{status}: {message}"),
            });
        }
        Err(StripeApiError::Refused {
            path: path.to_owned(),
            status: status.as_u16(),
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
                Err(StripeApiError::Retryable { path, message }) if attempt < READ_ATTEMPTS => {
                    tracing::warn!(%path, %message, attempt, "Stripe API call failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Err(ReadError::Cancelled),
                    }
                    delay *= 2;
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
        }
    }

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
}

impl Pager<'_> {
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
        let mut body = self.api.get_retrying(&self.path, &query, cancel).await?;
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
