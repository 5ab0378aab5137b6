//! Pipelines (seeded, read-only): `GET /crm/v3/pipelines/{tickets|deals}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::clock;
use crate::error::ApiError;
use crate::objects::ObjectType;
use crate::state::Shared;

#[derive(Debug, Clone)]
pub(crate) struct Stage {
    pub id: String,
    pub label: String,
    pub metadata: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub id: String,
    pub label: String,
    pub stages: Vec<Stage>,
}

/// HubSpot's default pipelines. Ticket stages 1–4 and the deal stage ids are
/// marked [?] in research §5 (to be read from a real portal).
pub(crate) fn defaults(ty: ObjectType) -> Vec<Pipeline> {
    let stage = |id: &str, label: &str, metadata: Value| Stage {
        id: id.to_owned(),
        label: label.to_owned(),
        metadata,
    };
    match ty {
        ObjectType::Tickets => vec![Pipeline {
            id: "0".into(),
            label: "Support Pipeline".into(),
            stages: vec![
                stage("1", "New", json!({"ticketState": "OPEN"})),
                stage("2", "Waiting on contact", json!({"ticketState": "OPEN"})),
                stage("3", "Waiting on us", json!({"ticketState": "OPEN"})),
                stage("4", "Closed", json!({"ticketState": "CLOSED"})),
            ],
        }],
        ObjectType::Deals => {
            let deal = |id: &str, label: &str, p: &str, closed: bool| {
                stage(
                    id,
                    label,
                    json!({"isClosed": closed.to_string(), "probability": p}),
                )
            };
            vec![Pipeline {
                id: "default".into(),
                label: "Sales Pipeline".into(),
                stages: vec![
                    deal(
                        "appointmentscheduled",
                        "Appointment Scheduled",
                        "0.2",
                        false,
                    ),
                    deal("qualifiedtobuy", "Qualified To Buy", "0.4", false),
                    deal(
                        "presentationscheduled",
                        "Presentation Scheduled",
                        "0.6",
                        false,
                    ),
                    deal(
                        "decisionmakerboughtin",
                        "Decision Maker Bought-In",
                        "0.8",
                        false,
                    ),
                    deal("contractsent", "Contract Sent", "0.9", false),
                    deal("closedwon", "Closed Won", "1.0", true),
                    deal("closedlost", "Closed Lost", "0.0", true),
                ],
            }]
        }
        _ => Vec::new(),
    }
}

impl Pipeline {
    pub(crate) fn from_seed(p: &crate::seed::SeedPipeline) -> Pipeline {
        Pipeline {
            id: p.id.clone(),
            label: p.label.clone(),
            stages: p
                .stages
                .iter()
                .map(|s| Stage {
                    id: s.id.clone(),
                    label: s.label.clone(),
                    metadata: if s.metadata.is_null() {
                        json!({})
                    } else {
                        s.metadata.clone()
                    },
                })
                .collect(),
        }
    }

    fn json(&self, order: usize) -> Value {
        let at = clock::iso(chrono::DateTime::UNIX_EPOCH);
        json!({
            "id": self.id,
            "label": self.label,
            "displayOrder": order,
            "stages": self.stages.iter().enumerate().map(|(i, s)| s.json(i)).collect::<Vec<_>>(),
            "createdAt": at,
            "updatedAt": at,
            "archived": false,
        })
    }
}

impl Stage {
    fn json(&self, order: usize) -> Value {
        let at = clock::iso(chrono::DateTime::UNIX_EPOCH);
        json!({
            "id": self.id,
            "label": self.label,
            "displayOrder": order,
            "metadata": self.metadata,
            "createdAt": at,
            "updatedAt": at,
            "archived": false,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        })
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{objectType}", get(list))
        .route("/{objectType}/{pipelineId}", get(get_one))
        .route("/{objectType}/{pipelineId}/stages", get(stages))
}

fn pipelines_of(s: &Shared, raw: &str) -> Result<Vec<Pipeline>, ApiError> {
    let ty = ObjectType::parse(raw)?;
    Ok(s.crm().pipelines.get(&ty).cloned().unwrap_or_default())
}

async fn list(State(s): State<Arc<Shared>>, Path(t): Path<String>) -> Result<Response, ApiError> {
    let results: Vec<Value> = pipelines_of(&s, &t)?
        .iter()
        .enumerate()
        .map(|(i, p)| p.json(i))
        .collect();
    Ok(axum::Json(json!({ "results": results })).into_response())
}

fn find(s: &Shared, t: &str, id: &str) -> Result<(usize, Pipeline), ApiError> {
    pipelines_of(s, t)?
        .into_iter()
        .enumerate()
        .find(|(_, p)| p.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Unable to find pipeline {id}")))
}

async fn get_one(
    State(s): State<Arc<Shared>>,
    Path((t, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (i, p) = find(&s, &t, &id)?;
    Ok(axum::Json(p.json(i)).into_response())
}

async fn stages(
    State(s): State<Arc<Shared>>,
    Path((t, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (_, p) = find(&s, &t, &id)?;
    let results: Vec<Value> = p
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| s.json(i))
        .collect();
    Ok(axum::Json(json!({ "results": results })).into_response())
}
