//! Throwaway databases for tests and benchmarks: each [`TestDb`] is a new database
//! and a new application role on the test PostgreSQL
//! ([`tenantry_test_services::postgres_admin_url`]: `TENANTRY_TEST_DATABASE_URL`, else
//! the local server as `postgres`, else a throwaway server of its own), dropped again
//! when the value drops. Not for production use.

use sqlx::{Connection, Executor, PgConnection};

/// Every table an org owns (each has `org_id` first in its key and row-level
/// security); what an org's erasure must empty and what the RLS tests sweep.
pub const TENANT_TABLES: [&str; 10] = [
    "org_keys",
    "users",
    "agents",
    "api_keys",
    "installs",
    "secrets",
    "bindings",
    "kv",
    "usage_events",
    "audit",
];

/// The admin connection tests use to create databases and roles.
pub fn admin_url() -> String {
    tenantry_test_services::postgres_admin_url()
}

/// `url` with its database replaced.
fn with_db(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// `url` with its user (and password) replaced by `user` without a password.
fn with_user(url: &str, user: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let host_start = rest
        .find('@')
        .filter(|at| rest.find('/').is_none_or(|slash| at < &slash))
        .map_or(0, |at| at + 1);
    format!("{}{user}@{}", &url[..scheme_end], &rest[host_start..])
}

/// A fresh database (migrated or not) and application role.
pub struct TestDb {
    pub name: String,
    pub app_role: String,
    /// URL of the schema owner (the admin role) on the new database.
    pub owner_url: String,
    /// URL of the application role on the new database.
    pub app_url: String,
    admin: String,
}

impl TestDb {
    /// Creates an empty database. Panics with one line naming the variable to set if
    /// PostgreSQL cannot be reached.
    pub async fn create() -> TestDb {
        let admin = admin_url();
        let mut conn = match PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => panic!(
                "PostgreSQL not reachable at {admin} ({e}): start it or set TENANTRY_TEST_DATABASE_URL to an admin URL"
            ),
        };
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("tenantry_test_{suffix}");
        let app_role = format!("tenantry_app_{}", &suffix[..12]);
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE failed: {e}"));
        let _ = conn.close().await;
        let owner_url = with_db(&admin, &name);
        let app_url = with_user(&owner_url, &app_role);
        TestDb {
            name,
            app_role,
            owner_url,
            app_url,
            admin,
        }
    }

    /// Creates a database migrated to `mode`, with its application role granted.
    pub async fn migrated(mode: crate::RlsMode) -> TestDb {
        let db = Self::create().await;
        crate::migrate(&db.owner_url, Some(mode), &db.app_role)
            .await
            .unwrap_or_else(|e| panic!("migrate: {e}"));
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name, role) = (self.admin.clone(), self.name.clone(), self.app_role.clone());
        // Drop runs inside a tokio runtime in most tests; use a thread of our own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut c) = PgConnection::connect(&admin).await {
                    let _ = c
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    let _ = c
                        .execute(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten() {
        assert_eq!(
            with_db("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_db("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_db("postgres://h:5432", "x"), "postgres://h:5432/x");
        assert_eq!(
            with_user("postgres://u:p@h:1/db", "app"),
            "postgres://app@h:1/db"
        );
        assert_eq!(with_user("postgres://h/db", "app"), "postgres://app@h/db");
    }
}
