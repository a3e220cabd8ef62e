//! Error rendering: every error leaves as `{"error": {"code", "message", "request_id"}}`.
//!
//! Handlers and extractors return [`ApiError`]. Its response carries the domain error
//! in an extension; the [`render_errors`] middleware, which owns the request id,
//! writes the JSON body. Responses that axum itself produced (unknown route, wrong
//! method) get the same shape.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenantry_core::{Error, ErrorCode, RequestId};

/// A domain error on its way out.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<tenantry_store::StoreError> for ApiError {
    fn from(e: tenantry_store::StoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = status.into_response();
        r.extensions_mut().insert(self.0);
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The request id of the current request (set by [`render_errors`]).
#[derive(Debug, Clone, Copy)]
pub struct ReqId(pub RequestId);

/// Assigns a request id, runs the request inside a span that carries it, renders
/// error bodies, and says how long the server spent on the request
/// (`Server-Timing: app;dur=<ms>`, from here to the response; a client's total
/// minus this is network and queueing outside the handlers).
pub async fn render_errors(mut req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = RequestId::new();
    req.extensions_mut().insert(ReqId(id));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut res = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = res.status();
    let error = res.extensions_mut().remove::<Error>().or_else(|| {
        (status.is_client_error() || status.is_server_error()).then(|| fallback_error(status, &res))
    });
    if let Some(e) = error {
        if status.is_server_error() {
            tracing::error!(parent: &span, code = %e.code, "request failed");
        } else {
            tracing::info!(parent: &span, code = %e.code, status = status.as_u16(), "request refused");
        }
        let mut headers = std::mem::take(res.headers_mut());
        headers.remove(axum::http::header::CONTENT_LENGTH);
        let mut body = json!({"error": {"code": e.code, "message": e.message, "request_id": id}});
        if let Some(d) = &e.details {
            body["error"]["details"] = d.clone();
        }
        res = (status, axum::Json(body)).into_response();
        for (k, v) in headers.iter() {
            if k != axum::http::header::CONTENT_TYPE {
                res.headers_mut().insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &e.headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                res.headers_mut().insert(*k, v);
            }
        }
        // RFC 9110 §11.6.1: a 401 names the scheme that would work (RFC 6750 for
        // bearer tokens).
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="tenantry""#),
            );
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        res.headers_mut().insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "app;dur={:.3}",
        started.elapsed().as_secs_f64() * 1e3
    )) {
        res.headers_mut().insert("server-timing", v);
    }
    res
}

fn fallback_error(status: StatusCode, _res: &Response) -> Error {
    match status {
        StatusCode::NOT_FOUND => {
            Error::new(ErrorCode::NotFound, "no such route; see /openapi.json")
        }
        StatusCode::METHOD_NOT_ALLOWED => Error::new(
            ErrorCode::InvalidRequest,
            "method not allowed on this route; see /openapi.json",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Error::new(
            ErrorCode::TooLarge,
            "request body is over this route's limit",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::new(
            ErrorCode::InvalidRequest,
            "send 'Content-Type: application/json'",
        ),
        s if s.is_server_error() => Error::internal(),
        _ => Error::new(ErrorCode::InvalidRequest, "request refused"),
    }
}
