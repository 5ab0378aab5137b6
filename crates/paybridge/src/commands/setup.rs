//! `paybridge setup [--dry-run]`: create the `stripe` property group and every custom
//! property the config writes, with HubSpot types; idempotent, reporting each property.

use crate::app::{Loaded, services};
use crate::ops::setup::{Outcome, definitions, ensure, scopes_needed};

pub async fn run(dry_run: bool, config: Loaded) -> anyhow::Result<()> {
    let Loaded { settings, rules } = config;
    let Some(hubspot) = services::hubspot(&settings)? else {
        println!(
            "sandbox mode (no hubspot.token): `paybridge serve` creates these properties in its \
             embedded sandbox when it starts; nothing to do here"
        );
        return Ok(());
    };
    let defs = definitions(&settings, &rules);
    let report = match ensure(&hubspot, &defs, dry_run).await {
        Ok(report) => report,
        Err(e) => {
            let mut message = format!("setup failed: {e}");
            if e.category() == Some("MISSING_SCOPES") {
                message.push_str(&format!(
                    " (setup needs the scopes {}; `paybridge check` lists what the token lacks)",
                    scopes_needed(&defs)
                        .into_iter()
                        .map(crate::rules::needs::describe_scope)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            anyhow::bail!(message);
        }
    };
    let width = report
        .entries
        .iter()
        .map(|e| e.property.len())
        .max()
        .unwrap_or(0);
    for object_type in &report.groups_created {
        println!("{:<width$}  created", format!("{object_type} group stripe"));
    }
    for entry in &report.entries {
        let outcome = match &entry.outcome {
            Outcome::Created => "created".to_owned(),
            Outcome::Exists => "exists".to_owned(),
            Outcome::WouldCreate => "would be created (dry run)".to_owned(),
            Outcome::Differs(why) => format!("exists, but differs: {}", why.join("; ")),
        };
        println!("{:<width$}  {outcome}", entry.property);
    }
    let created = report.created().len();
    let existed = report.existed().len();
    if dry_run {
        println!("dry run: {created} to create, {existed} exist; nothing was changed");
    } else {
        println!("{created} created, {existed} existed");
    }
    let differing = report.differing();
    if !differing.is_empty() {
        anyhow::bail!(
            "{} propert{} exist in HubSpot but not as paybridge writes them ({}); change or \
             delete them in HubSpot, then run `paybridge setup` again",
            differing.len(),
            if differing.len() == 1 { "y" } else { "ies" },
            differing
                .iter()
                .map(|e| e.property.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
