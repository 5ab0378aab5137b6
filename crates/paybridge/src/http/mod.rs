//! HTTP: the public router (webhooks, health) and the admin router (API, metrics, dashboard).

mod admin;
mod api;
mod dashboard;
mod health;
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

/// `POST /webhooks/stripe`, `GET /healthz`, `GET /readyz`, with a span per request.
pub fn public_router(state: PublicState) -> Router {
    Router::new()
        .route("/webhooks/stripe", post(webhooks::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
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
}
