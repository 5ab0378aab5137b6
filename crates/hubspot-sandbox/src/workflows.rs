//! Legacy workflow enrolment: `POST /automation/v2/workflows/{id}/enrollments/contacts/{email}`
//! (research §8). No v4/2026-09 enrolment endpoint exists.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::clock;
use crate::error::ApiError;
use crate::objects::ObjectType;
use crate::state::Shared;

#[derive(Debug, Clone)]
pub(crate) struct Workflow {
    pub id: String,
    pub name: String,
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
    Router::new().route(
        "/v2/workflows/{workflowId}/enrollments/contacts/{email}",
        post(enroll),
    )
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
