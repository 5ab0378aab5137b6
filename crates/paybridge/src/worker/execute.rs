//! Executing one step, exactly once: a step already `done` is skipped; a create records
//! `started` first and its id after, and a step found `started` without a result looks for
//! what it may have created before creating again (tickets and deals by their unique
//! `paybridge_key`, tasks and notes by a hidden marker among the contact's records).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::process::start_of;
use super::resolve::Resolved;
use super::{Log, Pipeline, WorkError};
use crate::domain::PaymentFact;
use crate::hubspot::{HubspotError, NewRecord, Properties};
use crate::rules::plan::Owner;
use crate::rules::{Action, Step};
use crate::store::StepRecord;

/// HubSpot properties from (name, value) pairs; absent values are left out.
fn properties<const N: usize>(pairs: [(&str, Option<String>); N]) -> Properties {
    pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
        .collect()
}

/// The hidden marker a task or note carries: an HTML comment in its body.
pub fn marker(key: &str) -> String {
    format!("<!-- paybridge:{key} -->")
}

pub(crate) async fn execute(
    p: &Pipeline,
    fact: &PaymentFact,
    contact: Option<&Resolved>,
    step: &Step,
    log: &mut Log,
) -> Result<(), WorkError> {
    let i = &p.inner;
    let existing = i.store.step(&step.key).await?;
    if existing.as_ref().is_some_and(|s| s.status == "done") {
        log.say(format!("step {} already done; skipped", step.key));
        return Ok(());
    }
    let detail = json!(step.action);
    let start = start_of(fact, step, &detail);
    let contact = match (step.action.needs_contact(), contact) {
        (true, Some(c)) => Some(c),
        (true, None) => {
            i.store
                .step_finished(
                    start,
                    "skipped",
                    Some(&json!({"reason": "no contact"})),
                    None,
                )
                .await?;
            log.say(format!("step {} skipped: no contact to act on", step.key));
            return Ok(());
        }
        (false, c) => c,
    };
    let result: Value = match &step.action {
        Action::LinkContact => {
            let Some(c) = contact else { return Ok(()) };
            json!({ "contact_id": c.id })
        }
        Action::UpdateContact {
            properties,
            aggregates,
        } => {
            let Some(c) = contact else { return Ok(()) };
            return update_contact(p, fact, c, step, properties, aggregates, log).await;
        }
        Action::EnrollWorkflow {
            workflow_id,
            trigger_property,
        } => {
            let Some(c) = contact else { return Ok(()) };
            if let Some((name, value)) = trigger_property {
                let mut props = Properties::new();
                props.insert(name.clone(), value.clone());
                i.hubspot.update_contact(&c.id, props).await?;
                log.say(format!(
                    "workflow trigger property {name}={value} set on contact {}",
                    c.id
                ));
            }
            if let Some(workflow) = workflow_id {
                let email = c.email.as_deref().ok_or_else(|| {
                    WorkError::Terminal(format!(
                        "workflow {workflow} enrols by email, and contact {} has none",
                        c.id
                    ))
                })?;
                i.store.step_started(start_of(fact, step, &detail)).await?;
                i.hubspot.enroll_in_workflow(workflow, email).await?;
                log.say(format!(
                    "contact {} ({email}) enrolled in workflow {workflow}",
                    c.id
                ));
            }
            json!({ "contact_id": c.id })
        }
        Action::AddToList { list_id } => {
            let Some(c) = contact else { return Ok(()) };
            i.hubspot.add_to_list(list_id, &c.id).await?;
            log.say(format!("contact {} added to list {list_id}", c.id));
            json!({ "contact_id": c.id, "list_id": list_id })
        }
        Action::RemoveFromList { list_id } => {
            let Some(c) = contact else { return Ok(()) };
            i.hubspot.remove_from_list(list_id, &c.id).await?;
            log.say(format!("contact {} removed from list {list_id}", c.id));
            json!({ "contact_id": c.id, "list_id": list_id })
        }
        Action::CreateTask {
            subject,
            body,
            due_at_ms,
            priority,
            task_type,
            owner,
        } => {
            let Some(c) = contact else { return Ok(()) };
            let body = format!("{}{}", body.clone().unwrap_or_default(), marker(&step.key));
            let props = properties([
                ("hs_task_subject", Some(subject.clone())),
                ("hs_task_body", Some(body)),
                ("hs_timestamp", Some(due_at_ms.to_string())),
                ("hs_task_status", Some("NOT_STARTED".into())),
                ("hs_task_priority", priority.clone()),
                ("hs_task_type", task_type.clone()),
            ]);
            create_engagement(
                p,
                c,
                step,
                existing.as_ref(),
                "tasks",
                "hs_task_body",
                props,
                owner,
                log,
                start,
            )
            .await?
        }
        Action::CreateNote { body } => {
            let Some(c) = contact else { return Ok(()) };
            let props = properties([
                ("hs_note_body", Some(format!("{body}{}", marker(&step.key)))),
                ("hs_timestamp", Some(i.clock.now_ms().to_string())),
            ]);
            create_engagement(
                p,
                c,
                step,
                existing.as_ref(),
                "notes",
                "hs_note_body",
                props,
                &Owner::None,
                log,
                start,
            )
            .await?
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
            let Some(c) = contact else { return Ok(()) };
            let props = properties([
                ("subject", Some(subject.clone())),
                ("hs_pipeline", Some(pipeline.clone())),
                ("hs_pipeline_stage", Some(stage.clone())),
                ("content", content.clone()),
                ("hs_ticket_priority", priority.clone()),
                ("hs_ticket_category", category.clone()),
            ]);
            create_keyed(
                p,
                c,
                step,
                existing.as_ref(),
                "tickets",
                props,
                owner,
                log,
                start,
            )
            .await?
        }
        Action::CreateDeal {
            name,
            amount,
            pipeline,
            stage,
            close_date_ms,
            owner,
        } => {
            let Some(c) = contact else { return Ok(()) };
            let props = properties([
                ("dealname", Some(name.clone())),
                ("pipeline", Some(pipeline.clone())),
                ("dealstage", Some(stage.clone())),
                ("amount", amount.clone()),
                ("closedate", close_date_ms.map(|ms| ms.to_string())),
            ]);
            create_keyed(
                p,
                c,
                step,
                existing.as_ref(),
                "deals",
                props,
                owner,
                log,
                start,
            )
            .await?
        }
        Action::NotifySlack { url, text } => {
            i.store.step_started(start_of(fact, step, &detail)).await?;
            post_json(p, url.expose(), &json!({ "text": text }), &[], "Slack").await?;
            log.say("Slack notified".to_string());
            json!({ "sent": true })
        }
        Action::CallWebhook {
            url,
            secret,
            payload,
        } => {
            i.store.step_started(start_of(fact, step, &detail)).await?;
            let body =
                serde_json::to_vec(payload).map_err(|e| WorkError::Terminal(e.to_string()))?;
            let t = i.clock.now_secs();
            let signature = crate::stripe::sign(secret.expose(), t, &body);
            let status = post_bytes(
                p,
                url,
                body,
                &[
                    ("Paybridge-Signature", signature),
                    ("Idempotency-Key", step.key.clone()),
                ],
                "provisioning endpoint",
            )
            .await?;
            log.say(format!("provisioning endpoint {url} answered {status}"));
            json!({ "status": status })
        }
        Action::StartSequence { name } | Action::StopSequence { name } => {
            let started = matches!(step.action, Action::StartSequence { .. });
            return super::sequences::execute(p, fact, step, name, started, log).await;
        }
    };
    i.store
        .step_finished(start_of(fact, step, &detail), "done", Some(&result), None)
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn update_contact(
    p: &Pipeline,
    fact: &PaymentFact,
    contact: &Resolved,
    step: &Step,
    properties: &BTreeMap<String, String>,
    aggregates: &BTreeMap<String, String>,
    log: &mut Log,
) -> Result<(), WorkError> {
    let i = &p.inner;
    let watermarks = i.store.watermarks(&contact.id).await?;
    let mut write = BTreeMap::new();
    let mut stale = Vec::new();
    for (name, value) in properties {
        match watermarks.get(name) {
            Some(last) if fact.occurred_at < *last => stale.push(name.clone()),
            _ => {
                write.insert(name.clone(), value.clone());
            }
        }
    }
    for name in &stale {
        log.say(format!(
            "property {name} skipped: a newer event already wrote it (this event is from {})",
            fact.occurred_at
        ));
    }
    write.extend(aggregates.iter().map(|(k, v)| (k.clone(), v.clone())));
    let detail = json!(step.action);
    if write.is_empty() {
        i.store
            .step_finished(
                start_of(fact, step, &detail),
                "skipped",
                Some(&json!({"stale": stale})),
                None,
            )
            .await?;
        return Ok(());
    }
    match i.hubspot.update_contact(&contact.id, write.clone()).await {
        Ok(_) => {}
        Err(HubspotError::Terminal { status: 404, .. }) => {
            if let Some(customer) = &fact.customer {
                i.store.forget_contact(customer.as_str()).await?;
            }
            return Err(WorkError::Again(format!(
                "contact {} no longer exists in HubSpot (deleted or merged); it will be resolved again",
                contact.id
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let watermarked: Vec<String> = write
        .keys()
        .filter(|k| properties.contains_key(*k))
        .cloned()
        .collect();
    let result = json!({ "contact_id": contact.id, "written": write, "stale": stale });
    i.store
        .record_property_write(
            &contact.id,
            &watermarked,
            fact.occurred_at,
            start_of(fact, step, &detail),
            &result,
        )
        .await?;
    log.say(format!(
        "property updated on contact {}: {}",
        contact.id,
        write
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// The owner id for a created record, or None (unassigned).
async fn owner_id(
    p: &Pipeline,
    contact: &Resolved,
    owner: &Owner,
    log: &mut Log,
) -> Result<Option<String>, WorkError> {
    let i = &p.inner;
    match owner {
        Owner::None => Ok(None),
        Owner::Id(id) => Ok(Some(id.clone())),
        Owner::Email(email) => match i.hubspot.owner_id_by_email(email).await? {
            Some(id) => Ok(Some(id)),
            None => Err(WorkError::Terminal(format!(
                "no HubSpot owner has the email {email} (check the rule's owner)"
            ))),
        },
        Owner::ContactOwner => {
            let owner = match &contact.owner {
                Some(o) => Some(o.clone()),
                None => i
                    .hubspot
                    .contact_by("hs_object_id", &contact.id)
                    .await?
                    .and_then(|c| c.get("hubspot_owner_id").map(str::to_owned)),
            };
            if owner.is_none() {
                log.say(format!(
                    "contact {} has no owner; the record is created unassigned",
                    contact.id
                ));
            }
            Ok(owner)
        }
    }
}

/// Tasks and notes: found again by their marker among the contact's records.
#[allow(clippy::too_many_arguments)]
async fn create_engagement(
    p: &Pipeline,
    contact: &Resolved,
    step: &Step,
    existing: Option<&StepRecord>,
    object_type: &str,
    body_property: &str,
    mut props: Properties,
    owner: &Owner,
    log: &mut Log,
    start: crate::store::StepStart<'_>,
) -> Result<Value, WorkError> {
    let i = &p.inner;
    let mark = marker(&step.key);
    if existing.is_some_and(|s| s.status == "started") {
        let ids = i
            .hubspot
            .contact_associations(&contact.id, object_type)
            .await?;
        let records = i
            .hubspot
            .records(object_type, &ids, &[body_property])
            .await?;
        if let Some((id, _)) = records
            .iter()
            .find(|(_, props)| props.get(body_property).is_some_and(|b| b.contains(&mark)))
        {
            log.say(format!(
                "{} {id} was already created by an interrupted attempt; recorded, not created again",
                singular(object_type)
            ));
            return Ok(json!({ "id": id, "recovered": true }));
        }
    }
    if let Some(owner) = owner_id(p, contact, owner, log).await? {
        props.insert("hubspot_owner_id".into(), owner);
    }
    let body = props.get(body_property).cloned().unwrap_or_default();
    i.store.step_started(start).await?;
    let id = i
        .hubspot
        .create_record(
            object_type,
            NewRecord {
                properties: props,
                contact_id: contact.id.clone(),
                match_on: (body_property.to_owned(), body),
            },
        )
        .await?;
    log.say(format!(
        "{} {id} created for contact {}",
        singular(object_type),
        contact.id
    ));
    Ok(json!({ "id": id }))
}

/// Tickets and deals: created with a unique `paybridge_key` (the step key), so a second
/// create is refused by HubSpot and the first one is found by that key.
#[allow(clippy::too_many_arguments)]
async fn create_keyed(
    p: &Pipeline,
    contact: &Resolved,
    step: &Step,
    existing: Option<&StepRecord>,
    object_type: &str,
    mut props: Properties,
    owner: &Owner,
    log: &mut Log,
    start: crate::store::StepStart<'_>,
) -> Result<Value, WorkError> {
    let i = &p.inner;
    if existing.is_some_and(|s| s.status == "started")
        && let Some(id) = i
            .hubspot
            .record_by(object_type, "paybridge_key", &step.key)
            .await?
    {
        log.say(format!(
            "{} {id} was already created by an interrupted attempt; recorded, not created again",
            singular(object_type)
        ));
        return Ok(json!({ "id": id, "recovered": true }));
    }
    if let Some(owner) = owner_id(p, contact, owner, log).await? {
        props.insert("hubspot_owner_id".into(), owner);
    }
    props.insert("paybridge_key".into(), step.key.clone());
    i.store.step_started(start).await?;
    let created = i
        .hubspot
        .create_record(
            object_type,
            NewRecord {
                properties: props,
                contact_id: contact.id.clone(),
                match_on: ("paybridge_key".into(), step.key.clone()),
            },
        )
        .await;
    let id = match created {
        Ok(id) => id,
        Err(HubspotError::Terminal { category, .. }) if category == "CONFLICT" => {
            match i
                .hubspot
                .record_by(object_type, "paybridge_key", &step.key)
                .await?
            {
                Some(id) => {
                    log.say(format!(
                        "{} {id} already existed with this step's key",
                        singular(object_type)
                    ));
                    return Ok(json!({ "id": id, "recovered": true }));
                }
                None => {
                    return Err(WorkError::Again(format!(
                        "{object_type} create conflicted but none has the key"
                    )));
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    log.say(format!(
        "{} {id} created for contact {}",
        singular(object_type),
        contact.id
    ));
    Ok(json!({ "id": id }))
}

fn singular(object_type: &str) -> &str {
    object_type.strip_suffix('s').unwrap_or(object_type)
}

async fn post_json(
    p: &Pipeline,
    url: &str,
    body: &Value,
    headers: &[(&str, String)],
    what: &str,
) -> Result<u16, WorkError> {
    let bytes = serde_json::to_vec(body).map_err(|e| WorkError::Terminal(e.to_string()))?;
    post_bytes(p, url, bytes, headers, what).await
}

/// POSTs JSON; any non-2xx is worth retrying ("retried until it answers 2xx").
async fn post_bytes(
    p: &Pipeline,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
    what: &str,
) -> Result<u16, WorkError> {
    let mut request = p
        .inner
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request
        .send()
        .await
        .map_err(|e| WorkError::Again(format!("{what} unreachable: {}", e.without_url())))?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(status)
    } else {
        Err(WorkError::Again(format!("{what} answered {status}")))
    }
}
