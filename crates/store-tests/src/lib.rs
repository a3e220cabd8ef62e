//! `tenantry-store-tests`: the store conformance suite.
//!
//! One set of checks, written once against the traits of `tenantry-store`
//! ([`ControlStore`], [`BlobStore`], [`TenantStore`], [`TenantTx`]), that every
//! backend runs from its own tests:
//!
//! ```ignore
//! // crates/store-<backend>/tests/conformance.rs
//! async fn backend() -> tenantry_store_tests::Backend { /* a fresh, empty store */ }
//! tenantry_store_tests::conformance_tests!(backend);
//! ```
//!
//! [`conformance_tests!`] expands to one `#[tokio::test]` per check, each on a fresh
//! [`Backend`] (which owns what it must clean up: a temporary directory, a throwaway
//! database). A failed check names the backend and the check.
//!
//! What the checks hold every backend to (the contract the service relies on):
//! - every record reads back equal to what was written, edge values included;
//! - timestamps are kept to the microsecond (finer digits are dropped) and read back
//!   in UTC; order and range filters follow time, never text;
//! - counters (`u64`) are kept exactly up to `i64::MAX` and saturate above it;
//! - each `list_*` has one order (see the checks), ties broken deterministically;
//! - a unique key taken again is [`StoreError::Conflict`]; updating or deleting a
//!   missing row answers `false`;
//! - a transaction dropped without commit changes nothing, in memory either; a read
//!   transaction refuses writes;
//! - what one org writes is invisible to every other org.
//!
//! This crate must not depend on any backend, database driver, HTTP or crypto: the
//! backends depend on it (as a dev-dependency), never the other way round.

use std::fmt::Display;
use std::sync::Arc;

pub use tenantry_store::{BlobStore, ControlStore, StoreError, StoreResult, TenantStore, TenantTx};

/// Fails the running check with the backend's and the check's names.
macro_rules! ensure {
    ($b:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            panic!("{}", $b.at(format_args!($($fmt)+)));
        }
    };
}

/// Fails the running check unless both sides are equal, showing both.
macro_rules! ensure_eq {
    ($b:expr, $left:expr, $right:expr, $($fmt:tt)+) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            panic!(
                "{}\n  got: {:?}\n want: {:?}",
                $b.at(format_args!($($fmt)+)),
                l,
                r
            );
        }
    }};
}

/// [`ensure_eq!`] for types without `PartialEq` (compared by their `Debug` text).
macro_rules! ensure_debug_eq {
    ($b:expr, $left:expr, $right:expr, $($fmt:tt)+) => {{
        let (l, r) = (format!("{:?}", $left), format!("{:?}", $right));
        if l != r {
            panic!("{}\n  got: {}\n want: {}", $b.at(format_args!($($fmt)+)), l, r);
        }
    }};
}

pub mod checks;
mod fixtures;

pub use fixtures::{api_key, install, owner_scope};

/// A fresh, empty store of one backend, plus whatever must live as long as it (and
/// be cleaned up when it drops).
pub struct Backend {
    /// The backend's name, in every failure message.
    pub name: &'static str,
    /// The check running on it (set by [`conformance_tests!`]).
    pub check: &'static str,
    pub control: Arc<dyn ControlStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub tenants: Arc<dyn TenantStore>,
    /// Dropped last: the temporary directory or database behind the stores.
    _guard: Box<dyn Send + Sync>,
}

impl Backend {
    /// `guard` is dropped after the stores (remove the directory, drop the database).
    pub fn new(
        name: &'static str,
        control: Arc<dyn ControlStore>,
        blobs: Arc<dyn BlobStore>,
        tenants: Arc<dyn TenantStore>,
        guard: impl Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            check: "?",
            control,
            blobs,
            tenants,
            _guard: Box::new(guard),
        }
    }

    /// A failure message: `[backend] check: what`.
    pub fn at(&self, what: impl Display) -> String {
        format!("[{}] {}: {}", self.name, self.check, what)
    }
}

/// Unwraps a store result, failing the check with the backend, the check and what
/// was being done.
pub(crate) trait Must<T> {
    fn must(self, b: &Backend, what: &str) -> T;
}

impl<T> Must<T> for StoreResult<T> {
    fn must(self, b: &Backend, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{}", b.at(format_args!("{what} failed: {e:?}"))),
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance check, each given a fresh backend
/// from `$make` (an `async fn() -> Backend`). The calling crate needs `tokio` with
/// the `macros` and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@test $make;
            // control store
            orgs_round_trip_and_order,
            org_tier_and_overrides,
            org_duplicates_conflict,
            operator_keys_and_key_index,
            publishers_round_trip_and_order,
            publisher_keys_and_revocation,
            versions_and_plugin_summary,
            search_plugins_terms_and_limit,
            reviews_upsert_and_order,
            blobs_round_trip,
            // tenant rows
            create_tenant_is_idempotent,
            org_keys_round_trip,
            users_round_trip_and_order,
            agents_round_trip_and_delete,
            api_keys_and_revocation,
            credential_lookup,
            touch_key_keeps_the_latest_use,
            installs_round_trip_edges,
            installs_update_delete_and_duplicates,
            secrets_upsert_list_delete,
            bindings_round_trip,
            kv_round_trip,
            kv_list_prefix_order_and_paging,
            kv_usage_bytes_and_delete_all,
            // invocation records
            usage_round_trip_edges,
            usage_order_filters_and_cursor,
            count_usage_windows,
            audit_seq_order_and_filters,
            append_records_are_visible,
            append_batch_writes_every_org_and_reports_failures,
            audit_entries_form_one_hash_chain_per_org,
            timestamps_microseconds_in_utc,
            // transactions
            rollback_discards_writes,
            rollback_leaves_kept_rows_exact,
            failed_write_fails_the_commit,
            read_transactions_refuse_writes,
            concurrent_kv_writes_all_land,
            concurrent_records_all_land,
            // isolation
            isolation_of_reads,
            isolation_of_writes,
            isolation_of_records,
            isolation_of_credentials,
            deleting_an_org_erases_it_and_only_it,
        );
    };
    (@test $make:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let mut backend = $make().await;
                backend.check = stringify!($check);
                $crate::checks::$check(&backend).await;
            }
        )*
    };
}
