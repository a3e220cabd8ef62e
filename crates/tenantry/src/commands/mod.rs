//! Command implementations, one module per group.

mod demo;
mod login;
mod plugin;
mod resources;
mod scaffold;
mod server;

use anyhow::{Context as _, Result, bail};

use crate::cli::{Cli, Command};
use crate::client::Client;

pub async fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Serve(a) => server::serve(a, json).await,
        Command::Doctor(a) => server::doctor(a, json).await,
        Command::Admin(c) => server::admin(c, json).await,
        Command::Migrate {
            database_url,
            to,
            app_role,
        } => server::migrate(&database_url, to.as_deref(), &app_role, json).await,
        Command::Plugin(c) => plugin::run(c, json).await,
        Command::Demo { data_dir } => {
            if json {
                bail!(
                    "the demo is a guided tour for people and has no JSON output; run `tenantry demo` without --json"
                );
            }
            demo::run(data_dir).await
        }
        Command::Completions { shell } => {
            if json {
                bail!("completions are a shell script, not JSON; run without --json");
            }
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tenantry", &mut std::io::stdout());
            Ok(())
        }
        Command::Login { client } => login::login(&client, json).await,
        Command::Logout { profile } => login::logout(profile.as_deref(), json),
        Command::Whoami { client } => login::whoami(&client, json).await,
        Command::Org { client, cmd } => resources::org(cmd, &Client::connect(&client)?, json).await,
        Command::User { client, cmd } => {
            resources::user(cmd, &Client::connect(&client)?, json).await
        }
        Command::Agent { client, cmd } => {
            resources::agent(cmd, &Client::connect(&client)?, json).await
        }
        Command::Key { client, cmd } => resources::key(cmd, &Client::connect(&client)?, json).await,
        Command::Publisher { client, cmd } => {
            resources::publisher(cmd, &Client::connect(&client)?, json).await
        }
        Command::Install { client, cmd } => {
            resources::install(cmd, &Client::connect(&client)?, json).await
        }
        Command::Secret { client, cmd } => resources::secret(cmd, &client, json).await,
        Command::Breakglass { client, cmd } => {
            resources::breakglass(cmd, &Client::connect(&client)?, json).await
        }
        Command::OperatorKey { client, cmd } => {
            resources::operator_key(cmd, &Client::connect(&client)?, json).await
        }
        Command::MasterKey { client, cmd } => resources::master_key(cmd, &client, json).await,
        Command::Audit { client, cmd } => {
            resources::audit(cmd, &Client::connect(&client)?, json).await
        }
        Command::Invoke {
            client,
            install,
            action,
            input,
        } => resources::invoke(&Client::connect(&client)?, json, &install, &action, &input).await,
        Command::Exec {
            client,
            file,
            eval,
            input,
        } => {
            let code = match (file, eval) {
                (_, Some(code)) => code,
                (Some(f), None) if f.as_os_str() == "-" => {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                        .context("reading the script from standard input")?;
                    s
                }
                (Some(f), None) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading the script {}", f.display()))?,
                (None, None) => bail!("give a script file or -e CODE"),
            };
            resources::exec(&Client::connect(&client)?, json, code, &input).await
        }
        Command::Usage { client, cmd, list } => {
            resources::usage(&Client::connect(&client)?, json, cmd, list).await
        }
    }
}
