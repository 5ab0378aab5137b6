//! Which kind of Stripe payload an event arrived as: stored with it as `payload_kind`.

use std::fmt;

/// Stripe's two payload styles (docs.stripe.com/events/set-up-events): a *snapshot* event
/// (`"object": "event"`) carries the object as it was; a *thin* event
/// (`"object": "v2.core.event"`) carries only a reference (`related_object.url`), and the
/// object is fetched with the API key ("The payload of thin events is unversioned. During
/// processing, you must fetch the versioned event from the API or fetch the resource's
/// current state", docs.stripe.com/api/v2/core/events/event-types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    #[default]
    Snapshot,
    Thin,
}

impl PayloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Thin => "thin",
        }
    }

    /// The stored name back (anything unknown reads as a snapshot, the older default).
    pub fn from_db(s: &str) -> Self {
        if s == "thin" {
            Self::Thin
        } else {
            Self::Snapshot
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PayloadKind;

    #[test]
    fn stored_names_round_trip() {
        for kind in [PayloadKind::Snapshot, PayloadKind::Thin] {
            assert_eq!(PayloadKind::from_db(kind.as_str()), kind);
        }
        assert_eq!(PayloadKind::from_db("other"), PayloadKind::Snapshot);
    }
}
