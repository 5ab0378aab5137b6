//! Contact resolution without search: the remembered mapping, then batch read by the
//! Stripe Customer ID property, then by email (stamping the Stripe id), then create with
//! both. Search lags writes by seconds and has its own tiny budget, so it is never used to
//! deduplicate. Because a customer's jobs never run at once, no two runs race to create the
//! same customer's contact.

use crate::domain::PaymentFact;
use crate::hubspot::{Contact, HubspotError, Properties};

use super::step::StepContext;
use super::{Log, Pipeline, WorkError};

#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub id: String,
    pub email: Option<String>,
    /// `hubspot_owner_id`, when the contact was read from HubSpot in this run.
    pub owner: Option<String>,
    /// Whether `owner` is what HubSpot has now: the contact was read or created in this run
    /// (a contact paybridge just created has no owner), so a record for the contact's
    /// owner needs no read of its own.
    pub owner_known: bool,
    /// Properties of the run's first update written with the contact's create (no update
    /// of their own needed).
    pub written: Properties,
    /// An email to write with the run's first update (the contact was remembered moments
    /// ago without one): not written yet, but it will be before any later step runs.
    pub pending_email: Option<String>,
}

impl Resolved {
    fn of(c: &Contact) -> Self {
        Self {
            id: c.id.clone(),
            email: c.get("email").map(str::to_owned),
            owner: c.get("hubspot_owner_id").map(str::to_owned),
            owner_known: true,
            written: Properties::new(),
            pending_email: None,
        }
    }
}

/// Properties that name or key the contact: the create sets them from what is known of
/// the customer, and the lifecycle stage is only written after its current value is read.
fn not_preloaded(name: &str, id_property: &str) -> bool {
    matches!(
        name,
        "email" | "firstname" | "lastname" | super::lifecycle::PROPERTY
    ) || name == id_property
}

/// A memory this young of a contact without an email is trusted: the contact was created
/// or read by paybridge itself moments ago (a burst's second event), so its email is
/// written with the first update, and HubSpot refuses it if another contact has it.
const FRESH_MEMORY_MS: i64 = 10 * 60 * 1_000;

/// The contact this fact acts on, or None when there is no one to act on (no customer and
/// no email, or `create_missing = false` and nobody found). `preload`: the properties the
/// run's first step writes on the contact, which a create then carries.
pub(crate) async fn resolve(
    p: &Pipeline,
    fact: &PaymentFact,
    preload: Option<&Properties>,
    log: &mut Log,
) -> Result<Option<Resolved>, WorkError> {
    let i = &p.inner;
    let Some(customer) = fact.customer.as_ref().map(|c| c.as_str()) else {
        return resolve_guest(p, fact, log).await;
    };
    if let Some(memory) = i.store.contact_memory(customer).await? {
        log.say(format!(
            "contact found: {} (remembered for {customer})",
            memory.contact_id
        ));
        let resolved = Resolved {
            id: memory.contact_id,
            email: memory.email,
            owner: None,
            owner_known: false,
            written: Properties::new(),
            pending_email: None,
        };
        let fresh = i.clock.now_ms() - memory.updated_at < FRESH_MEMORY_MS;
        if let (Some(email), None, Some(_), true) =
            (best_email(fact), &resolved.email, preload, fresh)
        {
            log.say(format!(
                "email {email} will be written with the first update (contact {} was remembered without one moments ago)",
                resolved.id
            ));
            return Ok(Some(Resolved {
                email: Some(email.to_owned()),
                pending_email: Some(email.to_owned()),
                ..resolved
            }));
        }
        return attach_email(p, customer, resolved, best_email(fact), log)
            .await
            .map(Some);
    }
    let (email, name) = identity(p, fact, customer, log).await?;
    if !i.create_missing {
        let found = find(p, fact, customer, email.as_deref(), i.match_email, log).await?;
        if found.is_none() {
            log.say("no contact found and contacts.create_missing = false; nothing to act on");
        }
        return Ok(found);
    }
    // Created first, read only when HubSpot refuses (a contact with this Stripe Customer ID
    // or email exists): a new customer costs one call, its properties carried along.
    let (email, name) = (email.as_deref(), name.as_deref());
    let mut refused = match create(p, customer, email, name, preload, log).await? {
        Ok(created) => return Ok(Some(created)),
        Err(refused) => refused,
    };
    log.say(format!(
        "contact create refused ({}): reading the contact that exists",
        refused.category().unwrap_or("refused")
    ));
    // HubSpot keeps one contact per email, so after a refusal the email's contact is looked
    // at whatever `match_email` says.
    if let Some(found) = find(p, fact, customer, email, true, log).await? {
        return Ok(Some(found));
    }
    // No such contact: the refusal may be about a carried property. Created without them,
    // the update step then meets the refusal, named with its rule and action.
    if preload.is_some_and(|props| {
        props
            .keys()
            .any(|k| !not_preloaded(k, &p.inner.id_property))
    }) {
        match create(p, customer, email, name, None, log).await? {
            Ok(created) => return Ok(Some(created)),
            Err(again) => refused = again,
        }
    }
    if refused.status() == Some(409) {
        return Err(WorkError::Again(
            "contact create conflicted but no contact is readable yet".into(),
        ));
    }
    Err(refused.into())
}

/// The customer's email and name for a contact: the event's, else what earlier customer
/// events told us, else Stripe's API (without it, a contact that already exists under
/// that email would get a twin keyed by the customer alone), else the payment's email.
async fn identity(
    p: &Pipeline,
    fact: &PaymentFact,
    customer: &str,
    log: &mut Log,
) -> Result<(Option<String>, Option<String>), WorkError> {
    let remembered = match (&fact.email, &fact.name) {
        (Some(_), Some(_)) => None,
        _ => p.inner.store.customer_profile(customer).await?,
    };
    let email = match (
        &fact.email,
        remembered.as_ref().and_then(|r| r.email.clone()),
    ) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(e)) => {
            log.say(format!(
                "email {e} remembered from an earlier event of {customer}"
            ));
            Some(e)
        }
        (None, None) => match stripe_email(p, customer, log).await? {
            Some(e) => Some(e),
            None => fact.fallback_email.clone().inspect(|e| {
                log.say(format!(
                    "email {e} taken from the payment (receipt or billing email)"
                ));
            }),
        },
    };
    let name = fact
        .name
        .clone()
        .or_else(|| remembered.and_then(|r| r.name));
    Ok((email, name))
}

/// The customer's existing contact: by the Stripe Customer ID property, then (when
/// `by_email`) by email, stamped with the Stripe id unless linked to another customer.
async fn find(
    p: &Pipeline,
    fact: &PaymentFact,
    customer: &str,
    email: Option<&str>,
    by_email: bool,
    log: &mut Log,
) -> Result<Option<Resolved>, WorkError> {
    let i = &p.inner;
    if let Some(c) = i.hubspot.contact_by(&i.id_property, customer).await? {
        log.say(format!(
            "contact found: {} by {} = {customer}",
            c.id, i.id_property
        ));
        let resolved = remember(p, customer, &c).await?;
        return attach_email(p, customer, resolved, best_email(fact), log)
            .await
            .map(Some);
    }
    let (Some(email), true) = (email, by_email) else {
        return Ok(None);
    };
    let Some(c) = i.hubspot.contact_by("email", email).await? else {
        return Ok(None);
    };
    if let Some(other) = c.get(&i.id_property).filter(|o| *o != customer) {
        return Err(WorkError::NeedsAttention {
            message: format!(
                "email {email} belongs to contact {} which is linked to another Stripe customer ({other}); paybridge will not merge customers — decide in HubSpot, then `paybridge events retry`",
                c.id
            ),
            contact_id: Some(c.id.clone()),
        });
    }
    let mut stamp = Properties::new();
    stamp.insert(i.id_property.clone(), customer.to_owned());
    i.hubspot.update_contact(&c.id, stamp).await?;
    log.say(format!(
        "contact found: {} by email; stamped {} = {customer}",
        c.id, i.id_property
    ));
    remember(p, customer, &c).await.map(Some)
}

/// The email an event gives its customer: the customer record's (customer, invoice,
/// Checkout session), else the one the payment was made with.
fn best_email(fact: &PaymentFact) -> Option<&str> {
    fact.email.as_deref().or(fact.fallback_email.as_deref())
}

/// A guest payment (Checkout with `customer_creation = if_required`, a charge or payment
/// intent without customer): the contact of the email Stripe carries
/// (`customer_details.email`, then `receipt_email` / `billing_details.email`), created
/// without a Stripe Customer ID. When the person later becomes a Stripe customer, the
/// customer's first event finds this contact by email and links it (no twin).
async fn resolve_guest(
    p: &Pipeline,
    fact: &PaymentFact,
    log: &mut Log,
) -> Result<Option<Resolved>, WorkError> {
    let i = &p.inner;
    let Some(email) = best_email(fact) else {
        log.say("the event has no Stripe customer and no email; no contact to act on");
        return Ok(None);
    };
    let found = |c: Contact| Resolved::of(&c);
    if let Some(c) = i.hubspot.contact_by("email", email).await? {
        log.say(format!(
            "contact found: {} by email {email} (a guest payment)",
            c.id
        ));
        return Ok(Some(found(c)));
    }
    if !i.create_missing {
        log.say("no contact has the guest's email and contacts.create_missing = false");
        return Ok(None);
    }
    let mut properties = Properties::new();
    properties.insert("email".into(), email.to_owned());
    if let Some(name) = &fact.name {
        let (first, last) = split_name(name);
        properties.insert("firstname".into(), first);
        if !last.is_empty() {
            properties.insert("lastname".into(), last);
        }
    }
    match i.hubspot.create_contact(properties).await {
        Ok(c) => {
            log.say(format!(
                "contact created: {} ({email}, a guest: no Stripe customer yet)",
                c.id
            ));
            Ok(Some(found(c)))
        }
        Err(HubspotError::Terminal { category, .. }) if category == "CONFLICT" => {
            match i.hubspot.contact_by("email", email).await? {
                Some(c) => Ok(Some(found(c))),
                None => Err(WorkError::Again(
                    "contact create conflicted but no contact is readable yet".into(),
                )),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Before a contact's email is changed to `email` (`follow_email`): no other contact may
/// have it. If one does, a person decides, and nothing is overwritten.
pub(crate) async fn email_is_free(
    p: &Pipeline,
    contact: &Resolved,
    customer: Option<&str>,
    email: &str,
) -> Result<(), WorkError> {
    if contact.email.as_deref() == Some(email) {
        return Ok(());
    }
    if let Some(other) = p.inner.hubspot.contact_by("email", email).await?
        && other.id != contact.id
    {
        return Err(WorkError::NeedsAttention {
            message: format!(
                "Stripe customer {} changed its email to {email}, which contact {} already has; contact {} keeps {} and nothing was overwritten — merge the two contacts in HubSpot (or correct the email in Stripe), then `paybridge events retry`",
                customer.unwrap_or("-"),
                other.id,
                contact.id,
                contact.email.as_deref().unwrap_or("no email")
            ),
            contact_id: Some(contact.id.clone()),
        });
    }
    Ok(())
}

/// Creates the customer's contact with what is known and the run's first property writes
/// (`preload`). `Ok(Err(refusal))` when HubSpot refuses it (a duplicate unique value is
/// not answered the same way everywhere: 409 CONFLICT, 409 OBJECT_ALREADY_EXISTS, a 400
/// "already has that value"), any refusal but a missing scope: the caller reads.
async fn create(
    p: &Pipeline,
    customer: &str,
    email: Option<&str>,
    name: Option<&str>,
    preload: Option<&Properties>,
    log: &mut Log,
) -> Result<Result<Resolved, HubspotError>, WorkError> {
    let i = &p.inner;
    let carried: Properties = preload
        .into_iter()
        .flatten()
        .filter(|(k, _)| !not_preloaded(k, &i.id_property))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut properties = carried.clone();
    properties.insert(i.id_property.clone(), customer.to_owned());
    if let Some(email) = email {
        properties.insert("email".into(), email.to_owned());
    }
    if let Some(name) = name {
        let (first, last) = split_name(name);
        properties.insert("firstname".into(), first);
        if !last.is_empty() {
            properties.insert("lastname".into(), last);
        }
    }
    match i.hubspot.create_contact(properties).await {
        Ok(c) => {
            log.say(match email {
                Some(e) => format!("contact created: {} ({e}, {customer})", c.id),
                None => format!(
                    "contact created: {} keyed by {customer} alone (no email known yet)",
                    c.id
                ),
            });
            let mut resolved = remember(p, customer, &c).await?;
            resolved.written = carried;
            Ok(Ok(resolved))
        }
        Err(e @ HubspotError::Terminal { .. }) if e.category() != Some("MISSING_SCOPES") => {
            Ok(Err(e))
        }
        Err(e) => Err(e.into()),
    }
}

async fn remember(p: &Pipeline, customer: &str, c: &Contact) -> Result<Resolved, WorkError> {
    let email = c.get("email").map(str::to_owned);
    p.inner
        .store
        .remember_contact(customer, &c.id, email.as_deref())
        .await?;
    Ok(Resolved {
        email,
        ..Resolved::of(c)
    })
}

/// A contact created without an email gets one when an event brings it. If that email is
/// already another contact's, a person must decide: never an automatic merge.
async fn attach_email(
    p: &Pipeline,
    customer: &str,
    resolved: Resolved,
    email: Option<&str>,
    log: &mut Log,
) -> Result<Resolved, WorkError> {
    let (Some(email), None) = (email, &resolved.email) else {
        return Ok(resolved);
    };
    let i = &p.inner;
    // Our memory may be stale: read the contact's current email first.
    if let Some(c) = i.hubspot.contact_by(&i.id_property, customer).await?
        && let Some(current) = c.get("email")
    {
        i.store
            .remember_contact(customer, &c.id, Some(current))
            .await?;
        return Ok(Resolved {
            email: Some(current.to_owned()),
            ..Resolved::of(&c)
        });
    }
    if let Some(other) = i.hubspot.contact_by("email", email).await?
        && other.id != resolved.id
    {
        return Err(WorkError::NeedsAttention {
            message: format!(
                "customer {customer} has contact {} (created without an email); its email {email} belongs to contact {} — merge them in HubSpot, then `paybridge events retry`",
                resolved.id, other.id
            ),
            contact_id: Some(resolved.id.clone()),
        });
    }
    let mut props = Properties::new();
    props.insert("email".into(), email.to_owned());
    match i.hubspot.update_contact(&resolved.id, props).await {
        Ok(_) => {
            log.say(format!("email {email} added to contact {}", resolved.id));
            i.store
                .remember_contact(customer, &resolved.id, Some(email))
                .await?;
            Ok(Resolved {
                email: Some(email.to_owned()),
                ..resolved
            })
        }
        Err(HubspotError::Terminal {
            category, message, ..
        }) if category == "CONFLICT" => Err(WorkError::NeedsAttention {
            message: format!(
                "customer {customer} has contact {}; its email {email} belongs to another contact ({message}) — merge them in HubSpot, then `paybridge events retry`",
                resolved.id
            ),
            contact_id: Some(resolved.id.clone()),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The customer's current email from Stripe's API, when a key is configured.
async fn stripe_email(
    p: &Pipeline,
    customer: &str,
    log: &mut Log,
) -> Result<Option<String>, WorkError> {
    let Some(api) = &p.inner.stripe else {
        return Ok(None);
    };
    let found = api.customer(customer).await?;
    let email = found.filter(|c| !c.deleted).and_then(|c| c.email);
    if let Some(e) = &email {
        log.say(format!(
            "email {e} read from Stripe's API (the event does not carry the customer's email)"
        ));
    }
    Ok(email)
}

fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(' ') {
        Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
        None => (name.to_owned(), String::new()),
    }
}

/// The contact this run acts on is gone from HubSpot (deleted, or merged into another):
/// forget it, so that the next attempt resolves the customer again.
pub(crate) async fn vanished(cx: &StepContext<'_>, contact_id: &str) -> WorkError {
    if let Some(customer) = &cx.fact.customer
        && let Err(e) = cx.p.inner.store.forget_contact(customer.as_str()).await
    {
        return e.into();
    }
    WorkError::Again(format!(
        "contact {contact_id} no longer exists in HubSpot (deleted or merged); it will be resolved again"
    ))
}
