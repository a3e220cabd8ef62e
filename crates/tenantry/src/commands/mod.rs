//! Command implementations, one module per group.

mod demo;
mod plugin;
mod resources;
mod server;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::client::Client;

pub async fn run(cli: Cli) -> Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Serve(a) => server::serve(a).await,
        Command::Admin(c) => server::admin(c, &g).await,
        Command::Migrate {
            database_url,
            to,
            app_role,
        } => server::migrate(&database_url, to.as_deref(), &app_role).await,
        Command::Plugin(c) => plugin::run(c, &g).await,
        Command::Demo { data_dir } => demo::run(data_dir).await,
        other => resources::run(other, &Client::new(&g)?, g.json).await,
    }
}
