//! `enroll_workflow`: enrol the contact in a workflow by its id, or, for a workflow that
//! enrols contacts when a property is set, set that property instead.

use crate::basics::At;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::Text;

pub const KEYS: &[&str] = &["workflow_id", "trigger_property", "trigger_value"];

#[derive(Debug, Clone, PartialEq)]
pub struct EnrollWorkflow {
    pub workflow_id: Option<String>,
    /// The property and the value to set it to (`"true"` unless given).
    pub trigger_property: Option<(String, Text)>,
}

impl EnrollWorkflow {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        let workflow_id = c.numeric_id(at, "workflow_id", false, "the workflow's id");
        let property = c
            .fields
            .scalar(at, "trigger_property", false, "a contact property name");
        let value = c.text(at, "trigger_value", false, "the value to set");
        if let Some(name) = &property {
            c.fields.property_name(at.path_of("trigger_property"), name);
        }
        match (at.has("workflow_id"), at.has("trigger_property")) {
            (false, false) => c.fields.problem(
                at.path_of("workflow_id"),
                "missing (the workflow's id, e.g. \"123456\"; or trigger_property = \"name\" \
                 for a workflow that enrols contacts on a property)",
            ),
            (true, true) => c.fields.problem(
                at.path_of("trigger_property"),
                "give workflow_id or trigger_property, not both",
            ),
            (true, false) if at.has("trigger_value") => c.fields.problem(
                at.path_of("trigger_value"),
                "only goes with trigger_property",
            ),
            _ => {}
        }
        Some(Self {
            workflow_id,
            trigger_property: property
                .map(|name| (name, value.unwrap_or_else(|| Text::Literal("true".into())))),
        })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        Ok(Action::EnrollWorkflow {
            workflow_id: self.workflow_id.clone(),
            trigger_property: match &self.trigger_property {
                Some((name, value)) => Some((name.clone(), r.text(value)?)),
                None => None,
            },
        })
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        if self.workflow_id.is_some() {
            n.scopes.insert("automation");
        }
        if let Some((name, _)) = &self.trigger_property {
            n.contact_properties.insert(name.clone());
        }
    }
}
