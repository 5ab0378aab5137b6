//! The vocabulary of paybridge: ids, the clock, money and the normalised payment fact.
//! Knows no database and no HTTP client.

pub mod clock;
pub mod fact;
pub mod ids;
pub mod money;
pub mod source;
pub mod status;

pub use clock::Clock;
pub use fact::{
    ChargeFacts, CustomerProfile, InvoiceFacts, Outcome, PaymentFact, ProductRef, SubscriptionFacts,
};
pub use ids::{CustomerId, EventId, random_hex};
pub use money::Money;
pub use source::EventSource;
pub use status::EventStatus;
