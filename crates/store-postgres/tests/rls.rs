//! Row-level security, probed at the SQL level as the application role, against a
//! real PostgreSQL (one fresh database per test; see `testing::TestDb`).
//!
//! Each `attack_*` test is one way a tenant (or a bug) could try to reach another
//! tenant's rows; every one must come back empty-handed or with an error.

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool, Postgres, Row, Transaction};
use tenantry_core::OrgId;
use tenantry_store_postgres::tenant::{Context, KeysScope};
use tenantry_store_postgres::testing::TENANT_TABLES;
use tenantry_store_postgres::testing::TestDb;
use tenantry_store_postgres::{PgError, PgStores, RlsMode};
use uuid::Uuid;

/// The tenant tables and an insert of one row for `org` in each (bypassing RLS as
/// the owner). Ids derive from the org so every test knows them.
struct Seed {
    a: Uuid,
    b: Uuid,
}

fn uid(org: Uuid, n: u8) -> Uuid {
    let mut b = *org.as_bytes();
    b[15] = n;
    Uuid::from_bytes(b)
}

async fn seed_org(c: &mut PgConnection, org: Uuid, name: &str) {
    let (user, agent, install, key, agent_key) = (
        uid(org, 1),
        uid(org, 2),
        uid(org, 3),
        uid(org, 4),
        uid(org, 5),
    );
    let sql = format!(
        "INSERT INTO org_keys VALUES ('{org}', 1, '\\x00', now());
         INSERT INTO users VALUES ('{org}', '{user}', '{name}-owner', 'owner', now());
         INSERT INTO agents VALUES ('{org}', '{agent}', '{name}-agent', '{user}', '[]', now());
         INSERT INTO api_keys VALUES ('{org}', '{key}', 'k', 'user', '{user}', 'tny_', '\\x01', now(), NULL, NULL, NULL);
         INSERT INTO api_keys VALUES ('{org}', '{agent_key}', 'k', 'agent', '{agent}', 'tny_', '\\x02', now(), NULL, NULL, NULL);
         INSERT INTO installs VALUES ('{org}', '{install}', '@x/p', '1.0.0', NULL, 'd', '{{\"who\": \"{name}\"}}', '{{}}', true, NULL, now(), now());
         INSERT INTO secrets VALUES ('{org}', '{install}', 'token', 1, '\\x03', now(), now());
         INSERT INTO bindings VALUES ('{org}', '{agent}', '{install}', now());
         INSERT INTO kv VALUES ('{org}', '{install}', 'counter', '\\x04', now());
         INSERT INTO usage_events VALUES ('{org}', '{install}', now(), '{install}', '@x/p', 'a', 'user', '{user}', 'OK', 1, 1, 1, 1, 1, 1);
         INSERT INTO audit VALUES ('{org}', 1, now(), 'user', '{user}', 'x', 't', 'OK', NULL, '{{}}', NULL, NULL);"
    );
    c.execute(AssertSqlSafe(sql)).await.expect("seed");
}

async fn setup(mode: RlsMode) -> (TestDb, PgStores, Seed) {
    let db = TestDb::migrated(mode).await;
    let seed = Seed {
        a: Uuid::now_v7(),
        b: Uuid::now_v7(),
    };
    let mut owner = PgConnection::connect(&db.owner_url).await.expect("owner");
    seed_org(&mut owner, seed.a, "a").await;
    seed_org(&mut owner, seed.b, "b").await;
    let stores = PgStores::connect(&db.app_url, 2)
        .await
        .expect("connect as app role");
    (db, stores, seed)
}

fn ctx(org: Uuid) -> Context {
    Context {
        org: OrgId::from_uuid(org),
        principals: vec![uid(org, 1)],
        keys: KeysScope::Org,
    }
}

async fn tx(pool: &PgPool, c: &Context) -> Transaction<'static, Postgres> {
    pool.begin_with(AssertSqlSafe(c.begin_sql(false)))
        .await
        .expect("begin with context")
}

async fn count(t: &mut Transaction<'static, Postgres>, sql: String) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(&mut **t)
        .await
        .expect("count")
}

async fn owner_count(db: &TestDb, table: &str, org: Uuid) -> i64 {
    let mut c = PgConnection::connect(&db.owner_url).await.expect("owner");
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE org_id = '{org}'"
    )))
    .fetch_one(&mut c)
    .await
    .expect("count")
}

#[tokio::test]
async fn catalog_every_tenant_table_is_forced_with_using_and_check_policies() {
    let (db, stores, _) = setup(RlsMode::Strict).await;
    let mut c = PgConnection::connect(&db.owner_url).await.unwrap();
    let tables: Vec<(String, bool, bool, i64)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
           (SELECT COUNT(*) FROM pg_policies p WHERE p.tablename = c.relname \
              AND p.qual IS NOT NULL AND p.with_check IS NOT NULL) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.0.as_str()).collect();
    let mut want = TENANT_TABLES.to_vec();
    want.sort();
    assert_eq!(names, want, "tables with an org_id column");
    for (t, enabled, forced, policies) in &tables {
        assert!(*enabled && *forced, "{t}: row security enabled and forced");
        assert!(*policies >= 1, "{t}: a policy with USING and WITH CHECK");
    }
    // Every primary key, unique constraint and foreign key of a tenant table starts
    // with org_id.
    let bad: Vec<String> = sqlx::query_scalar(
        "SELECT con.conname::text FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND con.contype IN ('p', 'u', 'f') AND c.relname = ANY($1) \
           AND (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum = con.conkey[1]) <> 'org_id'",
    )
    .bind(&TENANT_TABLES[..])
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(bad.is_empty(), "keys not starting with org_id: {bad:?}");
    // No sequences (global counters leak other tenants' volume).
    let seqs: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_sequences WHERE schemaname = 'public'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(seqs, 0);
    // Policy functions are STABLE (not VOLATILE).
    let volatile: Vec<String> = sqlx::query_scalar(
        "SELECT proname::text FROM pg_proc WHERE proname IN ('tenantry_org', 'tenantry_principals', 'tenantry_keys_scope') AND provolatile <> 's'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(
        volatile.is_empty(),
        "volatile policy functions: {volatile:?}"
    );
    // Every view runs as its invoker.
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'v' \
           AND NOT COALESCE(c.reloptions @> ARRAY['security_invoker=true'], false)",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(
        views.is_empty(),
        "views without security_invoker: {views:?}"
    );
    // The app role is neither owner, superuser nor BYPASSRLS.
    let (sup, bypass, owns): (bool, bool, i64) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, (SELECT COUNT(*) FROM pg_tables WHERE tableowner = $1) \
         FROM pg_roles WHERE rolname = $1",
    )
    .bind(&db.app_role)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(!sup && !bypass && owns == 0);
    assert_eq!(stores.mode(), RlsMode::Strict);
}

#[tokio::test]
async fn attack_forgotten_where_returns_only_the_current_tenants_rows() {
    let (_db, stores, s) = setup(RlsMode::Strict).await;
    let mut t = tx(stores.pool(), &ctx(s.a)).await;
    for table in TENANT_TABLES {
        let all = count(&mut t, format!("SELECT COUNT(*) FROM {table}")).await;
        let mine = count(
            &mut t,
            format!("SELECT COUNT(*) FROM {table} WHERE org_id = '{}'", s.a),
        )
        .await;
        assert_eq!(all, mine, "{table}: a query without WHERE sees only org A");
        assert!(mine >= 1, "{table}: org A's own rows are visible");
        let theirs = count(
            &mut t,
            format!("SELECT COUNT(*) FROM {table} WHERE org_id = '{}'", s.b),
        )
        .await;
        assert_eq!(theirs, 0, "{table}: asking for org B by id returns nothing");
    }
    let who: String = sqlx::query_scalar("SELECT config->>'who' FROM installs")
        .fetch_one(&mut *t)
        .await
        .unwrap();
    assert_eq!(who, "a");
}

#[tokio::test]
async fn attack_insert_update_delete_across_tenants_change_nothing() {
    let (db, stores, s) = setup(RlsMode::Strict).await;
    let pool = stores.pool();
    // INSERT a row labelled with B's org from A's context: refused by WITH CHECK.
    let mut t = tx(pool, &ctx(s.a)).await;
    let err = sqlx::query("INSERT INTO kv VALUES ($1, $2, 'planted', '\\x00', now())")
        .bind(s.b)
        .bind(uid(s.b, 3))
        .execute(&mut *t)
        .await
        .expect_err("insert into another tenant");
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(t);
    // UPDATE and DELETE of B's rows from A's context touch zero rows.
    for table in TENANT_TABLES {
        let mut t = tx(pool, &ctx(s.a)).await;
        if table == "audit" {
            // The trail is append-only for the app role: it cannot update or delete
            // any audit row, another org's or its own.
            drop(t);
            for sql in [
                format!("UPDATE audit SET action = 'x' WHERE org_id = '{}'", s.b),
                format!("DELETE FROM audit WHERE org_id = '{}'", s.b),
                format!("UPDATE audit SET action = 'x' WHERE org_id = '{}'", s.a),
                format!("DELETE FROM audit WHERE org_id = '{}'", s.a),
            ] {
                let mut t = tx(pool, &ctx(s.a)).await;
                let err = sqlx::query(AssertSqlSafe(sql.clone()))
                    .execute(&mut *t)
                    .await
                    .expect_err("the app role must not rewrite the audit trail");
                assert!(
                    err.to_string().contains("permission denied"),
                    "{sql}: {err}"
                );
            }
            continue;
        }
        let upd = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {table} SET org_id = org_id WHERE org_id = '{}'",
            s.b
        )))
        .execute(&mut *t)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(upd, 0, "{table}: update of B's rows");
        let del = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE org_id = '{}'",
            s.b
        )))
        .execute(&mut *t)
        .await
        .unwrap()
        .rows_affected();
        assert_eq!(del, 0, "{table}: delete of B's rows");
        // Moving A's own row into B is refused too.
        if table == "kv" {
            let err = sqlx::query("UPDATE kv SET org_id = $1")
                .bind(s.b)
                .execute(&mut *t)
                .await
                .expect_err("moving a row to another tenant");
            assert!(err.to_string().contains("row-level security"), "{err}");
        }
        drop(t);
    }
    for table in TENANT_TABLES {
        assert!(
            owner_count(&db, table, s.b).await >= 1,
            "{table}: B's rows intact"
        );
    }
}

#[tokio::test]
async fn attack_copy_exports_only_own_rows_and_copy_in_is_refused() {
    let (_db, stores, s) = setup(RlsMode::Strict).await;
    let mut conn = stores.pool().acquire().await.unwrap();
    conn.execute(AssertSqlSafe(ctx(s.a).begin_sql(false)))
        .await
        .unwrap();
    let mut out = Vec::new();
    {
        use futures::TryStreamExt;
        let mut stream = conn.copy_out_raw("COPY users TO STDOUT").await.unwrap();
        while let Some(chunk) = stream.try_next().await.unwrap() {
            out.extend_from_slice(&chunk);
        }
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(&s.a.to_string()) && !text.contains(&s.b.to_string()));
    let Err(err) = conn.copy_in_raw("COPY users FROM STDIN").await else {
        panic!("COPY FROM on an RLS table must be refused");
    };
    assert!(err.to_string().contains("row-level security"), "{err}");
    conn.execute("ROLLBACK").await.ok();
}

#[tokio::test]
async fn attack_unique_and_foreign_key_probes_reveal_nothing() {
    let (_db, stores, s) = setup(RlsMode::Strict).await;
    let pool = stores.pool();
    // B's user name and B's user id are free to use in A: keys start with org_id,
    // so a conflict can never tell A that they exist in B.
    let mut t = tx(pool, &ctx(s.a)).await;
    sqlx::query("INSERT INTO users VALUES ($1, $2, 'b-owner', 'member', now())")
        .bind(s.a)
        .bind(uid(s.b, 1))
        .execute(&mut *t)
        .await
        .expect("B's name and id do not conflict in A");
    drop(t);
    // An agent in A acting for B's user fails exactly like one acting for nobody.
    let mut codes = Vec::new();
    for target in [uid(s.b, 1), Uuid::now_v7()] {
        let mut t = tx(pool, &ctx(s.a)).await;
        let err = sqlx::query("INSERT INTO agents VALUES ($1, $2, 'probe', $3, '[]', now())")
            .bind(s.a)
            .bind(Uuid::now_v7())
            .bind(target)
            .execute(&mut *t)
            .await
            .expect_err("FK to a user A does not have");
        let db = err.as_database_error().unwrap();
        codes.push((
            db.code().map(|c| c.to_string()),
            db.constraint().map(String::from),
        ));
    }
    assert_eq!(
        codes[0], codes[1],
        "B's user looks exactly like a missing one"
    );
}

#[tokio::test]
async fn attack_missing_or_empty_context_is_an_error_not_a_match() {
    let (_db, stores, _s) = setup(RlsMode::Strict).await;
    let pool = stores.pool();
    // No context at all.
    let err = sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await
        .expect_err("no context");
    assert!(err.to_string().contains("app.org_id"), "{err}");
    // Empty context.
    let mut t = pool
        .begin_with("BEGIN; SET LOCAL app.org_id = ''")
        .await
        .unwrap();
    let err = sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *t)
        .await
        .expect_err("empty context");
    assert!(err.to_string().contains("uuid"), "{err}");
}

#[tokio::test]
async fn attack_leaked_session_setting_fails_closed_on_the_next_checkout() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let a = Uuid::now_v7();
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    seed_org(&mut owner, a, "a").await;
    // One connection, so the next checkout is the same session.
    let stores = PgStores::connect(&db.app_url, 1).await.unwrap();
    let pool = stores.pool();
    {
        let mut c = pool.acquire().await.unwrap();
        // A bug sets the context for the whole session instead of the transaction.
        sqlx::query("SELECT set_config('app.org_id', $1, false)")
            .bind(a.to_string())
            .execute(&mut *c)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *c)
            .await
            .unwrap();
        assert_eq!(n, 1, "the leak works within the checkout");
    }
    let mut c = pool.acquire().await.unwrap();
    let err = sqlx::query("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *c)
        .await
        .expect_err("the next checkout must not inherit the setting");
    assert!(err.to_string().contains("uuid"), "{err}");
}

#[tokio::test]
async fn attack_agent_reads_keys_beyond_its_delegation() {
    let (_db, stores, s) = setup(RlsMode::Strict).await;
    let agent = Context {
        org: OrgId::from_uuid(s.a),
        principals: vec![uid(s.a, 2), uid(s.a, 1)],
        keys: KeysScope::Own,
    };
    let mut t = tx(stores.pool(), &agent).await;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT principal_id FROM api_keys ORDER BY 1")
        .fetch_all(&mut *t)
        .await
        .unwrap();
    assert_eq!(ids.len(), 2, "its own key and its user's key");
    drop(t);
    // An agent acting for nobody else sees only its own key, and cannot mint one
    // for another principal.
    let alone = Context {
        principals: vec![uid(s.a, 2)],
        ..agent
    };
    let mut t = tx(stores.pool(), &alone).await;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT principal_id FROM api_keys")
        .fetch_all(&mut *t)
        .await
        .unwrap();
    assert_eq!(ids, vec![uid(s.a, 2)]);
    let err = sqlx::query(
        "INSERT INTO api_keys VALUES ($1, $2, 'x', 'user', $3, 'tny_', '\\x09', now(), NULL, NULL, NULL)",
    )
    .bind(s.a)
    .bind(Uuid::now_v7())
    .bind(uid(s.a, 1))
    .execute(&mut *t)
    .await
    .expect_err("key for a principal outside the delegation");
    assert!(err.to_string().contains("row-level security"), "{err}");
}

#[tokio::test]
async fn server_refuses_roles_that_bypass_rls() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    // The owner (here a superuser) is refused.
    match PgStores::connect(&db.owner_url, 1).await {
        Err(PgError::UnsafeRole { .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("the owner must be refused"),
    }
    // So is a role with BYPASSRLS.
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    owner
        .execute(AssertSqlSafe(format!(
            "ALTER ROLE {} BYPASSRLS",
            db.app_role
        )))
        .await
        .unwrap();
    let err = PgStores::connect(&db.app_url, 1)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("BYPASSRLS"), "{err}");
    owner
        .execute(AssertSqlSafe(format!(
            "ALTER ROLE {} NOBYPASSRLS",
            db.app_role
        )))
        .await
        .unwrap();
    PgStores::connect(&db.app_url, 1)
        .await
        .expect("the plain app role is accepted");
}

/// Every tenant row, as text, for data-intact checks.
async fn dump(db: &TestDb) -> Vec<String> {
    let mut c = PgConnection::connect(&db.owner_url).await.unwrap();
    let mut out = Vec::new();
    for t in TENANT_TABLES {
        let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT t::text FROM {t} t ORDER BY 1"
        )))
        .fetch_all(&mut c)
        .await
        .unwrap();
        out.extend(rows);
    }
    out
}

async fn mode_row(db: &TestDb) -> String {
    let mut c = PgConnection::connect(&db.owner_url).await.unwrap();
    sqlx::query("SELECT mode FROM rls_mode")
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get::<String, _>("mode")
}

#[tokio::test]
async fn migrations_off_shadow_strict_rollback_strict_keep_data_and_record_violations() {
    let (db, stores, s) = setup(RlsMode::Off).await;
    let before = dump(&db).await;
    assert_eq!(before.len(), 2 * 11);
    // Off: a forgotten filter sees everyone (this is what RLS exists to stop).
    let mut t = tx(stores.pool(), &ctx(s.a)).await;
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM users".into()).await, 2);
    drop(t);
    drop(stores);

    let step = |to: RlsMode| {
        let url = db.owner_url.clone();
        let role = db.app_role.clone();
        async move {
            tenantry_store_postgres::migrate(&url, Some(to), &role)
                .await
                .unwrap()
        }
    };
    // Shadow: still visible, but every out-of-context row is recorded.
    step(RlsMode::Shadow).await;
    assert_eq!(mode_row(&db).await, "shadow");
    assert_eq!(dump(&db).await, before, "data intact after off -> shadow");
    let stores = PgStores::connect(&db.app_url, 2).await.unwrap();
    let mut t = tx(stores.pool(), &ctx(s.a)).await;
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM users".into()).await, 2);
    t.commit().await.unwrap();
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    let violations: Vec<(String, Uuid, String)> =
        sqlx::query_as("SELECT table_name, row_org, context_org FROM rls_violations")
            .fetch_all(&mut owner)
            .await
            .unwrap();
    assert_eq!(violations, vec![("users".into(), s.b, s.a.to_string())]);
    // The app role cannot read or clear the violation log.
    assert!(
        sqlx::query("SELECT * FROM rls_violations")
            .fetch_all(stores.pool())
            .await
            .is_err()
    );
    drop(stores);

    step(RlsMode::Strict).await;
    assert_eq!(mode_row(&db).await, "strict");
    assert_eq!(
        dump(&db).await,
        before,
        "data intact after shadow -> strict"
    );
    let stores = PgStores::connect(&db.app_url, 2).await.unwrap();
    let mut t = tx(stores.pool(), &ctx(s.a)).await;
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM users".into()).await, 1);
    drop(t);
    drop(stores);

    // Roll back to shadow, then forward to strict again.
    let r = step(RlsMode::Shadow).await;
    assert_eq!(r.from, Some(RlsMode::Strict));
    assert_eq!(mode_row(&db).await, "shadow");
    assert_eq!(
        dump(&db).await,
        before,
        "data intact after strict -> shadow"
    );
    step(RlsMode::Strict).await;
    assert_eq!(
        dump(&db).await,
        before,
        "data intact after shadow -> strict"
    );
    let stores = PgStores::connect(&db.app_url, 2).await.unwrap();
    assert_eq!(stores.mode(), RlsMode::Strict);
    let mut t = tx(stores.pool(), &ctx(s.b)).await;
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM users".into()).await, 1);
}

/// The schema versions recorded as applied, oldest first.
async fn applied_versions(db: &TestDb) -> Vec<i64> {
    let mut c = PgConnection::connect(&db.owner_url).await.unwrap();
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut c)
        .await
        .unwrap()
}

fn all_schema_versions() -> Vec<i64> {
    tenantry_store_postgres::MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .collect()
}

#[tokio::test]
async fn switching_rls_modes_never_moves_the_schema_version() {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let migrate = |to: Option<RlsMode>| {
        let (url, role) = (db.owner_url.clone(), db.app_role.clone());
        async move {
            tenantry_store_postgres::migrate(&url, to, &role)
                .await
                .unwrap()
        }
    };
    for to in [
        RlsMode::Shadow,
        RlsMode::Off,
        RlsMode::Strict,
        RlsMode::Strict,
        RlsMode::Off,
    ] {
        let r = migrate(Some(to)).await;
        assert_eq!(r.to, to);
        assert_eq!(mode_row(&db).await, to.as_str());
        assert_eq!(
            applied_versions(&db).await,
            all_schema_versions(),
            "the schema stays at its newest version in mode {}",
            to.as_str()
        );
    }
    // Two nodes migrating at once take turns instead of colliding on policies.
    let (a, b) = tokio::join!(
        migrate(Some(RlsMode::Strict)),
        migrate(Some(RlsMode::Shadow))
    );
    assert_eq!((a.to, b.to), (RlsMode::Strict, RlsMode::Shadow));
    // Without a target, a schema upgrade keeps the mode the database is in.
    migrate(Some(RlsMode::Shadow)).await;
    let r = migrate(None).await;
    assert_eq!((r.from, r.to), (Some(RlsMode::Shadow), RlsMode::Shadow));
    assert_eq!(mode_row(&db).await, "shadow");
}

#[tokio::test]
async fn a_database_from_when_rls_modes_were_migrations_migrates_in_place() {
    let (db, stores, s) = setup(RlsMode::Strict).await;
    drop(stores);
    let before = dump(&db).await;
    // What the old scheme left behind: modes recorded as schema versions 2 and 3.
    let mut owner = PgConnection::connect(&db.owner_url).await.unwrap();
    owner
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (2, 'rls shadow', true, '\\x00', 0), (3, 'rls strict', true, '\\x00', 0)",
        )
        .await
        .unwrap();
    let r = tenantry_store_postgres::migrate(&db.owner_url, None, &db.app_role)
        .await
        .unwrap();
    assert_eq!((r.from, r.to), (Some(RlsMode::Strict), RlsMode::Strict));
    assert_eq!(applied_versions(&db).await, all_schema_versions());
    assert_eq!(dump(&db).await, before, "data intact");
    // Still strict in fact, not only in name.
    let stores = PgStores::connect(&db.app_url, 2).await.unwrap();
    let mut t = tx(stores.pool(), &ctx(s.a)).await;
    assert_eq!(count(&mut t, "SELECT COUNT(*) FROM users".into()).await, 1);
}

/// The cost of strict mode per statement, not per row: every store query also says
/// `WHERE org_id = $1`, so the planner merges the policy's `org_id = tenantry_org()`
/// into the same equivalence class and checks `$1 = current_setting(..)::uuid` once,
/// as a one-time filter, while the scan keeps its `org_id = $1` index condition. A
/// policy rewritten so it no longer inlines (a VOLATILE or plpgsql function, a cast
/// on the column) would put the check on every row; this catches that. Checked with
/// generic plans (what a prepared statement runs after five executions) and custom
/// ones.
#[tokio::test]
async fn strict_policies_are_checked_once_per_statement_not_per_row() {
    let (_db, stores, s) = setup(RlsMode::Strict).await;
    let (org, install) = (s.a, uid(s.a, 3));
    let statements = [
        (
            "installs",
            "SELECT * FROM installs WHERE org_id = $1 AND id = $2",
        ),
        (
            "kv",
            "SELECT value FROM kv WHERE org_id = $1 AND install_id = $2 AND key = 'counter'",
        ),
        (
            "audit",
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM audit WHERE org_id = $1 AND $2::uuid IS NOT NULL",
        ),
    ];
    for mode in ["force_generic_plan", "force_custom_plan"] {
        let mut t = tx(stores.pool(), &ctx(org)).await;
        t.execute(AssertSqlSafe(format!("SET LOCAL plan_cache_mode = {mode}")))
            .await
            .expect("plan_cache_mode");
        for (table, sql) in statements {
            let name = format!("rls_plan_{table}");
            t.execute(AssertSqlSafe(format!(
                "PREPARE {name} (uuid, uuid) AS {sql}"
            )))
            .await
            .expect("prepare");
            let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "EXPLAIN (VERBOSE, COSTS OFF) EXECUTE {name} ('{org}', '{install}')"
            )))
            .fetch_all(&mut *t)
            .await
            .expect("explain");
            t.execute(AssertSqlSafe(format!("DEALLOCATE {name}")))
                .await
                .expect("deallocate");
            let plan = plan.join("\n");
            let checks: Vec<&str> = plan
                .lines()
                .filter(|l| l.contains("current_setting"))
                .collect();
            assert!(
                !checks.is_empty(),
                "{table} ({mode}): the policy must appear in the plan:\n{plan}"
            );
            assert!(
                checks
                    .iter()
                    .all(|l| l.trim_start().starts_with("One-Time Filter:")),
                "{table} ({mode}): the tenant check must run once per statement, not per row:\n{plan}"
            );
        }
        t.rollback().await.expect("rollback");
    }
}
