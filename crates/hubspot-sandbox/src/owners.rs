//! Owners (seeded, read-only): `GET /crm/v3/owners?email=&limit=&after=` and
//! `GET /crm/v3/owners/{ownerId}` in HubSpot's shape (research §9).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock;
use crate::error::ApiError;
use crate::state::Shared;

#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub user_id: u64,
    pub created_at: DateTime<Utc>,
}

impl Owner {
    pub(crate) fn json(&self) -> Value {
        let at = clock::iso(self.created_at);
        json!({
            "id": self.id,
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": at,
            "updatedAt": at,
            "archived": false,
            "teams": [],
        })
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(list))
        .route("/{ownerId}", get(get_one))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    email: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

pub(crate) async fn list(State(s): State<Arc<Shared>>, Query(q): Query<ListQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let start: usize = q.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let crm = s.crm();
    let matching: Vec<&Owner> = crm
        .owners
        .iter()
        .filter(|o| {
            q.email
                .as_deref()
                .is_none_or(|e| o.email.eq_ignore_ascii_case(e))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|o| o.json())
        .collect();
    let mut body = json!({ "results": page });
    if start + limit < matching.len() {
        body["paging"] = json!({"next": {"after": (start + limit).to_string()}});
    }
    axum::Json(body).into_response()
}

#[derive(Debug, Deserialize)]
struct GetQuery {
    #[serde(rename = "idProperty")]
    id_property: Option<String>,
}

async fn get_one(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
) -> Result<Response, ApiError> {
    let crm = s.crm();
    let by_user = q.id_property.as_deref() == Some("userId");
    crm.owners
        .iter()
        .find(|o| {
            if by_user {
                o.user_id.to_string() == id
            } else {
                o.id == id
            }
        })
        .map(|o| axum::Json(o.json()).into_response())
        .ok_or_else(|| ApiError::not_found(format!("Owner {id} does not exist")))
}
