//! Every read of the clock goes through here: `now()` for windows, lags and
//! outages (monotonic), `wall()` for timestamps shown to clients.
//!
//! `now()` is tokio's clock, so a test on a paused runtime
//! (`#[tokio::test(start_paused = true)]`) moves the sandbox through time with
//! `tokio::time::advance` instead of sleeping. Outside a paused runtime it is
//! the ordinary monotonic clock.

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::time::Instant;

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
