//! Stripe: the webhook signature scheme, the event envelope and the few object fields we read.

pub mod api;
pub mod event;
pub mod normalise;
pub mod signature;
pub mod simulate;
pub mod summary;

pub use event::{Envelope, EnvelopeError};
pub use normalise::{NormaliseError, normalise};
pub use signature::{SignatureError, WebhookSecret, sign, verify};
