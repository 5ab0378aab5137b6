//! The status of an event as operators see it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored, waiting for (or in) its first run.
    Pending,
    /// Failed at least once, waiting for its next attempt.
    Retrying,
    Done,
    /// Gave up after the last attempt (or a terminal error): a dead letter.
    Dead,
    /// No rule handles this event type.
    Ignored,
    /// A person must decide (e.g. the email belongs to another contact).
    NeedsAttention,
}

impl EventStatus {
    pub const ALL: [EventStatus; 6] = [
        Self::Pending,
        Self::Retrying,
        Self::Done,
        Self::Dead,
        Self::Ignored,
        Self::NeedsAttention,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Ignored => "ignored",
            Self::NeedsAttention => "needs_attention",
        }
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for EventStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a status (use one of: {})",
                    Self::ALL.map(EventStatus::as_str).join(", ")
                )
            })
    }
}
