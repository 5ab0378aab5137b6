//! The action kinds of SPEC §5, one module each: its keys, how it is read from the config,
//! how it is filled in from an event into a [`crate::rules::Action`], and what it needs
//! from HubSpot. This file only lists them; a new kind is a module here, its rendered
//! `Action` variant, and the executor's handling of it.

pub mod call_webhook;
pub mod create_deal;
pub mod create_note;
pub mod create_task;
pub mod create_ticket;
pub mod enroll_workflow;
pub mod list;
pub mod notify_slack;
pub mod owner;
pub mod sequence;
pub mod update_contact;

use call_webhook::CallWebhook;
use create_deal::CreateDeal;
use create_note::CreateNote;
use create_task::CreateTask;
use create_ticket::CreateTicket;
use enroll_workflow::EnrollWorkflow;
use list::{AddToList, RemoveFromList};
use notify_slack::NotifySlack;
use sequence::{StartSequence, StopSequence};
use update_contact::UpdateContact;

use super::compile::Compiler;
use super::needs::Needs;
use super::plan::Action;
use super::render::Renderer;
use crate::basics::At;

/// One configured action, before rendering. Rendering fills the templates from an
/// event's context and yields an [`Action`].
#[derive(Debug, Clone, PartialEq)]
pub enum ActionTemplate {
    UpdateContact(UpdateContact),
    EnrollWorkflow(EnrollWorkflow),
    AddToList(AddToList),
    RemoveFromList(RemoveFromList),
    CreateTask(CreateTask),
    CreateTicket(CreateTicket),
    CreateDeal(CreateDeal),
    CreateNote(CreateNote),
    NotifySlack(NotifySlack),
    CallWebhook(CallWebhook),
    StartSequence(StartSequence),
    StopSequence(StopSequence),
}

/// Action types and the keys each accepts (besides `type`).
const KINDS: &[(&str, &[&str])] = &[
    ("update_contact", update_contact::KEYS),
    ("enroll_workflow", enroll_workflow::KEYS),
    ("add_to_list", list::KEYS),
    ("remove_from_list", list::KEYS),
    ("create_task", create_task::KEYS),
    ("create_ticket", create_ticket::KEYS),
    ("create_deal", create_deal::KEYS),
    ("create_note", create_note::KEYS),
    ("notify_slack", notify_slack::KEYS),
    ("call_webhook", call_webhook::KEYS),
    ("start_sequence", sequence::KEYS),
    ("stop_sequence", sequence::KEYS),
];

/// Every action type of SPEC §5.
pub fn action_types() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|(name, _)| *name)
}

/// The keys an action type accepts (besides `type`); None for an unknown type.
pub(crate) fn keys(kind: &str) -> Option<&'static [&'static str]> {
    KINDS
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|(_, keys)| *keys)
}

impl ActionTemplate {
    /// Reads an action of a known `kind` (see [`keys`]); `in_sequence` when it is a step
    /// of a sequence. Problems go to the compiler.
    pub(crate) fn parse(c: &mut Compiler, kind: &str, at: At, in_sequence: bool) -> Option<Self> {
        match kind {
            "update_contact" => UpdateContact::parse(c, at).map(Self::UpdateContact),
            "enroll_workflow" => EnrollWorkflow::parse(c, at).map(Self::EnrollWorkflow),
            "add_to_list" => AddToList::parse(c, at).map(Self::AddToList),
            "remove_from_list" => RemoveFromList::parse(c, at).map(Self::RemoveFromList),
            "create_task" => CreateTask::parse(c, at).map(Self::CreateTask),
            "create_ticket" => CreateTicket::parse(c, at).map(Self::CreateTicket),
            "create_deal" => CreateDeal::parse(c, at).map(Self::CreateDeal),
            "create_note" => CreateNote::parse(c, at).map(Self::CreateNote),
            "notify_slack" => NotifySlack::parse(c, at).map(Self::NotifySlack),
            "call_webhook" => CallWebhook::parse(c, at).map(Self::CallWebhook),
            "start_sequence" => StartSequence::parse(c, at, in_sequence).map(Self::StartSequence),
            "stop_sequence" => StopSequence::parse(c, at).map(Self::StopSequence),
            _ => None,
        }
    }

    /// The action with its templates filled in from an event; an error names the template
    /// that failed.
    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        match self {
            Self::UpdateContact(a) => a.render(r),
            Self::EnrollWorkflow(a) => a.render(r),
            Self::AddToList(a) => Ok(a.render()),
            Self::RemoveFromList(a) => Ok(a.render()),
            Self::CreateTask(a) => a.render(r),
            Self::CreateTicket(a) => a.render(r),
            Self::CreateDeal(a) => a.render(r),
            Self::CreateNote(a) => a.render(r),
            Self::NotifySlack(a) => a.render(r),
            Self::CallWebhook(a) => a.render(r),
            Self::StartSequence(a) => Ok(a.render()),
            Self::StopSequence(a) => Ok(a.render()),
        }
    }

    /// Adds what this action needs from HubSpot.
    pub(crate) fn needs(&self, n: &mut Needs) {
        match self {
            Self::UpdateContact(a) => a.needs(n),
            Self::EnrollWorkflow(a) => a.needs(n),
            Self::AddToList(a) => a.needs(n),
            Self::RemoveFromList(a) => a.needs(n),
            Self::CreateTask(a) => a.needs(n),
            Self::CreateTicket(a) => a.needs(n),
            Self::CreateDeal(a) => a.needs(n),
            Self::CreateNote(a) => a.needs(n),
            Self::NotifySlack(a) => a.needs(n),
            Self::CallWebhook(a) => a.needs(n),
            Self::StartSequence(a) => a.needs(n),
            Self::StopSequence(a) => a.needs(n),
        }
    }
}

/// An outbound URL a step may call: `http(s)://` and something after it.
fn is_http_url(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://")) && s.len() > "https://".len()
}
