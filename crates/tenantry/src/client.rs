//! A small HTTP client for the Tenantry API. Requests are built from the API's wire
//! types (`tenantry-api-types`) and answers are read into them ([`Reply`]); errors
//! come back as the server's `{"error": {"code", "message", "request_id"}}`
//! ([`tenantry_api_types::ErrorBody`]), rendered for humans.

use anyhow::{Context, Result, anyhow};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use tenantry_api_types::ErrorBody;

use crate::cli::ClientArgs;
use crate::profile;

/// Where client commands send requests when nothing else says.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7431";

/// A failure with a stable code: the server's (`NOT_FOUND`, `UNAUTHENTICATED`, …) or
/// `CONNECTION_FAILED` when the server could not be reached. `--json` prints it as
/// `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    /// Advice for people, left out of the JSON form.
    pub hint: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code == "CONNECTION_FAILED" {
            return write!(f, "{}{}", self.message, self.hint);
        }
        write!(f, "{}: {}{}", self.code, self.message, self.hint)?;
        if let Some(r) = &self.request_id {
            write!(f, " [request {r}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The server and key a client command uses, and where they came from.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub url_from: String,
    pub key: Option<String>,
    pub key_from: String,
}

/// Resolves the server URL: `--url`/`TENANTRY_URL`, the login profile's, `listen` of
/// `--server-config` or ./tenantry.toml, then [`DEFAULT_URL`]. The key: `--api-key`/
/// `TENANTRY_API_KEY`, else the profile's, but only when talking to the profile's
/// server (a key is never sent to another server than the one it was checked on).
pub fn resolve(a: &ClientArgs) -> Result<Target> {
    let name = profile::name(a.profile.as_deref()).to_string();
    // Without a per-user directory (no $HOME) there are no profiles, unless one
    // was asked for.
    let prof = match profile::path() {
        Ok(path) => {
            let prof = profile::load(&path)?.profiles.get(&name).cloned();
            if a.profile.is_some() && prof.is_none() {
                anyhow::bail!(
                    "there is no login profile '{name}' in {}; run `tenantry login --profile {name}`",
                    path.display()
                );
            }
            prof
        }
        Err(e) if a.profile.is_some() => return Err(e),
        Err(_) => None,
    };
    let (url, url_from) = if let Some(u) = a.url.clone().filter(|u| !u.is_empty()) {
        (u, "--url or TENANTRY_URL".to_string())
    } else if let Some(p) = &prof {
        (p.url.clone(), format!("login profile '{name}'"))
    } else if let Some((u, file)) = listen_url(a.server_config.as_deref())? {
        (u, format!("`listen` in {file}"))
    } else {
        (DEFAULT_URL.to_string(), "the default".to_string())
    };
    let url = url.trim_end_matches('/').to_string();
    let (key, key_from) = match (&a.api_key, &prof) {
        (Some(k), _) if !k.is_empty() => (Some(k.clone()), "--api-key or TENANTRY_API_KEY".into()),
        (_, Some(p)) if p.url.trim_end_matches('/') == url => {
            (Some(p.api_key.clone()), format!("login profile '{name}'"))
        }
        _ => (None, "none".into()),
    };
    Ok(Target {
        url,
        url_from,
        key,
        key_from,
    })
}

/// The server address from a configuration file's `listen`: the given file, else
/// ./tenantry.toml when present. An unspecified address (0.0.0.0, ::) is reached on
/// loopback.
fn listen_url(config: Option<&Path>) -> Result<Option<(String, String)>> {
    let file = match config {
        Some(p) => p.to_path_buf(),
        None if Path::new("tenantry.toml").exists() => "tenantry.toml".into(),
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the configuration file {}", file.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", file.display()))?;
    let Some(listen) = table.get("listen").and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let url = match listen.parse::<SocketAddr>() {
        Ok(mut addr) => {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                });
            }
            format!("http://{addr}")
        }
        Err(_) => format!("http://{listen}"),
    };
    Ok(Some((url, file.display().to_string())))
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    /// A client for the server and key that `a` resolves to (see [`resolve`]).
    pub fn connect(a: &ClientArgs) -> Result<Self> {
        let t = resolve(a)?;
        Self::new(&t.url, t.key)
    }

    /// `https://` servers are verified against the bundled web PKI roots plus the
    /// CA file in `TENANTRY_CA_FILE` (PEM), if set.
    pub fn new(url: &str, key: Option<String>) -> Result<Self> {
        let extra = match std::env::var_os("TENANTRY_CA_FILE") {
            Some(path) => tenantry_tls::read_ca_file(std::path::Path::new(&path))
                .context("TENANTRY_CA_FILE")?,
            None => Vec::new(),
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tenantry_tls::client_config(&extra, &[b"h2", b"http/1.1"]))
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: url.trim_end_matches('/').to_string(),
            key,
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        // The causes say why (refused, a certificate not trusted, …).
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            why.push_str(": ");
            why.push_str(&cause.to_string());
            source = cause.source();
        }
        ApiError {
            code: "CONNECTION_FAILED".into(),
            message: format!("cannot reach the Tenantry server at {}: {why}", self.base),
            request_id: None,
            hint: "; start it with `tenantry serve`, or point at it with --url, TENANTRY_URL or `tenantry login`".into(),
        }
        .into()
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>> {
        self.send(Method::GET, path, None::<&()>).await
    }
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Reply<T>> {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Reply<T>> {
        self.send(Method::PUT, path, Some(body)).await
    }
    /// A PUT without a body (`PUT /v1/agents/{agent}/installs/{install}`).
    pub async fn put_empty<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>> {
        self.send(Method::PUT, path, None::<&()>).await
    }
    pub async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Reply<T>> {
        self.send(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>> {
        self.send(Method::DELETE, path, None::<&()>).await
    }

    /// A GET whose successful body is not JSON (exports): the response to read in
    /// chunks. Errors are rendered like [`Client::send`]'s.
    pub async fn get_raw(&self, path: &str) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.map_err(|e| self.unreachable(e))?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let text = res.text().await.context("reading the response")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Err(self.error(status, &value))
    }

    /// Sends `body` (as JSON) and reads a successful answer into `T`, keeping the JSON
    /// as the server sent it.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Reply<T>> {
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {path}");
        let mut req = self.http.request(method, &url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = res.status();
        let text = res.text().await.context("reading the response")?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            return Err(self.error(status, &value));
        }
        let body = T::deserialize(&value).with_context(|| {
            format!("the server's answer to {what} is not what this client expects")
        })?;
        Ok(Reply { json: value, body })
    }

    fn error(&self, status: reqwest::StatusCode, value: &Value) -> anyhow::Error {
        match ErrorBody::deserialize(value) {
            Ok(ErrorBody { error: e }) => {
                let code = e.code.as_str();
                let hint = if code == "UNAUTHENTICATED" && self.key.is_none() {
                    " (no API key: set TENANTRY_API_KEY or run `tenantry login`)"
                } else {
                    ""
                };
                ApiError {
                    code: code.to_string(),
                    message: e.message,
                    request_id: Some(e.request_id),
                    hint: hint.into(),
                }
                .into()
            }
            Err(_) => anyhow!("HTTP {status}: {value}"),
        }
    }
}

/// A successful answer: the JSON exactly as the server sent it (what `--json`
/// prints) and the same body read into its API type (what people are shown).
#[derive(Debug)]
pub struct Reply<T> {
    pub json: Value,
    pub body: T,
}

/// Percent-encodes one path segment (names such as `@scope/name` are split first).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
