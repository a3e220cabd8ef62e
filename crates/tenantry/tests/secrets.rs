//! Secrets: never in any response or log line, and ciphertext bound to its row.

mod common;

use common::*;
use serde_json::json;

const CANARY: &str = "CANARY-7f3a9c1e-secret-value";

on_both_stores!(
    secret_canary_never_appears_in_responses_or_logs,
    secret_canary_never_appears_in_responses_or_logs_pooled,
    secret_canary_never_appears_in_responses_or_logs_on
);

async fn secret_canary_never_appears_in_responses_or_logs_on(s: Server) {
    acme_publishes(&s, "tool", "t").await;
    let o = org(&s, "iota").await;
    let id = s
        .install(&o.admin, json!({"plugin": "@acme/tool", "config": {"greeting": "x"}, "grants": {"secrets": ["api_token"]}}))
        .await;
    let secret = |name: &str| format!("/v1/installs/{id}/secrets/{name}");
    let mut bodies = Vec::new();
    bodies.push(
        s.ok(
            "PUT",
            &secret("api_token"),
            Some(&o.owner),
            Some(json!({"value": CANARY})),
            200,
        )
        .await,
    );
    // Error paths that carry the value: wrong name, non-owner, oversized.
    for (name, key, body) in [
        ("nope", &o.owner, json!({"value": CANARY})),
        ("api_token", &o.admin, json!({"value": CANARY})),
        (
            "api_token",
            &o.owner,
            json!({"value": CANARY, "extra": CANARY}),
        ),
    ] {
        bodies.push(s.call("PUT", &secret(name), Some(key), Some(body)).await.1);
    }
    for path in [
        format!("/v1/installs/{id}/secrets"),
        format!("/v1/installs/{id}"),
        "/v1/installs".into(),
        "/v1/audit?limit=1000".into(),
    ] {
        bodies.push(s.get(&path, &o.owner).await);
    }
    for b in &bodies {
        assert!(
            !b.to_string().contains(CANARY),
            "a response contained the secret: {b}"
        );
    }
    let logs = s.logs();
    assert!(
        logs.contains("secret"),
        "expected request logs to be captured"
    );
    assert!(!logs.contains(CANARY), "the log contained the secret");
    // Nor is it stored in clear anywhere under the data directory.
    for entry in walk(s.data_dir()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "plaintext secret in {}",
            entry.display()
        );
    }
    // Pooled mode: nor in any row of any table.
    assert!(
        !s.database_text().await.contains(CANARY),
        "plaintext secret in the database"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
