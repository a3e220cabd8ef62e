//! `/healthz` (liveness), `/readyz` (readiness, measured) and `/metrics`
//! (Prometheus text; an operator key, or a scrape from `metrics_allow_cidrs`).

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use tenantry_service::health::{self, Status};
use tenantry_service::metrics::Metrics;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness, plus which isolation layers this server runs with.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "healthy")))]
async fn healthz(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok", "isolation": *state.isolation}))
}

/// Readiness: the store, Redis (when used), the sandbox runtime and the recorder,
/// each asked now and timed. 503 when a check is down; 200 with `"status":
/// "degraded"` when the server serves with less than it should (each check says what).
#[utoipa::path(get, path = "/readyz", tag = "system", responses(
    (status = 200, description = "ready (possibly degraded: see each check)"),
    (status = 503, description = "not ready: a check is down"),
))]
async fn readyz(State(state): State<AppState>) -> Response {
    let r = health::readiness(&state.svc).await;
    let checks: serde_json::Map<String, serde_json::Value> = r
        .checks
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                serde_json::json!({
                    "status": c.status.as_str(),
                    "took_ms": (c.took.as_secs_f64() * 1e3 * 1e3).round() / 1e3,
                    "detail": c.detail,
                }),
            )
        })
        .collect();
    let code = if r.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = match r.status() {
        Status::Down => "not_ready",
        s => s.as_str(),
    };
    (
        code,
        axum::Json(serde_json::json!({"status": status, "checks": checks})),
    )
        .into_response()
}

/// The metrics exposition. Scrapes from an allowed address need no key; anyone
/// else needs an operator key (an org's key is refused: the figures span orgs).
pub(crate) async fn metrics(
    State(state): State<AppState>,
    mut parts: Parts,
) -> ApiResult<Response> {
    let from_allowed = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(a)| {
            let ip = a.ip().to_canonical();
            state.metrics_from.iter().any(|n| n.contains(&ip))
        });
    if !from_allowed {
        use axum::extract::FromRequestParts;
        crate::extract::Operator::from_request_parts(&mut parts, &state).await?;
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.svc.metrics_text(),
    )
        .into_response())
}

/// Counts every answered request by route template (never the raw path, so ids do
/// not become labels), method and status, with its latency.
pub(crate) async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = req.method().clone();
    let res = next.run(req).await;
    metrics.http_request(
        &route,
        method.as_str(),
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}
