//! `tenantry serve`, `tenantry doctor` and `tenantry admin`.

use anyhow::{Context, Result, bail};
use std::io::IsTerminal;
use tenantry_server::doctor::{Finding, Level};
use tenantry_server::{Config, Server, config::Overrides};

use crate::cli::{AdminCmd, ServeArgs, ServerArgs};
use serde_json::json;

/// Writes a line to stdout, ignoring a closed stdout: the server keeps serving
/// whoever started it and went away (SIGPIPE is ignored while serving).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn config(a: ServerArgs) -> Result<Config> {
    let o = Overrides {
        config_file: a.config,
        listen: a.listen,
        data_dir: a.data_dir,
        master_key: std::env::var("TENANTRY_MASTER_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
        audit_key: std::env::var("TENANTRY_AUDIT_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
        log_format: a.log_format,
        database_url: a.database_url,
        redis_url: a.redis_url,
        compile_cache_dir: std::env::var_os("TENANTRY_COMPILE_CACHE_DIR")
            .filter(|s| !s.is_empty())
            .map(Into::into),
    };
    Ok(Config::resolve(o, std::io::stderr().is_terminal())?)
}

/// The findings as a table (or JSON lines), and whether any is a no-go.
fn print_findings(findings: &[Finding], json: bool) -> bool {
    if json {
        for f in findings {
            say(&json!({"level": f.level.as_str(), "check": f.check, "detail": f.detail, "fix": f.fix}).to_string());
        }
    } else {
        crate::output::table(
            &["level", "check", "found", "what to do"],
            findings
                .iter()
                .map(|f| {
                    vec![
                        f.level.as_str().to_string(),
                        f.check.to_string(),
                        f.detail.clone(),
                        f.fix.clone(),
                    ]
                })
                .collect(),
        );
    }
    findings.iter().any(|f| f.level == Level::NoGo)
}

pub async fn doctor(a: ServerArgs, json: bool) -> Result<()> {
    let config = config(a)?;
    let findings = tenantry_server::doctor::run(&config).await;
    if print_findings(&findings, json) {
        bail!("this deployment has a no-go finding; fix it before serving real users");
    }
    Ok(())
}

pub async fn serve(a: ServeArgs, json: bool) -> Result<()> {
    let production = a.production;
    let config = config(a.server)?;
    tenantry_server::init_logging(config.log_json);
    if production {
        let findings = tenantry_server::doctor::run(&config).await;
        if findings.iter().any(|f| f.level == Level::NoGo) {
            print_findings(&findings, json);
            bail!("--production: refusing to start on a no-go finding of `tenantry doctor`");
        }
    }
    let server = Server::open(config).await?;
    if let Some(path) = &server.master_key_created {
        tracing::warn!(path = %path.display(), "created a new master key; back it up: without it, every secret in this data directory is lost");
    }
    if let Some(key) = server.bootstrap_operator().await? {
        // Printed once to stdout (not to the log), so it is never stored in log files.
        let key = String::from_utf8_lossy(key.expose());
        if json {
            say(&json!({ "operator_key": key }).to_string());
        } else {
            say(&format!(
                "Operator API key (shown once; store it now):\n\n    {key}\n\nexport TENANTRY_API_KEY={key}"
            ));
        }
    }
    let listener = server.bind().await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, storage = %server.storage, "tenantry listening");
    if json {
        say(&json!({"listening": format!("http://{addr}"), "storage": server.storage, "data_dir": server.config.data_dir}).to_string());
    } else {
        match server.config.database_url {
            Some(_) => say(&format!(
                "Tenantry listening on http://{addr} ({})",
                server.storage
            )),
            None => say(&format!(
                "Tenantry listening on http://{addr} (data in {})",
                server.config.data_dir.display()
            )),
        }
    }
    server.serve(listener).await.context("serving HTTP")?;
    Ok(())
}

pub async fn migrate(
    database_url: &str,
    to: Option<&str>,
    app_role: &str,
    json: bool,
) -> Result<()> {
    use tenantry_store_postgres::RlsMode;
    let target = to
        .map(|t| {
            RlsMode::parse(t).with_context(|| format!("--to {t}: use one of off, shadow, strict"))
        })
        .transpose()?;
    if !json && std::io::stderr().is_terminal() {
        eprintln!("migrating…");
    }
    let report = tenantry_store_postgres::migrate(database_url, target, app_role).await?;
    if json {
        println!(
            "{}",
            json!({"rls_mode": report.to.as_str(), "previous_rls_mode": report.from.map(|m| m.as_str()), "app_role": report.app_role})
        );
        return Ok(());
    }
    println!(
        "schema at RLS mode {} (was {}); application role '{}' granted",
        report.to.as_str(),
        report.from.map_or("not created", |m| m.as_str()),
        report.app_role
    );
    Ok(())
}

pub async fn admin(c: AdminCmd, json: bool) -> Result<()> {
    match c {
        AdminCmd::Bootstrap(a) => {
            let server = Server::open(config(a)?).await?;
            match server.bootstrap_operator().await? {
                Some(key) if json => println!(
                    "{}",
                    json!({ "operator_key": String::from_utf8_lossy(key.expose()) })
                ),
                Some(key) => println!("{}", String::from_utf8_lossy(key.expose())),
                None => anyhow::bail!(
                    "an operator key already exists; it was shown when it was created"
                ),
            }
            Ok(())
        }
    }
}
