//! A small HTTP client for the Tenantry API. Errors come back as the server's
//! `{"error": {"code", "message", "request_id"}}`, rendered for humans.

use anyhow::{Context, Result, anyhow};
use reqwest::Method;
use serde_json::Value;

use crate::cli::Global;

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub fn new(g: &Global) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: g.url.trim_end_matches('/').to_string(),
            key: g.api_key.clone(),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Option<Value>) -> Result<Value> {
        self.send(Method::PUT, path, body).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Result<Value> {
        self.send(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.send(Method::DELETE, path, None).await
    }

    /// A GET whose successful body is not JSON (exports): the response to read in
    /// chunks. Errors are rendered like [`Client::send`]'s.
    pub async fn get_raw(&self, path: &str) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.map_err(|e| {
            anyhow!("cannot reach the Tenantry server at {}: {e}; start it with `tenantry serve` or set TENANTRY_URL", self.base)
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let text = res.text().await.context("reading the response")?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Err(self.error(status, &value))
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.map_err(|e| {
            anyhow!("cannot reach the Tenantry server at {}: {e}; start it with `tenantry serve` or set TENANTRY_URL", self.base)
        })?;
        let status = res.status();
        let text = res.text().await.context("reading the response")?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        Err(self.error(status, &value))
    }

    fn error(&self, status: reqwest::StatusCode, value: &Value) -> anyhow::Error {
        let e = &value["error"];
        match (e["code"].as_str(), e["message"].as_str()) {
            (Some(code), Some(msg)) => {
                let hint = if code == "UNAUTHENTICATED" && self.key.is_none() {
                    " (TENANTRY_API_KEY is not set)"
                } else {
                    ""
                };
                anyhow!(
                    "{code}: {msg}{hint} [request {}]",
                    e["request_id"].as_str().unwrap_or("?")
                )
            }
            _ => anyhow!("HTTP {status}: {value}"),
        }
    }
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
