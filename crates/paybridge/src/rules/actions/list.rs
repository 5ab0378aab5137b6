//! `add_to_list` / `remove_from_list list_id = "1"`: the contact's membership of a manual
//! list.

use crate::basics::At;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;

pub const KEYS: &[&str] = &["list_id"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddToList {
    pub list_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveFromList {
    pub list_id: String,
}

fn list_id(c: &mut Compiler, at: At) -> Option<String> {
    c.numeric_id(at, "list_id", true, "the list's id, e.g. \"1\"")
}

fn needs(n: &mut Needs) {
    n.scopes.extend(["crm.lists.read", "crm.lists.write"]);
}

impl AddToList {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        list_id(c, at).map(|list_id| Self { list_id })
    }

    pub(crate) fn render(&self) -> Action {
        Action::AddToList {
            list_id: self.list_id.clone(),
        }
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        needs(n);
    }
}

impl RemoveFromList {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        list_id(c, at).map(|list_id| Self { list_id })
    }

    pub(crate) fn render(&self) -> Action {
        Action::RemoveFromList {
            list_id: self.list_id.clone(),
        }
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        needs(n);
    }
}
