//! Outbound HTTP(S) over `wasi:http/outgoing-handler`, blocking.
//!
//! The host checks every request against the install's egress grants and its
//! address policy, verifies TLS certificates, caps the response body and counts the
//! request as a host call. [`fetch`] follows redirects itself (at most
//! [`MAX_REDIRECTS`]); each hop is a new request the host checks again.
//!
//! ```ignore
//! use tenantry_plugin_sdk::http;
//! let res = http::Request::get("https://api.github.com/repos/o/r/issues")
//!     .header("authorization", &format!("Bearer {token}"))
//!     .header("user-agent", "my-plugin")
//!     .send()?;
//! let issues = res.json()?;
//! ```

use crate::Error;
use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use crate::bindings::wasi::io::streams::StreamError;

/// Redirects [`fetch`] follows.
pub const MAX_REDIRECTS: usize = 5;

/// An outbound request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// A response, its body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            ..Self::default()
        }
    }
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    /// A JSON body with `content-type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }
    /// Sends it, following redirects ([`fetch`]).
    pub fn send(&self) -> Result<Response, Error> {
        fetch(self)
    }
}

impl Response {
    /// A header's value (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Failed(format!("the response is not JSON: {e}")))
    }
}

/// Sends `req`, following up to [`MAX_REDIRECTS`] redirects (`303` turns into a
/// `GET` without a body).
pub fn fetch(req: &Request) -> Result<Response, Error> {
    let mut req = req.clone();
    for _ in 0..=MAX_REDIRECTS {
        let res = send_once(&req)?;
        let location = match res.status {
            301 | 302 | 303 | 307 | 308 => res.header("location").map(str::to_string),
            _ => None,
        };
        let Some(location) = location else {
            return Ok(res);
        };
        req.url = join(&req.url, &location);
        if res.status == 303 {
            req.method = "GET".into();
            req.body = None;
        }
    }
    Err(Error::Failed(format!("more than {MAX_REDIRECTS} redirects")))
}

/// One request, no redirect followed.
pub fn send_once(req: &Request) -> Result<Response, Error> {
    let url = Url::parse(&req.url)?;
    let failed = |code: ErrorCode| error(&req.method, &req.url, code);
    let entries: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&entries)
        .map_err(|e| Error::InvalidInput(format!("a request header is not allowed: {e:?}")))?;
    let out = OutgoingRequest::new(headers);
    let method = match req.method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let bad = |what: &str| Error::InvalidInput(format!("bad {what} in '{}'", req.url));
    out.set_method(&method).map_err(|_| bad("method"))?;
    out.set_scheme(Some(&url.scheme)).map_err(|_| bad("scheme"))?;
    out.set_authority(Some(&url.authority))
        .map_err(|_| bad("host"))?;
    out.set_path_with_query(Some(&url.path_and_query))
        .map_err(|_| bad("path"))?;
    // No body: none is opened, so the host knows the request ends with its
    // headers. A body of one write (≤ 4096 bytes) is written and finished before
    // the request is handed over; a longer one streams after it.
    let pending = match req.body.as_deref() {
        None => outgoing_handler::handle(out, None).map_err(failed)?,
        Some(bytes) => {
            let body = out
                .body()
                .map_err(|_| Error::Failed("request body unavailable".into()))?;
            let write = |body: &OutgoingBody, bytes: &[u8]| -> Result<(), Error> {
                let stream = body
                    .write()
                    .map_err(|_| Error::Failed("request body unavailable".into()))?;
                for chunk in bytes.chunks(4096) {
                    stream
                        .blocking_write_and_flush(chunk)
                        .map_err(|e| stream_error(&req.method, &req.url, e))?;
                }
                Ok(())
            };
            if bytes.len() <= 4096 {
                write(&body, bytes)?;
                OutgoingBody::finish(body, None).map_err(failed)?;
                outgoing_handler::handle(out, None).map_err(failed)?
            } else {
                let pending = outgoing_handler::handle(out, None).map_err(failed)?;
                write(&body, bytes)?;
                OutgoingBody::finish(body, None).map_err(failed)?;
                pending
            }
        }
    };

    let response = loop {
        match pending.get() {
            Some(r) => break r,
            None => pending.subscribe().block(),
        }
    };
    let response = response
        .map_err(|_| Error::Failed("response already taken".into()))?
        .map_err(failed)?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| Error::Failed("response body unavailable".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| Error::Failed("response body unavailable".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(&req.method, &req.url, e)),
            }
        }
    }
    let _ = IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn stream_error(method: &str, url: &str, e: StreamError) -> Error {
    match e {
        StreamError::LastOperationFailed(e) => {
            match crate::bindings::wasi::http::types::http_error_code(&e) {
                Some(code) => error(method, url, code),
                None => Error::Failed(format!("{method} {url}: {}", e.to_debug_string())),
            }
        }
        StreamError::Closed => Error::Failed(format!("{method} {url}: the connection closed")),
    }
}

/// The guest-side error for a wasi:http error code: a refusal by the egress
/// policy is `egress-denied`; the rest say which code it was.
fn error(method: &str, url: &str, code: ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::EgressDenied(format!(
            "outbound HTTP to {url} is not allowed by the egress policy"
        )),
        ErrorCode::HttpResponseBodySize(n) => Error::LimitExceeded(format!(
            "{method} {url}: the response is over the host's cap of {} bytes (http-response-body-size)",
            n.unwrap_or_default()
        )),
        other => Error::Failed(format!("{method} {url}: {}", code_name(&other))),
    }
}

/// The WIT name of an error code (`tls-certificate-error`, …).
pub fn code_name(code: &ErrorCode) -> String {
    let debug = format!("{code:?}");
    let name = debug.split(['(', ' ', '{']).next().unwrap_or_default();
    let name = name.rsplit("::").next().unwrap_or_default();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

struct Url {
    scheme: Scheme,
    authority: String,
    path_and_query: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, Error> {
        let bad = || Error::InvalidInput(format!("'{url}' is not an absolute http(s) URL"));
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => Scheme::Other(other.to_string()),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let mut path_and_query = rest[end..].split('#').next().unwrap_or_default().to_string();
        if path_and_query.is_empty() || path_and_query.starts_with('?') {
            path_and_query.insert(0, '/');
        }
        Ok(Url {
            scheme,
            authority: authority.to_string(),
            path_and_query,
        })
    }
}

/// Resolves a `Location` against the URL it came from.
fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..end]);
    if let Some(path) = location.strip_prefix("//") {
        return format!("{scheme}://{path}");
    }
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = &rest[end..];
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{origin}{dir}/{location}")
}
