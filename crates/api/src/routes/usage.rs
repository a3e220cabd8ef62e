//! The org's usage events: list (paged), summary, export for billing.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::Deserialize;
use tenantry_api_types::{
    ExportFormat, GroupBy, InstallId, InvocationId, UsageEvent, UsageSummary,
};
use tenantry_core::TenantScope;
use tenantry_service::usage::ExportPager;
use tenantry_store::UsageFilter;
use time::OffsetDateTime;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Query, Tenant};
use crate::wire::usage::{encode, export_preamble};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(summary))
        .routes(routes!(export))
}

#[derive(Deserialize, IntoParams)]
pub struct UsageQuery {
    /// Only events at or after this time (RFC 3339; URL-encode a `+` offset).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    /// Only events before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<OffsetDateTime>,
    /// Cursor: only events after this one (the last `id` of the previous page).
    after: Option<InvocationId>,
    install_id: Option<InstallId>,
    /// Page size (1-10,000; default 10,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

/// Usage events (one per invocation), oldest first, ordered by `(at, id)`. Page with
/// `after` = the `id` of the last event of the previous page; an empty page is the end.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageQuery), responses((status = 200, body = Vec<UsageEvent>), (status = 400, description = "INVALID_REQUEST: a parameter does not parse or since > until")))]
async fn list(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Query(q): Query<UsageQuery>,
) -> ApiResult<axum::Json<Vec<UsageEvent>>> {
    let f = UsageFilter {
        since: q.since,
        until: q.until,
        install_id: q.install_id.to_domain(),
        after: q.after.to_domain(),
        limit: crate::extract::page_limit(
            "limit",
            q.limit,
            tenantry_service::usage::MAX_LIST_LIMIT,
        )?,
    };
    Ok(axum::Json(
        tenantry_service::usage::list(&s.svc, &t, &f)
            .await?
            .to_wire(),
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct SummaryQuery {
    /// `none` (default), `day` (UTC), `plugin`, `install` or `agent` (invoking principal).
    #[serde(default)]
    group_by: GroupBy,
    /// Range start, inclusive (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    /// Range end, exclusive (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<OffsetDateTime>,
    install_id: Option<InstallId>,
}

/// Usage summarised per group: invocations, errors (outcome not `OK`), nearest-rank
/// p50/p95/p99 wall time, and totals of fuel, host calls and bytes.
#[utoipa::path(get, path = "/v1/usage/summary", tag = "usage", params(SummaryQuery), responses((status = 200, body = UsageSummary), (status = 400, description = "INVALID_REQUEST: unknown group_by, bad time, since > until"), (status = 413, description = "TOO_LARGE: too many events in range; narrow it")))]
async fn summary(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<axum::Json<UsageSummary>> {
    let f = UsageFilter {
        since: q.since,
        until: q.until,
        install_id: q.install_id.to_domain(),
        ..UsageFilter::default()
    };
    Ok(axum::Json(
        tenantry_service::usage::summarize(&s.svc, &t, &f, q.group_by.to_domain())
            .await?
            .to_wire(),
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `jsonl` (default: one event per line, as in `GET /v1/usage`) or `csv` (header
    /// row, then one event per row; columns in docs/api.md).
    #[serde(default)]
    format: ExportFormat,
    /// Range start, inclusive (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<OffsetDateTime>,
    /// Range end, exclusive (RFC 3339; default: the time of the request).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<OffsetDateTime>,
    /// Resume after this event id.
    after: Option<InvocationId>,
    install_id: Option<InstallId>,
}

/// Every usage event in range, streamed in `(at, id)` order as JSON lines or CSV, for
/// billing systems. Read page by page; a failure mid-stream aborts the response (no
/// clean end of body), so a truncated export cannot pass for a complete one.
#[utoipa::path(get, path = "/v1/usage/export", tag = "usage", params(ExportQuery), responses((status = 200, description = "JSON lines or CSV (header row first)", content((String = "application/x-ndjson"), (String = "text/csv"))), (status = 400, description = "INVALID_REQUEST: unknown format, bad time, since > until")))]
async fn export(
    State(s): State<AppState>,
    Tenant(t, _): Tenant,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let f = UsageFilter {
        since: q.since,
        until: q.until,
        install_id: q.install_id.to_domain(),
        after: q.after.to_domain(),
        limit: None,
    };
    let format = q.format;
    let mut pager = ExportPager::new(&t, &f)?;
    // The first page is read before answering, so errors get a proper status.
    let mut first = export_preamble(format)?;
    if let Some(page) = pager.next_page(&s.svc, &t).await? {
        first.extend(encode(format, page)?);
    }
    let rest = futures::stream::try_unfold(
        (s, t, pager),
        move |(s, t, mut pager): (AppState, TenantScope, ExportPager)| async move {
            match pager.next_page(&s.svc, &t).await {
                Ok(Some(page)) => {
                    let bytes = encode(format, page).map_err(io)?;
                    Ok(Some((Bytes::from(bytes), (s, t, pager))))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(io(e)),
            }
        },
    );
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) })
        .chain(rest);
    let filename = format!("attachment; filename=\"usage.{}\"", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// A mid-stream failure: logged, then the body is aborted.
fn io(e: tenantry_core::Error) -> std::io::Error {
    tracing::error!(code = %e.code, "usage export failed mid-stream");
    std::io::Error::other(e.code.as_str())
}
