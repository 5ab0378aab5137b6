//! `create_ticket subject [content] [pipeline] [stage] [priority] [category] [owner]`: a
//! ticket associated with the contact, created once per step key (`paybridge_key`).

use super::create_task::PRIORITIES;
use super::owner::OwnerSpec;
use crate::basics::At;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::{Escape, Text};

pub const KEYS: &[&str] = &[
    "subject", "content", "pipeline", "stage", "priority", "category", "owner",
];

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTicket {
    pub subject: Text,
    pub content: Option<Text>,
    pub pipeline: String,
    pub stage: String,
    pub priority: Option<String>,
    pub category: Option<String>,
    pub owner: OwnerSpec,
}

impl CreateTicket {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        let subject = c.text(at, "subject", true, "the ticket's name");
        let content = c.text(at, "content", false, "the ticket's description");
        let pipeline = c
            .fields
            .scalar(at, "pipeline", false, "a ticket pipeline id");
        let stage = c.fields.scalar(at, "stage", false, "a ticket stage id");
        let priority = c.fields.choice(at, "priority", PRIORITIES);
        let category = c.fields.scalar(at, "category", false, "e.g. BILLING_ISSUE");
        let owner = OwnerSpec::parse(c, at);
        subject.map(|subject| Self {
            subject,
            content,
            pipeline: pipeline.unwrap_or_else(|| "0".into()),
            stage: stage.unwrap_or_else(|| "1".into()),
            priority,
            category,
            owner,
        })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        Ok(Action::CreateTicket {
            subject: r.text(&self.subject)?,
            content: r.optional_for(self.content.as_ref(), Escape::Html)?,
            pipeline: self.pipeline.clone(),
            stage: self.stage.clone(),
            priority: self.priority.clone(),
            category: self.category.clone(),
            owner: self.owner.render(r)?,
        })
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        n.scopes.insert("tickets");
        n.objects.insert("tickets");
        self.owner.needs(n);
    }
}
