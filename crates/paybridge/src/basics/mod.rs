//! Shared basics below everything else: secrets, durations, problems with their paths, the
//! one reader that collects them from TOML (for config and rules alike), and outside text
//! made printable on a terminal. Imports nothing of paybridge.

mod duration;
pub mod fields;
pub mod printable;
mod problem;
mod secret;

pub use duration::parse_duration;
pub use fields::{At, Fields};
pub use printable::printable;
pub use problem::{ConfigError, Problem};
pub use secret::{Secret, SecretError, resolve as resolve_secret};
