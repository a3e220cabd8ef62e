//! `/healthz`.

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz))
}

/// Liveness, plus which isolation layers this server runs with.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "healthy")))]
async fn healthz(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok", "isolation": *state.isolation}))
}
