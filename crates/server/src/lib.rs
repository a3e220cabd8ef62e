//! `tenantry-server`: assembles a running server from configuration.
//!
//! [`Config`] comes from a TOML file, `TENANTRY_*` environment variables and flags
//! (flags win, then environment, then file, then defaults). [`Server::open`] prepares
//! the data directory, the master key and the stores; [`Server::serve`] runs the HTTP
//! API until SIGINT/SIGTERM. It must not contain domain logic.

pub mod config;
pub mod doctor;

pub use config::{Config, ConfigError};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tenantry_api::AppState;
use tenantry_crypto::{MasterKey, SecretValue};
use tenantry_runtime::{GuestPool, Runtime, RuntimeConfig};
use tenantry_service::limits::Limiters;
use tenantry_service::{ArtifactStore, Service, Settings};
use tenantry_store::{BlobStore, ControlStore, TenantStore};
use tenantry_store_postgres::{PgStores, RlsMode};
use tenantry_store_sqlite::{FileBlobs, SqliteControl, SqliteTenants};

/// Why the server could not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {0}: {1}; pass --data-dir to a writable folder")]
    DataDir(PathBuf, std::io::Error),
    #[error(
        "data directory {dir} is in use by another tenantry process (PID {pid}); stop it, or pass --data-dir to another directory"
    )]
    Locked { dir: PathBuf, pid: String },
    #[error("cannot lock data directory {0}: {1}; pass --data-dir to a writable local folder")]
    Lock(PathBuf, std::io::Error),
    #[error("master key: {0}")]
    MasterKey(String),
    #[error(
        "audit key: {0}; fix the key (its file must be mode 0600), or remove the file to create a new one (older checkpoints then no longer verify)"
    )]
    AuditKey(String),
    #[error(
        "key vault {0}: {1}; make the folder writable by this user only, or set key_vault_dir in tenantry.toml"
    )]
    KeyVault(PathBuf, String),
    #[error("storage: {0}")]
    Store(String),
    #[error("cannot listen on {0}: {1}; pass --listen with a free ADDR:PORT")]
    Listen(SocketAddr, std::io::Error),
    #[error("sandbox runtime: {0}")]
    Runtime(String),
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("redis: {0}; check --redis-url (e.g. redis://127.0.0.1:6379)")]
    Redis(String),
}

/// A prepared server: stores open, keys loaded.
pub struct Server {
    pub config: Config,
    pub service: Service,
    /// Set when this start created the master key file.
    pub master_key_created: Option<PathBuf>,
    /// Which store this server runs on, for logs and `/v1/system`.
    pub storage: String,
    /// The exclusive lock on the data directory, released when the server is dropped
    /// (or the process exits).
    _lock: DataDirLock,
}

/// The name of the lock file in a data directory; it holds the PID of the holder.
pub const LOCK_FILE: &str = "tenantry.lock";

/// An exclusive advisory lock (`flock`) on `<data dir>/tenantry.lock`, so that two
/// servers never share a data directory (its SQLite files, artifacts and master
/// key). The lock goes with the process: a crash releases it.
struct DataDirLock {
    _file: std::fs::File,
}

fn lock_data_dir(dir: &Path) -> Result<DataDirLock, StartError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let err = |e| StartError::Lock(path.clone(), e);
    // Not truncated on open: the holder's PID must survive a refused second start.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(StartError::Locked {
                dir: dir.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_string()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_all())
        .map_err(err)?;
    Ok(DataDirLock { _file: file })
}

struct Stores {
    control: Arc<dyn ControlStore>,
    tenants: Arc<dyn TenantStore>,
    blobs: Arc<dyn BlobStore>,
    description: String,
}

/// The embedded store by default; the pooled store when a database URL is set.
async fn open_stores(config: &Config) -> Result<Stores, StartError> {
    let store_err = |e: tenantry_store::StoreError| StartError::Store(e.to_string());
    if let Some(url) = &config.database_url {
        let pg = PgStores::connect(url, config.database_max_connections)
            .await
            .map_err(|e| StartError::Store(e.to_string()))?;
        if pg.mode() != RlsMode::Strict {
            tracing::warn!(
                mode = pg.mode().as_str(),
                "row-level security is not strict; migrate with `tenantry migrate` to enforce it"
            );
        }
        let control = pg.control();
        return Ok(Stores {
            description: format!(
                "pooled: PostgreSQL, row-level security {}",
                pg.mode().as_str()
            ),
            blobs: Arc::new(control.clone()),
            control: Arc::new(control),
            tenants: Arc::new(pg.tenants()),
        });
    }
    let data = &config.data_dir;
    Ok(Stores {
        control: Arc::new(SqliteControl::open(data).await.map_err(store_err)?),
        tenants: Arc::new(SqliteTenants::open(data).await.map_err(store_err)?),
        blobs: Arc::new(FileBlobs::new(data)),
        description: "embedded: one SQLite file per org".into(),
    })
}

impl Server {
    /// Prepares the data directory, master key and stores.
    pub async fn open(config: Config) -> Result<Self, StartError> {
        let data = config.data_dir.clone();
        create_private_dir(&data).map_err(|e| StartError::DataDir(data.clone(), e))?;
        // Before anything in it is read or written (the master key too, which the
        // data directory holds in pooled mode as well).
        let lock = lock_data_dir(&data)?;
        let (master_key, created) = load_master_key(&config)?;
        let previous_master_key = load_previous_master_key(&config, &master_key)?;
        let audit_key = load_audit_key(&config)?;
        let stores = open_stores(&config).await?;
        // The operator's own audit trail is kept as the trail of the nil org id.
        stores
            .tenants
            .create_tenant(tenantry_core::scope::OPERATOR_LOG)
            .await
            .map_err(|e| StartError::Store(e.to_string()))?;
        let mut runtime_config = RuntimeConfig::default();
        runtime_config.egress.allow_cidrs = config.egress_allow_cidrs.clone();
        runtime_config.egress.allow_http = config.egress_allow_http;
        runtime_config.egress.ca_certs = config.tls_ca_certs.clone();
        runtime_config.egress.connectors = config.pilot.egress.clone();
        // The sandbox's memory ceiling covers the largest tier (custom tiers may
        // grant more than the built-in 256 MiB; config validation caps them at 4 GiB).
        runtime_config.max_memory_bytes = config
            .tiers
            .values()
            .map(|t| t.memory_bytes)
            .fold(runtime_config.max_memory_bytes, u64::max);
        // Guest code runs on its own threads, never on the threads that serve
        // requests; past a 1 ms quantum, at idle priority (ARCHITECTURE.md,
        // invariants).
        runtime_config.guest_pool = Some(GuestPool::for_this_machine());
        create_private_dir(&config.compile_cache_dir)
            .map_err(|e| StartError::DataDir(config.compile_cache_dir.clone(), e))?;
        runtime_config.compile_cache_dir = Some(config.compile_cache_dir.clone());
        let runtime =
            Runtime::new(runtime_config).map_err(|e| StartError::Runtime(e.to_string()))?;
        let service = Service::new(
            stores.control,
            stores.tenants,
            Arc::new(master_key),
            ArtifactStore::new(stores.blobs),
            Settings {
                max_artifact_bytes: config.max_artifact_bytes,
                default_tier: config.default_tier.clone(),
                tiers: config.tiers.clone(),
                pilot: config.pilot.clone(),
                breakglass_max_ttl: time::Duration::minutes(
                    config.breakglass_max_ttl_minutes.into(),
                ),
                breakglass_approval: config.breakglass_approval,
            },
            runtime,
        );
        let service = service
            .with_audit_key(audit_key)
            .with_retired_audit_keys(config.retired_audit_keys.clone());
        let service = match previous_master_key {
            Some(key) => service.with_previous_master_key(key),
            None => service,
        };
        let service = match config.key_vault_dir() {
            Some(dir) => service.with_key_vault(
                tenantry_crypto::KeyVault::open(&dir)
                    .map_err(|e| StartError::KeyVault(dir.clone(), e.to_string()))?,
            ),
            None => service,
        };
        let service = match &config.redis_url {
            Some(url) => {
                // `tls_ca_file` was read and checked when the config was loaded.
                let ca_pem = config
                    .tls_ca_file
                    .as_ref()
                    .map(std::fs::read)
                    .transpose()
                    .map_err(|e| StartError::Redis(format!("tls_ca_file: {e}")))?;
                service.with_limiters(
                    Limiters::redis(url, ca_pem).map_err(|e| StartError::Redis(e.to_string()))?,
                )
            }
            None => service,
        };
        Ok(Self {
            config,
            service,
            master_key_created: created,
            storage: stores.description,
            _lock: lock,
        })
    }

    /// Creates the first operator key if none exists (shown once).
    pub async fn bootstrap_operator(&self) -> Result<Option<SecretValue>, StartError> {
        tenantry_service::orgs::bootstrap_operator(&self.service)
            .await
            .map_err(|e| StartError::Store(e.to_string()))
    }

    /// The axum router of this server.
    pub fn router(&self) -> axum::Router {
        let isolation = serde_json::json!({
            "storage": self.storage,
            "secrets": "envelope encryption (XChaCha20-Poly1305, per-org keys)",
            "tenant_scope": "enforced by types",
            "sandbox": "wasmtime component, fresh instance per invocation, fuel + epoch + memory limits",
            "egress": "allow-list per install, checked on resolved IPs",
        });
        tenantry_api::router(AppState {
            svc: Arc::new(self.service.clone()),
            isolation: Arc::new(isolation),
            metrics_from: Arc::new(self.config.metrics_allow_cidrs.clone()),
        })
    }

    /// Binds the listener (so callers learn the port before serving).
    pub async fn bind(&self) -> Result<tokio::net::TcpListener, StartError> {
        tokio::net::TcpListener::bind(self.config.listen)
            .await
            .map_err(|e| StartError::Listen(self.config.listen, e))
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        // Compiled now rather than by the first script (seconds, or a read of the
        // compile cache after a restart).
        tenantry_service::executions::warm_engine(&self.service);
        let seconds = self.config.audit_checkpoint_seconds;
        if seconds > 0 {
            let svc = self.service.clone();
            tokio::spawn(async move {
                let every = std::time::Duration::from_secs(seconds.into());
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    let n = tenantry_service::audit::checkpoint_changed(&svc).await;
                    tracing::debug!(checkpoints = n, "audit checkpoints written");
                }
            });
        }
        let app = self.router();
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await;
        // Write every pending usage and audit record before exiting.
        self.service.recorder.shutdown().await;
        served
    }
}

/// The key that signs audit checkpoints: `TENANTRY_AUDIT_KEY`, else the key file
/// (created on first start). Separate from the master key: whoever holds it can
/// sign checkpoints, not decrypt secrets, and the other way round.
fn load_audit_key(config: &Config) -> Result<tenantry_crypto::SigningKeyPair, StartError> {
    let bad = StartError::AuditKey;
    if let Some(text) = &config.audit_key {
        return tenantry_crypto::SigningKeyPair::from_text(text)
            .map_err(|e| bad(format!("TENANTRY_AUDIT_KEY: {e}")));
    }
    let path = config
        .audit_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("audit.key"));
    tenantry_crypto::SigningKeyPair::load_or_create(&path)
        .map(|(key, _)| key)
        .map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// The master key being retired, if a rotation runs; it must differ from the
/// current one.
fn load_previous_master_key(
    config: &Config,
    current: &MasterKey,
) -> Result<Option<MasterKey>, StartError> {
    let Some(path) = &config.previous_master_key_file else {
        return Ok(None);
    };
    let key = MasterKey::load(path).map_err(|e| {
        StartError::MasterKey(format!("previous_master_key_file {}: {e}", path.display()))
    })?;
    if key.same_as(current) {
        return Err(StartError::MasterKey(format!(
            "previous_master_key_file {} holds the current master key: point master_key_file at the new key",
            path.display()
        )));
    }
    Ok(Some(key))
}

fn load_master_key(config: &Config) -> Result<(MasterKey, Option<PathBuf>), StartError> {
    if let Some(text) = &config.master_key {
        let key = MasterKey::from_base64(text).map_err(|e| {
            StartError::MasterKey(format!(
                "TENANTRY_MASTER_KEY is not a base64 32-byte key: {e}"
            ))
        })?;
        return Ok((key, None));
    }
    let path = config
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("master.key"));
    if config.previous_master_key_file.is_some() {
        // Never a fresh key in the middle of a rotation: another node would make its own.
        let key = MasterKey::load(&path).map_err(|e| {
            StartError::MasterKey(format!(
                "{}: {e}; while previous_master_key_file is set the new key must already exist (create it once with `tenantry admin new-master-key --output PATH` and copy it to every node)",
                path.display()
            ))
        })?;
        return Ok((key, None));
    }
    let (key, created) = MasterKey::load_or_create(&path)
        .map_err(|e| StartError::MasterKey(format!("{}: {e}", path.display())))?;
    Ok((key, created.then_some(path)))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Installs the global tracing subscriber: JSON when `json` (production, pipes),
/// human-readable otherwise. `RUST_LOG` filters (default `info`).
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
