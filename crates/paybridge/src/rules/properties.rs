//! The built-in properties paybridge writes (SPEC §1): the contact's financial tags and
//! the idempotency key of tickets and deals.

use super::needs::{PropertyKind, PropertyNeed};

/// The property group they are created in.
pub const GROUP: &str = "stripe";
pub const GROUP_LABEL: &str = "Stripe";

pub const SUBSCRIPTION_STATUSES: &[&str] = &[
    "active",
    "trialing",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
    "incomplete",
    "incomplete_expired",
];

fn need(object_type: &'static str, name: &str, label: &str, kind: PropertyKind) -> PropertyNeed {
    PropertyNeed {
        object_type,
        name: name.to_owned(),
        label: label.to_owned(),
        kind,
        unique: false,
    }
}

/// The built-in properties. `id_property` is the configured Stripe Customer ID property.
pub fn builtin(id_property: &str) -> Vec<PropertyNeed> {
    use PropertyKind::{Checkbox, Date, Number, Select, Text};
    let unique = |mut need: PropertyNeed| {
        need.unique = true;
        need
    };
    let statuses = SUBSCRIPTION_STATUSES.iter().map(|s| (*s).to_owned());
    vec![
        unique(need("contacts", id_property, "Stripe Customer ID", Text)),
        need(
            "contacts",
            "stripe_subscription_status",
            "Subscription Status",
            Select(statuses.collect()),
        ),
        need(
            "contacts",
            "stripe_subscription_tier",
            "Subscription Tier",
            Text,
        ),
        need(
            "contacts",
            "stripe_last_payment_date",
            "Last Payment Date",
            Date,
        ),
        need(
            "contacts",
            "stripe_last_payment_amount",
            "Last Payment Amount",
            Number,
        ),
        need(
            "contacts",
            "stripe_last_payment_failed_date",
            "Last Payment Failed Date",
            Date,
        ),
        need(
            "contacts",
            "stripe_lifetime_value",
            "Lifetime Value",
            Number,
        ),
        need(
            "contacts",
            "stripe_refund_issued",
            "Refund Issued",
            Checkbox,
        ),
        need("contacts", "stripe_delinquent", "Delinquent", Checkbox),
        unique(need("tickets", "paybridge_key", "paybridge key", Text)),
        unique(need("deals", "paybridge_key", "paybridge key", Text)),
    ]
}
