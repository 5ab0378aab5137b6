//! The Stripe event envelope, parsed tolerantly: unknown fields are ignored, both the
//! current (`2026-08-26.dahlia`) and pre-basil (`2024-06-20`) renderings are accepted, and
//! so are thin events (`v2.core.event`, see `thin`), which name no customer until fetched.
//! Intake reads only what the queue needs (no tree of the whole object is built); the
//! worker parses the stored payload in full.

use serde::Deserialize;
use serde_json::Value;

use super::thin;
use crate::domain::{CustomerId, EventId, PayloadKind};

/// The fields of a snapshot event we rely on.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: EventId,
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub account: Option<String>,
    /// `data.object.object`, e.g. `invoice`.
    pub object_type: Option<String>,
    pub customer: Option<CustomerId>,
    /// Snapshot, or thin (the object is fetched by the worker).
    pub payload_kind: PayloadKind,
    /// A guest payment's email (no customer): the lane that keeps one person's guest
    /// payments in order.
    pub guest_email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a Stripe event: {0}")]
    NotAnEvent(String),
}

impl EnvelopeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::NotAnEvent(_) => "not_a_stripe_event",
        }
    }
}

#[derive(Deserialize)]
struct Raw {
    id: Option<String>,
    object: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Unix seconds for snapshot events, an RFC 3339 string for thin ones.
    created: Option<Value>,
    #[serde(default)]
    livemode: bool,
    api_version: Option<String>,
    account: Option<String>,
    data: Option<RawData>,
}

#[derive(Deserialize)]
struct RawData {
    object: Option<RawObject>,
}

/// The few fields of `data.object` intake needs; the rest is skipped without allocating.
#[derive(Deserialize)]
struct RawObject {
    id: Option<String>,
    object: Option<String>,
    customer: Option<Value>,
    customer_account: Option<Value>,
    receipt_email: Option<String>,
    customer_details: Option<RawEmail>,
    billing_details: Option<RawEmail>,
}

#[derive(Deserialize)]
struct RawEmail {
    email: Option<String>,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let raw: Raw = serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                EnvelopeError::NotAnEvent(format!("a field has the wrong type: {e}"))
            }
            _ => EnvelopeError::NotJson(e.to_string()),
        })?;
        let not_event = |why: &str| EnvelopeError::NotAnEvent(why.to_owned());
        match raw.object.as_deref() {
            Some("event") => {}
            Some("v2.core.event") => return Self::thin(body),
            Some(other) => {
                return Err(EnvelopeError::NotAnEvent(format!(
                    "`object` is `{other}`, expected `event`"
                )));
            }
            None => return Err(not_event("`object` is missing")),
        }
        let id = raw.id.ok_or_else(|| not_event("`id` is missing"))?;
        let id = EventId::parse(&id).map_err(|e| EnvelopeError::NotAnEvent(e.to_string()))?;
        let kind = raw.kind.ok_or_else(|| not_event("`type` is missing"))?;
        if kind.is_empty()
            || kind.len() > 100
            || !kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        {
            return Err(not_event("`type` is not an event type name"));
        }
        let created = raw
            .created
            .as_ref()
            .and_then(Value::as_i64)
            .ok_or_else(|| not_event("`created` is missing or not unix seconds"))?;
        let object = raw
            .data
            .and_then(|d| d.object)
            .ok_or_else(|| not_event("`data.object` is missing or not an object"))?;
        let customer = if object.object.as_deref() == Some("customer") {
            object
                .id
                .as_deref()
                .and_then(|id| CustomerId::parse(id).ok())
        } else {
            object
                .customer
                .as_ref()
                .and_then(customer_ref)
                .or_else(|| object.customer_account.as_ref().and_then(customer_ref))
        };
        let guest_email = match customer {
            Some(_) => None,
            None => [
                object.customer_details.and_then(|d| d.email),
                object.receipt_email,
                object.billing_details.and_then(|d| d.email),
            ]
            .into_iter()
            .flatten()
            .map(|e| e.trim().to_ascii_lowercase())
            .find(|e| !e.is_empty() && e.len() <= 254),
        };
        Ok(Self {
            id,
            kind,
            created,
            livemode: raw.livemode,
            api_version: raw.api_version,
            account: raw.account,
            object_type: object.object,
            customer,
            payload_kind: PayloadKind::Snapshot,
            guest_email,
        })
    }

    /// A thin event: stored under its snapshot name, with no customer until the worker
    /// fetches its object.
    fn thin(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        let t = thin::parse(&value)?;
        Ok(Self {
            id: t.id,
            kind: t.kind,
            created: t.created,
            livemode: t.livemode,
            api_version: None,
            account: t.context,
            object_type: t.related.and_then(|r| r.kind),
            customer: None,
            payload_kind: PayloadKind::Thin,
            guest_email: None,
        })
    }
}

/// A `customer` field: an id, or an expanded object with an id.
fn customer_ref(value: &Value) -> Option<CustomerId> {
    match value {
        Value::String(id) => CustomerId::parse(id).ok(),
        Value::Object(expanded) => expanded
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| CustomerId::parse(id).ok()),
        _ => None,
    }
}

/// The customers of a page of Stripe's customer list that are not deleted, with their ids.
pub fn live_customers(page: &[Value]) -> Vec<(String, &Value)> {
    page.iter()
        .filter(|c| c.get("deleted").and_then(Value::as_bool) != Some(true))
        .filter_map(|c| Some((c.get("id").and_then(Value::as_str)?.to_owned(), c)))
        .collect()
}

/// The Stripe customer an object belongs to: the customer itself, or its `customer`
/// field (an id, or an expanded object). Disputes and some charges have none.
pub fn customer_of(object: &Value) -> Option<CustomerId> {
    if object.get("object").and_then(Value::as_str) == Some("customer") {
        return object
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| CustomerId::parse(id).ok());
    }
    object
        .get("customer")
        .and_then(customer_ref)
        .or_else(|| object.get("customer_account").and_then(customer_ref))
}
