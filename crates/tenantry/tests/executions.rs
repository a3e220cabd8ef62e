//! `POST /v1/executions`: scripts that call the org's tools, through the real binary.
//!
//! The seeds' three tenant-isolation tests (enclave-vm), translated; then hostile
//! scripts, each ending with its own stable code while a neighbour org's scripts
//! keep working.

mod common;

use common::*;
use serde_json::{Value, json};

/// Runs `code` as `key`; expects `200` and returns the result.
async fn exec(s: &Server, key: &str, code: &str, input: Value) -> Value {
    let body = json!({"language": "javascript", "code": code, "input": input});
    s.ok("POST", "/v1/executions", Some(key), Some(body), 200)
        .await
}

/// Runs `code` and expects it to fail with `code`; returns the error object.
async fn exec_fails(s: &Server, key: &str, script: &str, want: &str) -> Value {
    let r = exec(s, key, script, Value::Null).await;
    assert_eq!(r["success"], false, "{script}: {r}");
    assert_eq!(r["error"]["code"], want, "{script}: {r}");
    r["error"].clone()
}

/// An org whose agent is bound to an install of kv-counter and of echo.
async fn org_with_tools(s: &Server, name: &str) -> (Org, String, String) {
    let o = org(s, name).await;
    let counter = s
        .install(
            &o.admin,
            json!({"plugin": "@examples/kv-counter", "grants": {"kv": true}}),
        )
        .await;
    let echo = s.install(&o.admin, echo_install()).await;
    s.bind(&o, &counter).await;
    s.bind(&o, &echo).await;
    (o, counter, echo)
}

const INSERT_THREE: &str = "
    for (let i = 0; i < 3; i++) {
      await callTool('@examples/kv-counter.increment', { name: input.name });
    }
    return (await callTool('@examples/kv-counter.get', { name: input.name })).value;
";

async fn scripts_call_tools_and_orgs_stay_apart(s: Server) {
    publish_examples(&s).await;
    let (a, counter_a, _) = org_with_tools(&s, "exec-a").await;
    let (b, _, _) = org_with_tools(&s, "exec-b").await;

    // Seed test 1: the first org writes through a kv-backed tool; the second org's
    // query through the same plugin name sees nothing of it.
    let r = exec(&s, &a.agent, INSERT_THREE, json!({"name": "secret"})).await;
    assert_eq!(
        (r["success"].clone(), r["value"].clone()),
        (json!(true), json!(3)),
        "{r}"
    );
    assert_eq!(r["stats"]["tool_call_count"], 4, "{r}");
    let r = exec(
        &s,
        &b.agent,
        "return (await callTool('@examples/kv-counter.get', {name: 'secret'})).value",
        Value::Null,
    )
    .await;
    assert_eq!(r["value"], json!(0), "org B reads org A's counter: {r}");

    // Each tool call is a usage event of the org whose script made it, naming the
    // execution as its caller; the execution's record has the code's hash only.
    let id = r["execution_id"].as_str().unwrap().to_string();
    let usage = eventually(&s, &b.owner, "/v1/usage", |v| {
        v.as_array()
            .is_some_and(|e| e.iter().any(|e| e["caller_id"] == id.as_str()))
    })
    .await;
    let calls: Vec<_> = usage
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["caller_id"] == id.as_str())
        .collect();
    assert_eq!(calls.len(), 1, "{usage}");
    assert_eq!(calls[0]["plugin"], "@examples/kv-counter");
    let record = eventually(&s, &b.agent, &format!("/v1/executions/{id}"), |v| {
        v["success"] == true
    })
    .await;
    assert_eq!(record["tool_call_count"], 1, "{record}");
    assert_eq!(record["actor_id"], b.agent_id.as_str());
    assert_eq!(record["code_sha256"].as_str().unwrap().len(), 64);
    // Another org's key cannot see it.
    s.refused(
        "GET",
        &format!("/v1/executions/{id}"),
        Some(&a.owner),
        None,
        (404, "NOT_FOUND"),
    )
    .await;
    let audit = s
        .get("/v1/audit?action=execute", &b.owner)
        .await
        .to_string();
    assert!(
        !audit.contains("kv-counter.get"),
        "the code is not stored: {audit}"
    );

    // Seed test 2: an agent that may not call the tool gets PERMISSION_DENIED naming
    // `tool:…`, and nothing runs.
    let unbound = format!("/v1/agents/{}/installs/{counter_a}", a.agent_id);
    s.delete(&unbound, &a.admin, 204).await;
    let e = exec_fails(
        &s,
        &a.agent,
        "await callTool('@examples/kv-counter.increment', {name: 'x'})",
        "PERMISSION_DENIED",
    )
    .await;
    assert_message_contains(&json!({"error": e}), "tool:@examples/kv-counter.increment");
    // A plugin this org has not installed is refused the same way: no oracle.
    exec_fails(
        &s,
        &a.agent,
        "await callTool('@examples/github.list-issues', {})",
        "PERMISSION_DENIED",
    )
    .await;

    // Seed test 3: with a tool-call limit of 2, the third call fails with
    // MAX_TOOL_CALLS, even when the script catches it.
    s.set_limits(&b.id, json!({"host_calls_per_execution": 2}))
        .await;
    let e = exec_fails(
        &s,
        &b.agent,
        "await callTool('@examples/echo.echo', {});
         await callTool('@examples/echo.echo', {});
         try { await callTool('@examples/echo.echo', {}); } catch (e) { return 'caught ' + e.code }",
        "MAX_TOOL_CALLS",
    )
    .await;
    assert_message_contains(&json!({"error": e}), "2 tool calls");

    // The CLI: a script file, and -e.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.js");
    std::fs::write(&file, "console.log('hi', input.n); return input.n * 2").unwrap();
    let out = cli_ok(
        s.cli(Some(&a.member))
            .arg("exec")
            .arg(&file)
            .args(["--input", r#"{"n": 21}"#]),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[info] hi 21"));
    let v = cli_json(
        s.cli(Some(&a.member))
            .args(["--json", "exec", "-e", "return [1, 2]"]),
    );
    assert_eq!(
        (v["success"].clone(), v["value"].clone()),
        (json!(true), json!([1, 2])),
        "{v}"
    );
    let bad = s
        .cli(Some(&a.member))
        .args(["exec", "-e", "return (1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("SYNTAX_ERROR"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

on_both_stores!(
    scripts_call_tools_and_orgs_stay_apart_embedded,
    scripts_call_tools_and_orgs_stay_apart_pooled,
    scripts_call_tools_and_orgs_stay_apart
);

/// Every hostile script ends with its own stable code, and a neighbour org's
/// scripts answer throughout.
#[tokio::test]
async fn hostile_scripts_end_with_their_own_code_and_reach_nothing() {
    let s = Server::start();
    publish_examples(&s).await;
    let (a, _, _) = org_with_tools(&s, "hostile").await;
    let (n, _, _) = org_with_tools(&s, "neighbour").await;
    s.set_limits(
        &a.id,
        json!({"max_wall_time_ms": 1500, "memory_bytes": 32 << 20, "output_bytes": 64 << 10}),
    )
    .await;
    let neighbour_ok = || async {
        let r = exec(&s, &n.agent, "return 1 + 1", Value::Null).await;
        assert_eq!(r["value"], 2, "the neighbour's script: {r}");
    };

    // The plain case first: a value, logs, stats.
    let r = exec(
        &s,
        &a.agent,
        "console.log('x', {a: 1}); return {ok: input}",
        json!(7),
    )
    .await;
    assert_eq!(r["value"], json!({"ok": 7}), "{r}");
    assert_eq!(
        r["logs"],
        json!([{"level": "info", "message": "x {\"a\":1}"}])
    );

    // Infinite loop: stopped by the wall-time or CPU budget.
    let e = exec(&s, &a.agent, "while (true) {}", Value::Null).await;
    let code = e["error"]["code"].as_str().unwrap_or_default();
    assert!(["TIMEOUT", "OUT_OF_FUEL"].contains(&code), "{e}");
    neighbour_ok().await;

    // Memory bombs: growing arrays and strings.
    for bomb in [
        "const a = []; while (true) a.push(new Array(1e5).fill(1));",
        "let s = 'x'; while (true) s = s + s;",
    ] {
        let r = exec(&s, &a.agent, bomb, Value::Null).await;
        let code = r["error"]["code"].as_str().unwrap_or_default();
        assert!(
            ["MEMORY_LIMIT", "SCRIPT_ERROR", "OUT_OF_FUEL", "TIMEOUT"].contains(&code),
            "{bomb}: {r}"
        );
        assert!(
            r["stats"]["peak_memory_bytes"].as_u64().unwrap_or(0) <= 32 << 20,
            "{r}"
        );
    }
    neighbour_ok().await;

    // Deep recursion: the engine's stack check, not a crash of anything.
    let e = exec_fails(
        &s,
        &a.agent,
        "function f(n) { return f(n + 1) + 1 } return f(0)",
        "SCRIPT_ERROR",
    )
    .await;
    assert_message_contains(&json!({"error": e}), "too much recursion");

    // Huge output.
    exec_fails(
        &s,
        &a.agent,
        "return 'x'.repeat(1 << 20)",
        "OUTPUT_TOO_LARGE",
    )
    .await;

    // Logs are bounded; the rest is counted.
    let r = exec(
        &s,
        &a.agent,
        "for (let i = 0; i < 1000; i++) console.log(i); return 1",
        Value::Null,
    )
    .await;
    assert_eq!(r["logs"].as_array().unwrap().len(), 100, "{r}");
    assert_eq!(r["logs_dropped"], 900);

    // A script over the tier's code size is refused before any sandbox runs.
    let big = format!("return 1; // {}", "x".repeat(200 << 10));
    let body = json!({"language": "javascript", "code": big});
    s.refused(
        "POST",
        "/v1/executions",
        Some(&a.agent),
        Some(body),
        (413, "TOO_LARGE"),
    )
    .await;
    // Other languages, empty code, non-JSON bodies: 4xx, nothing run.
    for body in [
        json!({"language": "python", "code": "1"}),
        json!({"language": "javascript"}),
        json!({"language": "javascript", "code": "1", "extra": true}),
    ] {
        let (status, v) = s
            .call("POST", "/v1/executions", Some(&a.agent), Some(body))
            .await;
        assert!((400..500).contains(&status), "{status} {v}");
    }
    // Non-UTF-8 code cannot even be sent as JSON.
    let (status, _) = s
        .raw(
            "POST",
            "/v1/executions",
            Some(&a.agent),
            "application/json",
            b"{\"language\":\"javascript\",\"code\":\"return \xff\"}".to_vec(),
        )
        .await;
    assert_eq!(status, 400);

    // Syntax errors say where.
    let e = exec_fails(
        &s,
        &a.agent,
        "const a = 1;\nconst b = ;\nreturn b",
        "SYNTAX_ERROR",
    )
    .await;
    assert_eq!(e["line"], 2, "{e}");
    // And so do exceptions the script throws.
    let e = exec_fails(
        &s,
        &a.agent,
        "\n\nthrow new TypeError('boom')",
        "SCRIPT_ERROR",
    )
    .await;
    assert_eq!(e["line"], 3, "{e}");
    assert_message_contains(&json!({"error": e}), "TypeError: boom");
    // A script cannot claim a code of its own choosing.
    let e = exec_fails(
        &s,
        &a.agent,
        "throw {code: 'ROOT_GRANTED', message: 'no'}",
        "SCRIPT_ERROR",
    )
    .await;
    assert_eq!(e["message"], "no");

    // Probing for host objects finds none: the global object is the engine's own.
    let r = exec(
        &s,
        &a.agent,
        "const g = Function('return this')();
         const names = ['process', 'require', 'module', 'Deno', 'Bun', 'fetch', 'XMLHttpRequest',
                        'WebAssembly', 'std', 'os', 'scriptArgs', '__tenantry', 'globalThis.process'];
         return {
           host: names.filter((n) => typeof g[n] !== 'undefined'),
           viaConstructor: typeof this?.constructor?.constructor('return typeof process')(),
           ctor: (() => { try { return typeof ({}).constructor.constructor('return process')() } catch (e) { return 'threw' } })(),
         };",
        Value::Null,
    )
    .await;
    assert_eq!(r["value"]["host"], json!([]), "{r}");
    assert_ne!(r["value"]["ctor"], "object", "{r}");

    // Prototype pollution ends with the execution: the next one sees pristine
    // built-ins.
    exec(
        &s,
        &a.agent,
        "Object.prototype.polluted = 'yes'; Array.prototype.push = () => 0; JSON.stringify = () => '\"owned\"'; return 1",
        Value::Null,
    )
    .await;
    let r = exec(
        &s,
        &a.agent,
        "const a = []; a.push(1); return {p: ({}).polluted ?? null, len: a.length, j: JSON.stringify({x: 1})}",
        Value::Null,
    )
    .await;
    assert_eq!(
        r["value"],
        json!({"p": null, "len": 1, "j": "{\"x\":1}"}),
        "{r}"
    );

    // A flood of promises is bounded like any other work.
    let r = exec(
        &s,
        &a.agent,
        "let n = 0; const tick = () => Promise.resolve().then(() => { n++; return tick() }); await tick();",
        Value::Null,
    )
    .await;
    assert_eq!(r["success"], false, "{r}");

    // The vm2 escapes of 2023 (exceptions, Proxy, Symbol, inspect): in Node they
    // reached `process`; here there is nothing beyond the script's own sandbox.
    for escape in [
        // CVE-2023-29017 shape: an error from the host-side stack.
        "const err = new Error(); err.name = { toString: new Proxy(() => '', { apply(t, thiz, args) { throw thiz } }) }; \
         try { err.stack } catch (h) { return typeof h.constructor.constructor('return process')() }",
        // CVE-2023-30547 shape: a getter on the error prototype.
        "Error.prepareStackTrace = (e, frames) => frames.map(f => typeof f.getThis()); \
         try { null.x } catch (e) { return String(e.stack).includes('object') ? 'frames' : typeof globalThis.process }",
        // CVE-2023-32314 shape: Symbol-keyed host hooks.
        "const s = Symbol.for('nodejs.util.inspect.custom'); const o = { [s]: () => 1 }; \
         return typeof (o.constructor.constructor('return this')().process)",
        // CVE-2023-37466 shape: a Promise species swap.
        "class P extends Promise { static get [Symbol.species]() { return Promise } }; \
         return await P.resolve(1).then(() => typeof Function('return process')())",
    ] {
        let r = exec(&s, &a.agent, escape, Value::Null).await;
        assert!(
            !["object", "function"].contains(&r["value"].as_str().unwrap_or_default()),
            "{escape} reached a host object: {r}"
        );
    }
    neighbour_ok().await;

    // The daily quota: a refused execution runs nothing and leaves no record.
    let (q, _, _) = org_with_tools(&s, "quota").await;
    s.set_limits(&q.id, json!({"executions_per_day": 1})).await;
    exec(&s, &q.agent, "return 1", Value::Null).await;
    let body = json!({"language": "javascript", "code": "return 2"});
    s.refused(
        "POST",
        "/v1/executions",
        Some(&q.agent),
        Some(body),
        (429, "QUOTA_EXCEEDED"),
    )
    .await;
    let audit = eventually(&s, &q.owner, "/v1/audit?action=execute", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
}
