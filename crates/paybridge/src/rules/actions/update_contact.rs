//! `update_contact properties = { name = "value", … }`: write contact properties (the
//! worker keeps `lifecyclestage` moving forward only).

use std::collections::BTreeMap;

use toml::Value;

use crate::basics::At;
use crate::basics::fields::describe;
use crate::rules::compile::Compiler;
use crate::rules::needs::Needs;
use crate::rules::plan::Action;
use crate::rules::render::Renderer;
use crate::rules::template::Text;

pub const KEYS: &[&str] = &["properties"];

/// HubSpot's default lifecycle stages, in their forward order.
const LIFECYCLE_STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateContact {
    pub properties: BTreeMap<String, Text>,
}

impl UpdateContact {
    pub(crate) fn parse(c: &mut Compiler, at: At) -> Option<Self> {
        let path = at.path_of("properties");
        let table = match at.get("properties") {
            None => {
                c.fields.problem(
                    path,
                    "missing (a table of HubSpot property names and values, e.g. \
                     { lifecyclestage = \"customer\" })",
                );
                return None;
            }
            Some(Value::Table(table)) if table.is_empty() => {
                c.fields
                    .problem(path, "is empty (name at least one property)");
                return None;
            }
            Some(Value::Table(table)) => table,
            Some(other) => {
                c.fields
                    .problem(path, format!("must be a table, found {}", describe(other)));
                return None;
            }
        };
        let values = At::new(table, &path);
        let mut properties = BTreeMap::new();
        for name in table.keys() {
            let prop_path = values.path_of(name);
            if !c.fields.property_name(prop_path.as_str(), name) {
                continue;
            }
            let Some(text) = c.text(values, name, true, "the value") else {
                continue;
            };
            if name == "lifecyclestage"
                && let Text::Literal(stage) = &text
                && !LIFECYCLE_STAGES.contains(&stage.as_str())
                && !stage.bytes().all(|b| b.is_ascii_digit())
            {
                c.fields.problem(
                    prop_path,
                    format!(
                        "`{stage}` is not a lifecycle stage (HubSpot's: {}, or a custom stage's \
                         numeric id)",
                        LIFECYCLE_STAGES.join(", ")
                    ),
                );
                continue;
            }
            properties.insert(name.clone(), text);
        }
        Some(Self { properties })
    }

    pub(crate) fn render(&self, r: &Renderer) -> Result<Action, String> {
        Ok(Action::UpdateContact {
            properties: self
                .properties
                .iter()
                .map(|(k, v)| Ok((k.clone(), r.text(v)?)))
                .collect::<Result<_, String>>()?,
            aggregates: BTreeMap::new(),
        })
    }

    pub(crate) fn needs(&self, n: &mut Needs) {
        n.contact_properties.extend(self.properties.keys().cloned());
    }
}
