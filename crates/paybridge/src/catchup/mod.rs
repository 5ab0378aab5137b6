//! Catching up with Stripe through the API: `replay` (events webhooks missed) and
//! `backfill` (customers Stripe had before paybridge).

pub mod backfill;
pub mod reconcile;
pub mod replay;
