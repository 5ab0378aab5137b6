use std::process::ExitCode;

use clap::Parser;
use paybridge::basics::ConfigError;
use paybridge::cli::{Cli, Command};
use paybridge::config;
use paybridge::{UsageError, commands, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<ConfigError>() || e.is::<UsageError>() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Loaded only by the commands that need settings (`sandbox` runs without any config).
    let settings = || config::load(cli.config.as_deref());
    match cli.command {
        Command::Serve => commands::serve::run(settings()?).await,
        Command::Events(command) => commands::events::run(command, settings()?).await,
        Command::Init { output, force } => {
            commands::init::run(output.as_deref().or(cli.config.as_deref()), force)
        }
        Command::Setup { dry_run } => commands::setup::run(dry_run, settings()?).await,
        Command::Check => commands::check::run(settings()?).await,
        Command::Simulate(args) => commands::simulate::run(args, settings()?).await,
        Command::Sandbox(args) => commands::sandbox::run(args).await,
        Command::Replay(args) => commands::replay::run(args, settings()?).await,
        Command::Backfill(args) => commands::backfill::run(args, settings()?).await,
        Command::Report(args) => commands::report::run(args, settings()?).await,
    }
}
