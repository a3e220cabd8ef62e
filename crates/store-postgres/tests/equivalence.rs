//! RLS on vs off: the same scripted workload through the store API, on a database in
//! strict mode and one with no policies, gives identical results. (RLS is a safety
//! net behind the explicit filters; it must never change a correct answer.)

use tenantry_core::{InstallId, OrgId, Role, UserId};
use tenantry_store::*;
use tenantry_store_postgres::testing::TestDb;
use tenantry_store_postgres::{PgStores, RlsMode};
use tenantry_store_tests::owner_scope;
use time::OffsetDateTime;
use uuid::Uuid;

/// Fixed ids and times, so both databases receive identical writes.
fn fixed(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

async fn workload(tenants: &dyn TenantStore) -> Vec<String> {
    let at = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    let mut out = Vec::new();
    for o in 0..3u128 {
        let org = OrgId::from_uuid(fixed(o * 100));
        let user = UserId::from_uuid(fixed(o * 100 + 1));
        let s = owner_scope(org, user);
        let mut tx = tenants.begin(&s, true).await.unwrap();
        tx.insert_user(&UserRecord {
            id: user,
            name: format!("owner{o}"),
            role: Role::Owner,
            created_at: at,
        })
        .await
        .unwrap();
        for i in 0..4u128 {
            let install = InstallId::from_uuid(fixed(o * 100 + 10 + i));
            tx.insert_install(&InstallRecord {
                id: install,
                plugin: format!("@p/plugin{i}"),
                version: "1.0.0".into(),
                previous_version: None,
                artifact_sha256: "0".repeat(64),
                config: serde_json::json!({"org": o as u64, "i": i as u64}),
                grants: Default::default(),
                enabled: i % 2 == 0,
                rate_limit_per_minute: None,
                created_at: at,
                updated_at: at,
            })
            .await
            .unwrap();
            for k in 0..5 {
                tx.kv_set(
                    install,
                    &format!("key/{k}"),
                    format!("{o}-{i}-{k}").as_bytes(),
                )
                .await
                .unwrap();
            }
        }
        tx.commit().await.unwrap();
    }
    // A conflicting write is refused the same way.
    for o in 0..3u128 {
        let org = OrgId::from_uuid(fixed(o * 100));
        let s = owner_scope(org, UserId::from_uuid(fixed(o * 100 + 1)));
        let mut tx = tenants.begin(&s, true).await.unwrap();
        let dup = tx
            .insert_user(&UserRecord {
                id: UserId::from_uuid(fixed(o * 100 + 2)),
                name: format!("owner{o}"),
                role: Role::Member,
                created_at: at,
            })
            .await;
        out.push(format!("dup: {:?}", dup.map_err(|e| e.to_string())));
        drop(tx);
        let mut tx = tenants.begin(&s, false).await.unwrap();
        out.push(format!("{:?}", tx.list_users().await.unwrap()));
        let installs = tx.list_installs().await.unwrap();
        out.push(format!("{installs:?}"));
        for i in &installs {
            out.push(format!(
                "{:?}",
                tx.kv_list(i.id, "key/", 100).await.unwrap()
            ));
            out.push(format!("{:?}", tx.kv_get(i.id, "key/3").await.unwrap()));
        }
        out.push(format!("{}", tx.kv_usage_bytes().await.unwrap()));
        // Ids of another org answer nothing.
        let other = InstallId::from_uuid(fixed(((o + 1) % 3) * 100 + 10));
        out.push(format!("{:?}", tx.get_install(other).await.unwrap()));
        out.push(format!("{:?}", tx.kv_get(other, "key/1").await.unwrap()));
    }
    out
}

#[tokio::test]
async fn rls_strict_and_off_give_identical_results() {
    let mut results = Vec::new();
    for mode in [RlsMode::Strict, RlsMode::Off] {
        let db = TestDb::migrated(mode).await;
        let stores = PgStores::connect(&db.app_url, 4).await.unwrap();
        assert_eq!(stores.mode(), mode);
        results.push(workload(&stores.tenants()).await);
    }
    assert!(results[0].len() > 30);
    assert_eq!(results[0], results[1]);
}
