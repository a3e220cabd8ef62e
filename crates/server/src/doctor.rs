//! `tenantry doctor`: a deployment checked against the managed-host seed's launch
//! no-go conditions and Tenantry's own safety rules, before it serves anyone.
//!
//! Each check gives a [`Finding`]: ok, warn (worth fixing) or no-go (do not launch
//! like this), with what to do. `serve --production` runs the same checks and
//! refuses to start on a no-go. The checks read the configuration, the key files'
//! places and modes, and (pooled mode) the database as the application role; they
//! change nothing.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    NoGo,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::NoGo => "no-go",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    /// What was checked (stable, short).
    pub check: &'static str,
    /// What was found.
    pub detail: String,
    /// What to do (empty when ok).
    pub fix: String,
}

fn finding(level: Level, check: &'static str, detail: String, fix: &str) -> Finding {
    Finding {
        level,
        check,
        detail,
        fix: fix.to_string(),
    }
}

/// Runs every check.
pub async fn run(config: &Config) -> Vec<Finding> {
    let mut out = vec![storage(config).await];
    out.push(key_file(
        "master key",
        config.master_key.is_some(),
        "TENANTRY_MASTER_KEY",
        config.master_key_file.clone(),
        &config.data_dir,
        "master.key",
        Level::NoGo,
        "a copy of the data directory (a backup) then decrypts every secret: keep the key elsewhere (master_key_file in tenantry.toml, on another volume or a secret store) or give it as TENANTRY_MASTER_KEY",
    ));
    out.push(key_file(
        "audit key",
        config.audit_key.is_some(),
        "TENANTRY_AUDIT_KEY",
        config.audit_key_file.clone(),
        &config.data_dir,
        "audit.key",
        Level::Warn,
        "whoever can rewrite the data directory can then sign checkpoints of a rewritten audit trail: keep it elsewhere (audit_key_file) or give it as TENANTRY_AUDIT_KEY",
    ));
    out.push(finding(
        Level::Ok,
        "secrets",
        "sealed with XChaCha20-Poly1305 under per-org keys wrapped by the master key; write-only API".into(),
        "",
    ));
    out.push(key_vault(config));
    if let Some(previous) = &config.previous_master_key_file {
        out.push(finding(
            Level::Warn,
            "master key rotation",
            format!("{} is a master key being retired", previous.display()),
            "run `tenantry master-key rotate` until nothing remains, then remove previous_master_key_file from every node and destroy the old key",
        ));
    }
    out.push(audit_chain(config));
    out.push(breakglass(config));
    out.push(listener(config));
    out.push(egress(config));
    out.push(pilot(config));
    out
}

/// Whether deleting an org makes a backup of its data unreadable: only when each
/// org's key-encryption key lives in a vault outside that backup.
fn key_vault(config: &Config) -> Finding {
    const CHECK: &str = "crypto-shredding";
    match config.key_vault_dir() {
        None => finding(
            Level::Warn,
            CHECK,
            "no key vault: org keys are wrapped by the master key alone, so a database backup made before an org's deletion still decrypts its secrets".into(),
            "set key_vault_dir in tenantry.toml to a folder every node shares, outside the database's backups",
        ),
        Some(dir) if inside(&dir, &config.data_dir) => finding(
            Level::Warn,
            CHECK,
            format!(
                "the key vault {} is inside the data directory: a backup of it made before an org's deletion still decrypts its secrets",
                dir.display()
            ),
            "move master_key_file (the vault goes beside it) or set key_vault_dir outside the data directory",
        ),
        Some(dir) => finding(
            Level::Ok,
            CHECK,
            format!(
                "each org's key-encryption key is in {}, outside the data; deleting an org destroys it",
                dir.display()
            ),
            "",
        ),
    }
}

async fn storage(config: &Config) -> Finding {
    let Some(url) = &config.database_url else {
        return finding(
            Level::Ok,
            "tenant isolation",
            "embedded store: one SQLite file per org".into(),
            "",
        );
    };
    match tenantry_store_postgres::PgStores::connect(url, 1).await {
        Ok(pg) if pg.mode() == tenantry_store_postgres::RlsMode::Strict => finding(
            Level::Ok,
            "tenant isolation",
            "PostgreSQL row-level security is strict and the application role cannot bypass it"
                .into(),
            "",
        ),
        Ok(pg) => finding(
            Level::NoGo,
            "tenant isolation",
            format!(
                "PostgreSQL row-level security is '{}', not strict",
                pg.mode().as_str()
            ),
            "run `tenantry migrate --database-url OWNER_URL --to strict`",
        ),
        Err(e) => finding(
            Level::NoGo,
            "tenant isolation",
            format!("cannot check the database as the application role: {e}"),
            "connect as a role without SUPERUSER or BYPASSRLS that owns no table (see `tenantry migrate`)",
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn key_file(
    check: &'static str,
    from_env: bool,
    env: &str,
    file: Option<PathBuf>,
    data_dir: &Path,
    default_name: &str,
    inside_level: Level,
    inside_why: &str,
) -> Finding {
    if from_env {
        return finding(Level::Ok, check, format!("given by {env}"), "");
    }
    let path = file.unwrap_or_else(|| data_dir.join(default_name));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(&path)
            && m.permissions().mode() & 0o077 != 0
        {
            return finding(
                Level::NoGo,
                check,
                format!(
                    "{} is readable by group or others (mode {:o})",
                    path.display(),
                    m.permissions().mode() & 0o777
                ),
                &format!("chmod 600 {}", path.display()),
            );
        }
    }
    if inside(&path, data_dir) {
        return finding(
            inside_level,
            check,
            format!("{} is inside the data directory", path.display()),
            inside_why,
        );
    }
    finding(
        Level::Ok,
        check,
        format!("{} (outside the data directory)", path.display()),
        "",
    )
}

/// Whether `path` is inside `dir` (compared as absolute paths).
fn inside(path: &Path, dir: &Path) -> bool {
    match (absolute(path), absolute(dir)) {
        (Some(p), Some(d)) => p.starts_with(d),
        _ => path.starts_with(dir),
    }
}

/// `path` made absolute without touching the file system for what does not exist.
fn absolute(path: &Path) -> Option<PathBuf> {
    std::path::absolute(path).ok()
}

fn audit_chain(config: &Config) -> Finding {
    if config.audit_checkpoint_seconds == 0 {
        finding(
            Level::Warn,
            "audit trail",
            "hash-chained, but periodic signed checkpoints are off (audit_checkpoint_seconds = 0)"
                .into(),
            "set audit_checkpoint_seconds (e.g. 3600), or run `tenantry audit checkpoint --all-orgs` from a scheduler",
        )
    } else {
        finding(
            Level::Ok,
            "audit trail",
            format!(
                "hash-chained per org and for the operator; signed checkpoints every {} s",
                config.audit_checkpoint_seconds
            ),
            "",
        )
    }
}

fn breakglass(config: &Config) -> Finding {
    let max = config.breakglass_max_ttl_minutes;
    if max > 24 * 60 {
        finding(
            Level::Warn,
            "break-glass",
            format!("a grant may stay open {max} minutes"),
            "lower breakglass_max_ttl_minutes (default 240)",
        )
    } else {
        finding(
            Level::Ok,
            "break-glass",
            format!(
                "required for the operator inside a live org; grants last at most {max} minutes, every request audited"
            ),
            "",
        )
    }
}

fn listener(config: &Config) -> Finding {
    let ip = config.listen.ip();
    if ip.is_loopback() {
        finding(
            Level::Ok,
            "listener",
            format!("{} (loopback only)", config.listen),
            "",
        )
    } else if config.behind_tls_proxy {
        finding(
            Level::Ok,
            "listener",
            format!(
                "{} behind a TLS-terminating proxy (behind_tls_proxy = true)",
                config.listen
            ),
            "",
        )
    } else {
        finding(
            Level::NoGo,
            "listener",
            format!(
                "{} is reachable beyond this host and Tenantry serves plain HTTP",
                config.listen
            ),
            "put a TLS-terminating proxy in front and set behind_tls_proxy = true, or listen on 127.0.0.1",
        )
    }
}

fn egress(config: &Config) -> Finding {
    let everything = config
        .egress_allow_cidrs
        .iter()
        .find(|n| n.prefix_len() == 0);
    if let Some(n) = everything {
        return finding(
            Level::NoGo,
            "egress",
            format!(
                "egress_allow_cidrs holds {n}: plugins may reach every private address, the cloud metadata service included"
            ),
            "list only the internal ranges plugins need (e.g. 10.20.0.0/16)",
        );
    }
    let metadata: IpAddr = [169, 254, 169, 254].into();
    if let Some(n) = config
        .egress_allow_cidrs
        .iter()
        .find(|n| n.contains(&metadata))
    {
        return finding(
            Level::NoGo,
            "egress",
            format!(
                "egress_allow_cidrs holds {n}, which covers the cloud metadata address 169.254.169.254"
            ),
            "remove the link-local range from egress_allow_cidrs",
        );
    }
    let broad: Vec<&String> = config
        .pilot
        .egress
        .iter()
        .flatten()
        .filter(|p| p.strip_prefix("*.").is_some_and(|s| !s.contains('.')))
        .collect();
    if !broad.is_empty() {
        return finding(
            Level::Warn,
            "egress",
            format!("the connector list allows whole top-level domains: {broad:?}"),
            "name the connectors' hosts (api.github.com, *.slack.com)",
        );
    }
    if config.egress_allow_http {
        return finding(
            Level::Warn,
            "egress",
            "egress_allow_http is on: plugins may send tokens over plain http://".into(),
            "turn egress_allow_http off unless an internal API has no TLS",
        );
    }
    finding(
        Level::Ok,
        "egress",
        format!(
            "per-install grants; HTTPS only; private ranges refused{}",
            if config.egress_allow_cidrs.is_empty() {
                String::new()
            } else {
                format!(" except {:?}", config.egress_allow_cidrs)
            }
        ),
        "",
    )
}

fn pilot(config: &Config) -> Finding {
    let p = &config.pilot;
    let guarded = p.plugins.is_some() || p.egress.is_some();
    match (guarded, p.max_orgs) {
        (true, None) => finding(
            Level::NoGo,
            "pilot",
            "a pilot (plugin or connector list) without an org cap".into(),
            "set [pilot] max_orgs (the seed's pilot is 3-5 tenants)",
        ),
        (_, Some(max)) => finding(
            Level::Ok,
            "pilot",
            format!(
                "at most {max} orgs; plugins {}; connectors {}",
                p.plugins.as_ref().map_or("any".into(), |l| l.join(", ")),
                p.egress.as_ref().map_or("any".into(), |l| l.join(", "))
            ),
            "",
        ),
        (false, None) => finding(
            Level::Ok,
            "pilot",
            "no pilot guardrails configured".into(),
            "",
        ),
    }
}
