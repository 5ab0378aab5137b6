//! paybridge: Stripe payment events → HubSpot CRM actions, durably and exactly once.
//!
//! The data path reads top to bottom: `intake` (from `http`, or `catchup`) → `store` (event +
//! job, one transaction) → `worker` → `rules` (plan) → `hubspot`. `app` wires it together.

pub mod app;
pub mod basics;
pub mod catchup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod http;
pub mod hubspot;
pub mod intake;
pub mod ops;
pub mod rules;
pub mod store;
pub mod stripe;
pub mod telemetry;
pub mod worker;

/// A mistake in how a command was called (exit code 2), as opposed to a failure (exit 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
