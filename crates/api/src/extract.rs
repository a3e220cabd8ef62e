//! Extractors: authentication and input parsing with Tenantry's error codes.
//!
//! - [`Tenant`]: an authenticated principal of an org; the org comes from its key.
//! - [`Operator`]: the platform operator.
//! - [`Invoking`]: like `Tenant`, for the invoke route (see its docs).
//! - [`Authed`]: either (registry reads).
//! - [`Json`], [`Query`] and [`Path`]: like axum's, but malformed input becomes
//!   `INVALID_REQUEST` (or `TOO_LARGE`), and an id that does not parse in a path is
//!   `NOT_FOUND`, exactly like an id that does not exist.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tenantry_core::scope::Session;
use tenantry_core::{Error, ErrorCode, OperatorScope, TenantScope};
use tenantry_service::RequestCtx;
use tenantry_service::invoke::Invoker;

use crate::AppState;
use crate::error::{ApiError, ReqId};

/// The API key in `Authorization: Bearer …` (empty when there is none).
fn bearer(parts: &Parts) -> &str {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    header.strip_prefix("Bearer ").unwrap_or_default().trim()
}

async fn session(parts: &Parts, state: &AppState) -> Result<Session, ApiError> {
    let s = tenantry_service::auth::authenticate(&state.svc, bearer(parts)).await?;
    if let Session::Tenant(scope) = &s {
        breakglass_audited(parts, state, scope).await?;
    }
    Ok(s)
}

/// A request made with a break-glass token is recorded in the org's audit trail
/// before it is served (see `tenantry_service::breakglass`); other scopes pass.
async fn breakglass_audited(
    parts: &Parts,
    state: &AppState,
    scope: &TenantScope,
) -> Result<(), ApiError> {
    if scope.breakglass().is_some() {
        tenantry_service::breakglass::record_request(
            &state.svc,
            scope,
            &ctx(parts),
            parts.method.as_str(),
            parts.uri.path(),
        )
        .await?;
    }
    Ok(())
}

/// The request context (request id) for audit entries.
pub fn ctx(parts: &Parts) -> RequestCtx {
    parts
        .extensions
        .get::<ReqId>()
        .map(|r| RequestCtx { request_id: r.0 })
        .unwrap_or_default()
}

/// An org principal, plus the request context.
pub struct Tenant(pub TenantScope, pub RequestCtx);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let scope = tenantry_service::auth::tenant(&state.svc, bearer(parts)).await?;
        breakglass_audited(parts, state, &scope).await?;
        Ok(Tenant(scope, ctx(parts)))
    }
}

/// An org principal invoking an action, plus the request context: like [`Tenant`],
/// but a key its org's rate limit refused moments ago is refused again before it is
/// authenticated (`tenantry_service::invoke::invoker`).
pub struct Invoking(pub Invoker, pub RequestCtx);

impl FromRequestParts<AppState> for Invoking {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let who = tenantry_service::invoke::invoker(&state.svc, bearer(parts)).await?;
        breakglass_audited(parts, state, &who.scope).await?;
        Ok(Invoking(who, ctx(parts)))
    }
}

/// The operator, plus the request context.
pub struct Operator(pub OperatorScope, pub RequestCtx);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match session(parts, state).await? {
            Session::Operator(o) => Ok(Operator(o, ctx(parts))),
            Session::Tenant(_) => Err(Error::denied("this route needs an operator API key").into()),
        }
    }
}

/// The request context alone (for routes whose principal is [`Authed`]).
pub struct Ctx(pub RequestCtx);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx(ctx(parts)))
    }
}

/// Any authenticated principal.
pub struct Authed(pub Session);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Authed(session(parts, state).await?))
    }
}

/// JSON body with Tenantry's error codes. Text holding NUL is refused
/// ([`tenantry_core::text`]), so both stores see the same strings.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(Error::invalid("send 'Content-Type: application/json'").into());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Error::new(
                        ErrorCode::TooLarge,
                        "request body is over this route's limit",
                    )
                } else {
                    Error::invalid(e.body_text())
                }
            })?;
        if tenantry_core::text::json_has_nul(&bytes) {
            return Err(Error::invalid(tenantry_core::text::NUL_REFUSED).into());
        }
        // The usual case parses once, straight into `T` (a secret goes directly into
        // its zeroizing type). Only a body that does not fit `T` is parsed again as a
        // value: to accept `5.0` for an integer, and to name the field that is wrong.
        // (Its error is not used: serde_json reports some shape errors, such as a
        // number where an enum's string belongs, as syntax errors.)
        if let Ok(v) = serde_json::from_slice::<T>(&bytes) {
            return Ok(Json(v));
        }
        let mut value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("body is not valid JSON: {e}")))?;
        integral_floats_as_integers(&mut value);
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| {
                let path = e.path().to_string();
                let why = e.into_inner();
                if path == "." {
                    Error::invalid(format!("body does not match the expected shape: {why}"))
                } else {
                    Error::invalid(format!(
                        "body does not match the expected shape: {path}: {why}"
                    ))
                }
                .into()
            })
    }
}

/// JSON Schema's `integer` is any number without a fractional part (`5.0` is one),
/// so such numbers are given to serde as integers, as the OpenAPI document promises.
fn integral_floats_as_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
            {
                if f >= 0.0 && f <= u64::MAX as f64 {
                    *v = Value::from(f as u64);
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *v = Value::from(f as i64);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(o) => o.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// `application/json`, or any `application/…+json`, as axum's own `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let Some(sub) = essence
        .split_once('/')
        .filter(|(ty, _)| ty.eq_ignore_ascii_case("application"))
        .map(|(_, sub)| sub.to_ascii_lowercase())
    else {
        return false;
    };
    sub == "json" || sub.ends_with("+json")
}

/// Refuses a request whose path or query holds a NUL (`%00`) before any routing,
/// extraction or storage sees it (the same rule as [`Json`]'s).
pub async fn refuse_nul(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    if tenantry_core::text::uri_has_nul(uri.path())
        || uri.query().is_some_and(tenantry_core::text::uri_has_nul)
    {
        return ApiError(Error::invalid(tenantry_core::text::NUL_REFUSED)).into_response();
    }
    next.run(req).await
}

/// Path parameters; anything that does not parse is `NOT_FOUND`.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(Error::not_found("resource").into())
            }
            Err(e) => Err(Error::invalid(e.body_text()).into()),
        }
    }
}

/// A page size from the query: absent, or 1 to `max` (anything else is refused
/// naming the parameter, as the OpenAPI document's bounds say).
pub fn page_limit(name: &str, value: Option<u32>, max: u32) -> Result<Option<u32>, ApiError> {
    match value {
        Some(v) if v == 0 || v > max => Err(Error::invalid(format!(
            "query parameter '{name}' must be 1 to {max} (got {v})"
        ))
        .into()),
        v => Ok(v),
    }
}

/// Query-string parameters; anything that does not parse (unknown enum value, bad
/// time, bad id, wrong type) is `INVALID_REQUEST` naming the parameter. The one
/// query extractor of every route.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let param = e.path().to_string();
                let why = e.into_inner();
                if param == "." {
                    Error::invalid(format!("the query string is not valid: {why}")).into()
                } else {
                    Error::invalid(format!("query parameter '{param}' is not valid: {why}")).into()
                }
            })
    }
}
