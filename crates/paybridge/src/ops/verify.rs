//! Before go-live: every HubSpot object the rules name exists and can take what the rules
//! do to it — owners (by email or id), lists (they exist, are manual or snapshot, and hold
//! contacts), workflows (a v2 `workflowId` or a v4 `flowId`, said which), ticket and deal
//! pipelines and their stages, the contact properties the rules write (and literal values
//! of enumerations), the portal's create-record requirements for each record the rules
//! create, and that HubSpot takes the token for the ticket calls the rules make. Each
//! finding names the config path of the key it is about.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::Settings;
use crate::hubspot::properties::ExistingProperty;
use crate::hubspot::{HubSpot, HubspotError};
use crate::rules::RuleSet;
use crate::rules::references::{Named, Reference};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    /// Works, but not always as one may expect; does not fail the check.
    Warn,
    Fail,
    /// Could not be verified.
    Skip,
}

/// One line of `check`'s portal section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `owner`, `list`, `workflow`, `pipeline`, `property`, `required`, `tickets`.
    pub topic: &'static str,
    pub level: Level,
    /// The config path (or the topic's own name when it is about no single key).
    pub path: String,
    pub message: String,
}

/// What `check` found in the portal, in the order of the config.
pub async fn verify(hubspot: &HubSpot, settings: &Settings, rules: &RuleSet) -> Vec<Finding> {
    let mut v = Verifier {
        hubspot,
        findings: Vec::new(),
        pipelines: BTreeMap::new(),
        contact_properties: None,
    };
    let named = rules.references();
    v.ticket_calls(rules).await;
    for n in &named {
        v.one(n).await;
    }
    v.requirements(settings, &named).await;
    v.findings
}

struct Verifier<'a> {
    hubspot: &'a HubSpot,
    findings: Vec<Finding>,
    pipelines: BTreeMap<&'static str, Result<Vec<crate::hubspot::portal::PipelineInfo>, String>>,
    contact_properties: Option<Result<Vec<ExistingProperty>, String>>,
}

impl Verifier<'_> {
    fn say(&mut self, topic: &'static str, level: Level, path: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            topic,
            level,
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// Which ticket scopes a portal takes is not settled (issue 12, H1): ask HubSpot.
    async fn ticket_calls(&mut self, rules: &RuleSet) {
        if !rules.created_object_types().contains("tickets") {
            return;
        }
        match self.hubspot.probe_objects("tickets").await {
            Ok(()) => self.say(
                "tickets",
                Level::Ok,
                "tickets",
                "HubSpot takes this token for ticket calls",
            ),
            Err(e) => self.say(
                "tickets",
                Level::Fail,
                "tickets",
                format!(
                    "HubSpot refuses this token's ticket calls ({e}); grant the scopes it names"
                ),
            ),
        }
    }

    async fn one(&mut self, n: &Named) {
        let path = n.path.as_str();
        let result = match &n.what {
            Reference::OwnerEmail(email) => self.owner_email(path, email).await,
            Reference::OwnerId(id) => self.owner_id(path, id).await,
            Reference::List(id) => self.list(path, id).await,
            Reference::Workflow(id) => self.workflow(path, id).await,
            Reference::Pipeline {
                object_type,
                pipeline,
            } => {
                self.pipeline(path, object_type, pipeline, None).await;
                Ok(())
            }
            Reference::Stage {
                object_type,
                pipeline,
                stage,
            } => {
                self.pipeline(path, object_type, pipeline, Some(stage))
                    .await;
                Ok(())
            }
            Reference::ContactProperty { name, value } => {
                self.contact_property(path, name, value.as_deref()).await;
                Ok(())
            }
            Reference::OwnerAtRunTime | Reference::Creates { .. } => Ok(()),
        };
        if let Err((topic, e)) = result {
            self.say(topic, Level::Fail, path, format!("cannot be read: {e}"));
        }
    }

    async fn owner_email(
        &mut self,
        path: &str,
        email: &str,
    ) -> Result<(), (&'static str, HubspotError)> {
        match self.hubspot.owner_id_by_email(email).await {
            Ok(Some(id)) => self.say("owner", Level::Ok, path, format!("{email} is owner {id}")),
            Ok(None) => self.say(
                "owner",
                Level::Fail,
                path,
                format!("no HubSpot owner has the email {email} (every such step would go to the dead letters)"),
            ),
            Err(e) => return Err(("owner", e)),
        }
        Ok(())
    }

    async fn owner_id(&mut self, path: &str, id: &str) -> Result<(), (&'static str, HubspotError)> {
        match self.hubspot.owner_by_id(id).await {
            Ok(Some(email)) => self.say("owner", Level::Ok, path, format!("owner {id} is {email}")),
            Ok(None) => self.say(
                "owner",
                Level::Fail,
                path,
                format!("no HubSpot owner has the id {id}"),
            ),
            Err(e) => return Err(("owner", e)),
        }
        Ok(())
    }

    async fn list(&mut self, path: &str, id: &str) -> Result<(), (&'static str, HubspotError)> {
        let list = self.hubspot.list(id).await.map_err(|e| ("list", e))?;
        let (level, message) = match list {
            None => (Level::Fail, format!("no list has the id {id}")),
            Some(l) if l.object_type_id != "0-1" => (
                Level::Fail,
                format!(
                    "list {id} ({}) holds records of type {}, not contacts",
                    l.name, l.object_type_id
                ),
            ),
            // Memberships can be written only on MANUAL and SNAPSHOT lists (lists spec).
            Some(l) if !matches!(l.processing_type.as_str(), "MANUAL" | "SNAPSHOT") => (
                Level::Fail,
                format!(
                    "list {id} ({}) is {}: HubSpot lets only MANUAL and SNAPSHOT lists' members be added or removed",
                    l.name, l.processing_type
                ),
            ),
            Some(l) => (
                Level::Ok,
                format!(
                    "list {id} ({}) is a {} contact list",
                    l.name, l.processing_type
                ),
            ),
        };
        self.say("list", level, path, message);
        Ok(())
    }

    /// Says whether `id` is a v2 `workflowId` or a v4 `flowId` (HubSpot's workflow-id
    /// mappings), and checks the flow enrols contacts.
    async fn workflow(&mut self, path: &str, id: &str) -> Result<(), (&'static str, HubspotError)> {
        let ids = self
            .hubspot
            .workflow_ids(id)
            .await
            .map_err(|e| ("workflow", e))?;
        let flow = match (&ids.as_workflow_id, &ids.as_flow_id) {
            (None, None) => {
                self.say(
                    "workflow",
                    Level::Fail,
                    path,
                    format!(
                        "no workflow has the id {id} (neither a v2 workflowId nor a v4 flowId)"
                    ),
                );
                return Ok(());
            }
            (Some(flow), None) => {
                self.say(
                    "workflow",
                    Level::Ok,
                    path,
                    format!("{id} is a v2 workflowId (v4 flowId {flow})"),
                );
                flow.clone()
            }
            (None, Some(v2)) => {
                self.say(
                    "workflow",
                    Level::Ok,
                    path,
                    format!("{id} is a v4 flowId; paybridge enrols with its v2 workflowId {v2}"),
                );
                id.to_owned()
            }
            (Some(flow), Some(v2)) => {
                self.say(
                    "workflow",
                    Level::Warn,
                    path,
                    format!(
                        "{id} is both a v2 workflowId (v4 flowId {flow}) and the v4 flowId of workflow {v2}; \
                         paybridge takes it as the v2 workflowId"
                    ),
                );
                flow.clone()
            }
        };
        match self.hubspot.flow(&flow).await.map_err(|e| ("workflow", e))? {
            Some(f) if f.object_type_id != "0-1" => self.say(
                "workflow",
                Level::Fail,
                path,
                format!(
                    "workflow {id} ({}) enrols records of type {}; HubSpot's enrolment API only enrols contacts",
                    f.name, f.object_type_id
                ),
            ),
            Some(f) if !f.enabled => self.say(
                "workflow",
                Level::Warn,
                path,
                format!("workflow {id} ({}) is turned off in HubSpot", f.name),
            ),
            _ => {}
        }
        Ok(())
    }

    async fn pipeline(
        &mut self,
        path: &str,
        object_type: &'static str,
        pipeline: &str,
        stage: Option<&str>,
    ) {
        if !self.pipelines.contains_key(object_type) {
            let read = self
                .hubspot
                .pipelines(object_type)
                .await
                .map_err(|e| e.to_string());
            self.pipelines.insert(object_type, read);
        }
        let (level, message) = match &self.pipelines[object_type] {
            Err(e) => (
                Level::Fail,
                format!("cannot read the {object_type} pipelines: {e}"),
            ),
            Ok(all) => match (all.iter().find(|p| p.id == pipeline), stage) {
                (None, None) => (
                    Level::Fail,
                    format!(
                        "no {object_type} pipeline has the id {pipeline} (the portal has: {})",
                        all.iter()
                            .map(|p| format!("{} {}", p.id, p.label))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                // Reported on the pipeline key already.
                (None, Some(_)) => return,
                (Some(p), None) => (
                    Level::Ok,
                    format!("{object_type} pipeline {pipeline} ({})", p.label),
                ),
                (Some(p), Some(stage)) => match p.stages.iter().find(|(id, _)| id == stage) {
                    Some((_, label)) => (
                        Level::Ok,
                        format!("stage {stage} ({label}) of pipeline {pipeline}"),
                    ),
                    None => (
                        Level::Fail,
                        format!(
                            "{object_type} pipeline {pipeline} ({}) has no stage {stage} (its stages: {})",
                            p.label,
                            p.stages
                                .iter()
                                .map(|(id, l)| format!("{id} {l}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                },
            },
        };
        self.say("pipeline", level, path, message);
    }

    async fn contact_property(&mut self, path: &str, name: &str, value: Option<&str>) {
        if self.contact_properties.is_none() {
            let read = self
                .hubspot
                .properties("contacts")
                .await
                .map_err(|e| e.to_string());
            self.contact_properties = Some(read);
        }
        let (level, message) = match self.contact_properties.as_ref() {
            Some(Ok(all)) => match all.iter().find(|p| p.name == name) {
                None => (
                    Level::Fail,
                    format!(
                        "contacts have no property {name} (`paybridge setup` creates the rules' own)"
                    ),
                ),
                Some(p)
                    if p.kind == "enumeration"
                        && value.is_some_and(|v| !p.options.iter().any(|o| o == v)) =>
                {
                    (
                        Level::Fail,
                        format!(
                            "`{}` is not an option of {name} (its options: {})",
                            value.unwrap_or_default(),
                            p.options.join(", ")
                        ),
                    )
                }
                Some(_) => (Level::Ok, format!("contact property {name}")),
            },
            Some(Err(e)) => (
                Level::Fail,
                format!("cannot read the contact properties: {e}"),
            ),
            None => return,
        };
        self.say("property", level, path, message);
    }

    /// The portal's create-record requirements, as each object schema lists them, against
    /// what each create (and contact creation) supplies. Conditional property rules have no
    /// read API: HubSpot answers a write that breaks one with a 400, which sends the event
    /// to the dead letters at once with HubSpot's message, the rule and the action.
    async fn requirements(&mut self, settings: &Settings, named: &[Named]) {
        let mut creates: Vec<(&str, &'static str, BTreeSet<&str>)> = named
            .iter()
            .filter_map(|n| match &n.what {
                Reference::Creates {
                    object_type,
                    supplies,
                } => Some((
                    n.path.as_str(),
                    *object_type,
                    supplies.iter().copied().collect(),
                )),
                _ => None,
            })
            .collect();
        if settings.contacts.create_missing {
            let id = settings.contacts.id_property.as_str();
            creates.push((
                "contacts.create_missing",
                "contacts",
                [id, "email", "firstname", "lastname"].into(),
            ));
        }
        let mut required: BTreeMap<&str, Result<Vec<String>, HubspotError>> = BTreeMap::new();
        for (_, ty, _) in &creates {
            if !required.contains_key(ty) {
                required.insert(ty, self.hubspot.required_on_create(ty).await);
            }
        }
        let mut unreadable = Vec::new();
        for (path, ty, supplies) in creates {
            match &required[ty] {
                Ok(names) => {
                    for name in names.iter().filter(|n| !supplies.contains(n.as_str())) {
                        let message = if ty == "contacts" {
                            format!(
                                "HubSpot requires {name} to create a contact (the portal's create-record rules); \
                                 paybridge creates contacts with {} only",
                                supplies.iter().copied().collect::<Vec<_>>().join(", ")
                            )
                        } else {
                            format!(
                                "HubSpot requires {name} to create {ty} (the portal's create-record rules); \
                                 this action does not set it"
                            )
                        };
                        self.say("required", Level::Fail, path, message);
                    }
                }
                Err(e) => {
                    if !unreadable.iter().any(|(t, _)| *t == ty) {
                        unreadable.push((ty, e.to_string()));
                    }
                }
            }
        }
        for (ty, e) in unreadable {
            self.say(
                "required",
                Level::Skip,
                ty,
                format!(
                    "cannot read the portal's create-record requirements for {ty} ({e}); with \
                     crm.schemas.custom.read `check` reads them. A write they refuse goes to the dead letters at once"
                ),
            );
        }
        self.say(
            "required",
            Level::Skip,
            "conditional rules",
            "HubSpot has no API to read conditional property rules; a write one refuses goes to \
             the dead letters at once with HubSpot's message, the rule and the action",
        );
    }
}
