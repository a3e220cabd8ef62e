//! Throwaway services: they start on a machine where PostgreSQL and Redis are only
//! installed, answer, and disappear with their directories when the process that
//! started them ends, however it ends. Where they are not installed, one line says
//! what to install.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_throwaway-services");

/// A running `throwaway-services` and the URLs it printed.
struct Started {
    child: Child,
    postgres: String,
    redis: String,
}

fn start() -> Started {
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run throwaway-services");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = |what: &str| -> String {
        let line = lines.next().and_then(Result::ok).unwrap_or_default();
        line.strip_prefix(&format!("{what} "))
            .unwrap_or_else(|| panic!("expected a {what} URL, got {line:?}"))
            .to_string()
    };
    let postgres = next("postgres");
    let redis = next("redis");
    Started {
        child,
        postgres,
        redis,
    }
}

fn port(url: &str) -> u16 {
    let after = url.rsplit_once(':').expect("a port").1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a port number")
}

fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// The instance's data directory, as PostgreSQL reports it.
async fn postgres_answers(url: &str) -> PathBuf {
    let mut c = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    let (dir,): (String,) = sqlx::query_as("SELECT current_setting('data_directory')")
        .fetch_one(&mut c)
        .await
        .expect("query");
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut c)
        .await
        .expect("the admin can create tables");
    let _ = c.close().await;
    PathBuf::from(dir)
}

fn redis_answers(url: &str) {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port(url))).expect("connect Redis");
    s.write_all(b"PING\r\n").expect("write");
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"+PONG\r\n");
}

/// Waits until neither port listens and the directory is gone.
fn gone(pg: u16, redis: u16, dir: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while listening(pg) || listening(redis) || dir.exists() {
        assert!(
            Instant::now() < deadline,
            "still there 30 s after the end: postgres {} redis {} dir {}",
            listening(pg),
            listening(redis),
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn throwaway_postgres_and_redis_answer_then_vanish_when_their_process_ends() {
    let mut s = start();
    let data = postgres_answers(&s.postgres).await;
    redis_answers(&s.redis);
    let dir = data.parent().expect("the instance directory").to_path_buf();
    assert!(
        dir.starts_with(std::env::temp_dir()),
        "not a throwaway: {}",
        data.display()
    );
    assert_ne!(port(&s.postgres), 5432);
    // The end of its input ends it; everything goes with it.
    drop(s.child.stdin.take());
    let status = s.child.wait().expect("wait");
    assert!(status.success());
    gone(port(&s.postgres), port(&s.redis), &dir);
}

#[tokio::test]
async fn a_test_process_killed_outright_leaves_no_service_or_directory_behind() {
    let mut s = start();
    let data = postgres_answers(&s.postgres).await;
    redis_answers(&s.redis);
    s.child.kill().expect("SIGKILL");
    let _ = s.child.wait();
    gone(
        port(&s.postgres),
        port(&s.redis),
        data.parent().expect("dir"),
    );
}

#[test]
fn where_nothing_is_installed_one_line_says_what_to_install() {
    for (service, wants) in [
        (
            "postgres",
            [
                "PostgreSQL is not running on 127.0.0.1:5432",
                "apt-get install postgresql",
                "TENANTRY_TEST_DATABASE_URL",
            ],
        ),
        (
            "redis",
            [
                "Redis is not running on 127.0.0.1:6379",
                "apt-get install redis-server",
                "TENANTRY_TEST_REDIS_URL",
            ],
        ),
    ] {
        let out = Command::new(BIN)
            .arg(service)
            .env("TENANTRY_TEST_SERVICE_PATH", "/nonexistent")
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert!(!out.status.success(), "{service}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        for want in wants {
            assert!(err.contains(want), "{service}: {err}");
        }
    }
}
