//! The few Stripe API reads paybridge makes: a customer (for the email charges and disputes
//! do not carry), the events list (replay), customers and subscriptions (backfill).

use std::time::Duration;

use serde_json::Value;

use crate::basics::Secret;

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
