//! The real Stripe event types, so a rule's `on = ["invoice.payed"]` is refused at start
//! instead of silently never matching.
//!
//! Source: the `Event.Type` union of the official stripe-node library,
//! `src/resources/Events.ts` in github.com/stripe/stripe-node at commit
//! 01d0ca7445844498629a0d2bb6532343b2bf69cf (generated from Stripe's OpenAPI spec; it
//! includes the preview types of that release). Same order as the source.

use crate::basics::fields::edit_distance;

/// Every `type` a Stripe (v1, snapshot) event can have.
pub const STRIPE_EVENT_TYPES: &[&str] = &[
    "account.application.authorized",
    "account.application.deauthorized",
    "account.external_account.created",
    "account.external_account.deleted",
    "account.external_account.updated",
    "account.updated",
    "account_notice.created",
    "account_notice.updated",
    "application_fee.created",
    "application_fee.refund.updated",
    "application_fee.refunded",
    "balance.available",
    "balance_settings.updated",
    "billing.alert.triggered",
    "billing.credit_grant.created",
    "billing_portal.configuration.created",
    "billing_portal.configuration.updated",
    "billing_portal.session.created",
    "capability.updated",
    "capital.financing_offer.accepted",
    "capital.financing_offer.accepted_other_offer",
    "capital.financing_offer.canceled",
    "capital.financing_offer.created",
    "capital.financing_offer.expired",
    "capital.financing_offer.fully_repaid",
    "capital.financing_offer.paid_out",
    "capital.financing_offer.rejected",
    "capital.financing_offer.replacement_created",
    "capital.financing_summary.line_of_credit_update",
    "capital.financing_transaction.created",
    "cash_balance.funds_available",
    "charge.captured",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.expired",
    "charge.failed",
    "charge.pending",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "charge.updated",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    "climate.order.canceled",
    "climate.order.created",
    "climate.order.delayed",
    "climate.order.delivered",
    "climate.order.product_substituted",
    "climate.product.created",
    "climate.product.pricing_updated",
    "coupon.created",
    "coupon.deleted",
    "coupon.updated",
    "credit_note.created",
    "credit_note.updated",
    "credit_note.voided",
    "customer.created",
    "customer.deleted",
    "customer.discount.created",
    "customer.discount.deleted",
    "customer.discount.updated",
    "customer.source.created",
    "customer.source.deleted",
    "customer.source.expiring",
    "customer.source.updated",
    "customer.subscription.collection_paused",
    "customer.subscription.collection_resumed",
    "customer.subscription.created",
    "customer.subscription.custom_event",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "customer.subscription.price_migration_failed",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
    "customer.tax_id.created",
    "customer.tax_id.deleted",
    "customer.tax_id.updated",
    "customer.updated",
    "customer_cash_balance_transaction.created",
    "entitlements.active_entitlement_summary.updated",
    "file.created",
    "financial_connections.account.account_numbers_updated",
    "financial_connections.account.created",
    "financial_connections.account.deactivated",
    "financial_connections.account.disconnected",
    "financial_connections.account.reactivated",
    "financial_connections.account.refreshed_balance",
    "financial_connections.account.refreshed_inferred_balances",
    "financial_connections.account.refreshed_ownership",
    "financial_connections.account.refreshed_transactions",
    "financial_connections.account.upcoming_account_number_expiry",
    "financial_connections.session.updated",
    "fx_quote.expired",
    "identity.verification_session.canceled",
    "identity.verification_session.created",
    "identity.verification_session.processing",
    "identity.verification_session.redacted",
    "identity.verification_session.requires_input",
    "identity.verification_session.verified",
    "invoice.created",
    "invoice.deleted",
    "invoice.finalization_failed",
    "invoice.finalized",
    "invoice.marked_uncollectible",
    "invoice.overdue",
    "invoice.overpaid",
    "invoice.paid",
    "invoice.payment.overpaid",
    "invoice.payment_action_required",
    "invoice.payment_attempt_required",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.sent",
    "invoice.upcoming",
    "invoice.updated",
    "invoice.voided",
    "invoice.will_be_due",
    "invoice_payment.paid",
    "invoiceitem.created",
    "invoiceitem.deleted",
    "issuing_authorization.created",
    "issuing_authorization.request",
    "issuing_authorization.updated",
    "issuing_card.created",
    "issuing_card.updated",
    "issuing_cardholder.created",
    "issuing_cardholder.updated",
    "issuing_dispute.closed",
    "issuing_dispute.created",
    "issuing_dispute.funds_reinstated",
    "issuing_dispute.funds_rescinded",
    "issuing_dispute.submitted",
    "issuing_dispute.updated",
    "issuing_dispute_settlement_detail.created",
    "issuing_dispute_settlement_detail.updated",
    "issuing_fraud_liability_debit.created",
    "issuing_personalization_design.activated",
    "issuing_personalization_design.deactivated",
    "issuing_personalization_design.rejected",
    "issuing_personalization_design.updated",
    "issuing_settlement.created",
    "issuing_settlement.updated",
    "issuing_token.created",
    "issuing_token.updated",
    "issuing_transaction.created",
    "issuing_transaction.purchase_details_receipt_updated",
    "issuing_transaction.updated",
    "mandate.updated",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.partially_funded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_link.created",
    "payment_link.updated",
    "payment_method.attached",
    "payment_method.automatically_updated",
    "payment_method.detached",
    "payment_method.updated",
    "payout.canceled",
    "payout.created",
    "payout.failed",
    "payout.paid",
    "payout.reconciliation_completed",
    "payout.updated",
    "person.created",
    "person.deleted",
    "person.updated",
    "plan.created",
    "plan.deleted",
    "plan.updated",
    "price.created",
    "price.deleted",
    "price.updated",
    "privacy.redaction_job.canceled",
    "privacy.redaction_job.created",
    "privacy.redaction_job.ready",
    "privacy.redaction_job.succeeded",
    "privacy.redaction_job.validation_error",
    "product.created",
    "product.deleted",
    "product.updated",
    "promotion_code.created",
    "promotion_code.updated",
    "quote.accept_failed",
    "quote.accepted",
    "quote.accepting",
    "quote.canceled",
    "quote.created",
    "quote.draft",
    "quote.finalized",
    "quote.reestimate_failed",
    "quote.reestimated",
    "quote.stale",
    "radar.early_fraud_warning.created",
    "radar.early_fraud_warning.updated",
    "refund.created",
    "refund.failed",
    "refund.updated",
    "reporting.report_run.failed",
    "reporting.report_run.succeeded",
    "reporting.report_type.updated",
    "reserve.hold.created",
    "reserve.hold.updated",
    "reserve.plan.created",
    "reserve.plan.disabled",
    "reserve.plan.expired",
    "reserve.plan.updated",
    "reserve.release.created",
    "review.closed",
    "review.opened",
    "setup_intent.canceled",
    "setup_intent.created",
    "setup_intent.requires_action",
    "setup_intent.setup_failed",
    "setup_intent.succeeded",
    "sigma.scheduled_query_run.created",
    "source.canceled",
    "source.chargeable",
    "source.failed",
    "source.mandate_notification",
    "source.refund_attributes_required",
    "source.transaction.created",
    "source.transaction.updated",
    "subscription_schedule.aborted",
    "subscription_schedule.canceled",
    "subscription_schedule.completed",
    "subscription_schedule.created",
    "subscription_schedule.expiring",
    "subscription_schedule.price_migration_failed",
    "subscription_schedule.released",
    "subscription_schedule.updated",
    "tax.form.updated",
    "tax.settings.updated",
    "tax_rate.created",
    "tax_rate.updated",
    "terminal.reader.action_failed",
    "terminal.reader.action_succeeded",
    "terminal.reader.action_updated",
    "test_helpers.test_clock.advancing",
    "test_helpers.test_clock.created",
    "test_helpers.test_clock.deleted",
    "test_helpers.test_clock.internal_failure",
    "test_helpers.test_clock.ready",
    "topup.canceled",
    "topup.created",
    "topup.failed",
    "topup.reversed",
    "topup.succeeded",
    "transfer.created",
    "transfer.reversed",
    "transfer.updated",
    "treasury.credit_reversal.created",
    "treasury.credit_reversal.posted",
    "treasury.debit_reversal.completed",
    "treasury.debit_reversal.created",
    "treasury.debit_reversal.initial_credit_granted",
    "treasury.financial_account.closed",
    "treasury.financial_account.created",
    "treasury.financial_account.features_status_updated",
    "treasury.inbound_transfer.canceled",
    "treasury.inbound_transfer.created",
    "treasury.inbound_transfer.failed",
    "treasury.inbound_transfer.succeeded",
    "treasury.outbound_payment.canceled",
    "treasury.outbound_payment.created",
    "treasury.outbound_payment.expected_arrival_date_updated",
    "treasury.outbound_payment.failed",
    "treasury.outbound_payment.posted",
    "treasury.outbound_payment.returned",
    "treasury.outbound_payment.tracking_details_updated",
    "treasury.outbound_transfer.canceled",
    "treasury.outbound_transfer.created",
    "treasury.outbound_transfer.expected_arrival_date_updated",
    "treasury.outbound_transfer.failed",
    "treasury.outbound_transfer.posted",
    "treasury.outbound_transfer.returned",
    "treasury.outbound_transfer.tracking_details_updated",
    "treasury.received_credit.created",
    "treasury.received_credit.failed",
    "treasury.received_credit.succeeded",
    "treasury.received_debit.created",
    "invoice_payment.detached",
    "billing.credit_balance_transaction.created",
    "billing.credit_grant.updated",
    "billing.meter.created",
    "billing.meter.deactivated",
    "billing.meter.reactivated",
    "billing.meter.updated",
];

/// Names people write that Stripe does not send, with what to use instead.
const KNOWN_MISTAKES: &[(&str, &str)] = &[
    (
        "subscription.payment_failed",
        "did you mean invoice.payment_failed? Stripe has no subscription.payment_failed: \
         a failed subscription payment arrives as invoice.payment_failed",
    ),
    (
        "subscription.payment_succeeded",
        "did you mean invoice.paid? a subscription payment arrives as invoice.paid",
    ),
    (
        "payment.failed",
        "did you mean invoice.payment_failed or charge.failed?",
    ),
    (
        "payment.succeeded",
        "did you mean invoice.paid or charge.succeeded?",
    ),
    ("refund.succeeded", "did you mean charge.refunded?"),
];

/// Event types and `*` patterns as the exact names they stand for, deduplicated, in the
/// order given: Stripe's Events API takes "An array of up to 20 strings containing specific
/// event names" in `types[]`; only `type` takes "a group of events using * as a wildcard"
/// (stripe-node 23.1.0 `Events.d.ts` `EventListParams`). A name not in the list is kept
/// as given (Stripe may know types this build does not).
pub fn expand(patterns: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in patterns {
        if p.contains('*') {
            for t in STRIPE_EVENT_TYPES {
                if super::patterns::glob_match(p, t) && !out.iter().any(|o| o == t) {
                    out.push((*t).to_owned());
                }
            }
        } else if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

pub fn is_stripe_type(name: &str) -> bool {
    STRIPE_EVENT_TYPES.contains(&name)
}

/// A hint for a name that is not a Stripe event type: a known mistake, the
/// `customer.subscription.*` form of `subscription.*`, or the nearest real name.
pub fn hint(name: &str) -> Option<String> {
    if let Some((_, hint)) = KNOWN_MISTAKES.iter().find(|(wrong, _)| *wrong == name) {
        return Some((*hint).to_owned());
    }
    let prefixed = format!("customer.{name}");
    if is_stripe_type(&prefixed) {
        return Some(format!("did you mean {prefixed}?"));
    }
    let (best, distance) = STRIPE_EVENT_TYPES
        .iter()
        .map(|t| (*t, edit_distance(name, t)))
        .min_by_key(|(_, d)| *d)?;
    (distance <= 3 && distance * 4 <= name.len()).then(|| format!("did you mean {best}?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_the_real_one() {
        assert!(
            STRIPE_EVENT_TYPES.len() >= 250,
            "{}",
            STRIPE_EVENT_TYPES.len()
        );
        for t in [
            "invoice.paid",
            "invoice.payment_failed",
            "charge.refunded",
            "checkout.session.completed",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "invoice_payment.paid",
        ] {
            assert!(is_stripe_type(t), "{t}");
        }
        assert!(!is_stripe_type("subscription.payment_failed"));
        let mut sorted = STRIPE_EVENT_TYPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), STRIPE_EVENT_TYPES.len(), "no duplicates");
    }

    #[test]
    fn patterns_expand_to_exact_names() {
        let names = expand(&["invoice.pa*".to_owned(), "invoice.paid".to_owned()]);
        assert_eq!(
            names,
            [
                "invoice.paid",
                "invoice.payment.overpaid",
                "invoice.payment_action_required",
                "invoice.payment_attempt_required",
                "invoice.payment_failed",
                "invoice.payment_succeeded"
            ]
        );
        assert!(names.iter().all(|n| !n.contains('*')));
        let subs = expand(&["customer.subscription.*".to_owned()]);
        assert!(subs.len() >= 8 && subs.iter().all(|s| s.starts_with("customer.subscription.")));
        assert!(expand(&["nothing.*".to_owned()]).is_empty());
    }

    #[test]
    fn hints_name_the_right_type() {
        assert_eq!(
            hint("invoice.payed").as_deref(),
            Some("did you mean invoice.paid?")
        );
        assert!(
            hint("subscription.payment_failed")
                .is_some_and(|h| h.contains("invoice.payment_failed"))
        );
        assert_eq!(
            hint("subscription.updated").as_deref(),
            Some("did you mean customer.subscription.updated?")
        );
        assert_eq!(hint("something.entirely_else"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
