//! The command helping people along (issue 15): "did you mean" for mistyped names,
//! warnings about secrets an install needs, and `tenantry plugin new`. Every test
//! drives the real binary.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run tenantry")
}

/// Runs and expects success; returns (stdout, stderr).
fn ok(c: &mut Command) -> (String, String) {
    let out = run(c);
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "failed: {e}\n{o}");
    (o, e)
}

/// Runs and expects success; parses standard output as JSON.
fn ok_json(c: &mut Command) -> Value {
    serde_json::from_str(&ok(c).0).expect("JSON")
}

/// Runs and expects failure; returns stderr.
fn fails(c: &mut Command) -> String {
    let out = run(c);
    let e = text(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a failure: {}",
        text(&out.stdout)
    );
    assert!(!e.contains("panicked"), "{e}");
    e
}

/// A server with the example plugins published and the org `acme`.
async fn acme_with_examples() -> (Server, Org) {
    let s = Server::start();
    publish_examples(&s).await;
    let o = org(&s, "acme").await;
    (s, o)
}

// 1. Did you mean

#[tokio::test]
async fn a_mistyped_install_agent_org_or_plugin_name_suggests_the_closest_existing_names() {
    let (s, o) = acme_with_examples().await;
    let key = Some(o.owner.as_str());
    ok(s.cli(key).args(["install", "add", "@examples/echo"]));

    // An install named by a mistyped plugin name, in every command that takes one.
    for args in [
        vec!["invoke", "@examples/ecko", "echo"],
        vec!["install", "show", "@examples/ecko"],
        vec!["install", "disable", "@examples/ecko"],
        vec!["secret", "list", "@examples/ecko"],
        vec!["agent", "bind", "bot", "@examples/ecko"],
        vec!["usage", "--install", "@examples/ecko"],
        vec!["usage", "summary", "--install", "@examples/ecko"],
    ] {
        let e = fails(s.cli(key).args(&args));
        assert!(
            e.contains("no install of @examples/ecko in your org; did you mean @examples/echo?"),
            "{args:?}: {e}"
        );
    }

    // A mistyped agent name (the org's agent is `bot`).
    for args in [
        vec!["agent", "bind", "bott", "@examples/echo"],
        vec!["agent", "delete", "bott"],
    ] {
        let e = fails(s.cli(key).args(&args));
        assert!(
            e.contains("no agent named bott; did you mean bot?"),
            "{args:?}: {e}"
        );
    }

    // A mistyped org name (operator).
    let e = fails(
        s.cli(Some(&s.operator_key))
            .args(["org", "set-tier", "acmee", "free"]),
    );
    assert!(e.contains("no org named acmee; did you mean acme?"), "{e}");

    // A mistyped plugin name when installing, or showing it: from the registry.
    let e = fails(s.cli(key).args(["install", "add", "@examples/kv-countr"]));
    assert!(e.contains("did you mean @examples/kv-counter?"), "{e}");
    let e = fails(s.cli(key).args(["plugin", "show", "@examples/secret-usr"]));
    assert!(e.contains("did you mean @examples/secret-user?"), "{e}");

    // Far-off names: no suggestion, the listing command instead.
    for (args, want) in [
        (
            vec!["invoke", "@examples/zzz", "echo"],
            "no install of @examples/zzz in your org; see `tenantry install list`",
        ),
        (
            vec!["agent", "delete", "payroll"],
            "no agent named payroll; see `tenantry agent list`",
        ),
    ] {
        let e = fails(s.cli(key).args(&args));
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!e.contains("did you mean"), "{args:?}: {e}");
    }
    let e = fails(
        s.cli(key)
            .args(["install", "add", "@examples/weather-forecaster"]),
    );
    assert!(!e.contains("did you mean"), "{e}");
}

/// An operator setting up an org finds its users (ids it provisioned and lost) and
/// names users by name wherever a user is typed; once a member holds a key the org
/// is its members' and the operator is sent to break-glass; members name users of
/// their own org only.
#[tokio::test]
async fn users_are_named_by_name_and_an_operator_lists_an_orgs_users_while_setting_it_up() {
    let s = Server::start();
    let acme = org(&s, "acme").await;
    let globex = org(&s, "globex").await;
    let op = Some(s.operator_key.as_str());
    s.create(
        "/v1/orgs",
        s.operator_key.as_str(),
        json!({"name": "initech"}),
    )
    .await;
    for (name, role) in [("alice@initech", "owner"), ("bob@initech", "member")] {
        ok(s.cli(op)
            .args(["user", "add", name, "--role", role, "--org", "initech"]));
    }

    // The operator lists initech's users: its two, none of another org's.
    let users = ok_json(
        s.cli(op)
            .args(["--json", "user", "list", "--org", "initech"]),
    );
    let mut names: Vec<&str> = users
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice@initech", "bob@initech"]);
    // Over HTTP too, and only for an operator.
    for (_, key) in acme.keys() {
        s.refused(
            "GET",
            &format!("/v1/orgs/{}/users", globex.id),
            Some(key),
            None,
            (403, "PERMISSION_DENIED"),
        )
        .await;
    }
    s.refused(
        "GET",
        "/v1/orgs/00000000-0000-4000-8000-000000000000/users",
        op,
        None,
        (404, "NOT_FOUND"),
    )
    .await;

    // A user of another org is not found by name, with the listing named.
    let e = fails(s.cli(op).args([
        "key",
        "create",
        "--user",
        "member@globex",
        "--org",
        "initech",
    ]));
    assert!(e.contains("no user named member@globex"), "{e}");
    let e = fails(s.cli(op).args([
        "key",
        "create",
        "--user",
        "alicee@initech",
        "--org",
        "initech",
    ]));
    assert!(
        e.contains("no user named alicee@initech; did you mean alice@initech?"),
        "{e}"
    );
    // The operator issues the owner's key to a user named by name, in an org named
    // by name.
    let k = ok_json(s.cli(op).args([
        "--json",
        "key",
        "create",
        "--user",
        "alice@initech",
        "--org",
        "initech",
        "--name",
        "alice",
    ]));
    assert_eq!(k["principal_kind"], "user");
    let user_id = |name: &str| {
        let user = users
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["name"] == name);
        user.unwrap_or_else(|| panic!("no user {name}"))["id"].clone()
    };
    assert_eq!(k["principal_id"], user_id("alice@initech"));
    let new_key = k["key"].as_str().expect("key").to_string();
    let me = s.get("/v1/org", &new_key).await;
    assert_eq!(me["name"], "initech");

    // Now alice holds a key: initech is hers, and the operator needs break-glass.
    for args in [
        vec!["user", "list", "--org", "initech"],
        vec!["key", "create", "--user", "bob@initech", "--org", "initech"],
        vec!["user", "list", "--org", "acme"],
    ] {
        let e = fails(s.cli(op).args(&args));
        assert!(e.contains("breakglass open"), "{args:?}: {e}");
    }

    // An owner names users in set-role and agent create.
    let owner = Some(acme.owner.as_str());
    let u = ok_json(
        s.cli(owner)
            .args(["--json", "user", "set-role", "viewer@acme", "member"]),
    );
    assert_eq!(u["role"], "member");
    let a = ok_json(s.cli(owner).args([
        "--json",
        "agent",
        "create",
        "helper",
        "--on-behalf-of",
        "admin@acme",
    ]));
    let admin = s.get("/v1/users", &acme.owner).await;
    let admin_id = admin
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["name"] == "admin@acme")
        .map(|u| u["id"].clone());
    assert_eq!(Some(a["on_behalf_of"].clone()), admin_id);
    // Another org's user by name is not found from acme.
    let e = fails(
        s.cli(owner)
            .args(["user", "set-role", "owner@globex", "viewer"]),
    );
    assert!(e.contains("no user named owner@globex"), "{e}");
}

/// keygen, sign, then register (the order a newcomer meets it), then publish: the
/// refusal says the signature predates the key's registration and to sign again,
/// and signing again publishes.
#[tokio::test]
async fn a_plugin_signed_before_its_key_was_registered_is_refused_with_sign_again() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("echo");
    std::fs::create_dir(&dir).expect("mkdir");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins/echo");
    for f in ["tenantry.json", "plugin.wasm"] {
        std::fs::copy(examples.join(f), dir.join(f)).expect("copy the example");
    }
    let (keygen, _) = ok(s
        .cli(None)
        .current_dir(tmp.path())
        .args(["--json", "plugin", "keygen"]));
    let keygen: Value = serde_json::from_str(&keygen).expect("keygen JSON");
    let public_key = keygen["public_key"]
        .as_str()
        .expect("public key")
        .to_string();
    let sign = || {
        ok(s.cli(None)
            .current_dir(tmp.path())
            .args(["plugin", "sign", "echo"]))
    };
    sign();
    // The operator registers the key a moment after the author signed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(s.cli(Some(&s.operator_key)).args([
        "publisher",
        "register",
        "examples",
        "--public-key",
        &public_key,
    ]));
    let publish = || {
        let mut c = s.cli(Some(&s.operator_key));
        c.current_dir(tmp.path())
            .args(["plugin", "publish", "echo"]);
        c
    };
    let e = fails(&mut publish());
    assert!(
        e.contains("KEY_NOT_VALID")
            && e.contains("before key")
            && e.contains("registered")
            && e.contains("sign it again with `tenantry plugin sign`"),
        "{e}"
    );
    sign();
    let (out, _) = ok(&mut publish());
    assert!(out.contains("Published @examples/echo@"), "{out}");
}

// 2. Secrets an install needs

#[tokio::test]
async fn installing_without_a_secret_the_plugin_reads_warns_on_stderr_only() {
    let (s, o) = acme_with_examples().await;
    let key = Some(o.owner.as_str());

    // Without the grant: a warning naming the flag, on stderr.
    let (out, err) = ok(s.cli(key).args(["install", "add", "@examples/secret-user"]));
    assert!(
        err.contains(
            "warning: @examples/secret-user declares secret 'api_token' but this install does not grant it"
        ),
        "{err}"
    );
    assert!(err.contains("--grant-secret api_token"), "{err}");
    assert!(!err.contains("has no value yet"), "{err}");
    assert!(!out.contains("warning"), "{out}");

    // Granting it afterwards: now the value is missing.
    let grant = [
        "install",
        "grants",
        "@examples/secret-user",
        "--grant-secret",
        "api_token",
    ];
    let grant_secret = || ok(s.cli(key).args(grant));
    let (_, err) = grant_secret();
    assert!(!err.contains("does not grant"), "{err}");
    assert!(
        err.contains(
            "secret 'api_token' of @examples/secret-user has no value yet; set it with `tenantry secret set @examples/secret-user api_token`"
        ),
        "{err}"
    );

    // Once set, granting again says nothing.
    let mut child = s
        .cli(key)
        .args(["secret", "set", "@examples/secret-user", "api_token"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"tok-123\n").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, err) = grant_secret();
    assert_eq!(err, "", "no warning once the secret is granted and set");

    // A plugin that reads no secret: no warning.
    let (_, err) = ok(s.cli(key).args(["install", "add", "@examples/echo"]));
    assert_eq!(err, "");

    // Installing with the grant (another org): only "no value yet".
    let o2 = org(&s, "globex").await;
    let (_, err) = ok(s.cli(Some(&o2.owner)).args([
        "install",
        "add",
        "@examples/secret-user",
        "--grant-secret",
        "api_token",
    ]));
    assert!(!err.contains("does not grant"), "{err}");
    assert!(err.contains("has no value yet"), "{err}");

    // --json: standard output is the install alone; warnings are JSON lines on stderr.
    let o3 = org(&s, "initech").await;
    let (out, err) =
        ok(s.cli(Some(&o3.owner))
            .args(["--json", "install", "add", "@examples/secret-user"]));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["plugin"], "@examples/secret-user");
    let warnings: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert_eq!(warnings[0]["warning"]["code"], "SECRET_NOT_GRANTED");
    assert!(
        warnings[0]["warning"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--grant-secret api_token")
    );
}

// 3. tenantry plugin new

/// `tenantry plugin new ARGS` run in `cwd`, expecting success; returns stdout.
fn plugin_new(cwd: &Path, args: &[&str]) -> String {
    ok(Command::new(BIN)
        .current_dir(cwd)
        .args(["plugin", "new"])
        .args(args))
    .0
}

/// Parses and fully validates a generated manifest, as the registry does.
fn valid_manifest(dir: &Path) -> tenantry_core::manifest::Manifest {
    let bytes = std::fs::read(dir.join("tenantry.json")).expect("tenantry.json");
    tenantry_core::manifest::Manifest::from_json(&bytes)
        .unwrap_or_else(|e| panic!("the generated tenantry.json is refused: {e}"))
}

#[test]
fn plugin_new_scaffolds_rust_and_js_projects_with_a_valid_manifest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();

    // Rust, publisher from the name's scope, default directory.
    let out = plugin_new(root, &["@acme-tools/greeter"]);
    assert!(
        out.contains("cargo build --release --target wasm32-wasip2"),
        "{out}"
    );
    assert!(out.contains("tenantry plugin sign"), "{out}");
    let dir = root.join("greeter");
    let m = valid_manifest(&dir);
    assert_eq!(m.name, "@acme-tools/greeter");
    assert_eq!(m.publisher, "acme-tools");
    assert_eq!(m.actions[0].name, "hello");
    for f in ["Cargo.toml", "src/lib.rs", ".gitignore", "README.md"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(cargo.contains("crate-type = [\"cdylib\"]"), "{cargo}");
    let sdk = std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust"))
        .expect("sdk/rust");
    assert!(
        cargo.contains(&format!(
            "tenantry-plugin-sdk = {{ path = \"{}\" }}",
            sdk.display()
        )),
        "{cargo}"
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    // Words, whatever the line breaks.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "cargo build --release --target wasm32-wasip2",
        "cp target/wasm32-wasip2/release/greeter.wasm plugin.wasm",
        "tenantry plugin keygen",
        "tenantry publisher register acme-tools --public-key",
        "tenantry plugin sign",
        "tenantry plugin publish",
        "This is temporary, until the SDK is published",
    ] {
        assert!(readme.contains(want), "README lacks {want:?}:\n{readme}");
    }

    // JavaScript, default publisher, --dir.
    let js = root.join("projects/hello-js");
    plugin_new(
        root,
        &[
            "hello.js",
            "--lang",
            "js",
            "--dir",
            js.to_str().expect("utf-8"),
        ],
    );
    let m = valid_manifest(&js);
    assert_eq!(m.name, "@my-publisher/hello.js");
    let pkg: Value =
        serde_json::from_slice(&std::fs::read(js.join("package.json")).expect("package.json"))
            .expect("package.json is JSON");
    let build = pkg["scripts"]["build"].as_str().unwrap_or_default();
    assert!(
        build.starts_with(
            "componentize-js src/plugin.js --wit wit --world-name plugin --disable fetch-event"
        ),
        "{build}"
    );
    assert!(pkg["devDependencies"]["@bytecodealliance/componentize-js"].is_string());
    let plugin_js = std::fs::read_to_string(js.join("src/plugin.js")).expect("plugin.js");
    assert!(plugin_js.contains("export function invoke(action, input)"));
    assert_eq!(
        std::fs::read_to_string(js.join("wit/plugin.wit")).expect("wit"),
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit/plugin.wit"))
            .expect("wit/plugin.wit")
    );
    assert!(js.join("README.md").is_file());
    for dep in [
        "http",
        "io",
        "clocks",
        "cli",
        "random",
        "filesystem",
        "sockets",
    ] {
        assert!(
            js.join(format!("wit/deps/{dep}.wit")).is_file(),
            "the world's WASI dependency {dep} is written too"
        );
    }

    // --publisher names the scope of a bare name.
    plugin_new(root, &["tool", "--publisher", "globex", "--dir", "tool"]);
    assert_eq!(valid_manifest(&root.join("tool")).name, "@globex/tool");
}

#[test]
fn plugin_new_refuses_bad_names_and_non_empty_directories() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let new = |args: &[&str]| {
        fails(
            Command::new(BIN)
                .current_dir(root)
                .args(["plugin", "new"])
                .args(args),
        )
    };
    for bad in ["Greeter", "my plugin", "@acme", "@Acme/x", "-x", "@acme/"] {
        let e = new(&[bad, "--dir", "out"]);
        assert!(e.contains("error:"), "{bad}: {e}");
        assert!(!root.join("out").exists(), "{bad}: wrote something");
    }
    let e = new(&["@acme/x", "--publisher", "globex"]);
    assert!(e.contains("differ"), "{e}");
    // A non-empty directory is left alone.
    std::fs::create_dir(root.join("taken")).expect("mkdir");
    std::fs::write(root.join("taken/notes.txt"), "mine").expect("write");
    let e = new(&["taken"]);
    assert!(e.contains("already exists and is not empty"), "{e}");
    assert_eq!(
        std::fs::read_dir(root.join("taken")).expect("dir").count(),
        1,
        "nothing written into it"
    );
    // An empty one is fine.
    std::fs::create_dir(root.join("empty")).expect("mkdir");
    plugin_new(root, &["x", "--dir", "empty"]);
    valid_manifest(&root.join("empty"));
    // A missing SDK is named.
    let e = new(&["y", "--sdk-path", "/nonexistent/sdk"]);
    assert!(e.contains("is not the Tenantry Rust SDK"), "{e}");
}

/// Runs cargo, returning its output.
fn cargo_build(dir: &Path, target_dir: &Path, offline: bool) -> Output {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    if offline {
        c.arg("--offline");
    }
    c.output().expect("run cargo")
}

/// The project's README.md, its words joined by single spaces.
fn readme_words(dir: &Path) -> String {
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    readme.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the scaffold README says after "Build", for the project in `dir` (scope
/// `acme-tools`, `plugin.wasm` built): `plugin keygen`, `publisher register` (by the
/// operator), `plugin sign`, `plugin publish`; then in an org: `install add` with a
/// greeting in its config, `invoke … hello` as a member (the README's "Try it"), and
/// an agent bound to the install invokes it too. Both answers carry the configured
/// greeting, so the install's config reaches the plugin.
async fn sign_publish_install_and_answer(s: &Server, dir: &Path, plugin: &str) {
    let readme = readme_words(dir);
    for step in [
        "tenantry plugin keygen",
        "tenantry publisher register acme-tools --public-key",
        "tenantry plugin sign",
        "tenantry plugin publish",
        &format!(r#"tenantry install add {plugin} --config '{{"greeting": "Hi"}}'"#),
        &format!(r#"tenantry invoke {plugin} hello --input '{{"name": "Ada"}}'"#),
    ] {
        assert!(readme.contains(step), "README lacks {step:?}:\n{readme}");
    }
    let (keygen, _) = ok(s
        .cli(None)
        .current_dir(dir)
        .args(["--json", "plugin", "keygen"]));
    let keygen: Value = serde_json::from_str(&keygen).expect("keygen JSON");
    let public_key = keygen["public_key"].as_str().expect("public key");
    ok(s.cli(Some(&s.operator_key)).args([
        "publisher",
        "register",
        "acme-tools",
        "--public-key",
        public_key,
    ]));
    ok(s.cli(None).current_dir(dir).args(["plugin", "sign"]));
    let (published, _) = ok(s
        .cli(Some(&s.operator_key))
        .current_dir(dir)
        .args(["plugin", "publish"]));
    assert!(
        published.contains(&format!("Published {plugin}@0.1.0")),
        "{published}"
    );

    let o = org(s, "acme").await;
    ok(s.cli(Some(&o.owner)).args([
        "install",
        "add",
        plugin,
        "--config",
        r#"{"greeting": "Hi"}"#,
    ]));
    let hello = |key: &str, name: &str| {
        let (v, _) = ok(s
            .cli(Some(key))
            .args(["--json", "invoke", plugin, "hello", "--input"])
            .arg(json!({ "name": name }).to_string()));
        serde_json::from_str::<Value>(&v).expect("invoke JSON")
    };
    let v = hello(&o.member, "Ada");
    assert_eq!(v["outcome"], "OK", "{v}");
    assert_eq!(v["output"]["message"], "Hi, Ada!", "{v}");

    // The org's agent (acting for the member) may invoke only once bound.
    let refused = fails(s.cli(Some(&o.agent)).args(["invoke", plugin, "hello"]));
    assert!(refused.contains("not bound"), "{refused}");
    ok(s.cli(Some(&o.owner)).args(["agent", "bind", "bot", plugin]));
    let v = hello(&o.agent, "Grace");
    assert_eq!(v["outcome"], "OK", "{v}");
    assert_eq!(v["output"]["message"], "Hi, Grace!", "{v}");
}

#[tokio::test]
async fn a_new_rust_plugin_builds_signs_publishes_installs_and_answers() {
    // Installed here, as `scripts/build-plugins` does, so that `cargo test` alone
    // works on a fresh machine (a no-op once installed).
    let installed = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "cannot install the wasm32-wasip2 target: run `rustup target add wasm32-wasip2`"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    plugin_new(root, &["@acme-tools/greeter"]);
    let dir = root.join("greeter");

    // The README's build command (offline first: the registry cache has the SDK's
    // dependencies when this workspace's examples were built).
    let started = Instant::now();
    let target_dir = root.join("target");
    let mut out = cargo_build(&dir, &target_dir, true);
    if !out.status.success() {
        out = cargo_build(&dir, &target_dir, false);
    }
    assert!(
        out.status.success(),
        "cargo build failed:\n{}",
        text(&out.stderr)
    );
    eprintln!("built the scaffold in {:?}", started.elapsed());
    std::fs::copy(
        target_dir.join("wasm32-wasip2/release/greeter.wasm"),
        dir.join("plugin.wasm"),
    )
    .expect("copy the component to plugin.wasm");

    let s = Server::start();
    sign_publish_install_and_answer(&s, &dir, "@acme-tools/greeter").await;
}

/// Runs `npm ARGS` in `dir` as the README says, with npm's download cache kept under
/// the cargo target directory (reused by later runs; an empty one is filled).
fn npm(dir: &Path, args: &[&str]) -> Output {
    // BIN is <target>/<profile>/tenantry.
    let cache = Path::new(BIN)
        .ancestors()
        .nth(2)
        .expect("the cargo target directory")
        .join("npm-cache");
    Command::new("npm")
        .current_dir(dir)
        .args(args)
        .env("npm_config_cache", cache)
        .env("npm_config_prefer_offline", "true")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_update_notifier", "false")
        .output()
        .expect("run npm")
}

#[tokio::test]
async fn a_new_js_plugin_builds_signs_publishes_installs_and_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    plugin_new(root, &["@acme-tools/greeter", "--lang", "js"]);
    let dir = root.join("greeter");

    // node as new as the README asks ("Needs node (20+) and npm"), and npm.
    let readme = readme_words(&dir);
    for step in ["npm install", "npm run build"] {
        assert!(readme.contains(step), "README lacks {step:?}:\n{readme}");
    }
    let min_node = readme
        .split_once("Needs node (")
        .and_then(|(_, rest)| rest.split_once("+)"))
        .map(|(v, _)| v)
        .filter(|v| v.parse::<u32>().is_ok())
        .unwrap_or_else(|| {
            panic!("the README names no node version (\"Needs node (N+)\"):\n{readme}")
        });
    let ensure = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-node");
    let out = Command::new("bash")
        .arg(&ensure)
        .arg(min_node)
        .output()
        .expect("run scripts/ensure-node");
    let said = text(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/ensure-node {min_node} failed: {}",
        said.lines().last().unwrap_or_default()
    );
    eprint!("{said}");

    // The README's build commands.
    for (args, what) in [
        (&["install"][..], "npm install"),
        (&["run", "build"][..], "npm run build"),
    ] {
        let started = Instant::now();
        let out = npm(&dir, args);
        assert!(
            out.status.success(),
            "{what} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        eprintln!("{what} took {:?}", started.elapsed());
    }
    let size = std::fs::metadata(dir.join("plugin.wasm"))
        .expect("npm run build wrote plugin.wasm")
        .len();

    // The component (the JS engine is inside it) is above the default
    // max_artifact_bytes: the operator raises it, as the README says.
    let config = root.join("server.toml");
    std::fs::write(&config, format!("max_artifact_bytes = {}\n", 2 * size)).expect("config");
    let s = Server::start_configured(&config, false).await;
    let started = Instant::now();
    sign_publish_install_and_answer(&s, &dir, "@acme-tools/greeter").await;
    eprintln!(
        "signed, published, installed and invoked ({size} bytes) in {:?}",
        started.elapsed()
    );
}
