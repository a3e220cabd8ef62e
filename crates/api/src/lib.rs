//! `tenantry-api`: the HTTP+JSON API under `/v1`.
//!
//! Handlers are thin: extract (auth, path, body; bodies parse into the wire types of
//! `tenantry-api-types`), call one `tenantry-service` function, return its result
//! converted into its wire type ([`wire`]). Every route is registered through
//! `utoipa-axum`, so the OpenAPI document at `/openapi.json` is generated from the
//! same route table the server runs (and the cross-tenant probe test walks it).

pub mod error;
pub mod extract;
pub mod openapi;
mod routes;
pub mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use std::sync::Arc;
use tenantry_service::Service;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Shared, not copied: axum clones the state for every request.
    pub svc: Arc<Service>,
    /// Which isolation layers are active, for `/healthz`.
    pub isolation: Arc<serde_json::Value>,
    /// Addresses that may scrape `/metrics` without an operator key.
    pub metrics_from: Arc<Vec<ipnet::IpNet>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry API",
        description = "Multi-tenant WebAssembly plugin host. Authenticate with 'Authorization: Bearer tny_…'. Errors are {\"error\": {\"code\", \"message\", \"request_id\"}}."
    ),
    components(schemas(tenantry_api_types::ErrorCode))
)]
struct ApiDoc;

/// Default body limit for JSON routes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Builds the router and its OpenAPI document.
pub fn router(state: AppState) -> Router {
    let publish_limit = usize::try_from(state.svc.settings.max_artifact_bytes)
        .unwrap_or(usize::MAX / 2)
        .saturating_mul(4)
        / 3
        + 1024 * 1024;
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::system::routes())
        .merge(routes::orgs::routes())
        .merge(routes::registry::routes())
        .merge(routes::publish::routes().layer(DefaultBodyLimit::max(publish_limit)))
        .merge(routes::members::routes())
        .merge(routes::installs::routes())
        .merge(routes::secrets::routes())
        .merge(routes::audit::routes())
        .merge(routes::breakglass::routes())
        .merge(routes::keys::routes())
        .merge(routes::usage::routes())
        .merge(routes::invoke::routes().layer(DefaultBodyLimit::max(
            tenantry_service::invoke::MAX_INPUT_BYTES + 4096,
        )))
        .merge(routes::executions::routes().layer(DefaultBodyLimit::max(
            tenantry_service::executions::MAX_REQUEST_BYTES,
        )))
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let doc = openapi::complete(
        &doc,
        &openapi::Contract {
            tiers: state.svc.settings.tiers.keys().cloned().collect(),
            max_memory_bytes: state.svc.runtime.config().max_memory_bytes,
        },
    );
    // Serialised once: the document never changes while the server runs.
    let doc = axum::body::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    api.route(
        "/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    doc,
                )
            }
        }),
    )
    .route("/metrics", axum::routing::get(routes::system::metrics))
    .fallback(|| async { error::ApiError(tenantry_core::Error::not_found("route")) })
    .layer(axum::middleware::from_fn_with_state(
        state.svc.metrics.clone(),
        routes::system::count_request,
    ))
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
    .layer(axum::middleware::from_fn(extract::refuse_nul))
    .layer(axum::middleware::from_fn(error::render_errors))
    .with_state(state)
}
