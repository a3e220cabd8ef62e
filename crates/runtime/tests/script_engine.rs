//! The script engine of `POST /v1/executions` (`engines/javascript/engine.wasm`,
//! SpiderMonkey) under the real runtime: the protocol the service reads (`{ok, value |
//! error, logs}`), error positions, `callTool` through the `tools` host call (and
//! its refusal), and a fresh engine for every execution.

mod support;

use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use support::*;
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

fn shared() -> &'static (World, Arc<LoadedPlugin>) {
    static SHARED: OnceLock<(World, Arc<LoadedPlugin>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let p = format!(
            "{}/../../engines/javascript/engine.wasm",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        let w = world(RuntimeConfig::default());
        let engine = w.rt.load("engine", &bytes).unwrap();
        (w, engine)
    })
}

/// Runs `code` for an install of `org` with `tools` granted; returns the engine's
/// answer.
async fn run_in(install: InstallRef, tools: &[&str], code: &str, input: Value) -> Value {
    let (w, engine) = shared();
    let grants = Grants {
        tools: tools.iter().map(|t| t.to_string()).collect(),
        ..Grants::default()
    };
    let req = json!({"code": code, "input": input, "max_log_lines": 3, "max_log_bytes": 100});
    let r = w
        .run(
            engine,
            install,
            "run",
            &req.to_string(),
            &grants,
            Limits::default(),
        )
        .await;
    out(&r)
}

async fn run(code: &str) -> Value {
    run_in(install(), &[], code, Value::Null).await
}

#[tokio::test]
async fn a_script_returns_its_value_and_its_logs() {
    let r = run_in(
        install(),
        &[],
        "console.log('n is', input.n); console.warn({a: [1]}); return {double: input.n * 2}",
        json!({"n": 21}),
    )
    .await;
    assert_eq!(
        r,
        json!({"ok": true, "value": {"double": 42}, "logs": [
            {"level": "info", "message": "n is 21"},
            {"level": "warn", "message": "{\"a\":[1]}"},
        ]})
    );
    assert_eq!(run("return undefined").await["value"], Value::Null);
    assert_eq!(run("return await Promise.resolve(5)").await["value"], 5);
}

#[tokio::test]
async fn logs_beyond_the_limits_are_counted_not_kept() {
    let r = run("for (let i = 0; i < 10; i++) console.log('line', i); return 0").await;
    assert_eq!(r["logs"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(r["logs_dropped"], 7);
    let r = run("console.log('x'.repeat(500)); return 0").await;
    assert_eq!(
        (r["logs"].clone(), r["logs_dropped"].clone()),
        (json!([]), json!(1))
    );
}

#[tokio::test]
async fn syntax_errors_and_exceptions_say_where() {
    let r = run("const a = 1;\nconst b = ;").await;
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["code"], "SYNTAX_ERROR", "{r}");
    assert_eq!(r["error"]["line"], 2, "{r}");
    let r = run("\n\n  throw new RangeError('far')").await;
    assert_eq!(r["error"]["code"], "SCRIPT_ERROR", "{r}");
    assert_eq!(r["error"]["message"], "RangeError: far", "{r}");
    assert_eq!(r["error"]["line"], 3, "{r}");
    // Whatever is thrown, the answer is the engine's, never a trap.
    for thrown in [
        "throw null",
        "throw Symbol('s')",
        "throw new Proxy({}, {get() { throw 1 }, has() { throw 2 }})",
        "throw {get message() { throw new Error('no') }}",
    ] {
        let r = run(thrown).await;
        assert_eq!(r["error"]["code"], "SCRIPT_ERROR", "{thrown}: {r}");
    }
    let r = run("return 10n").await;
    assert_eq!(r["error"]["code"], "SCRIPT_ERROR", "{r}");
    let r = run("function f() { return f() + 1 } return f()").await;
    assert_eq!(r["error"]["code"], "SCRIPT_ERROR", "{r}");
}

#[tokio::test]
async fn call_tool_reaches_a_granted_plugin_and_nothing_else() {
    let (w, _) = shared();
    let caller = install();
    let echo = InstallRef {
        org_id: caller.org_id,
        install_id: tenantry_core::InstallId::new(),
    };
    let loaded = w.load("echo");
    w.tools
        .installs
        .lock()
        .unwrap()
        .insert("@t/echo".into(), (echo, loaded, Grants::default()));
    let r = run_in(
        caller,
        &["@t/echo"],
        "const r = await callTool('@t/echo.echo', {message: input}); return r.echo.message",
        json!("hello"),
    )
    .await;
    assert_eq!(r["value"], "hello", "{r}");
    // Not granted: refused by the host, with the permission's name.
    let r = run_in(
        caller,
        &[],
        "await callTool('@t/echo.echo', {})",
        Value::Null,
    )
    .await;
    assert_eq!(r["error"]["code"], "PERMISSION_DENIED", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tool:@t/echo.echo"),
        "{r}"
    );
    // A caught refusal is the script's to handle.
    let r = run_in(
        caller,
        &[],
        "try { await callTool('@t/echo.echo', {}) } catch (e) { return e.code }",
        Value::Null,
    )
    .await;
    assert_eq!(r["value"], "PERMISSION_DENIED", "{r}");
    // Malformed names never reach the host.
    let r = run("await callTool('no-dot', {})").await;
    assert_eq!(r["error"]["code"], "INVALID_INPUT", "{r}");
}

#[tokio::test]
async fn every_execution_starts_from_a_pristine_engine() {
    run("Object.prototype.polluted = 1; globalThis.leak = 'secret'; Array.prototype.map = null; return 0")
        .await;
    let r = run("return [typeof ({}).polluted, typeof globalThis.leak, typeof [].map]").await;
    assert_eq!(
        r["value"],
        json!(["undefined", "undefined", "function"]),
        "{r}"
    );
}

#[tokio::test]
async fn date_now_and_math_random_work() {
    let r = run("return [Date.now() > 1.7e12, Math.random() < 1, typeof setTimeout]").await;
    assert_eq!(r["value"][0], true, "{r}");
    assert_eq!(r["value"][1], true, "{r}");
}

#[tokio::test]
async fn the_engine_has_no_host_objects() {
    let r = run("const g = Function('return this')();
         return Object.getOwnPropertyNames(g).filter((n) =>
           ['process', 'require', 'std', 'os', 'fetch', 'Request', 'scriptArgs'].includes(n))")
    .await;
    assert_eq!(r["value"], json!([]), "{r}");
}

#[tokio::test]
async fn runaway_scripts_are_stopped_by_the_sandbox() {
    let (w, engine) = shared();
    let limits = Limits {
        wall_time: std::time::Duration::from_millis(300),
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    for (code, want) in [
        (
            "while (true) {}",
            &[Outcome::Timeout, Outcome::OutOfFuel][..],
        ),
        (
            "const a = []; while (true) a.push(new Array(1e5).fill(1))",
            &[Outcome::Ok, Outcome::MemoryLimit, Outcome::PluginTrap][..],
        ),
    ] {
        let req = json!({"code": code, "input": null, "max_log_lines": 3, "max_log_bytes": 100});
        let r = w
            .run(
                engine,
                install(),
                "run",
                &req.to_string(),
                &Grants::default(),
                limits,
            )
            .await;
        assert!(want.contains(&r.outcome), "{code}: {r:?}");
        if r.outcome == Outcome::Ok {
            // The engine turned the refused allocation into an exception.
            let v: Value = serde_json::from_str(r.output.as_deref().unwrap()).unwrap();
            assert_eq!(v["ok"], false, "{v}");
        }
        assert!(r.stats.peak_memory_bytes <= 16 << 20, "{r:?}");
    }
}
