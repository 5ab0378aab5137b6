//! HTTP: the public router (webhooks, health) and the admin router (API, metrics, dashboard).

mod admin;
mod api;
mod dashboard;
mod health;
pub mod listener;
pub mod throttle;
pub mod tls;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::basics::Secret;
use crate::domain::Clock;
use crate::intake::Intake;

pub use admin::{AdminState, admin_router};
pub use dashboard::{DashboardState, router as dashboard_router};
pub use webhooks::IntakeResponse;

/// What the public routes need.
#[derive(Clone)]
pub struct PublicState {
    /// Where verified events go (and whose store `/readyz` pings).
    pub intake: Intake,
    pub secrets: Arc<Vec<Secret>>,
    pub tolerance_secs: i64,
    pub max_body_bytes: usize,
    pub clock: Clock,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request id a client may choose: short and plain (letters, digits, `-`, `_`, `.`),
/// so it cannot forge fields or flood a log line. Any other is replaced by a fresh one.
pub fn acceptable_request_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Drops an `x-request-id` that is not [`acceptable_request_id`] (one is then generated).
async fn screen_request_id(mut request: Request<axum::body::Body>) -> Request<axum::body::Body> {
    let headers = request.headers_mut();
    let ids = headers.get_all(&REQUEST_ID).iter().count();
    let keep = ids == 1
        && headers
            .get(&REQUEST_ID)
            .is_some_and(|v| acceptable_request_id(v.as_bytes()));
    if !keep {
        headers.remove(&REQUEST_ID);
    }
    request
}

/// `POST /webhooks/stripe`, `GET /healthz`, `GET /readyz`, with a span per request.
pub fn public_router(state: PublicState) -> Router {
    with_request_ids(
        Router::new()
            .route("/webhooks/stripe", post(webhooks::receive))
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .with_state(state),
    )
}

/// A span per request carrying its id (generated, or the client's when acceptable), echoed
/// in the response's `x-request-id`.
pub fn with_request_ids(router: Router) -> Router {
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %request_id,
                    event_id = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::map_request(screen_request_id))
}
