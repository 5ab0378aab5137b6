//! Rules: configuration → a plan of keyed steps. Pure: no store, no HubSpot.

pub mod patterns;

pub use patterns::TypePatterns;

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
