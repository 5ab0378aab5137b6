//! Stripe: the webhook signature scheme, the event envelope and the few object fields we read.

pub mod api;
pub mod event;
pub mod limiter;
pub mod normalise;
pub mod signature;
pub mod simulate;
pub mod summary;
pub mod thin;

pub use event::{Envelope, EnvelopeError};
pub use normalise::{NormaliseError, normalise, normalise_value};
pub use signature::{SignatureError, WebhookSecret, sign, verify};
