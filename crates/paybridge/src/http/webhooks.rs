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
use super::listener::BodyDeadline;
use super::throttle::{LogLimiter, monotonic_ms};
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

/// Refused webhooks are logged at most once a second; the line says how many were not.
static REFUSAL_LOG: LogLimiter = LogLimiter::new(1_000);

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    metrics::counter!("paybridge_webhooks_refused_total", "reason" => code).increment(1);
    if let Some(suppressed) = REFUSAL_LOG.admit(monotonic_ms()) {
        tracing::warn!(
            status = status.as_u16(),
            reason = code,
            %message,
            suppressed,
            "webhook refused"
        );
    }
    (
        status,
        Json(ErrorBody {
            error: code,
            message,
        }),
    )
        .into_response()
}

/// 503 with `Retry-After`: Stripe (and any client) retries later.
fn unavailable(code: &'static str, message: &str) -> Response {
    metrics::counter!("paybridge_webhooks_refused_total", "reason" => code).increment(1);
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        Json(ErrorBody {
            error: code,
            message: message.to_owned(),
        }),
    )
        .into_response()
}

/// Bodies being read at once, in KiB: a bound on the memory slow or large requests can
/// hold (64 MiB). A request that cannot get its share within a second is answered 503.
static BODY_BUDGET_KIB: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64 * 1024);

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
    let share = u32::try_from(declared.unwrap_or(limit).div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let Ok(Ok(_budget)) = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        BODY_BUDGET_KIB.acquire_many(share),
    )
    .await
    else {
        return unavailable("overloaded", "too many requests at once; retry later");
    };
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => return unreadable(e, limit),
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
            if let Some(suppressed) = STORE_LOG.admit(monotonic_ms()) {
                tracing::error!(error = %e, suppressed, "webhook not stored; answering 503 so Stripe retries");
            }
            unavailable(code, "the event could not be stored; retry later")
        }
    }
}

static STORE_LOG: LogLimiter = LogLimiter::new(1_000);

/// A body that could not be read: too large (413), too slow (408), or broken (400).
fn unreadable(e: axum::Error, limit: usize) -> Response {
    let cause = e.into_inner();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(cause.as_ref());
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return too_large(limit);
        }
        if s.is::<BodyDeadline>() {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body did not arrive in time".into(),
            );
        }
        source = s.source();
    }
    refuse(
        StatusCode::BAD_REQUEST,
        "unreadable_body",
        "the request body could not be read".into(),
    )
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::layer::SubscriberExt;

    use super::{StatusCode, refuse, type_label};

    /// Counts the WARN lines logged.
    struct Count(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            if *e.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn a_flood_of_refusals_logs_a_line_a_second() {
        let warned = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Count(warned.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..500 {
                let r = refuse(StatusCode::BAD_REQUEST, "missing_signature", "x".into());
                assert_eq!(r.status(), StatusCode::BAD_REQUEST, "each is still refused");
            }
        });
        let lines = warned.load(Ordering::Relaxed);
        // 500 refusals in well under a second or two: one line, two on a slow machine.
        assert!((1..=3).contains(&lines), "{lines} lines for 500 refusals");
    }

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
