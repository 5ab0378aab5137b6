//! `GET /events/{id}`: one event with its payload summary, steps and timeline; and
//! `POST /events/{id}/retry`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::{status_label, store_error};
use crate::domain::{EventId, EventStatus, time};
use crate::http::dashboard::DashboardState;
use crate::http::dashboard::auth::{CsrfForm, Principal, encode_component, same_origin};
use crate::store::{StepRecord, StoreError};

#[derive(Debug, Default, Deserialize)]
pub struct EventQuery {
    retried: Option<String>,
}

#[derive(Debug, Serialize)]
struct StepView {
    key: String,
    rule: String,
    kind: String,
    status: String,
    call: String,
    result: String,
    error: String,
    started: String,
    took: String,
}

/// A step's detail or result as a person reads it: `key: value` pairs, nested objects as
/// `name=value`, the action's `type` (already in the Step column) and empty values left out.
fn readable(v: Option<&serde_json::Value>, max: usize) -> String {
    use serde_json::Value as J;
    fn scalar(v: &J) -> String {
        match v {
            J::String(s) => s.clone(),
            J::Object(o) => o
                .iter()
                .filter(|(_, v)| !is_empty(v))
                .map(|(k, v)| format!("{k}={}", scalar(v)))
                .collect::<Vec<_>>()
                .join(", "),
            J::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    fn is_empty(v: &J) -> bool {
        match v {
            J::Null => true,
            J::Object(o) => o.is_empty(),
            J::Array(a) => a.is_empty(),
            J::String(s) => s.is_empty(),
            _ => false,
        }
    }
    let Some(v) = v else {
        return String::new();
    };
    let text = match v {
        J::Object(o) => o
            .iter()
            .filter(|(k, v)| k.as_str() != "type" && !is_empty(v))
            .map(|(k, v)| format!("{}: {}", k.replace('_', " "), scalar(v)))
            .collect::<Vec<_>>()
            .join("; "),
        other => scalar(other),
    };
    if text.chars().count() > max {
        text.chars().take(max - 1).collect::<String>() + "…"
    } else {
        text
    }
}

/// The payload's summary as (label, value) pairs.
fn payload_pairs(payload: &[u8]) -> Vec<(String, String)> {
    let summary = crate::stripe::summary::summarise(payload);
    summary
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.replace('_', " "),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn step_view(s: &StepRecord) -> StepView {
    StepView {
        key: s.key.clone(),
        rule: s.rule.clone(),
        kind: s.kind.replace('_', " "),
        status: s.status.clone(),
        call: readable(s.detail.as_ref(), 400),
        result: readable(s.result.as_ref(), 300),
        error: s.error.clone().unwrap_or_default(),
        started: time::pattern(s.started_at, "%H:%M:%S%.3f"),
        // A step recorded only when it finished has no duration of its own (the
        // timeline's times tell how long its attempt took).
        took: s
            .finished_at
            .filter(|f| *f > s.started_at)
            .map(|f| time::duration_ms((f - s.started_at) as f64))
            .unwrap_or_else(|| "–".into()),
    }
}

/// What the page says after its Retry button (`?retried=1` when the event went back).
fn flash(retried: Option<&str>, status: EventStatus) -> Option<&'static str> {
    match (retried, status) {
        (Some("1"), EventStatus::Pending | EventStatus::Retrying) => Some(
            "Queued again: the workers will run it shortly (steps already done are skipped). Reload to see the outcome.",
        ),
        (Some("1"), EventStatus::Done) => Some("Retried: done."),
        (Some("1"), _) => Some("Retried, and it failed again: see the timeline."),
        (Some(_), _) => {
            Some("Not queued again: the event is already waiting for a run, or it is ignored.")
        }
        (None, _) => None,
    }
}

pub async fn event(
    State(state): State<DashboardState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<EventQuery>,
) -> Response {
    match event_page(&state, &principal, &id, q).await {
        Ok(r) => r,
        Err(e) => store_error(&state, e),
    }
}

fn not_found(state: &DashboardState, id: &str) -> Response {
    state.message(
        StatusCode::NOT_FOUND,
        "No such event",
        &format!("paybridge has no event {id}."),
    )
}

async fn event_page(
    state: &DashboardState,
    principal: &Principal,
    id: &str,
    q: EventQuery,
) -> Result<Response, StoreError> {
    let Ok(event_id) = EventId::parse(id) else {
        return Ok(not_found(state, id));
    };
    let store = state.store();
    let Some(record) = store.get_event(&event_id).await? else {
        return Ok(not_found(state, id));
    };
    let (steps, timeline) = tokio::try_join!(store.steps_of(id), store.timeline(id))?;
    let e = &record.summary;
    // The event's own contact once applied; else the one its customer resolved to.
    let (email, contact_id) = match &e.customer {
        Some(c) => {
            let (email, known) = tokio::try_join!(store.customer_email(c), store.contact_for(c))?;
            let contact = e.contact_id.clone().or(known.as_ref().map(|k| k.0.clone()));
            (email.or(known.and_then(|k| k.1)), contact)
        }
        None => (None, e.contact_id.clone()),
    };
    let payload = record.payload.as_deref().map(payload_pairs);
    let contact_url = match (state.inner.portal_id, &contact_id) {
        (Some(portal), Some(contact)) => Some(format!(
            "https://app.hubspot.com/contacts/{portal}/record/0-1/{}",
            encode_component(contact)
        )),
        _ => None,
    };
    let steps: Vec<StepView> = steps.iter().map(step_view).collect();
    let timeline: Vec<Value> = timeline
        .iter()
        .map(|t| {
            context! {
                at => time::pattern(t.at, "%Y-%m-%d %H:%M:%S%.3f"),
                attempt => t.attempt,
                message => t.message,
            }
        })
        .collect();
    let flash = flash(q.retried.as_deref(), e.status);
    let can_retry = matches!(
        e.status,
        EventStatus::Dead | EventStatus::Retrying | EventStatus::NeedsAttention
    );
    Ok(state.render(
        "event.html",
        StatusCode::OK,
        context! {
            signed_in => matches!(principal, Principal::Session { .. }),
            csrf => state.auth().csrf_token(principal),
            event => context! {
                id => e.id,
                retry_action => format!("/events/{}/retry", encode_component(&e.id)),
                kind => e.kind,
                status => e.status.as_str(),
                status_label => status_label(e.status),
                customer => e.customer,
                customer_href => e.customer.as_ref().map(|c| format!("/?customer={}#log", encode_component(c))),
                email => email,
                contact_id => contact_id,
                contact_url => contact_url,
                portal_configured => state.inner.portal_id.is_some(),
                created => time::readable(e.created * 1000),
                received => time::readable(e.received_at),
                finished => e.finished_at.map(time::readable),
                to_crm => e.finished_at.filter(|_| e.status == EventStatus::Done).map(|f| time::duration_ms((f - e.created * 1000).max(0) as f64)),
                attempts => e.attempts,
                last_error => e.last_error,
                source => e.source,
                livemode => e.livemode,
            },
            payload => payload,
            steps => steps,
            timeline => timeline,
            can_retry => can_retry,
            flash => flash,
        },
    ))
}

pub async fn retry(
    State(state): State<DashboardState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_origin(&headers) || !state.auth().csrf_ok(&principal, &form.csrf) {
        tracing::warn!(event_id = %id, "dashboard retry refused: not from this dashboard");
        return state.forbidden();
    }
    let Ok(event_id) = EventId::parse(&id) else {
        return not_found(&state, &id);
    };
    match state.store().retry_events(&[event_id.to_string()]).await {
        Ok(back) => {
            let retried = !back.is_empty();
            tracing::info!(event_id = %event_id, retried, "dashboard retry");
            let mut response = Redirect::to(&format!(
                "/events/{}?retried={}",
                encode_component(event_id.as_str()),
                u8::from(retried)
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => store_error(&state, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_details_read_as_pairs() {
        let detail = serde_json::json!({
            "type": "update_contact",
            "aggregates": {},
            "properties": {"stripe_delinquent": "false", "lifecyclestage": "customer"},
        });
        assert_eq!(
            readable(Some(&detail), 400),
            "properties: lifecyclestage=customer, stripe_delinquent=false"
        );
        let result = serde_json::json!({"id": "42", "recovered": true});
        assert_eq!(readable(Some(&result), 400), "id: 42; recovered: true");
        assert_eq!(readable(None, 10), "");
        assert_eq!(
            readable(Some(&serde_json::json!("x".repeat(20))), 5),
            "xxxx…"
        );
    }
}
