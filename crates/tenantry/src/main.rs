//! The `tenantry` binary: parses the command line and hands off. `serve` and
//! `admin` run the server in this process; every other command is an HTTP client of
//! a running server (`TENANTRY_URL`, `TENANTRY_API_KEY`).

mod cli;
mod client;
mod commands;
mod output;

use clap::Parser;
use std::io::IsTerminal;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let colour = std::io::stderr().is_terminal();
            if colour {
                eprintln!("\x1b[1;31merror\x1b[0m: {e:#}");
            } else {
                eprintln!("error: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
