//! One `run` per command.

pub mod events;
pub mod init;
pub mod sandbox;
pub mod serve;
pub mod simulate;
