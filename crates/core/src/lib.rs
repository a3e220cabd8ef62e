//! `tenantry-core`: the vocabulary every other Tenantry crate speaks.
//!
//! It holds plain data types and pure functions only: typed ids, principals and the
//! [`TenantScope`](scope::TenantScope) that gates all tenant-owned data, roles and
//! permissions, stable error codes, invocation outcome codes, and the plugin manifest
//! model with its validation. It must not depend on storage, HTTP (nor on `utoipa`:
//! the API's wire types are `tenantry-api-types`), crypto or wasm.

pub mod error;
pub mod ids;
pub mod manifest;
pub mod outcome;
pub mod pilot;
pub mod scope;
pub mod text;
pub mod tier;

pub use error::{Error, ErrorCode, RateLimitState, Result};
pub use ids::*;
pub use outcome::Outcome;
pub use scope::{
    Actor, OperatorScope, Permission, Principal, PrincipalKind, Role, Session, TenantScope,
};
pub use tier::{Tier, TierOverrides};

/// Current UTC time. The one clock the domain reads (tests inject times explicitly
/// where a window matters).
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
