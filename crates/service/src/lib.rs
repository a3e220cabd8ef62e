//! `tenantry-service`: Tenantry's domain logic, one module per resource.
//!
//! Every operation is a plain async function over a [`Service`] (the stores, the
//! master key, the artifact directory) and an authenticated scope. Tenant operations
//! take a [`TenantScope`]; operator operations take an [`OperatorScope`]. Each
//! mutation validates everything first, then writes its rows and its audit entry in
//! one tenant transaction. This crate must not depend on HTTP or on a concrete store.

pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod breakglass;
mod capabilities;
pub mod executions;
pub mod export;
pub mod health;
pub mod installs;
pub mod invoke;
pub mod keys;
pub mod limits;
pub mod members;
pub mod metrics;
pub mod operators;
pub mod orgs;
pub mod recorder;
pub mod registry;
pub mod secrets;
pub mod usage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenantry_core::{Error, ErrorCode, OperatorScope, RequestId, Result, TenantScope, Tier};
use tenantry_crypto::MasterKey;
use tenantry_runtime::Runtime;
use tenantry_store::{AuditEntry, ControlStore, OrgRecord, Seen, TenantStore, TenantTx};

pub use artifacts::ArtifactStore;

/// Registry-wide limits and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest artifact the registry accepts, in bytes.
    pub max_artifact_bytes: u64,
    /// Tier given to new orgs when none is named.
    pub default_tier: String,
    /// Known tiers by name: the built-in ones plus any defined in configuration.
    pub tiers: std::collections::BTreeMap<String, tenantry_core::Tier>,
    /// The operator's pilot guardrails (off by default).
    pub pilot: tenantry_core::pilot::PilotPolicy,
    /// The longest a break-glass grant may stay open.
    pub breakglass_max_ttl: time::Duration,
    /// A break-glass grant works only once a second operator approved it.
    pub breakglass_approval: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 10 * 1024 * 1024,
            default_tier: "free".into(),
            tiers: [Tier::free(), Tier::starter(), Tier::enterprise()]
                .into_iter()
                .map(|t| (t.name.clone(), t))
                .collect(),
            pilot: Default::default(),
            breakglass_max_ttl: time::Duration::hours(4),
            breakglass_approval: false,
        }
    }
}

/// Verified, compiled plugin versions by (plugin, version).
type PreparedCache = HashMap<(String, String), Arc<invoke::Prepared>>;

/// Everything the domain needs, shared by all requests.
#[derive(Clone)]
pub struct Service {
    pub control: Arc<dyn ControlStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub master_key: Arc<MasterKey>,
    /// Each org's key-encryption key, outside the data (`tenantry_crypto::vault`);
    /// `None`: orgs' keys are wrapped under the master key, and deleting an org
    /// cannot make a backup of its data unreadable.
    pub key_vault: Option<tenantry_crypto::KeyVault>,
    /// The master key being retired while a rotation runs ([`keys::rotate_master`]):
    /// still read, never written.
    pub previous_master_key: Option<Arc<MasterKey>>,
    pub artifacts: ArtifactStore,
    pub settings: Settings,
    pub runtime: Runtime,
    pub recorder: recorder::Recorder,
    /// Rate limits, concurrency leases and billing quotas (local or Redis).
    pub limiters: limits::Limiters,
    /// Verified, compiled plugin versions by (plugin, version).
    pub(crate) prepared: Arc<Mutex<PreparedCache>>,
    pub metrics: Arc<metrics::Metrics>,
    /// Signs checkpoints of audit trails (`audit::checkpoint`); `None`: checkpoints
    /// cannot be written or checked.
    pub audit_key: Option<Arc<tenantry_crypto::SigningKeyPair>>,
    /// Audit keys used before the current one: their checkpoints still verify (they
    /// sign nothing new).
    pub retired_audit_keys: Vec<tenantry_crypto::PublicKey>,
    /// Orgs whose audit trail grew since the last periodic checkpoint.
    pub(crate) audit_changed: audit::Changed,
}

impl Service {
    /// Assembles the service and starts its background recorder (needs a tokio
    /// runtime).
    pub fn new(
        control: Arc<dyn ControlStore>,
        tenants: Arc<dyn TenantStore>,
        master_key: Arc<MasterKey>,
        artifacts: ArtifactStore,
        settings: Settings,
        runtime: Runtime,
    ) -> Self {
        let metrics = Arc::new(metrics::Metrics::new());
        let audit_changed = audit::Changed::default();
        let recorder =
            recorder::Recorder::start(tenants.clone(), metrics.clone(), audit_changed.clone());
        Self {
            control,
            tenants,
            master_key,
            key_vault: None,
            previous_master_key: None,
            artifacts,
            settings,
            runtime,
            recorder,
            limiters: limits::Limiters::local(),
            prepared: Arc::default(),
            metrics,
            audit_key: None,
            retired_audit_keys: Vec::new(),
            audit_changed,
        }
    }

    /// Keeps each new org's key-encryption key in `vault`.
    pub fn with_key_vault(mut self, vault: tenantry_crypto::KeyVault) -> Self {
        self.key_vault = Some(vault);
        self
    }

    /// Also reads what the master key being retired sealed (see [`keys`]).
    pub fn with_previous_master_key(mut self, key: MasterKey) -> Self {
        self.previous_master_key = Some(Arc::new(key));
        self
    }

    /// Accepts checkpoints signed by audit keys used before the current one.
    pub fn with_retired_audit_keys(mut self, keys: Vec<tenantry_crypto::PublicKey>) -> Self {
        self.retired_audit_keys = keys;
        self
    }

    /// Sets the key that signs audit checkpoints.
    pub fn with_audit_key(mut self, key: tenantry_crypto::SigningKeyPair) -> Self {
        self.audit_key = Some(Arc::new(key));
        self
    }

    /// The metrics exposition (Prometheus/OpenMetrics text), state read now.
    pub fn metrics_text(&self) -> String {
        self.metrics.encode(metrics::Snapshot {
            limiter_degraded: self.limiters.status().degraded,
            recorder_queue: self.recorder.queued(),
            sandboxes_live: self.runtime.live_instances(),
            tenant_stores_open: self.tenants.open_tenant_stores(),
        })
    }

    /// Replaces the limiter backends (Redis, or a test clock).
    pub fn with_limiters(mut self, limiters: limits::Limiters) -> Self {
        self.limiters = limiters;
        self
    }

    /// The effective limits of an org: its tier (unknown names fall back to `free`)
    /// with the operator's per-org overrides applied.
    /// `seen`: how far the request's key lookup saw storage, or [`Seen::NOTHING`].
    pub async fn tier_of(&self, org: tenantry_core::OrgId, seen: Seen) -> Result<Tier> {
        let org = self
            .control
            .get_org(org, seen)
            .await?
            .ok_or_else(|| Error::not_found("org"))?;
        let base = self
            .settings
            .tiers
            .get(&org.tier)
            .cloned()
            .unwrap_or_else(Tier::free);
        Ok(org.overrides.apply(base))
    }

    /// Forgets every verified plugin (after a key revocation, say), so the next use
    /// verifies again.
    pub fn forget_prepared(&self) {
        if let Ok(mut m) = self.prepared.lock() {
            m.clear();
        }
    }
}

/// Per-request context carried into audit entries and logs.
#[derive(Debug, Clone, Copy)]
pub struct RequestCtx {
    pub request_id: RequestId,
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            request_id: RequestId::new(),
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds the audit entry for a mutation made by `scope`'s principal.
pub(crate) fn audit_entry(
    scope: &TenantScope,
    ctx: &RequestCtx,
    action: &str,
    target: impl Into<String>,
    details: serde_json::Value,
) -> AuditEntry {
    let actor = scope.actor();
    // Whatever the operator does through break-glass carries the grant and ticket.
    let details = match (scope.breakglass(), details) {
        (Some(g), serde_json::Value::Object(mut m)) => {
            m.insert(
                "breakglass".into(),
                serde_json::json!({"grant": scope.key_id(), "ticket": g.ticket}),
            );
            serde_json::Value::Object(m)
        }
        (_, d) => d,
    };
    AuditEntry {
        seq: 0,
        at: tenantry_core::now(),
        actor_kind: actor.kind,
        actor_id: actor.id,
        action: action.to_string(),
        target: target.into(),
        outcome: "OK".into(),
        request_id: Some(ctx.request_id),
        details,
    }
}

impl Service {
    /// An org's record as stored now; `NOT_FOUND` if there is no such org (or it was
    /// deleted).
    pub(crate) async fn org(&self, id: tenantry_core::OrgId) -> Result<OrgRecord> {
        self.control
            .get_org(id, Seen::NOTHING)
            .await?
            .ok_or_else(|| Error::not_found("org"))
    }

    /// Opens a write transaction on the scope's org.
    pub(crate) async fn write(&self, scope: &TenantScope) -> Result<Box<dyn TenantTx>> {
        Ok(self.tenants.begin(scope, true).await?)
    }

    /// Opens a read transaction on the scope's org.
    pub(crate) async fn read(&self, scope: &TenantScope) -> Result<Box<dyn TenantTx>> {
        Ok(self.tenants.begin(scope, false).await?)
    }

    /// Appends the audit entry and commits: the last step of every mutation.
    pub(crate) async fn finish(&self, mut tx: Box<dyn TenantTx>, entry: AuditEntry) -> Result<()> {
        let org = tx.org_id();
        tx.append_audit(&entry).await?;
        tx.commit().await?;
        self.audit_changed.mark([org]);
        Ok(())
    }
}

/// An operator action needs the operator; used where operator scope is optional.
pub fn require_operator(op: Option<&OperatorScope>) -> Result<&OperatorScope> {
    op.ok_or_else(|| {
        Error::new(
            ErrorCode::PermissionDenied,
            "this needs an operator API key",
        )
    })
}
