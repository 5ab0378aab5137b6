//! `create_task subject [body] [due_in] [priority] [task_type] [owner]`: a task on the
//! contact, due some time after the event.

use std::time::Duration;

use super::owner::OwnerSpec;
use crate::basics::At;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::{Escape, Text};

pub const KEYS: &[&str] = &[
    "subject",
    "body",
    "due_in",
    "priority",
    "task_type",
    "owner",
];

pub(crate) const PRIORITIES: &[&str] = &["LOW", "MEDIUM", "HIGH"];

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTask {
    pub subject: Text,
    pub body: Option<Text>,
    pub due_in: Duration,
    pub priority: Option<String>,
    pub task_type: Option<String>,
    pub owner: OwnerSpec,
}

impl CreateTask {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        let subject = c.text(at, "subject", true, "the task's title");
        let body = c.text(at, "body", false, "the task's notes");
        let due_in = c
            .fields
            .duration(at, "due_in", "a duration such as \"1d\"")
            .unwrap_or_default();
        let priority = c.fields.choice(at, "priority", PRIORITIES);
        let task_type = c.fields.choice(at, "task_type", &["EMAIL", "CALL", "TODO"]);
        let owner = OwnerSpec::parse(c, at);
        subject.map(|subject| Self {
            subject,
            body,
            due_in,
            priority,
            task_type,
            owner,
        })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        Ok(Action::CreateTask {
            subject: r.text(&self.subject)?,
            body: r.optional_for(self.body.as_ref(), Escape::Html)?,
            due_at_ms: r.after(self.due_in),
            priority: self.priority.clone(),
            task_type: self.task_type.clone(),
            owner: self.owner.render(r)?,
        })
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        // Tasks need no scope of their own.
        n.objects.insert("tasks");
        self.owner.needs(n);
    }
}
