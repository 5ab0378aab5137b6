//! `start_sequence` / `stop_sequence sequence = "NAME"`: start a `[sequences.NAME]` for
//! the customer (from rules only), or cancel what is left of it.

use crate::basics::At;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;

pub const KEYS: &[&str] = &["sequence"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartSequence {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSequence {
    pub name: String,
}

/// The `sequence` key: the name of a defined sequence.
fn sequence_name(c: &mut Compiler, at: At) -> Option<String> {
    let name = c
        .fields
        .scalar(at, "sequence", true, "the name of a [sequences.NAME]")?;
    let names = c.sequence_names();
    if !names.contains(&name) {
        let defined = if names.is_empty() {
            "no [sequences.NAME] is defined".to_owned()
        } else {
            format!(
                "defined: {}",
                names
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        c.fields.problem(
            at.path_of("sequence"),
            format!("`{name}` is not a defined sequence ({defined})"),
        );
    }
    Some(name)
}

impl StartSequence {
    /// `in_sequence`: the action is a step of a sequence, where starting one is refused.
    pub(crate) fn parse(c: &mut Compiler, at: At, in_sequence: bool) -> Option<Self> {
        let name = sequence_name(c, at);
        if in_sequence {
            c.fields.problem(
                at.path_of("type"),
                "start_sequence cannot be used inside a sequence (start sequences from rules)",
            );
        }
        name.map(|name| Self { name })
    }

    pub(crate) fn render(&self) -> Action {
        Action::StartSequence {
            name: self.name.clone(),
        }
    }

    /// Scheduling is paybridge's own: nothing.
    pub(crate) fn needs(&self, _: &mut Needs) {}
}

impl StopSequence {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        sequence_name(c, at).map(|name| Self { name })
    }

    pub(crate) fn render(&self) -> Action {
        Action::StopSequence {
            name: self.name.clone(),
        }
    }

    /// Scheduling is paybridge's own: nothing.
    pub(crate) fn needs(&self, _: &mut Needs) {}
}
