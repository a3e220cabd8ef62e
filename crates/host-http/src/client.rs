//! The one outbound client every plugin request goes through (wasi:http and the
//! 0.1.0 `http.fetch` alike).
//!
//! One `reqwest` client per egress policy, so connections and TLS sessions are
//! reused across invocations. A request is checked before any connection: scheme,
//! then host against the install's grants and the connector list, then (for an IP
//! literal) the address. Names are resolved by [`PolicyResolver`], which refuses a
//! name if *any* address it resolves to is not allowed; the connector then connects
//! only to the addresses it returned (no second lookup, so no rebinding window),
//! trying each in turn. TLS is rustls with the bundled web PKI roots plus the
//! operator's CA certificates, SNI = the requested host, HTTP/2 or HTTP/1.1 by ALPN.
//! Redirects are never followed here.

use crate::policy::{EgressPolicy, refused_range};
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tenantry_world::Meter;

/// Why an outbound request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressError {
    /// Refused by the egress policy, before any connection (recorded as denied).
    Denied(String),
    /// The URL or request is malformed.
    Invalid(String),
    /// The name does not resolve.
    Dns(String),
    /// The server's certificate is not trusted for this name (unknown CA, expired,
    /// issued for another name, …).
    Certificate(String),
    /// Any other TLS failure (an alert, a protocol error).
    Tls(String),
    /// The connection was refused, reset or could not be made.
    Connect(String),
    /// Connect, response or the invocation's deadline ran out.
    Timeout,
    /// Anything else the HTTP layer reported.
    Failed(String),
}

impl std::fmt::Display for EgressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EgressError::Denied(m) | EgressError::Invalid(m) | EgressError::Failed(m) => {
                f.write_str(m)
            }
            EgressError::Dns(m) => write!(f, "cannot resolve {m}"),
            EgressError::Certificate(m) => {
                write!(f, "the server's TLS certificate is not trusted: {m}")
            }
            EgressError::Tls(m) => write!(f, "TLS failed: {m}"),
            EgressError::Connect(m) => write!(f, "cannot connect: {m}"),
            EgressError::Timeout => f.write_str("the request timed out"),
        }
    }
}

/// A name whose addresses the policy refuses: the resolver's error, found again in
/// the client's error chain.
#[derive(Debug)]
struct Refused {
    host: String,
    ip: IpAddr,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to {}, which is not allowed",
            self.host, self.ip
        )
    }
}

impl StdError for Refused {}

#[derive(Debug)]
struct NoAddress(String);

impl std::fmt::Display for NoAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} does not resolve", self.0)
    }
}

impl StdError for NoAddress {}

/// Resolves with the system resolver and refuses the name unless every address is
/// allowed (a name that resolves to both a public and a private address is
/// refused: which one a connection would use is not the policy's choice).
struct PolicyResolver {
    policy: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| NoAddress(host.clone()))?
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(NoAddress(host)) as Box<dyn StdError + Send + Sync>);
            }
            if let Some(bad) = addrs.iter().find(|a| !policy.allows(a.ip())) {
                return Err(
                    Box::new(Refused { host, ip: bad.ip() }) as Box<dyn StdError + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The shared outbound client of one egress policy.
pub struct Egress {
    policy: Arc<EgressPolicy>,
    client: reqwest::Client,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Egress {
    pub fn new(policy: Arc<EgressPolicy>) -> Result<Self, EgressError> {
        let tls = tenantry_tls::client_config(&policy.ca_certs, &[b"h2", b"http/1.1"]);
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(PolicyResolver {
                policy: policy.clone(),
            })
            .connect_timeout(policy.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| EgressError::Failed(format!("outbound HTTP client: {e}")))?;
        Ok(Self { policy, client })
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Checks `req` against the policy and `granted`, then sends it. Refusals are
    /// recorded on `meter`. The response's body is still to be read (its reading is
    /// bounded by the same timeout).
    pub async fn send(
        &self,
        granted: &[String],
        meter: &Meter,
        mut req: reqwest::Request,
    ) -> Result<reqwest::Response, EgressError> {
        let url = req.url();
        let scheme = url.scheme();
        if !(scheme == "https" || (scheme == "http" && self.policy.allow_http)) {
            let scheme: String = scheme.chars().take(40).collect();
            meter.deny(format!("egress-scheme:{scheme}"));
            return Err(EgressError::Denied(if scheme == "http" {
                "plain http:// is not allowed by the operator; use https://".into()
            } else {
                format!("scheme '{scheme}' is not supported; use https://")
            }));
        }
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(EgressError::Invalid("the URL has no host".into()));
        }
        if !self.policy.host_allowed(granted, &host) {
            return Err(denied(meter, &host, None));
        }
        // The resolver is not asked about IP literals: check them here.
        if let Ok(ip) = host.parse::<IpAddr>()
            && !self.policy.allows(ip)
        {
            return Err(denied(meter, &host, Some(ip)));
        }
        // The policy's timeout; the invocation's deadline is enforced around the
        // whole guest call (so running into it is a TIMEOUT outcome, not an error
        // the guest could swallow).
        if meter.remaining().is_zero() {
            return Err(EgressError::Timeout);
        }
        *req.timeout_mut() = Some(self.policy.request_timeout);
        // The client sets `Host` from the URL (and HTTP/2 uses `:authority`).
        req.headers_mut().remove(reqwest::header::HOST);
        self.client
            .execute(req)
            .await
            .map_err(|e| classify(meter, &host, &e))
    }
}

/// Records the refusal on `meter` (`egress:host (ip)`, for the audit entry) and
/// says why.
fn denied(meter: &Meter, host: &str, ip: Option<IpAddr>) -> EgressError {
    let what: String = match ip {
        Some(ip) if ip.to_string() != host => format!("{host} ({ip})"),
        _ => host.to_string(),
    };
    let what: String = what.chars().take(200).collect();
    meter.deny(format!("egress:{what}"));
    let range = ip.and_then(refused_range);
    EgressError::Denied(match range {
        Some(range) => format!("outbound HTTP to {what} is not allowed: {range}"),
        None => format!("outbound HTTP to {what} is not allowed"),
    })
}

/// Turns the client's error into what the guest and the audit entry see.
fn classify(meter: &Meter, host: &str, e: &reqwest::Error) -> EgressError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return denied(meter, &r.host, Some(r.ip));
        }
        if let Some(n) = err.downcast_ref::<NoAddress>() {
            return EgressError::Dns(n.0.clone());
        }
        if let Some(tls) = rustls_error(err) {
            return match tls {
                tenantry_tls::rustls::Error::InvalidCertificate(why) => {
                    EgressError::Certificate(format!("{host}: {why:?}"))
                }
                other => EgressError::Tls(format!("{host}: {other}")),
            };
        }
        source = err.source();
    }
    if e.is_timeout() {
        EgressError::Timeout
    } else if e.is_connect() {
        EgressError::Connect(host.to_string())
    } else if e.is_builder() || e.is_request() && e.url().is_none() {
        EgressError::Invalid(format!("bad request: {e}"))
    } else {
        EgressError::Failed(format!("request to {host} failed: {}", without_url(e)))
    }
}

/// The rustls error behind `err`, looking inside nested `io::Error`s (whose
/// `source()` skips the error they wrap).
fn rustls_error<'a>(
    mut err: &'a (dyn StdError + 'static),
) -> Option<&'a tenantry_tls::rustls::Error> {
    loop {
        if let Some(tls) = err.downcast_ref::<tenantry_tls::rustls::Error>() {
            return Some(tls);
        }
        err = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// The error's text without the URL (which may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = String::new();
    let mut source = e.source();
    while let Some(err) = source {
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&err.to_string());
        source = err.source();
    }
    if s.is_empty() { "no detail".into() } else { s }
}
