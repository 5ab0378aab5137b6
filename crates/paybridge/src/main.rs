use std::process::ExitCode;

use clap::Parser;
use paybridge::app::load;
use paybridge::basics::ConfigError;
use paybridge::cli::{Cli, Command, StoreCommand};
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
        Err(e)
            if e.is::<ConfigError>()
                || e.is::<UsageError>()
                || e.is::<paybridge::store::Unreachable>() =>
        {
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
    // Every command that loads the config refuses a bad one, rules included.
    let config = || load::load(cli.config.as_deref());
    let settings = || config().map(|c| c.settings);
    match cli.command {
        Command::Serve { sandbox } => {
            commands::serve::run(load::load_as(cli.config.as_deref(), sandbox)?).await
        }
        Command::Events(command) => commands::events::run(command, settings()?).await,
        Command::Init { output, force } => {
            commands::init::run(output.as_deref().or(cli.config.as_deref()), force)
        }
        Command::Setup { dry_run } => commands::setup::run(dry_run, config()?).await,
        Command::Check => commands::check::run(config()?).await,
        Command::Simulate(args) => commands::simulate::run(args, settings()?).await,
        Command::Sandbox(args) => commands::sandbox::run(args).await,
        Command::Replay(args) => commands::replay::run(args, config()?).await,
        Command::Backfill(args) => commands::backfill::run(args, config()?).await,
        Command::Reconcile(args) => commands::reconcile::run(args, config()?).await,
        Command::Report(args) => commands::report::run(args, settings()?).await,
        Command::Store(StoreCommand::Copy(args)) => commands::store_copy::run(args).await,
    }
}
