//! Contacts: batch read by an id property (never search), batch create, batch update.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use super::answer::item_errors;
use super::batch::{BatchResult, Batcher, pair_created, trace_id};
use super::transport::Transport;
use super::{HubSpot, HubspotError, MAX_BATCH, Properties, record_id, record_properties};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub properties: BTreeMap<String, String>,
}

impl Contact {
    pub(super) fn from_record(record: &Value) -> Option<Self> {
        Some(Self {
            id: record_id(record)?,
            properties: record_properties(record),
        })
    }

    pub fn get(&self, property: &str) -> Option<&str> {
        self.properties
            .get(property)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether this is the contact once known by `id`: its own, or one merged into it
    /// (`hs_merged_object_ids`, `;`-separated).
    pub fn answers_to(&self, id: &str) -> bool {
        self.id == id
            || self
                .get("hs_merged_object_ids")
                .is_some_and(|m| m.split(';').any(|old| old.trim() == id))
    }
}

type ReadBatcher = Batcher<String, Option<Contact>>;

#[derive(Clone)]
pub(super) struct Batchers {
    /// One batcher per id property (`stripe_customer_id`, `email`).
    read: Arc<Mutex<BTreeMap<String, ReadBatcher>>>,
    create: Batcher<Properties, Contact>,
    update: Batcher<(String, Properties), Contact>,
    transport: Arc<Transport>,
    read_properties: Arc<Vec<String>>,
}

// The batcher compares its inputs (`String`s) through a `fn(&I, &I)`.
#[allow(clippy::ptr_arg)]
fn same_value(a: &String, b: &String) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn same_record(a: &(String, Properties), b: &(String, Properties)) -> bool {
    a.0 == b.0
}

fn never(_: &Properties, _: &Properties) -> bool {
    false
}

impl Batchers {
    pub(super) fn spawn(
        transport: &Arc<Transport>,
        read_properties: Arc<Vec<String>>,
        id_property: &str,
    ) -> Self {
        let t = transport.clone();
        let key = id_property.to_owned();
        let create = Batcher::spawn(transport.limiter.clone(), MAX_BATCH, never, move |inputs| {
            let (t, key) = (t.clone(), key.clone());
            async move { create_batch(&t, &key, inputs).await }
        });
        let t = transport.clone();
        let update = Batcher::spawn(
            transport.limiter.clone(),
            MAX_BATCH,
            same_record,
            move |inputs| {
                let t = t.clone();
                async move { update_batch(&t, inputs).await }
            },
        );
        Self {
            read: Arc::new(Mutex::new(BTreeMap::new())),
            create,
            update,
            transport: transport.clone(),
            read_properties,
        }
    }

    fn reader(&self, id_property: &str) -> ReadBatcher {
        let mut readers = match self.read.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        readers
            .entry(id_property.to_owned())
            .or_insert_with(|| {
                let t = self.transport.clone();
                let p = id_property.to_owned();
                let props = self.read_properties.clone();
                Batcher::spawn(t.limiter.clone(), MAX_BATCH, same_value, move |inputs| {
                    let (t, p, props) = (t.clone(), p.clone(), props.clone());
                    async move { read_batch(&t, &p, &props, inputs).await }
                })
            })
            .clone()
    }
}

async fn read_batch(
    t: &Transport,
    id_property: &str,
    properties: &[String],
    values: Vec<String>,
) -> BatchResult<Option<Contact>> {
    let mut body = json!({
        "inputs": values.iter().map(|v| json!({"id": v})).collect::<Vec<_>>(),
        "properties": properties,
    });
    // By record id, HubSpot wants no idProperty at all.
    if id_property != "hs_object_id" {
        body["idProperty"] = json!(id_property);
    }
    let path = format!("{}/batch/read", t.objects("contacts"));
    let answer = t
        .call("contacts_batch_read", Method::POST, &path, Some(&body))
        .await?;
    let found: Vec<Contact> = answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Contact::from_record).collect())
        .unwrap_or_default();
    Ok(values
        .iter()
        .map(|v| {
            Ok(found
                .iter()
                .find(|c| {
                    c.get(id_property)
                        .is_some_and(|p| p.eq_ignore_ascii_case(v))
                        // A merged-away id may be answered with the surviving contact
                        // (whether HubSpot does is not settled; it may leave it out).
                        || (id_property == "hs_object_id" && c.answers_to(v))
                })
                .cloned())
        })
        .collect())
}

async fn create_batch(t: &Transport, key: &str, inputs: Vec<Properties>) -> BatchResult<Contact> {
    let body = json!({
        "inputs": inputs.iter().enumerate().map(|(i, p)| json!({
            "properties": p,
            "objectWriteTraceId": trace_id(i),
        })).collect::<Vec<_>>(),
    });
    let path = format!("{}/batch/create", t.objects("contacts"));
    let answer = t
        .call("contacts_batch_create", Method::POST, &path, Some(&body))
        .await?;
    let created: Vec<(Option<String>, Contact)> = answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|rec| {
                    let trace = rec.get("objectWriteTraceId").and_then(Value::as_str);
                    Some((trace.map(str::to_owned), Contact::from_record(rec)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let errors = item_errors("contacts_batch_create", &answer.body);
    // Without an echoed trace id, a contact is told by its unique key (or email).
    Ok(pair_created(
        "contacts_batch_create",
        inputs.len(),
        created,
        errors,
        |i, c| match (inputs[i].get(key), inputs[i].get("email")) {
            (Some(k), _) => c.get(key) == Some(k.as_str()),
            (None, Some(email)) => c
                .get("email")
                .is_some_and(|e| e.eq_ignore_ascii_case(email)),
            (None, None) => false,
        },
    ))
}

async fn update_batch(t: &Transport, inputs: Vec<(String, Properties)>) -> BatchResult<Contact> {
    let body = json!({
        "inputs": inputs.iter().map(|(id, p)| json!({"id": id, "properties": p})).collect::<Vec<_>>(),
    });
    let path = format!("{}/batch/update", t.objects("contacts"));
    let answer = t
        .call("contacts_batch_update", Method::POST, &path, Some(&body))
        .await?;
    let updated: Vec<Contact> = answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Contact::from_record).collect())
        .unwrap_or_default();
    // A merged or deleted contact is one `OBJECT_NOT_FOUND` error naming the missing ids
    // (batch update does not take a merged-away id: Using Object APIs).
    let errors = item_errors("contacts_batch_update", &answer.body);
    let unnamed: Vec<&HubspotError> = errors
        .iter()
        .filter(|e| e.ids.is_empty())
        .map(|e| &e.error)
        .collect();
    let missing = inputs
        .iter()
        .filter(|(id, _)| !updated.iter().any(|c| &c.id == id))
        .count();
    Ok(inputs
        .iter()
        .map(|(id, _)| match updated.iter().find(|c| &c.id == id) {
            Some(c) => Ok(c.clone()),
            None => Err(errors
                .iter()
                .find(|e| e.ids.contains(id))
                .map(|e| e.error.clone())
                .or_else(|| match (missing, &unnamed[..]) {
                    (1, [only]) => Some((*only).clone()),
                    _ => None,
                })
                .unwrap_or_else(|| HubspotError::Retryable {
                    route: "contacts_batch_update",
                    status: Some(answer.status),
                    message: format!("contact {id} is missing from HubSpot's answer"),
                    retry_after: None,
                })),
        })
        .collect())
}

impl HubSpot {
    /// The contact whose `id_property` equals `value` (batch read; no search, no index lag).
    pub async fn contact_by(
        &self,
        id_property: &str,
        value: &str,
    ) -> Result<Option<Contact>, HubspotError> {
        self.contacts
            .reader(id_property)
            .call(value.to_owned())
            .await
    }

    pub async fn create_contact(&self, properties: Properties) -> Result<Contact, HubspotError> {
        self.contacts.create.call(properties).await
    }

    /// Writes properties on a contact; the answer has the values HubSpot kept.
    pub async fn update_contact(
        &self,
        id: &str,
        properties: Properties,
    ) -> Result<Contact, HubspotError> {
        self.contacts.update.call((id.to_owned(), properties)).await
    }
}
