//! The keyed steps an event leads to. Keys are stable across retries and
//! redeliveries (`{event_id}:{rule}:{action_index}`), which is what makes effects exactly-once.
//! Actions here are *rendered*: every template already filled in from the event's context.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::basics::Secret;

/// Steps planned for an event, with what went wrong on the way (an `if` that failed to
/// evaluate counts as false; an action whose template failed to render is left out).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Planned {
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub key: String,
    /// The rule's name (`financial` for the built-in tagging, `seq:NAME:STEP` for sequences).
    pub rule: String,
    pub index: usize,
    pub action: Action,
}

/// Who a created task, ticket or deal is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Owner {
    /// Unassigned.
    None,
    /// The contact's `hubspot_owner_id`.
    ContactOwner,
    /// An owner's email, resolved through the owners API.
    Email(String),
    /// A HubSpot owner id.
    Id(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Find or create the customer's contact and link it (Stripe Customer ID); nothing else.
    LinkContact,
    /// Write contact properties; each is skipped when an event newer than this one already
    /// wrote it (the stale guard), except `aggregates`, which are recomputed totals.
    UpdateContact {
        properties: BTreeMap<String, String>,
        aggregates: BTreeMap<String, String>,
    },
    /// v2 enrolment by email, or (for workflows that enrol on a property) setting that
    /// property instead.
    EnrollWorkflow {
        workflow_id: Option<String>,
        trigger_property: Option<(String, String)>,
    },
    AddToList {
        list_id: String,
    },
    RemoveFromList {
        list_id: String,
    },
    CreateTask {
        subject: String,
        body: Option<String>,
        /// Due date (`hs_timestamp`), unix ms.
        due_at_ms: i64,
        /// LOW | MEDIUM | HIGH
        priority: Option<String>,
        /// EMAIL | CALL | TODO
        task_type: Option<String>,
        owner: Owner,
    },
    CreateTicket {
        subject: String,
        content: Option<String>,
        pipeline: String,
        stage: String,
        priority: Option<String>,
        category: Option<String>,
        owner: Owner,
    },
    CreateDeal {
        name: String,
        /// Major units, as HubSpot's number property wants.
        amount: Option<String>,
        pipeline: String,
        stage: String,
        /// Unix ms.
        close_date_ms: Option<i64>,
        owner: Owner,
    },
    CreateNote {
        body: String,
    },
    NotifySlack {
        url: Secret,
        text: String,
    },
    /// Provisioning: POST `payload` as JSON to `url`, signed with `secret`, retried until 2xx.
    CallWebhook {
        url: String,
        secret: Secret,
        payload: serde_json::Value,
    },
    StartSequence {
        name: String,
    },
    StopSequence {
        name: String,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::LinkContact => "link_contact",
            Action::UpdateContact { .. } => "update_contact",
            Action::EnrollWorkflow { .. } => "enroll_workflow",
            Action::AddToList { .. } => "add_to_list",
            Action::RemoveFromList { .. } => "remove_from_list",
            Action::CreateTask { .. } => "create_task",
            Action::CreateTicket { .. } => "create_ticket",
            Action::CreateDeal { .. } => "create_deal",
            Action::CreateNote { .. } => "create_note",
            Action::NotifySlack { .. } => "notify_slack",
            Action::CallWebhook { .. } => "call_webhook",
            Action::StartSequence { .. } => "start_sequence",
            Action::StopSequence { .. } => "stop_sequence",
        }
    }

    /// Whether the step acts on the customer's HubSpot contact.
    pub fn needs_contact(&self) -> bool {
        !matches!(
            self,
            Action::NotifySlack { .. }
                | Action::CallWebhook { .. }
                | Action::StartSequence { .. }
                | Action::StopSequence { .. }
        )
    }
}

pub fn step_key(event_id: &str, rule: &str, index: usize) -> String {
    format!("{event_id}:{rule}:{index}")
}
