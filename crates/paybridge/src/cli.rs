//! The command line of SPEC §3.

use std::net::SocketAddr;
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
    /// Receive webhooks, run the workers and the admin API
    Serve {
        /// Sandbox mode: the embedded HubSpot sandbox, a generated webhook secret, the admin
        /// open on loopback without a token (also without a config file and without secrets
        /// in the environment)
        #[arg(long)]
        sandbox: bool,
    },
    /// The event log
    #[command(subcommand)]
    Events(EventsCommand),
    /// Write a commented starter config with a rule for every playbook (needs no config)
    Init {
        /// Where to write it (default: the global --config, then ./paybridge.toml)
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite the file if it already exists
        #[arg(long)]
        force: bool,
    },
    /// Create the HubSpot property group and every custom property the config writes
    /// (idempotent: reports what exists and what it created)
    Setup {
        /// Show what would be created; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the config, reach HubSpot and Stripe, list token scopes missing for the
    /// configured rules and scopes granted beyond need
    Check,
    /// Send realistic, correctly signed test events to a running server (like `stripe trigger`)
    Simulate(SimulateArgs),
    /// Run the local HubSpot (and Stripe API) emulator on its own (needs no config)
    Sandbox(SandboxArgs),
    /// Fetch missed events from Stripe's Events API (30 days back) and queue those the store
    /// has not seen
    Replay(ReplayArgs),
    /// Bring existing Stripe customers and their subscriptions into HubSpot (resumable)
    Backfill(BackfillArgs),
    /// Compare Stripe's current state with the contacts' stripe_* properties and report each
    /// drift; repair it with --fix (never over a newer event's write)
    Reconcile(ReconcileArgs),
    /// Impact from the store's records: payment → CRM time, failed payments recovered,
    /// involuntary churn, actions performed, time saved, HubSpot calls and 429s
    Report(ReportArgs),
    /// The store itself: move it to another backend (needs no config)
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a SQLite store into an empty Postgres database, to move to several replicas
    #[command(
        long_about = "Copy a SQLite store into an empty Postgres database, to move to several \
replicas.\n\nCreates the target's schema, then copies every table (events, jobs, steps, \
watermarks, sequences, customers, counters, sessions, ledgers, reconcile runs, leases…) in \
one Postgres transaction: all of it or nothing. The source is read from one consistent \
snapshot, so a running `serve` may keep writing to it meanwhile (what it writes after the \
snapshot is not copied: stop it first to move everything). A target with any row in a \
table the copy writes is refused (exit 2), as is a source that is not a paybridge store or \
was written by another schema version.\n\nJobs running at the time of the copy keep their \
lease as it is: once it expires, a replica on Postgres reclaims the job and runs it again \
(its finished steps are not repeated).\n\nPasswords in the URLs are never printed.",
        after_help = "Example:\n  paybridge store copy --from sqlite://paybridge.db --to postgres://paybridge@db.internal/paybridge"
    )]
    Copy(StoreCopyArgs),
}

#[derive(Debug, Args)]
pub struct StoreCopyArgs {
    /// The SQLite store to copy (opened read-only), e.g. sqlite://paybridge.db
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The Postgres database to copy into (its schema is created; it must hold no rows)
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  paybridge replay --since 24h\n  paybridge replay --since 2026-11-01 --type invoice.payment_failed --type invoice.paid\n  paybridge replay --since 3d --undelivered"
)]
pub struct ReplayArgs {
    /// From when: a duration back from now (24h, 3d), an RFC 3339 time, a date (UTC) or
    /// unix seconds; Stripe keeps 30 days
    #[arg(long, value_name = "TIME")]
    pub since: String,
    /// Only this event type (or pattern such as invoice.*); repeatable
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only events Stripe failed to deliver to at least one endpoint
    #[arg(long)]
    pub undelivered: bool,
    /// Print the counts as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// At most this many customers in this run (continue later with --resume)
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Continue the last backfill where it stopped
    #[arg(long)]
    pub resume: bool,
    /// Run the workers in this process even if a paybridge server answers on server.listen
    #[arg(long)]
    pub here: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  paybridge reconcile\n  paybridge reconcile --customer cus_PV1a2b3c --json\n  paybridge reconcile --fix"
)]
pub struct ReconcileArgs {
    /// Repair what drifted through the pipeline (keyed steps, watermarks): each repair is an
    /// event with source `reconcile` in the event log
    #[arg(long)]
    pub fix: bool,
    /// Only this Stripe customer
    #[arg(long, value_name = "ID")]
    pub customer: Option<String>,
    /// Print the findings as JSON
    #[arg(long)]
    pub json: bool,
    /// Continue the last interrupted reconcile where it stopped
    #[arg(long, conflicts_with = "customer")]
    pub resume: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// From when: a duration back from now (30d, 7d), an RFC 3339 time, a date or unix seconds
    #[arg(long, default_value = "30d", value_name = "TIME")]
    pub since: String,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
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

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  paybridge simulate invoice.paid --customer cus_123 --amount 9900\n  paybridge simulate --story --outcome cancelled --url http://127.0.0.1:8080"
)]
pub struct SimulateArgs {
    /// A Stripe event type, e.g. invoice.paid (an unknown one lists the supported types)
    #[arg(
        value_name = "EVENT_TYPE",
        required_unless_present = "story",
        conflicts_with = "story"
    )]
    pub event_type: Option<String>,
    /// Play a whole customer's life: sign-up, payment, refund, failed renewal, outcome
    #[arg(long)]
    pub story: bool,
    /// How the story ends: recovered (default) | cancelled
    #[arg(long, requires = "story", value_name = "OUTCOME")]
    pub outcome: Option<crate::stripe::simulate::StoryOutcome>,
    /// The Stripe customer id (default: a new random cus_sim…)
    #[arg(long, value_name = "ID")]
    pub customer: Option<String>,
    /// The customer's email (default: {customer}@example.com)
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// The amount in minor units, e.g. 4900 for 49.00 (default 4900)
    #[arg(long, value_name = "N")]
    pub amount: Option<i64>,
    /// The product id (prod_…) the payment is for (default: the fixtures' product)
    #[arg(long, value_name = "PRODUCT")]
    pub product: Option<String>,
    /// The server: a base URL or the full /webhooks/stripe URL
    /// (default: http://127.0.0.1:{server.listen port}/webhooks/stripe)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free one; the real one is printed)
    #[arg(long, default_value = "127.0.0.1:8089", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The bearer token granted every scope
    #[arg(long, default_value = "sandbox-token", value_name = "T")]
    pub token: String,
    /// Requests per rolling 10-second window per token (HubSpot free/starter: 100)
    #[arg(long = "requests-per-10s", default_value_t = 100, value_name = "N")]
    pub requests_per_10s: u32,
    /// Search requests per second per token
    #[arg(long = "search-per-s", default_value_t = 5, value_name = "N")]
    pub search_per_s: u32,
    /// How long after a write a record becomes visible to search, in milliseconds
    #[arg(long = "search-lag-ms", default_value_t = 1000, value_name = "N")]
    pub search_lag_ms: u64,
    /// A seed file (JSON: owners, lists, workflows, tokens, records); default: the standard seed
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
}
