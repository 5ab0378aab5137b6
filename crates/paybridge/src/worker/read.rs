//! What a run reads before it plans: the fact (from the stored payload; a thin event's
//! object fetched from Stripe's API), what Stripe's API or the store add to it (a dispute's
//! customer, product names, whether an invoice is a subscription's first payment), the
//! customer's profile, and the lifetime value from the charge ledger. Nothing here calls
//! HubSpot.

use serde_json::Value;

use super::{Log, Pipeline, WorkError};
use crate::domain::{CustomerId, CustomerProfile, Money, Outcome, PaymentFact};
use crate::rules::Extras;
use crate::store::THIN_NEEDS_KEY;
use crate::stripe::api::StripeApiError;
use crate::stripe::event::customer_of;
use crate::stripe::thin::{self, ThinEvent};
use crate::stripe::{normalise, normalise_value};

/// A product name read from Stripe's API is used for a day before it is read again.
pub const PRODUCT_TTL_MS: i64 = 24 * 3_600_000;

pub(crate) async fn load_fact(
    p: &Pipeline,
    event_id: &str,
    log: &mut Log,
) -> Result<PaymentFact, WorkError> {
    let payload = p.inner.store.payload(event_id).await?.ok_or_else(|| {
        WorkError::Terminal(
            "the raw payload was purged (store.payload_retention_days); replay it from Stripe"
                .into(),
        )
    })?;
    let value: Value =
        serde_json::from_slice(&payload).map_err(|e| WorkError::Terminal(e.to_string()))?;
    if value.get("object").and_then(Value::as_str) != Some("v2.core.event") {
        return normalise(&payload).map_err(|e| WorkError::Terminal(e.to_string()));
    }
    let event = thin::parse(&value).map_err(|e| WorkError::Terminal(e.to_string()))?;
    let fact = fetch_thin(p, &event, log).await?;
    if let Some(customer) = &fact.customer {
        p.inner
            .store
            .set_event_customer(event_id, customer.as_str())
            .await?;
    }
    Ok(fact)
}

/// What a reconcile repair writes (`paybridge_repair` of its stored event, see
/// `catchup::reconcile::repair`): its properties, after entering the customer's charges
/// as Stripe lists them in the ledger when it repairs the lifetime value (each charge's
/// refunded total dated by the repair, so a newer refund event still wins).
pub(crate) async fn repair_properties(
    p: &Pipeline,
    fact: &PaymentFact,
) -> Result<std::collections::BTreeMap<String, String>, WorkError> {
    let event_id = fact.event_id.as_str();
    let payload = p.inner.store.payload(event_id).await?.ok_or_else(|| {
        WorkError::Terminal(
            "the repair's payload was purged; run `paybridge reconcile --fix` again".into(),
        )
    })?;
    let value: Value =
        serde_json::from_slice(&payload).map_err(|e| WorkError::Terminal(e.to_string()))?;
    let properties = value
        .pointer("/paybridge_repair/properties")
        .and_then(Value::as_object)
        .ok_or_else(|| WorkError::Terminal("a repair event without properties".into()))?;
    let ledger = value
        .pointer("/paybridge_repair/ledger")
        .and_then(Value::as_array);
    if let (Some(customer), Some(ledger)) = (&fact.customer, ledger) {
        for entry in ledger {
            let text = |k: &str| entry.get(k).and_then(Value::as_str);
            let (Some(charge), Some(currency)) = (text("charge"), text("currency")) else {
                continue;
            };
            let amount = |k: &str| entry.get(k).and_then(Value::as_i64);
            p.inner
                .store
                .ledger_charge(
                    customer.as_str(),
                    charge,
                    currency,
                    amount("paid"),
                    amount("refunded"),
                    fact.occurred_at,
                )
                .await?;
        }
    }
    Ok(properties
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect())
}

/// A thin event's object, fetched at `related_object.url` with the API key (what the
/// SDKs' `fetchRelatedObject()` does), read as the snapshot event of the same type.
async fn fetch_thin(
    p: &Pipeline,
    event: &ThinEvent,
    log: &mut Log,
) -> Result<PaymentFact, WorkError> {
    let path = event.fetch_path().map_err(WorkError::Terminal)?;
    let Some(api) = &p.inner.stripe else {
        return Err(WorkError::NeedsAttention {
            message: format!(
                "{THIN_NEEDS_KEY}: this thin event ({}) carries only a reference to {path}; set [stripe] api_key (a restricted key that can read it) and restart: waiting thin events then run by themselves. Or give the event destination snapshot payloads",
                event.stripe_type
            ),
            contact_id: None,
        });
    };
    let object = match api.get_in(path, &[], event.context.as_deref()).await {
        Ok(Some(object)) => object,
        Ok(None) => {
            return Err(WorkError::Terminal(format!(
                "the thin event's object {path} no longer exists at Stripe"
            )));
        }
        Err(StripeApiError::Refused {
            status: status @ (401 | 403),
            message,
            ..
        }) => {
            return Err(WorkError::NeedsAttention {
                message: format!(
                    "stripe.api_key may not read {path} ({status}: {message}); give the key read access to it, then `paybridge events retry {}`",
                    event.id
                ),
                contact_id: None,
            });
        }
        Err(e) => return Err(e.into()),
    };
    log.say(format!(
        "thin event {}: {path} fetched from Stripe's API",
        event.stripe_type
    ));
    normalise_value(&event.as_snapshot(object)).map_err(|e| WorkError::Terminal(e.to_string()))
}

/// Adds to the fact what the event does not carry: a dispute's customer (through its
/// charge), product names (Stripe's API, cached), and whether an invoice is the first that
/// took money for its subscription.
pub(crate) async fn enrich(
    p: &Pipeline,
    fact: &mut PaymentFact,
    log: &mut Log,
) -> Result<(), WorkError> {
    if fact.outcome == Outcome::Disputed && fact.customer.is_none() {
        dispute_customer(p, fact, log).await?;
    }
    product_names(p, fact, log).await?;
    if let (Some(invoice), Some(sub)) = (&mut fact.invoice, &fact.subscription)
        && fact.outcome == Outcome::PaymentSucceeded
        && fact.object_kind == "invoice"
    {
        // Keyed by customer and subscription (subscription ids are unique at Stripe; the
        // customer makes copied test data safe too).
        let key = match &fact.customer {
            Some(c) => format!("{c}/{}", sub.id),
            None => sub.id.clone(),
        };
        invoice.first_payment = p
            .inner
            .store
            .first_payment(
                &key,
                &invoice.id,
                invoice.amount_paid.as_ref().map_or(0, |m| m.minor),
                invoice.billing_reason.as_deref() == Some("subscription_create"),
            )
            .await?;
    }
    Ok(())
}

/// A Stripe id as it may appear in an API path.
fn plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A dispute names its charge, not its customer (stripe-node `Disputes.d.ts`): the charge
/// the store already knows, else `GET /v1/charges/{id}` (its `customer`, or for a guest
/// its `receipt_email` / `billing_details.email`).
async fn dispute_customer(
    p: &Pipeline,
    fact: &mut PaymentFact,
    log: &mut Log,
) -> Result<(), WorkError> {
    let Some(charge) = fact.charge.as_ref().map(|c| c.id.clone()) else {
        return Ok(());
    };
    if let Some(customer) = p.inner.store.customer_of_charge(&charge).await?
        && let Ok(id) = CustomerId::parse(&customer)
    {
        log.say(format!(
            "disputed charge {charge} belongs to {customer} (known from its charge events)"
        ));
        fact.customer = Some(id);
        return Ok(());
    }
    let Some(api) = &p.inner.stripe else {
        log.say(format!(
            "disputed charge {charge} is unknown here and stripe.api_key is not set: no customer to act on"
        ));
        return Ok(());
    };
    if !plain_id(&charge) {
        return Ok(());
    }
    let Some(object) = api.get(&format!("/v1/charges/{charge}"), &[]).await? else {
        log.say(format!("disputed charge {charge} not found at Stripe"));
        return Ok(());
    };
    fact.customer = customer_of(&object);
    let email = |path: &str| {
        path.split('.')
            .try_fold(&object, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
    };
    fact.fallback_email = email("receipt_email").or_else(|| email("billing_details.email"));
    log.say(format!(
        "disputed charge {charge} read from Stripe: {}",
        match (&fact.customer, &fact.fallback_email) {
            (Some(c), _) => format!("customer {c}"),
            (None, Some(e)) => format!("a guest payment by {e}"),
            (None, None) => "no customer and no email".to_owned(),
        }
    ));
    Ok(())
}

/// With an API key, each product's name from `GET /v1/products/{id}` (kept a day in the
/// store); without one, what the payload had (the price's nickname or lookup key).
async fn product_names(
    p: &Pipeline,
    fact: &mut PaymentFact,
    log: &mut Log,
) -> Result<(), WorkError> {
    let Some(api) = &p.inner.stripe else {
        return Ok(());
    };
    let now = p.inner.clock.now_ms();
    for product in &mut fact.products {
        let Some(id) = product.product_id.clone().filter(|id| plain_id(id)) else {
            continue;
        };
        let fresh = |c: Option<crate::store::CachedProduct>| {
            c.filter(|c| now - c.fetched_at < PRODUCT_TTL_MS)
        };
        let name = match fresh(p.inner.store.cached_product(&id).await?) {
            Some(c) => c.name,
            None => {
                let _one_at_a_time = p.inner.product_reads.lock().await;
                match fresh(p.inner.store.cached_product(&id).await?) {
                    Some(c) => c.name,
                    None => read_product(p, api, &id, log).await?,
                }
            }
        };
        if name.is_some() {
            product.name = name;
        }
    }
    Ok(())
}

/// `GET /v1/products/{id}`, remembered (a missing product too, so it is not asked again
/// for every event; the payload's name then stays).
async fn read_product(
    p: &Pipeline,
    api: &crate::stripe::api::StripeApi,
    id: &str,
    log: &mut Log,
) -> Result<Option<String>, WorkError> {
    let (name, active) = api.product(id).await?.unwrap_or((None, None));
    p.inner
        .store
        .remember_product(id, name.as_deref(), active)
        .await?;
    log.say(format!(
        "product {id} read from Stripe: {}",
        name.as_deref().unwrap_or("no such product (or no name)")
    ));
    Ok(name)
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
            email: fact.email.clone().or_else(|| fact.fallback_email.clone()),
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
    if profile.email.is_none() {
        // The contact's email, as an earlier run left it (a charge's receipt email, say).
        profile.email = match i.store.contact_for(customer.as_str()).await? {
            Some((_, Some(email))) => Some(email),
            _ => fact.fallback_email.clone(),
        };
    }
    if let Some(name) = &fact.name {
        profile.name = Some(name.clone());
    }
    Ok(profile)
}

/// Facts the plan needs from the store: after a charge event, the charge is entered in
/// the ledger (each charge counted once; its refunded total the newest event's), after a
/// failed refund the refund is entered, and the customer's lifetime value read back.
pub(crate) async fn extras(p: &Pipeline, fact: &PaymentFact) -> Result<Extras, WorkError> {
    let follow_email = p.inner.follow_email;
    let none = Extras {
        lifetime_value: None,
        follow_email,
    };
    let (Some(customer), Some(charge)) = (&fact.customer, &fact.charge) else {
        return Ok(none);
    };
    let currency = fact
        .amount
        .as_ref()
        .or(fact.amount_refunded.as_ref())
        .map(|m| m.currency.clone())
        .unwrap_or_else(|| "usd".into());
    let store = &p.inner.store;
    let total = match fact.object_kind.as_str() {
        "charge" => {
            let succeeded = charge.status.as_deref() == Some("succeeded");
            let paid = succeeded
                .then(|| fact.amount.as_ref().map(|m| m.minor))
                .flatten();
            let refunded = fact.amount_refunded.as_ref().map(|m| m.minor);
            store
                .ledger_charge(
                    customer.as_str(),
                    &charge.id,
                    &currency,
                    paid.or(Some(0)),
                    refunded,
                    fact.occurred_at,
                )
                .await?
        }
        "refund" if fact.outcome == Outcome::RefundFailed => {
            let Some((id, amount)) = fact
                .refund
                .as_ref()
                .and_then(|r| Some((r.id.clone()?, r.amount.as_ref()?.minor)))
            else {
                return Ok(none);
            };
            store
                .ledger_refund_failed(
                    customer.as_str(),
                    &id,
                    &charge.id,
                    &currency,
                    amount,
                    fact.occurred_at,
                )
                .await?
        }
        _ => return Ok(none),
    };
    Ok(Extras {
        lifetime_value: Some(Money::new(total, &currency)),
        follow_email,
    })
}
