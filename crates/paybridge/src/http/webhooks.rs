//! `POST /webhooks/stripe`: verify → parse → intake (event + job, one transaction) → 200.
//! A refused request is answered 4xx and stored nowhere; a store that cannot write answers
//! 503 so Stripe retries.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::PublicState;
use crate::domain::EventSource;
use crate::intake::Received;
use crate::store::StoreError;
use crate::stripe::{Envelope, SignatureError, verify};

#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct IntakeResponse {
    pub received: bool,
    pub id: String,
    pub duplicate: bool,
    pub status: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    metrics::counter!("paybridge_webhooks_refused_total", "reason" => code).increment(1);
    tracing::warn!(status = status.as_u16(), reason = code, %message, "webhook refused");
    (
        status,
        Json(ErrorBody {
            error: code,
            message,
        }),
    )
        .into_response()
}

pub async fn receive(State(state): State<PublicState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let limit = state.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large(limit);
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let over_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.into_inner().is::<http_body_util::LengthLimitError>();
            if over_limit {
                return too_large(limit);
            }
            return refuse(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read".into(),
            );
        }
    };
    let Some(header) = headers.get("stripe-signature") else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "missing_signature",
            "the Stripe-Signature header is missing".into(),
        );
    };
    let Ok(header) = header.to_str() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "malformed_signature",
            "the Stripe-Signature header is not ASCII".into(),
        );
    };
    if let Err(e) = verify(
        header,
        &body,
        &state.secrets,
        state.tolerance_secs,
        state.clock.now_secs(),
    ) {
        if let SignatureError::OutsideTolerance { timestamp, now, .. } = &e {
            // Clock skew shows up here first: both clocks in the log line, not just the age.
            tracing::warn!(
                header_t = timestamp,
                server_clock = now,
                skew_secs = now - timestamp,
                "the signature's time is outside the tolerance; compare the server's clock with Stripe's (`paybridge check`)"
            );
        }
        return refuse(StatusCode::BAD_REQUEST, e.code(), e.to_string());
    }
    let envelope = match Envelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.code(), e.to_string()),
    };
    tracing::Span::current().record("event_id", envelope.id.as_str());
    match state
        .intake
        .receive(&envelope, body.to_vec(), EventSource::Webhook)
        .await
    {
        Ok(received) => {
            let outcome_label = match received {
                Received::Duplicate => "duplicate",
                Received::Ignored => "ignored",
                Received::Queued => "accepted",
            };
            metrics::counter!("paybridge_events_received_total", "type" => type_label(&envelope.kind), "outcome" => outcome_label).increment(1);
            metrics::histogram!("paybridge_intake_latency_seconds")
                .record(started.elapsed().as_secs_f64());
            tracing::info!(
                event_type = %envelope.kind,
                customer = envelope.customer.as_ref().map(|c| c.as_str()).unwrap_or("-"),
                outcome = outcome_label,
                "received"
            );
            Json(IntakeResponse {
                received: true,
                id: envelope.id.to_string(),
                duplicate: received == Received::Duplicate,
                status: match received.status() {
                    Some(status) => status.to_string(),
                    None => "duplicate".into(),
                },
            })
            .into_response()
        }
        Err(e) => {
            let code = match e {
                StoreError::Busy => "store_busy",
                StoreError::Closed => "shutting_down",
                StoreError::Db(_) => "store_unavailable",
            };
            tracing::error!(error = %e, "webhook not stored; answering 503 so Stripe retries");
            metrics::counter!("paybridge_webhooks_refused_total", "reason" => code).increment(1);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(ErrorBody {
                    error: code,
                    message: "the event could not be stored; retry later".into(),
                }),
            )
                .into_response()
        }
    }
}

fn too_large(limit: usize) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than server.max_body_bytes ({limit} bytes)"),
    )
}

/// A bounded label: the event's object class (any type name would make the label set as
/// large as Stripe's list of events, and rules may add types).
pub(crate) fn type_label(kind: &str) -> &'static str {
    let class = if kind.starts_with("customer.subscription.") {
        "subscription"
    } else {
        kind.split('.').next().unwrap_or("")
    };
    match class {
        "invoice" => "invoice",
        "charge" => "charge",
        "customer" => "customer",
        "subscription" => "subscription",
        "checkout" => "checkout",
        "payment_intent" => "payment_intent",
        "refund" => "refund",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::type_label;

    #[test]
    fn type_labels_are_a_small_fixed_set() {
        assert_eq!(type_label("invoice.payment_failed"), "invoice");
        assert_eq!(type_label("customer.subscription.deleted"), "subscription");
        assert_eq!(type_label("customer.updated"), "customer");
        assert_eq!(type_label("charge.dispute.created"), "charge");
        assert_eq!(type_label("checkout.session.completed"), "checkout");
        assert_eq!(type_label("payout.paid"), "other");
        assert_eq!(type_label(""), "other");
    }
}
