//! Error rendering: every error leaves as `{"error": {"code", "message", "request_id"}}`
//! (`tenantry_api_types::ErrorBody`), with the HTTP status its code maps to
//! ([`status`]) and the headers its facts call for ([`retry_headers`]).
//!
//! Handlers and extractors return [`ApiError`]. Its response carries the domain error
//! in an extension; the [`render_errors`] middleware, which owns the request id,
//! writes the JSON body. Responses that axum itself produced (unknown route, wrong
//! method) get the same shape.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tenantry_api_types as w;
use tenantry_core::{Error, ErrorCode, RateLimitState, RequestId};

use crate::wire::ToWire;

/// The HTTP status an error code is answered with.
pub fn status(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidRequest | InvalidManifest | InvalidConfig | InvalidInput | InvalidGrant
        | InvalidVersion | InvalidSignature | KeyNotValid | ArtifactTampered | InvalidArtifact => {
            StatusCode::BAD_REQUEST
        }
        Unauthenticated => StatusCode::UNAUTHORIZED,
        PermissionDenied | OrgSuspended | PolicyDenied => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        VersionNotIncreasing | Conflict | DependencyMissing | DependencyInUse | DependencyCycle
        | InstallDisabled | PluginNotRunnable => StatusCode::CONFLICT,
        TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RateLimited | QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `Retry-After` (whole seconds, rounded up, at least 1) and, for a rate-limit
/// refusal, that limit's `RateLimit-Policy` and `RateLimit`.
pub fn retry_headers(e: &Error, headers: &mut HeaderMap) {
    if let Some(r) = &e.rate_limit {
        rate_limit_headers(std::slice::from_ref(r), headers);
    }
    if let Some(after) = e.retry_after {
        headers.insert(
            HeaderName::from_static("retry-after"),
            HeaderValue::from(ceil_secs(after).max(1)),
        );
    }
}

/// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) for the
/// rate limits a request was counted against, one list item each, in order:
/// `"org";q=600;w=60` and `"org";r=599;t=1`. Nothing when there are none.
pub fn rate_limit_headers(states: &[RateLimitState], headers: &mut HeaderMap) {
    if states.is_empty() {
        return;
    }
    let join = |item: &dyn Fn(&RateLimitState) -> String| {
        states.iter().map(item).collect::<Vec<_>>().join(", ")
    };
    let policy = join(&|s| {
        format!(
            "{};q={};w={}",
            sf_string(s.name),
            s.limit,
            ceil_secs(s.window).max(1)
        )
    });
    let state = join(&|s| {
        format!(
            "{};r={};t={}",
            sf_string(s.name),
            s.remaining,
            ceil_secs(s.reset_after)
        )
    });
    // Rendered from numbers and quoted names, so always valid values.
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A structured-field string: quoted, with `\` and `"` escaped and non-printable
/// characters dropped.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
    out.push('"');
    out
}

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
        let mut r = status(self.0.code).into_response();
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
        let body = w::ErrorBody {
            error: w::ErrorDetail {
                code: e.code.to_wire(),
                details: e.details.clone(),
                message: e.message.clone(),
                request_id: id.to_string(),
            },
        };
        res = (status, axum::Json(body)).into_response();
        for (k, v) in headers.iter() {
            if k != axum::http::header::CONTENT_TYPE {
                res.headers_mut().insert(k.clone(), v.clone());
            }
        }
        retry_headers(&e, res.headers_mut());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn org(remaining: u64, reset_after: Duration) -> RateLimitState {
        RateLimitState {
            name: "org",
            limit: 600,
            window: Duration::from_secs(60),
            remaining,
            reset_after,
        }
    }

    /// The same values as `tenantry_limits`' renderers of the draft (its tests).
    #[test]
    fn rate_limit_and_retry_headers_render_per_the_draft() {
        let e = Error::new(ErrorCode::RateLimited, "slow down")
            .with_rate_limit(org(0, Duration::from_millis(29_001)))
            .with_retry_after(Duration::from_millis(1));
        let mut h = HeaderMap::new();
        retry_headers(&e, &mut h);
        assert_eq!(h["ratelimit-policy"], "\"org\";q=600;w=60");
        assert_eq!(h["RateLimit"], "\"org\";r=0;t=30");
        assert_eq!(h["Retry-After"], "1");

        let mut h = HeaderMap::new();
        let install = RateLimitState {
            name: "a\"b",
            limit: 5,
            window: Duration::from_millis(1500),
            remaining: 4,
            reset_after: Duration::ZERO,
        };
        rate_limit_headers(&[org(599, Duration::from_millis(100)), install], &mut h);
        assert_eq!(
            h["RateLimit-Policy"],
            "\"org\";q=600;w=60, \"a\\\"b\";q=5;w=2"
        );
        assert_eq!(h["RateLimit"], "\"org\";r=599;t=1, \"a\\\"b\";r=4;t=0");

        let mut h = HeaderMap::new();
        rate_limit_headers(&[], &mut h);
        retry_headers(&Error::invalid("x"), &mut h);
        assert!(h.is_empty());

        let mut h = HeaderMap::new();
        let quota = Error::new(ErrorCode::QuotaExceeded, "used up")
            .with_retry_after(Duration::from_secs(15));
        retry_headers(&quota, &mut h);
        assert_eq!(h["Retry-After"], "15");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn codes_map_to_their_statuses() {
        for (code, s) in [
            (ErrorCode::InvalidRequest, 400),
            (ErrorCode::ArtifactTampered, 400),
            (ErrorCode::Unauthenticated, 401),
            (ErrorCode::PermissionDenied, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::VersionNotIncreasing, 409),
            (ErrorCode::PluginNotRunnable, 409),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::QuotaExceeded, 429),
            (ErrorCode::Internal, 500),
            (ErrorCode::Unavailable, 503),
        ] {
            assert_eq!(status(code).as_u16(), s, "{code}");
        }
    }
}
