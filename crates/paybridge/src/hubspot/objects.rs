//! Tasks, notes, tickets and deals: batched creates with an inline association to the
//! contact, reads by a unique property (`paybridge_key`) and by id, and a contact's
//! associated records, every page (to find a task or note by its marker after a crash).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use super::answer::item_errors;
use super::batch::{BatchResult, Batcher, pair_created, trace_id};
use super::richtext::has_marker;
use super::transport::Transport;
use super::{HubSpot, HubspotError, MAX_BATCH, Properties, record_id, record_properties};

/// HUBSPOT_DEFINED association type ids from an engagement/object to a contact.
pub fn to_contact_type(object_type: &str) -> u32 {
    match object_type {
        "tasks" => 204,
        "notes" => 202,
        "tickets" => 16,
        "deals" => 3,
        _ => 0,
    }
}

/// A record to create, associated with a contact; `match_on` tells it apart in HubSpot's
/// answer when the answer does not echo its trace id (results are not promised in input
/// order).
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub properties: Properties,
    pub contact_id: String,
    pub match_on: MatchOn,
}

/// How a created record is recognised among others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOn {
    /// A plain-text property HubSpot returns as written (e.g. the unique `paybridge_key`).
    Exact { property: String, value: String },
    /// A rich-text property whose text carries `marker` (see [`super::richtext`]).
    Marker { property: String, marker: String },
}

impl MatchOn {
    pub fn matches(&self, properties: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Exact { property, value } => properties.get(property) == Some(value),
            Self::Marker { property, marker } => properties
                .get(property)
                .is_some_and(|body| has_marker(body, marker)),
        }
    }
}

type CreateBatcher = Batcher<NewRecord, String>;

/// A created record in HubSpot's answer: its id and properties.
type Created = (String, BTreeMap<String, String>);

#[derive(Clone, Default)]
pub(super) struct Batchers {
    create: Arc<Mutex<BTreeMap<String, CreateBatcher>>>,
}

fn never(_: &NewRecord, _: &NewRecord) -> bool {
    false
}

impl Batchers {
    fn creator(&self, transport: &Arc<Transport>, object_type: &str) -> CreateBatcher {
        let mut creators = match self.create.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        creators
            .entry(object_type.to_owned())
            .or_insert_with(|| {
                let t = transport.clone();
                let ty = object_type.to_owned();
                Batcher::spawn(transport.limiter.clone(), MAX_BATCH, never, move |inputs| {
                    let (t, ty) = (t.clone(), ty.clone());
                    async move { create_batch(&t, &ty, inputs).await }
                })
            })
            .clone()
    }
}

fn route_for(object_type: &str) -> &'static str {
    match object_type {
        "tasks" => "tasks_batch_create",
        "notes" => "notes_batch_create",
        "tickets" => "tickets_batch_create",
        "deals" => "deals_batch_create",
        _ => "objects_batch_create",
    }
}

async fn create_batch(
    t: &Transport,
    object_type: &str,
    inputs: Vec<NewRecord>,
) -> BatchResult<String> {
    let route = route_for(object_type);
    let type_id = to_contact_type(object_type);
    let body = json!({
        "inputs": inputs.iter().enumerate().map(|(i, r)| json!({
            "properties": r.properties,
            "associations": [{
                "to": {"id": r.contact_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            }],
            "objectWriteTraceId": trace_id(i),
        })).collect::<Vec<_>>(),
    });
    let path = format!("{}/batch/create", t.objects(object_type));
    let answer = t.call(route, Method::POST, &path, Some(&body)).await?;
    let created: Vec<(Option<String>, Created)> = answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|rec| {
                    let trace = rec.get("objectWriteTraceId").and_then(Value::as_str);
                    Some((
                        trace.map(str::to_owned),
                        (record_id(rec)?, record_properties(rec)),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let errors = item_errors(route, &answer.body);
    Ok(
        pair_created(route, inputs.len(), created, errors, |i, (_, props)| {
            inputs[i].match_on.matches(props)
        })
        .into_iter()
        .map(|r| r.map(|(id, _)| id))
        .collect(),
    )
}

impl HubSpot {
    /// Creates a task, note, ticket or deal associated with the contact; returns its id.
    pub async fn create_record(
        &self,
        object_type: &str,
        record: NewRecord,
    ) -> Result<String, HubspotError> {
        self.objects
            .creator(&self.transport, object_type)
            .call(record)
            .await
    }

    /// The record of `object_type` whose unique `property` equals `value`.
    pub async fn record_by(
        &self,
        object_type: &str,
        property: &str,
        value: &str,
    ) -> Result<Option<String>, HubspotError> {
        let t = self.transport();
        let body = json!({
            "inputs": [{"id": value}],
            "idProperty": property,
            "properties": [property],
        });
        let path = format!("{}/batch/read", t.objects(object_type));
        let answer = t
            .call("objects_batch_read", Method::POST, &path, Some(&body))
            .await?;
        Ok(answer
            .body
            .get("results")
            .and_then(Value::as_array)
            .and_then(|r| r.iter().find_map(record_id)))
    }

    /// Ids of the records of `to_type` associated with a contact: every page ("Limit 500
    /// per call"; the next page's cursor is `paging.next.after`, absent on the last page —
    /// HubSpot's associations v4 spec).
    pub async fn contact_associations(
        &self,
        contact_id: &str,
        to_type: &str,
    ) -> Result<Vec<String>, HubspotError> {
        let t = self.transport();
        let base = t.associations("contacts", contact_id, to_type);
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        // A bound, so a cursor that never ends cannot hold a job forever (10,000 pages).
        for _ in 0..10_000 {
            let path = match &after {
                None => format!("{base}?limit=500"),
                Some(a) => format!("{base}?limit=500&after={}", super::crm::urlencode(a)),
            };
            let answer = t
                .call("associations_read", Method::GET, &path, None)
                .await?;
            if let Some(results) = answer.body.get("results").and_then(Value::as_array) {
                ids.extend(results.iter().filter_map(|a| match a.get("toObjectId")? {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }));
            }
            let next = answer
                .body
                .pointer("/paging/next/after")
                .and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
            match next {
                Some(n) if after.as_ref() != Some(&n) => after = Some(n),
                _ => return Ok(ids),
            }
        }
        Ok(ids)
    }

    /// Reads records by id with the given properties.
    pub async fn records(
        &self,
        object_type: &str,
        ids: &[String],
        properties: &[&str],
    ) -> Result<Vec<(String, BTreeMap<String, String>)>, HubspotError> {
        let t = self.transport();
        let mut out = Vec::new();
        for chunk in ids.chunks(MAX_BATCH) {
            let body = json!({
                "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                "properties": properties,
            });
            let path = format!("{}/batch/read", t.objects(object_type));
            let answer = t
                .call("objects_batch_read", Method::POST, &path, Some(&body))
                .await?;
            if let Some(results) = answer.body.get("results").and_then(Value::as_array) {
                out.extend(
                    results
                        .iter()
                        .filter_map(|r| Some((record_id(r)?, record_properties(r)))),
                );
            }
        }
        Ok(out)
    }
}
