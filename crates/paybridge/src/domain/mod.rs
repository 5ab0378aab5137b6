//! The vocabulary of paybridge: ids, the clock, money and the normalised payment fact.
//! Knows no database and no HTTP client.

pub mod clock;
pub mod ids;
pub mod status;

pub use clock::Clock;
pub use ids::{CustomerId, EventId};
pub use status::EventStatus;
