//! HTTP handlers for records: create, get, list, update, archive and the
//! batch operations (research §2–§3, §5).
//!
//! Batch create (Using Object APIs, "Multi-status errors for batch create requests"):
//! when every input carries an `objectWriteTraceId`, each failing input is reported in a
//! 207 (`errors[]`, each with `context.objectWriteTraceId`) and the others are created;
//! without them the batch is all or nothing, answered with the first input's error. The
//! order of `results` is not promised (HubSpot staff on hubspot-api-nodejs#190): the
//! sandbox answers in reverse input order so that no client can lean on it.
//!
//! Other batches, as captured: property validation problems fail the whole batch with
//! 400; what depends on stored records (not found, duplicate email or unique value) fails
//! only that input, reported in a 207 with `errors` and `numErrors`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Changes, ObjectType, Wanted, association_label, not_found};
use crate::behaviour::MergedRead;
use crate::clock;
use crate::error::{ApiError, HsJson};
use crate::requirements::Dated;
use crate::state::{Crm, Shared};

const MAX_BATCH: usize = 100;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{type}", get(list).post(create))
        .route("/{type}/batch/{op}", post(batch))
        .route("/{type}/{id}", get(get_one).patch(update).delete(archive))
}

/// `properties=a,b` or `properties=a&properties=b`; `None` when absent.
pub(crate) fn listed(query: &[(String, String)], key: &str) -> Option<Vec<String>> {
    let values: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    (!values.is_empty()).then_some(values)
}

fn single<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn wanted(props: &Option<Vec<String>>) -> Wanted<'_> {
    match props {
        Some(p) => Wanted::Listed(p),
        None => Wanted::Defaults,
    }
}

/// A record rendered, with `associations` when the request asked for them.
fn render(
    crm: &Crm,
    ty: ObjectType,
    id: u64,
    w: Wanted<'_>,
    assoc: &Option<Vec<String>>,
) -> Result<Value, ApiError> {
    let record = crm
        .store(ty)
        .records
        .get(&id)
        .ok_or_else(|| not_found(ty, id))?;
    let mut body = crm.render_record(ty, record, w);
    if let Some(types) = assoc {
        let mut out = Map::new();
        for raw in types {
            let to = ObjectType::parse(raw)?;
            let results: Vec<Value> = record
                .assoc
                .get(&to)
                .map(|m| {
                    m.keys()
                        .map(|i| json!({"id": i.to_string(), "type": association_label(ty, to)}))
                        .collect()
                })
                .unwrap_or_default();
            if !results.is_empty() {
                out.insert(to.name().to_owned(), json!({ "results": results }));
            }
        }
        body["associations"] = Value::Object(out);
    }
    Ok(body)
}

#[derive(Debug, Deserialize)]
struct CreateInput {
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    associations: Vec<Value>,
}

async fn create(
    State(s): State<Arc<Shared>>,
    Path(t): Path<String>,
    Extension(dated): Extension<Dated>,
    HsJson(input): HsJson<CreateInput>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let mut crm = s.crm();
    let changes = crm.validate(ty, &input.properties, true)?;
    let links = crm.validate_links(ty, &input.associations)?;
    crm.enforce_requirements(ty, None, &changes, dated)?;
    let id = crm.create(ty, &changes, &links)?;
    let body = render(&crm, ty, id, Wanted::Written(&changes), &None)?;
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn get_one(
    State(s): State<Arc<Shared>>,
    Path((t, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let crm = s.crm();
    let id_property = single(&q, "idProperty");
    if let Some(p) = id_property {
        crm.check_id_property(ty, p)?;
    }
    let found = crm
        .resolve(ty, &id, id_property)
        .ok_or_else(|| not_found(ty, &id))?;
    let props = listed(&q, "properties");
    let body = render(&crm, ty, found, wanted(&props), &listed(&q, "associations"))?;
    Ok(axum::Json(body).into_response())
}

async fn list(
    State(s): State<Arc<Shared>>,
    Path(t): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    // Default 10 per the spec; the maximum of 100 is [?] — larger values are clamped.
    let limit: usize = single(&q, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let after: u64 = single(&q, "after")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let props = listed(&q, "properties");
    let assoc = listed(&q, "associations");
    let crm = s.crm();
    let ids: Vec<u64> = crm
        .store(ty)
        .records
        .range(after + 1..)
        .map(|(id, _)| *id)
        .take(limit + 1)
        .collect();
    let mut results = Vec::new();
    for id in ids.iter().take(limit) {
        results.push(render(&crm, ty, *id, wanted(&props), &assoc)?);
    }
    let mut body = json!({ "results": results });
    if ids.len() > limit
        && let Some(last) = ids.get(limit - 1)
    {
        body["paging"] = json!({"next": {"after": last.to_string()}});
    }
    Ok(axum::Json(body).into_response())
}

#[derive(Debug, Deserialize)]
struct UpdateInput {
    #[serde(default)]
    properties: Map<String, Value>,
}

async fn update(
    State(s): State<Arc<Shared>>,
    Path((t, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    Extension(dated): Extension<Dated>,
    HsJson(input): HsJson<UpdateInput>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let mut crm = s.crm();
    let id_property = single(&q, "idProperty");
    if let Some(p) = id_property {
        crm.check_id_property(ty, p)?;
    }
    let found = crm
        .resolve(ty, &id, id_property)
        .ok_or_else(|| not_found(ty, &id))?;
    let changes = crm.validate(ty, &input.properties, false)?;
    crm.enforce_requirements(
        ty,
        Some(&crm.store(ty).records[&found].props),
        &changes,
        dated,
    )?;
    crm.update(ty, found, &changes)?;
    let body = render(&crm, ty, found, Wanted::Written(&changes), &None)?;
    Ok(axum::Json(body).into_response())
}

async fn archive(
    State(s): State<Arc<Shared>>,
    Path((t, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let mut crm = s.crm();
    // Archiving is idempotent: an unknown id is answered 204 too.
    if let Some(found) = crm.resolve_live(ty, &id, None) {
        crm.archive(ty, found);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInput {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    id_property: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    associations: Vec<Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchBody {
    inputs: Vec<BatchInput>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
}

fn id_text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// 200/201 with `status: COMPLETE`, or 207 when some inputs failed.
fn batch_answer(
    ok: StatusCode,
    results: Vec<Value>,
    errors: Vec<Value>,
    started: DateTime<Utc>,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": clock::iso(started),
        "completedAt": clock::iso(clock::wall()),
    });
    if errors.is_empty() {
        return (ok, axum::Json(body)).into_response();
    }
    body["numErrors"] = json!(errors.len());
    body["errors"] = json!(errors);
    (StatusCode::MULTI_STATUS, axum::Json(body)).into_response()
}

/// HubSpot groups missing ids of a batch into one error.
fn missing_error(ty: ObjectType, ids: Vec<String>) -> Value {
    ApiError::not_found(format!(
        "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
        ty.singular().to_ascii_uppercase()
    ))
    .with_context("ids", ids)
    .standard()
}

fn item_error(e: &ApiError, id: Option<String>) -> Value {
    let mut err = e.clone();
    if let Some(id) = id
        && !err.context.contains_key("ids")
    {
        err = err.with_context("ids", vec![id]);
    }
    err.standard()
}

async fn batch(
    State(s): State<Arc<Shared>>,
    Path((t, op)): Path<(String, String)>,
    Extension(dated): Extension<Dated>,
    HsJson(body): HsJson<BatchBody>,
) -> Result<Response, ApiError> {
    let ty = ObjectType::parse(&t)?;
    let started = clock::wall();
    if body.inputs.len() > MAX_BATCH {
        // [?] wording; the 100-input limit is research §2.
        return Err(ApiError::validation(format!(
            "Too many inputs: {}. A batch accepts at most {MAX_BATCH} inputs.",
            body.inputs.len()
        )));
    }
    let mut crm = s.crm();
    match op.as_str() {
        "read" => batch_read(&crm, ty, &body, started),
        "create" => batch_create(&mut crm, ty, &body, started, dated),
        "update" => batch_update(&mut crm, ty, &body, started, dated),
        "upsert" => batch_upsert(&mut crm, ty, &body, started, dated),
        "archive" => {
            for input in &body.inputs {
                if let Some(id) = id_text(&input.id).and_then(|i| crm.resolve_live(ty, &i, None)) {
                    crm.archive(ty, id);
                }
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            format!("Unknown batch operation {other}"),
        )),
    }
}

fn batch_read(
    crm: &Crm,
    ty: ObjectType,
    body: &BatchBody,
    started: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let id_property = body.id_property.as_deref();
    if let Some(p) = id_property {
        crm.check_id_property(ty, p)?;
    }
    let props = (!body.properties.is_empty()).then(|| body.properties.clone());
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    for input in &body.inputs {
        let raw = id_text(&input.id).unwrap_or_default();
        // A merged-away id: left out, or answered with the survivor (not settled: switch).
        let found = match crm.behaviour.merged_batch_read {
            MergedRead::Omit => crm.resolve_live(ty, &raw, id_property),
            MergedRead::Surviving => crm.resolve(ty, &raw, id_property),
        };
        match found {
            Some(id) => {
                if seen.insert(id) {
                    results.push(render(crm, ty, id, wanted(&props), &None)?);
                }
            }
            None => missing.push(raw),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![missing_error(ty, missing)]
    };
    Ok(batch_answer(StatusCode::OK, results, errors, started))
}

fn batch_create(
    crm: &mut Crm,
    ty: ObjectType,
    body: &BatchBody,
    started: DateTime<Utc>,
    dated: Dated,
) -> Result<Response, ApiError> {
    let traced = !body.inputs.is_empty()
        && body
            .inputs
            .iter()
            .all(|i| i.object_write_trace_id.is_some());
    let mut created: Vec<(u64, Changes, Option<&String>)> = Vec::new();
    let mut errors = Vec::new();
    for input in &body.inputs {
        let trace = input.object_write_trace_id.as_ref();
        let outcome = crm
            .validate(ty, &input.properties, true)
            .and_then(|changes| {
                let links = crm.validate_links(ty, &input.associations)?;
                crm.enforce_requirements(ty, None, &changes, dated)?;
                crm.create(ty, &changes, &links).map(|id| (id, changes))
            });
        match outcome {
            Ok((id, changes)) => created.push((id, changes, trace)),
            Err(e) if traced => {
                let mut e = e;
                e.context.insert(
                    "objectWriteTraceId".into(),
                    json!(trace.into_iter().collect::<Vec<_>>()),
                );
                errors.push(e.standard());
            }
            Err(e) => {
                // All or nothing: undo what this batch created, answer the first error.
                for (id, _, _) in created {
                    crm.archive(ty, id);
                }
                return Err(e);
            }
        }
    }
    let mut results = Vec::new();
    for (id, changes, trace) in created.iter().rev() {
        let mut r = render(crm, ty, *id, Wanted::Written(changes), &None)?;
        if let (Some(trace), true) = (trace, crm.behaviour.echo_trace_ids) {
            r["objectWriteTraceId"] = json!(trace);
        }
        results.push(r);
    }
    Ok(batch_answer(StatusCode::CREATED, results, errors, started))
}

/// Rejects the same id twice in one batch [? wording].
fn check_duplicates(ids: &[String]) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    let dups: Vec<String> = ids
        .iter()
        .filter(|i| !seen.insert(i.to_ascii_lowercase()))
        .cloned()
        .collect();
    if dups.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "Duplicate IDs found in batch input: {dups:?}"
        )))
    }
}

fn batch_update(
    crm: &mut Crm,
    ty: ObjectType,
    body: &BatchBody,
    started: DateTime<Utc>,
    dated: Dated,
) -> Result<Response, ApiError> {
    let mut prepared = Vec::new();
    for input in &body.inputs {
        let raw =
            id_text(&input.id).ok_or_else(|| ApiError::validation("Each input needs an id"))?;
        let id_property = input
            .id_property
            .clone()
            .or_else(|| body.id_property.clone());
        if let Some(p) = &id_property {
            crm.check_id_property(ty, p)?;
        }
        let changes = crm.validate(ty, &input.properties, false)?;
        prepared.push((raw, id_property, changes));
    }
    check_duplicates(
        &prepared
            .iter()
            .map(|(r, _, _)| r.clone())
            .collect::<Vec<_>>(),
    )?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    let mut missing = Vec::new();
    for (raw, id_property, changes) in &prepared {
        let Some(id) = crm.resolve_live(ty, raw, id_property.as_deref()) else {
            missing.push(raw.clone());
            continue;
        };
        let before = &crm.store(ty).records[&id].props;
        let outcome = crm
            .enforce_requirements(ty, Some(before), changes, dated)
            .and_then(|()| crm.update(ty, id, changes));
        match outcome {
            Ok(()) => results.push(render(crm, ty, id, Wanted::Written(changes), &None)?),
            Err(e) => errors.push(item_error(&e, Some(raw.clone()))),
        }
    }
    if !missing.is_empty() {
        errors.insert(0, missing_error(ty, missing));
    }
    Ok(batch_answer(StatusCode::OK, results, errors, started))
}

/// Upsert by a unique property (or `email` on contacts): updates the match or
/// creates a record carrying that value; each result says `new: true|false`.
fn batch_upsert(
    crm: &mut Crm,
    ty: ObjectType,
    body: &BatchBody,
    started: DateTime<Utc>,
    dated: Dated,
) -> Result<Response, ApiError> {
    let mut prepared: Vec<(String, String, Changes)> = Vec::new();
    for input in &body.inputs {
        let raw = id_text(&input.id)
            .ok_or_else(|| ApiError::validation("Each upsert input needs an id"))?;
        let id_property = input
            .id_property
            .clone()
            .or_else(|| body.id_property.clone())
            // [?] HubSpot's wording when idProperty is missing is not captured.
            .ok_or_else(|| ApiError::validation("Each upsert input needs an idProperty"))?;
        crm.check_id_property(ty, &id_property)?;
        let mut props = input.properties.clone();
        if id_property != "hs_object_id" {
            props
                .entry(id_property.clone())
                .or_insert_with(|| Value::String(raw.clone()));
        }
        let changes = crm.validate(ty, &props, false)?;
        prepared.push((raw, id_property, changes));
    }
    check_duplicates(
        &prepared
            .iter()
            .map(|(r, _, _)| r.clone())
            .collect::<Vec<_>>(),
    )?;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (raw, id_property, changes) in &prepared {
        let outcome = match crm.resolve_live(ty, raw, Some(id_property)) {
            Some(id) => crm
                .enforce_requirements(ty, Some(&crm.store(ty).records[&id].props), changes, dated)
                .and_then(|()| crm.update(ty, id, changes))
                .map(|()| (id, false)),
            None if id_property == "hs_object_id" => Err(not_found(ty, raw)),
            None => {
                let mut missing = Vec::new();
                for required in ty.required_properties() {
                    if !matches!(changes.get(*required), Some(Some(_))) {
                        missing.push(crate::properties::PropIssue::required(required));
                    }
                }
                if missing.is_empty() {
                    crm.enforce_requirements(ty, None, changes, dated)
                        .and_then(|()| crm.create(ty, changes, &[]))
                        .map(|id| (id, true))
                } else {
                    Err(crate::properties::issues_error(&missing))
                }
            }
        };
        match outcome {
            Ok((id, new)) => {
                let mut r = render(crm, ty, id, Wanted::Written(changes), &None)?;
                r["new"] = json!(new);
                results.push(r);
            }
            Err(e) => errors.push(item_error(&e, Some(raw.clone()))),
        }
    }
    Ok(batch_answer(StatusCode::OK, results, errors, started))
}
