//! `central-sync`: the central service binary. It parses the command line and hands the command to the
//! library (`central_server::commands`), where the work lives.

use central_server::cli::{Cli, Command};
use central_server::commands;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let Cli { database_url, command } = Cli::parse();
    let ok = match command {
        Command::Serve(args) => commands::serve(database_url.as_deref(), *args).await.map(|()| true)?,
        other => commands::admin(database_url.as_deref(), other).await?,
    };
    Ok(if ok { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}
