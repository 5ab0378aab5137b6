//! A plan: the keyed steps an event leads to. Keys are stable across retries and
//! redeliveries (`{event_id}:{rule}:{action_index}`), which is what makes effects exactly-once.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub key: String,
    pub rule: String,
    pub index: usize,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Write contact properties; each is skipped when an event newer than this one already
    /// wrote it (the stale guard), except `aggregates`, which are recomputed totals.
    UpdateContact {
        properties: BTreeMap<String, String>,
        aggregates: BTreeMap<String, String>,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::UpdateContact { .. } => "update_contact",
        }
    }
}

impl Plan {
    pub fn needs_contact(&self) -> bool {
        !self.steps.is_empty()
    }
}

pub fn step_key(event_id: &str, rule: &str, index: usize) -> String {
    format!("{event_id}:{rule}:{index}")
}
