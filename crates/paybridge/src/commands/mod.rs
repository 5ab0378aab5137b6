//! One `run` per command.

pub mod check;
pub mod events;
pub mod init;
pub mod sandbox;
pub mod serve;
pub mod setup;
pub mod simulate;
