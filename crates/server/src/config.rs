//! Server configuration: TOML file, then `TENANTRY_*` environment, then flags.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tenantry_core::Tier;

/// The default listen address: loopback, on a port no well-known service uses.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7431";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0} is not valid: {1}")]
    Parse(PathBuf, String),
    #[error("{0}: '{1}' is not a CIDR like 10.20.0.0/16")]
    Cidr(&'static str, String),
    #[error("{0} is not a valid ADDR:PORT (e.g. 127.0.0.1:7431)")]
    Listen(String),
    #[error("tiers.{0}: {1}")]
    Tier(String, String),
    #[error(
        "log_format '{0}' is not known; use 'json' or 'human' (config key log_format, TENANTRY_LOG_FORMAT or --log-format)"
    )]
    LogFormat(String),
    /// A setting outside its range (the message names it).
    #[error("{0}")]
    Setting(String),
}

/// A tier defined (or redefined) in the configuration file: a built-in tier as its
/// base, with some limits changed.
///
/// ```toml
/// [tiers.pro]
/// base = "starter"
/// executions_per_day = 50000
/// invocations_per_minute = 1200
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTier {
    /// `free`, `starter` or `enterprise`; default: the tier's own name if built in,
    /// else `free`.
    pub base: Option<String>,
    #[serde(flatten)]
    pub limits: tenantry_core::TierOverrides,
}

/// Effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Master key as base64 (from `TENANTRY_MASTER_KEY`); wins over the file.
    pub master_key: Option<String>,
    /// Master key file; `<data_dir>/master.key` by default.
    pub master_key_file: Option<PathBuf>,
    /// The key vault folder, as configured (see [`Config::key_vault_dir`]).
    pub key_vault_dir: Option<PathBuf>,
    /// The master key being retired while a rotation runs (read, never written).
    pub previous_master_key_file: Option<PathBuf>,
    pub max_artifact_bytes: u64,
    pub log_json: bool,
    /// Non-public address ranges plugins may reach (default none).
    pub egress_allow_cidrs: Vec<ipnet::IpNet>,
    /// Plugins may send plain `http://` requests (default: HTTPS only).
    pub egress_allow_http: bool,
    /// The operator's CA file (PEM) and its certificates, trusted besides the
    /// bundled web PKI roots for plugins' outbound HTTPS.
    pub tls_ca_file: Option<PathBuf>,
    pub tls_ca_certs: Vec<tenantry_tls::rustls::pki_types::CertificateDer<'static>>,
    /// Addresses that may scrape `/metrics` without an operator key (default none).
    pub metrics_allow_cidrs: Vec<ipnet::IpNet>,
    /// Pooled mode: PostgreSQL URL of the application role. `None` = embedded store.
    pub database_url: Option<String>,
    /// Connections the pooled store may open.
    pub database_max_connections: u32,
    /// Shared rate-limit, concurrency and quota state for several nodes.
    pub redis_url: Option<String>,
    /// Where compiled plugins (and the script engine) are kept across restarts:
    /// wasmtime's cache, keyed by the wasm's hash and the compiler's settings.
    pub compile_cache_dir: PathBuf,
    /// Every known tier: the built-in ones, changed or joined by `[tiers.*]`.
    pub tiers: BTreeMap<String, Tier>,
    /// The tier of a new org when none is named.
    pub default_tier: String,
    /// Pilot guardrails (`[pilot]`): org cap, plugin list, connector list.
    pub pilot: tenantry_core::pilot::PilotPolicy,
    /// The longest a break-glass grant may stay open (default 4 hours).
    pub breakglass_max_ttl_minutes: u32,
    /// A break-glass grant works only once a second operator approved it.
    pub breakglass_approval: bool,
    /// The audit key (signs audit checkpoints) as its text form, from
    /// `TENANTRY_AUDIT_KEY`; wins over the file.
    pub audit_key: Option<String>,
    /// The audit key file; `<data_dir>/audit.key` by default.
    pub audit_key_file: Option<PathBuf>,
    /// Seconds between checkpoints of the trails that grew (default 3600; 0: only on
    /// demand).
    pub audit_checkpoint_seconds: u32,
    /// Audit keys used before the current one (their checkpoints still verify).
    pub retired_audit_keys: Vec<tenantry_crypto::PublicKey>,
    /// A TLS-terminating proxy is in front of a listener beyond loopback (the
    /// operator says so; `tenantry doctor` takes their word).
    pub behind_tls_proxy: bool,
}

/// What the TOML file may contain. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub master_key_file: Option<PathBuf>,
    /// The key vault: each org's key-encryption key, destroyed when the org is
    /// deleted. Keep it outside the data directory's backups. Default: beside
    /// `master_key_file` (`org-keys/`), else `<data_dir>/org-keys`; in pooled mode
    /// none unless set (every node must see the same folder).
    pub key_vault_dir: Option<PathBuf>,
    /// While rotating the master key: the old key's file. The server then reads
    /// what either key sealed and writes with `master_key_file` only (which must
    /// exist: it is not created while this is set). Remove it once
    /// `tenantry admin rotate-master-key` reports nothing remaining.
    pub previous_master_key_file: Option<PathBuf>,
    pub max_artifact_bytes: Option<u64>,
    pub log_format: Option<String>,
    /// e.g. `["10.20.0.0/16"]` to let plugins reach an internal API.
    pub egress_allow_cidrs: Option<Vec<String>>,
    /// Let plugins send plain `http://` requests (default false: HTTPS only, so a
    /// token a plugin sends never crosses the network in the clear). For internal
    /// APIs without TLS and loopback test setups.
    pub egress_allow_http: Option<bool>,
    /// A PEM file of CA certificates trusted besides the bundled web PKI roots for
    /// plugins' outbound HTTPS (a private CA of internal APIs).
    pub tls_ca_file: Option<PathBuf>,
    /// e.g. `["127.0.0.1/32"]` for a Prometheus on this host: scrapes from these
    /// addresses need no operator key.
    pub metrics_allow_cidrs: Option<Vec<String>>,
    pub database_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub redis_url: Option<String>,
    /// Compiled plugins kept across restarts (default `<data_dir>/compile-cache`).
    /// Its files are native code the server runs: keep the folder as private as the
    /// data directory.
    pub compile_cache_dir: Option<PathBuf>,
    pub default_tier: Option<String>,
    #[serde(default)]
    pub tiers: BTreeMap<String, FileTier>,
    /// ```toml
    /// [pilot]
    /// max_orgs = 5
    /// plugins = ["@examples/*", "@acme/github"]
    /// egress = ["api.github.com", "*.slack.com"]
    /// ```
    #[serde(default)]
    pub pilot: tenantry_core::pilot::PilotPolicy,
    /// The longest a break-glass grant may stay open, 1-10080 minutes (default 240).
    pub breakglass_max_ttl_minutes: Option<u32>,
    /// `true`: a break-glass grant works only once another operator key than the one
    /// that opened it approves it (`tenantry breakglass approve`). Default `false`.
    pub breakglass_approval: Option<bool>,
    /// Where the audit key (ed25519, signs audit checkpoints) is kept; created on
    /// first start. Default `<data_dir>/audit.key`.
    pub audit_key_file: Option<PathBuf>,
    /// Seconds between checkpoints of the audit trails that grew (default 3600; 0:
    /// only on demand).
    pub audit_checkpoint_seconds: Option<u32>,
    /// After replacing the audit key: the public keys (`ed25519:…`, as checkpoint
    /// entries show them) of the keys used before, so their checkpoints still
    /// verify. They sign nothing new.
    pub retired_audit_keys: Option<Vec<String>>,
    /// Set when a TLS-terminating proxy is in front of a listener beyond loopback
    /// (Tenantry serves plain HTTP).
    pub behind_tls_proxy: Option<bool>,
}

/// Values given on the command line or in the environment (clap fills both).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub master_key: Option<String>,
    pub audit_key: Option<String>,
    pub log_format: Option<String>,
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// `TENANTRY_COMPILE_CACHE_DIR`.
    pub compile_cache_dir: Option<PathBuf>,
}

impl Config {
    /// The key vault folder: `key_vault_dir` if set; in pooled mode none otherwise
    /// (nodes keep their own folders, and a node must open every org's key); else
    /// `org-keys/` beside the master key file, or in the data directory.
    pub fn key_vault_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.key_vault_dir {
            return Some(dir.clone());
        }
        if self.database_url.is_some() {
            return None;
        }
        let beside = self
            .master_key_file
            .as_deref()
            .and_then(std::path::Path::parent)
            .unwrap_or(&self.data_dir);
        Some(beside.join("org-keys"))
    }

    /// Resolves the effective configuration.
    pub fn resolve(o: Overrides, stderr_is_terminal: bool) -> Result<Self, ConfigError> {
        let file = match &o.config_file {
            Some(p) => read_file(p)?,
            None if Path::new("tenantry.toml").exists() => read_file(Path::new("tenantry.toml"))?,
            None => FileConfig::default(),
        };
        let listen_text = o
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text
            .parse()
            .map_err(|_| ConfigError::Listen(listen_text.clone()))?;
        let log_format = o.log_format.or(file.log_format);
        let log_json = match log_format.as_deref() {
            Some("json") => true,
            Some("human") => false,
            Some(other) => return Err(ConfigError::LogFormat(other.to_string())),
            None => !stderr_is_terminal,
        };
        let egress_allow_cidrs = cidrs("egress_allow_cidrs", file.egress_allow_cidrs)?;
        let metrics_allow_cidrs = cidrs("metrics_allow_cidrs", file.metrics_allow_cidrs)?;
        let tls_ca_certs = match &file.tls_ca_file {
            Some(path) => {
                tenantry_tls::read_ca_file(path).map_err(|e| ConfigError::Setting(e.to_string()))?
            }
            None => Vec::new(),
        };
        let tiers = resolve_tiers(file.tiers)?;
        let default_tier = file.default_tier.unwrap_or_else(|| "free".into());
        if !tiers.contains_key(&default_tier) {
            return Err(ConfigError::Tier(
                default_tier,
                "default_tier names no known tier".into(),
            ));
        }
        file.pilot
            .validate()
            .map_err(|e| ConfigError::Setting(e.message))?;
        let breakglass_max_ttl_minutes = file.breakglass_max_ttl_minutes.unwrap_or(240);
        if !(1..=10_080).contains(&breakglass_max_ttl_minutes) {
            return Err(ConfigError::Setting(format!(
                "breakglass_max_ttl_minutes must be 1-10080 (a week), not {breakglass_max_ttl_minutes}"
            )));
        }
        let retired_audit_keys = file
            .retired_audit_keys
            .unwrap_or_default()
            .iter()
            .map(|k| {
                k.parse::<tenantry_crypto::PublicKey>().map_err(|e| {
                    ConfigError::Setting(format!(
                        "retired_audit_keys: '{}' is not an audit public key ({e}); copy the `key` of a checkpoint it signed (ed25519:…)",
                        tenantry_core::error::clip(k)
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let data_dir = o
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let compile_cache_dir = o
            .compile_cache_dir
            .or(file.compile_cache_dir)
            .unwrap_or_else(|| data_dir.join("compile-cache"));
        Ok(Self {
            tiers,
            default_tier,
            pilot: file.pilot,
            breakglass_max_ttl_minutes,
            breakglass_approval: file.breakglass_approval.unwrap_or(false),
            audit_key: o.audit_key,
            audit_key_file: file.audit_key_file,
            audit_checkpoint_seconds: file.audit_checkpoint_seconds.unwrap_or(3600),
            retired_audit_keys,
            behind_tls_proxy: file.behind_tls_proxy.unwrap_or(false),
            egress_allow_cidrs,
            egress_allow_http: file.egress_allow_http.unwrap_or(false),
            tls_ca_file: file.tls_ca_file,
            tls_ca_certs,
            metrics_allow_cidrs,
            listen,
            data_dir,
            master_key: o.master_key,
            master_key_file: file.master_key_file,
            key_vault_dir: file.key_vault_dir,
            previous_master_key_file: file.previous_master_key_file,
            max_artifact_bytes: file.max_artifact_bytes.unwrap_or(10 * 1024 * 1024),
            log_json,
            database_url: o.database_url.or(file.database_url),
            database_max_connections: file.database_max_connections.unwrap_or(16),
            redis_url: o.redis_url.or(file.redis_url),
            compile_cache_dir,
        })
    }
}

fn cidrs(key: &'static str, list: Option<Vec<String>>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list.unwrap_or_default()
        .iter()
        .map(|c| c.parse().map_err(|_| ConfigError::Cidr(key, c.clone())))
        .collect()
}

/// The built-in tiers, then each `[tiers.NAME]` applied on its base.
fn resolve_tiers(file: BTreeMap<String, FileTier>) -> Result<BTreeMap<String, Tier>, ConfigError> {
    let mut tiers: BTreeMap<String, Tier> = [Tier::free(), Tier::starter(), Tier::enterprise()]
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    for (name, t) in file {
        let base_name = t.base.clone().unwrap_or_else(|| {
            if Tier::builtin(&name).is_some() {
                name.clone()
            } else {
                "free".into()
            }
        });
        let base = Tier::builtin(&base_name).ok_or_else(|| {
            ConfigError::Tier(
                name.clone(),
                format!("base '{base_name}' is not a built-in tier (free, starter, enterprise)"),
            )
        })?;
        t.limits
            .validate()
            .map_err(|e| ConfigError::Tier(name.clone(), e))?;
        let mut tier = t.limits.apply(base);
        tier.name = name.clone();
        tiers.insert(name, tier);
    }
    Ok(tiers)
}

fn read_file(p: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.to_path_buf(), e))?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse(p.to_path_buf(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves with only the given overrides, from an empty directory's point of
    /// view (an explicit empty config file, so no `tenantry.toml` is picked up).
    fn resolve(o: Overrides, file: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenantry.toml");
        std::fs::write(&path, file).unwrap();
        Config::resolve(
            Overrides {
                config_file: Some(path),
                ..o
            },
            true,
        )
    }

    fn with_log_format(f: &str) -> Overrides {
        Overrides {
            log_format: Some(f.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_misspelt_log_format_is_refused_not_silently_human() {
        for bad in ["jsno", "JSON", "text", ""] {
            match resolve(with_log_format(bad), "") {
                Err(e @ ConfigError::LogFormat(_)) => {
                    let msg = e.to_string();
                    assert!(msg.contains("'json' or 'human'"), "{msg}");
                }
                other => panic!("{bad:?}: expected LogFormat, got {other:?}"),
            }
        }
        assert!(matches!(
            resolve(Overrides::default(), "log_format = \"yaml\"\n"),
            Err(ConfigError::LogFormat(f)) if f == "yaml"
        ));
    }

    #[test]
    fn json_and_human_log_formats_are_accepted() {
        assert!(resolve(with_log_format("json"), "").unwrap().log_json);
        assert!(!resolve(with_log_format("human"), "").unwrap().log_json);
        assert!(
            resolve(Overrides::default(), "log_format = \"json\"\n")
                .unwrap()
                .log_json
        );
        // Unset: JSON unless stderr is a terminal (`resolve` above says it is).
        assert!(!resolve(Overrides::default(), "").unwrap().log_json);
    }
}
