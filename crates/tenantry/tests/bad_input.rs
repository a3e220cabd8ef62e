//! Bad input: each case gets a clear 4xx with a stable code and writes nothing
//! (verified by reading the store files).

mod common;

use common::*;
use serde_json::{Value, json};

async fn versions_stored(s: &Server) -> i64 {
    s.rows(None, "plugin_versions").await
}

async fn refused(s: &Server, body: Value, want_status: u16, want_code: &str) {
    let before = versions_stored(s).await;
    let e = s
        .refused(
            "POST",
            "/v1/plugins",
            Some(&s.operator_key),
            Some(body),
            (want_status, want_code),
        )
        .await;
    assert!(
        e["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
        "message should say what to do: {e}"
    );
    assert_eq!(
        versions_stored(s).await,
        before,
        "a refused publish wrote a version"
    );
}

on_both_stores!(
    publishing_refuses_bad_manifests_signatures_and_versions,
    publishing_refuses_bad_manifests_signatures_and_versions_pooled,
    publishing_refuses_bad_manifests_signatures_and_versions_on
);

async fn publishing_refuses_bad_manifests_signatures_and_versions_on(s: Server) {
    let p = publisher(&s, "acme").await;
    let art = component("a");
    let good = manifest("acme", "tool", "1.0.0");

    // malformed manifest
    let mut m = good.clone();
    m["name"] = json!("not a name");
    refused(&s, p.publish_body(&m, &art), 400, "INVALID_MANIFEST").await;
    let mut m = good.clone();
    m["actions"] = json!([]);
    refused(&s, p.publish_body(&m, &art), 400, "INVALID_MANIFEST").await;
    let mut body = p.publish_body(&good, &art);
    body["manifest"] = json!("{not json");
    refused(&s, body, 400, "INVALID_MANIFEST").await;

    // signature by an unknown key
    let stranger = Publisher::new("acme");
    refused(&s, stranger.publish_body(&good, &art), 400, "KEY_NOT_VALID").await;
    // signature over different bytes
    let mut body = p.publish_body(&good, &art);
    body["artifact_base64"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        component("other")
    ));
    refused(&s, body, 400, "INVALID_SIGNATURE").await;
    // signed before the key's window, and a key past its window
    let early = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    refused(
        &s,
        p.publish_body_at(&good, &art, early),
        400,
        "KEY_NOT_VALID",
    )
    .await;
    let expired = expired_publisher(&s, "old").await;
    refused(
        &s,
        expired.publish_body(&manifest("old", "x", "1.0.0"), &art),
        400,
        "KEY_NOT_VALID",
    )
    .await;
    // revoked key
    let revoked = publisher(&s, "gone").await;
    s.revoke_publisher_key(&revoked).await;
    refused(
        &s,
        revoked.publish_body(&manifest("gone", "x", "1.0.0"), &art),
        400,
        "KEY_NOT_VALID",
    )
    .await;

    // version not increasing
    s.publish(&p, &good, &art).await;
    refused(
        &s,
        p.publish_body(&good, &art),
        409,
        "VERSION_NOT_INCREASING",
    )
    .await;
    let mut older = good.clone();
    older["version"] = json!("0.9.0");
    refused(
        &s,
        p.publish_body(&older, &art),
        409,
        "VERSION_NOT_INCREASING",
    )
    .await;
    let mut bad_ver = good.clone();
    bad_ver["version"] = json!("one");
    refused(&s, p.publish_body(&bad_ver, &art), 400, "INVALID_VERSION").await;

    // not a component (a core module)
    let mut m2 = good.clone();
    m2["version"] = json!("1.5.0");
    refused(
        &s,
        p.publish_body(&m2, b"\0asm\x01\x00\x00\x00"),
        400,
        "INVALID_ARTIFACT",
    )
    .await;

    // oversized artifact (the server's ceiling is 10 MiB by default)
    let mut big = good.clone();
    big["version"] = json!("2.0.0");
    let huge = vec![0u8; 10 * 1024 * 1024 + 1];
    refused(&s, p.publish_body(&big, &huge), 413, "TOO_LARGE").await;
}

#[tokio::test]
async fn tampered_artifact_on_disk_is_refused_before_use() {
    let s = Server::start();
    let p = publisher(&s, "acme").await;
    let v = s
        .publish(&p, &manifest("acme", "tool", "1.0.0"), &component("t"))
        .await;
    let digest = v["artifact_sha256"].as_str().unwrap();
    let file = s
        .data_dir()
        .join("artifacts")
        .join("sha256")
        .join(format!("{digest}.wasm"));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.push(0);
    std::fs::write(&file, bytes).unwrap();
    install_is_refused_as_tampered(&s, "zeta").await;
}

on_both_stores!(
    installs_refuse_bad_config_grants_and_secret_names,
    installs_refuse_bad_config_grants_and_secret_names_pooled,
    installs_refuse_bad_config_grants_and_secret_names_on
);

async fn installs_refuse_bad_config_grants_and_secret_names_on(s: Server) {
    acme_publishes(&s, "tool", "t").await;
    let o = org(&s, "eta").await;
    let k = Some(o.admin.as_str());
    for (body, status, want) in [
        (
            json!({"plugin": "@acme/tool", "config": {"greeting": 42}}),
            400,
            "INVALID_CONFIG",
        ),
        (
            json!({"plugin": "@acme/tool", "config": {}}),
            400,
            "INVALID_CONFIG",
        ),
        (
            json!({"plugin": "@acme/tool", "config": {"greeting": "x", "api_token": "in-config"}}),
            400,
            "INVALID_CONFIG",
        ),
        (
            json!({"plugin": "@acme/tool", "config": {"greeting": "x"}, "grants": {"egress": ["evil.example"]}}),
            400,
            "INVALID_GRANT",
        ),
        (
            json!({"plugin": "@acme/tool", "config": {"greeting": "x"}, "grants": {"secrets": ["other"]}}),
            400,
            "INVALID_GRANT",
        ),
        (
            json!({"plugin": "@acme/tool", "version": "^9", "config": {"greeting": "x"}}),
            404,
            "NOT_FOUND",
        ),
        (
            json!({"plugin": "@acme/tool", "version": "not-a-req!", "config": {"greeting": "x"}}),
            400,
            "INVALID_VERSION",
        ),
        (
            json!({"plugin": "../../etc/passwd", "config": {}}),
            400,
            "INVALID_REQUEST",
        ),
        (
            json!({"plugin": "@acme/tool", "surprise": 1}),
            400,
            "INVALID_REQUEST",
        ),
    ] {
        let (st, e) = s.call("POST", "/v1/installs", k, Some(body.clone())).await;
        assert_eq!((st, code(&e)), (status, Some(want)), "{body} -> {e}");
    }
    let (_, e) = s
        .call(
            "POST",
            "/v1/installs",
            k,
            Some(json!({"plugin": "@acme/tool", "config": {"greeting": 5}})),
        )
        .await;
    assert_message_contains(&e, "greeting");
    assert_eq!(s.rows(Some(&o.id), "installs").await, 0);

    let id = s
        .install(
            &o.admin,
            json!({"plugin": "@acme/tool", "config": {"greeting": "x"}}),
        )
        .await;
    let e = s
        .refused(
            "PUT",
            &format!("/v1/installs/{id}/secrets/unknown_name"),
            Some(&o.owner),
            Some(json!({"value": "v"})),
            (400, "INVALID_REQUEST"),
        )
        .await;
    // It names the declared secrets.
    assert_message_contains(&e, "api_token");
    assert_eq!(s.rows(Some(&o.id), "secrets").await, 0);
}

on_both_stores!(
    malformed_requests_get_stable_codes,
    malformed_requests_get_stable_codes_pooled,
    malformed_requests_get_stable_codes_on
);

async fn malformed_requests_get_stable_codes_on(s: Server) {
    let o = org(&s, "theta").await;
    let audit_before = s.rows(Some(&o.id), "audit").await;
    let k = Some(o.admin.as_str());
    let new_user = |body: &[u8]| s.raw("POST", "/v1/users", k, "application/json", body.to_vec());
    // invalid JSON and invalid UTF-8
    let answer = new_user(b"{\"name\": ").await;
    assert_refused(answer, 400, "INVALID_REQUEST");
    let answer = new_user(b"{\"name\": \"\xff\xfe\", \"role\": \"member\"}").await;
    assert_refused(answer, 400, "INVALID_REQUEST");
    // body over the limit
    let big = format!(
        "{{\"name\": \"{}\", \"role\": \"member\"}}",
        "x".repeat(200 * 1024)
    );
    assert_refused(new_user(big.as_bytes()).await, 413, "TOO_LARGE");
    // Path-traversal-looking ids are plain 404s. Sent as raw request lines: an
    // HTTP client would normalise `..` and `%2e%2e` away before sending.
    for path in [
        "/v1/installs/..%2F..%2Fcontrol",
        "/v1/installs/../../etc/passwd",
        "/v1/installs/..",
        "/v1/installs/%2e%2e",
        "/v1/installs/%2e%2e/%2e%2e/control.db",
        "/v1/installs/.%2e/secrets",
    ] {
        let (st, head) = raw_request_line(&s, "GET", path, &o.admin).await;
        assert_eq!(st, 404, "{path}: {head}");
    }
    // A NUL is refused at the edge, like NUL anywhere in a request.
    let nul = "/v1/installs/0190a0a0-a0a0-7a0a-8a0a-0a0a0a0a0a0a%00";
    s.refused("GET", nul, k, None, (400, "INVALID_REQUEST"))
        .await;
    // no key, bad key
    let (st, e) = s.call("GET", "/v1/installs", None, None).await;
    assert_eq!((st, code(&e)), (401, Some("UNAUTHENTICATED")));
    let (st, _) = s
        .call("GET", "/v1/installs", Some("tny_not-a-real-key"), None)
        .await;
    assert_eq!(st, 401);
    // unknown route
    let (st, e) = s.call("GET", "/v1/nope", k, None).await;
    assert_eq!((st, code(&e)), (404, Some("NOT_FOUND")));
    assert_eq!(
        s.rows(Some(&o.id), "audit").await,
        audit_before,
        "refused requests wrote audit entries"
    );
    assert_eq!(s.rows(Some(&o.id), "users").await, 4);
}

/// Sends `METHOD path HTTP/1.1` exactly as given (no client-side normalisation) and
/// returns the status and the response head.
async fn raw_request_line(s: &Server, method: &str, path: &str, key: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}
