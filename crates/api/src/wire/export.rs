//! An org's export, line by line.

use base64::Engine;
use tenantry_api_types as w;
use tenantry_service::export::{ExportItem, FORMAT};
use tenantry_store::chain::ChainedEntry;

use super::ToWire;

impl ToWire for ExportItem {
    type Wire = w::ExportLine;
    fn to_wire(self) -> w::ExportLine {
        match self {
            ExportItem::Header { org, exported_at } => w::ExportLine::Export {
                format: FORMAT.to_string(),
                org: org.to_wire(),
                exported_at,
            },
            ExportItem::User(u) => w::ExportLine::User(u.to_wire()),
            ExportItem::Agent(a) => w::ExportLine::Agent(a.to_wire()),
            ExportItem::ApiKey(k) => w::ExportLine::ApiKey(k.to_wire()),
            ExportItem::Install { install, secrets } => {
                w::ExportLine::Install(w::ExportedInstall {
                    install: install.to_wire(),
                    secrets: secrets.to_wire(),
                })
            }
            ExportItem::Binding(b) => w::ExportLine::Binding(b.to_wire()),
            ExportItem::Kv {
                install,
                key,
                value,
            } => w::ExportLine::Kv {
                install_id: install.to_wire(),
                key,
                value_base64: base64::engine::general_purpose::STANDARD.encode(value),
            },
            ExportItem::Usage(e) => w::ExportLine::Usage(e.to_wire()),
            ExportItem::Audit(ChainedEntry {
                entry,
                prev_hash,
                row_hash,
            }) => w::ExportLine::Audit(w::ExportedAudit {
                entry: entry.to_wire(),
                prev_hash: prev_hash.map(hex::encode),
                row_hash: row_hash.map(hex::encode),
            }),
            ExportItem::End { counts } => w::ExportLine::End {
                counts: counts
                    .into_iter()
                    .map(|(k, n)| (k.to_string(), n))
                    .collect(),
            },
        }
    }
}
