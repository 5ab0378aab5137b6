//! The contacts' claims: every contact holding a Stripe Customer ID (one CRM search pass),
//! the claims Stripe does not back (a customer it does not have alive: deleted, or never
//! known), customers several contacts claim, and the contacts of deleted customers, whose
//! subscriptions Stripe cancelled.

use std::collections::{BTreeMap, HashMap};

use tokio_util::sync::CancellationToken;

use super::ReconcileError;
use super::compare::{claims, differences};
use super::repair::Current;
use super::scan::{Books, ReconcileProgress, Reconciler, drift};
use crate::hubspot::Contact;
use crate::store::{Finding, FindingKind};

/// At most this many contacts' unknown customers are looked up one by one (to tell a
/// deleted customer from one Stripe never had); the rest are reported without the detail.
const LOOKUPS: usize = 200;

impl Reconciler {
    /// Every contact claiming a customer, with `properties` (CRM search, in `hs_object_id`
    /// order), by customer.
    pub(super) async fn read_claims(
        &self,
        properties: &[String],
        cancel: &CancellationToken,
    ) -> Result<HashMap<String, Vec<Contact>>, ReconcileError> {
        let mut claimed: HashMap<String, Vec<Contact>> = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            if cancel.is_cancelled() {
                return Err(ReconcileError::Cancelled);
            }
            let page = super::with_retries(|| {
                self.hubspot
                    .contacts_having(&self.id_property, properties, after.as_deref())
            })
            .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for c in page {
                if let Some(customer) = c.get(&self.id_property).map(str::to_owned) {
                    claimed.entry(customer).or_default().push(c);
                }
            }
        }
        Ok(claimed)
    }

    /// The claims Stripe does not back (customers it does not have alive), and customers
    /// several contacts claim.
    pub(super) async fn claims(
        &self,
        books: &mut Books,
        state: &mut ReconcileProgress,
        cancel: &CancellationToken,
    ) -> Result<(), ReconcileError> {
        let pairs: Vec<(String, String)> = books
            .claimed
            .iter()
            .flat_map(|(customer, contacts)| {
                contacts.iter().map(|c| (c.id.clone(), customer.clone()))
            })
            .collect();
        let seen = self.store.reconcile_seen(&state.run).await?;
        let found = claims(&pairs, |c| seen.contains(c));
        let mut findings = Vec::new();
        let mut known: HashMap<String, Known> = HashMap::new();
        for (contact, customer) in &found.unknown {
            if !known.contains_key(customer) {
                let k = if known.len() < LOOKUPS {
                    match super::stripe_retries(|| self.api.customer(customer)).await? {
                        Some(c) if c.deleted => Known::Deleted,
                        Some(_) => Known::Alive,
                        None => Known::Missing,
                    }
                } else {
                    Known::NotLookedUp
                };
                known.insert(customer.clone(), k);
            }
            let k = known.get(customer).copied().unwrap_or(Known::NotLookedUp);
            // A customer created after the pass went by is alive: no finding.
            if k != Known::Alive {
                findings.push(unknown_customer(contact, customer, unknown_detail(k)));
            }
        }
        let deleted: Vec<String> = known
            .iter()
            .filter(|(_, k)| **k == Known::Deleted)
            .map(|(c, _)| c.clone())
            .collect();
        findings.extend(self.deleted(&deleted, books, state, cancel).await?);
        for (customer, contacts) in &found.twice {
            for contact in contacts {
                let others: Vec<&str> = contacts
                    .iter()
                    .filter(|c| *c != contact)
                    .map(String::as_str)
                    .collect();
                findings.push(Finding {
                    kind: FindingKind::ClaimedTwice,
                    customer: customer.clone(),
                    contact_id: contact.clone(),
                    property: String::new(),
                    stripe_value: None,
                    hubspot_value: None,
                    last_event: None,
                    last_event_created: None,
                    detail: Some(format!("also claimed by contact {}", others.join(", "))),
                    repair_event: None,
                });
            }
        }
        self.store
            .reconcile_page(&state.run, Vec::new(), findings, None)
            .await?;
        Ok(())
    }

    /// The contacts of customers deleted in Stripe: "Permanently deletes a customer. It
    /// cannot be undone. Also immediately cancels any active subscriptions on the
    /// customer" (stripe-node `CustomerResource.del`; Stripe API reference "Delete a
    /// customer"), so a contact still showing another subscription status drifted; with
    /// `--fix` it is repaired to `canceled`.
    async fn deleted(
        &self,
        customers: &[String],
        books: &mut Books,
        state: &mut ReconcileProgress,
        cancel: &CancellationToken,
    ) -> Result<Vec<Finding>, ReconcileError> {
        let want: BTreeMap<String, String> = [(
            "stripe_subscription_status".to_owned(),
            "canceled".to_owned(),
        )]
        .into();
        let mut findings = Vec::new();
        for chunk in customers.chunks(crate::hubspot::MAX_BATCH) {
            let contacts = self.contacts_of(chunk, books, state, cancel).await?;
            let ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
            let last = self.store.last_writes(&ids).await?;
            for contact in &contacts {
                let Some(customer) = contact.get(&self.id_property) else {
                    continue;
                };
                let mut found: Vec<Finding> = differences(&want, &contact.properties)
                    .into_iter()
                    .filter(|d| d.hubspot.is_some())
                    .filter_map(|d| {
                        let write = last.get(&(contact.id.clone(), d.property.clone()));
                        let newer = write.is_some_and(|w| w.created > books.read_at);
                        (!newer).then(|| drift(customer, &contact.id, d, write))
                    })
                    .map(|mut f| {
                        f.detail =
                            Some("deleted in Stripe (its subscriptions are cancelled)".into());
                        f
                    })
                    .collect();
                state.drift += found.len() as u64;
                if let Some(repairs) = &self.repairs
                    && !found.is_empty()
                {
                    let object =
                        serde_json::json!({"id": customer, "object": "customer", "deleted": true});
                    let current = Current {
                        id: customer,
                        customer: &object,
                        properties: &want,
                        ledger: &[],
                        read_at: books.read_at,
                    };
                    state.repairs_queued += repairs.queue(&state.run, &current, &mut found).await?;
                }
                findings.extend(found);
            }
        }
        Ok(findings)
    }
}

/// What Stripe says of a customer the pass over its customers did not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    Deleted,
    Missing,
    /// Alive after all (created after the pass went by).
    Alive,
    /// Beyond the lookups a run makes.
    NotLookedUp,
}

pub(super) fn unknown_detail(known: Known) -> &'static str {
    match known {
        Known::Deleted => "deleted in Stripe",
        Known::Missing => "Stripe has no such customer",
        Known::Alive | Known::NotLookedUp => "not among Stripe's live customers",
    }
}

pub(super) fn unknown_customer(contact: &str, customer: &str, detail: &str) -> Finding {
    Finding {
        kind: FindingKind::UnknownCustomer,
        customer: customer.to_owned(),
        contact_id: contact.to_owned(),
        property: String::new(),
        stripe_value: None,
        hubspot_value: Some(customer.to_owned()),
        last_event: None,
        last_event_created: None,
        detail: Some(detail.to_owned()),
        repair_event: None,
    }
}
