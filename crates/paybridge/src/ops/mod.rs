//! Features beside the data path: `setup` (HubSpot properties), `verify` (what the rules
//! name exists in the portal), `report` (impact numbers), `usage` (HubSpot call counters),
//! `maintenance` (payload retention), `singleton` (work one replica at a time does),
//! `store_copy` (moving a SQLite store to Postgres).

pub mod maintenance;
pub mod report;
pub mod setup;
pub mod singleton;
pub mod store_copy;
pub mod usage;
pub mod verify;
