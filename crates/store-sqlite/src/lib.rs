//! `tenantry-store-sqlite`: the embedded (siloed) store, the zero-setup default.
//!
//! Layout under the data directory:
//! - `control.db`: registry, orgs, operator keys, API key index ([`SqliteControl`]);
//! - `artifacts/sha256/<hex>.wasm`: artifact bytes ([`FileBlobs`]);
//! - `tenants/<org-id>.db`: one file per org ([`SqliteTenants`]). The file name is the
//!   canonical form of a validated [`OrgId`], never a user string, and a tenant file
//!   is opened only for a [`TenantScope`] of that org.
//!
//! All files use WAL with `synchronous=NORMAL`: a committed transaction survives a
//! process crash (`kill -9`); a power loss may lose the last transactions. Writes
//! take the lock up front (`BEGIN IMMEDIATE`) so validate-then-write is atomic.

mod blobs;
mod control;
mod hot;
mod journal;
mod rows;
mod tenant;

pub use blobs::FileBlobs;
pub use control::SqliteControl;
pub use tenant::SqliteTenants;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;
use tenantry_store::StoreError;

/// Locks a mutex guarding in-memory state of this crate. Every such state stays
/// consistent at each step (copies, counters, open pools), so a lock poisoned by a
/// panicking holder is used as is rather than failing every later request.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Maps a driver error: unique violations become `Conflict`, the rest `Backend`.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    if let Some(d) = e.as_database_error()
        && d.is_unique_violation()
    {
        return StoreError::Conflict("already exists".into());
    }
    StoreError::Backend(e.to_string())
}

/// How much memory one connection may hold: the control file's are few and busy;
/// tenant files are many (up to `MAX_OPEN_TENANTS` open) and small, and what their
/// requests read every time is kept in memory anyway (`hot`).
#[derive(Clone, Copy)]
pub(crate) enum Footprint {
    Control,
    Tenant,
}

/// Opens one SQLite file with Tenantry's settings.
pub(crate) async fn open_pool(
    path: &Path,
    create: bool,
    max_connections: u32,
    footprint: Footprint,
) -> Result<SqlitePool, sqlx::Error> {
    let mut opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    if let Footprint::Tenant = footprint {
        // Page cache of at most 128 KiB (SQLite's default is 2 MiB) and 24 prepared
        // statements (sqlx's default is 100).
        opts = opts
            .pragma("cache_size", "-128")
            .statement_cache_capacity(24);
    }
    // Each connection is a thread and ~250 KiB; a tenant pool's second connection
    // (needed only while a read and a write of one org overlap) closes soon.
    let idle = match footprint {
        Footprint::Control => Duration::from_secs(60),
        Footprint::Tenant => Duration::from_secs(5),
    };
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        // A connection to a local file cannot go stale, and sqlx's check before
        // each acquire is one more round trip to the connection's worker thread
        // (two context switches) on every transaction.
        .test_before_acquire(false)
        .min_connections(0)
        .idle_timeout(Some(idle))
        .connect_with(opts)
        .await
}
