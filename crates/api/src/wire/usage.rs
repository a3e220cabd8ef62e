//! Usage events, summaries, and the export's encodings (JSON lines of the wire
//! events, or CSV with a fixed header).

use tenantry_api_types as w;
use tenantry_api_types::ExportFormat;
use tenantry_core::Error;
use tenantry_service::usage::{GroupBy, UsageRow, UsageSummary};
use tenantry_store::UsageEvent;
use time::format_description::well_known::Rfc3339;

use super::{ToDomain, ToWire};

impl ToWire for UsageEvent {
    type Wire = w::UsageEvent;
    fn to_wire(self) -> w::UsageEvent {
        let UsageEvent {
            id,
            at,
            install_id,
            plugin,
            action,
            actor_kind,
            actor_id,
            outcome,
            duration_us,
            fuel,
            peak_memory_bytes,
            host_calls,
            bytes_in,
            bytes_out,
            caller_id,
        } = self;
        w::UsageEvent {
            id: id.to_wire(),
            at,
            install_id: install_id.to_wire(),
            plugin,
            action,
            actor_kind: actor_kind.to_wire(),
            actor_id,
            outcome: outcome.to_wire(),
            duration_us,
            fuel,
            peak_memory_bytes,
            host_calls,
            bytes_in,
            bytes_out,
            caller_id: caller_id.to_wire(),
        }
    }
}

impl ToWire for GroupBy {
    type Wire = w::GroupBy;
    fn to_wire(self) -> w::GroupBy {
        match self {
            GroupBy::None => w::GroupBy::None,
            GroupBy::Day => w::GroupBy::Day,
            GroupBy::Plugin => w::GroupBy::Plugin,
            GroupBy::Install => w::GroupBy::Install,
            GroupBy::Agent => w::GroupBy::Agent,
        }
    }
}

impl ToDomain for w::GroupBy {
    type Domain = GroupBy;
    fn to_domain(self) -> GroupBy {
        match self {
            w::GroupBy::None => GroupBy::None,
            w::GroupBy::Day => GroupBy::Day,
            w::GroupBy::Plugin => GroupBy::Plugin,
            w::GroupBy::Install => GroupBy::Install,
            w::GroupBy::Agent => GroupBy::Agent,
        }
    }
}

impl ToWire for UsageRow {
    type Wire = w::UsageRow;
    fn to_wire(self) -> w::UsageRow {
        let UsageRow {
            key,
            actor_kind,
            count,
            errors,
            p50_duration_ms,
            p95_duration_ms,
            p99_duration_ms,
            fuel,
            host_calls,
            bytes_in,
            bytes_out,
            max_peak_memory_bytes,
        } = self;
        w::UsageRow {
            key,
            actor_kind: actor_kind.to_wire(),
            count,
            errors,
            p50_duration_ms,
            p95_duration_ms,
            p99_duration_ms,
            fuel,
            host_calls,
            bytes_in,
            bytes_out,
            max_peak_memory_bytes,
        }
    }
}

impl ToWire for UsageSummary {
    type Wire = w::UsageSummary;
    fn to_wire(self) -> w::UsageSummary {
        let UsageSummary {
            group_by,
            since,
            until,
            rows,
        } = self;
        w::UsageSummary {
            group_by: group_by.to_wire(),
            since,
            until,
            rows: rows.to_wire(),
        }
    }
}

/// The CSV columns, in their stable order (part of the public API: append only).
pub const CSV_COLUMNS: [&str; 15] = [
    "id",
    "at",
    "install_id",
    "plugin",
    "action",
    "actor_kind",
    "actor_id",
    "outcome",
    "duration_us",
    "fuel",
    "peak_memory_bytes",
    "host_calls",
    "bytes_in",
    "bytes_out",
    "caller_id",
];

fn encode_err(e: impl std::fmt::Display) -> Error {
    tracing::error!(error = %e, "encoding usage export");
    Error::internal()
}

/// What starts an export before any event: the CSV header row, nothing for JSON lines.
pub fn export_preamble(format: ExportFormat) -> Result<Vec<u8>, Error> {
    match format {
        ExportFormat::Jsonl => Ok(Vec::new()),
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(CSV_COLUMNS).map_err(encode_err)?;
            w.into_inner().map_err(encode_err)
        }
    }
}

/// Encodes events, one line (JSON) or record (CSV) each.
pub fn encode(format: ExportFormat, events: Vec<UsageEvent>) -> Result<Vec<u8>, Error> {
    match format {
        ExportFormat::Jsonl => {
            let mut out = Vec::new();
            for e in events {
                serde_json::to_writer(&mut out, &e.to_wire()).map_err(encode_err)?;
                out.push(b'\n');
            }
            Ok(out)
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for e in &events {
                let at =
                    e.at.to_offset(time::UtcOffset::UTC)
                        .format(&Rfc3339)
                        .map_err(encode_err)?;
                w.write_record([
                    e.id.to_string(),
                    at,
                    e.install_id.to_string(),
                    e.plugin.clone(),
                    e.action.clone(),
                    e.actor_kind.as_str().to_string(),
                    e.actor_id.to_string(),
                    e.outcome.as_str().to_string(),
                    e.duration_us.to_string(),
                    e.fuel.to_string(),
                    e.peak_memory_bytes.to_string(),
                    e.host_calls.to_string(),
                    e.bytes_in.to_string(),
                    e.bytes_out.to_string(),
                    e.caller_id.map(|c| c.to_string()).unwrap_or_default(),
                ])
                .map_err(encode_err)?;
            }
            w.into_inner().map_err(encode_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_core::{InstallId, InvocationId, Outcome, PrincipalKind};
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn ev(at: &str, plugin: &str, install: InstallId, outcome: Outcome, us: u64) -> UsageEvent {
        UsageEvent {
            id: InvocationId::new(),
            at: OffsetDateTime::parse(at, &Rfc3339).unwrap(),
            install_id: install,
            plugin: plugin.into(),
            action: "run".into(),
            actor_kind: PrincipalKind::Agent,
            actor_id: Uuid::nil(),
            outcome,
            duration_us: us,
            fuel: 10,
            peak_memory_bytes: us * 2,
            host_calls: 1,
            bytes_in: 3,
            bytes_out: 4,
            caller_id: None,
        }
    }

    #[test]
    fn csv_is_quoted_and_has_a_stable_header() {
        let mut e = ev(
            "2026-01-01T10:00:00Z",
            "@x/echo",
            InstallId::new(),
            Outcome::Ok,
            5,
        );
        e.action = "say, \"hi\"\nthere".into();
        let mut out = export_preamble(ExportFormat::Csv).unwrap();
        out.extend(encode(ExportFormat::Csv, vec![e.clone()]).unwrap());
        let mut r = csv::Reader::from_reader(out.as_slice());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, CSV_COLUMNS);
        let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(recs.len(), 1);
        assert_eq!(&recs[0][4], e.action);
        assert_eq!(&recs[0][1], "2026-01-01T10:00:00Z");
        let jl = encode(ExportFormat::Jsonl, vec![e.clone(), e.clone()]).unwrap();
        let lines: Vec<w::UsageEvent> = jl
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines, [e.clone().to_wire(), e.to_wire()]);
    }
}
