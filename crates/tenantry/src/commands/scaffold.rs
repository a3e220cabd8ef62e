//! `tenantry plugin new`: a plugin project that builds, and that `plugin keygen`,
//! `plugin sign` and `plugin publish` work on once built.
//!
//! Templates use `{{PLACEHOLDER}}`s, filled with validated names (lowercase letters,
//! digits, `-`, `_`, `.`) and, for the SDK path, a TOML-quoted string.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use tenantry_core::manifest::{validate_ident, validate_plugin_name};

use super::plugin::MANIFEST_FILE;
use crate::output::print;

/// `sdk/rust` of the checkout this binary was built from (may not exist where the
/// binary runs).
const BUILT_SDK_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/rust");

/// The plugin world, for componentize-js (`--wit wit`).
/// The plugin world a JavaScript project is built against, with the WASI packages
/// it imports (`wit/deps/`), so `fetch()` is `wasi:http`.
const PLUGIN_WIT: &str = include_str!("../../../../wit/plugin.wit");
const WIT_DEPS: &[(&str, &str)] = &[
    (
        "wit/deps/cli.wit",
        include_str!("../../../../wit/deps/cli.wit"),
    ),
    (
        "wit/deps/clocks.wit",
        include_str!("../../../../wit/deps/clocks.wit"),
    ),
    (
        "wit/deps/filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    (
        "wit/deps/http.wit",
        include_str!("../../../../wit/deps/http.wit"),
    ),
    (
        "wit/deps/io.wit",
        include_str!("../../../../wit/deps/io.wit"),
    ),
    (
        "wit/deps/random.wit",
        include_str!("../../../../wit/deps/random.wit"),
    ),
    (
        "wit/deps/sockets.wit",
        include_str!("../../../../wit/deps/sockets.wit"),
    ),
];
/// componentize-js loads it at build time without declaring it; later versions
/// change how it maps the build's files.
const PREVIEW2_SHIM: &str = "0.25.0";

/// The componentize-js version the JavaScript example is built and tested with.
const COMPONENTIZE_JS: &str = "0.23.0";

/// What the project is called, in each place that needs a name.
struct Names {
    /// `@publisher/name`.
    full: String,
    publisher: String,
    /// The name without its scope.
    short: String,
    /// The Cargo package (and npm package) name.
    package: String,
}

/// Splits and checks `NAME` (`name` or `@scope/name`) against `--publisher`.
fn names(name: &str, publisher: Option<String>) -> Result<Names> {
    let (scope, short) = match name.strip_prefix('@') {
        Some(rest) => {
            let (scope, short) = rest.split_once('/').ok_or_else(|| {
                anyhow!("'{name}' is not a plugin name; use `name` or `@publisher/name`")
            })?;
            (Some(scope.to_string()), short.to_string())
        }
        None => (None, name.to_string()),
    };
    let publisher = match (scope, publisher) {
        (Some(s), Some(p)) if s != p => bail!(
            "the name's scope '@{s}' and --publisher {p} differ; a publisher publishes only its own scope (@{p}/…)"
        ),
        (Some(s), _) => s,
        (None, Some(p)) => p,
        (None, None) => "my-publisher".to_string(),
    };
    validate_ident("publisher", &publisher).map_err(|e| anyhow!("{}", e.message))?;
    let full = format!("@{publisher}/{short}");
    validate_plugin_name(&full).map_err(|e| anyhow!("{}", e.message))?;
    // Cargo package names: letters, digits, `-`, `_`; not starting with a digit.
    let mut package = short.replace('.', "-");
    if package.starts_with(|c: char| c.is_ascii_digit()) {
        package.insert_str(0, "plugin-");
    }
    Ok(Names {
        full,
        publisher,
        short,
        package,
    })
}

/// The Rust SDK directory, absolute, checked to be the SDK.
fn sdk_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    let from_flag = given.is_some();
    let dir = given.unwrap_or_else(|| PathBuf::from(BUILT_SDK_PATH));
    let found = std::fs::canonicalize(&dir).ok().filter(|d| {
        std::fs::read_to_string(d.join("Cargo.toml"))
            .is_ok_and(|t| t.contains("name = \"tenantry-plugin-sdk\""))
    });
    match found {
        Some(d) => Ok(d),
        None if from_flag => bail!(
            "{} is not the Tenantry Rust SDK (no Cargo.toml of tenantry-plugin-sdk there); give --sdk-path the sdk/rust directory of a Tenantry checkout",
            dir.display()
        ),
        None => bail!(
            "the Tenantry Rust SDK is not where this binary was built ({}); give --sdk-path the sdk/rust directory of a Tenantry checkout",
            dir.display()
        ),
    }
}

/// Refuses a path that is a file or a non-empty directory.
fn check_target(dir: &Path) -> Result<()> {
    if dir.is_file() {
        bail!("{} is a file; choose another --dir", dir.display());
    }
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        bail!(
            "{} already exists and is not empty; choose another --dir (nothing was written)",
            dir.display()
        );
    }
    Ok(())
}

fn fill(template: &str, n: &Names, extra: &[(&str, &str)]) -> String {
    let mut out = template
        .replace("{{FULL}}", &n.full)
        .replace("{{PUBLISHER}}", &n.publisher)
        .replace("{{SHORT}}", &n.short)
        .replace("{{PACKAGE}}", &n.package)
        .replace("{{ARTIFACT}}", &n.package.replace('-', "_"));
    for (k, v) in extra {
        out = out.replace(k, v);
    }
    out
}

pub fn new(
    name: &str,
    lang: &str,
    dir: Option<PathBuf>,
    publisher: Option<String>,
    sdk_path: Option<PathBuf>,
    json_out: bool,
) -> Result<()> {
    let n = names(name, publisher)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(&n.short));
    check_target(&dir)?;
    let mut files: Vec<(&str, String)> = vec![(MANIFEST_FILE, fill(MANIFEST, &n, &[]))];
    let build: Vec<String> = match lang {
        "rust" => {
            let sdk = sdk_dir(sdk_path)?;
            let sdk_toml = toml::Value::String(sdk.display().to_string()).to_string();
            let sdk_text = sdk.display().to_string();
            let extra = [
                ("{{SDK_TOML}}", sdk_toml.as_str()),
                ("{{SDK}}", sdk_text.as_str()),
            ];
            files.push(("Cargo.toml", fill(RUST_CARGO, &n, &extra)));
            files.push(("src/lib.rs", fill(RUST_LIB, &n, &extra)));
            files.push((".gitignore", "/target\n/publisher.key\n".into()));
            files.push((
                "README.md",
                fill(&format!("{RUST_README}{README_PUBLISH}"), &n, &extra),
            ));
            vec![
                "cargo build --release --target wasm32-wasip2".into(),
                fill(
                    "cp target/wasm32-wasip2/release/{{ARTIFACT}}.wasm plugin.wasm",
                    &n,
                    &[],
                ),
            ]
        }
        "js" => {
            let extra = [
                ("{{COMPONENTIZE_JS}}", COMPONENTIZE_JS),
                ("{{PREVIEW2_SHIM}}", PREVIEW2_SHIM),
            ];
            files.push(("package.json", fill(JS_PACKAGE, &n, &extra)));
            files.push(("src/plugin.js", fill(JS_PLUGIN, &n, &extra)));
            files.push(("wit/plugin.wit", PLUGIN_WIT.to_string()));
            files.extend(WIT_DEPS.iter().map(|(p, t)| (*p, t.to_string())));
            files.push((".gitignore", "/node_modules\n/publisher.key\n".into()));
            files.push((
                "README.md",
                fill(&format!("{JS_README}{README_PUBLISH}"), &n, &extra),
            ));
            vec!["npm install".into(), "npm run build".into()]
        }
        other => bail!("--lang {other}: use rust or js"),
    };
    for (path, text) in &files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .with_context(|| format!("creating {}", p.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let mut next = vec![format!("cd {}", dir.display())];
    next.extend(build);
    next.extend([
        "tenantry plugin keygen".to_string(),
        format!(
            "tenantry publisher register {} --public-key <the key keygen printed>   # by the operator, once",
            n.publisher
        ),
        "tenantry plugin sign".to_string(),
        "tenantry plugin publish".to_string(),
    ]);
    let v = json!({
        "name": n.full,
        "lang": lang,
        "dir": dir,
        "files": files.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        "next_steps": next,
    });
    print(json_out, &v, |_| {
        println!(
            "Created {} ({lang}) in {}: {}",
            n.full,
            dir.display(),
            files.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
        );
        println!("Next steps (README.md has them too):");
        for step in &next {
            println!("  {step}");
        }
    });
    Ok(())
}

const MANIFEST: &str = r##"{
  "name": "{{FULL}}",
  "version": "0.1.0",
  "description": "Says hello: {{SHORT}}, a Tenantry plugin.",
  "publisher": "{{PUBLISHER}}",
  "capabilities": ["hello"],
  "actions": [
    {
      "name": "hello",
      "description": "Greets someone by name with the configured greeting",
      "input_schema": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 100}}}
    }
  ],
  "config_schema": {"type": "object", "properties": {"greeting": {"type": "string", "maxLength": 100}}},
  "docs": "# {{FULL}}\n`hello` answers `{\"message\": \"<greeting>, <name>!\"}`: `name` from the input (default world), `greeting` from the install's config (default Hello)."
}
"##;

const RUST_CARGO: &str = r##"[package]
name = "{{PACKAGE}}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The Tenantry Rust SDK from a local Tenantry checkout: temporary, until the SDK is
# published (then: tenantry-plugin-sdk = "0.1").
tenantry-plugin-sdk = { path = {{SDK_TOML}} }

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
debug = false
panic = "abort"

# A workspace of its own, even inside another project's directory.
[workspace]
"##;

const RUST_LIB: &str = r##"//! {{FULL}}: a Tenantry plugin with one action, `hello`.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, config_json, export_plugin};

struct Hello;

impl Plugin for Hello {
    /// `(name, description)` of every action; keep it in step with tenantry.json.
    const ACTIONS: &'static [(&'static str, &'static str)] =
        &[("hello", "Greets someone by name with the configured greeting")];

    fn call(action: &str, input: Value) -> Result<Value, Error> {
        match action {
            "hello" => {
                let name = input["name"].as_str().unwrap_or("world");
                let config = config_json();
                let greeting = config["greeting"].as_str().unwrap_or("Hello");
                Ok(json!({"message": format!("{greeting}, {name}!")}))
            }
            other => Err(Error::NotFound(format!("no action '{other}'"))),
        }
    }
}

export_plugin!(Hello);
"##;

const RUST_README: &str = r##"# {{FULL}}

A Tenantry plugin in Rust, made by `tenantry plugin new`. `src/lib.rs` has its one
action, `hello`; `tenantry.json` is its manifest (see the Tenantry docs,
docs/manifest.md).

## Build

Once: `rustup target add wasm32-wasip2`. Then:

```sh
cargo build --release --target wasm32-wasip2
cp target/wasm32-wasip2/release/{{ARTIFACT}}.wasm plugin.wasm
```

The SDK, `tenantry-plugin-sdk`, is a path dependency on a Tenantry checkout
({{SDK}}). This is temporary, until the SDK is published; if the checkout moves,
change the path in Cargo.toml (or make the project again with `tenantry plugin new
--sdk-path DIR`).

"##;

/// The part of both READMEs after "Build": signing, publishing, trying.
const README_PUBLISH: &str = r##"
## Sign and publish

```sh
tenantry plugin keygen      # once: writes publisher.key (keep it private) and prints the public key
# once, by the operator of the server:
tenantry publisher register {{PUBLISHER}} --public-key <the public key keygen printed>
tenantry plugin sign        # signs tenantry.json + plugin.wasm into tenantry.sig.json
tenantry plugin publish     # to your login profile's server (or --url)
```

For a new version: raise `version` in tenantry.json, build, sign and publish again.

## Try it

```sh
tenantry install add {{FULL}} --config '{"greeting": "Hi"}'
tenantry invoke {{FULL}} hello --input '{"name": "Ada"}'
```
"##;

const JS_PACKAGE: &str = r##"{
  "name": "{{SHORT}}",
  "version": "0.1.0",
  "private": true,
  "description": "{{FULL}}: a Tenantry plugin in JavaScript, built with componentize-js.",
  "type": "module",
  "scripts": {
    "build": "componentize-js src/plugin.js --wit wit --world-name plugin --disable fetch-event --out plugin.wasm"
  },
  "devDependencies": {
    "@bytecodealliance/componentize-js": "{{COMPONENTIZE_JS}}",
    "@bytecodealliance/preview2-shim": "{{PREVIEW2_SHIM}}"
  }
}
"##;

const JS_PLUGIN: &str = r##"// {{FULL}}: a Tenantry plugin in JavaScript, built with componentize-js.
//
// The world's exports are plain module exports: `describe()` and
// `invoke(action, input)`. A returned string is `ok`; a thrown object's `payload`
// (`{ tag, val }`) is the `err` value; `invoke` may be async. Host imports are ES
// modules named after the WIT interfaces (see wit/plugin.wit). `fetch()` works:
// it is wasi:http, checked by the host against the install's egress grants.
import { get as configGet } from 'tenantry:plugin/config@0.2.0';

// Keep in step with the actions of tenantry.json.
const ACTIONS = [
  { name: 'hello', description: 'Greets someone by name with the configured greeting' },
];

class PluginError extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}

const actions = {
  hello(input) {
    const config = JSON.parse(configGet());
    const greeting = config.greeting ?? 'Hello';
    return { message: `${greeting}, ${input.name ?? 'world'}!` };
  },
};

export function describe() {
  return JSON.stringify(ACTIONS);
}

export function invoke(action, input) {
  const run = actions[action];
  if (!run) {
    throw new PluginError('not-found', `no action named ${action}`);
  }
  let parsed;
  try {
    parsed = JSON.parse(input);
  } catch (e) {
    throw new PluginError('invalid-input', `input is not JSON: ${e.message}`);
  }
  return JSON.stringify(run(parsed));
}
"##;

const JS_README: &str = r##"# {{FULL}}

A Tenantry plugin in JavaScript, made by `tenantry plugin new --lang js`.
`src/plugin.js` has its one action, `hello`; `tenantry.json` is its manifest (see the
Tenantry docs, docs/manifest.md); `wit/plugin.wit` is the plugin world it is built
against (`tenantry:plugin@0.2.0`, with the WASI packages it imports in `wit/deps/`).

## Build

Needs node (20+) and npm:

```sh
npm install
npm run build     # componentize-js → plugin.wasm (a minute or two)
```

`fetch()` works: it is `wasi:http`, and the server checks every request against
the install's egress grants (`--grant-egress api.example.com`) and its address
policy. `--disable fetch-event` in the build script matters: a plugin does not
serve HTTP, and the server refuses a component that exports a handler for it.

The component is about 12 MB (the JavaScript engine is inside it): above a server's
default `max_artifact_bytes` (10 MiB), so the operator must raise it before it can be
published.

"##;
