//! The front door: whatever brought a Stripe event (a webhook, a replay, a backfill, a
//! reconcile repair), it is stored here, with its job in the same transaction, as `pending`
//! when some rule handles its type (a repair always) and as `ignored` otherwise. A redelivered id is recognised and writes nothing.
//! Intake never calls HubSpot: it stores and answers.

use std::sync::Arc;

use tokio::task::JoinSet;

use crate::domain::{EventSource, EventStatus};
use crate::rules::TypePatterns;
use crate::store::{IntakeOutcome, NewEvent, Store, StoreError};
use crate::stripe::Envelope;

/// What became of an event at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored now, with a job for the workers.
    Queued,
    /// Stored now as `ignored`: no rule handles its type.
    Ignored,
    /// Its id was already stored: nothing was written.
    Duplicate,
}

impl Received {
    /// The status the event was stored with now (None for a duplicate).
    pub fn status(self) -> Option<EventStatus> {
        match self {
            Self::Queued => Some(EventStatus::Pending),
            Self::Ignored => Some(EventStatus::Ignored),
            Self::Duplicate => None,
        }
    }
}

/// The front door; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    store: Store,
    /// Event types some rule handles; anything else is stored as `ignored`.
    handled: Arc<TypePatterns>,
}

impl Intake {
    pub fn new(store: Store, handled: Arc<TypePatterns>) -> Self {
        Self { store, handled }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores `payload` (the event `envelope` was read from) and, unless no rule handles
    /// its type, its job: one transaction, committed when this returns.
    pub async fn receive(
        &self,
        envelope: &Envelope,
        payload: Vec<u8>,
        source: EventSource,
    ) -> Result<Received, StoreError> {
        // A reconcile repair is paybridge's own event: always run.
        let status = if source == EventSource::Reconcile || self.handled.matches(&envelope.kind) {
            EventStatus::Pending
        } else {
            EventStatus::Ignored
        };
        let event = NewEvent {
            id: envelope.id.clone(),
            kind: envelope.kind.clone(),
            created: envelope.created,
            livemode: envelope.livemode,
            api_version: envelope.api_version.clone(),
            customer: envelope.customer.clone(),
            source,
            status,
            payload,
            payload_kind: envelope.payload_kind,
            guest_email: envelope.guest_email.clone(),
        };
        Ok(match self.store.intake(event).await? {
            IntakeOutcome::Duplicate => Received::Duplicate,
            IntakeOutcome::New if status == EventStatus::Ignored => Received::Ignored,
            IntakeOutcome::New => Received::Queued,
        })
    }

    /// [`Intake::receive`] of several events at once, so that they share a group commit.
    /// One result per event that was tried, in no particular order.
    pub async fn receive_all(
        &self,
        events: Vec<(Envelope, Vec<u8>)>,
        source: EventSource,
    ) -> Vec<Result<Received, StoreError>> {
        let mut intakes = JoinSet::new();
        for (envelope, payload) in events {
            let intake = self.clone();
            intakes.spawn(async move { intake.receive(&envelope, payload, source).await });
        }
        let mut results = Vec::with_capacity(intakes.len());
        while let Some(joined) = intakes.join_next().await {
            if let Ok(result) = joined {
                results.push(result);
            }
        }
        results
    }
}
