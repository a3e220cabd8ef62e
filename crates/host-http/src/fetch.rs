//! `tenantry:plugin/http@0.1.0` (`fetch`), kept for 0.1.0 plugins: the same egress
//! client as wasi:http, plus the redirects it has always followed itself (each
//! `Location` checked again as a new request) and the body read in full under the
//! cap.

use crate::HttpHost;
use crate::client::EgressError;
use tenantry_world::GuestError;
use tenantry_world::bindings::tenantry::plugin::http::{self, Request, Response};

impl From<EgressError> for GuestError {
    fn from(e: EgressError) -> Self {
        match e {
            EgressError::Denied(m) => GuestError::EgressDenied(m),
            EgressError::Invalid(m) => GuestError::InvalidInput(m),
            other => GuestError::Failed(other.to_string()),
        }
    }
}

impl HttpHost {
    async fn fetch_following(&self, req: Request) -> Result<Response, GuestError> {
        let mut method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| GuestError::InvalidInput(format!("bad HTTP method '{}'", req.method)))?;
        let mut url = reqwest::Url::parse(&req.url)
            .map_err(|e| GuestError::InvalidInput(format!("bad URL: {e}")))?;
        let mut body = req.body;
        let hooks = &self.wasi.hooks;
        let policy = hooks.egress.policy();
        for _ in 0..=policy.max_redirects {
            let mut r = reqwest::Request::new(method.clone(), url.clone());
            for (k, v) in &req.headers {
                let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| GuestError::InvalidInput(format!("bad header name '{k}'")))?;
                let value = reqwest::header::HeaderValue::from_str(v)
                    .map_err(|_| GuestError::InvalidInput(format!("bad value for header '{k}'")))?;
                r.headers_mut().append(name, value);
            }
            if let Some(b) = &body {
                *r.body_mut() = Some(b.clone().into());
            }
            let mut res = hooks.egress.send(&hooks.granted, &hooks.meter, r).await?;
            if res.status().is_redirection()
                && let Some(loc) = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                url = url
                    .join(loc)
                    .map_err(|_| GuestError::Failed("bad redirect location".into()))?;
                if res.status() == reqwest::StatusCode::SEE_OTHER {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            let status = res.status().as_u16();
            let headers = res
                .headers()
                .iter()
                .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
                .collect();
            let mut out = Vec::new();
            while let Some(chunk) = res.chunk().await.map_err(|e| {
                GuestError::Failed(if e.is_timeout() {
                    "reading the response timed out".into()
                } else {
                    "the response ended early".into()
                })
            })? {
                if out.len() + chunk.len() > policy.max_response_bytes {
                    return Err(GuestError::LimitExceeded(format!(
                        "response is over {} bytes",
                        policy.max_response_bytes
                    )));
                }
                out.extend_from_slice(&chunk);
            }
            return Ok(Response {
                status,
                headers,
                body: out,
            });
        }
        Err(GuestError::Failed(format!(
            "more than {} redirects",
            policy.max_redirects
        )))
    }
}

impl http::Host for HttpHost {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, GuestError>> {
        let meter = self.wasi.hooks.meter.clone();
        meter.charge()?;
        tenantry_world::with_deadline(&meter, self.fetch_following(req)).await
    }
}
