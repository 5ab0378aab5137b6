//! The custom HubSpot properties paybridge writes (SPEC §1), with their types.

use crate::hubspot::properties::PropertyDef;

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

fn def(
    object_type: &'static str,
    name: &str,
    label: &str,
    kind: &'static str,
    field_type: &'static str,
) -> PropertyDef {
    PropertyDef {
        object_type,
        name: name.to_owned(),
        label: label.to_owned(),
        kind,
        field_type,
        unique: false,
        options: Vec::new(),
    }
}

/// The built-in properties: the contact's financial tags and the idempotency key of
/// tickets and deals. `id_property` is the configured Stripe Customer ID property.
pub fn builtin(id_property: &str) -> Vec<PropertyDef> {
    let mut id = def(
        "contacts",
        id_property,
        "Stripe Customer ID",
        "string",
        "text",
    );
    id.unique = true;
    let mut status = def(
        "contacts",
        "stripe_subscription_status",
        "Subscription Status",
        "enumeration",
        "select",
    );
    status.options = SUBSCRIPTION_STATUSES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut ticket_key = def(
        "tickets",
        "paybridge_key",
        "paybridge key",
        "string",
        "text",
    );
    ticket_key.unique = true;
    let mut deal_key = def("deals", "paybridge_key", "paybridge key", "string", "text");
    deal_key.unique = true;
    vec![
        id,
        status,
        def(
            "contacts",
            "stripe_subscription_tier",
            "Subscription Tier",
            "string",
            "text",
        ),
        def(
            "contacts",
            "stripe_last_payment_date",
            "Last Payment Date",
            "date",
            "date",
        ),
        def(
            "contacts",
            "stripe_last_payment_amount",
            "Last Payment Amount",
            "number",
            "number",
        ),
        def(
            "contacts",
            "stripe_last_payment_failed_date",
            "Last Payment Failed Date",
            "date",
            "date",
        ),
        def(
            "contacts",
            "stripe_lifetime_value",
            "Lifetime Value",
            "number",
            "number",
        ),
        def(
            "contacts",
            "stripe_refund_issued",
            "Refund Issued",
            "bool",
            "booleancheckbox",
        ),
        def(
            "contacts",
            "stripe_delinquent",
            "Delinquent",
            "bool",
            "booleancheckbox",
        ),
        ticket_key,
        deal_key,
    ]
}
