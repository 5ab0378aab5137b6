//! Shared basics below everything else: secrets, durations, and problems with their paths
//! (for config and rules alike). Imports nothing of paybridge.

mod duration;
mod problem;
mod secret;

pub use duration::parse_duration;
pub use problem::{ConfigError, Problem};
pub use secret::{Secret, SecretError, resolve as resolve_secret};
