//! Tasks, notes, tickets and deals: batched creates with an inline association to the
//! contact, reads by a unique property (`paybridge_key`) and by id, and a contact's
//! associated records (to find a task or note by its hidden marker after a crash).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use super::batch::{BatchResult, Batcher};
use super::transport::Transport;
use super::{
    HubSpot, HubspotError, MAX_BATCH, Properties, batch_errors, record_id, record_properties,
};

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

/// A record to create, associated with a contact; `match_on` is a property whose value
/// identifies this input in HubSpot's answer (results are not promised in input order).
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub properties: Properties,
    pub contact_id: String,
    pub match_on: (String, String),
}

type CreateBatcher = Batcher<NewRecord, String>;

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
        "inputs": inputs.iter().map(|r| json!({
            "properties": r.properties,
            "associations": [{
                "to": {"id": r.contact_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            }],
        })).collect::<Vec<_>>(),
    });
    let path = format!("{}/batch/create", t.objects(object_type));
    let answer = t.call(route, Method::POST, &path, Some(&body)).await?;
    let created: Vec<(String, BTreeMap<String, String>)> = answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|rec| Some((record_id(rec)?, record_properties(rec))))
                .collect()
        })
        .unwrap_or_default();
    let mut errors = batch_errors(route, &answer.body)
        .into_iter()
        .map(|(_, e)| e);
    Ok(inputs
        .iter()
        .map(|input| {
            let (prop, value) = &input.match_on;
            match created
                .iter()
                .find(|(_, props)| props.get(prop).is_some_and(|v| v == value))
            {
                Some((id, _)) => Ok(id.clone()),
                None => Err(errors.next().unwrap_or_else(|| HubspotError::Retryable {
                    route,
                    status: Some(answer.status),
                    message: format!(
                        "the created {object_type} record is missing from HubSpot's answer"
                    ),
                    retry_after: None,
                })),
            }
        })
        .collect())
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

    /// Ids of the records of `to_type` associated with a contact.
    pub async fn contact_associations(
        &self,
        contact_id: &str,
        to_type: &str,
    ) -> Result<Vec<String>, HubspotError> {
        let t = self.transport();
        let path = format!(
            "{}?limit=500",
            t.associations("contacts", contact_id, to_type)
        );
        let answer = t
            .call("associations_read", Method::GET, &path, None)
            .await?;
        Ok(answer
            .body
            .get("results")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|a| match a.get("toObjectId")? {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default())
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
