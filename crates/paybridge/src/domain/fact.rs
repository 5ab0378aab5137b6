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
    /// The Stripe customer (`customer`, or the Accounts v2 `customer_account` where
    /// `customer` is absent). None for guest payments and disputes.
    pub customer: Option<CustomerId>,
    /// The customer's email as the object states it (customer, invoice, Checkout session).
    pub email: Option<String>,
    /// An email the payment was made with (a charge's `receipt_email`, then
    /// `billing_details.email`; a payment intent's `receipt_email`): used only when nothing
    /// better is known, because it belongs to the card, not to the customer record.
    pub fallback_email: Option<String>,
    pub name: Option<String>,
    /// The customer's metadata, when the event carries the customer object.
    pub customer_metadata: BTreeMap<String, String>,
    /// `data.object.object` and its id, e.g. (`invoice`, `in_…`).
    pub object_kind: String,
    pub object_id: Option<String>,
    /// The object's own metadata.
    pub metadata: BTreeMap<String, String>,
    /// The fields this event changed (the keys of `data.previous_attributes`).
    pub changed: Vec<String>,
    pub outcome: Outcome,
    /// Paid, attempted or charged amount.
    pub amount: Option<Money>,
    /// Refunded so far (charges: cumulative; refunds: this refund).
    pub amount_refunded: Option<Money>,
    /// The refund this event is about (`charge.refunded`: the delta; `refund.*`: the object).
    pub refund: Option<RefundFacts>,
    pub dispute: Option<DisputeFacts>,
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
    /// A refund that failed or was cancelled: money that did not go back after all.
    RefundFailed,
    SubscriptionChanged,
    CustomerChanged,
    CustomerDeleted,
    Disputed,
    CheckoutCompleted,
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductRef {
    pub product_id: Option<String>,
    pub price_id: Option<String>,
    /// The product's name: from Stripe's API (cached) when a key is set, else the expanded
    /// product's name, the price's nickname or lookup key, when the payload has one.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionFacts {
    pub id: String,
    pub status: Option<String>,
    pub previous_status: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    /// A scheduled cancellation (unix s); set while `cancel_at_period_end` stays false.
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    pub cancellation_feedback: Option<String>,
    pub cancellation_comment: Option<String>,
    pub trial_end: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InvoiceFacts {
    pub id: String,
    pub billing_reason: Option<String>,
    pub attempt_count: Option<i64>,
    pub next_payment_attempt: Option<i64>,
    pub status: Option<String>,
    pub hosted_invoice_url: Option<String>,
    /// The invoice's own amounts (minor units): what was paid, what is due, the total.
    pub amount_paid: Option<Money>,
    pub amount_due: Option<Money>,
    pub total: Option<Money>,
    /// The first invoice of its subscription that took money (a trial's $0 invoice does
    /// not count); set by the worker from what the store has seen.
    pub first_payment: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefundFacts {
    /// `re_…` (None when known only from the charge's running total).
    pub id: Option<String>,
    /// The amount of this refund.
    pub amount: Option<Money>,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: Option<String>,
    pub failure_reason: Option<String>,
    pub reason: Option<String>,
    pub charge: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DisputeFacts {
    pub id: String,
    pub amount: Option<Money>,
    pub reason: Option<String>,
    pub status: Option<String>,
    /// `evidence_details.due_by` (unix s); None when the bank allows no response.
    pub evidence_due_by: Option<i64>,
    pub charge: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
