//! What brought an event into the store: stored with it as `source`.

use std::fmt;

/// The door an event came through. The stored names (`webhook`, `replay`, `backfill`,
/// `reconcile`) are part of the event log's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventSource {
    /// Stripe delivered it to `POST /webhooks/stripe`.
    Webhook,
    /// Read back from Stripe's Events API (`paybridge replay`, `POST /api/replay`, the
    /// schedule).
    Replay,
    /// Made from a customer or subscription Stripe already had (`paybridge backfill`).
    Backfill,
    /// A repair `paybridge reconcile --fix` (or its schedule) queued: the contact's
    /// properties written back to what Stripe's current state gives.
    Reconcile,
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Replay => "replay",
            Self::Backfill => "backfill",
            Self::Reconcile => "reconcile",
        }
    }
}

impl fmt::Display for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::EventSource;

    #[test]
    fn stored_names_are_the_event_logs_contract() {
        let names: Vec<&str> = [
            EventSource::Webhook,
            EventSource::Replay,
            EventSource::Backfill,
            EventSource::Reconcile,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        assert_eq!(names, ["webhook", "replay", "backfill", "reconcile"]);
    }
}
