//! The first hour with the `tenantry` command (issue 15): pipes, `--json` errors, the
//! data-directory lock, secrets from standard input or a hidden terminal prompt, finding the server (login
//! profiles, ./tenantry.toml), help, version, completions, the demo's data. Every
//! test drives the real binary.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd` with standard input `stdin`.
fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tenantry");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait")
}

/// A bare command with no server settings from the environment, and its own
/// (empty) per-user configuration directory.
fn bare(config_home: &Path) -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "TENANTRY_URL",
        "TENANTRY_API_KEY",
        "TENANTRY_PROFILE",
        "TENANTRY_CONFIG",
    ] {
        c.env_remove(v);
    }
    c.env("TENANTRY_CONFIG_HOME", config_home);
    c
}

/// `tenantry login --url <url> <extra>`, keeping its profiles in `home`.
fn login(home: &Path, url: &str, extra: &[&str]) -> Command {
    let mut c = bare(home);
    c.args(["login", "--url", url]).args(extra);
    c
}

/// Asserts that a command succeeded and printed `part` on standard output.
fn succeeded_showing(out: &Output, part: &str) {
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(part), "{}", text(&out.stdout));
}

/// Installs `@examples/secret-user` (granted `api_token`) in a new org.
async fn org_with_secret_install(s: &Server) -> (Org, String) {
    publish_examples(s).await;
    let o = org(s, "acme").await;
    let body = json!({"plugin": "@examples/secret-user", "grants": {"secrets": ["api_token"]}});
    let install = s.install(&o.owner, body).await;
    (o, install)
}

/// Asserts the install has no secret at all.
async fn assert_no_secret(s: &Server, o: &Org, install: &str) {
    let secrets = s
        .get(&format!("/v1/installs/{install}/secrets"), &o.owner)
        .await;
    assert_eq!(secrets, json!([]), "no secret stored");
}

// 1. Pipes

#[tokio::test]
async fn a_command_writing_into_a_closed_pipe_exits_without_a_panic() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let cases: Vec<Vec<&str>> = vec![
        vec!["audit", "list"],
        vec!["--json", "audit", "list"],
        vec!["user", "list"],
        vec!["org", "show"],
        vec!["completions", "bash"],
        vec!["--help"],
    ];
    for args in cases {
        let mut child = s
            .cli(Some(&o.owner))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // The reader goes away before the first line is written (`| head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
}

// 2. --json everywhere, errors included

/// The one JSON object a failing `--json` command prints on stderr.
fn json_error(out: &Output) -> Value {
    assert!(!out.status.success(), "expected a failure");
    let err = text(&out.stderr);
    let v: Value = serde_json::from_str(err.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {err}"));
    assert!(v["error"]["code"].is_string(), "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    v
}

#[tokio::test]
async fn json_failures_are_one_error_object_on_stderr_with_the_server_code() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let owner = Some(o.owner.as_str());
    let run = |key: Option<&str>, args: &[&str]| s.cli(key).args(args).output().unwrap();
    // The server's stable code.
    let missing = "0190aaaa-0000-7000-8000-000000000000";
    let out = run(owner, &["--json", "install", "show", missing]);
    assert_eq!(json_error(&out)["error"]["code"], "NOT_FOUND");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    for (key, args, code) in [
        (None, &["--json", "org", "show"][..], "UNAUTHENTICATED"),
        // No server there.
        (
            owner,
            &["--json", "org", "show", "--url", "http://127.0.0.1:9"],
            "CONNECTION_FAILED",
        ),
        // Client options are still taken before the command, too.
        (
            owner,
            &["--json", "--url", "http://127.0.0.1:9", "org", "show"],
            "CONNECTION_FAILED",
        ),
        // A local failure.
        (
            None,
            &["--json", "plugin", "sign", "/nonexistent-plugin-dir"],
            "CLI_ERROR",
        ),
        // A usage error.
        (None, &["--json", "org", "create"], "USAGE_ERROR"),
    ] {
        assert_eq!(
            json_error(&run(key, args))["error"]["code"],
            code,
            "{args:?}"
        );
    }
    // The demo refuses --json clearly, in JSON.
    let v = json_error(&run(None, &["--json", "demo"]));
    assert_message_contains(&v, "without --json");
    // Success: JSON on stdout, nothing on stderr.
    let out = run(owner, &["--json", "org", "show"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["name"], "acme");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn usage_export_help_says_it_prints_json_lines_whatever_json_says() {
    let out = Command::new(BIN)
        .args(["usage", "export", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    assert!(
        help.contains("JSON lines") && help.contains("`--json` does not change the stream"),
        "{help}"
    );
}

// 3. The data-directory lock

/// Waits up to 15 s for `child` to exit; kills it and fails otherwise.
fn exits_quickly(mut child: std::process::Child) -> Output {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("a second `tenantry serve` on the same data directory kept running");
}

fn second_serve(s: &Server, extra: &[&str]) -> Output {
    let child = Command::new(BIN)
        .arg("serve")
        .args(extra)
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("TENANTRY_DATABASE_URL")
        .env_remove("TENANTRY_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    exits_quickly(child)
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused_naming_the_holder_pid() {
    let s = Server::start();
    let pid = s.pid().expect("a child process").to_string();
    let out = second_serve(&s, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("in use by another tenantry process") && err.contains(&pid),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("tny_"), "no operator key shown");
}

#[tokio::test]
async fn a_second_pooled_server_on_the_same_data_dir_is_refused_too() {
    let s = Server::start_pooled().await;
    let pid = s.pid().expect("a child process").to_string();
    let url = s.db.as_ref().expect("pooled").app_url.clone();
    let out = second_serve(&s, &["--database-url", &url]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains(&pid), "{err}");
}

// 4. Secrets from standard input

#[tokio::test]
async fn an_empty_secret_on_stdin_is_refused_and_nothing_is_stored() {
    let s = Server::start();
    let (o, install) = org_with_secret_install(&s).await;
    for stdin in [&b""[..], b"\n"] {
        let mut cmd = s.cli(Some(&o.owner));
        cmd.args(["secret", "set", &install, "api_token"]);
        let out = run_with_stdin(cmd, stdin);
        assert!(!out.status.success(), "{stdin:?} was accepted");
        let err = text(&out.stderr);
        assert!(
            err.contains("is empty") && err.contains("nothing was stored"),
            "{err}"
        );
    }
    assert_no_secret(&s, &o, &install).await;
    // A value is stored (without its trailing newline).
    let mut cmd = s.cli(Some(&o.owner));
    cmd.args(["secret", "set", &install, "api_token"]);
    let out = run_with_stdin(cmd, b"tok-123\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = s
        .cli(Some(&o.owner))
        .args(["secret", "list", &install])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("api_token"),
        "{}",
        text(&out.stdout)
    );
}

/// What a person saw on a terminal, and how the command ended.
struct Terminal {
    shown: String,
    status: std::process::ExitStatus,
}

/// Runs `cmd` on a new pseudo-terminal that is its controlling terminal (so a
/// prompt reading `/dev/tty` reads it), types `typed` and Enter once `prompt` has
/// appeared, and returns everything the terminal showed. Fails after 60 s.
fn on_terminal(mut cmd: Command, prompt: &str, typed: &str) -> Terminal {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::sync::{Arc, Mutex};

    // SAFETY: plain libc calls on a descriptor this function owns; ptsname_r writes
    // at most `name.len()` bytes, NUL-terminated.
    let (master, slave_path) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = std::fs::File::from(OwnedFd::from_raw_fd(fd));
        assert_eq!(libc::grantpt(fd), 0, "grantpt");
        assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_string_lossy()
            .into_owned();
        (master, path)
    };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave_path)
        .expect("open the terminal's slave side");
    cmd.stdin(slave.try_clone().expect("dup"))
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on the terminal");
    drop(cmd); // our copies of the slave side: the master reads EOF when the child ends

    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut reader = master.try_clone().expect("dup master");
    let sink = shown.clone();
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once every slave descriptor is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&buf[..n]);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = |s: &Arc<Mutex<Vec<u8>>>| text(&s.lock().expect("lock"));
    while !seen(&shown).contains(prompt) {
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("no prompt {prompt:?} on the terminal: {:?}", seen(&shown));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut writer = master;
    writer
        .write_all(format!("{typed}\n").as_bytes())
        .expect("type on the terminal");
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after the input: {:?}", seen(&shown));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(writer);
    reading.join().expect("reader");
    let shown = seen(&shown);
    Terminal { shown, status }
}

#[tokio::test]
async fn a_secret_typed_at_the_terminal_is_not_echoed_and_is_stored_exactly() {
    let s = Server::start();
    let (o, install) = org_with_secret_install(&s).await;
    let typed = "typed-at-the-prompt-42";
    let mut cmd = s.cli(Some(&o.owner));
    cmd.args(["secret", "set", &install, "api_token"]);
    let t = on_terminal(cmd, "(hidden): ", typed);
    assert!(t.status.success(), "{}", t.shown);
    assert!(
        t.shown.contains("Value of secret 'api_token' (hidden): "),
        "{}",
        t.shown
    );
    assert!(
        !t.shown.contains(typed),
        "the terminal echoed the secret: {}",
        t.shown
    );
    assert!(t.shown.contains("secret 'api_token' set"), "{}", t.shown);

    // The plugin reads exactly what was typed (its length; the value never leaves).
    s.bind(&o, &install).await;
    let r = s.run(&o.agent, &install, "check", json!({})).await;
    assert_eq!(r["output"]["set"], true, "{r}");
    assert_eq!(r["output"]["length"], typed.len(), "{r}");
}

#[tokio::test]
async fn enter_alone_at_the_secret_prompt_is_refused_and_nothing_is_stored() {
    let s = Server::start();
    let (o, install) = org_with_secret_install(&s).await;
    let mut cmd = s.cli(Some(&o.owner));
    cmd.args(["secret", "set", &install, "api_token"]);
    let t = on_terminal(cmd, "(hidden): ", "");
    assert!(
        !t.status.success(),
        "an empty secret was accepted: {}",
        t.shown
    );
    assert!(t.shown.contains("nothing was stored"), "{}", t.shown);
    assert_no_secret(&s, &o, &install).await;
}

#[tokio::test]
async fn an_api_key_typed_at_the_login_prompt_is_not_echoed_and_is_kept() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let home = tempfile::tempdir().expect("tempdir");
    let t = on_terminal(
        login(home.path(), &s.url, &[]),
        "API key (hidden): ",
        &o.owner,
    );
    assert!(t.status.success(), "{}", t.shown);
    assert!(
        !t.shown.contains(&o.owner),
        "the terminal echoed the key: {}",
        t.shown
    );
    assert!(t.shown.contains("acme"), "{}", t.shown);
    let out = bare(home.path())
        .args(["org", "show"])
        .output()
        .expect("run");
    succeeded_showing(&out, "acme");
}

// 5. Finding the server: login profiles, ./tenantry.toml

#[tokio::test]
async fn login_keeps_the_key_in_a_private_file_that_later_commands_use() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let home = tempfile::tempdir().unwrap();
    let out = run_with_stdin(
        login(home.path(), &s.url, &[]),
        format!("{}\n", o.owner).as_bytes(),
    );
    succeeded_showing(&out, "acme");
    let file = home.path().join("credentials.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "credentials file mode {mode:o}");
    }
    // Neither TENANTRY_URL nor TENANTRY_API_KEY: the profile says both.
    let out = bare(home.path()).args(["org", "show"]).output().unwrap();
    succeeded_showing(&out, "acme");
    let out = bare(home.path()).arg("whoami").output().unwrap();
    let who = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        who.contains(&s.url) && who.contains("acme") && who.contains("profile 'default'"),
        "{who}"
    );
    // Logout forgets it.
    let out = bare(home.path()).arg("logout").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = bare(home.path())
        .args(["org", "show", "--url", &s.url])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the key was forgotten");
}

#[tokio::test]
async fn a_profile_key_is_not_sent_to_another_server_than_its_own() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let home = tempfile::tempdir().unwrap();
    let out = run_with_stdin(
        login(home.path(), &s.url, &["--profile", "work"]),
        o.owner.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Selected by TENANTRY_PROFILE.
    let out = bare(home.path())
        .env("TENANTRY_PROFILE", "work")
        .arg("whoami")
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("acme"), "{}", text(&out.stderr));
    // The same server under another name is another server as far as the key goes.
    let other = s.url.replace("127.0.0.1", "localhost");
    let out = bare(home.path())
        .args(["org", "show", "--profile", "work", "--url", &other])
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out.stderr).contains("UNAUTHENTICATED"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn login_with_a_bad_key_stores_nothing_and_an_operator_key_is_the_operator() {
    let s = Server::start();
    let home = tempfile::tempdir().unwrap();
    let out = run_with_stdin(login(home.path(), &s.url, &[]), b"tny_not-a-key");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing was stored"),
        "{}",
        text(&out.stderr)
    );
    assert!(!home.path().join("credentials.toml").exists());
    let out = run_with_stdin(login(home.path(), &s.url, &[]), s.operator_key.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = bare(home.path()).arg("whoami").output().unwrap();
    assert!(
        text(&out.stdout).contains("operator"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn listen_in_tenantry_toml_of_the_working_directory_locates_the_server() {
    let s = Server::start();
    let o = org(&s, "acme").await;
    let work = tempfile::tempdir().unwrap();
    let addr = s.url.trim_start_matches("http://");
    std::fs::write(
        work.path().join("tenantry.toml"),
        format!("listen = \"{addr}\"\n"),
    )
    .unwrap();
    let out = bare(&work.path().join("no-profiles"))
        .current_dir(work.path())
        .env("TENANTRY_API_KEY", &o.owner)
        .args(["org", "show"])
        .output()
        .unwrap();
    succeeded_showing(&out, "acme");
}

// 6. Help, version, completions

/// The subcommand names of a help page's "Commands:" section.
fn subcommands(help: &str) -> Vec<String> {
    help.split("\nCommands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|l| !l.trim().is_empty())
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| *n != "help")
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Entries of the "Arguments:" and "Options:" sections without a description.
fn undescribed(help: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut in_section = false;
    let lines: Vec<&str> = help.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if *l == "Arguments:" || *l == "Options:" {
            in_section = true;
            continue;
        }
        if !l.starts_with(' ') {
            in_section = false;
            continue;
        }
        let entry = l.strip_prefix("  ").unwrap_or(l);
        let is_entry = !entry.starts_with(' ') || entry.trim_start().starts_with("--");
        if !in_section || !is_entry {
            continue;
        }
        // "  -h, --help  Print help" or a description on the next, deeper line.
        let same_line = entry.trim().contains("  ");
        let next_line = lines
            .get(i + 1)
            .is_some_and(|n| n.starts_with("          ") && !n.trim().is_empty());
        if !same_line && !next_line {
            missing.push(l.trim().to_string());
        }
    }
    missing
}

#[test]
fn every_argument_and_option_of_every_subcommand_has_a_description() {
    let mut todo: Vec<Vec<String>> = vec![vec![]];
    let mut pages = 0;
    let mut missing = Vec::new();
    while let Some(path) = todo.pop() {
        let out = Command::new(BIN)
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{path:?} --help failed");
        let help = text(&out.stdout);
        pages += 1;
        for m in undescribed(&help) {
            missing.push(format!("tenantry {} : {m}", path.join(" ")));
        }
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
    }
    assert!(pages > 50, "walked only {pages} help pages");
    assert!(missing.is_empty(), "undescribed:\n{}", missing.join("\n"));
}

#[test]
fn local_commands_do_not_offer_server_url_or_api_key_options() {
    for path in [
        &["plugin", "keygen"][..],
        &["plugin", "sign"],
        &["demo"],
        &["serve"],
        &["migrate"],
        &["completions"],
        &["logout"],
    ] {
        let out = Command::new(BIN).args(path).arg("--help").output().unwrap();
        let help = text(&out.stdout);
        assert!(
            !help.contains("--api-key") && !help.contains("--url"),
            "{path:?}:\n{help}"
        );
    }
    // A usage error does not make them look required either.
    let out = Command::new(BIN).args(["org", "create"]).output().unwrap();
    let err = text(&out.stderr);
    assert!(
        !err.contains("--url") && !err.contains("--api-key"),
        "{err}"
    );
    // Client commands do offer them.
    let out = Command::new(BIN)
        .args(["plugin", "publish", "--help"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("--api-key"));
}

#[test]
fn version_names_the_commit_and_the_wit_package_served() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let v = text(&out.stdout);
    assert!(out.status.success());
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v}");
    assert!(v.contains("commit "), "{v}");
    assert!(
        v.contains("tenantry:plugin@0.2.0, tenantry:plugin@0.1.0"),
        "{v}"
    );
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("tenantry"), "{shell}");
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown shell is refused");
}

// 8. The demo's data

#[tokio::test]
async fn the_demo_with_a_data_dir_keeps_it_and_prints_a_working_explore_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo-data");
    let out = Command::new(BIN)
        .args(["demo", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let say = text(&out.stdout);
    assert!(out.status.success(), "{say}\n{}", text(&out.stderr));
    assert!(
        say.contains(&format!("tenantry serve --data-dir {}", data.display())),
        "{say}"
    );
    let key = say
        .lines()
        .find_map(|l| l.trim().strip_prefix("export TENANTRY_API_KEY="))
        .unwrap_or_else(|| panic!("no operator key printed: {say}"))
        .to_string();
    // Following it works: serve the directory, use the key.
    let child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("TENANTRY_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let url = {
        use std::io::{BufRead, BufReader};
        let stdout = child.0.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let l = lines.next().expect("serve exited").unwrap();
            if let Some(rest) = l.strip_prefix("Tenantry listening on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        }
    };
    let out = bare(dir.path())
        .args(["org", "list", "--url", &url, "--api-key", &key])
        .output()
        .unwrap();
    let orgs = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(orgs.contains("acme") && orgs.contains("globex"), "{orgs}");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_on_a_temporary_directory_does_not_point_at_the_deleted_directory() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let say = text(&out.stdout);
    assert!(out.status.success(), "{say}\n{}", text(&out.stderr));
    assert!(!say.contains("tenantry serve --data-dir /"), "{say}");
    assert!(say.contains("--data-dir DIR"), "{say}");
}

// 9. Output on a pipe

#[tokio::test]
async fn publish_on_a_pipe_prints_no_progress_on_stderr() {
    let s = Server::start();
    let p = publisher(&s, "author").await;
    let dir = plugin_dir(&manifest("author", "hello", "1.0.0"), &component("pipe"));
    std::fs::write(dir.path().join("publisher.key"), p.key.to_text().expose()).unwrap();
    let out = s
        .cli(None)
        .current_dir(dir.path())
        .args(["plugin", "sign", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = s
        .cli(Some(&s.operator_key))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["plugin", "publish", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Published @author/hello@1.0.0"));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // Errors on a pipe carry no colour codes.
    let out = s.cli(None).args(["org", "show"]).output().unwrap();
    assert!(!text(&out.stderr).contains('\x1b'), "{}", text(&out.stderr));
}
