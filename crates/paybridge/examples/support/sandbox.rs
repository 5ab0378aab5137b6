//! Shared by the benchmarks that run against the sandbox: the properties the rules write,
//! created as `paybridge setup` would, with a token of their own (not the measured budget).

use hubspot_sandbox::{Sandbox, Seed, SeedToken};
use paybridge::basics::Secret;
use paybridge::hubspot::{ApiVersion, HubSpot};
use paybridge::rules::PropertyNeed;

pub async fn setup_properties(sandbox: &Sandbox, needs: Vec<PropertyNeed>) -> anyhow::Result<()> {
    sandbox.merge_seed(Seed {
        tokens: vec![SeedToken {
            token: "setup".into(),
            scopes: [
                "crm.schemas.contacts.write",
                "crm.schemas.contacts.read",
                "crm.schemas.deals.write",
                "crm.schemas.deals.read",
                "tickets",
            ]
            .map(String::from)
            .to_vec(),
        }],
        ..Default::default()
    })?;
    let setup = HubSpot::new(
        &sandbox.url(),
        Secret::new("setup".into()),
        ApiVersion::Dated2026_09,
        1_000,
        10,
        "stripe_customer_id",
    )?;
    let defs: Vec<_> = needs
        .iter()
        .map(paybridge::ops::setup::definition)
        .collect();
    paybridge::ops::setup::ensure(&setup, &defs, false).await?;
    Ok(())
}
