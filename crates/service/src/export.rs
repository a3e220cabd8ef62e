//! An org's export: everything it owns, as one stream of items that the API writes
//! as JSON lines. Secrets leave as names only (their values never leave the store);
//! API keys as metadata (no hash); audit entries with their hashes, so the export
//! can be checked against the chain offline.
//!
//! The org's admins and owners export (`ReadOrg` and `ReadAudit`), and so does an
//! operator with a break-glass grant: the way out for an org being offboarded,
//! before [`crate::orgs::delete`]. Each export is an `org.export` entry in the org's
//! trail (the first thing the export's own audit section ends with).

use std::collections::BTreeMap;

use serde_json::json;
use tenantry_core::{InstallId, Permission, Result, TenantScope};
use tenantry_store::chain::ChainedEntry;
use tenantry_store::{
    AgentRecord, ApiKeyRecord, BindingRecord, InstallRecord, OrgRecord, SecretMeta, UsageEvent,
    UsageFilter, UserRecord,
};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::{RequestCtx, Service, audit_entry};

/// The format named in an export's first item.
pub const FORMAT: &str = "tenantry-org-export/1";

/// Rows read per query for the paged parts (usage, audit).
const PAGE: u32 = 1_000;

/// One item of an export, in the order they come.
#[derive(Debug)]
pub enum ExportItem {
    /// First: what this is, of which org, when.
    Header {
        org: OrgRecord,
        exported_at: OffsetDateTime,
    },
    User(UserRecord),
    Agent(AgentRecord),
    ApiKey(ApiKeyRecord),
    /// An install with its config and grants, and its secrets' names and times.
    Install {
        install: InstallRecord,
        secrets: Vec<SecretMeta>,
    },
    Binding(BindingRecord),
    /// One key-value entry of an install.
    Kv {
        install: InstallId,
        key: String,
        value: Vec<u8>,
    },
    /// Usage events in `(at, id)` order.
    Usage(UsageEvent),
    /// Audit entries oldest first, with their hashes.
    Audit(ChainedEntry),
    /// Last: how many items of each kind came before. An export without it is
    /// incomplete.
    End {
        counts: BTreeMap<&'static str, u64>,
    },
}

impl ExportItem {
    /// The item's kind, as counted in [`ExportItem::End`].
    pub fn kind(&self) -> &'static str {
        match self {
            ExportItem::Header { .. } => "export",
            ExportItem::User(_) => "user",
            ExportItem::Agent(_) => "agent",
            ExportItem::ApiKey(_) => "api_key",
            ExportItem::Install { .. } => "install",
            ExportItem::Binding(_) => "binding",
            ExportItem::Kv { .. } => "kv",
            ExportItem::Usage(_) => "usage",
            ExportItem::Audit(_) => "audit",
            ExportItem::End { .. } => "end",
        }
    }
}

/// An export the caller may run (see [`begin`]).
pub struct Export {
    scope: TenantScope,
    org: OrgRecord,
}

/// Checks that the caller may export its org and records `org.export` in the org's
/// trail. Nothing is read yet: a refusal comes before any item.
pub async fn begin(svc: &Service, scope: &TenantScope, ctx: &RequestCtx) -> Result<Export> {
    scope.require(Permission::ReadOrg)?;
    scope.require(Permission::ReadAudit)?;
    let org = svc.org(scope.org_id()).await?;
    let tx = svc.write(scope).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "org.export",
        org.id.to_string(),
        json!({"format": FORMAT}),
    );
    svc.finish(tx, entry).await?;
    Ok(Export {
        scope: scope.clone(),
        org,
    })
}

impl Export {
    /// Sends every item to `out`, in one read transaction of the org, then closes it.
    /// A failure is sent as the last message (after which nothing follows); when the
    /// receiver is gone (the client left) the export stops.
    pub async fn run(self, svc: std::sync::Arc<Service>, out: mpsc::Sender<Result<ExportItem>>) {
        if let Err(e) = self.items(&svc, &out).await {
            let _ = out.send(Err(e)).await;
        }
    }

    async fn items(self, svc: &Service, out: &mpsc::Sender<Result<ExportItem>>) -> Result<()> {
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        macro_rules! send {
            ($item:expr) => {{
                let item = $item;
                *counts.entry(item.kind()).or_default() += 1;
                if out.send(Ok(item)).await.is_err() {
                    return Ok(());
                }
            }};
        }
        let mut tx = svc.read(&self.scope).await?;
        send!(ExportItem::Header {
            org: self.org,
            exported_at: tenantry_core::now(),
        });
        for u in tx.list_users().await? {
            send!(ExportItem::User(u));
        }
        for a in tx.list_agents().await? {
            send!(ExportItem::Agent(a));
        }
        for k in tx.list_api_keys().await? {
            send!(ExportItem::ApiKey(k));
        }
        let installs = tx.list_installs().await?;
        for i in &installs {
            let secrets = tx.list_secrets(i.id).await?;
            send!(ExportItem::Install {
                install: i.clone(),
                secrets,
            });
        }
        for b in tx.list_bindings().await? {
            send!(ExportItem::Binding(b));
        }
        for i in &installs {
            // Bounded by the org's storage quota.
            for key in tx.kv_list(i.id, "", u32::MAX).await? {
                if let Some(value) = tx.kv_get(i.id, &key).await? {
                    send!(ExportItem::Kv {
                        install: i.id,
                        key,
                        value,
                    });
                }
            }
        }
        let mut filter = UsageFilter {
            limit: Some(PAGE),
            ..UsageFilter::default()
        };
        loop {
            let page = tx.list_usage(&filter).await?;
            let Some(last) = page.last() else { break };
            filter.after = Some(last.id);
            let full = page.len() == PAGE as usize;
            for e in page {
                send!(ExportItem::Usage(e));
            }
            if !full {
                break;
            }
        }
        let mut after = 0;
        loop {
            let page = tx.audit_chain(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.entry.seq;
            for e in page {
                send!(ExportItem::Audit(e));
            }
        }
        drop(tx);
        let _ = out.send(Ok(ExportItem::End { counts })).await;
        Ok(())
    }
}
