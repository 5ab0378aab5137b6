//! `owner = …` of tasks, tickets and deals: `contact_owner`, an owner's email, an owner id,
//! or a template that renders to one of those (empty: unassigned).

use crate::basics::At;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Owner;
use crate::rules::render::Renderer;
use crate::rules::template::{Text, is_template};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerSpec {
    None,
    ContactOwner,
    Email(String),
    Id(String),
    /// Rendered, then read as `contact_owner`, an email or an id (empty = unassigned).
    Template(Text),
}

const WHAT: &str = "contact_owner, an owner's email or an owner id";

impl OwnerSpec {
    /// The `owner` key of an action (unassigned when absent or wrong).
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Self {
        let Some(text) = c.fields.scalar(at, "owner", false, WHAT) else {
            return Self::None;
        };
        let path = at.path_of("owner");
        if is_template(&text) {
            return c.template(&path, text).map_or(Self::None, Self::Template);
        }
        match read(text.trim()) {
            Some(owner) => owner,
            None => {
                c.fields.problem(path, format!("`{text}` is not {WHAT}"));
                Self::None
            }
        }
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Owner, String> {
        Ok(match self {
            Self::None => Owner::None,
            Self::ContactOwner => Owner::ContactOwner,
            Self::Email(e) => Owner::Email(e.clone()),
            Self::Id(id) => Owner::Id(id.clone()),
            Self::Template(t) => {
                let rendered = r.text(t)?;
                match read(rendered.trim()) {
                    Some(Self::ContactOwner) => Owner::ContactOwner,
                    Some(Self::Email(e)) => Owner::Email(e),
                    Some(Self::Id(id)) => Owner::Id(id),
                    _ if rendered.trim().is_empty() => Owner::None,
                    _ => {
                        return Err(format!(
                            "owner `{}` is not contact_owner, an email or an owner id",
                            rendered.trim()
                        ));
                    }
                }
            }
        })
    }

    /// Owner emails (and templates, which may render to one) are resolved through the
    /// owners API.
    pub(crate) fn needs(&self, n: &mut Needs) {
        if matches!(self, Self::Email(_) | Self::Template(_)) {
            n.scopes.insert("crm.objects.owners.read");
        }
    }
}

fn read(text: &str) -> Option<OwnerSpec> {
    if text == "contact_owner" {
        Some(OwnerSpec::ContactOwner)
    } else if text.contains('@') && !text.contains(char::is_whitespace) {
        Some(OwnerSpec::Email(text.to_ascii_lowercase()))
    } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        Some(OwnerSpec::Id(text.to_owned()))
    } else {
        None
    }
}
