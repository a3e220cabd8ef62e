//! The PostgreSQL and Redis the test suite uses, so that `cargo test` works both
//! where they already run (CI, a developer's machine) and where they are only
//! installed.
//!
//! [`postgres_admin_url`] and [`redis_url`] answer, in this order:
//!
//! 1. `TENANTRY_TEST_DATABASE_URL` / `TENANTRY_TEST_REDIS_URL`, when set: used as is.
//! 2. The service on its default local port (127.0.0.1:5432, 127.0.0.1:6379), when
//!    something listens there.
//! 3. A throwaway instance of the installed server (`initdb` + `postgres`,
//!    `redis-server`): a new temporary directory, a free loopback port, started once
//!    per test process and stopped, with its directory removed, when that process
//!    ends in any way (a guardian process waits for the end of a pipe only the test
//!    process holds). PostgreSQL refuses to run as root, so as root it runs as
//!    `nobody`.
//!
//! Where a service neither runs nor is installed, the call panics with one line
//! saying what to install. `TENANTRY_TEST_SERVICES=throwaway` skips step 2 (to try
//! step 3 on a machine where the services run); `TENANTRY_TEST_SERVICE_PATH` (a
//! `:`-separated list of directories) replaces where the servers are looked for.
//!
//! Test support only: hand-written on `std` because the job is a handful of process
//! launches; crates that manage database containers (testcontainers, pg-embed)
//! download images or binaries, which these machines must not need.
//!
//! [`https`] is a loopback HTTPS server with its own generated CA, for the egress
//! tests (plugins' outbound HTTPS, TLS failures, limits).
//!
//! Depends on nothing of Tenantry but `tenantry-tls` (for its rustls); nothing but tests, benchmarks and the
//! `testing` helpers of store crates may depend on it.

pub mod https;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The PostgreSQL admin URL for tests (see the crate docs for where it comes from).
pub fn postgres_admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        resolve("TENANTRY_TEST_DATABASE_URL", 5432, start_postgres, |port| {
            format!("postgres://postgres@127.0.0.1:{port}/postgres")
        })
    })
    .clone()
}

/// The Redis URL for tests (see the crate docs for where it comes from).
pub fn redis_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        resolve("TENANTRY_TEST_REDIS_URL", 6379, start_redis, |port| {
            format!("redis://127.0.0.1:{port}")
        })
    })
    .clone()
}

/// The variable `var`, else the default `port` if it listens, else a throwaway
/// instance from `start`; `url` makes a port a URL. Panics with one line when there
/// is none.
fn resolve(
    var: &str,
    port: u16,
    start: fn() -> Result<u16, Unavailable>,
    url: fn(u16) -> String,
) -> String {
    if let Some(set) = env(var) {
        return set;
    }
    if !forced_throwaway() && listening(port) {
        return url(port);
    }
    match start() {
        Ok(port) => url(port),
        Err(e) => panic!("{e}"),
    }
}

/// Why a throwaway service could not be started: one line for the person running
/// the tests.
#[derive(Debug)]
pub struct Unavailable(String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn forced_throwaway() -> bool {
    env("TENANTRY_TEST_SERVICES").as_deref() == Some("throwaway")
}

/// Whether something accepts connections on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

/// Where servers are looked for: `TENANTRY_TEST_SERVICE_PATH`, else `PATH` and the
/// places distributions install PostgreSQL's server binaries (not on `PATH` on
/// Debian), newest version first.
fn search_path() -> Vec<PathBuf> {
    if let Some(p) = env("TENANTRY_TEST_SERVICE_PATH") {
        return std::env::split_paths(&p).collect();
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for root in ["/usr/lib/postgresql", "/usr/pgsql", "/opt/homebrew/opt"] {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .collect();
        // "9.6" < "15" numerically: sort by the leading number.
        versions.sort_by_key(|p| {
            let v = p.parent().and_then(Path::file_name);
            let v = v.and_then(|v| v.to_str()).unwrap_or("");
            std::cmp::Reverse(
                v.split(|c: char| !c.is_ascii_digit())
                    .find(|s| !s.is_empty())
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(0),
            )
        });
        dirs.extend(versions);
    }
    dirs.extend(["/usr/local/pgsql/bin", "/usr/sbin"].map(PathBuf::from));
    dirs
}

/// The first directory of the search path holding every one of `programs`.
fn find(programs: &[&str]) -> Option<PathBuf> {
    search_path()
        .into_iter()
        .find(|d| programs.iter().all(|p| d.join(p).is_file()))
}

/// A free loopback port (bound and released; the server binds it next).
fn free_port() -> Result<u16, Unavailable> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Unavailable(format!("no free loopback port for a test service: {e}")))
}

/// A new private directory under the system's temporary directory.
fn temp_dir(what: &str) -> Result<PathBuf, Unavailable> {
    let base = std::env::temp_dir();
    for n in 0..100u32 {
        let dir = base.join(format!("tenantry-test-{what}-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Unavailable(format!(
                    "cannot create a directory for a throwaway {what} in {}: {e}",
                    base.display()
                )));
            }
        }
    }
    Err(Unavailable(format!(
        "cannot create a directory for a throwaway {what} in {}",
        base.display()
    )))
}

/// The user a server runs as: ourselves, or `nobody` when we are root (PostgreSQL
/// refuses root). Its (uid, gid), or `None` for ourselves.
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let nobody = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&"nobody") && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    });
    Some(nobody.unwrap_or((65534, 65534)))
}

/// `cmd` run as `user` (if any), with its output going to `log`.
fn as_user(cmd: &mut Command, user: Option<(u32, u32)>, log: &Path) -> Result<(), Unavailable> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Unavailable(format!("cannot write {}: {e}", log.display())))
    };
    cmd.stdin(Stdio::null())
        .stdout(open()?)
        .stderr(open()?)
        .env_remove("PGDATA");
    if let Some((uid, gid)) = user {
        // std drops root's supplementary groups too (setgroups) when it sets a uid.
        cmd.uid(uid).gid(gid).env("HOME", "/");
    }
    Ok(())
}

/// The last lines of a log, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Waits until `port` accepts connections (or 60 s pass, or `pid` exits).
fn wait_listening(port: u16, pid: u32, what: &str, log: &Path) -> Result<(), Unavailable> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if listening(port) {
            return Ok(());
        }
        // SAFETY: kill with signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Unavailable(format!(
        "the throwaway {what} did not start ({})",
        tail(log)
    )))
}

/// Waits until PostgreSQL accepts sessions: it listens before it has finished
/// starting up ("the database system is starting up"). `pg_isready` exits 0 then.
fn wait_accepting(bin: &Path, port: u16, log: &Path) -> Result<(), Unavailable> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match ready {
            Ok(s) if s.success() => return Ok(()),
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            // No pg_isready next to postgres: listening has to do.
            Err(_) => return Ok(()),
        }
    }
    Err(Unavailable(format!(
        "the throwaway PostgreSQL did not accept sessions within 60 s ({})",
        tail(log)
    )))
}

/// The write ends of every guardian's pipe: never closed by us, so closed exactly
/// when this process ends.
static GUARDS: Mutex<Vec<ChildStdin>> = Mutex::new(Vec::new());

/// Starts a process that, once this process has ended, sends `signal` to `pid`,
/// kills it if it is still there after 10 s, and removes `dir`. It ignores the
/// terminal's interrupt so that Ctrl-C on the tests still cleans up.
fn guard(pid: u32, signal: &str, dir: &Path) -> Result<(), Unavailable> {
    let script = r#"trap '' INT TERM HUP
cat >/dev/null
kill -"$1" "$2" 2>/dev/null
i=0
while kill -0 "$2" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$2" 2>/dev/null
rm -rf "$3""#;
    let mut child = Command::new("sh")
        .args(["-c", script, "tenantry-test-guardian", signal])
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a terminal's signals go to the tests, not to it.
        .process_group(0)
        .spawn()
        .map_err(|e| Unavailable(format!("cannot start sh to guard a test service: {e}")))?;
    if let Some(stdin) = child.stdin.take() {
        GUARDS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(stdin);
    }
    Ok(())
}

/// Starts a throwaway PostgreSQL (user `postgres`, trust authentication) and returns
/// its port.
pub fn start_postgres() -> Result<u16, Unavailable> {
    let bin = find(&["initdb", "postgres"]).ok_or_else(|| {
        Unavailable(
            "PostgreSQL is not running on 127.0.0.1:5432 and its server is not installed \
             (no initdb + postgres found): install it (Debian/Ubuntu: apt-get install \
             postgresql; macOS: brew install postgresql) or set TENANTRY_TEST_DATABASE_URL"
                .into(),
        )
    })?;
    // The real directory behind a symlinked `postgres` holds its tools (pg_isready).
    let bin = std::fs::canonicalize(bin.join("postgres"))
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| d.join("initdb").is_file())
        .unwrap_or(bin);
    let dir = temp_dir("postgres")?;
    let user = unprivileged();
    let data = dir.join("data");
    let log = dir.join("postgres.log");
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| Unavailable(format!("chown {}: {e}", dir.display())))?;
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        // Byte order for text, UTF-8 character classes (lower('Ü') = 'ü'): what
        // Debian's own cluster uses.
        "--locale=C.UTF-8",
    ]);
    as_user(&mut initdb, user, &log)?;
    let ok = initdb.status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        let why = tail(&log);
        let _ = std::fs::remove_dir_all(&dir);
        return Err(Unavailable(format!(
            "initdb of a throwaway PostgreSQL failed ({why})"
        )));
    }
    let port = free_port()?;
    let mut postgres = Command::new(bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        // A throwaway: durability is not wanted, speed is.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=200"]);
    as_user(&mut postgres, user, &log)?;
    let child = postgres
        .spawn()
        .map_err(|e| Unavailable(format!("cannot start {}: {e}", bin.display())))?;
    // SIGINT: PostgreSQL's fast shutdown.
    guard(child.id(), "INT", &dir)?;
    wait_listening(port, child.id(), "PostgreSQL", &log)?;
    wait_accepting(&bin, port, &log)?;
    announce("PostgreSQL", port, &dir);
    Ok(port)
}

/// Starts a throwaway Redis (no persistence) and returns its port.
pub fn start_redis() -> Result<u16, Unavailable> {
    spawn_redis(|port| vec!["--port".into(), port.to_string()])
}

/// Starts a throwaway Redis that speaks only TLS, with the given PEM certificate,
/// key and CA files (clients are not asked for certificates), and returns its
/// port. Like every throwaway instance, it stops when the test process ends.
pub fn start_redis_tls(cert: &Path, key: &Path, ca: &Path) -> Result<u16, Unavailable> {
    let (cert, key, ca) = (cert.to_owned(), key.to_owned(), ca.to_owned());
    spawn_redis(move |port| {
        let mut args: Vec<std::ffi::OsString> = vec!["--port".into(), "0".into()];
        args.extend(["--tls-port".into(), port.to_string().into()]);
        args.extend(["--tls-cert-file".into(), cert.clone().into()]);
        args.extend(["--tls-key-file".into(), key.clone().into()]);
        args.extend(["--tls-ca-cert-file".into(), ca.clone().into()]);
        args.extend(["--tls-auth-clients".into(), "no".into()]);
        args
    })
}

/// Starts `redis-server` with the listening arguments `listen(port)` on a free
/// loopback port, no persistence, in a new directory.
fn spawn_redis<A: Into<std::ffi::OsString>>(
    listen: impl Fn(u16) -> Vec<A>,
) -> Result<u16, Unavailable> {
    let bin = find(&["redis-server"]).ok_or_else(|| {
        Unavailable(
            "Redis is not running on 127.0.0.1:6379 and redis-server is not installed: \
             install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install \
             redis) or set TENANTRY_TEST_REDIS_URL"
                .into(),
        )
    })?;
    let dir = temp_dir("redis")?;
    let log = dir.join("redis.log");
    let port = free_port()?;
    let mut redis = Command::new(bin.join("redis-server"));
    redis
        .args(listen(port).into_iter().map(Into::into).collect::<Vec<_>>())
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir);
    as_user(&mut redis, None, &log)?;
    let child = redis
        .spawn()
        .map_err(|e| Unavailable(format!("cannot start {}: {e}", bin.display())))?;
    guard(child.id(), "TERM", &dir)?;
    wait_listening(port, child.id(), "Redis", &log)?;
    announce("Redis", port, &dir);
    Ok(port)
}

/// One line on stderr (shown with a failing test's output) saying which instance
/// the tests use.
fn announce(what: &str, port: u16, dir: &Path) {
    let _ = writeln!(
        std::io::stderr(),
        "tenantry-test-services: started a throwaway {what} on 127.0.0.1:{port} in {} (removed when the tests end)",
        dir.display()
    );
}
