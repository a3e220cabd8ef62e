//! The store conformance suite (`tenantry-store-tests`) on the pooled store: each
//! check gets a throwaway database in strict RLS mode, connected as the application
//! role, dropped when the check ends. Needs PostgreSQL (see `testing::TestDb`).

use std::sync::Arc;
use tenantry_store_postgres::testing::TestDb;
use tenantry_store_postgres::{PgStores, RlsMode};
use tenantry_store_tests::Backend;

async fn backend() -> Backend {
    let db = TestDb::migrated(RlsMode::Strict).await;
    let stores = PgStores::connect(&db.app_url, 8)
        .await
        .unwrap_or_else(|e| panic!("connect as the application role: {e}"));
    Backend::new(
        "postgres",
        Arc::new(stores.control()),
        Arc::new(stores.control()),
        Arc::new(stores.tenants()),
        db,
    )
}

tenantry_store_tests::conformance_tests!(backend);
