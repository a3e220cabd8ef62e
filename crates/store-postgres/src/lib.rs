//! `tenantry-store-postgres`: the pooled store, many orgs in one PostgreSQL.
//!
//! Isolation is enforced by the database: every tenant table has `org_id` at the
//! front of every key, row-level security is enabled and forced, and each
//! transaction's tenant context is set with `SET LOCAL` in the same round trip as its
//! `BEGIN` ([`tenant::Context`]). Queries still filter on `org_id` explicitly; RLS is
//! the safety net that makes a forgotten filter return zero rows.
//!
//! Roles: the schema is owned by the role that runs [`migrate`]; the server connects
//! as an application role that owns nothing and cannot bypass RLS, which
//! [`PgStores::connect`] checks before serving. [`migrate`] runs the schema
//! migrations (`migrations/`, forward only), then puts the database in an RLS mode
//! ([`RlsMode`], `rls/`): modes are not schema versions, so a later schema change is
//! never undone by switching modes, and switching never touches data.
//!
//! This crate must not depend on HTTP, crypto or the service layer.

mod control;
mod kept;
mod rows;
pub mod tenant;
pub mod testing;

pub use control::PgControl;
use kept::Kept;
pub use tenant::PgTenants;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool, Row};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tenantry_store::StoreError;

/// The schema's migrations (tables, functions, the `rls_mode` row). RLS modes are
/// applied after them (the scripts in `rls/`), so schema versions grow on their own.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Versions 2 and 3 once were the shadow and strict modes. A database migrated then
/// has them in `_sqlx_migrations`; [`migrate`] forgets them (by these descriptions
/// only, so later schema migrations with the same numbers are never touched) and
/// keeps the database's mode.
const OLD_MODE_MIGRATIONS: [&str; 2] = ["rls shadow", "rls strict"];

/// Maps a driver error: unique violations become `Conflict`, the rest `Backend`.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    if let Some(d) = e.as_database_error()
        && d.is_unique_violation()
    {
        return StoreError::Conflict("already exists".into());
    }
    StoreError::Backend(e.to_string())
}

/// How row-level security treats rows outside the transaction's tenant context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RlsMode {
    /// No policies: isolation rests on the explicit `WHERE org_id = $1` alone.
    Off,
    /// Policies allow such rows but record each in `rls_violations`.
    Shadow,
    /// Policies hide such rows and refuse such writes; no context is an error.
    Strict,
}

impl RlsMode {
    pub const ALL: [RlsMode; 3] = [RlsMode::Off, RlsMode::Shadow, RlsMode::Strict];

    /// The script that puts a database in this mode from any mode: run after
    /// `rls/clear.sql`, in the same transaction.
    fn sql(self) -> &'static str {
        match self {
            RlsMode::Off => include_str!("../rls/off.sql"),
            RlsMode::Shadow => include_str!("../rls/shadow.sql"),
            RlsMode::Strict => include_str!("../rls/strict.sql"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RlsMode::Off => "off",
            RlsMode::Shadow => "shadow",
            RlsMode::Strict => "strict",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Why the pooled store could not be opened or migrated. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL: {0}; check --database-url and that the server is up")]
    Connect(String),
    #[error(
        "the database role '{role}' can bypass row-level security ({why}); connect the server \
         as the application role created by `tenantry migrate` (not the schema owner, not a \
         superuser, no BYPASSRLS)"
    )]
    UnsafeRole { role: String, why: String },
    #[error(
        "the database has no Tenantry schema (or an older one); run `tenantry migrate \
         --database-url <owner url>` first"
    )]
    NotMigrated,
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error("invalid role name '{0}': use lowercase letters, digits and '_' (max 63)")]
    RoleName(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

fn options(url: &str) -> Result<PgConnectOptions, PgError> {
    PgConnectOptions::from_str(url).map_err(|e| PgError::Connect(e.to_string()))
}

/// The pooled stores, sharing one connection pool.
#[derive(Clone)]
pub struct PgStores {
    pool: PgPool,
    mode: RlsMode,
    /// Rows kept in memory, shared by the control and tenant stores.
    kept: Arc<Kept>,
}

impl PgStores {
    /// Connects as the application role, refusing a role that could bypass RLS or a
    /// database that was not migrated. Connections are reset (`RESET ALL`) when they
    /// return to the pool, so no session setting survives a checkout (the tenant
    /// context is only ever set with `SET LOCAL`; this is the net behind a bug that
    /// set it for the session). The reset runs after the request has its answer.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, PgError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("RESET ALL").await?;
                    Ok(true)
                })
            })
            .connect_with(options(url)?)
            .await
            .map_err(|e| PgError::Connect(e.to_string()))?;
        check_role(&pool).await?;
        let mode = current_mode(&pool).await?;
        Ok(Self {
            pool,
            mode,
            kept: Arc::default(),
        })
    }

    pub fn control(&self) -> PgControl {
        PgControl {
            pool: self.pool.clone(),
            kept: self.kept.clone(),
        }
    }

    pub fn tenants(&self) -> PgTenants {
        PgTenants {
            pool: self.pool.clone(),
            kept: self.kept.clone(),
        }
    }

    /// The RLS mode the schema was in when the pool opened.
    pub fn mode(&self) -> RlsMode {
        self.mode
    }

    /// The pool, for tests and benchmarks that probe the database directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Refuses a role that is a superuser, has `BYPASSRLS`, or owns (or may become the
/// owner of) a Tenantry table: each of those would bypass row-level security.
async fn check_role(pool: &PgPool) -> Result<(), PgError> {
    let row = sqlx::query(
        "SELECT current_user::text AS role, r.rolsuper, r.rolbypassrls, \
         (SELECT string_agg(c.relname, ', ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname = 'public' AND c.relkind = 'r' AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owns \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    let role: String = row.try_get("role")?;
    let why = if row.try_get::<bool, _>("rolsuper")? {
        Some("superuser".to_string())
    } else if row.try_get::<bool, _>("rolbypassrls")? {
        Some("BYPASSRLS".to_string())
    } else {
        row.try_get::<Option<String>, _>("owns")?
            .map(|t| format!("owns or may act as the owner of: {t}"))
    };
    match why {
        Some(why) => Err(PgError::UnsafeRole { role, why }),
        None => Ok(()),
    }
}

/// The database's RLS mode; `NotMigrated` unless the schema has what the newest
/// migration added (`api_keys.breakglass_pending`, migration 0011) too.
async fn current_mode(pool: &PgPool) -> Result<RlsMode, PgError> {
    let mode: Option<String> = sqlx::query_scalar(
        "SELECT mode FROM rls_mode WHERE EXISTS (SELECT 1 FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = 'api_keys' \
         AND column_name = 'breakglass_pending')",
    )
    .fetch_optional(pool)
    .await
    .map_err(|_| PgError::NotMigrated)?;
    mode.as_deref()
        .and_then(RlsMode::parse)
        .ok_or(PgError::NotMigrated)
}

/// What [`migrate`] did.
#[derive(Debug, Clone)]
pub struct MigrateReport {
    pub from: Option<RlsMode>,
    pub to: RlsMode,
    pub app_role: String,
}

/// Migrates the schema (connected as its owner) to the newest version, puts it in
/// the RLS mode `target` (when `None`: the mode it is in, or strict for a new
/// database) in one transaction, then creates the application role if it is missing
/// (it needs `CREATEROLE` for that) and grants it exactly what the server needs.
/// Data is never dropped when moving between RLS modes.
pub async fn migrate(
    owner_url: &str,
    target: Option<RlsMode>,
    app_role: &str,
) -> Result<MigrateReport, PgError> {
    if !valid_role_name(app_role) {
        return Err(PgError::RoleName(app_role.to_string()));
    }
    let mut conn = PgConnection::connect_with(&options(owner_url)?)
        .await
        .map_err(|e| PgError::Connect(e.to_string()))?;
    let from: Option<RlsMode> = sqlx::query_scalar::<_, String>("SELECT mode FROM rls_mode")
        .fetch_optional(&mut conn)
        .await
        .ok()
        .flatten()
        .and_then(|m| RlsMode::parse(&m));
    forget_old_mode_migrations(&mut conn).await?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| PgError::Migrate(e.to_string()))?;
    let to = target.or(from).unwrap_or(RlsMode::Strict);
    // The mode and the grants in one transaction. Two `migrate` runs at once take
    // turns (catalog updates from concurrent ALTER TABLE and GRANT would otherwise
    // fail with "tuple concurrently updated"); the migrator above locks likewise.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenantry rls mode'))")
        .execute(&mut *tx)
        .await?;
    tx.execute(include_str!("../rls/clear.sql")).await?;
    tx.execute(to.sql()).await?;
    grant_app_role(&mut tx, app_role).await?;
    tx.commit().await?;
    conn.close().await?;
    Ok(MigrateReport {
        from,
        to,
        app_role: app_role.to_string(),
    })
}

/// Removes the records of the old mode migrations (see [`OLD_MODE_MIGRATIONS`]), if
/// the database has any, so the migrator does not refuse it for missing migrations.
async fn forget_old_mode_migrations(conn: &mut PgConnection) -> Result<(), PgError> {
    let tracked: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if tracked {
        sqlx::query(
            "DELETE FROM _sqlx_migrations WHERE version IN (2, 3) AND description = ANY($1)",
        )
        .bind(&OLD_MODE_MIGRATIONS[..])
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn valid_role_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Creates (if missing) and grants the application role. The name is validated to
/// `[a-z_][a-z0-9_]*`, so quoting it as an identifier is safe.
async fn grant_app_role(conn: &mut PgConnection, role: &str) -> Result<(), PgError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(&mut *conn)
            .await?;
    if !exists {
        // Two migrations racing to create the role: the loser sees duplicate_object.
        let create = format!(
            "DO $$ BEGIN CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOBYPASSRLS; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        );
        conn.execute(AssertSqlSafe(create)).await?;
    }
    let grants = format!(
        "GRANT USAGE ON SCHEMA public TO \"{role}\"; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON orgs, deleted_orgs, operator_keys, key_index, publishers, \
           publisher_keys, plugins, plugin_versions, reviews, artifacts, org_keys, users, agents, \
           api_keys, installs, secrets, bindings, kv, usage_events TO \"{role}\"; \
         GRANT SELECT, INSERT, UPDATE ON generations TO \"{role}\"; \
         GRANT SELECT, INSERT ON audit TO \"{role}\"; \
         GRANT SELECT ON rls_mode TO \"{role}\"; \
         GRANT EXECUTE ON FUNCTION tenantry_rls_violation(text, text, uuid) TO \"{role}\"; \
         GRANT EXECUTE ON FUNCTION tenantry_append_records TO \"{role}\"; \
         GRANT EXECUTE ON FUNCTION tenantry_erase_org(uuid) TO \"{role}\""
    );
    conn.execute(AssertSqlSafe(grants)).await?;
    Ok(())
}
