//! Creating tasks, notes, tickets and deals exactly once. The step records `started`
//! before the create and the created id after; a step found `started` without a result
//! looks for what it may have created before creating again: tickets and deals by their
//! unique `paybridge_key` (the step key), tasks and notes by a marker in the text of their
//! body among the contact's records (text survives HubSpot's rich-text sanitiser where an
//! HTML comment may not: see `hubspot::richtext`).

use serde_json::{Value, json};

use super::WorkError;
use super::resolve::Resolved;
use super::step::StepContext;
use crate::hubspot::richtext::has_marker;
use crate::hubspot::{HubspotError, MatchOn, NewRecord, Properties};
use crate::rules::Action;
use crate::rules::plan::Owner;

/// HubSpot properties from (name, value) pairs; absent values are left out.
fn properties<const N: usize>(pairs: [(&str, Option<String>); N]) -> Properties {
    pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
        .collect()
}

/// The marker a task or note carries in the text of its body: `[paybridge:<step key>]`,
/// or a digest of the key when the key holds a character an HTML encoder could rewrite
/// (a rendered `once_per` may).
pub fn marker(key: &str) -> String {
    let safe = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'));
    if safe {
        format!("[paybridge:{key}]")
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        format!("[paybridge:h{}]", hex::encode(&digest[..12]))
    }
}

/// The body as written: the rule's text, then the marker in a paragraph of its own.
fn with_marker(body: &str, key: &str) -> String {
    format!("{body}<p>{}</p>", marker(key))
}

/// Runs a create step (`create_task`, `create_note`, `create_ticket`, `create_deal`) for
/// `contact`; returns the step's result.
pub(crate) async fn record(
    cx: &mut StepContext<'_>,
    contact: &Resolved,
) -> Result<Value, WorkError> {
    let step = cx.step;
    match &step.action {
        Action::CreateTask {
            subject,
            body,
            due_at_ms,
            priority,
            task_type,
            owner,
        } => {
            let body = with_marker(body.as_deref().unwrap_or_default(), &step.key);
            let props = properties([
                ("hs_task_subject", Some(subject.clone())),
                ("hs_task_body", Some(body)),
                ("hs_timestamp", Some(due_at_ms.to_string())),
                ("hs_task_status", Some("NOT_STARTED".into())),
                ("hs_task_priority", priority.clone()),
                ("hs_task_type", task_type.clone()),
            ]);
            engagement(cx, contact, ("tasks", "hs_task_body"), props, owner).await
        }
        Action::CreateNote { body } => {
            let props = properties([
                ("hs_note_body", Some(with_marker(body, &step.key))),
                ("hs_timestamp", Some(cx.p.inner.clock.now_ms().to_string())),
            ]);
            engagement(cx, contact, ("notes", "hs_note_body"), props, &Owner::None).await
        }
        Action::CreateTicket {
            subject,
            content,
            pipeline,
            stage,
            priority,
            category,
            owner,
        } => {
            let props = properties([
                ("subject", Some(subject.clone())),
                ("hs_pipeline", Some(pipeline.clone())),
                ("hs_pipeline_stage", Some(stage.clone())),
                ("content", content.clone()),
                ("hs_ticket_priority", priority.clone()),
                ("hs_ticket_category", category.clone()),
            ]);
            keyed(cx, contact, "tickets", props, owner).await
        }
        Action::CreateDeal {
            name,
            amount,
            pipeline,
            stage,
            close_date_ms,
            owner,
        } => {
            let props = properties([
                ("dealname", Some(name.clone())),
                ("pipeline", Some(pipeline.clone())),
                ("dealstage", Some(stage.clone())),
                ("amount", amount.clone()),
                ("closedate", close_date_ms.map(|ms| ms.to_string())),
            ]);
            keyed(cx, contact, "deals", props, owner).await
        }
        other => Err(WorkError::Terminal(format!(
            "{} is not a create action",
            other.kind()
        ))),
    }
}

/// The owner id for a created record, or None (unassigned).
async fn owner_id(
    cx: &mut StepContext<'_>,
    contact: &Resolved,
    owner: &Owner,
) -> Result<Option<String>, WorkError> {
    let p = cx.p;
    let hubspot = &p.inner.hubspot;
    match owner {
        Owner::None => Ok(None),
        Owner::Id(id) => Ok(Some(id.clone())),
        Owner::Email(email) => match hubspot.owner_id_by_email(email).await? {
            Some(id) => Ok(Some(id)),
            None => Err(WorkError::Terminal(format!(
                "no HubSpot owner has the email {email} (check the rule's owner)"
            ))),
        },
        Owner::ContactOwner => {
            let owner = match &contact.owner {
                Some(o) => Some(o.clone()),
                None if contact.owner_known => None,
                None => match hubspot.contact_by("hs_object_id", &contact.id).await? {
                    Some(c) => c.get("hubspot_owner_id").map(str::to_owned),
                    // Merged away (and not answered with the survivor) or deleted.
                    None => return Err(super::resolve::vanished(cx, &contact.id).await),
                },
            };
            if owner.is_none() {
                cx.say(format!(
                    "contact {} has no owner; the record is created unassigned",
                    contact.id
                ));
            }
            Ok(owner)
        }
    }
}

/// Tasks and notes (`(object type, body property)`): found again by their marker among
/// the contact's records.
async fn engagement(
    cx: &mut StepContext<'_>,
    contact: &Resolved,
    (object_type, body_property): (&str, &str),
    mut props: Properties,
    owner: &Owner,
) -> Result<Value, WorkError> {
    let p = cx.p;
    let hubspot = &p.inner.hubspot;
    let mark = marker(&cx.step.key);
    if cx.interrupted() {
        let ids = hubspot
            .contact_associations(&contact.id, object_type)
            .await?;
        let records = hubspot.records(object_type, &ids, &[body_property]).await?;
        if let Some((id, _)) = records.iter().find(|(_, props)| {
            props
                .get(body_property)
                .is_some_and(|b| has_marker(b, &mark))
        }) {
            cx.say(format!(
                "{} {id} was already created by an interrupted attempt; recorded, not created again",
                singular(object_type)
            ));
            return Ok(json!({ "id": id, "recovered": true }));
        }
    }
    if let Some(owner) = owner_id(cx, contact, owner).await? {
        props.insert("hubspot_owner_id".into(), owner);
    }
    cx.started().await?;
    let id = hubspot
        .create_record(
            object_type,
            NewRecord {
                properties: props,
                contact_id: contact.id.clone(),
                match_on: MatchOn::Marker {
                    property: body_property.to_owned(),
                    marker: mark,
                },
            },
        )
        .await?;
    cx.say(format!(
        "{} {id} created for contact {}",
        singular(object_type),
        contact.id
    ));
    Ok(json!({ "id": id }))
}

/// Tickets and deals: created with a unique `paybridge_key` (the step key), so a second
/// create is refused by HubSpot and the first one is found by that key.
async fn keyed(
    cx: &mut StepContext<'_>,
    contact: &Resolved,
    object_type: &str,
    mut props: Properties,
    owner: &Owner,
) -> Result<Value, WorkError> {
    let p = cx.p;
    let hubspot = &p.inner.hubspot;
    let step = cx.step;
    let key = &step.key;
    if cx.interrupted()
        && let Some(id) = hubspot.record_by(object_type, "paybridge_key", key).await?
    {
        cx.say(format!(
            "{} {id} was already created by an interrupted attempt; recorded, not created again",
            singular(object_type)
        ));
        return Ok(json!({ "id": id, "recovered": true }));
    }
    if let Some(owner) = owner_id(cx, contact, owner).await? {
        props.insert("hubspot_owner_id".into(), owner);
    }
    props.insert("paybridge_key".into(), key.clone());
    cx.started().await?;
    let created = hubspot
        .create_record(
            object_type,
            NewRecord {
                properties: props,
                contact_id: contact.id.clone(),
                match_on: MatchOn::Exact {
                    property: "paybridge_key".into(),
                    value: key.clone(),
                },
            },
        )
        .await;
    let id = match created {
        Ok(id) => id,
        // A record already holds this key (a create whose answer was lost, or a twin
        // refused). HubSpot's answer to a duplicate unique value is not settled (409
        // CONFLICT, 409 OBJECT_ALREADY_EXISTS, a 400 "already has that value"…), so any
        // refusal is checked the same way: read the record by its key; if there is one,
        // it is this step's.
        Err(e @ HubspotError::Terminal { .. }) if e.category() != Some("MISSING_SCOPES") => {
            match hubspot.record_by(object_type, "paybridge_key", key).await? {
                Some(id) => {
                    cx.say(format!(
                        "{} {id} already existed with this step's key ({}); recorded, not created again",
                        singular(object_type),
                        e.category().unwrap_or("refused")
                    ));
                    return Ok(json!({ "id": id, "recovered": true }));
                }
                None => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    cx.say(format!(
        "{} {id} created for contact {}",
        singular(object_type),
        contact.id
    ));
    Ok(json!({ "id": id }))
}

fn singular(object_type: &str) -> &str {
    object_type.strip_suffix('s').unwrap_or(object_type)
}
