//! Creating what paybridge needs in HubSpot: the `stripe` property group and every
//! custom property it writes (idempotent: what exists is reported, not recreated).

use crate::config::Settings;
use crate::hubspot::properties::{Ensured, PropertyDef};
use crate::hubspot::{HubSpot, HubspotError};
use crate::rules::properties::{GROUP, GROUP_LABEL};

/// Every property the configuration writes: the built-in ones, then the rules' own
/// (created as text; HubSpot's default properties are left alone).
pub fn definitions(settings: &Settings) -> Vec<PropertyDef> {
    let mut defs = crate::rules::properties::builtin(&settings.contacts.id_property);
    for (object_type, name) in settings.ruleset.custom_properties() {
        if !defs.iter().any(|d| d.object_type == object_type && d.name == name) {
            defs.push(PropertyDef {
                object_type,
                label: name.replace('_', " "),
                name,
                kind: "string",
                field_type: "text",
                unique: false,
                options: Vec::new(),
            });
        }
    }
    defs
}

#[derive(Debug, Clone, Default)]
pub struct SetupReport {
    pub created: Vec<String>,
    pub existed: Vec<String>,
}

/// Ensures the group on each object type used, then each property.
pub async fn ensure(
    hubspot: &HubSpot,
    defs: &[PropertyDef],
    dry_run: bool,
) -> Result<SetupReport, HubspotError> {
    let mut report = SetupReport::default();
    let mut object_types: Vec<&str> = defs.iter().map(|d| d.object_type).collect();
    object_types.dedup();
    for object_type in &object_types {
        let existing = hubspot.property_names(object_type).await?;
        for d in defs.iter().filter(|d| d.object_type == *object_type) {
            let label = format!("{}.{}", d.object_type, d.name);
            if existing.contains(&d.name) {
                report.existed.push(label);
                continue;
            }
            if dry_run {
                report.created.push(label);
                continue;
            }
            hubspot
                .ensure_group(object_type, GROUP, GROUP_LABEL)
                .await?;
            match hubspot.ensure_property(d, GROUP).await? {
                Ensured::Created => report.created.push(label),
                Ensured::Existed => report.existed.push(label),
            }
        }
    }
    Ok(report)
}
