//! The vocabulary of paybridge: ids, the clock, money, the normalised payment fact, and
//! how times and latencies are written.
//! Knows no database and no HTTP client.

pub mod clock;
pub mod fact;
pub mod ids;
pub mod latency;
pub mod money;
pub mod payload;
pub mod source;
pub mod status;
pub mod time;

pub use clock::Clock;
pub use fact::{
    ChargeFacts, CustomerProfile, DisputeFacts, InvoiceFacts, Outcome, PaymentFact, ProductRef,
    RefundFacts, SubscriptionFacts,
};
pub use ids::{CustomerId, EventId, random_hex};
pub use latency::Latency;
pub use money::Money;
pub use payload::PayloadKind;
pub use source::EventSource;
pub use status::EventStatus;
