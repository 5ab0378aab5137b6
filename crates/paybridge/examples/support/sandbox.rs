//! Shared by the benchmarks that run against the sandbox: paybridge's properties created
//! as `paybridge setup` would, with a token of their own (not the measured budget).

use hubspot_sandbox::{Sandbox, Seed, SeedToken};
use paybridge::basics::Secret;
use paybridge::hubspot::HubSpot;

pub async fn setup_properties(sandbox: &Sandbox) -> anyhow::Result<()> {
    sandbox.merge_seed(Seed {
        tokens: vec![SeedToken {
            token: "setup".into(),
            scopes: vec![
                "crm.schemas.contacts.write".into(),
                "crm.schemas.contacts.read".into(),
                "crm.schemas.deals.write".into(),
                "crm.schemas.deals.read".into(),
                "tickets".into(),
            ],
        }],
        ..Default::default()
    })?;
    let setup = HubSpot::new(
        &sandbox.url(),
        Secret::new("setup".into()),
        paybridge::hubspot::ApiVersion::Dated2026_09,
        1_000,
        10,
        "stripe_customer_id",
    )?;
    let defs: Vec<_> = paybridge::rules::properties::builtin("stripe_customer_id")
        .iter()
        .map(paybridge::ops::setup::definition)
        .collect();
    paybridge::ops::setup::ensure(&setup, &defs, false).await?;
    Ok(())
}
