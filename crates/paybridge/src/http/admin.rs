//! The admin listener: every route behind `Authorization: Bearer <server.admin_token>`
//! (compared in constant time); open only in sandbox mode when no token is configured.

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;

use crate::basics::Secret;
use crate::store::Store;

#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub token: Option<Secret>,
    /// Sandbox mode without a token: the admin routes are open (local demo only).
    pub open: bool,
    /// `POST /api/replay` (None without `stripe.api_key`).
    pub replayer: Option<crate::catchup::replay::Replayer>,
}

pub fn admin_router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .merge(super::api::routes())
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = match (&state.token, presented) {
        (Some(token), Some(presented)) => {
            bool::from(token.expose().as_bytes().ct_eq(presented.as_bytes()))
        }
        (Some(_), None) => false,
        (None, _) => state.open,
    };
    if allowed {
        return next.run(request).await;
    }
    let message = if state.token.is_none() {
        "the admin API is disabled: set server.admin_token"
    } else {
        "a valid Authorization: Bearer <server.admin_token> header is required"
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": "unauthorized", "message": message })),
    )
        .into_response()
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    // The queue depth is read on scrape: jobs waiting or running now.
    match state.store.queue_depth().await {
        Ok(depth) => metrics::gauge!("paybridge_queue_depth").set(depth as f64),
        Err(e) => tracing::warn!(error = %e, "queue depth unavailable for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics().render(),
    )
}
