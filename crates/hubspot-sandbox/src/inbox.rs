//! A catch-all receiver for outbound webhooks: `POST /_sandbox/inbox/{name}` records the
//! request (no auth, no rate limit, no faults), so that a config's Slack messages and
//! provisioning calls have somewhere to go while it runs against the sandbox. What arrived
//! is listed under `inbox` in `GET /_sandbox/state`; `/_sandbox/reset` empties it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::clock;
use crate::state::Shared;

/// One request received by an inbox.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub name: String,
    /// Header names lowercased; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body as JSON when it parses, else as text.
    pub body: Value,
    pub at: DateTime<Utc>,
}

impl Message {
    pub(crate) fn json(&self) -> Value {
        json!({
            "name": self.name,
            "headers": self.headers,
            "body": self.body,
            "at": clock::iso(self.at),
        })
    }
}

/// Records the request and answers `200 ok` (as Slack's incoming webhooks do; any 2xx ends
/// paybridge's retries).
pub(crate) async fn receive(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut recorded: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        recorded
            .entry(key.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let body = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    s.crm().inbox.push(Message {
        name,
        headers: recorded,
        body,
        at: clock::wall(),
    });
    (StatusCode::OK, "ok").into_response()
}
