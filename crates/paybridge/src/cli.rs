//! The command line of SPEC §3.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "paybridge",
    version,
    about = "Turns Stripe payment events into HubSpot CRM actions, durably and exactly once"
)]
pub struct Cli {
    /// Config file (default: $PAYBRIDGE_CONFIG, then ./paybridge.toml; none = sandbox mode)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive webhooks, run the workers and the admin API (sandbox mode without a config)
    Serve,
    /// The event log
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first
    List(ListArgs),
    /// One event: payload summary and the timeline of every step
    Show {
        /// The Stripe event id (evt_…)
        id: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Re-run failed or dead events (steps already done are skipped)
    Retry {
        /// Event ids (evt_…)
        ids: Vec<String>,
        /// Every dead event
        #[arg(long, conflicts_with = "ids")]
        dead: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// pending | retrying | done | dead | ignored | needs_attention
    #[arg(long)]
    pub status: Option<String>,
    /// An event type, e.g. invoice.paid
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// A Stripe customer id (cus_…)
    #[arg(long)]
    pub customer: Option<String>,
    /// At most this many events
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print one JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}
