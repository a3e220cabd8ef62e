//! A loopback HTTPS server for egress tests, with a CA generated per test (rcgen).
//!
//! [`TestCa::pem`] is what an operator's `tls_ca_file` would hold. [`serve`] starts
//! a server on `127.0.0.1:0` presenting a certificate of the chosen [`Cert`] kind,
//! offering the chosen ALPN protocols, and counting accepted TCP connections (so a
//! test can show a refusal happened before any connection). Routes:
//!
//! - `GET /json` → `{"hello":"world"}`;
//! - `POST /echo` → 201, `{"method", "body", "version"}` (`version`: `HTTP/1.1` or
//!   `HTTP/2.0`);
//! - `GET /version` → the HTTP version as text;
//! - `GET /big/{n}` → `n` bytes;
//! - `GET /trickle` → a byte every 200 ms, never ending;
//! - `GET /redirect?to=URL` → 302 to `URL`;
//! - a GitHub-style API: `GET /repos/{owner}/{repo}/issues` and
//!   `POST /repos/{owner}/{repo}/issues/{n}/comments`, answering 401 unless
//!   `authorization: Bearer <token>` carries the token given to [`serve`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tenantry_tls::rustls;
use tenantry_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// The certificate the server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cert {
    /// Issued by the test CA for `localhost` and `127.0.0.1`, valid now.
    Valid,
    /// Issued by the test CA, valid, but for `other.example` only.
    OtherName,
    /// Issued by the test CA for `localhost`, expired in 2020.
    Expired,
    /// Valid for `localhost`, but issued by a CA nobody trusts.
    UnknownCa,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Tenantry test CA");
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA certificate, PEM (what `tls_ca_file` holds).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes [`TestCa::pem`] to `dir/ca.pem` and returns the path.
    pub fn write_pem(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.pem()).expect("write ca.pem");
        path
    }

    /// A server certificate of `kind` and its key, both PEM (for servers started as
    /// processes, e.g. a TLS Redis).
    pub fn server_pem(&self, kind: Cert) -> (String, String) {
        let (cert, key) = self.issue(kind);
        (cert.pem(), key.serialize_pem())
    }

    fn leaf(&self, kind: Cert) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let (cert, key) = self.issue(kind);
        (
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    fn issue(&self, kind: Cert) -> (rcgen::Certificate, KeyPair) {
        let names = match kind {
            Cert::OtherName => vec!["other.example".to_string()],
            _ => vec!["localhost".to_string(), "127.0.0.1".to_string()],
        };
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, "tenantry test server");
        if kind == Cert::Expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = if kind == Cert::UnknownCa {
            let stranger = TestCa::new();
            params.signed_by(&key, &stranger.issuer)
        } else {
            params.signed_by(&key, &self.issuer)
        }
        .expect("leaf certificate");
        (cert, key)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A running server; it stops when dropped.
pub struct HttpsServer {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsServer {
    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    /// `https://localhost:<port>`.
    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server presenting `cert`, offering `alpn` (e.g. `&[b"h2", b"http/1.1"]`
/// or only `&[b"http/1.1"]`); the GitHub-style routes require `token`.
pub async fn serve(ca: &TestCa, cert: Cert, alpn: &[&[u8]], token: &str) -> HttpsServer {
    let (chain, key) = ca.leaf(cert);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let token: Arc<str> = Arc::from(token);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| route(req, token.clone()));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    HttpsServer {
        addr,
        connections,
        task,
    }
}

type Body = BoxBody<Bytes, std::convert::Infallible>;

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("response")
}

fn json(status: u16, value: String) -> Response<Body> {
    full(status, "application/json", value)
}

async fn route(
    req: Request<Incoming>,
    token: Arc<str>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let method = req.method().clone();
    let version = format!("{:?}", req.version());
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {token}"));
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let response = match (method.as_str(), parts.as_slice()) {
        ("GET", ["json"]) => json(200, r#"{"hello":"world"}"#.into()),
        ("GET", ["version"]) => full(200, "text/plain", version),
        ("POST", ["echo"]) => json(
            201,
            format!(
                r#"{{"method":"{method}","body":{:?},"version":"{version}"}}"#,
                String::from_utf8_lossy(&body)
            ),
        ),
        ("GET", ["big", n]) => {
            let n: usize = n.parse().unwrap_or(0);
            full(200, "application/octet-stream", vec![b'x'; n])
        }
        ("GET", ["trickle"]) => Response::builder()
            .status(200)
            .body(Trickle(None).boxed())
            .expect("response"),
        ("GET", ["redirect"]) => {
            let to = query.strip_prefix("to=").unwrap_or_default().to_string();
            Response::builder()
                .status(302)
                .header("location", to)
                .body(Full::new(Bytes::new()).boxed())
                .expect("response")
        }
        (_, ["repos", _, _, ..]) if !authorized => json(
            401,
            r#"{"message":"Requires authentication","documentation_url":"https://docs.github.com/rest"}"#
                .into(),
        ),
        ("GET", ["repos", owner, repo, "issues"]) => json(
            200,
            format!(
                r#"[{{"number":1347,"title":"Found a bug","state":"open","html_url":"https://github.com/{owner}/{repo}/issues/1347","user":{{"login":"octocat"}}}},{{"number":1348,"title":"Add dark mode","state":"open","html_url":"https://github.com/{owner}/{repo}/issues/1348","user":{{"login":"hubot"}}}}]"#
            ),
        ),
        ("POST", ["repos", owner, repo, "issues", n, "comments"]) => {
            let sent: String = String::from_utf8_lossy(&body).into_owned();
            json(
                201,
                format!(
                    r#"{{"id":1,"html_url":"https://github.com/{owner}/{repo}/issues/{n}#issuecomment-1","body_sent":{sent:?},"user":{{"login":"tenantry-bot"}}}}"#
                ),
            )
        }
        _ => json(404, r#"{"message":"Not Found"}"#.into()),
    };
    Ok(response)
}

/// A body of one byte every 200 ms, never ending.
struct Trickle(Option<std::pin::Pin<Box<tokio::time::Sleep>>>);

impl hyper::body::Body for Trickle {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let sleep = self.0.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep(std::time::Duration::from_millis(200)))
        });
        match sleep.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => {
                self.0 = None;
                std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b".")))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}
