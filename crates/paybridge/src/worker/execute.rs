//! Executing one step through its [`StepContext`]: property writes behind the stale guard,
//! workflow enrolment, list membership, Slack and provisioning calls, sequences; creates
//! are in `create`. A step that needs a contact and has none is recorded as skipped.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resolve::{Resolved, vanished};
use super::step::StepContext;
use super::{Pipeline, WorkError, create, sequences};
use crate::hubspot::Properties;
use crate::rules::Action;

pub(crate) async fn execute(cx: &mut StepContext<'_>) -> Result<(), WorkError> {
    let (p, step) = (cx.p, cx.step);
    let contact = match (step.action.needs_contact(), cx.contact) {
        (true, Some(c)) => Some(c),
        (true, None) => {
            cx.finished("skipped", Some(&json!({"reason": "no contact"})))
                .await?;
            cx.say(format!("step {} skipped: no contact to act on", step.key));
            return Ok(());
        }
        (false, c) => c,
    };
    let result: Value = match (&step.action, contact) {
        (Action::LinkContact, Some(c)) => json!({ "contact_id": c.id }),
        (
            Action::UpdateContact {
                properties,
                aggregates,
            },
            Some(c),
        ) => return update_contact(cx, c, properties, aggregates).await,
        (
            Action::EnrollWorkflow {
                workflow_id,
                trigger_property,
            },
            Some(c),
        ) => enroll(cx, c, workflow_id.as_deref(), trigger_property.as_ref()).await?,
        (Action::AddToList { list_id }, Some(c)) => {
            p.inner.hubspot.add_to_list(list_id, &c.id).await?;
            cx.say(format!("contact {} added to list {list_id}", c.id));
            json!({ "contact_id": c.id, "list_id": list_id })
        }
        (Action::RemoveFromList { list_id }, Some(c)) => {
            p.inner.hubspot.remove_from_list(list_id, &c.id).await?;
            cx.say(format!("contact {} removed from list {list_id}", c.id));
            json!({ "contact_id": c.id, "list_id": list_id })
        }
        (Action::NotifySlack { url, text }, _) => {
            cx.started().await?;
            let body = serde_json::to_vec(&json!({ "text": text }))
                .map_err(|e| WorkError::Terminal(e.to_string()))?;
            post(p, url.expose(), body, &[], "Slack").await?;
            cx.say("Slack notified".to_string());
            json!({ "sent": true })
        }
        (
            Action::CallWebhook {
                url,
                secret,
                payload,
            },
            _,
        ) => {
            cx.started().await?;
            let body =
                serde_json::to_vec(payload).map_err(|e| WorkError::Terminal(e.to_string()))?;
            let t = p.inner.clock.now_secs();
            let signature = crate::stripe::sign(secret.expose(), t, &body);
            let headers = [
                ("Paybridge-Signature", signature),
                ("Idempotency-Key", step.key.clone()),
            ];
            let status = post(p, url, body, &headers, "provisioning endpoint").await?;
            cx.say(format!("provisioning endpoint {url} answered {status}"));
            json!({ "status": status })
        }
        (Action::StartSequence { name }, _) => return sequences::execute(cx, name, true).await,
        (Action::StopSequence { name }, _) => return sequences::execute(cx, name, false).await,
        (
            Action::CreateTask { .. }
            | Action::CreateNote { .. }
            | Action::CreateTicket { .. }
            | Action::CreateDeal { .. },
            Some(c),
        ) => create::record(cx, c).await?,
        // Unreachable: a step that needs a contact and has none was skipped above.
        (_, None) => return Ok(()),
    };
    cx.finished("done", Some(&result)).await
}

/// Sets the workflow's trigger property, then enrols the contact by email.
async fn enroll(
    cx: &mut StepContext<'_>,
    c: &Resolved,
    workflow_id: Option<&str>,
    trigger_property: Option<&(String, String)>,
) -> Result<Value, WorkError> {
    let p = cx.p;
    let hubspot = &p.inner.hubspot;
    if let Some((name, value)) = trigger_property {
        let mut props = Properties::new();
        props.insert(name.clone(), value.clone());
        hubspot.update_contact(&c.id, props).await?;
        cx.say(format!(
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
        // An attempt that enrolled and did not hear HubSpot's answer (or died before
        // recording it) left the step `started`: enrolling again would run the workflow
        // twice for the contact.
        if cx.interrupted() && hubspot.enrolled_in(&c.id, workflow).await? {
            cx.say(format!(
                "contact {} ({email}) was already enrolled in workflow {workflow} by an interrupted attempt; not enrolled again",
                c.id
            ));
            return Ok(json!({ "contact_id": c.id, "recovered": true }));
        }
        cx.started().await?;
        let v2 = hubspot.enroll_in_workflow(workflow, email).await?;
        cx.say(if v2 == workflow {
            format!("contact {} ({email}) enrolled in workflow {workflow}", c.id)
        } else {
            format!(
                "contact {} ({email}) enrolled in workflow {v2} (the v2 id of v4 flow {workflow})",
                c.id
            )
        });
    }
    Ok(json!({ "contact_id": c.id }))
}

/// Writes the properties no newer event has written (the watermarks read before the
/// first step), plus the aggregates; raises the watermarks and marks the step done together.
async fn update_contact(
    cx: &mut StepContext<'_>,
    contact: &Resolved,
    properties: &BTreeMap<String, String>,
    aggregates: &BTreeMap<String, String>,
) -> Result<(), WorkError> {
    let (p, fact) = (cx.p, cx.fact);
    let i = &p.inner;
    let mut write = BTreeMap::new();
    let mut stale = Vec::new();
    for (name, value) in properties {
        match cx.watermarks.get(name) {
            Some(last) if fact.occurred_at < *last => stale.push(name.clone()),
            _ => {
                write.insert(name.clone(), value.clone());
            }
        }
    }
    for name in &stale {
        cx.say(format!(
            "property {name} skipped: a newer event already wrote it (this event is from {})",
            fact.occurred_at
        ));
    }
    super::lifecycle::forward_only(cx, contact, &mut write).await?;
    write.extend(aggregates.iter().map(|(k, v)| (k.clone(), v.clone())));
    // What the contact's create carried in this run is not written again; an email to
    // attach goes with this update.
    let mut send = write.clone();
    send.retain(|k, v| contact.written.get(k) != Some(v));
    if let Some(email) = &contact.pending_email {
        send.entry("email".into()).or_insert_with(|| email.clone());
    }
    if write.is_empty() && send.is_empty() {
        return cx.finished("skipped", Some(&json!({"stale": stale}))).await;
    }
    let customer = fact.customer.as_ref().map(|c| c.as_str());
    if let Some(email) = send.get("email")
        && contact.pending_email.as_ref() != Some(email)
    {
        super::resolve::email_is_free(p, contact, customer, email).await?;
    }
    if !send.is_empty() {
        write_properties(cx, contact, &send).await?;
    }
    if let (Some(email), Some(customer)) = (send.get("email"), customer) {
        i.store
            .remember_contact(customer, &contact.id, Some(email))
            .await?;
    }
    let with_create: Vec<String> = write
        .keys()
        .filter(|k| !send.contains_key(*k))
        .cloned()
        .collect();
    write.extend(send.clone());
    let watermarked: Vec<String> = write
        .keys()
        .filter(|k| properties.contains_key(*k))
        .cloned()
        .collect();
    let result = json!({ "contact_id": contact.id, "written": write, "stale": stale, "with_create": with_create });
    i.store
        .record_property_write(
            &contact.id,
            &watermarked,
            fact.occurred_at,
            cx.start(),
            &result,
        )
        .await?;
    let shown = |props: &BTreeMap<String, String>| {
        props
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if send.is_empty() {
        cx.say(format!(
            "properties written with contact {}'s create: {}",
            contact.id,
            shown(&write)
        ));
    } else {
        cx.say(format!(
            "property updated on contact {}: {}",
            contact.id,
            shown(&send)
        ));
    }
    Ok(())
}

/// One contact update; a vanished contact is forgotten, and an attached email that
/// another contact has is for a person to decide.
async fn write_properties(
    cx: &mut StepContext<'_>,
    contact: &Resolved,
    send: &BTreeMap<String, String>,
) -> Result<(), WorkError> {
    match cx
        .p
        .inner
        .hubspot
        .update_contact(&contact.id, send.clone())
        .await
    {
        Ok(_) => Ok(()),
        // In a batch update's 207, a merged or deleted contact is an OBJECT_NOT_FOUND item.
        Err(e) if e.status() == Some(404) => Err(vanished(cx, &contact.id).await),
        Err(e) if e.category() == Some("CONFLICT") && contact.pending_email.is_some() => {
            Err(WorkError::NeedsAttention {
                message: format!(
                    "contact {} was created without an email; its email {} belongs to another contact ({}) — merge them in HubSpot, then `paybridge events retry`",
                    contact.id,
                    contact.pending_email.as_deref().unwrap_or_default(),
                    e.message()
                ),
                contact_id: Some(contact.id.clone()),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// POSTs JSON; any non-2xx is worth retrying ("retried until it answers 2xx").
async fn post(
    p: &Pipeline,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
    what: &str,
) -> Result<u16, WorkError> {
    // Not allowed now is not allowed on a retry either: the event waits for a person.
    p.inner
        .outbound
        .check(url)
        .map_err(|why| WorkError::Terminal(format!("{what} not called: {why}")))?;
    let mut request = p
        .inner
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.map_err(|e| {
        WorkError::Again(format!(
            "{what} unreachable: {}",
            super::outbound::describe(e)
        ))
    })?;
    let status = response.status().as_u16();
    if response.status().is_success() {
        Ok(status)
    } else if response.status().is_redirection() {
        Err(WorkError::Again(format!(
            "{what} answered {status} (a redirect; redirects are not followed: configure the final URL)"
        )))
    } else {
        Err(WorkError::Again(format!("{what} answered {status}")))
    }
}
