//! One `run` per command.

pub mod events;
pub mod serve;
