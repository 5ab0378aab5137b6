//! Wiring in one place: the HubSpot client, the Stripe client, the front door and the
//! worker pipeline are built here from the settings, and nowhere else. `serve`,
//! `backfill`, `replay`, `setup` and `check` all take them from here.

use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Settings;
use crate::domain::Clock;
use crate::hubspot::HubSpot;
use crate::intake::Intake;
use crate::rules::RuleSet;
use crate::store::Store;
use crate::stripe::api::StripeApi;
use crate::worker::Pipeline;

/// What moves events: the store, the front door, the Stripe client (None without
/// `stripe.api_key`) and the worker pipeline with its HubSpot client.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub intake: Intake,
    pub stripe: Option<StripeApi>,
    pub pipeline: Pipeline,
    pub rules: Arc<RuleSet>,
}

impl Services {
    /// Every service of `settings` on `store`; `hubspot.token` must be set (sandbox mode
    /// sets it to its embedded sandbox's before calling this).
    pub fn build(
        settings: &Settings,
        rules: Arc<RuleSet>,
        store: Store,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let hubspot = hubspot(settings)?.context("hubspot.token is required")?;
        hubspot.use_clock(clock.clone());
        // On Postgres there may be other replicas (and `reconcile`/`backfill` runs): every
        // process's calls come out of one budget kept in the database.
        let hubspot = match store.postgres_pool() {
            Some(pool) => hubspot.sharing(pool),
            None => hubspot,
        };
        let stripe = stripe(settings)?;
        let pipeline = Pipeline::new(
            settings,
            rules.clone(),
            store.clone(),
            hubspot,
            stripe.clone(),
            clock,
        )?;
        Ok(Self {
            intake: intake(&rules, store.clone()),
            store,
            stripe,
            pipeline,
            rules,
        })
    }

    pub fn hubspot(&self) -> &HubSpot {
        self.pipeline.hubspot()
    }

    /// Thin events that waited for `stripe.api_key` run again once a key is configured.
    pub async fn resume_thin_events(&self) -> anyhow::Result<()> {
        if self.stripe.is_none() {
            return Ok(());
        }
        let waiting = self.store.thin_waiting_for_key().await?;
        if waiting.is_empty() {
            return Ok(());
        }
        let back = self.store.retry_events(&waiting).await?;
        tracing::info!(
            events = back.len(),
            "thin events that waited for stripe.api_key are queued again"
        );
        Ok(())
    }
}

/// The HubSpot client of the settings; None without `hubspot.token` (sandbox mode: the
/// embedded sandbox only exists inside `serve`).
pub fn hubspot(settings: &Settings) -> anyhow::Result<Option<HubSpot>> {
    let Some(token) = settings.hubspot.token.clone() else {
        return Ok(None);
    };
    let h = &settings.hubspot;
    HubSpot::new(
        &h.api_base,
        token,
        h.api_version,
        h.requests_per_10s,
        h.search_per_s,
        &settings.contacts.id_property,
    )
    .map(|client| {
        client.set_background_share(settings.stripe.reconcile_budget_share);
        Some(client)
    })
    .context("cannot build the HubSpot client")
}

/// The Stripe API client of the settings; None without `stripe.api_key`.
pub fn stripe(settings: &Settings) -> anyhow::Result<Option<StripeApi>> {
    match &settings.stripe.api_key {
        Some(key) => StripeApi::new(&settings.stripe.api_base, key.clone())
            .map(|api| {
                Some(
                    api.with_version(&settings.stripe.api_version)
                        .with_rate(settings.stripe.requests_per_s),
                )
            })
            .context("cannot build the Stripe API client"),
        None => Ok(None),
    }
}

/// The Stripe API client `command` cannot do without, or a usage error naming the key.
pub fn require_stripe(settings: &Settings, command: &str) -> anyhow::Result<StripeApi> {
    stripe(settings)?.ok_or_else(|| {
        crate::UsageError(format!(
            "stripe.api_key is not set: `{command}` reads Stripe's API. Set [stripe] api_key = \"env:STRIPE_API_KEY\" (a restricted key with read access to events, customers and subscriptions is enough)"
        ))
        .into()
    })
}

/// The front door on `store`, storing as `ignored` the event types no rule handles.
pub fn intake(rules: &RuleSet, store: Store) -> Intake {
    Intake::new(store, Arc::new(rules.handled_types()))
}
