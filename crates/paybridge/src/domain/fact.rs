//! The normalised payment fact: what a Stripe event means for the CRM, independent of the
//! API version it was rendered with.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CustomerId, EventId, Money};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentFact {
    pub event_id: EventId,
    pub event_type: String,
    /// `event.created`, unix seconds: the time the fact became true.
    pub occurred_at: i64,
    pub livemode: bool,
    pub customer: Option<CustomerId>,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The customer's metadata, when the event carries the customer object.
    pub customer_metadata: BTreeMap<String, String>,
    /// `data.object.object` and its id, e.g. (`invoice`, `in_…`).
    pub object_kind: String,
    pub object_id: Option<String>,
    /// The object's own metadata.
    pub metadata: BTreeMap<String, String>,
    pub outcome: Outcome,
    /// Paid, attempted or charged amount.
    pub amount: Option<Money>,
    /// Refunded so far (charges: cumulative; refunds: this refund).
    pub amount_refunded: Option<Money>,
    pub products: Vec<ProductRef>,
    pub subscription: Option<SubscriptionFacts>,
    pub invoice: Option<InvoiceFacts>,
    pub charge: Option<ChargeFacts>,
}

/// What happened, in CRM terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    PaymentSucceeded,
    PaymentFailed,
    Refunded,
    SubscriptionChanged,
    CustomerChanged,
    CustomerDeleted,
    Disputed,
    CheckoutCompleted,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductRef {
    pub product_id: Option<String>,
    pub price_id: Option<String>,
    /// The price's nickname (or the expanded product's name) when the payload has it.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionFacts {
    pub id: String,
    pub status: Option<String>,
    pub previous_status: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub cancellation_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceFacts {
    pub id: String,
    pub billing_reason: Option<String>,
    pub attempt_count: Option<i64>,
    pub next_payment_attempt: Option<i64>,
    pub status: Option<String>,
    pub hosted_invoice_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChargeFacts {
    pub id: String,
    pub status: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// True only when fully refunded (Stripe's meaning).
    pub refunded: bool,
}

/// What we know of a Stripe customer beyond one event: the latest email, name and metadata
/// (from customer events, the Stripe API, or the event itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CustomerProfile {
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub metadata: BTreeMap<String, String>,
}
