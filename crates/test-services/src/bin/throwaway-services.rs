//! `throwaway-services [postgres] [redis]` (both by default) starts a throwaway
//! PostgreSQL and/or Redis, prints one line each (`postgres URL`, `redis URL`), and
//! keeps them until its standard input ends (Ctrl-D, or the end of a pipe); then
//! they stop and their directories go.
//!
//! For running the tests against them by hand
//! (`TENANTRY_TEST_DATABASE_URL=… TENANTRY_TEST_REDIS_URL=… cargo test`), and for
//! this crate's own tests.

use std::io::Read as _;

fn main() {
    let mut wanted: Vec<String> = std::env::args().skip(1).collect();
    if wanted.is_empty() {
        wanted = vec!["postgres".into(), "redis".into()];
    }
    for what in &wanted {
        let started = match what.as_str() {
            "postgres" => tenantry_test_services::start_postgres()
                .map(|p| format!("postgres postgres://postgres@127.0.0.1:{p}/postgres")),
            "redis" => tenantry_test_services::start_redis()
                .map(|p| format!("redis redis://127.0.0.1:{p}")),
            other => {
                eprintln!("error: unknown service {other:?}: use postgres and/or redis");
                std::process::exit(2);
            }
        };
        match started {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
