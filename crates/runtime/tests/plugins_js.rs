//! The JavaScript example plugin (`examples/plugins-js/echo-js`, built with
//! componentize-js by `scripts/build-js-plugin`) under the real runtime: its
//! exports work, its host imports work, and an import it was not granted is
//! refused with `PERMISSION_DENIED`.

mod support;

use serde_json::json;
use std::sync::{Arc, OnceLock};
use support::*;
use tenantry_core::Outcome;
use tenantry_core::manifest::Grants;
use tenantry_runtime::*;

fn js_plugin_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let p = format!(
            "{}/../../examples/plugins-js/echo-js/plugin.wasm",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e} (run scripts/build-js-plugin)"))
    })
}

/// One runtime and one compile for all tests: compiling the ~12 MB component
/// (SpiderMonkey inside) is the slow part, especially in debug builds.
fn shared() -> &'static (World, Arc<LoadedPlugin>) {
    static SHARED: OnceLock<(World, Arc<LoadedPlugin>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let w = world(RuntimeConfig::default());
        let p = w.rt.load("echo-js", js_plugin_bytes()).unwrap();
        (w, p)
    })
}

#[tokio::test]
async fn echo_js_returns_input_and_config() {
    let (w, p) = shared();
    let r = w.run_fresh(p, "echo", r#"{"a": [1, "two"]}"#).await;
    assert_eq!(
        out(&r),
        json!({"echo": {"a": [1, "two"]}, "greeting": "hi", "runtime": "componentize-js"})
    );
    // config.get and log.log: both metered host calls.
    assert_eq!(r.stats.host_calls, 2, "{r:?}");
    assert!(r.stats.fuel > 0 && r.stats.peak_memory_bytes > 0);
    assert!(r.denied.is_empty());
}

#[tokio::test]
async fn echo_js_kv_counter_with_grant() {
    let (w, p) = shared();
    let g = kv_grant();
    let (a, b) = (install(), install());
    for n in 1..=3 {
        let r = w.run(p, a, "count", "{}", &g, Limits::default()).await;
        assert_eq!(out(&r), json!({"value": n}));
    }
    let r = w.run(p, b, "count", "{}", &g, Limits::default()).await;
    assert_eq!(out(&r), json!({"value": 1}), "installs do not share kv");
}

#[tokio::test]
async fn echo_js_kv_without_grant_is_permission_denied() {
    let (w, p) = shared();
    let i = install();
    let r = w
        .run(p, i, "count", "{}", &Grants::default(), Limits::default())
        .await;
    assert_eq!(r.outcome, Outcome::PermissionDenied, "{r:?}");
    assert!(r.output.is_none());
    assert!(!r.denied.is_empty(), "the refusal is recorded: {r:?}");
    let kv = w.kv.0.lock().unwrap();
    assert!(
        !kv.keys().any(|(_, install, _)| *install == i.install_id),
        "nothing was written"
    );
}

#[tokio::test]
async fn echo_js_unknown_action_is_not_found() {
    let (w, p) = shared();
    let r = w.run_fresh(p, "nope", "{}").await;
    assert_eq!(r.outcome, Outcome::NotFound, "{r:?}");
    assert!(r.error.as_deref().unwrap_or("").contains("nope"), "{r:?}");
}
