//! Test harness: runs the real `tenantry` binary on a fresh data directory and a
//! free loopback port, and talks to it over HTTP.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tenantry_crypto::{SigningKeyPair, SigningStatement, sha256_hex};
/// A plain HTTP client for the tests' own requests (rustls needs its provider
/// chosen before the first client is built).
pub fn http() -> reqwest::Client {
    tenantry_tls::install_crypto_provider();
    reqwest::Client::new()
}

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
            http: http(),
            db,
            launch,
        }
    }

    /// Starts a server with `--config FILE` (rewrite the file and restart to change
    /// it), on the embedded store, or with `pooled` on a new database of its own.
    pub async fn start_configured(config: &Path, pooled: bool) -> Server {
        let db = if pooled {
            Some(Self::migrated_db().await)
        } else {
            None
        };
        let launch = Launch {
            database_url: db.as_ref().map(|d| d.app_url.clone()),
            args: vec!["--config".into(), config.display().to_string()],
            ..Launch::default()
        };
        Self::start_with(launch, db)
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
            http: http(),
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

    /// Runs `statements` on the org's audit trail behind the server's back, as someone
    /// with write access to the storage would: on the org's SQLite file (its
    /// append-only triggers dropped first) or as the schema owner (the trigger
    /// disabled for the statements). `{org}` in a statement is the org's id.
    pub async fn tamper_with_audit(&self, org: &str, statements: &[&str]) {
        use sqlx::{ConnectOptions, Connection, Executor};
        let statements: Vec<String> = statements.iter().map(|s| s.replace("{org}", org)).collect();
        match &self.db {
            None => {
                let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(tenant_db(self, org))
                    .connect()
                    .await
                    .expect("open the org's file");
                c.execute("DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete")
                    .await
                    .expect("drop the append-only triggers");
                for s in statements {
                    c.execute(sqlx::AssertSqlSafe(s)).await.expect("tamper");
                }
                c.close().await.expect("close");
            }
            Some(db) => {
                let mut c = sqlx::PgConnection::connect(&db.owner_url)
                    .await
                    .expect("connect as owner");
                c.execute("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
                    .await
                    .expect("disable the append-only trigger");
                for s in statements {
                    c.execute(sqlx::AssertSqlSafe(s)).await.expect("tamper");
                }
                c.execute("ALTER TABLE audit ENABLE TRIGGER audit_append_only")
                    .await
                    .expect("enable the trigger");
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
        self.http = http();
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
        self.http = http();
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
        let mut req = http()
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

    /// `GET path` as `key`, expecting `200`; returns the body.
    pub async fn get(&self, path: &str, key: &str) -> Value {
        self.ok("GET", path, Some(key), None, 200).await
    }

    /// The status of `GET path` as `key` (for refusals whose body is not checked).
    pub async fn get_status(&self, path: &str, key: &str) -> u16 {
        self.call("GET", path, Some(key), None).await.0
    }

    /// `POST path` with `body` as `key`, expecting `201`; returns the body.
    pub async fn create(&self, path: &str, key: &str, body: Value) -> Value {
        self.ok("POST", path, Some(key), Some(body), 201).await
    }

    /// `PATCH path` with `body` as `key`, expecting `200`; returns the body.
    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Value {
        self.ok("PATCH", path, Some(key), Some(body), 200).await
    }

    /// `DELETE path` as `key`, expecting `want` (`200` or `204`).
    pub async fn delete(&self, path: &str, key: &str, want: u16) {
        self.ok("DELETE", path, Some(key), None, want).await;
    }

    /// Installs a plugin (`body` as for `POST /v1/installs`) as `key`, expecting
    /// `201`; returns the install id.
    pub async fn install(&self, key: &str, body: Value) -> String {
        id_of(&self.create("/v1/installs", key, body).await)
    }

    /// Binds the org's agent to `install`, as the org's admin (`201`).
    pub async fn bind(&self, o: &Org, install: &str) {
        let path = format!("/v1/agents/{}/installs/{install}", o.agent_id);
        self.ok("PUT", &path, Some(&o.admin), None, 201).await;
    }

    /// Replaces the org's limit overrides, as the operator (`200`).
    pub async fn set_limits(&self, org_id: &str, overrides: Value) {
        let path = format!("/v1/orgs/{org_id}/limits");
        self.ok("PUT", &path, Some(&self.operator_key), Some(overrides), 200)
            .await;
    }

    /// Sets secret `name` of `install` to `value` as `key` (`200`).
    pub async fn set_secret(&self, key: &str, install: &str, name: &str, value: &str) {
        let path = format!("/v1/installs/{install}/secrets/{name}");
        self.ok("PUT", &path, Some(key), Some(json!({"value": value})), 200)
            .await;
    }

    /// Creates an API key (`POST /v1/keys` with `body`) as `by`; returns its id and
    /// the key itself.
    pub async fn create_key(&self, by: &str, body: Value) -> (String, String) {
        let k = self.create("/v1/keys", by, body).await;
        (id_of(&k), k["key"].as_str().expect("key").to_string())
    }

    /// Reviews `plugin` (`@scope/name`) as `key` (`200`); returns the review.
    pub async fn review(&self, key: &str, plugin: &str, review: Value) -> Value {
        let path = format!("/v1/plugins/{plugin}/review");
        self.ok("PUT", &path, Some(key), Some(review), 200).await
    }

    /// Revokes the publisher's signing key, as the operator (`204`).
    pub async fn revoke_publisher_key(&self, p: &Publisher) {
        let path = format!("/v1/publisher-keys/{}", p.key.public_key().key_id());
        self.delete(&path, &self.operator_key, 204).await;
    }

    /// Invokes `action` of `install` with `input` as `key`; returns status and body.
    pub async fn invoke(
        &self,
        key: &str,
        install: &str,
        action: &str,
        input: Value,
    ) -> (u16, Value) {
        let body = json!({"action": action, "input": input});
        self.call("POST", &invoke_path(install), Some(key), Some(body))
            .await
    }

    /// Like [`Server::invoke`], expecting `200` (whatever the outcome); returns the body.
    pub async fn run(&self, key: &str, install: &str, action: &str, input: Value) -> Value {
        let body = json!({"action": action, "input": input});
        self.ok("POST", &invoke_path(install), Some(key), Some(body), 200)
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
        // Compiled plugins and the script engine, shared by every test server (the
        // cache is keyed by the wasm's hash): each compiles once per test run.
        .env(
            "TENANTRY_COMPILE_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/compile-cache"),
        )
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
    let op = s.operator_key.as_str();
    let o = s
        .create("/v1/orgs", op, json!({"name": name, "tier": "starter"}))
        .await;
    let id = id_of(&o);
    let mut keys = std::collections::HashMap::new();
    let mut user_ids = std::collections::HashMap::new();
    // The operator provisions the first owner (while the org has no key holder);
    // the owner adds the rest.
    let (uid, owner) = provision_user(s, &id, &format!("owner@{name}"), "owner", "owner").await;
    keys.insert("owner", owner.clone());
    user_ids.insert("owner", uid);
    for role in ["admin", "member", "viewer"] {
        let user = json!({"name": format!("{role}@{name}"), "role": role});
        let uid = id_of(&s.create("/v1/users", &owner, user).await);
        let (_, key) = s
            .create_key(
                &owner,
                json!({"owner": {"kind": "user", "id": uid}, "name": role}),
            )
            .await;
        keys.insert(role, key);
        user_ids.insert(role, uid);
    }
    let agent = json!({"name": "bot", "on_behalf_of": user_ids["member"], "grants": ["invoke", "read_org"]});
    let agent_id = id_of(&s.create("/v1/agents", &keys["owner"], agent).await);
    let (_, agent_key) = s
        .create_key(
            &keys["owner"],
            json!({"owner": {"kind": "agent", "id": agent_id}, "name": "bot"}),
        )
        .await;
    Org {
        id,
        name: name.into(),
        owner: keys["owner"].clone(),
        admin: keys["admin"].clone(),
        member: keys["member"].clone(),
        viewer: keys["viewer"].clone(),
        agent: agent_key,
        agent_id,
        owner_user_id: user_ids["owner"].clone(),
    }
}

/// Provisions, as the operator, a user `name` with `role` in org `org_id` and a
/// key named `key_name` for it; returns the user id and the key.
pub async fn provision_user(
    s: &Server,
    org_id: &str,
    name: &str,
    role: &str,
    key_name: &str,
) -> (String, String) {
    let op = s.operator_key.as_str();
    let user = json!({"name": name, "role": role});
    let uid = id_of(
        &s.create(&format!("/v1/orgs/{org_id}/users"), op, user)
            .await,
    );
    let key = json!({"owner": {"kind": "user", "id": uid}, "name": key_name});
    let k = s.create(&format!("/v1/orgs/{org_id}/keys"), op, key).await;
    (uid, k["key"].as_str().expect("key").to_string())
}

/// Creates org `name` (see [`org`]) with one install made by its admin from `body`
/// (as for `POST /v1/installs`); returns the org and the install id.
pub async fn org_with_install(s: &Server, name: &str, body: Value) -> (Org, String) {
    let o = org(s, name).await;
    let install = s.install(&o.admin, body).await;
    (o, install)
}

/// An org with the secret-user example installed (its `api_token` granted) and that
/// secret set to `value`; returns (org, install).
pub async fn org_with_secret(s: &Server, name: &str, value: &str) -> (Org, String) {
    let body = json!({"plugin": "@examples/secret-user", "grants": {"secrets": ["api_token"]}});
    let (o, install) = org_with_install(s, name, body).await;
    s.set_secret(&o.owner, &install, "api_token", value).await;
    (o, install)
}

/// The install body of the echo example with the greeting `hi`.
pub fn echo_install() -> Value {
    json!({"plugin": "@examples/echo", "config": {"greeting": "hi"}})
}

/// Registers a publisher (operator) and returns it.
pub async fn publisher(s: &Server, name: &str) -> Publisher {
    let p = Publisher::new(name);
    let body = json!({"name": name, "public_key": p.key.public_key().to_string()});
    s.create("/v1/publishers", &s.operator_key, body).await;
    p
}

/// Registers publisher `name` with a key that was valid from ten days ago until
/// yesterday (expired now), and returns it.
pub async fn expired_publisher(s: &Server, name: &str) -> Publisher {
    let p = Publisher::new(name);
    let now = time::OffsetDateTime::now_utc();
    let body = json!({
        "name": name,
        "public_key": p.key.public_key().to_string(),
        "not_before": rfc3339(now - time::Duration::days(10)),
        "not_after": rfc3339(now - time::Duration::days(1)),
    });
    s.create("/v1/publishers", &s.operator_key, body).await;
    p
}

/// Registers publisher `acme` and publishes `@acme/<name>` 1.0.0 (the WAT echo
/// tagged `tag`, [`manifest`]'s shape); returns the publisher.
pub async fn acme_publishes(s: &Server, name: &str, tag: &str) -> Publisher {
    let p = publisher(s, "acme").await;
    s.publish(&p, &manifest("acme", name, "1.0.0"), &component(tag))
        .await;
    p
}

/// Expects installing `@acme/tool` in a new org `org_name` to be refused as
/// `ARTIFACT_TAMPERED`, with no install stored.
pub async fn install_is_refused_as_tampered(s: &Server, org_name: &str) {
    let o = org(s, org_name).await;
    s.refused(
        "POST",
        "/v1/installs",
        Some(&o.admin),
        Some(json!({"plugin": "@acme/tool", "config": {"greeting": "x"}})),
        (400, "ARTIFACT_TAMPERED"),
    )
    .await;
    assert_eq!(s.rows(Some(&o.id), "installs").await, 0);
}

/// Invokes `action` (empty input) with a client of the caller's own, for load sent
/// from a task of its own; `url` is the install's full invoke URL.
pub async fn send_invoke(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    action: &str,
) -> reqwest::Result<reqwest::Response> {
    let body = json!({"action": action, "input": {}});
    http.post(url).bearer_auth(key).json(&body).send().await
}

/// A new directory holding a plugin as the author tools expect it: `tenantry.json`
/// (pretty-printed `manifest`) and `plugin.wasm`.
pub fn plugin_dir(manifest: &Value, wasm: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = serde_json::to_vec_pretty(manifest).expect("manifest JSON");
    std::fs::write(dir.path().join("tenantry.json"), text).expect("write tenantry.json");
    std::fs::write(dir.path().join("plugin.wasm"), wasm).expect("write plugin.wasm");
    dir
}

/// The string `field` of every element of the JSON array `v`.
pub fn strs<'a>(v: &'a Value, field: &str) -> Vec<&'a str> {
    let items = v.as_array().unwrap_or_else(|| panic!("not an array: {v}"));
    items
        .iter()
        .map(|e| {
            e[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {e}"))
        })
        .collect()
}

/// `POST /v1/installs/{install}/invoke`.
pub fn invoke_path(install: &str) -> String {
    format!("/v1/installs/{install}/invoke")
}

/// The `id` of a created resource.
pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// An instant as RFC 3339 text.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("rfc3339")
}

/// The stable code of an error answer (`None` when the body is not one).
pub fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

/// Asserts that an answer (`(status, body)` as [`Server::call`] returns it) is an
/// error with `status` and the stable `code`; returns the body.
#[track_caller]
pub fn assert_refused(answer: (u16, Value), status: u16, code: &str) -> Value {
    let (st, v) = answer;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (status, Some(code)),
        "{v}"
    );
    v
}

/// Asserts that an invocation answered `200` with `outcome`; returns the body.
#[track_caller]
pub fn assert_outcome(answer: (u16, Value), outcome: &str) -> Value {
    let (st, v) = answer;
    assert_eq!((st, v["outcome"].as_str()), (200, Some(outcome)), "{v}");
    v
}

/// Asserts that the error message of `v` (an error answer, or an invocation's
/// result) contains `part`.
#[track_caller]
pub fn assert_message_contains(v: &Value, part: &str) {
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(part)),
        "the message must contain {part:?}: {v}"
    );
}

/// Runs a CLI command and expects success (stderr in the failure); returns its output.
#[track_caller]
pub fn cli_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run tenantry");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a CLI command, expects success, and parses its standard output as JSON.
#[track_caller]
pub fn cli_json(cmd: &mut Command) -> Value {
    let out = cli_ok(cmd);
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
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

/// The manifest and the committed component of the example plugin `name`
/// (`examples/plugins/<name>`).
pub fn example_plugin(name: &str) -> (Value, Vec<u8>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/plugins")
        .join(name);
    let manifest = std::fs::read(dir.join("tenantry.json")).expect("example manifest");
    let manifest = serde_json::from_slice(&manifest).expect("example manifest JSON");
    let wasm = std::fs::read(dir.join("plugin.wasm")).expect("example component");
    (manifest, wasm)
}

/// Publishes every example plugin (committed components + manifests).
pub async fn publish_examples(s: &Server) -> Publisher {
    let p = publisher(s, "examples").await;
    for name in [
        "echo",
        "kv-counter",
        "secret-user",
        "tool-caller",
        "http-fetch",
        "attacks",
        "github",
    ] {
        let (manifest, wasm) = example_plugin(name);
        s.publish(&p, &manifest, &wasm).await;
    }
    p
}

/// The quota named `name` (e.g. `executions_per_day`) in a `GET /v1/limits` answer.
pub fn quota_in(limits: &Value, name: &str) -> Value {
    limits["quotas"]
        .as_array()
        .expect("quotas")
        .iter()
        .find(|q| q["quota"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no quota {name} in {limits}"))
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
