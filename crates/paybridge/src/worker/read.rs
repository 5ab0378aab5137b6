//! What a run reads before it plans: the fact (from the stored payload), the customer's
//! profile, and after a charge the lifetime value from the charge ledger. Nothing here
//! calls HubSpot.

use super::{Pipeline, WorkError};
use crate::domain::{CustomerProfile, Money, PaymentFact};
use crate::rules::Extras;
use crate::stripe::normalise;

pub(crate) async fn load_fact(p: &Pipeline, event_id: &str) -> Result<PaymentFact, WorkError> {
    let payload = p.inner.store.payload(event_id).await?.ok_or_else(|| {
        WorkError::Terminal(
            "the raw payload was purged (store.payload_retention_days); replay it from Stripe"
                .into(),
        )
    })?;
    normalise(&payload).map_err(|e| WorkError::Terminal(e.to_string()))
}

/// What templates and conditions know of the customer: the event's own data, then what
/// the store remembers (customer events, earlier API reads). A customer event is
/// remembered for the events after it.
pub(crate) async fn profile(
    p: &Pipeline,
    fact: &PaymentFact,
) -> Result<CustomerProfile, WorkError> {
    let i = &p.inner;
    let Some(customer) = &fact.customer else {
        return Ok(CustomerProfile {
            email: fact.email.clone(),
            name: fact.name.clone(),
            ..CustomerProfile::default()
        });
    };
    let kept = i.store.customer_profile(customer.as_str()).await?;
    if fact.object_kind == "customer" {
        let from_event = CustomerProfile {
            id: Some(customer.to_string()),
            email: fact.email.clone(),
            name: fact.name.clone(),
            metadata: fact.customer_metadata.clone(),
        };
        i.store
            .remember_profile(customer.as_str(), &from_event, fact.occurred_at)
            .await?;
        return Ok(from_event);
    }
    let mut profile = kept.unwrap_or_else(|| CustomerProfile {
        id: Some(customer.to_string()),
        ..CustomerProfile::default()
    });
    if let Some(email) = &fact.email {
        profile.email = Some(email.clone());
    }
    if let Some(name) = &fact.name {
        profile.name = Some(name.clone());
    }
    Ok(profile)
}

/// Facts the plan needs from the store: after a charge event, the charge is entered in
/// the ledger (each charge counted once) and the customer's lifetime value read back.
pub(crate) async fn extras(p: &Pipeline, fact: &PaymentFact) -> Result<Extras, WorkError> {
    let (Some(customer), Some(charge)) = (&fact.customer, &fact.charge) else {
        return Ok(Extras::default());
    };
    if fact.object_kind != "charge" {
        return Ok(Extras::default());
    }
    let currency = fact
        .amount
        .as_ref()
        .or(fact.amount_refunded.as_ref())
        .map(|m| m.currency.clone())
        .unwrap_or_else(|| "usd".into());
    let succeeded = charge.status.as_deref() == Some("succeeded");
    let paid = succeeded
        .then(|| fact.amount.as_ref().map(|m| m.minor))
        .flatten();
    let refunded = fact.amount_refunded.as_ref().map(|m| m.minor);
    let total = p
        .inner
        .store
        .ledger_record(
            customer.as_str(),
            &charge.id,
            &currency,
            paid.or(Some(0)),
            refunded,
        )
        .await?;
    Ok(Extras {
        lifetime_value: Some(Money::new(total, &currency)),
    })
}
