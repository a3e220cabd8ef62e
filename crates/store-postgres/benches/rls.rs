//! Throughput of the pooled store with RLS strict vs off, measured in one run.
//!
//! Run: `cargo bench -p tenantry-store-postgres --bench rls`
//! (needs PostgreSQL; `TENANTRY_TEST_DATABASE_URL` names an admin URL, default the
//! local server). Env: `ROUNDS` (default 6), `SECS` per round (default 2),
//! `TASKS` concurrent clients (default 8).
//!
//! Two fresh databases, one migrated to `strict`, one to `off`, get the same data
//! (50 orgs × 4 installs with kv, 40 audit entries each) and are analyzed. Clients
//! then run the store calls of API requests through the store traits: 3 of 4 are an
//! invoke's reads (begin with context, read the install, read a kv value, commit)
//! and 1 of 4 a write (begin with context and the org's write lock, set a kv value,
//! append an audit entry, commit). Rounds alternate between the databases so drift
//! on a noisy machine hits both; each round's two halves also give a paired ratio,
//! whose spread shows that noise.

use sqlx::{Connection, Executor, PgConnection};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenantry_core::{InstallId, OrgId, PrincipalKind, TenantScope, UserId};
use tenantry_store::*;
use tenantry_store_postgres::testing::TestDb;
use tenantry_store_postgres::{PgStores, RlsMode};
use tenantry_store_tests::owner_scope;
use time::OffsetDateTime;

const ORGS: usize = 50;
const INSTALLS: usize = 4;
/// Audit entries per org before the rounds start.
const AUDIT_HISTORY: usize = 40;

type Fixture = Vec<(TenantScope, Vec<InstallId>)>;

async fn fixture() -> Fixture {
    (0..ORGS)
        .map(|_| {
            let s = owner_scope(OrgId::new(), UserId::new());
            (s, (0..INSTALLS).map(|_| InstallId::new()).collect())
        })
        .collect()
}

async fn load(tenants: &dyn TenantStore, f: &Fixture) {
    let now = OffsetDateTime::now_utc();
    for (s, installs) in f {
        let mut tx = tenants.begin(s, true).await.expect("begin");
        for (n, id) in installs.iter().enumerate() {
            tx.insert_install(&InstallRecord {
                id: *id,
                plugin: format!("@bench/p{n}"),
                version: "1.0.0".into(),
                previous_version: None,
                artifact_sha256: "0".repeat(64),
                config: serde_json::json!({"n": n}),
                grants: Default::default(),
                enabled: true,
                rate_limit_per_minute: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .expect("install");
            tx.kv_set(*id, "counter", b"0").await.expect("kv");
        }
        // An audit history, as a real org has: with an empty audit table at ANALYZE
        // time the planner may cache a sequential scan for the next seq's
        // `MAX(seq)` on some connections of one database and the index on the other's,
        // and that scan slows as the table grows, so the ratio measured which plan
        // each database happened to cache, not the policies.
        for _ in 0..AUDIT_HISTORY {
            tx.append_audit(&audit_entry(s, installs[0]))
                .await
                .expect("audit");
        }
        tx.commit().await.expect("commit");
    }
}

fn audit_entry(s: &TenantScope, install: InstallId) -> AuditEntry {
    AuditEntry {
        seq: 0,
        at: OffsetDateTime::now_utc(),
        actor_kind: PrincipalKind::User,
        actor_id: s.actor().id,
        action: "bench".into(),
        target: install.to_string(),
        outcome: "OK".into(),
        request_id: None,
        details: serde_json::json!({}),
    }
}

async fn request(tenants: &dyn TenantStore, f: &Fixture, n: u64) {
    let (s, installs) = &f[(n as usize * 7) % f.len()];
    let install = installs[n as usize % installs.len()];
    if n % 4 == 3 {
        let mut tx = tenants.begin(s, true).await.expect("begin");
        tx.kv_set(install, "counter", n.to_string().as_bytes())
            .await
            .expect("kv_set");
        tx.append_audit(&audit_entry(s, install))
            .await
            .expect("audit");
        tx.commit().await.expect("commit");
    } else {
        let mut tx = tenants.begin(s, false).await.expect("begin");
        tx.get_install(install).await.expect("get").expect("found");
        tx.kv_get(install, "counter").await.expect("kv_get");
        tx.commit().await.expect("commit");
    }
}

async fn round(tenants: Arc<dyn TenantStore>, f: Arc<Fixture>, tasks: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (tenants, f, stop, done) = (tenants.clone(), f.clone(), stop.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            let mut n = t as u64 * 1_000_003;
            while !stop.load(Ordering::Relaxed) {
                request(tenants.as_ref(), &f, n).await;
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = env("ROUNDS", 6.0) as usize;
    let secs = env("SECS", 2.0);
    let tasks = env("TASKS", 8.0) as usize;
    let f = Arc::new(fixture().await);
    let mut dbs = Vec::new();
    for mode in [RlsMode::Strict, RlsMode::Off] {
        let db = TestDb::migrated(mode).await;
        let stores = PgStores::connect(&db.app_url, tasks as u32)
            .await
            .expect("connect");
        let tenants: Arc<dyn TenantStore> = Arc::new(stores.tenants());
        load(tenants.as_ref(), &f).await;
        // Same starting state in both databases: statistics and visibility maps
        // now, not from an autovacuum that lands in one mode's rounds and invalidates
        // its connections' cached plans.
        let mut owner = PgConnection::connect(&db.owner_url).await.expect("owner");
        owner.execute("VACUUM ANALYZE").await.expect("vacuum");
        let _ = owner.close().await;
        // Warm up.
        round(tenants.clone(), f.clone(), tasks, 0.5).await;
        dbs.push((mode, db, tenants));
    }
    let mut totals = [0.0f64; 2];
    // strict/off of the two halves of each round, run back to back.
    let mut paired = Vec::new();
    println!("{rounds} rounds × {secs} s per mode, {tasks} concurrent clients, {ORGS} orgs");
    for r in 0..rounds {
        // Alternate which mode goes first.
        let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut rps = [0.0f64; 2];
        for i in order {
            let (mode, _, tenants) = &dbs[i];
            rps[i] = round(tenants.clone(), f.clone(), tasks, secs).await;
            totals[i] += rps[i];
            println!("round {r}: {:<6} {:>9.0} requests/s", mode.as_str(), rps[i]);
        }
        paired.push(rps[0] / rps[1]);
    }
    paired.sort_by(f64::total_cmp);
    let (strict, off) = (totals[0] / rounds as f64, totals[1] / rounds as f64);
    println!("mean: strict {strict:.0} req/s, off {off:.0} req/s");
    println!(
        "throughput ratio strict/off = {:.3} (target >= 0.95)",
        strict / off
    );
    println!(
        "per-round strict/off: median {:.3}, min {:.3}, max {:.3} (the spread is noise \
         between back-to-back rounds)",
        (paired[(paired.len() - 1) / 2] + paired[paired.len() / 2]) / 2.0,
        paired[0],
        paired[paired.len() - 1]
    );
    println!(
        "round trips per request: read = 4 (BEGIN + SET LOCAL context in one, 2 queries, COMMIT); \
         write = 4 (BEGIN + context + org write lock in one, 2 statements, COMMIT); \
         no extra round trip for RLS"
    );
}
