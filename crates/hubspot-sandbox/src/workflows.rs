//! Workflows: legacy enrolment `POST /automation/v2/workflows/{id}/enrollments/contacts/{email}`
//! (research §8; no v4/2026-09 enrolment endpoint exists) and the contact's current
//! enrolments `GET /automation/v2/workflows/enrollments/contacts/{vid}`, the v4 definition
//! `GET /automation/v4/flows/{flowId}`, and the v2-id ↔ v4-id translation
//! `POST /automation/v4/workflow-id-mappings/batch/read` (HubSpot's automation v4 spec).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::behaviour::MappingFields;
use crate::clock;
use crate::error::{ApiError, HsJson};
use crate::objects::ObjectType;
use crate::seed::SeedWorkflow;
use crate::state::Shared;

/// A workflow under both of its ids: the legacy v2 `id` and the v4 `flow_id`.
#[derive(Debug, Clone)]
pub(crate) struct Workflow {
    pub id: String,
    pub name: String,
    pub flow_id: String,
    pub enabled: bool,
    pub object_type_id: String,
}

impl Workflow {
    pub(crate) fn from_seed(w: &SeedWorkflow) -> Result<Workflow, String> {
        let flow_id = w.flow_id.clone().unwrap_or_else(|| format!("9{}", w.id));
        for (what, id) in [("id", &w.id), ("flowId", &flow_id)] {
            if id.parse::<i64>().is_err() {
                return Err(format!("seed workflow {}: {what} must be numeric", w.id));
            }
        }
        Ok(Workflow {
            id: w.id.clone(),
            name: w.name.clone(),
            flow_id,
            enabled: w.enabled.unwrap_or(true),
            object_type_id: w.object_type_id.clone().unwrap_or_else(|| "0-1".into()),
        })
    }

    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "flowId": self.flow_id,
            "name": self.name,
            "enabled": self.enabled,
            "objectTypeId": self.object_type_id,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Enrollment {
    pub workflow_id: String,
    pub email: String,
    pub contact_id: u64,
    pub at: DateTime<Utc>,
}

impl Enrollment {
    pub(crate) fn json(&self) -> Value {
        json!({
            "workflowId": self.workflow_id,
            "email": self.email,
            "contactId": self.contact_id.to_string(),
            "at": clock::iso(self.at),
        })
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/v2/workflows/{workflowId}/enrollments/contacts/{email}",
            post(enroll),
        )
        .route(
            "/v2/workflows/enrollments/contacts/{vid}",
            get(current_enrollments),
        )
        .route("/v4/flows/{flowId}", get(flow))
        .route("/v4/workflow-id-mappings/batch/read", post(mappings))
}

/// 204 with no body on success (research §8 marks the status [?]; 204 is what
/// integrators report). Every successful call is recorded, so a duplicate
/// enrolment by a client shows up in `/_sandbox/state`.
///
/// The v2 API's 404 bodies are not documented. We chose HubSpot's general
/// error shape (`status`, `message`, `correlationId`, `category:
/// OBJECT_NOT_FOUND`) for both an unknown workflow and an unknown contact email,
/// which is what the v3 APIs answer for missing objects.
async fn enroll(
    State(s): State<Arc<Shared>>,
    Path((workflow_id, email)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut crm = s.crm();
    // A v4 flowId in this path: "a real, valid flow ID returns a genuine 404" (second-hand).
    if !crm.workflows.contains_key(&workflow_id) {
        return Err(ApiError::not_found(format!(
            "Workflow {workflow_id} does not exist"
        )));
    }
    let Some(contact_id) = crm.store(ObjectType::Contacts).find_unique("email", &email) else {
        return Err(ApiError::not_found(format!(
            "Contact with email {email} does not exist"
        )));
    };
    crm.enrollments.push(Enrollment {
        workflow_id,
        email: email.to_ascii_lowercase(),
        contact_id,
        at: clock::wall(),
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /automation/v2/workflows/enrollments/contacts/{vid}`: "List workflows a contact
/// (by vid) is currently enrolled in" (HubSpot's legacy docs, "Get current enrollment",
/// scope `automation`). The page's example shows one workflow object where its description
/// says a list [?]: the sandbox answers a JSON array of such objects (`id` a number, as v2
/// ids are), one per workflow. The sandbox runs no workflow to its end, so every enrolment
/// stays current. An unknown contact is a 404 in HubSpot's general error shape [?].
async fn current_enrollments(
    State(s): State<Arc<Shared>>,
    Path(vid): Path<String>,
) -> Result<Response, ApiError> {
    let crm = s.crm();
    let known = vid
        .parse::<u64>()
        .ok()
        .filter(|id| crm.store(ObjectType::Contacts).records.contains_key(id));
    let Some(contact_id) = known else {
        return Err(ApiError::not_found(format!(
            "Contact with vid {vid} does not exist"
        )));
    };
    let mut ids: Vec<&String> = crm
        .enrollments
        .iter()
        .filter(|e| e.contact_id == contact_id)
        .map(|e| &e.workflow_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let workflows: Vec<Value> = ids
        .into_iter()
        .map(|id| {
            let w = crm.workflows.get(id);
            json!({
                "id": id.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(id.as_str())),
                "portalId": crate::state::HUB_ID,
                "name": w.map(|w| w.name.as_str()).unwrap_or_default(),
                "enabled": w.is_none_or(|w| w.enabled),
                "type": "DRIP_DELAY",
            })
        })
        .collect();
    Ok(axum::Json(workflows).into_response())
}

/// `ApiFlow` (a `CONTACT_FLOW` or `PLATFORM_FLOW`) with the spec's required fields.
async fn flow(
    State(s): State<Arc<Shared>>,
    Path(flow_id): Path<String>,
) -> Result<Response, ApiError> {
    let crm = s.crm();
    let w = crm
        .workflows
        .values()
        .find(|w| w.flow_id == flow_id)
        .ok_or_else(|| ApiError::not_found(format!("Flow {flow_id} does not exist")))?;
    let epoch = clock::iso(chrono::DateTime::UNIX_EPOCH);
    let contact = w.object_type_id == "0-1";
    Ok(axum::Json(json!({
        "id": w.flow_id,
        "type": if contact { "CONTACT_FLOW" } else { "PLATFORM_FLOW" },
        "name": w.name,
        "isEnabled": w.enabled,
        "objectTypeId": w.object_type_id,
        "flowType": "WORKFLOW",
        "revisionId": "1",
        "crmObjectCreationStatus": "COMPLETE",
        "createdAt": epoch,
        "updatedAt": epoch,
    }))
    .into_response())
}

#[derive(Debug, serde::Deserialize)]
struct MappingBody {
    inputs: Vec<serde_json::Map<String, Value>>,
}

/// One input's id, by the field names the switch accepts: `flowId`/`workflowId` (the spec
/// since 2026-03-26) or `flowMigrationStatuses`/`flowMigrationStatusForClassicWorkflows`
/// (the spec before; an older docs page and the TypeScript SDK still use them).
fn mapping_input(
    input: &serde_json::Map<String, Value>,
    fields: MappingFields,
) -> Result<(bool, Option<String>), ApiError> {
    let kind = input.get("type").and_then(Value::as_str).unwrap_or("");
    let by_flow = match kind {
        "FLOW_ID" => true,
        "WORKFLOW_ID" => false,
        other => {
            return Err(ApiError::validation(format!(
                "type must be FLOW_ID or WORKFLOW_ID, not {other:?}"
            )));
        }
    };
    let (documented, legacy) = if by_flow {
        ("flowId", "flowMigrationStatuses")
    } else {
        ("workflowId", "flowMigrationStatusForClassicWorkflows")
    };
    let read = |key: &str| {
        input.get(key).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let id = match fields {
        MappingFields::Documented => Some(read(documented).ok_or_else(|| {
            ApiError::validation(format!("{documented} is required for type {kind}"))
        })?),
        MappingFields::Legacy => read(legacy),
        MappingFields::Both => read(documented).or_else(|| read(legacy)),
    };
    Ok((by_flow, id))
}

/// Results carry both ids as numbers (int64 / int32 in the spec); ids without a workflow
/// are left out and reported in one `OBJECT_NOT_FOUND` error of a 207.
async fn mappings(
    State(s): State<Arc<Shared>>,
    HsJson(body): HsJson<MappingBody>,
) -> Result<Response, ApiError> {
    let started = clock::wall();
    let crm = s.crm();
    let fields = crm.behaviour.workflow_mapping_fields;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in &body.inputs {
        let (by_flow, id) = mapping_input(input, fields)?;
        let found = id.as_ref().and_then(|id| {
            crm.workflows.values().find(|w| {
                if by_flow {
                    &w.flow_id == id
                } else {
                    &w.id == id
                }
            })
        });
        match found {
            Some(w) => results.push(json!({
                "flowId": w.flow_id.parse::<i64>().unwrap_or_default(),
                "workflowId": w.id.parse::<i64>().unwrap_or_default(),
            })),
            None => missing.push(id.unwrap_or_default()),
        }
    }
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": clock::iso(started),
        "completedAt": clock::iso(clock::wall()),
    });
    if missing.is_empty() {
        return Ok(axum::Json(answer).into_response());
    }
    answer["numErrors"] = json!(1);
    answer["errors"] = json!([ApiError::not_found("No workflow has these ids")
        .with_context("ids", missing)
        .standard()]);
    Ok((StatusCode::MULTI_STATUS, axum::Json(answer)).into_response())
}
