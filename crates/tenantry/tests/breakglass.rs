//! Break-glass: once an org is set up (a member holds a key), the operator reads or
//! changes nothing in it except through a ticketed, time-bound grant; every request
//! made with one is in the org's audit trail with its ticket; the org's admins see
//! and can close grants; a closed or expired token is refused like an unknown key.

mod common;

use common::*;
use serde_json::{Value, json};

on_both_stores!(
    an_operator_without_breakglass_reads_nothing_and_an_expired_token_is_refused,
    an_operator_without_breakglass_reads_nothing_and_an_expired_token_is_refused_pooled,
    breakglass_on
);

fn open_body(ticket: &str, ttl: u64, write: bool) -> Value {
    json!({"ticket": ticket, "reason": "customer asked for help", "ttl_seconds": ttl, "write": write})
}

/// The answer to a key that exists nowhere (what a dead token must look like).
async fn unknown_key_answer(s: &Server) -> (u16, Value) {
    let (st, v) = s
        .call(
            "GET",
            "/v1/users",
            Some("tny_nothing_like_a_real_key_at_all_000000000"),
            None,
        )
        .await;
    (st, without_request_id(&v))
}

/// An error answer's code and message (request ids differ per request).
fn without_request_id(v: &Value) -> Value {
    json!({"code": v["error"]["code"], "message": v["error"]["message"]})
}

async fn breakglass_on(s: Server) {
    let op = s.operator_key.clone();
    let acme = org(&s, "acme").await;
    let globex = org(&s, "globex").await;
    let path = format!("/v1/orgs/{}/breakglass", acme.id);

    // Without break-glass the operator reads and changes nothing in a live org.
    for (method, route, body) in [
        ("GET", format!("/v1/orgs/{}/users", acme.id), None),
        (
            "POST",
            format!("/v1/orgs/{}/users", acme.id),
            Some(json!({"name": "mallory", "role": "owner"})),
        ),
        (
            "POST",
            format!("/v1/orgs/{}/keys", acme.id),
            Some(json!({"owner": {"kind": "user", "id": acme.owner_user_id}, "name": "x"})),
        ),
        ("GET", "/v1/users".into(), None),
        ("GET", "/v1/audit".into(), None),
        ("GET", "/v1/installs".into(), None),
    ] {
        let (st, v) = s.call(method, &route, Some(&op), body).await;
        assert_eq!(st, 403, "{method} {route}: {v}");
    }

    // Bad requests change nothing.
    for bad in [
        open_body("", 60, false),
        open_body("T-1", 0, false),
        open_body("T-1", 4 * 3600 + 1, false),
        json!({"ticket": "T-1"}),
        json!({"ticket": "T-1", "reason": "r", "admin": true}),
    ] {
        let (st, v) = s.call("POST", &path, Some(&op), Some(bad.clone())).await;
        assert!((400..500).contains(&st), "{bad}: {st} {v}");
    }
    s.refused(
        "POST",
        &path,
        Some(&acme.owner),
        Some(open_body("T-1", 60, false)),
        (403, "PERMISSION_DENIED"),
    )
    .await;
    s.refused(
        "POST",
        "/v1/orgs/0190f000-0000-7000-8000-000000000001/breakglass",
        Some(&op),
        Some(open_body("T-1", 60, false)),
        (404, "NOT_FOUND"),
    )
    .await;
    assert_eq!(s.get("/v1/breakglass", &acme.admin).await, json!([]));

    // A read-only grant: reads acme, changes nothing, sees nothing of globex.
    let read = s.create(&path, &op, open_body("T-1", 3600, false)).await;
    let token = read["token"].as_str().expect("token").to_string();
    assert_eq!(read["access"], "read");
    assert_eq!(read["open"], true);
    let users = s.get("/v1/users", &token).await;
    assert_eq!(users.as_array().map(Vec::len), Some(4), "{users}");
    s.get("/v1/audit", &token).await;
    let (st, _) = s
        .call(
            "POST",
            "/v1/users",
            Some(&token),
            Some(json!({"name": "mallory", "role": "owner"})),
        )
        .await;
    assert_eq!(st, 403, "read-only");
    let (st, _) = s.call("GET", "/v1/breakglass", Some(&token), None).await;
    assert_eq!(st, 200);
    let theirs = s.get("/v1/users", &globex.owner).await;
    for u in theirs.as_array().into_iter().flatten() {
        let id = u["id"].as_str().expect("id");
        let (st, _) = s
            .call(
                "PATCH",
                &format!("/v1/users/{id}"),
                Some(&token),
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert!(st == 403 || st == 404, "globex's user {id}: {st}");
    }

    // The org's admins see the grant and every request it made, with the ticket.
    let grants = s.get("/v1/breakglass", &acme.admin).await;
    assert_eq!(grants.as_array().map(Vec::len), Some(1), "{grants}");
    assert_eq!(grants[0]["ticket"], "T-1");
    assert!(grants[0].get("token").is_none(), "{grants}");
    s.refused(
        "GET",
        "/v1/breakglass",
        Some(&acme.member),
        None,
        (403, "PERMISSION_DENIED"),
    )
    .await;
    assert_eq!(s.get("/v1/breakglass", &globex.admin).await, json!([]));
    let audit = s
        .get(
            "/v1/audit?action=breakglass.request&limit=1000",
            &acme.admin,
        )
        .await;
    let requests: Vec<(&str, &str)> = audit
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            assert_eq!(e["details"]["breakglass"]["ticket"], "T-1", "{e}");
            assert_eq!(e["actor_kind"], "operator");
            (
                e["details"]["method"].as_str().unwrap_or_default(),
                e["target"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for want in [
        ("GET", "/v1/users"),
        ("GET", "/v1/audit"),
        ("POST", "/v1/users"),
    ] {
        assert!(requests.contains(&want), "{want:?} in {requests:?}");
    }
    let opened = s.get("/v1/audit?action=breakglass.open", &acme.admin).await;
    assert_eq!(
        opened[0]["details"]["reason"], "customer asked for help",
        "{opened}"
    );
    assert!(
        !opened.to_string().contains(&token),
        "the token is never in the audit trail"
    );

    // An owner closes it: from then on it is refused exactly like an unknown key.
    let id = read["id"].as_str().expect("id");
    let closed = s
        .ok(
            "DELETE",
            &format!("/v1/breakglass/{id}"),
            Some(&acme.owner),
            None,
            200,
        )
        .await;
    assert_eq!(closed["open"], false);
    let (st, v) = s.call("GET", "/v1/users", Some(&token), None).await;
    assert_eq!((st, without_request_id(&v)), unknown_key_answer(&s).await);

    // A write grant changes things as an owner would, each change carrying the ticket;
    // the operator closes it.
    let write = s.create(&path, &op, open_body("T-2", 3600, true)).await;
    let wtoken = write["token"].as_str().expect("token").to_string();
    let u = s
        .create(
            "/v1/users",
            &wtoken,
            json!({"name": "helper@acme", "role": "member"}),
        )
        .await;
    let created = s
        .get("/v1/audit?action=user.create&limit=1000", &acme.admin)
        .await;
    let entry = created
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["target"] == u["id"])
        .expect("the change is audited");
    assert_eq!(entry["details"]["breakglass"]["ticket"], "T-2", "{entry}");
    // A key minted with the grant (asked to last forever, or past the grant) ends
    // with the grant: break-glass never becomes standing access.
    let grant_expiry = time::OffsetDateTime::parse(
        write["expires_at"].as_str().expect("expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("time");
    for asked in [
        json!({"owner": {"kind": "user", "id": u["id"]}, "name": "forever"}),
        json!({"owner": {"kind": "user", "id": u["id"]}, "name": "long",
               "expires_at": "2099-01-01T00:00:00Z"}),
    ] {
        let k = s.create("/v1/keys", &wtoken, asked).await;
        let until = time::OffsetDateTime::parse(
            k["expires_at"].as_str().expect("the key expires"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("time");
        assert!(until <= grant_expiry, "{k} outlives {grant_expiry}");
    }
    let wid = write["id"].as_str().expect("id");
    s.ok(
        "POST",
        &format!("{path}/{wid}/close"),
        Some(&op),
        Some(json!({})),
        200,
    )
    .await;
    let (st, v) = s.call("GET", "/v1/users", Some(&wtoken), None).await;
    assert_eq!((st, without_request_id(&v)), unknown_key_answer(&s).await);

    // An expired token is refused like an unknown one.
    let short = s.create(&path, &op, open_body("T-3", 1, false)).await;
    let stoken = short["token"].as_str().expect("token").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (st, v) = s.call("GET", "/v1/users", Some(&stoken), None).await;
    assert_eq!((st, without_request_id(&v)), unknown_key_answer(&s).await);
    let listed = s.get(&path, &op).await;
    let open: Vec<&Value> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["open"] == true)
        .collect();
    assert!(open.is_empty(), "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(3));

    // Break-glass tokens are not API keys: the org's key list does not show them.
    let keys = s.get("/v1/keys", &acme.owner).await;
    assert!(!keys.to_string().contains("break-glass"), "{keys}");
    let v = s.get("/v1/audit/verify", &acme.admin).await;
    assert_eq!(v["intact"], true, "{v}");
}

/// The operator sets up an org (its first owner, keys) until a member holds a key;
/// from then on provisioning needs break-glass.
#[tokio::test]
async fn the_operator_provisions_an_org_only_until_a_member_holds_a_key() {
    let s = Server::start();
    let op = s.operator_key.clone();
    let id = id_of(&s.create("/v1/orgs", &op, json!({"name": "initech"})).await);
    let users = format!("/v1/orgs/{id}/users");
    let alice = id_of(
        &s.create(&users, &op, json!({"name": "alice", "role": "owner"}))
            .await,
    );
    let bob = id_of(
        &s.create(&users, &op, json!({"name": "bob", "role": "member"}))
            .await,
    );
    assert_eq!(s.get(&users, &op).await.as_array().map(Vec::len), Some(2));
    let keys = format!("/v1/orgs/{id}/keys");
    let k = s
        .create(
            &keys,
            &op,
            json!({"owner": {"kind": "user", "id": alice}, "name": "alice"}),
        )
        .await;
    let alice_key = k["key"].as_str().expect("key").to_string();
    for (method, route, body) in [
        ("GET", users.clone(), None),
        (
            "POST",
            users.clone(),
            Some(json!({"name": "carol", "role": "owner"})),
        ),
        (
            "POST",
            keys.clone(),
            Some(json!({"owner": {"kind": "user", "id": bob}, "name": "bob"})),
        ),
    ] {
        let v = s
            .refused(method, &route, Some(&op), body, (403, "PERMISSION_DENIED"))
            .await;
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("breakglass open")),
            "says what to do: {v}"
        );
    }
    // Once alice's key is revoked (and no other is live), the operator can help again.
    let kid = k["id"].as_str().expect("id");
    s.ok(
        "DELETE",
        &format!("/v1/keys/{kid}"),
        Some(&alice_key),
        None,
        200,
    )
    .await;
    s.create(
        &keys,
        &op,
        json!({"owner": {"kind": "user", "id": alice}, "name": "alice-2"}),
    )
    .await;
}

on_both_stores!(
    a_leaked_operator_key_is_revoked_without_locking_the_platform_out,
    a_leaked_operator_key_is_revoked_without_locking_the_platform_out_pooled,
    operator_keys_on
);

async fn operator_keys_on(s: Server) {
    let boot = s.operator_key.clone();
    let acme = org(&s, "acme").await;
    // Only the operator manages operator keys.
    for key in [&acme.owner, &acme.admin] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/operator/keys",
                Some(key),
                Some(json!({"name": "x"})),
            )
            .await;
        assert_eq!(st, 403, "{v}");
        let (st, v) = s.call("GET", "/v1/operator/keys", Some(key), None).await;
        assert_eq!(st, 403, "{v}");
    }
    for bad in [
        json!({"name": ""}),
        json!({"name": "a\u{0}b"}),
        json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"name": "x", "admin": true}),
    ] {
        let (st, v) = s
            .call("POST", "/v1/operator/keys", Some(&boot), Some(bad.clone()))
            .await;
        assert!((400..500).contains(&st), "{bad}: {st} {v}");
    }
    // The bootstrap key cannot be revoked while it is the only one.
    let listed = s.get("/v1/operator/keys", &boot).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let boot_id = listed[0]["id"].as_str().expect("id").to_string();
    s.refused(
        "DELETE",
        &format!("/v1/operator/keys/{boot_id}"),
        Some(&boot),
        None,
        (409, "CONFLICT"),
    )
    .await;
    // Rotate: a named key (by the CLI), then the old one revoked by the new one.
    let created =
        cli_json(
            s.cli(Some(&boot))
                .args(["--json", "operator-key", "create", "alice on call"]),
        );
    let alice = created["key"].as_str().expect("key shown once").to_string();
    assert!(
        !s.get("/v1/operator/keys", &boot)
            .await
            .to_string()
            .contains(&alice)
    );
    let revoked = s
        .ok(
            "DELETE",
            &format!("/v1/operator/keys/{boot_id}"),
            Some(&alice),
            None,
            200,
        )
        .await;
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    // The revoked key is refused at once, everywhere; the new one works.
    let (st, _) = s.call("GET", "/v1/orgs", Some(&boot), None).await;
    assert_eq!(st, 401);
    s.get("/v1/orgs", &alice).await;
    s.refused(
        "DELETE",
        &format!("/v1/operator/keys/{}", created["id"].as_str().expect("id")),
        Some(&alice),
        None,
        (409, "CONFLICT"),
    )
    .await;
    s.refused(
        "DELETE",
        "/v1/operator/keys/0190f000-0000-7000-8000-000000000001",
        Some(&alice),
        None,
        (404, "NOT_FOUND"),
    )
    .await;
    // Both changes are in the operator's trail, which still verifies.
    let trail = s.get("/v1/operator/audit?limit=1000", &alice).await;
    let actions = strs(&trail, "action");
    assert!(
        actions.contains(&"operator_key.create") && actions.contains(&"operator_key.revoke"),
        "{actions:?}"
    );
    assert!(!trail.to_string().contains(&alice));
    let v = s.get("/v1/operator/audit/verify", &alice).await;
    assert_eq!(v["intact"], true, "{v}");
}

#[tokio::test]
async fn a_grant_that_needs_a_second_operator_works_only_once_another_approves_it() {
    second_operator_on(false).await;
}

#[tokio::test]
async fn a_grant_that_needs_a_second_operator_works_only_once_another_approves_it_pooled() {
    second_operator_on(true).await;
}

async fn second_operator_on(pooled: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tenantry.toml");
    std::fs::write(&config, "breakglass_approval = true\n").expect("config");
    let s = Server::start_configured(&config, pooled).await;
    let alice = s.operator_key.clone();
    let bob = s
        .create("/v1/operator/keys", &alice, json!({"name": "bob"}))
        .await;
    let (bob, bob_id) = (
        bob["key"].as_str().expect("key").to_string(),
        bob["id"].as_str().expect("id").to_string(),
    );
    let acme = org(&s, "acme").await;
    let path = format!("/v1/orgs/{}/breakglass", acme.id);
    let opened = s.create(&path, &alice, open_body("T-5", 600, false)).await;
    assert_eq!(opened["pending"], true, "{opened}");
    let token = opened["token"].as_str().expect("token").to_string();
    let id = opened["id"].as_str().expect("id").to_string();
    // Pending: refused like an unknown key.
    let (st, v) = s.call("GET", "/v1/users", Some(&token), None).await;
    assert_eq!((st, without_request_id(&v)), unknown_key_answer(&s).await);
    // The opener cannot approve its own grant; an org's admin cannot either.
    let approve = format!("{path}/{id}/approve");
    s.refused(
        "POST",
        &approve,
        Some(&alice),
        None,
        (403, "PERMISSION_DENIED"),
    )
    .await;
    s.refused(
        "POST",
        &approve,
        Some(&acme.admin),
        None,
        (403, "PERMISSION_DENIED"),
    )
    .await;
    s.refused(
        "POST",
        &format!("{path}/0190f000-0000-7000-8000-000000000001/approve"),
        Some(&bob),
        None,
        (404, "NOT_FOUND"),
    )
    .await;
    // A second operator approves it (the CLI); from then on the token works.
    let approved =
        cli_json(
            s.cli(Some(&bob))
                .args(["--json", "breakglass", "approve", &id, "--org", "acme"]),
        );
    assert_eq!(approved["pending"], false, "{approved}");
    assert_eq!(approved["approved_by"], bob_id.as_str(), "{approved}");
    s.get("/v1/users", &token).await;
    s.refused("POST", &approve, Some(&bob), None, (409, "CONFLICT"))
        .await;
    // The org's admins see who approved it; both trails record it.
    let grants = s.get("/v1/breakglass", &acme.admin).await;
    assert_eq!(grants[0]["approved_by"], bob_id.as_str(), "{grants}");
    let entries = s
        .get("/v1/audit?action=breakglass.approve", &acme.admin)
        .await;
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
    let ops = s
        .get("/v1/operator/audit?action=breakglass.approve", &alice)
        .await;
    assert_eq!(ops.as_array().map(Vec::len), Some(1), "{ops}");
}
