//! The README's quickstart (issue 15), run as written: the block after the
//! `<!-- quickstart: … -->` marker in README.md is read at test time and run by
//! `bash -euo pipefail` against a fresh server, with the operator key in place of its
//! `tny_…` placeholder. So the README cannot drift from what works.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str = "<!-- quickstart:";
const PLACEHOLDER: &str = "tny_…";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first fenced `sh` block after the marker.
fn quickstart(readme: &str) -> String {
    let at = readme
        .find(MARKER)
        .expect("README.md has no `<!-- quickstart: … -->` marker");
    let rest = &readme[at..];
    let open = rest
        .find("\n```sh\n")
        .expect("no ```sh block after the quickstart marker");
    let body = &rest[open + "\n```sh\n".len()..];
    let close = body
        .find("\n```")
        .expect("the quickstart block is not closed");
    body[..close + 1].to_string()
}

/// The whitespace-separated fields of the lines of `out`.
fn rows(out: &str) -> Vec<Vec<&str>> {
    out.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let block = quickstart(&readme);
    assert_eq!(
        block.matches(PLACEHOLDER).count(),
        1,
        "the quickstart must show the operator key placeholder {PLACEHOLDER} exactly once:\n{block}"
    );

    let s = Server::start();
    let script = block.replace(PLACEHOLDER, &s.operator_key);

    // A newcomer's clone: the script runs at "the repository root", a temporary
    // directory whose `examples` is the real one (read only: the README copies what
    // it signs), so nothing is written into the repository.
    let work = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(root.join("examples"), work.path().join("examples"))
        .expect("symlink examples");
    let config_home = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(BIN).parent().expect("binary directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    std::fs::write(work.path().join("quickstart.sh"), &script).expect("write script");
    let stdout = std::fs::File::create(work.path().join("stdout")).expect("stdout file");
    let stderr = std::fs::File::create(work.path().join("stderr")).expect("stderr file");
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "quickstart.sh"])
        .current_dir(work.path())
        .env("PATH", path)
        .env("TENANTRY_URL", &s.url)
        .env("TENANTRY_CONFIG_HOME", config_home.path());
    for v in [
        "TENANTRY_API_KEY",
        "TENANTRY_PROFILE",
        "TENANTRY_CONFIG",
        "TENANTRY_PUBLISHER_KEY",
    ] {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("run bash");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the quickstart did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(work.path().join("stdout")).unwrap_or_default();
    let err = std::fs::read_to_string(work.path().join("stderr")).unwrap_or_default();
    let shown = format!(
        "--- stdout\n{out}\n--- stderr\n{err}\n--- server log\n{}",
        s.logs()
    );
    assert!(
        status.success(),
        "the quickstart failed ({status}):\n{shown}"
    );

    // The invocation succeeded in the install's configured units, with its secret.
    assert_eq!(out.matches("outcome: OK").count(), 1, "{shown}");
    assert!(
        out.contains(r#""units": "metric""#) && out.contains(r#""temperature": 4.0"#),
        "weather must answer in the configured units (it needs the secret to answer):\n{shown}"
    );
    assert!(
        !out.contains("not-a-real-key"),
        "the secret's value must never be printed:\n{shown}"
    );

    // `tenantry usage`: one OK event (ID AT PLUGIN ACTION OUTCOME …).
    let rows = rows(&out);
    assert!(
        rows.iter().any(|r| r.len() > 4
            && r[2] == "@examples/weather"
            && r[3] == "forecast"
            && r[4] == "OK"),
        "`tenantry usage` must list @examples/weather forecast:\n{shown}"
    );
    // `tenantry audit list`: the agent's invocation (SEQ AT ACTOR_KIND ACTION TARGET OUTCOME).
    let invokes = rows
        .iter()
        .filter(|r| r.len() > 5 && r[2] == "agent" && r[3] == "invoke" && r[5] == "OK")
        .count();
    assert_eq!(
        invokes, 1,
        "`tenantry audit list` must show the agent's invocation:\n{shown}"
    );

    // Nothing was written into the repository's examples.
    let sig = root.join("examples/plugins/weather/tenantry.sig.json");
    assert!(!sig.exists(), "{} was written", sig.display());
}
