//! Reconcile: prove that HubSpot agrees with Stripe, and repair it where it does not.
//!
//! Webhooks are not the whole truth (an endpoint disabled for a day, a contact edited by
//! hand, a merge that moved the Stripe Customer ID, a customer deleted in Stripe). A run
//! compares Stripe's current state of every customer (`stripe_state`: the properties the
//! worker would write, planned by the same financial tagging) with the contact's
//! properties read from HubSpot in batches of 100 (`compare`, pure), page by page (`scan`),
//! and stores each finding with the last event paybridge applied for the property; then the
//! contacts' claims Stripe does not back (`claims`). With
//! `--fix`, each customer's drift is repaired through the pipeline (`repair`). `serve` runs
//! it on a schedule (`schedule`). Every run ends with its metrics (`metrics`).

mod claims;
mod compare;
mod repair;
mod scan;
pub mod schedule;
mod stripe_state;

use std::future::Future;
use std::time::Duration;

pub use repair::{Current, Repairs, repair_prefix};
pub use scan::{ReconcileOptions, ReconcileProgress, Reconciler};
pub use stripe_state::LedgerEntry;

use crate::hubspot::{HubSpot, HubspotError};
use crate::store::{Store, StoreError};
use crate::stripe::api::{ReadError, StripeApi, StripeApiError};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Stripe(String),
    #[error("{0}")]
    Hubspot(#[from] HubspotError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the repair event could not be made: {0}")]
    Repair(String),
    #[error("interrupted")]
    Cancelled,
    /// `--resume` with nothing to resume.
    #[error("{0}")]
    NothingToResume(String),
}

impl From<ReadError> for ReconcileError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Cancelled => Self::Cancelled,
            other => Self::Stripe(other.to_string()),
        }
    }
}

impl From<StripeApiError> for ReconcileError {
    fn from(e: StripeApiError) -> Self {
        Self::Stripe(e.to_string())
    }
}

/// The contact properties a run reads: every built-in contact property and the email.
fn read_properties(id_property: &str) -> Vec<String> {
    crate::rules::properties::builtin(id_property)
        .into_iter()
        .filter(|n| n.object_type == "contacts")
        .map(|n| n.name)
        .chain(["email".to_owned()])
        .collect()
}

/// A read retried while `retryable` says so (1 s, 2 s, 4 s, 8 s, then the error): a busy
/// moment at HubSpot or Stripe does not end a run. (HubSpot's 429s already wait inside its
/// client; Stripe's list pages retry in the pager.)
async fn retrying<T, E, F, Fut>(retryable: impl Fn(&E) -> bool, mut call: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_secs(1);
    for _ in 0..4 {
        match call().await {
            Err(e) if retryable(&e) => {
                tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "read failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    call().await
}

/// A HubSpot read, retried through 5xx and network failures.
async fn with_retries<T, F, Fut>(call: F) -> Result<T, HubspotError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, HubspotError>>,
{
    retrying(|e: &HubspotError| !e.is_terminal(), call).await
}

/// A single Stripe read, retried through 429s, 5xx and network failures.
async fn stripe_retries<T, F, Fut>(call: F) -> Result<T, StripeApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StripeApiError>>,
{
    retrying(
        |e: &StripeApiError| matches!(e, StripeApiError::Retryable { .. }),
        call,
    )
    .await
}

impl Reconciler {
    /// A reconciler reading Stripe through `api` and HubSpot through `hubspot` (the
    /// contacts' `id_property`), storing in `store`; `repairs` with `--fix`.
    pub fn new(
        api: StripeApi,
        hubspot: HubSpot,
        store: Store,
        id_property: &str,
        repairs: Option<Repairs>,
    ) -> Self {
        Self {
            api,
            hubspot,
            store,
            id_property: id_property.to_owned(),
            repairs,
        }
    }
}

/// The metrics of a finished run: a run counted by trigger, customers compared, and the
/// last run's findings and repairs by kind and property (the built-in properties: a small
/// fixed set of labels).
async fn record_metrics(
    store: &Store,
    state: &ReconcileProgress,
    trigger: &'static str,
    id_property: &str,
) -> Result<(), StoreError> {
    use crate::store::FindingKind::{ClaimedTwice, Drift, NoContact, UnknownCustomer};
    metrics::counter!("paybridge_reconcile_runs_total", "trigger" => trigger, "result" => "ok")
        .increment(1);
    metrics::counter!("paybridge_reconcile_customers_total", "trigger" => trigger)
        .increment(state.customers);
    metrics::gauge!("paybridge_reconcile_last_run_customers")
        .set((state.customers + state.customers_before) as f64);
    metrics::gauge!("paybridge_reconcile_last_run_timestamp_seconds")
        .set(store.clock().now_secs() as f64);
    let counts = store.reconcile_counts(&state.run).await?;
    let mut labels: Vec<(&'static str, String)> = read_properties(id_property)
        .into_iter()
        .map(|p| (Drift.as_str(), p))
        .collect();
    labels.extend(
        [NoContact, UnknownCustomer, ClaimedTwice]
            .iter()
            .map(|k| (k.as_str(), String::new())),
    );
    for (kind, property) in labels {
        let (found, repaired) = counts
            .get(&(kind.to_owned(), property.clone()))
            .copied()
            .unwrap_or((0, 0));
        metrics::gauge!("paybridge_reconcile_last_run_findings", "kind" => kind, "property" => property.clone())
            .set(found as f64);
        metrics::gauge!("paybridge_reconcile_last_run_repaired", "kind" => kind, "property" => property)
            .set(repaired as f64);
    }
    Ok(())
}
