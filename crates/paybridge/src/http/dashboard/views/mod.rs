//! The dashboard's handlers: each reads the store, shapes plain view values (strings
//! formatted here, so the templates only lay out), and renders a template. The index page
//! (`index`), its charts (`charts`), its reconcile card (`reconcile`), and one event's
//! page (`event`) each have a file; the
//! health strip and what they share live here.

mod charts;
mod event;
mod index;
mod reconcile;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::health::{self, INTAKE_WINDOW_MS, Tile};
use super::{DashboardState, secure};
use crate::domain::{EventStatus, time};
use crate::store::StoreError;

pub use event::{event, retry};
pub use index::index;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

const GREEN: &str = "#1a7f37";
const RED: &str = "#cf222e";
const AMBER: &str = "#9a6700";
const PURPLE: &str = "#8250df";
const GREY: &str = "#6e7781";
const BLUE: &str = "#0969da";
const ORANGE: &str = "#bc4c00";

pub fn status_label(s: EventStatus) -> &'static str {
    match s {
        EventStatus::NeedsAttention => "needs attention",
        other => other.as_str(),
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn store_error(state: &DashboardState, e: StoreError) -> Response {
    tracing::error!(error = %e, "the dashboard could not read the store");
    state.message(
        StatusCode::SERVICE_UNAVAILABLE,
        "The store could not be read",
        "paybridge could not read its database just now. Reload the page in a moment; the logs say why.",
    )
}

/// The strip as the page and `/health.json` show it.
#[derive(Debug, Serialize)]
pub struct HealthView {
    tiles: Vec<Tile>,
    at: String,
    attention: bool,
    source: String,
}

async fn health_view(state: &DashboardState) -> Result<HealthView, StoreError> {
    let now = state.now_ms();
    let counts = state
        .store()
        .health_counts(now - INTAKE_WINDOW_MS, now)
        .await?;
    let usage = state.sample();
    let tiles = health::tiles(&counts, &usage, now, state.inner.requests_per_10s);
    let uptime = state.inner.started.elapsed().as_millis() as f64;
    Ok(HealthView {
        attention: tiles.iter().any(|t| t.state == health::State::Alert),
        tiles,
        at: time::pattern(now, "%H:%M:%S UTC"),
        source: format!(
            "HubSpot budget and 429s: this process's own counters (its Prometheus recorder, /metrics), kept since it started {} ago; queue and events: the store.",
            time::duration_ms(uptime)
        ),
    })
}

pub async fn health_json(State(state): State<DashboardState>) -> Response {
    match health_view(&state).await {
        Ok(view) => {
            let mut response = Json(view).into_response();
            secure(&mut response, None);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "health.json could not read the store");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "error": "store_unavailable" })),
            )
                .into_response()
        }
    }
}
