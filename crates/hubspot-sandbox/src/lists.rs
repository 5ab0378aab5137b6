//! Lists v3 (research §7): seeded lists, reads, and membership writes, which
//! are PUT-only and allowed on MANUAL and SNAPSHOT lists only.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, HsJson};
use crate::objects::ObjectType;
use crate::state::{Crm, Shared};

#[derive(Debug, Clone)]
pub(crate) struct List {
    pub list_id: String,
    pub name: String,
    pub processing_type: String,
    pub object_type_id: String,
    /// Record id → when it joined.
    pub members: BTreeMap<u64, DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl List {
    fn json(&self) -> Value {
        json!({
            "listId": self.list_id,
            "name": self.name,
            "processingType": self.processing_type,
            "objectTypeId": self.object_type_id,
            "processingStatus": "COMPLETE",
            "listVersion": self.version,
            "size": self.members.len(),
            "createdAt": clock::iso(self.created_at),
            "updatedAt": clock::iso(self.updated_at),
        })
    }
}

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{listId}", get(get_list))
        .route("/{listId}/memberships", get(memberships))
        .route(
            "/{listId}/memberships/add",
            put(add).post(method_not_allowed),
        )
        .route(
            "/{listId}/memberships/remove",
            put(remove).post(method_not_allowed),
        )
        .route(
            "/{listId}/memberships/add-and-remove",
            put(add_and_remove).post(method_not_allowed),
        )
        .route(
            "/object-type-id/{objectTypeId}/name/{listName}",
            get(by_name),
        )
}

fn no_list(id: &str) -> ApiError {
    // [?] wording not captured.
    ApiError::not_found(format!("List does not exist with id {id}"))
}

async fn get_list(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let crm = s.crm();
    let list = crm.lists.get(&id).ok_or_else(|| no_list(&id))?;
    Ok(axum::Json(json!({ "list": list.json() })).into_response())
}

async fn by_name(
    State(s): State<Arc<Shared>>,
    Path((type_id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let crm = s.crm();
    crm.lists
        .values()
        .find(|l| l.object_type_id == type_id && l.name.eq_ignore_ascii_case(&name))
        .map(|l| axum::Json(json!({ "list": l.json() })).into_response())
        .ok_or_else(|| ApiError::not_found(format!("List does not exist with name {name}")))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    after: Option<String>,
}

async fn memberships(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=250).contains(&limit) {
        return Err(ApiError::validation("limit must be between 1 and 250"));
    }
    let after: u64 = q.after.as_deref().and_then(|a| a.parse().ok()).unwrap_or(0);
    let crm = s.crm();
    let list = crm.lists.get(&id).ok_or_else(|| no_list(&id))?;
    let mut page: Vec<(&u64, &DateTime<Utc>)> =
        list.members.range(after + 1..).take(limit + 1).collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let results: Vec<Value> = page
        .iter()
        .map(|(rid, at)| json!({"recordId": rid.to_string(), "membershipTimestamp": clock::iso(**at)}))
        .collect();
    let mut body = json!({ "results": results, "total": list.members.len() });
    if let (true, Some((last, _))) = (more, page.last()) {
        body["paging"] = json!({"next": {"after": last.to_string()}});
    }
    Ok(axum::Json(body).into_response())
}

/// Record ids arrive as strings (the spec) or numbers; anything else is missing.
fn ids(values: &[Value]) -> Vec<(String, Option<u64>)> {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => (s.clone(), s.trim().parse().ok()),
            Value::Number(n) => (n.to_string(), n.as_u64()),
            other => (other.to_string(), None),
        })
        .collect()
}

#[derive(Default)]
struct Outcome {
    added: Vec<String>,
    removed: Vec<String>,
    missing: Vec<String>,
}

impl Outcome {
    fn json(self) -> Response {
        // Note the spelling `recordsIdsAdded` (sic), as in the v3 and 2026-09 specs.
        axum::Json(json!({
            "recordsIdsAdded": self.added,
            "recordIdsRemoved": self.removed,
            "recordIdsMissing": self.missing,
        }))
        .into_response()
    }
}

fn change(
    crm: &mut Crm,
    list_id: &str,
    to_add: &[Value],
    to_remove: &[Value],
) -> Result<Outcome, ApiError> {
    let list = crm.lists.get(list_id).ok_or_else(|| no_list(list_id))?;
    if !matches!(list.processing_type.as_str(), "MANUAL" | "SNAPSHOT") {
        // [?] wording not captured; the rule is in the spec text of each op.
        return Err(ApiError::validation(format!(
            "List {list_id} has processingType {}; memberships can only be changed on MANUAL or SNAPSHOT lists",
            list.processing_type
        )));
    }
    let ty = ObjectType::parse(&list.object_type_id)?;
    let exists = |id: Option<u64>| id.filter(|i| crm.store(ty).records.contains_key(i));
    let mut out = Outcome::default();
    let adds: Vec<(String, Option<u64>)> = ids(to_add)
        .into_iter()
        .map(|(s, i)| (s, exists(i)))
        .collect();
    let removes: Vec<(String, Option<u64>)> = ids(to_remove)
        .into_iter()
        .map(|(s, i)| (s, exists(i)))
        .collect();
    let now = clock::wall();
    let Some(list) = crm.lists.get_mut(list_id) else {
        return Err(no_list(list_id));
    };
    for (raw, id) in adds {
        match id {
            None => out.missing.push(raw),
            Some(id) => {
                if list.members.insert(id, now).is_none() {
                    out.added.push(id.to_string());
                } else if let Some(at) = list.members.get_mut(&id) {
                    // Already a member: ignored, keeps its original join time.
                    *at = (*at).min(now);
                }
            }
        }
    }
    for (raw, id) in removes {
        match id {
            None => out.missing.push(raw),
            Some(id) => {
                if list.members.remove(&id).is_some() {
                    out.removed.push(id.to_string());
                }
            }
        }
    }
    if !out.added.is_empty() || !out.removed.is_empty() {
        list.updated_at = now;
        list.version += 1;
    }
    Ok(out)
}

async fn add(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    HsJson(body): HsJson<Vec<Value>>,
) -> Result<Response, ApiError> {
    Ok(change(&mut s.crm(), &id, &body, &[])?.json())
}

async fn remove(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    HsJson(body): HsJson<Vec<Value>>,
) -> Result<Response, ApiError> {
    Ok(change(&mut s.crm(), &id, &[], &body)?.json())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddAndRemove {
    #[serde(default)]
    record_ids_to_add: Vec<Value>,
    #[serde(default)]
    record_ids_to_remove: Vec<Value>,
}

async fn add_and_remove(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    HsJson(body): HsJson<AddAndRemove>,
) -> Result<Response, ApiError> {
    Ok(change(
        &mut s.crm(),
        &id,
        &body.record_ids_to_add,
        &body.record_ids_to_remove,
    )?
    .json())
}

/// Membership writes are PUT only. HubSpot's 405 body is not captured [?]; we
/// answer in its general error shape.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "HTTP method POST is not supported by this URL; list membership changes use PUT",
    )
}
