use axum::extract::State;
use axum::http::StatusCode;

use super::PublicState;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The store answers: the process can take webhooks.
pub async fn readyz(State(state): State<PublicState>) -> (StatusCode, &'static str) {
    match state.intake.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
