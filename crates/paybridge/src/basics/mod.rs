//! Shared basics below everything else: secrets, durations, problems with their paths, and
//! the one reader that collects them from TOML (for config and rules alike). Imports
//! nothing of paybridge.

mod duration;
pub mod fields;
mod problem;
mod secret;

pub use duration::parse_duration;
pub use fields::{At, Fields};
pub use problem::{ConfigError, Problem};
pub use secret::{Secret, SecretError, resolve as resolve_secret};
