//! The registry: publishers (operator), plugin search and details, reviews.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tenantry_api_types::{
    NewPublisherKey, PluginDetail, PluginSummary, PublisherKey, PublisherView, PutReview,
    RegisterPublisher, ReviewView,
};
use tenantry_core::scope::Session;
use tenantry_service::registry;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Authed, Json, Operator, Path, Query, Tenant};
use crate::wire::{ToDomain, ToWire};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_publisher, list_publishers))
        .routes(routes!(add_publisher_key))
        .routes(routes!(revoke_publisher_key))
        .routes(routes!(search))
        .routes(routes!(show))
        .routes(routes!(list_reviews))
        .routes(routes!(put_review))
}

/// Register a publisher with its first key (operator).
#[utoipa::path(post, path = "/v1/publishers", tag = "registry", request_body = RegisterPublisher, responses((status = 201, body = PublisherView)))]
async fn register_publisher(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Json(b): Json<RegisterPublisher>,
) -> ApiResult<(StatusCode, axum::Json<PublisherView>)> {
    let (publisher, key) =
        registry::register_publisher(&s.svc, &op, &ctx, &b.name, &b.key.to_domain()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json((publisher, vec![key]).to_wire()),
    ))
}

/// List publishers and their keys.
#[utoipa::path(get, path = "/v1/publishers", tag = "registry", responses((status = 200, body = Vec<PublisherView>)))]
async fn list_publishers(
    State(s): State<AppState>,
    _auth: Authed,
) -> ApiResult<axum::Json<Vec<PublisherView>>> {
    Ok(axum::Json(
        registry::list_publishers(&s.svc).await?.to_wire(),
    ))
}

/// Add a key to a publisher (operator; key rotation).
#[utoipa::path(post, path = "/v1/publishers/{publisher}/keys", tag = "registry", request_body = NewPublisherKey, params(("publisher" = String, Path)), responses((status = 201, body = PublisherKey)))]
async fn add_publisher_key(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(publisher): Path<String>,
    Json(b): Json<NewPublisherKey>,
) -> ApiResult<(StatusCode, axum::Json<PublisherKey>)> {
    let k = registry::add_publisher_key(&s.svc, &op, &ctx, &publisher, &b.to_domain()).await?;
    Ok((StatusCode::CREATED, axum::Json(k.to_wire())))
}

/// Revoke a publisher key (operator). Versions it signed stop being usable.
#[utoipa::path(delete, path = "/v1/publisher-keys/{key_id}", tag = "registry", params(("key_id" = String, Path)), responses((status = 204)))]
async fn revoke_publisher_key(
    State(s): State<AppState>,
    Operator(op, ctx): Operator,
    Path(key_id): Path<String>,
) -> ApiResult<StatusCode> {
    registry::revoke_publisher_key(&s.svc, &op, &ctx, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct SearchQuery {
    /// Words matched against name, description, capabilities and docs.
    #[serde(default)]
    q: String,
    /// At most this many results (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// Search the registry.
#[utoipa::path(get, path = "/v1/plugins", tag = "registry", params(SearchQuery), responses((status = 200, body = Vec<PluginSummary>)))]
async fn search(
    State(s): State<AppState>,
    _auth: Authed,
    Query(q): Query<SearchQuery>,
) -> ApiResult<axum::Json<Vec<PluginSummary>>> {
    Ok(axum::Json(
        registry::search(
            &s.svc,
            &q.q,
            crate::extract::page_limit("limit", q.limit, 200)?.unwrap_or(50),
        )
        .await?
        .to_wire(),
    ))
}

/// A plugin's details, versions and latest manifest.
#[utoipa::path(get, path = "/v1/plugins/{scope}/{name}", tag = "registry", params(("scope" = String, Path, description = "e.g. @acme"), ("name" = String, Path)), responses((status = 200, body = PluginDetail)))]
async fn show(
    State(s): State<AppState>,
    _auth: Authed,
    Path((scope, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<PluginDetail>> {
    Ok(axum::Json(
        registry::show(&s.svc, &format!("{scope}/{name}"))
            .await?
            .to_wire(),
    ))
}

/// Reviews of a plugin (the reviewing org is never shown).
#[utoipa::path(get, path = "/v1/plugins/{scope}/{name}/reviews", tag = "registry", params(("scope" = String, Path), ("name" = String, Path)), responses((status = 200, body = Vec<ReviewView>)))]
async fn list_reviews(
    State(s): State<AppState>,
    Authed(session): Authed,
    Path((scope, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<Vec<ReviewView>>> {
    let viewer = match &session {
        Session::Tenant(t) => Some(t),
        Session::Operator(_) => None,
    };
    Ok(axum::Json(
        registry::reviews(&s.svc, viewer, &format!("{scope}/{name}"))
            .await?
            .to_wire(),
    ))
}

/// Write or replace the caller's org's review.
#[utoipa::path(put, path = "/v1/plugins/{scope}/{name}/review", tag = "registry", request_body = PutReview, params(("scope" = String, Path), ("name" = String, Path)), responses((status = 200, body = ReviewView)))]
async fn put_review(
    State(s): State<AppState>,
    Tenant(t, ctx): Tenant,
    Path((scope, name)): Path<(String, String)>,
    Json(b): Json<PutReview>,
) -> ApiResult<axum::Json<ReviewView>> {
    Ok(axum::Json(
        registry::review(
            &s.svc,
            &t,
            &ctx,
            &format!("{scope}/{name}"),
            b.rating,
            &b.body,
        )
        .await?
        .to_wire(),
    ))
}
