//! List memberships (batched per list), v2 workflow enrolment, owners by email.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use super::batch::{BatchResult, Batcher};
use super::transport::Transport;
use super::{HubSpot, HubspotError, MAX_BATCH};

type MembershipBatcher = Batcher<String, ()>;

#[derive(Clone, Default)]
pub(super) struct Batchers {
    /// (list id, "add" | "remove") → batcher of contact ids.
    memberships: Arc<Mutex<BTreeMap<(String, &'static str), MembershipBatcher>>>,
}

fn same(a: &String, b: &String) -> bool {
    a == b
}

impl Batchers {
    fn membership(
        &self,
        transport: &Arc<Transport>,
        list_id: &str,
        op: &'static str,
    ) -> MembershipBatcher {
        let mut all = match self.memberships.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        all.entry((list_id.to_owned(), op))
            .or_insert_with(|| {
                let t = transport.clone();
                let list = list_id.to_owned();
                Batcher::spawn(transport.limiter.clone(), MAX_BATCH, same, move |ids| {
                    let (t, list) = (t.clone(), list.clone());
                    async move { membership_batch(&t, &list, op, ids).await }
                })
            })
            .clone()
    }
}

/// `PUT …/lists/{id}/memberships/{add|remove}` with a bare JSON array of record ids.
async fn membership_batch(
    t: &Transport,
    list_id: &str,
    op: &'static str,
    ids: Vec<String>,
) -> BatchResult<()> {
    let route = if op == "add" {
        "lists_memberships_add"
    } else {
        "lists_memberships_remove"
    };
    let path = format!("{}/{list_id}/memberships/{op}", t.family("lists"));
    let answer = t.call(route, Method::PUT, &path, Some(&json!(ids))).await?;
    let missing: Vec<String> = answer
        .body
        .get("recordIdsMissing")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ids
        .iter()
        .map(|id| {
            if missing.contains(id) {
                Err(HubspotError::Terminal {
                    route,
                    status: 200,
                    category: "OBJECT_NOT_FOUND".into(),
                    message: format!("HubSpot reports contact {id} missing for list {list_id}"),
                    correlation_id: None,
                })
            } else {
                Ok(())
            }
        })
        .collect())
}

impl HubSpot {
    /// Adds a contact to a manual list (idempotent: members stay members).
    pub async fn add_to_list(&self, list_id: &str, contact_id: &str) -> Result<(), HubspotError> {
        self.crm
            .membership(&self.transport, list_id, "add")
            .call(contact_id.to_owned())
            .await
    }

    pub async fn remove_from_list(
        &self,
        list_id: &str,
        contact_id: &str,
    ) -> Result<(), HubspotError> {
        self.crm
            .membership(&self.transport, list_id, "remove")
            .call(contact_id.to_owned())
            .await
    }

    /// Legacy v2 enrolment of a contact, by email, in a contact-based workflow (the only
    /// enrolment API HubSpot has; v4 and 2026-09 only manage definitions). `workflow_id`
    /// may also be a v4 `flowId`: the v2 path answers 404 for one (second-hand), so a 404
    /// is translated through the workflow-id mappings and tried once more (the translation
    /// is kept for the process's life). Returns the v2 id the contact was enrolled with.
    pub async fn enroll_in_workflow(
        &self,
        workflow_id: &str,
        email: &str,
    ) -> Result<String, HubspotError> {
        let known = self
            .workflow_cache
            .lock()
            .ok()
            .and_then(|c| c.get(workflow_id).cloned());
        let v2 = known.unwrap_or_else(|| workflow_id.to_owned());
        match self.enroll_v2(&v2, email).await {
            Err(e) if e.status() == Some(404) && v2 == workflow_id => {
                match self.workflow_ids(workflow_id).await?.as_flow_id {
                    Some(translated) if translated != workflow_id => {
                        if let Ok(mut c) = self.workflow_cache.lock() {
                            c.insert(workflow_id.to_owned(), translated.clone());
                        }
                        self.enroll_v2(&translated, email).await?;
                        Ok(translated)
                    }
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
            Ok(()) => Ok(v2),
        }
    }

    /// The v2 ids of the workflows a contact is currently enrolled in (legacy
    /// `GET /automation/v2/workflows/enrollments/contacts/{vid}`, "Get current enrollment").
    /// HubSpot's page describes a list and shows one workflow object; both are read.
    /// `workflow_id` as the rules name it is among them when it or its known v2 id is.
    pub async fn enrolled_in(
        &self,
        contact_id: &str,
        workflow_id: &str,
    ) -> Result<bool, HubspotError> {
        let t = self.transport();
        let path = format!(
            "/automation/v2/workflows/enrollments/contacts/{}",
            urlencode(contact_id)
        );
        let answer = t
            .call("workflows_enrolled", Method::GET, &path, None)
            .await?;
        let one = [answer.body.clone()];
        let workflows = answer.body.as_array().map_or(&one[..], Vec::as_slice);
        let v2 = self
            .workflow_cache
            .lock()
            .ok()
            .and_then(|c| c.get(workflow_id).cloned());
        Ok(workflows.iter().any(|w| {
            let id = match &w["id"] {
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(s) => s.clone(),
                _ => return false,
            };
            id == workflow_id || v2.as_deref() == Some(id.as_str())
        }))
    }

    async fn enroll_v2(&self, workflow_id: &str, email: &str) -> Result<(), HubspotError> {
        let t = self.transport();
        let path = format!(
            "/automation/v2/workflows/{}/enrollments/contacts/{}",
            urlencode(workflow_id),
            urlencode(email)
        );
        t.call("workflows_enroll", Method::POST, &path, None)
            .await
            .map(|_| ())
    }

    /// The owner id for an email (cached for the process's life; None if no such owner).
    pub async fn owner_id_by_email(&self, email: &str) -> Result<Option<String>, HubspotError> {
        let key = email.to_ascii_lowercase();
        if let Ok(cache) = self.owner_cache.lock()
            && let Some(hit) = cache.get(&key)
        {
            return Ok(hit.clone());
        }
        let t = self.transport();
        let path = format!(
            "{}?email={}&limit=100&archived=false",
            t.family("owners"),
            urlencode(&key)
        );
        let answer = t.call("owners_read", Method::GET, &path, None).await?;
        let id = answer
            .body
            .get("results")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(|o| match o.get("id")? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        if let Ok(mut cache) = self.owner_cache.lock() {
            cache.insert(key, id.clone());
        }
        Ok(id)
    }

    /// The token's scopes, from private-app token introspection.
    pub async fn token_scopes(&self, token: &str) -> Result<Vec<String>, HubspotError> {
        let t = self.transport();
        let answer = t
            .call(
                "token_info",
                Method::POST,
                "/oauth/v2/private-apps/get/access-token-info",
                Some(&json!({ "tokenKey": token })),
            )
            .await?;
        Ok(answer
            .body
            .get("scopes")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Percent-encodes a path segment.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
