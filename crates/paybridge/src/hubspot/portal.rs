//! Reading what a portal has, for `paybridge check` and for translating workflow ids:
//! owners, lists, pipelines and their stages, v4 flows and the v2 ↔ v4 workflow-id
//! mappings, the create-record requirements an object schema lists, the account's zone.
//! A 404 is "it does not exist" (`Ok(None)`), not an error.

use reqwest::Method;
use serde_json::{Value, json};

use super::crm::urlencode;
use super::daily::AccountZone;
use super::{HubSpot, HubspotError};

/// A list as `check` needs to know it (`GET /crm/v3/lists/{listId}` → `{"list": …}`, lists
/// spec 2026-09: `processingType` "One of: SNAPSHOT, MANUAL, or DYNAMIC").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub name: String,
    pub processing_type: String,
    /// `0-1` for contacts.
    pub object_type_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineInfo {
    pub id: String,
    pub label: String,
    /// (id, label) of each stage.
    pub stages: Vec<(String, String)>,
}

/// A v4 flow (`GET /automation/v4/flows/{flowId}`, `ApiFlow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    pub name: String,
    pub enabled: bool,
    pub object_type_id: String,
}

/// What the workflow-id mappings say of one id: read as a v2 `workflowId`, the v4
/// `flowId` it has; read as a v4 `flowId`, the v2 `workflowId` it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowIds {
    pub as_workflow_id: Option<String>,
    pub as_flow_id: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn not_found(e: &HubspotError) -> bool {
    e.status() == Some(404)
}

impl HubSpot {
    /// A GET whose 404 means "none".
    async fn get_optional(
        &self,
        route: &'static str,
        path: &str,
    ) -> Result<Option<Value>, HubspotError> {
        match self.transport().call(route, Method::GET, path, None).await {
            Ok(answer) => Ok(Some(answer.body)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One cheap read of `object_type` records (`GET …/objects/{type}?limit=1`): whether
    /// HubSpot takes this token for them.
    pub async fn probe_objects(&self, object_type: &str) -> Result<(), HubspotError> {
        let t = self.transport();
        let path = format!("{}?limit=1", t.objects(object_type));
        t.call("objects_probe", Method::GET, &path, None)
            .await
            .map(|_| ())
    }

    /// The owner with this id (`GET /crm/v3/owners/{ownerId}`), by its email.
    pub async fn owner_by_id(&self, id: &str) -> Result<Option<String>, HubspotError> {
        let path = format!("{}/{}", self.transport().family("owners"), urlencode(id));
        Ok(self
            .get_optional("owners_read", &path)
            .await?
            .map(|o| o.get("email").and_then(text).unwrap_or_default()))
    }

    pub async fn list(&self, id: &str) -> Result<Option<ListInfo>, HubspotError> {
        let path = format!("{}/{}", self.transport().family("lists"), urlencode(id));
        Ok(self.get_optional("lists_read", &path).await?.map(|body| {
            let list = body.get("list").unwrap_or(&body);
            let field = |k: &str| list.get(k).and_then(text).unwrap_or_default();
            ListInfo {
                name: field("name"),
                processing_type: field("processingType"),
                object_type_id: field("objectTypeId"),
            }
        }))
    }

    /// The pipelines of `tickets` or `deals` with their stages.
    pub async fn pipelines(&self, object_type: &str) -> Result<Vec<PipelineInfo>, HubspotError> {
        let path = format!("{}/{object_type}", self.transport().family("pipelines"));
        let body = self
            .transport()
            .call("pipelines_read", Method::GET, &path, None)
            .await?
            .body;
        let pair = |v: &Value| {
            Some((
                v.get("id").and_then(text)?,
                v.get("label").and_then(text).unwrap_or_default(),
            ))
        };
        Ok(body
            .get("results")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|p| {
                        let (id, label) = pair(p)?;
                        let stages = p
                            .get("stages")
                            .and_then(Value::as_array)
                            .map(|s| s.iter().filter_map(pair).collect())
                            .unwrap_or_default();
                        Some(PipelineInfo { id, label, stages })
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn flow(&self, flow_id: &str) -> Result<Option<FlowInfo>, HubspotError> {
        let path = format!("/automation/v4/flows/{}", urlencode(flow_id));
        Ok(self
            .get_optional("flows_read", &path)
            .await?
            .map(|f| FlowInfo {
                name: f.get("name").and_then(text).unwrap_or_default(),
                enabled: f.get("isEnabled").and_then(Value::as_bool).unwrap_or(false),
                object_type_id: f.get("objectTypeId").and_then(text).unwrap_or_default(),
            }))
    }

    /// `POST /automation/v4/workflow-id-mappings/batch/read` for `id` read both ways. The
    /// spec names the input fields `flowId` / `workflowId` since 2026-03-26 and
    /// `flowMigrationStatuses` / `flowMigrationStatusForClassicWorkflows` before (an older
    /// docs page and HubSpot's TypeScript SDK still send those); which the server takes is
    /// not settled, so a 400 or an answer without a match is asked again with the old names.
    pub async fn workflow_ids(&self, id: &str) -> Result<WorkflowIds, HubspotError> {
        let t = self.transport();
        let path = "/automation/v4/workflow-id-mappings/batch/read";
        let mut last = WorkflowIds::default();
        for (flow_field, workflow_field) in [
            ("flowId", "workflowId"),
            (
                "flowMigrationStatuses",
                "flowMigrationStatusForClassicWorkflows",
            ),
        ] {
            let input = |kind: &str, field: &str| {
                let mut m = serde_json::Map::new();
                m.insert("type".into(), json!(kind));
                m.insert(field.into(), json!(id));
                Value::Object(m)
            };
            let body = json!({"inputs": [
                input("WORKFLOW_ID", workflow_field),
                input("FLOW_ID", flow_field),
            ]});
            let answer = match t
                .call("workflow_id_mappings", Method::POST, path, Some(&body))
                .await
            {
                Ok(a) => a.body,
                Err(e) if e.status() == Some(400) => continue,
                Err(e) => return Err(e),
            };
            let mut ids = WorkflowIds::default();
            for r in answer
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(flow), Some(workflow)) = (
                    r.get("flowId").and_then(text),
                    r.get("workflowId").and_then(text),
                ) else {
                    continue;
                };
                if workflow == id {
                    ids.as_workflow_id = Some(flow.clone());
                }
                if flow == id {
                    ids.as_flow_id = Some(workflow);
                }
            }
            if ids != WorkflowIds::default() {
                return Ok(ids);
            }
            last = ids;
        }
        Ok(last)
    }

    /// The properties an object type's schema says "should be required when creating an
    /// object of this type" (`requiredProperties` of
    /// `GET /crm-object-schemas/{v3|2026-09}/schemas/{objectType}`).
    pub async fn required_on_create(&self, object_type: &str) -> Result<Vec<String>, HubspotError> {
        let version = match self.transport().version {
            super::ApiVersion::V3 => "v3",
            super::ApiVersion::Dated2026_09 => "2026-09",
        };
        let path = format!("/crm-object-schemas/{version}/schemas/{object_type}");
        let body = self
            .transport()
            .call("schemas_read", Method::GET, &path, None)
            .await?
            .body;
        Ok(body
            .get("requiredProperties")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(text).collect())
            .unwrap_or_default())
    }

    /// The account's time zone (`GET /account-info/…/details`), remembered for the daily
    /// limit's reset.
    pub async fn account_zone(&self) -> Option<AccountZone> {
        self.transport().read_zone().await
    }

    /// Lets the daily-limit hold read the same clock as the rest of the process.
    pub fn use_clock(&self, clock: crate::domain::Clock) {
        self.transport().daily.use_clock(clock.clone());
        self.transport().breaker.use_clock(clock);
    }

    /// The reset time of a daily-limit hold, once per hold (for its one alert), and the
    /// account's zone if known.
    pub fn take_daily_alert(&self) -> Option<(i64, Option<AccountZone>)> {
        let daily = &self.transport().daily;
        daily.take_alert().map(|until| (until, daily.zone()))
    }
}
