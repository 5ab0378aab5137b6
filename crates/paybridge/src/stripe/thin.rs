//! Thin events (`"object": "v2.core.event"`): what Stripe delivers to a destination whose
//! payload style is `thin`, and how the worker turns one into the snapshot shape the rest
//! of paybridge reads.
//!
//! The delivery (stripe-node 23.1.0 `V2/Core/Events.d.ts` `EventNotificationBase`;
//! stripe-python 16.1.0 `stripe/v2/core/_event.py` `EventNotification`; example at
//! docs.stripe.com/changelog/acacia/2024-09-30/api-v2-thin-events):
//!
//! ```json
//! {"id": "evt_test_65R9…", "object": "v2.core.event", "type": "v1.invoice.paid",
//!  "livemode": false, "created": "2024-09-17T06:20:52.246Z",
//!  "context": null, "reason": null,
//!  "related_object": {"id": "in_…", "type": "invoice", "url": "/v1/invoices/in_…"}}
//! ```
//!
//! - `created` is an RFC 3339 string, not unix seconds;
//! - `context` and `reason` may be absent or null; `related_object` may be absent, null,
//!   or without `id` (singletons such as `v1.balance.available`);
//! - there is no `data`: "The payload of thin events is unversioned. During processing,
//!   you must fetch the versioned event from the API or fetch the resource's current
//!   state" (docs.stripe.com/api/v2/core/events/event-types). The SDKs'
//!   `fetchRelatedObject()` is `GET related_object.url` with `Stripe-Context: <context>`
//!   when set (stripe-node `_buildEventNotification`; stripe-php
//!   `fetchRelatedObject`), which a restricted read key may call — unlike
//!   `/v2/core/events/{id}` ("You can only access APIs in the /v2 namespace with secret
//!   keys", docs.stripe.com/api-v2-overview);
//! - v1 resources are named with a `v1.` prefix: "subscribe to `v1.customer.created`
//!   instead of `customer.created`" (docs.stripe.com/changelog/endive/2026-09-30/
//!   thin-events-for-api-v1-resources-generally-available). paybridge stores such an event
//!   under its snapshot name, so `on = ["invoice.paid"]` matches both styles.
//!
//! `related_object.type` is not switched on: its values for v1 resources are not published
//! for every type (`"billing.meter"` in Stripe's example); the URL says what to fetch.

use serde_json::{Value, json};

use super::event::EnvelopeError;
use crate::domain::EventId;

/// The longest related-object URL paybridge fetches.
const MAX_URL: usize = 512;

/// A thin event as delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinEvent {
    pub id: EventId,
    /// Stripe's name, e.g. `v1.invoice.payment_failed`.
    pub stripe_type: String,
    /// The snapshot name paybridge stores and matches rules on, e.g. `invoice.payment_failed`.
    pub kind: String,
    /// Unix seconds (from the RFC 3339 `created`).
    pub created: i64,
    pub livemode: bool,
    /// Sent back as `Stripe-Context` when fetching (a connected account's id).
    pub context: Option<String>,
    pub related: Option<RelatedObject>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedObject {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub url: String,
}

/// The snapshot name of a thin event type: `v1.invoice.paid` → `invoice.paid`; v2 types
/// (`v2.core.account.created`) keep their name (they have no snapshot twin).
pub fn snapshot_type(stripe_type: &str) -> &str {
    stripe_type.strip_prefix("v1.").unwrap_or(stripe_type)
}

fn not_event(why: impl Into<String>) -> EnvelopeError {
    EnvelopeError::NotAnEvent(why.into())
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Reads a thin event from its parsed JSON (`object` already checked).
pub fn parse(v: &Value) -> Result<ThinEvent, EnvelopeError> {
    let id = text(v, "id").ok_or_else(|| not_event("`id` is missing"))?;
    let id = EventId::parse(&id).map_err(|e| not_event(e.to_string()))?;
    let stripe_type = text(v, "type").ok_or_else(|| not_event("`type` is missing"))?;
    if stripe_type.len() > 100
        || !stripe_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    {
        return Err(not_event("`type` is not an event type name"));
    }
    let created = match v.get("created") {
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| not_event(format!("`created` is not an RFC 3339 time: {e}")))?
            .timestamp(),
        // Tolerated: a number of unix seconds (never seen from Stripe for thin events).
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| not_event("`created` is not a time"))?,
        _ => return Err(not_event("`created` is missing")),
    };
    let related = match v.get("related_object") {
        Some(Value::Object(_)) => {
            let r = &v["related_object"];
            let url = text(r, "url").ok_or_else(|| not_event("`related_object.url` is missing"))?;
            Some(RelatedObject {
                id: text(r, "id"),
                kind: text(r, "type"),
                url,
            })
        }
        None | Some(Value::Null) => None,
        Some(_) => return Err(not_event("`related_object` is not an object")),
    };
    Ok(ThinEvent {
        kind: snapshot_type(&stripe_type).to_owned(),
        stripe_type,
        id,
        created,
        livemode: v.get("livemode").and_then(Value::as_bool).unwrap_or(false),
        context: text(v, "context"),
        related,
    })
}

impl ThinEvent {
    /// The path to fetch (`related_object.url`), checked: a relative `/v1/…` or `/v2/…`
    /// path of plain characters, so a forged or odd URL can never send the API key
    /// anywhere but the configured Stripe API base.
    pub fn fetch_path(&self) -> Result<&str, String> {
        let Some(related) = &self.related else {
            return Err(format!(
                "the thin event {} ({}) has no related_object to fetch",
                self.id, self.stripe_type
            ));
        };
        let url = related.url.as_str();
        let plain = url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
        if url.len() > MAX_URL
            || !(url.starts_with("/v1/") || url.starts_with("/v2/"))
            || !plain
            || url.contains("..")
            || url.contains("//")
        {
            return Err(format!(
                "related_object.url `{}` is not a Stripe API path paybridge fetches",
                url.chars().take(80).collect::<String>()
            ));
        }
        Ok(url)
    }

    /// The snapshot event paybridge reads: this event's id, snapshot type and time around
    /// the object fetched from `related_object.url` (its current state).
    pub fn as_snapshot(&self, object: Value) -> Value {
        json!({
            "id": self.id.as_str(),
            "object": "event",
            "api_version": Value::Null,
            "created": self.created,
            "livemode": self.livemode,
            "type": self.kind,
            "data": { "object": object },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Value {
        let path = format!(
            "{}/fixtures/stripe/story-2/v2.core.event.v1.invoice.payment_failed.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("JSON")
    }

    #[test]
    fn the_published_shape_is_read() {
        let e = parse(&fixture()).expect("thin event");
        assert_eq!(e.stripe_type, "v1.invoice.payment_failed");
        assert_eq!(e.kind, "invoice.payment_failed");
        assert_eq!(e.created, 1791112807, "2026-10-04T11:20:07.412Z");
        assert!(!e.livemode);
        assert_eq!(e.context, None);
        assert_eq!(
            e.fetch_path(),
            Ok("/v1/invoices/in_1SBxE9QmT3xK8rLvR3tY6uIo")
        );
    }

    #[test]
    fn context_and_reason_may_be_absent_and_related_object_missing() {
        // The SDK tests' shape: no `reason`, a `context` string.
        let sdk = json!({"id":"evt_123","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","livemode":false,"created":"2022-02-15T00:27:45.330Z","context":"event_context_456","related_object":{"id":"mtr_123","type":"billing.meter","url":"/v1/billing/meters/mtr_123"}});
        let e = parse(&sdk).expect("thin event");
        assert_eq!(e.context.as_deref(), Some("event_context_456"));
        assert_eq!(e.kind, "billing.meter.error_report_triggered");
        let mut bare = fixture();
        let o = bare.as_object_mut().expect("object");
        o.remove("context");
        o.remove("reason");
        o.remove("related_object");
        let e = parse(&bare).expect("still a thin event");
        assert!(e.fetch_path().is_err(), "nothing to fetch");
        let singleton = json!({"id":"evt_1","object":"v2.core.event","type":"v1.balance.available","created":"2026-10-04T11:20:07Z","related_object":{"type":"balance","url":"/v1/balance"}});
        assert_eq!(
            parse(&singleton).expect("ok").fetch_path(),
            Ok("/v1/balance")
        );
    }

    #[test]
    fn only_plain_stripe_paths_are_fetched() {
        let mut e = parse(&fixture()).expect("thin event");
        for bad in [
            "https://evil.example/v1/invoices/in_1",
            "//evil.example/v1/x",
            "/v1/../admin",
            "/v1/invoices/in_1?expand[]=x",
            "/v1/invoices/in_1 ",
            "v1/invoices/in_1",
            "/internal/v1",
        ] {
            e.related = Some(RelatedObject {
                id: None,
                kind: None,
                url: bad.to_owned(),
            });
            assert!(e.fetch_path().is_err(), "{bad}");
        }
    }

    #[test]
    fn v2_types_keep_their_name_and_bad_times_are_refused() {
        assert_eq!(
            snapshot_type("v2.core.account.created"),
            "v2.core.account.created"
        );
        assert_eq!(
            snapshot_type("v1.customer.subscription.past_due"),
            "customer.subscription.past_due"
        );
        let mut v = fixture();
        v["created"] = json!("yesterday");
        assert!(parse(&v).is_err());
    }
}
