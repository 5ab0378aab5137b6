//! Associations v4 (research §6): list a record's associations, create the
//! default or a typed association, delete, and batch read. Only HubSpot's own
//! unlabelled types exist in the sandbox (no portal-specific labels).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, HsJson};
use crate::objects::{ObjectType, association_target, association_type, not_found};
use crate::state::{Crm, Shared};

pub(crate) fn object_router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{type}/{id}/associations/{toType}", get(list))
        .route(
            "/{type}/{id}/associations/{toType}/{toId}",
            put(create_typed).delete(remove),
        )
        .route(
            "/{type}/{id}/associations/default/{toType}/{toId}",
            put(create_default),
        )
}

pub(crate) fn batch_router() -> Router<Arc<Shared>> {
    Router::new().route("/{fromType}/{toType}/batch/read", post(batch_read))
}

/// `toObjectId` is a JSON number here: HubSpot's documentation examples and
/// earlier spec versions (int64) show numbers, while the current v4 spec types
/// it as a string [?]. Clients should accept both.
fn associated(crm: &Crm, ty: ObjectType, id: u64, to: ObjectType) -> Vec<Value> {
    crm.store(ty)
        .records
        .get(&id)
        .and_then(|r| r.assoc.get(&to))
        .map(|m| {
            m.iter()
                .map(|(to_id, types)| {
                    let types: Vec<Value> = types
                        .iter()
                        .map(|t| json!({"category": "HUBSPOT_DEFINED", "typeId": t, "label": null}))
                        .collect();
                    json!({"toObjectId": to_id, "associationTypes": types})
                })
                .collect()
        })
        .unwrap_or_default()
}

fn record_id(crm: &Crm, ty: ObjectType, raw: &str) -> Result<u64, ApiError> {
    crm.resolve(ty, raw, None).ok_or_else(|| not_found(ty, raw))
}

#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<usize>,
    after: Option<String>,
}

async fn list(
    State(s): State<Arc<Shared>>,
    Path((t, id, to)): Path<(String, String, String)>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    let (ty, to) = (ObjectType::parse(&t)?, ObjectType::parse(&to)?);
    // "Limit 500 per call".
    let limit = page.limit.unwrap_or(500).clamp(1, 500);
    let start: usize = page
        .after
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let crm = s.crm();
    let id = record_id(&crm, ty, &id)?;
    let all = associated(&crm, ty, id, to);
    let results: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let mut body = json!({ "results": results });
    if start + limit < all.len() {
        body["paging"] = json!({"next": {"after": (start + limit).to_string()}});
    }
    Ok(axum::Json(body).into_response())
}

fn check_pair(
    crm: &Crm,
    ty: ObjectType,
    id: &str,
    to: ObjectType,
    to_id: &str,
) -> Result<(u64, u64, u32), ApiError> {
    let from = record_id(crm, ty, id)?;
    let target = record_id(crm, to, to_id)?;
    let type_id = association_type(ty, to).ok_or_else(|| {
        ApiError::validation(format!(
            "{} records cannot be associated with {}",
            ty.singular(),
            to.name()
        ))
    })?;
    Ok((from, target, type_id))
}

async fn create_default(
    State(s): State<Arc<Shared>>,
    Path((t, id, to, to_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let (ty, to) = (ObjectType::parse(&t)?, ObjectType::parse(&to)?);
    let started = clock::wall();
    let mut crm = s.crm();
    let (from, target, type_id) = check_pair(&crm, ty, &id, to, &to_id)?;
    crm.associate(ty, from, to, target, type_id);
    let spec = |a: ObjectType, b: ObjectType, x: u64, y: u64| {
        json!({
            "from": {"id": x.to_string()},
            "to": {"id": y.to_string()},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association_type(a, b)},
        })
    };
    Ok(axum::Json(json!({
        "status": "COMPLETE",
        "results": [spec(ty, to, from, target), spec(to, ty, target, from)],
        "startedAt": clock::iso(started),
        "completedAt": clock::iso(clock::wall()),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    association_category: String,
    association_type_id: u32,
}

async fn create_typed(
    State(s): State<Arc<Shared>>,
    Path((t, id, to, to_id)): Path<(String, String, String, String)>,
    HsJson(specs): HsJson<Vec<Spec>>,
) -> Result<Response, ApiError> {
    let (ty, to) = (ObjectType::parse(&t)?, ObjectType::parse(&to)?);
    let mut crm = s.crm();
    let (from, target, _) = check_pair(&crm, ty, &id, to, &to_id)?;
    if specs.is_empty() {
        return Err(ApiError::validation(
            "At least one association type is required",
        ));
    }
    for spec in &specs {
        let fits = spec.association_category == "HUBSPOT_DEFINED"
            && association_target(ty, spec.association_type_id) == Some(to);
        if !fits {
            return Err(ApiError::validation(format!(
                "Invalid association type {}/{} from {} to {}",
                spec.association_category,
                spec.association_type_id,
                ty.singular(),
                to.singular()
            )));
        }
    }
    for spec in &specs {
        crm.associate(ty, from, to, target, spec.association_type_id);
    }
    // Ids as numbers, like `toObjectId` above (the spec types them as strings [?]).
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "fromObjectTypeId": ty.type_id(),
            "fromObjectId": from,
            "toObjectTypeId": to.type_id(),
            "toObjectId": target,
            "labels": [],
        })),
    )
        .into_response())
}

async fn remove(
    State(s): State<Arc<Shared>>,
    Path((t, id, to, to_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let (ty, to) = (ObjectType::parse(&t)?, ObjectType::parse(&to)?);
    let mut crm = s.crm();
    let (from, target, _) = check_pair(&crm, ty, &id, to, &to_id)?;
    crm.dissociate(ty, from, to, target);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    inputs: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    id: Value,
}

async fn batch_read(
    State(s): State<Arc<Shared>>,
    Path((from, to)): Path<(String, String)>,
    HsJson(body): HsJson<BatchBody>,
) -> Result<Response, ApiError> {
    let (ty, to) = (ObjectType::parse(&from)?, ObjectType::parse(&to)?);
    // Research §6: the changelog said 1,000 then was edited to 100; we enforce 100.
    if body.inputs.len() > 100 {
        return Err(ApiError::validation("A batch accepts at most 100 inputs"));
    }
    let started = clock::wall();
    let crm = s.crm();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for item in &body.inputs {
        let raw = match &item.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let found = crm.resolve(ty, &raw, None);
        let to_list = found
            .map(|id| associated(&crm, ty, id, to))
            .unwrap_or_default();
        if to_list.is_empty() {
            // [?] HubSpot reports ids without associations as errors with this
            // sub-category; wording from integrators' logs, not a capture.
            errors.push(
                ApiError::not_found(format!(
                    "No {} is associated with {} {raw}.",
                    to.singular(),
                    ty.singular()
                ))
                .with_sub_category("crm.associations.NO_ASSOCIATIONS_FOUND")
                .with_context("fromObjectId", vec![raw.clone()])
                .standard(),
            );
        } else {
            results.push(json!({"from": {"id": raw}, "to": to_list}));
        }
    }
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": clock::iso(started),
        "completedAt": clock::iso(clock::wall()),
    });
    if errors.is_empty() {
        return Ok(axum::Json(answer).into_response());
    }
    answer["numErrors"] = json!(errors.len());
    answer["errors"] = json!(errors);
    Ok((StatusCode::MULTI_STATUS, axum::Json(answer)).into_response())
}
