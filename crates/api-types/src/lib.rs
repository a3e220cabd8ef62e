//! `tenantry-api-types`: the HTTP API's wire types, at the edge of Tenantry.
//!
//! Every request and response body of the API under `/v1` is a plain serde struct or
//! enum here, with its `utoipa::ToSchema` description: the server's edge
//! (`tenantry-api`) converts domain values into these types before it answers, and
//! parses requests into them before it calls the domain; the CLI (`tenantry`) builds
//! its requests from them and reads the server's answers into them. What the API
//! sends is therefore exactly what is declared here: renaming a store column or a
//! domain field never changes the API, and a field the store adds never reaches the
//! wire unless it is added here too.
//!
//! Schema names are part of the contract (`/openapi.json`, generated clients): a type
//! whose Rust name differs from its schema name says so with `#[schema(as = …)]`
//! (`Org` is `OrgRecord`, …).
//!
//! This crate must not depend on any other Tenantry crate (core, store, service,
//! crypto, api), nor on axum or any HTTP stack: serde, time, uuid, utoipa and zeroize
//! only, so that a client can use it without the server.

pub mod audit;
pub mod breakglass;
pub mod enums;
pub mod error;
pub mod executions;
pub mod export;
pub mod ids;
pub mod installs;
pub mod invoke;
pub mod members;
pub mod orgs;
pub mod registry;
pub mod secrets;
pub mod usage;

pub use audit::{AuditBreak, AuditCheckpoint, AuditEntry, AuditVerification, CheckpointResult};
pub use breakglass::{BreakGlassGrant, OpenBreakGlass, OpenedBreakGlass};
pub use enums::{ErrorCode, Outcome, Permission, PrincipalKind, Role};
pub use error::{ErrorBody, ErrorDetail};
pub use executions::{
    ExecuteRequest, ExecutionError, ExecutionLog, ExecutionRecord, ExecutionResult, ExecutionStats,
    ScriptLanguage,
};
pub use export::{ExportLine, ExportedAudit, ExportedInstall};
pub use ids::*;
pub use installs::{Binding, ChangeVersion, Install, InstallPatch, InstallRequest, InstallView};
pub use invoke::{InvocationStats, InvokeError, InvokeRequest, InvokeResponse};
pub use members::{
    AddUser, Agent, ApiKey, CreateAgent, CreateKey, CreateOperatorKey, CreatedKey,
    CreatedOperatorKey, KeyOwner, OperatorKey, SetRole, User,
};
pub use orgs::{
    CreateOrg, DeletedOrg, KeyRotation, LimiterStatus, LimitsView, MasterKeyRotation, Org, OrgView,
    PilotPolicy, ProvisionKey, ProvisionUser, QuotaState, SetTier, SuspendOrg, Tier, TierOverrides,
};
pub use registry::{
    ActionSpec, DetachedSignature, Manifest, NewPublisherKey, Permissions, PluginDetail,
    PluginSummary, PublishRequest, Publisher, PublisherKey, PublisherView, PutReview,
    RegisterPublisher, ReviewView, Version, VersionInfo,
};
pub use secrets::{SecretMeta, SecretText, SetSecret};
pub use usage::{ExportFormat, GroupBy, UsageEvent, UsageRow, UsageSummary};
