//! The control API under `/_sandbox/` (no auth, no rate limit, no faults):
//! state, statistics, reset, faults, seed, Stripe events, and the webhook inbox.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::behaviour::Behaviour;
use crate::clock;
use crate::faults::Faults;
use crate::objects::ObjectType;
use crate::properties::{Group, PropertyDef};
use crate::seed::Seed;
use crate::state::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/state", get(state))
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .route("/faults", get(get_faults).post(set_faults))
        .route("/behaviour", get(get_behaviour).post(set_behaviour))
        .route("/merge", post(merge))
        .route("/new-day", post(new_day))
        .route("/seed", post(seed))
        .route("/stripe/events", post(stripe_event))
        .route(
            "/stripe/behaviour",
            get(get_stripe_behaviour).post(set_stripe_behaviour),
        )
        .route("/inbox/{name}", post(crate::inbox::receive))
        .with_state(shared)
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message.to_string()})),
    )
        .into_response()
}

/// The whole state: records with their associations (ids by type), lists,
/// enrolments, property definitions and groups, owners, workflows, Stripe data, and
/// what the inbox received.
pub(crate) fn state_json(s: &Shared) -> Value {
    let crm = s.crm();
    let mut out = Map::new();
    for ty in ObjectType::ALL {
        let records: Vec<Value> = crm
            .store(ty)
            .records
            .values()
            .map(|r| {
                let assoc: Map<String, Value> = ObjectType::ALL
                    .iter()
                    .filter(|t| **t != ty && crate::objects::association_type(ty, **t).is_some())
                    .map(|t| {
                        let ids: Vec<String> = r
                            .assoc
                            .get(t)
                            .map(|m| m.keys().map(u64::to_string).collect())
                            .unwrap_or_default();
                        (t.name().to_owned(), json!(ids))
                    })
                    .collect();
                json!({
                    "id": r.id.to_string(),
                    "properties": r.props,
                    "createdAt": clock::iso(r.created_at),
                    "updatedAt": clock::iso(r.updated_at),
                    "associations": assoc,
                })
            })
            .collect();
        out.insert(ty.name().to_owned(), json!(records));
    }
    out.insert(
        "lists".into(),
        json!(
            crm.lists
                .values()
                .map(|l| json!({
                    "listId": l.list_id,
                    "name": l.name,
                    "processingType": l.processing_type,
                    "objectTypeId": l.object_type_id,
                    "members": l.members.keys().map(u64::to_string).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "enrollments".into(),
        json!(crm.enrollments.iter().map(|e| e.json()).collect::<Vec<_>>()),
    );
    out.insert(
        "workflows".into(),
        json!(
            crm.workflows
                .values()
                .map(crate::workflows::Workflow::json)
                .collect::<Vec<_>>()
        ),
    );
    let mut props = Map::new();
    let mut groups = Map::new();
    for ty in ObjectType::ALL {
        props.insert(
            ty.name().into(),
            json!(
                crm.properties[&ty]
                    .values()
                    .map(PropertyDef::json)
                    .collect::<Vec<_>>()
            ),
        );
        groups.insert(
            ty.name().into(),
            json!(
                crm.groups[&ty]
                    .values()
                    .map(Group::json)
                    .collect::<Vec<_>>()
            ),
        );
    }
    out.insert("properties".into(), Value::Object(props));
    out.insert("groups".into(), Value::Object(groups));
    out.insert(
        "owners".into(),
        json!(crm.owners.iter().map(|o| o.json()).collect::<Vec<_>>()),
    );
    out.insert("stripe".into(), crm.stripe.json());
    out.insert(
        "inbox".into(),
        json!(crm.inbox.iter().map(|m| m.json()).collect::<Vec<_>>()),
    );
    Value::Object(out)
}

pub(crate) fn stats_json(s: &Shared) -> Value {
    s.limiter.stats_json()
}

async fn state(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(state_json(&s)).into_response()
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(stats_json(&s)).into_response()
}

async fn reset(State(s): State<Arc<Shared>>) -> Response {
    match s.reset() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => bad_request(e),
    }
}

async fn get_behaviour(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.crm().behaviour.clone()).into_response()
}

/// Replaces every switch; those the body leaves out go back to their defaults.
async fn set_behaviour(
    State(s): State<Arc<Shared>>,
    body: Result<axum::Json<Behaviour>, JsonRejection>,
) -> Response {
    match body {
        Ok(axum::Json(b)) => {
            s.crm().behaviour = b.clone();
            axum::Json(b).into_response()
        }
        Err(e) => bad_request(e.body_text()),
    }
}

#[derive(Debug, Deserialize)]
struct MergeRequest {
    primary: String,
    merged: String,
}

/// Merges contact `merged` into contact `primary` (see `objects/merge.rs`).
async fn merge(
    State(s): State<Arc<Shared>>,
    body: Result<axum::Json<MergeRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(axum::Json(r)) => r,
        Err(e) => return bad_request(e.body_text()),
    };
    match s.crm().merge_contacts(&request.primary, &request.merged) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => bad_request(e),
    }
}

/// The daily budget starts over, as at the account's midnight.
async fn new_day(State(s): State<Arc<Shared>>) -> Response {
    s.limiter.new_day();
    StatusCode::NO_CONTENT.into_response()
}

async fn get_faults(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.faults.get()).into_response()
}

/// Faults plus `outage_secs`: an outage from now for that many seconds.
#[derive(Debug, Deserialize)]
struct FaultsRequest {
    #[serde(flatten)]
    faults: Faults,
    #[serde(default)]
    outage_secs: Option<u64>,
}

async fn set_faults(
    State(s): State<Arc<Shared>>,
    body: Result<axum::Json<FaultsRequest>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(axum::Json(r)) => r,
        Err(e) => return bad_request(e.body_text()),
    };
    if !(0.0..=1.0).contains(&request.faults.error_rate) {
        return bad_request("error_rate must be between 0 and 1");
    }
    if !(0.0..=1.0).contains(&request.faults.lost_answer_rate) {
        return bad_request("lost_answer_rate must be between 0 and 1");
    }
    match request.outage_secs {
        Some(secs) => s
            .faults
            .set_with_outage(request.faults, Duration::from_secs(secs)),
        None => s.faults.set(request.faults),
    }
    axum::Json(s.faults.get()).into_response()
}

async fn seed(
    State(s): State<Arc<Shared>>,
    body: Result<axum::Json<Seed>, JsonRejection>,
) -> Response {
    let seed = match body {
        Ok(axum::Json(seed)) => seed,
        Err(e) => return bad_request(e.body_text()),
    };
    match s.merge_seed(&seed) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => bad_request(e),
    }
}

#[derive(Debug, Deserialize)]
struct StripeEvent {
    event: Value,
    #[serde(default = "yes")]
    delivered: bool,
}

fn yes() -> bool {
    true
}

async fn stripe_event(
    State(s): State<Arc<Shared>>,
    body: Result<axum::Json<StripeEvent>, JsonRejection>,
) -> Response {
    let request = match body {
        Ok(axum::Json(r)) => r,
        Err(e) => return bad_request(e.body_text()),
    };
    let ok = request
        .event
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|i| i.starts_with("evt_"))
        && request
            .event
            .get("created")
            .and_then(Value::as_i64)
            .is_some();
    if !ok {
        return bad_request("event needs an `id` starting with evt_ and a numeric `created`");
    }
    s.crm()
        .stripe
        .record_event(request.event, request.delivered);
    StatusCode::NO_CONTENT.into_response()
}

async fn get_stripe_behaviour(State(s): State<Arc<Shared>>) -> Response {
    let behaviour = s.crm().stripe.traffic.behaviour.clone();
    axum::Json(behaviour).into_response()
}

/// Replaces the Stripe side's switches (rate limit, wildcard `types[]`, clock offset…).
async fn set_stripe_behaviour(
    State(s): State<Arc<Shared>>,
    body: Result<axum::Json<crate::stripe::StripeBehaviour>, JsonRejection>,
) -> Response {
    match body {
        Ok(axum::Json(b)) => {
            s.crm().stripe.traffic.behaviour = b;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(e.body_text()),
    }
}
