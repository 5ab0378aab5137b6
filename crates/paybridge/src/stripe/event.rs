//! The Stripe event envelope, parsed tolerantly: unknown fields are ignored, both the
//! current (`2026-08-26.dahlia`) and pre-basil (`2024-06-20`) renderings are accepted.
//! Intake reads only what the queue needs (no tree of the whole object is built); the
//! worker parses the stored payload in full.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::{CustomerId, EventId};

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
    created: Option<i64>,
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
            Some("v2.core.event") => {
                return Err(not_event(
                    "thin events (v2.core.event) are not supported; configure a snapshot event destination",
                ));
            }
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
            .ok_or_else(|| not_event("`created` is missing"))?;
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
            object.customer.as_ref().and_then(customer_ref)
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

/// The Stripe customer an object belongs to: the customer itself, or its `customer`
/// field (an id, or an expanded object). Disputes and some charges have none.
pub fn customer_of(object: &Value) -> Option<CustomerId> {
    if object.get("object").and_then(Value::as_str) == Some("customer") {
        return object
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| CustomerId::parse(id).ok());
    }
    object.get("customer").and_then(customer_ref)
}
