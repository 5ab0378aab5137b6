//! Rules: configuration → a plan of keyed steps. Pure: no store, no HubSpot.

pub mod financial;
pub mod patterns;
pub mod plan;
pub mod properties;

pub use financial::Extras;
pub use patterns::TypePatterns;
pub use plan::{Action, Plan, Step, step_key};

use crate::domain::PaymentFact;

/// The event types the built-in financial tagging keeps contact properties current from
/// (SPEC §1 "financial tagging" and "subscription lifecycle").
pub const FINANCIAL_TYPES: &[&str] = &[
    "customer.created",
    "customer.updated",
    "customer.subscription.*",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "checkout.session.completed",
];

/// The plan for one fact.
pub fn plan(fact: &PaymentFact, extras: &Extras) -> Plan {
    Plan {
        steps: financial::plan(fact, extras).into_iter().collect(),
    }
}
