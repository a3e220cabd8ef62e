//! Test harness: runs the real `tenantry` binary on a fresh data directory and a
//! free loopback port, and talks to it over HTTP.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tenantry_crypto::{SigningKeyPair, SigningStatement, sha256_hex};
pub use tenantry_store_postgres::testing::TestDb;

pub const BIN: &str = env!("CARGO_BIN_EXE_tenantry");

/// A running server process. Killed on drop (then its test database is dropped).
pub struct Server {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub operator_key: String,
    /// The `tenantry serve` process, or `None` for an in-process server.
    child: Option<Child>,
    /// The in-process server's task.
    task: Option<tokio::task::JoinHandle<()>>,
    http: reqwest::Client,
    /// Pooled mode: the server's own PostgreSQL database.
    pub db: Option<TestDb>,
    /// How the process is started (kept for restarts).
    launch: Launch,
}

/// Extra ways to start `tenantry serve`.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Pooled mode: the application role's URL.
    pub database_url: Option<String>,
    /// Extra command-line arguments (e.g. `--redis-url`, `--config`).
    pub args: Vec<String>,
    /// Extra environment (e.g. a shared `TENANTRY_MASTER_KEY`).
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Starts a server on the embedded store in a new data directory.
    pub fn start() -> Server {
        Self::start_with(Launch::default(), None)
    }

    /// Starts a server with extra arguments or environment. `db`, if given, is
    /// owned (and dropped) by this server. The operator key is empty when the
    /// database already had one (a second node).
    pub fn start_with(launch: Launch, db: Option<TestDb>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let (child, url, key) = spawn(dir.path(), None, &launch);
        Server {
            dir,
            url,
            operator_key: key.unwrap_or_default(),
            child: Some(child),
            task: None,
            http: reqwest::Client::new(),
            db,
            launch,
        }
    }

    /// Runs the server inside the test process (embedded store) with limiters whose
    /// quota clock is `now`, so tests can move time across UTC days and months.
    pub async fn start_in_process(now: tenantry_service::limits::NowFn) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = tenantry_server::Config::resolve(
            tenantry_server::config::Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                listen: Some("127.0.0.1:0".into()),
                log_format: Some("json".into()),
                ..Default::default()
            },
            false,
        )
        .expect("config");
        let mut server = tenantry_server::Server::open(config)
            .await
            .expect("open server");
        server.service = server
            .service
            .clone()
            .with_limiters(tenantry_service::limits::Limiters::local().with_now(now));
        let key = server
            .bootstrap_operator()
            .await
            .expect("bootstrap")
            .expect("first start creates the operator key");
        let listener = server.bind().await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = server.serve(listener).await;
        });
        Server {
            dir,
            url,
            operator_key: String::from_utf8_lossy(key.expose()).into_owned(),
            child: None,
            task: Some(task),
            http: reqwest::Client::new(),
            db: None,
            launch: Launch::default(),
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("this server runs in the test process, not as a child")
    }

    /// Creates a PostgreSQL database migrated to strict RLS by `tenantry migrate`;
    /// returns it and the application role's URL.
    pub async fn migrated_db() -> TestDb {
        let db = TestDb::create().await;
        let out = Command::new(BIN)
            .args([
                "migrate",
                "--database-url",
                &db.owner_url,
                "--app-role",
                &db.app_role,
            ])
            .output()
            .expect("run tenantry migrate");
        assert!(
            out.status.success(),
            "tenantry migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }

    /// Starts a server in pooled mode on a new PostgreSQL database, migrated to
    /// strict RLS by `tenantry migrate`, connected as the application role.
    pub async fn start_pooled() -> Server {
        let db = Self::migrated_db().await;
        let launch = Launch {
            database_url: Some(db.app_url.clone()),
            ..Launch::default()
        };
        Self::start_with(launch, Some(db))
    }

    /// Rows of `table` (of `org`, for tenant tables), read behind the server's back:
    /// from the org's SQLite file, or as the schema owner in pooled mode.
    pub async fn rows(&self, org: Option<&str>, table: &str) -> i64 {
        match (&self.db, org) {
            (None, Some(org)) => count_rows(&tenant_db(self, org), table).await,
            (None, None) => count_rows(&self.data_dir().join("control.db"), table).await,
            (Some(db), org) => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&db.owner_url)
                    .await
                    .expect("connect as owner");
                let sql = match org {
                    Some(o) => format!("SELECT COUNT(*) FROM {table} WHERE org_id = '{o}'"),
                    None => format!("SELECT COUNT(*) FROM {table}"),
                };
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
        }
    }

    /// Every row of every table, as text (pooled mode), for canary searches.
    pub async fn database_text(&self) -> String {
        use sqlx::Connection;
        let Some(db) = &self.db else {
            return String::new();
        };
        let mut c = sqlx::PgConnection::connect(&db.owner_url)
            .await
            .expect("connect as owner");
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut c)
                .await
                .expect("tables");
        let mut out = String::new();
        for t in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM {t} t")))
                    .fetch_all(&mut c)
                    .await
                    .expect("dump");
            out.push_str(&rows.join("\n"));
        }
        out
    }

    /// Resident memory of the server process, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.as_ref().map_or(0, Child::id);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// The `tenantry serve` process's id (`None` for an in-process server).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log output so far (stderr, JSON lines).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `kill -9` and start again on the same data directory and port.
    pub fn crash_and_restart(&mut self) {
        self.child().kill().expect("kill");
        let _ = self.child().wait();
        let port = self.url.rsplit(':').next().map(String::from);
        let (child, url, key) = spawn(self.dir.path(), port.as_deref(), &self.launch);
        assert!(
            key.is_none(),
            "the operator key must be shown only on the first start"
        );
        self.child = Some(child);
        self.url = url;
        self.http = reqwest::Client::new();
    }

    /// SIGTERM (clean shutdown), wait for exit, start again on the same data.
    pub fn terminate_and_restart(&mut self) {
        let pid = self.child().id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
        let status = self.child().wait().expect("wait");
        assert!(status.success(), "server exited with {status} on SIGTERM");
        let port = self.url.rsplit(':').next().map(String::from);
        let (child, url, _) = spawn(self.dir.path(), port.as_deref(), &self.launch);
        self.child = Some(child);
        self.url = url;
        self.http = reqwest::Client::new();
    }

    /// Sends a request; returns status and parsed JSON body (Null if empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, v) = self.call_with_headers(method, path, key, body).await;
        (status, v)
    }

    /// Like [`Server::call`], also returning the response headers (lowercase names).
    pub async fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, std::collections::HashMap<String, String>, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{path}", self.url));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = res.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, v)
    }

    /// Raw request with an arbitrary body and content type, on its own connection
    /// (a server that refuses an oversized body closes the connection).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = reqwest::Client::new()
            .request(m, format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Calls and asserts the status; returns the body.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let (status, v) = self.call(method, path, key, body).await;
        assert_eq!(status, want, "{method} {path} -> {status}: {v}");
        v
    }

    /// Calls and asserts an error answer (status and stable code); returns the body.
    pub async fn refused(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        want: (u16, &str),
    ) -> Value {
        let (status, v) = self.call(method, path, key, body).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (want.0, Some(want.1)),
            "{method} {path}: {v}"
        );
        v
    }

    /// Publishes a signed version as the operator and expects `201`.
    pub async fn publish(&self, p: &Publisher, manifest: &Value, artifact: &[u8]) -> Value {
        self.ok(
            "POST",
            "/v1/plugins",
            Some(&self.operator_key),
            Some(p.publish_body(manifest, artifact)),
            201,
        )
        .await
    }

    pub fn cli(&self, key: Option<&str>) -> Command {
        let mut c = Command::new(BIN);
        c.env("TENANTRY_URL", &self.url)
            .env_remove("TENANTRY_API_KEY")
            // Never the developer's own login profiles or ./tenantry.toml settings.
            .env("TENANTRY_CONFIG_HOME", self.dir.path().join("cli-config"))
            .env_remove("TENANTRY_PROFILE")
            .env_remove("TENANTRY_CONFIG");
        if let Some(k) = key {
            c.env("TENANTRY_API_KEY", k);
        }
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

fn spawn(dir: &Path, port: Option<&str>, launch: &Launch) -> (Child, String, Option<String>) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").env_remove("TENANTRY_DATABASE_URL");
    if let Some(url) = &launch.database_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.env_remove("TENANTRY_REDIS_URL").args(&launch.args);
    let mut child = cmd
        .arg("--data-dir")
        .arg(dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", port.unwrap_or("0")))
        .env("TENANTRY_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env_remove("TENANTRY_MASTER_KEY")
        .env_remove("TENANTRY_CONFIG")
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn tenantry serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut key = None;
    let url = loop {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            _ => panic!(
                "tenantry serve exited before listening; see {}",
                dir.join("server.log").display()
            ),
        };
        let t = line.trim();
        if t.starts_with("tny_") {
            key = Some(t.to_string());
        }
        if let Some(rest) = t.strip_prefix("Tenantry listening on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url, key)
}

/// A runnable component (the hand-written WAT echo plugin) with a custom section
/// carrying `tag`, so different fixtures have different digests.
pub fn component(tag: &str) -> Vec<u8> {
    let echo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins-wat/echo.wat");
    let mut out = wat::parse_file(echo).expect("examples/plugins-wat/echo.wat");
    let name = b"tenantry-fixture";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    out.push(0); // custom section
    leb(&mut out, payload.len());
    out.extend(payload);
    out
}

fn leb(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
}

/// A publisher identity for tests.
pub struct Publisher {
    pub name: String,
    pub key: SigningKeyPair,
}

impl Publisher {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            key: SigningKeyPair::generate(),
        }
    }

    /// Signs manifest + artifact, returning the publish request body.
    pub fn publish_body(&self, manifest: &Value, artifact: &[u8]) -> Value {
        self.publish_body_at(manifest, artifact, time::OffsetDateTime::now_utc())
    }

    pub fn publish_body_at(
        &self,
        manifest: &Value,
        artifact: &[u8],
        created: time::OffsetDateTime,
    ) -> Value {
        let manifest_text = serde_json::to_string(manifest).expect("manifest json");
        let created = created.replace_nanosecond(0).expect("ns");
        let st = SigningStatement {
            name: manifest["name"].as_str().unwrap_or_default().into(),
            version: manifest["version"].as_str().unwrap_or_default().into(),
            artifact_sha256: sha256_hex(artifact),
            manifest_sha256: sha256_hex(manifest_text.as_bytes()),
            publisher: self.name.clone(),
            key_id: self.key.public_key().key_id(),
            created,
        };
        let sig = self.key.sign(&st);
        json!({
            "manifest": manifest_text,
            "artifact_base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, artifact),
            "signature": {
                "key_id": st.key_id,
                "created": created.format(&time::format_description::well_known::Rfc3339).expect("fmt"),
                "signature": sig.to_string(),
            },
        })
    }
}

/// A manifest for `@<publisher>/<name>` with a config schema and a secret.
pub fn manifest(publisher: &str, name: &str, version: &str) -> Value {
    json!({
        "name": format!("@{publisher}/{name}"),
        "version": version,
        "description": format!("{name} test plugin"),
        "publisher": publisher,
        "capabilities": ["testing", name],
        "actions": [{"name": "run", "input_schema": {"type": "object"}}],
        "config_schema": {
            "type": "object",
            "required": ["greeting"],
            "properties": {
                "greeting": {"type": "string", "maxLength": 64},
                "api_token": {"type": "string", "secret": true}
            }
        },
        "permissions": {"egress": ["api.example.com"], "kv": true, "secrets": ["api_token"], "tools": []},
        "docs": format!("# {name}\nA plugin used by tests.")
    })
}

/// An org with an owner key, and keys for every other role plus an agent.
pub struct Org {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub admin: String,
    pub member: String,
    pub viewer: String,
    pub agent: String,
    pub agent_id: String,
    pub owner_user_id: String,
}

impl Org {
    pub fn keys(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("owner", &self.owner),
            ("admin", &self.admin),
            ("member", &self.member),
            ("viewer", &self.viewer),
            ("agent", &self.agent),
        ]
    }
}

/// Creates an org with users of every role and an agent (acting for the member).
pub async fn org(s: &Server, name: &str) -> Org {
    let op = Some(s.operator_key.as_str());
    let o = s
        .ok(
            "POST",
            "/v1/orgs",
            op,
            Some(json!({"name": name, "tier": "starter"})),
            201,
        )
        .await;
    let id = o["id"].as_str().expect("org id").to_string();
    let mut keys = std::collections::HashMap::new();
    let mut user_ids = std::collections::HashMap::new();
    for role in ["owner", "admin", "member", "viewer"] {
        let u = s
            .ok(
                "POST",
                &format!("/v1/orgs/{id}/users"),
                op,
                Some(json!({"name": format!("{role}@{name}"), "role": role})),
                201,
            )
            .await;
        let uid = u["id"].as_str().expect("user id").to_string();
        let k = s
            .ok(
                "POST",
                &format!("/v1/orgs/{id}/keys"),
                op,
                Some(json!({"owner": {"kind": "user", "id": uid}, "name": role})),
                201,
            )
            .await;
        keys.insert(role, k["key"].as_str().expect("key").to_string());
        user_ids.insert(role, uid);
    }
    let a = s
        .ok(
            "POST",
            "/v1/agents",
            Some(&keys["owner"]),
            Some(json!({"name": "bot", "on_behalf_of": user_ids["member"], "grants": ["invoke", "read_org"]})),
            201,
        )
        .await;
    let agent_id = a["id"].as_str().expect("agent id").to_string();
    let ak = s
        .ok(
            "POST",
            "/v1/keys",
            Some(&keys["owner"]),
            Some(json!({"owner": {"kind": "agent", "id": agent_id}, "name": "bot"})),
            201,
        )
        .await;
    Org {
        id,
        name: name.into(),
        owner: keys["owner"].clone(),
        admin: keys["admin"].clone(),
        member: keys["member"].clone(),
        viewer: keys["viewer"].clone(),
        agent: ak["key"].as_str().expect("key").to_string(),
        agent_id,
        owner_user_id: user_ids["owner"].clone(),
    }
}

/// Registers a publisher (operator) and returns it.
pub async fn publisher(s: &Server, name: &str) -> Publisher {
    let p = Publisher::new(name);
    s.ok(
        "POST",
        "/v1/publishers",
        Some(&s.operator_key),
        Some(json!({"name": name, "public_key": p.key.public_key().to_string()})),
        201,
    )
    .await;
    p
}

/// Counts rows of `table` in a SQLite file, read-only (to check "writes nothing").
pub async fn count_rows(db: &Path, table: &str) -> i64 {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Row};
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
        .expect("open db");
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    row.get::<i64, _>("n")
}

pub fn tenant_db(s: &Server, org: &str) -> PathBuf {
    s.data_dir().join("tenants").join(format!("{org}.db"))
}

/// Publishes every example plugin (committed components + manifests).
pub async fn publish_examples(s: &Server) -> Publisher {
    let p = publisher(s, "examples").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins");
    for name in [
        "echo",
        "kv-counter",
        "secret-user",
        "tool-caller",
        "http-fetch",
        "attacks",
    ] {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(root.join(name).join("tenantry.json")).unwrap())
                .unwrap();
        let wasm = std::fs::read(root.join(name).join("plugin.wasm")).unwrap();
        s.ok(
            "POST",
            "/v1/plugins",
            Some(&s.operator_key),
            Some(p.publish_body(&manifest, &wasm)),
            201,
        )
        .await;
    }
    p
}

/// Polls `path` until `pred` holds (records are written in batches), up to 5 s.
pub async fn eventually(s: &Server, key: &str, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = s.ok("GET", path, Some(key), None, 200).await;
        if pred(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} never satisfied the condition; last: {last}");
}

/// Declares one test body as two tests: `$embedded` on the embedded store and
/// `$pooled` on PostgreSQL in strict RLS mode. `$body` takes the started [`Server`].
#[macro_export]
macro_rules! on_both_stores {
    ($embedded:ident, $pooled:ident, $body:ident) => {
        #[tokio::test]
        async fn $embedded() {
            $body(Server::start()).await
        }
        #[tokio::test]
        async fn $pooled() {
            $body(Server::start_pooled().await).await
        }
    };
}
