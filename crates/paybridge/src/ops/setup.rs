//! Creating what paybridge needs in HubSpot: the `stripe` property group and every
//! custom property it writes (idempotent: what exists is reported, not recreated).

use std::collections::BTreeSet;

use crate::config::Settings;
use crate::hubspot::properties::{Ensured, ExistingProperty, PropertyDef};
use crate::hubspot::{HubSpot, HubspotError};
use crate::rules::properties::{GROUP, GROUP_LABEL};
use crate::rules::{PropertyKind, PropertyNeed, RuleSet};

/// Every property the configuration writes (see [`RuleSet::properties_needed`]), as HubSpot
/// property definitions.
pub fn definitions(settings: &Settings, rules: &RuleSet) -> Vec<PropertyDef> {
    rules
        .properties_needed(&settings.contacts.id_property)
        .iter()
        .map(definition)
        .collect()
}

/// A property paybridge writes, with HubSpot's type and field type for it.
pub fn definition(need: &PropertyNeed) -> PropertyDef {
    let (kind, field_type, options) = match &need.kind {
        PropertyKind::Text => ("string", "text", Vec::new()),
        PropertyKind::Number => ("number", "number", Vec::new()),
        PropertyKind::Date => ("date", "date", Vec::new()),
        PropertyKind::Checkbox => ("bool", "booleancheckbox", Vec::new()),
        PropertyKind::Select(options) => ("enumeration", "select", options.clone()),
    };
    PropertyDef {
        object_type: need.object_type,
        name: need.name.clone(),
        label: need.label.clone(),
        kind,
        field_type,
        unique: need.unique,
        options,
    }
}

/// The scopes [`ensure`] needs for these definitions, beyond what running needs: creating
/// properties (reading them needs only the objects' read scopes). Ticket properties take
/// `crm.schemas.tickets.write` or the legacy `tickets` (`rules::needs::scope_alternatives`).
pub fn scopes_needed(defs: &[PropertyDef]) -> BTreeSet<&'static str> {
    defs.iter()
        .map(|d| match d.object_type {
            "tickets" => "crm.schemas.tickets.write",
            "deals" => "crm.schemas.deals.write",
            _ => "crm.schemas.contacts.write",
        })
        .collect()
}

/// What `ensure` found or did for one property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Exists,
    /// Dry run: it does not exist and would be created.
    WouldCreate,
    /// It exists, but not as paybridge writes it (each difference in words).
    Differs(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `contacts.stripe_customer_id`
    pub property: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct SetupReport {
    /// In the order of the definitions.
    pub entries: Vec<Entry>,
    /// Object types whose `stripe` group was created.
    pub groups_created: Vec<String>,
}

impl SetupReport {
    fn with(&self, wanted: impl Fn(&Outcome) -> bool) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| wanted(&e.outcome))
            .map(|e| e.property.clone())
            .collect()
    }

    /// Created now (or, in a dry run, to be created).
    pub fn created(&self) -> Vec<String> {
        self.with(|o| matches!(o, Outcome::Created | Outcome::WouldCreate))
    }

    /// Already there (as paybridge writes it or not).
    pub fn existed(&self) -> Vec<String> {
        self.with(|o| matches!(o, Outcome::Exists | Outcome::Differs(_)))
    }

    pub fn differing(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Differs(_)))
            .collect()
    }
}

/// Ensures each property (and, before the first one it creates on an object type, that
/// type's `stripe` group). With `dry_run` nothing is written.
pub async fn ensure(
    hubspot: &HubSpot,
    defs: &[PropertyDef],
    dry_run: bool,
) -> Result<SetupReport, HubspotError> {
    let mut report = SetupReport::default();
    let mut object_types: Vec<&str> = Vec::new();
    for d in defs {
        if !object_types.contains(&d.object_type) {
            object_types.push(d.object_type);
        }
    }
    let mut outcomes = Vec::with_capacity(defs.len());
    for object_type in object_types {
        let existing = hubspot.properties(object_type).await?;
        let mut group_ready = false;
        for (i, d) in defs.iter().enumerate() {
            if d.object_type != object_type {
                continue;
            }
            let outcome = if let Some(found) = existing.iter().find(|p| p.name == d.name) {
                let differences = differences(d, found);
                if differences.is_empty() {
                    Outcome::Exists
                } else {
                    Outcome::Differs(differences)
                }
            } else if dry_run {
                Outcome::WouldCreate
            } else {
                if !group_ready {
                    if hubspot
                        .ensure_group(object_type, GROUP, GROUP_LABEL)
                        .await?
                        == Ensured::Created
                    {
                        report.groups_created.push(object_type.to_owned());
                    }
                    group_ready = true;
                }
                match hubspot.ensure_property(d, GROUP).await? {
                    Ensured::Created => Outcome::Created,
                    // Created by someone else since the listing.
                    Ensured::Existed => Outcome::Exists,
                }
            };
            outcomes.push((i, outcome));
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    report.entries = outcomes
        .into_iter()
        .map(|(i, outcome)| Entry {
            property: format!("{}.{}", defs[i].object_type, defs[i].name),
            outcome,
        })
        .collect();
    Ok(report)
}

/// How an existing property differs from what paybridge writes into it.
fn differences(want: &PropertyDef, found: &ExistingProperty) -> Vec<String> {
    let mut out = Vec::new();
    if found.kind != want.kind {
        out.push(format!(
            "its type is {}, paybridge writes {}",
            found.kind, want.kind
        ));
    }
    if want.unique && !found.unique {
        out.push("it does not require unique values (paybridge relies on them)".to_owned());
    }
    let missing: Vec<&str> = want
        .options
        .iter()
        .filter(|o| !found.options.contains(o))
        .map(String::as_str)
        .collect();
    if found.kind == want.kind && !missing.is_empty() {
        out.push(format!("options missing: {}", missing.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing(kind: &str, unique: bool, options: &[&str]) -> ExistingProperty {
        ExistingProperty {
            name: "x".into(),
            kind: kind.into(),
            unique,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    #[test]
    fn differences_name_type_uniqueness_and_missing_options() {
        let defs: Vec<PropertyDef> = crate::rules::properties::builtin("stripe_customer_id")
            .iter()
            .map(definition)
            .collect();
        let id = &defs[0];
        let status = &defs[1];
        assert!(differences(id, &existing("string", true, &[])).is_empty());
        assert_eq!(
            differences(id, &existing("number", false, &[])),
            [
                "its type is number, paybridge writes string",
                "it does not require unique values (paybridge relies on them)"
            ]
        );
        assert_eq!(
            differences(
                status,
                &existing(
                    "enumeration",
                    false,
                    &["active", "trialing", "past_due", "canceled", "unpaid"]
                )
            ),
            ["options missing: paused, incomplete, incomplete_expired"]
        );
    }

    #[test]
    fn definitions_follow_what_the_rules_create_and_setup_scopes_follow_them() {
        let settings = Settings::defaults();
        let names = |rules: &RuleSet| {
            definitions(&settings, rules)
                .iter()
                .map(|d| format!("{}.{}", d.object_type, d.name))
                .collect::<Vec<_>>()
        };
        let without = names(&RuleSet::default());
        assert_eq!(without.len(), 9, "{without:?}");
        assert!(without.iter().all(|n| n.starts_with("contacts.")));
        assert_eq!(
            scopes_needed(&definitions(&settings, &RuleSet::default()))
                .into_iter()
                .collect::<Vec<_>>(),
            ["crm.schemas.contacts.write"]
        );

        let starter = crate::app::load::load_from_str(
            Some(crate::config::STARTER),
            None,
            &std::collections::HashMap::new(),
        )
        .unwrap_or_else(|e| panic!("the starter loads: {e}"));
        let with = names(&starter.rules);
        assert_eq!(with.len(), 11, "{with:?}");
        assert!(with.contains(&"tickets.paybridge_key".to_owned()));
        assert!(with.contains(&"deals.paybridge_key".to_owned()));
        assert_eq!(
            scopes_needed(&definitions(&starter.settings, &starter.rules))
                .into_iter()
                .collect::<Vec<_>>(),
            [
                "crm.schemas.contacts.write",
                "crm.schemas.deals.write",
                "crm.schemas.tickets.write"
            ]
        );
    }
}
