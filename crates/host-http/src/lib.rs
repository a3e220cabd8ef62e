//! `tenantry-host-http`: the `tenantry:plugin/http` capability — outbound HTTP
//! under an egress policy.
//!
//! A request is sent only if (1) its host is covered by the install's egress grants
//! (exact or `*.suffix`), and (2) every address the host resolves to is public:
//! loopback, private, link-local (including 169.254.169.254 metadata), CGNAT,
//! unique-local, multicast and unspecified addresses are refused unless the operator
//! allows a CIDR explicitly. The connection goes to the address that was checked
//! (no second DNS lookup, so no rebinding window). Redirects are not followed
//! automatically: each `Location` is checked again. Response bodies are capped and
//! every request is bounded by the invocation's remaining wall time.
//!
//! Plain `http://` only for now: TLS for outbound requests is not built in yet.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::manifest::host_pattern_covers;
use tenantry_world::bindings::tenantry::plugin::http::{self, Request, Response};
use tenantry_world::{GuestError, Meter};

/// Operator-level egress settings.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Non-public ranges the operator explicitly allows (e.g. an internal API).
    pub allow_cidrs: Vec<IpNet>,
    pub max_response_bytes: usize,
    pub request_timeout: Duration,
    pub max_redirects: u8,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow_cidrs: Vec::new(),
            max_response_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_redirects: 3,
        }
    }
}

/// Whether an address is publicly routable (and so allowed by default).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 CGNAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 can reach v4 private space
                || s[0] == 0x2001 && s[1] == 0xdb8)
        }
    }
}

pub struct HttpHost {
    /// Egress host patterns granted to this install.
    pub granted: Vec<String>,
    pub policy: Arc<EgressPolicy>,
    pub meter: Arc<Meter>,
}

fn denied(meter: &Meter, what: &str) -> GuestError {
    meter.deny(format!(
        "egress:{}",
        what.chars().take(200).collect::<String>()
    ));
    GuestError::EgressDenied(format!("outbound HTTP to {what} is not allowed"))
}

impl HttpHost {
    fn ip_allowed(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.policy.allow_cidrs.iter().any(|n| n.contains(&ip))
    }

    /// Checks a URL and returns the address to connect to.
    async fn check(&self, url: &reqwest::Url) -> Result<SocketAddr, GuestError> {
        if url.scheme() != "http" {
            return Err(GuestError::EgressDenied(format!(
                "scheme '{}' is not supported; use http://",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !self.granted.iter().any(|p| host_pattern_covers(p, &host)) {
            return Err(denied(&self.meter, &host));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| GuestError::Failed(format!("cannot resolve {host}")))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(GuestError::Failed(format!("{host} has no addresses")));
        }
        // Every address must be allowed: a name that resolves to both a public and a
        // private address is refused.
        if let Some(bad) = addrs.iter().find(|a| !self.ip_allowed(a.ip())) {
            return Err(denied(&self.meter, &format!("{host} ({})", bad.ip())));
        }
        Ok(addrs[0])
    }

    async fn send(&self, req: Request) -> Result<Response, GuestError> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| GuestError::InvalidInput(format!("bad HTTP method '{}'", req.method)))?;
        let mut url = reqwest::Url::parse(&req.url)
            .map_err(|e| GuestError::InvalidInput(format!("bad URL: {e}")))?;
        let mut body = req.body;
        let mut method = method;
        for _ in 0..=self.policy.max_redirects {
            let addr = self.check(&url).await?;
            let host = url.host_str().unwrap_or_default().to_string();
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .resolve(&host, addr)
                .timeout(self.policy.request_timeout)
                .build()
                .map_err(|e| GuestError::Failed(format!("http client: {e}")))?;
            let mut rb = client.request(method.clone(), url.clone());
            for (k, v) in &req.headers {
                rb = rb.header(k, v);
            }
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let mut res = rb
                .send()
                .await
                .map_err(|e| GuestError::Failed(format!("request failed: {e}")))?;
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
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| GuestError::Failed(format!("reading response: {e}")))?
            {
                if out.len() + chunk.len() > self.policy.max_response_bytes {
                    return Err(GuestError::LimitExceeded(format!(
                        "response is over {} bytes",
                        self.policy.max_response_bytes
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
            self.policy.max_redirects
        )))
    }
}

impl http::Host for HttpHost {
    async fn fetch(&mut self, req: Request) -> wasmtime::Result<Result<Response, GuestError>> {
        self.meter.charge()?;
        let meter = self.meter.clone();
        tenantry_world::with_deadline(&meter, self.send(req)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
