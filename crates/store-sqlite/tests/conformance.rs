//! The store conformance suite (`tenantry-store-tests`) on the embedded store: each
//! check gets a fresh data directory, removed when the check ends.

use std::sync::Arc;
use tenantry_store_sqlite::{FileBlobs, SqliteControl, SqliteTenants};
use tenantry_store_tests::Backend;

async fn backend() -> Backend {
    let dir = tempfile::tempdir().expect("temporary data directory");
    let control = SqliteControl::open(dir.path())
        .await
        .expect("open control.db");
    let tenants = SqliteTenants::open(dir.path()).await.expect("open tenants");
    let blobs = FileBlobs::new(dir.path());
    Backend::new(
        "sqlite",
        Arc::new(control),
        Arc::new(blobs),
        Arc::new(tenants),
        dir,
    )
}

tenantry_store_tests::conformance_tests!(backend);
