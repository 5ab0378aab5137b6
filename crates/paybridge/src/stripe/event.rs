//! The Stripe event envelope, parsed tolerantly: unknown fields are ignored, both the
//! current (`2026-08-26.dahlia`) and pre-basil (`2024-06-20`) renderings are accepted.

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
    pub object: Value,
    pub previous_attributes: Option<Value>,
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
    object: Option<Value>,
    previous_attributes: Option<Value>,
}

impl Envelope {
    pub fn parse(body: &[u8]) -> Result<Self, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson(e.to_string()))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, EnvelopeError> {
        let not_event = |why: &str| EnvelopeError::NotAnEvent(why.to_owned());
        if !value.is_object() {
            return Err(not_event("the JSON is not an object"));
        }
        let raw: Raw = serde_json::from_value(value)
            .map_err(|e| EnvelopeError::NotAnEvent(format!("a field has the wrong type: {e}")))?;
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
        let data = raw.data.ok_or_else(|| not_event("`data` is missing"))?;
        let object = data
            .object
            .filter(Value::is_object)
            .ok_or_else(|| not_event("`data.object` is missing or not an object"))?;
        let customer = customer_of(&object);
        Ok(Self {
            id,
            kind,
            created,
            livemode: raw.livemode,
            api_version: raw.api_version,
            account: raw.account,
            object,
            previous_attributes: data.previous_attributes.filter(|v| !v.is_null()),
            customer,
        })
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
    match object.get("customer") {
        Some(Value::String(id)) => CustomerId::parse(id).ok(),
        Some(Value::Object(expanded)) => expanded
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| CustomerId::parse(id).ok()),
        _ => None,
    }
}
