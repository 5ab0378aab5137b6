//! `--fix`: each customer's drift repaired through the same pipeline as Stripe's events.
//! One event per customer and run (`evt_reconcile_{run}_{customer}`, source `reconcile`,
//! type [`rules::repair::EVENT_TYPE`]) carries the customer object as Stripe answered it
//! (so the contact is found, or created for a customer without one, as for any customer
//! event) and, beside it, the properties to write. Its `created` is the time the run began
//! reading Stripe's state: the worker's stale guard then skips any property a newer event has written
//! meanwhile, so a repair never overwrites a newer value. `events show` and the dashboard
//! show it like any event.
//!
//! The email is repaired only with `[contacts] follow_email` (otherwise paybridge never
//! writes it, and the contact's own email is the person's choice); a collision with
//! another contact's email waits as `needs_attention`, as for a webhook.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ReconcileError;
use super::stripe_state::LedgerEntry;
use crate::domain::EventSource;
use crate::intake::{Intake, Received};
use crate::rules::repair::EVENT_TYPE;
use crate::store::{Finding, FindingKind};
use crate::stripe::Envelope;

/// The id prefix of a run's repair events.
pub fn repair_prefix(run: &str) -> String {
    format!("evt_reconcile_{run}_")
}

/// Stripe's current state of one customer, as a run read it.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub id: &'a str,
    /// The customer object as Stripe answered it.
    pub customer: &'a Value,
    /// The contact properties it gives.
    pub properties: &'a BTreeMap<String, String>,
    /// Its charges as ledger entries.
    pub ledger: &'a [LedgerEntry],
    /// When the run began reading Stripe (unix seconds; the subscriptions and charges are
    /// read first, minutes before a late page): the repair's `created`, so any event newer
    /// than the oldest read the comparison rests on keeps its write.
    pub read_at: i64,
}

/// The repair of a run's findings.
#[derive(Clone)]
pub struct Repairs {
    intake: Intake,
    follow_email: bool,
}

impl Repairs {
    pub fn new(intake: Intake, follow_email: bool) -> Self {
        Self {
            intake,
            follow_email,
        }
    }

    /// Queues the repair of one customer's `found` (drift, or no contact: every property
    /// Stripe's state gives; with the lifetime value, the customer's charges for the
    /// ledger), marks those findings with its event id, and returns how many events it
    /// queued (0 or 1; 0 for a repair already queued by an interrupted attempt).
    pub async fn queue(
        &self,
        run: &str,
        current: &Current<'_>,
        found: &mut [Finding],
    ) -> Result<u64, ReconcileError> {
        let Current {
            id: customer_id,
            customer,
            properties: want,
            ledger,
            read_at,
        } = *current;
        let mut properties = BTreeMap::new();
        for f in found.iter_mut() {
            match (f.kind, &f.stripe_value) {
                (FindingKind::Drift, _) if f.property == "email" && !self.follow_email => {
                    f.detail = Some(
                        "not repaired: [contacts] follow_email is off (paybridge does not write the email)"
                            .into(),
                    );
                }
                (FindingKind::Drift, Some(value)) => {
                    properties.insert(f.property.clone(), value.clone());
                }
                (FindingKind::NoContact, _) => {
                    properties.extend(
                        want.iter()
                            .filter(|(k, _)| *k != "email")
                            .map(|(k, v)| (k.clone(), v.clone())),
                    );
                }
                _ => {}
            }
        }
        let linking = found.iter().any(|f| f.kind == FindingKind::NoContact);
        if properties.is_empty() && !linking {
            return Ok(0);
        }
        let id = format!("{}{customer_id}", repair_prefix(run));
        let event = json!({
            "id": id,
            "object": "event",
            "api_version": Value::Null,
            "created": read_at,
            "livemode": customer.get("livemode").cloned().unwrap_or(Value::Bool(false)),
            "pending_webhooks": 0,
            "request": {"id": Value::Null, "idempotency_key": Value::Null},
            "type": EVENT_TYPE,
            "data": {"object": customer},
            "paybridge_repair": {
                "run": run,
                "properties": properties,
                // Entered in the ledger only when the lifetime value is repaired.
                "ledger": if properties.contains_key("stripe_lifetime_value") { ledger } else { &[] },
            },
        });
        let payload = serde_json::to_vec(&event)
            .map_err(|e| ReconcileError::Repair(format!("{customer_id}: {e}")))?;
        let envelope = Envelope::parse(&payload)
            .map_err(|e| ReconcileError::Repair(format!("{customer_id}: {e}")))?;
        let received = self
            .intake
            .receive(&envelope, payload, EventSource::Reconcile)
            .await?;
        for f in found.iter_mut() {
            let repaired = match f.kind {
                FindingKind::Drift => properties.contains_key(&f.property),
                FindingKind::NoContact => true,
                _ => false,
            };
            if repaired {
                f.repair_event = Some(id.clone());
            }
        }
        Ok(u64::from(received == Received::Queued))
    }
}
