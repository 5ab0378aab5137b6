//! `create_note body`: a note on the contact's timeline.

use crate::basics::At;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::{Escape, Text};

pub const KEYS: &[&str] = &["body"];

#[derive(Debug, Clone, PartialEq)]
pub struct CreateNote {
    pub body: Text,
}

impl CreateNote {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        c.text(at, "body", true, "the note's text")
            .map(|body| Self { body })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        Ok(Action::CreateNote {
            body: r.text_for(&self.body, Escape::Html)?,
        })
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        // Notes need no scope of their own.
        n.objects.insert("notes");
    }
}
