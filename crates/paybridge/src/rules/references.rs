//! What each configured action names in the HubSpot portal, with the config path of the
//! key that names it, as plain data: `paybridge check` looks each one up before go-live
//! (owners, lists, workflows, pipelines and stages, contact properties and their values,
//! and the properties each created record carries, against the portal's requirements).

use super::actions::ActionTemplate;
use super::actions::owner::OwnerSpec;
use super::model::RuleSet;
use super::template::Text;

/// One thing an action names, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The config path of the key, e.g. `rules[2].actions[0].owner`.
    pub path: String,
    pub what: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    OwnerEmail(String),
    OwnerId(String),
    /// `contact_owner` or a template: resolved at run time, may leave a record unassigned.
    OwnerAtRunTime,
    List(String),
    /// A v2 `workflowId` or a v4 `flowId`.
    Workflow(String),
    Pipeline {
        object_type: &'static str,
        pipeline: String,
    },
    Stage {
        object_type: &'static str,
        pipeline: String,
        stage: String,
    },
    /// A contact property written, with its value when it is not a template.
    ContactProperty {
        name: String,
        value: Option<String>,
    },
    /// A record created, with the properties paybridge always sets on it.
    Creates {
        object_type: &'static str,
        supplies: Vec<&'static str>,
    },
}

/// The properties `worker::create` sets on each kind of record (given the action's
/// optional keys), for checking them against the portal's create-record requirements.
fn creates(a: &ActionTemplate) -> Option<Reference> {
    let opt = |present: bool, name: &'static str| present.then_some(name);
    let (object_type, mut supplies, owner): (&'static str, Vec<&'static str>, &OwnerSpec) = match a
    {
        ActionTemplate::CreateTask(t) => (
            "tasks",
            [
                Some("hs_task_subject"),
                Some("hs_task_body"),
                Some("hs_timestamp"),
                Some("hs_task_status"),
                opt(t.priority.is_some(), "hs_task_priority"),
                opt(t.task_type.is_some(), "hs_task_type"),
            ]
            .into_iter()
            .flatten()
            .collect(),
            &t.owner,
        ),
        ActionTemplate::CreateNote(_) => (
            "notes",
            vec!["hs_note_body", "hs_timestamp"],
            &OwnerSpec::None,
        ),
        ActionTemplate::CreateTicket(t) => (
            "tickets",
            [
                Some("subject"),
                Some("hs_pipeline"),
                Some("hs_pipeline_stage"),
                Some("paybridge_key"),
                opt(t.content.is_some(), "content"),
                opt(t.priority.is_some(), "hs_ticket_priority"),
                opt(t.category.is_some(), "hs_ticket_category"),
            ]
            .into_iter()
            .flatten()
            .collect(),
            &t.owner,
        ),
        ActionTemplate::CreateDeal(d) => (
            "deals",
            [
                Some("dealname"),
                Some("pipeline"),
                Some("dealstage"),
                Some("paybridge_key"),
                // The payment's amount when none is given.
                Some("amount"),
                opt(d.close_date.is_some(), "closedate"),
            ]
            .into_iter()
            .flatten()
            .collect(),
            &d.owner,
        ),
        _ => return None,
    };
    if matches!(owner, OwnerSpec::Email(_) | OwnerSpec::Id(_)) {
        supplies.push("hubspot_owner_id");
    }
    Some(Reference::Creates {
        object_type,
        supplies,
    })
}

fn owner(spec: &OwnerSpec) -> Option<Reference> {
    match spec {
        OwnerSpec::None => None,
        OwnerSpec::Email(e) => Some(Reference::OwnerEmail(e.clone())),
        OwnerSpec::Id(id) => Some(Reference::OwnerId(id.clone())),
        OwnerSpec::ContactOwner | OwnerSpec::Template(_) => Some(Reference::OwnerAtRunTime),
    }
}

impl ActionTemplate {
    /// What this action names in the portal; each key relative to the action (`owner`).
    pub fn references(&self) -> Vec<(String, Reference)> {
        let mut out: Vec<(String, Reference)> = Vec::new();
        let pipeline = |out: &mut Vec<(String, Reference)>, ty, pipeline: &str, stage: &str| {
            out.push((
                "pipeline".into(),
                Reference::Pipeline {
                    object_type: ty,
                    pipeline: pipeline.to_owned(),
                },
            ));
            out.push((
                "stage".into(),
                Reference::Stage {
                    object_type: ty,
                    pipeline: pipeline.to_owned(),
                    stage: stage.to_owned(),
                },
            ));
        };
        match self {
            Self::UpdateContact(u) => {
                for (name, value) in &u.properties {
                    out.push((
                        format!("properties.{name}"),
                        Reference::ContactProperty {
                            name: name.clone(),
                            value: match value {
                                Text::Literal(v) => Some(v.clone()),
                                Text::Template(_) => None,
                            },
                        },
                    ));
                }
            }
            Self::EnrollWorkflow(w) => {
                if let Some(id) = &w.workflow_id {
                    out.push(("workflow_id".into(), Reference::Workflow(id.clone())));
                }
                if let Some((name, _)) = &w.trigger_property {
                    out.push((
                        "trigger_property".into(),
                        Reference::ContactProperty {
                            name: name.clone(),
                            value: None,
                        },
                    ));
                }
            }
            Self::AddToList(l) => out.push(("list_id".into(), Reference::List(l.list_id.clone()))),
            Self::RemoveFromList(l) => {
                out.push(("list_id".into(), Reference::List(l.list_id.clone())))
            }
            Self::CreateTicket(t) => pipeline(&mut out, "tickets", &t.pipeline, &t.stage),
            Self::CreateDeal(d) => pipeline(&mut out, "deals", &d.pipeline, &d.stage),
            _ => {}
        }
        let owner_spec = match self {
            Self::CreateTask(t) => Some(&t.owner),
            Self::CreateTicket(t) => Some(&t.owner),
            Self::CreateDeal(d) => Some(&d.owner),
            _ => None,
        };
        if let Some(o) = owner_spec.and_then(owner) {
            out.push(("owner".into(), o));
        }
        if let Some(c) = creates(self) {
            out.push((String::new(), c));
        }
        out
    }
}

impl RuleSet {
    /// Every action with its config path: `rules[2].actions[0]`, then
    /// `sequences.NAME.steps[1].actions[0]`.
    pub fn actions_with_paths(&self) -> Vec<(String, &ActionTemplate)> {
        let rules = self.rules.iter().enumerate().flat_map(|(i, r)| {
            r.actions
                .iter()
                .enumerate()
                .map(move |(j, c)| (format!("rules[{i}].actions[{j}]"), &c.action))
        });
        let sequences = self.sequences.values().flat_map(|s| {
            s.steps.iter().enumerate().flat_map(move |(k, step)| {
                step.actions.iter().enumerate().map(move |(j, c)| {
                    (
                        format!("sequences.{}.steps[{k}].actions[{j}]", s.name),
                        &c.action,
                    )
                })
            })
        });
        rules.chain(sequences).collect()
    }

    /// Everything the actions name in the portal, each with its full config path.
    pub fn references(&self) -> Vec<Named> {
        self.actions_with_paths()
            .into_iter()
            .flat_map(|(path, action)| {
                action
                    .references()
                    .into_iter()
                    .map(move |(key, what)| Named {
                        path: if key.is_empty() {
                            path.clone()
                        } else {
                            format!("{path}.{key}")
                        },
                        what,
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testing::starter;

    #[test]
    fn the_starter_names_owners_lists_workflows_and_pipelines_by_their_paths() {
        let refs = starter().references();
        let find = |path: &str| {
            refs.iter()
                .find(|n| n.path == path)
                .map(|n| n.what.clone())
                .unwrap_or_else(|| panic!("no {path} in {refs:#?}"))
        };
        assert_eq!(
            find("rules[0].actions[1].workflow_id"),
            Reference::Workflow("123456".into())
        );
        assert_eq!(
            find("rules[4].actions[0].owner"),
            Reference::OwnerEmail("ada.manager@example.com".into())
        );
        assert_eq!(
            find("rules[1].actions[0].list_id"),
            Reference::List("1".into())
        );
        assert_eq!(
            find("rules[3].actions[0].stage"),
            Reference::Stage {
                object_type: "tickets",
                pipeline: "0".into(),
                stage: "1".into()
            }
        );
        assert_eq!(
            find("rules[0].actions[0].properties.lifecyclestage"),
            Reference::ContactProperty {
                name: "lifecyclestage".into(),
                value: Some("customer".into())
            }
        );
        assert_eq!(
            find("sequences.payment_recovery.steps[0].actions[0].workflow_id"),
            Reference::Workflow("222".into())
        );
        let Reference::Creates {
            object_type,
            supplies,
        } = find("rules[3].actions[0]")
        else {
            panic!("a create");
        };
        assert_eq!(object_type, "tickets");
        assert!(supplies.contains(&"hs_ticket_category"));
        assert!(
            !supplies.contains(&"hubspot_owner_id"),
            "contact_owner may be none"
        );
    }
}
