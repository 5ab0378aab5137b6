//! One `run` per command.

pub mod backfill;
pub mod check;
pub mod events;
pub mod init;
pub mod progress;
pub mod reconcile;
pub mod replay;
pub mod report;
pub mod sandbox;
pub mod serve;
pub mod setup;
pub mod simulate;
pub mod store_copy;
