//! The `satpool-node` binary.

use anyhow::Context;
use satpool_node::config_file::{self, ConfError};
use satpool_node::daemon::{self, Command};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = match config_file::load() {
        Ok(cli) => cli,
        Err(ConfError::Args(error)) => error.exit(),
        Err(error) => return Err(error).context("while reading the configuration"),
    };
    if let Some(Command::AttackProbability(args)) = &cli.command {
        println!("{}", args.run()?);
        return Ok(());
    }
    let config = cli.config;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(daemon::run(config))
}
