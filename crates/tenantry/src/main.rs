//! The `tenantry` binary: parses the command line and hands off. `serve` and
//! `admin` run the server in this process; every other command is an HTTP client of
//! a running server (`--url`/`TENANTRY_URL` or a login profile, `TENANTRY_API_KEY`).

mod cli;
mod client;
mod commands;
mod output;
mod profile;
mod suggest;

use clap::Parser;
use serde_json::json;

/// jemalloc instead of glibc's allocator: about 40 % more invocations per second over
/// HTTP on the reference machine, and flat from 10 to 10,000 orgs (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`_RJEM_MALLOC_CONF` in the environment
/// still overrides them). The server runs a thread per open SQLite file (up to
/// 1,024), and jemalloc's per-thread caches of freed blocks at their default size
/// kept ~40 % more memory resident than glibc with 10,000 orgs; caching only blocks
/// up to 64 bytes keeps most of the speed at glibc's footprint, and a background
/// thread returns freed pages to the OS within a second.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);
// SAFETY: the pointer is to a static, immutable, NUL-terminated string.
unsafe impl Sync for MallocConf {}
// SAFETY: jemalloc (built with the `_rjem_` prefix) reads this symbol as its
// `malloc_conf`, a `const char *`, once at start-up; nothing else defines it.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(
    c"tcache_max:64,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr(),
);

fn main() -> std::process::ExitCode {
    // Writing to a closed pipe (`tenantry audit list | head -1`) ends the process
    // quietly, as it does for other command-line tools, instead of a panic in
    // `println!`. The server (below) goes back to ignoring SIGPIPE.
    #[cfg(unix)]
    set_sigpipe(libc::SIG_DFL);
    // One rustls provider for every TLS client (the CLI's, PostgreSQL's, Redis's).
    tenantry_tls::install_crypto_provider();
    let json = std::env::args_os().any(|a| a == "--json");
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) if json && e.use_stderr() => {
            let message = e.render().to_string();
            report_json("USAGE_ERROR", message.trim(), None);
            return std::process::ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    #[cfg(unix)]
    if matches!(args.command, cli::Command::Serve(_)) {
        set_sigpipe(libc::SIG_IGN);
    }
    let json = args.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report(
                &anyhow::anyhow!("cannot start the async runtime: {e}"),
                json,
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report(&e, json);
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(unix)]
fn set_sigpipe(action: libc::sighandler_t) {
    // SAFETY: called on the main thread before any other thread exists (or, for
    // `serve`, before the runtime starts); `signal` with SIG_DFL/SIG_IGN installs no
    // handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, action);
    }
}

/// Prints a failure: one JSON object on stderr with `--json`, else `error: …`.
fn report(e: &anyhow::Error, json: bool) {
    if json {
        match e.chain().find_map(|c| c.downcast_ref::<client::ApiError>()) {
            Some(a) => report_json(&a.code, &a.message, a.request_id.as_deref()),
            None => report_json("CLI_ERROR", &format!("{e:#}"), None),
        }
    } else if output::colour(&std::io::stderr()) {
        eprintln!("\x1b[1;31merror\x1b[0m: {e:#}");
    } else {
        eprintln!("error: {e:#}");
    }
}

fn report_json(code: &str, message: &str, request_id: Option<&str>) {
    let mut error = json!({"code": code, "message": message});
    if let Some(r) = request_id {
        error["request_id"] = json!(r);
    }
    eprintln!("{}", json!({ "error": error }));
}
