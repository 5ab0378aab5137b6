//! The admin JSON API (SPEC §4), behind the admin listener's bearer token:
//! - `GET /api/events?status&type&customer&limit&after` — the event log, newest first;
//!   `after` is the last id of the previous page;
//! - `GET /api/events/{id}` — one event: a payload summary without card data, every step
//!   with its timing and result, the timeline;
//! - `POST /api/events/{id}/retry` — run a failed, dead or finished event again;
//! - `POST /api/replay` — the replay of `paybridge replay`, answering its counts.
//!
//! Errors are JSON: `{"error": code, "message": text}`.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::AdminState;
use crate::catchup::replay::{ReplayError, ReplayRequest, parse_since};
use crate::domain::{EventId, EventStatus};
use crate::store::{EventFilter, StepRecord};

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/events", get(list))
        .route("/api/events/{id}", get(show))
        .route("/api/events/{id}/retry", post(retry))
        .route("/api/replay", post(replay))
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "admin API: store read failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store could not be read; try again",
    )
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    customer: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

const MAX_LIMIT: u32 = 1_000;

async fn list(
    State(state): State<AdminState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_query", e.body_text()),
    };
    let status = match q
        .status
        .as_deref()
        .map(str::parse::<EventStatus>)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_status", e),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        );
    }
    let filter = EventFilter {
        status,
        kind: q.kind,
        customer: q.customer,
        after: q.after,
        limit: limit + 1,
    };
    match state.store.list_events(&filter).await {
        Ok(mut events) => {
            let has_more = events.len() > limit as usize;
            events.truncate(limit as usize);
            Json(json!({ "data": events, "has_more": has_more })).into_response()
        }
        Err(e) => internal(e),
    }
}

/// A step as the API shows it: its record and how long it took.
#[derive(Serialize)]
struct StepView<'a> {
    #[serde(flatten)]
    step: &'a StepRecord,
    duration_ms: Option<i64>,
}

async fn show(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let id = match EventId::parse(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_id", e.to_string()),
    };
    let record = match state.store.get_event(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no event {id} in the store"),
            );
        }
        Err(e) => return internal(e),
    };
    let (steps, timeline) = match tokio::try_join!(
        state.store.steps_of(id.as_str()),
        state.store.timeline(id.as_str())
    ) {
        Ok(both) => both,
        Err(e) => return internal(e),
    };
    let steps: Vec<StepView> = steps
        .iter()
        .map(|s| StepView {
            step: s,
            duration_ms: s.finished_at.map(|f| f - s.started_at),
        })
        .collect();
    Json(json!({
        "event": record.summary,
        // None once purged by retention; never card data (see stripe::summary).
        "payload": record.payload.as_deref().map(crate::stripe::summary::summarise),
        "steps": steps,
        "timeline": timeline,
    }))
    .into_response()
}

async fn retry(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let id = match EventId::parse(&id) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_id", e.to_string()),
    };
    let summary = match state.store.get_event_summary(id.as_str()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no event {id} in the store"),
            );
        }
        Err(e) => return internal(e),
    };
    match state.store.retry_events(&[id.to_string()]).await {
        Ok(back) if back.iter().any(|b| b == id.as_str()) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "status": "pending", "retried": true })),
        )
            .into_response(),
        Ok(_) => error(
            StatusCode::CONFLICT,
            "not_retryable",
            format!(
                "event {id} is {}: only a failed, dead or finished event can be run again",
                summary.status
            ),
        ),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
struct ReplayBody {
    since: String,
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    undelivered: bool,
}

async fn replay(
    State(state): State<AdminState>,
    body: Result<Json<ReplayBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_body", e.body_text()),
    };
    let Some(replayer) = &state.replayer else {
        return error(
            StatusCode::CONFLICT,
            "stripe_api_not_configured",
            "stripe.api_key is not set: replay reads Stripe's Events API",
        );
    };
    let since = match parse_since(&body.since, replayer.store().clock().now_secs()) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_since", e),
    };
    let request = ReplayRequest {
        since,
        types: body.types,
        undelivered: body.undelivered,
    };
    let result = replayer
        .run(&request, &CancellationToken::new(), &mut |_| {})
        .await;
    let label = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("paybridge_replay_runs_total", "trigger" => "api", "result" => label)
        .increment(1);
    match result {
        Ok(counts) => Json(counts).into_response(),
        Err(ReplayError::Stripe(e)) => {
            error(StatusCode::BAD_GATEWAY, "stripe_error", e.to_string())
        }
        Err(e) => internal(e),
    }
}
