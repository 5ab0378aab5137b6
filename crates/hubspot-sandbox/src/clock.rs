//! Every read of the clock goes through here: `now()` for windows and lags
//! (monotonic), `wall()` for timestamps shown to clients.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

/// Monotonic time: rate-limit windows, search-index lag, outages.
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Wall-clock time: `createdAt`, `updatedAt`, daily budget resets, Stripe's 30-day window.
pub(crate) fn wall() -> DateTime<Utc> {
    Utc::now()
}

/// HubSpot's timestamp format: ISO 8601 with milliseconds and `Z`.
pub(crate) fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
