//! The control store (orgs, operator keys, the key index, the registry) and blobs.

use tenantry_core::{ApiKeyId, OrgId, PublisherId, TierOverrides};
use tenantry_store::*;

use crate::fixtures::*;
use crate::{Backend, Must};

fn org_record(name: &str, created_at: time::OffsetDateTime) -> OrgRecord {
    OrgRecord {
        id: OrgId::new(),
        name: name.into(),
        tier: "free".into(),
        overrides: TierOverrides::default(),
        created_at,
        suspended_at: None,
    }
}

/// Every override at its widest value.
fn extreme_overrides() -> TierOverrides {
    TierOverrides {
        executions_per_day: Some(u64::MAX),
        executions_per_month: Some(0),
        max_wall_time_ms: Some(1),
        concurrent_executions: Some(u32::MAX),
        host_calls_per_execution: Some(u64::MAX - 1),
        tool_calls_per_day: Some(0),
        memory_bytes: Some(4 << 30),
        artifact_bytes: Some(i64::MAX as u64 + 1),
        output_bytes: Some(1),
        plugins_installed: Some(0),
        storage_bytes: Some(u64::MAX),
        agents: Some(u32::MAX),
        invocations_per_minute: Some(60_000_000),
    }
}

/// Orgs read back as written (unicode and empty names, every override at its
/// extremes, sub-second times); `list_orgs` is in id order; a missing org is `None`.
pub async fn orgs_round_trip_and_order(b: &Backend) {
    let mut orgs = vec![
        org_record("Ünïcødé Örg 🦀", at(0, 123_456)),
        org_record("", at(1, 0)),
        org_record("quote ' \" ; -- %_", at(2, 999_999)),
    ];
    orgs[0].overrides = extreme_overrides();
    orgs[2].tier = "enterprise".into();
    // Inserted in reverse so insertion order is not id order.
    for o in orgs.iter().rev() {
        b.control.insert_org(o).await.must(b, "insert_org");
    }
    for o in &orgs {
        let got = b
            .control
            .get_org(o.id, Seen::NOTHING)
            .await
            .must(b, "get_org");
        ensure_eq!(b, got.as_ref(), Some(o), "get_org({:?}) round trip", o.name);
    }
    let mut want = orgs.clone();
    want.sort_by_key(|o| o.id);
    let listed = b.control.list_orgs().await.must(b, "list_orgs");
    ensure_eq!(b, listed, want, "list_orgs is every org in id order");
    let missing = b
        .control
        .get_org(OrgId::new(), Seen::NOTHING)
        .await
        .must(b, "get_org");
    ensure!(b, missing.is_none(), "get_org of an unknown id is None");
}

/// Tier and overrides change in place; both answer `false` for an unknown org; `{}`
/// clears the overrides.
pub async fn org_tier_and_overrides(b: &Backend) {
    let o = org_record("tiers", at(0, 0));
    b.control.insert_org(&o).await.must(b, "insert_org");
    let changed = b
        .control
        .set_org_tier(o.id, "starter")
        .await
        .must(b, "tier");
    ensure!(b, changed, "set_org_tier of an existing org is true");
    let ov = extreme_overrides();
    let changed = b.control.set_org_overrides(o.id, &ov).await.must(b, "ov");
    ensure!(b, changed, "set_org_overrides of an existing org is true");
    let got = b
        .control
        .get_org(o.id, Seen::NOTHING)
        .await
        .must(b, "get_org");
    ensure_eq!(
        b,
        got.as_ref().map(|g| (g.tier.as_str(), &g.overrides)),
        Some(("starter", &ov)),
        "tier and overrides read back"
    );
    b.control
        .set_org_overrides(o.id, &TierOverrides::default())
        .await
        .must(b, "clear overrides");
    let got = b
        .control
        .get_org(o.id, Seen::NOTHING)
        .await
        .must(b, "get_org");
    ensure!(
        b,
        got.is_some_and(|g| g.overrides.is_empty() && g.name == "tiers"),
        "cleared overrides read back empty, the rest unchanged"
    );
    let missing = OrgId::new();
    let t = b
        .control
        .set_org_tier(missing, "free")
        .await
        .must(b, "tier");
    ensure!(b, !t, "set_org_tier of an unknown org is false");
    let t = b
        .control
        .set_org_overrides(missing, &ov)
        .await
        .must(b, "ov");
    ensure!(b, !t, "set_org_overrides of an unknown org is false");
    ensure!(
        b,
        b.control
            .get_org(missing, Seen::NOTHING)
            .await
            .must(b, "get")
            .is_none(),
        "an update of an unknown org creates nothing"
    );
}

/// An org id or name taken again is a `Conflict`, and changes nothing.
pub async fn org_duplicates_conflict(b: &Backend) {
    let o = org_record("taken", at(0, 0));
    b.control.insert_org(&o).await.must(b, "insert_org");
    let same_id = OrgRecord {
        name: "other".into(),
        ..o.clone()
    };
    let r = b.control.insert_org(&same_id).await;
    ensure!(
        b,
        matches!(r, Err(StoreError::Conflict(_))),
        "a duplicate org id is Conflict, got {r:?}"
    );
    let same_name = org_record("taken", at(1, 0));
    let r = b.control.insert_org(&same_name).await;
    ensure!(
        b,
        matches!(r, Err(StoreError::Conflict(_))),
        "a duplicate org name is Conflict, got {r:?}"
    );
    let listed = b.control.list_orgs().await.must(b, "list_orgs");
    ensure_eq!(b, listed, vec![o], "refused inserts leave one org");
}

fn same_operator_key(a: &OperatorKeyRecord, b: &OperatorKeyRecord) -> bool {
    (
        a.id,
        &a.name,
        a.hash,
        a.created_at,
        a.expires_at,
        a.revoked_at,
    ) == (
        b.id,
        &b.name,
        b.hash,
        b.created_at,
        b.expires_at,
        b.revoked_at,
    )
}

/// Operator keys are counted, listed in id order, revoked once, and found by hash
/// (with their index entry, and their revocation); tenant
/// index entries name their org and key; deleting an entry forgets it; a hash or key
/// id indexed twice is a `Conflict`.
pub async fn operator_keys_and_key_index(b: &Backend) {
    ensure_eq!(
        b,
        b.control.count_operator_keys().await.must(b, "count"),
        0,
        "a new store has no operator keys"
    );
    let op = OperatorKeyRecord {
        id: ApiKeyId::new(),
        name: "bootstrap ✓".into(),
        hash: [7; 32],
        created_at: at(0, 1),
        expires_at: Some(at(86_400, 999_999)),
        revoked_at: None,
    };
    b.control
        .insert_operator_key(&op)
        .await
        .must(b, "insert_operator_key");
    ensure_eq!(
        b,
        b.control.count_operator_keys().await.must(b, "count"),
        1,
        "one operator key counted"
    );
    match b.control.lookup_key(&op.hash).await.must(b, "lookup") {
        Some(KeyLookup::Operator(k)) => ensure!(
            b,
            same_operator_key(&k, &op),
            "operator key read back: got {k:?}, want {op:?}"
        ),
        other => panic!("{}", b.at(format_args!("operator lookup: {other:?}"))),
    }
    // Listed in id order; revoking sets the time once, and the lookup sees it.
    let second = OperatorKeyRecord {
        id: ApiKeyId::new(),
        name: "second".into(),
        hash: [0x5A; 32],
        created_at: at(1, 0),
        expires_at: None,
        revoked_at: None,
    };
    b.control
        .insert_operator_key(&second)
        .await
        .must(b, "insert_operator_key");
    let listed = b.control.list_operator_keys().await.must(b, "list");
    let mut want = vec![op.clone(), second.clone()];
    want.sort_by_key(|k| k.id);
    ensure!(
        b,
        listed.len() == 2
            && listed
                .iter()
                .zip(&want)
                .all(|(a, w)| same_operator_key(a, w)),
        "operator keys in id order: got {listed:?}"
    );
    // Read once, so a backend that keeps lookups must forget it on revocation.
    b.control.lookup_key(&second.hash).await.must(b, "lookup");
    ensure!(
        b,
        b.control
            .revoke_operator_key(second.id, at(2, 5))
            .await
            .must(b, "revoke"),
        "revoking a live key"
    );
    ensure!(
        b,
        !b.control
            .revoke_operator_key(second.id, at(3, 0))
            .await
            .must(b, "revoke again"),
        "a revoked key is not revoked again"
    );
    ensure!(
        b,
        !b.control
            .revoke_operator_key(ApiKeyId::new(), at(3, 0))
            .await
            .must(b, "revoke unknown"),
        "an unknown key is not found"
    );
    match b.control.lookup_key(&second.hash).await.must(b, "lookup") {
        Some(KeyLookup::Operator(k)) => ensure_eq!(
            b,
            k.revoked_at,
            Some(at(2, 5)),
            "the lookup sees the revocation"
        ),
        other => panic!("{}", b.at(format_args!("operator lookup: {other:?}"))),
    }
    let org = OrgId::new();
    let entry = KeyIndexEntry {
        hash: [8; 32],
        key_id: ApiKeyId::new(),
        org_id: Some(org),
    };
    b.control
        .insert_key_index(&entry)
        .await
        .must(b, "insert_key_index");
    match b.control.lookup_key(&entry.hash).await.must(b, "lookup") {
        Some(KeyLookup::Tenant { org_id, key_id, .. }) => ensure_eq!(
            b,
            (org_id, key_id),
            (org, entry.key_id),
            "tenant index entry"
        ),
        other => panic!("{}", b.at(format_args!("tenant lookup: {other:?}"))),
    }
    for (what, dup) in [
        (
            "the same hash",
            KeyIndexEntry {
                key_id: ApiKeyId::new(),
                ..entry.clone()
            },
        ),
        (
            "the same key id",
            KeyIndexEntry {
                hash: [9; 32],
                ..entry.clone()
            },
        ),
        (
            "an operator key's hash",
            KeyIndexEntry {
                hash: op.hash,
                key_id: ApiKeyId::new(),
                org_id: Some(org),
            },
        ),
    ] {
        let r = b.control.insert_key_index(&dup).await;
        ensure!(
            b,
            matches!(r, Err(StoreError::Conflict(_))),
            "indexing {what} again is Conflict, got {r:?}"
        );
    }
    let r = b
        .control
        .insert_operator_key(&OperatorKeyRecord {
            id: ApiKeyId::new(),
            ..op.clone()
        })
        .await;
    ensure!(
        b,
        matches!(r, Err(StoreError::Conflict(_))),
        "an operator key with a known hash is Conflict, got {r:?}"
    );
    ensure_eq!(
        b,
        b.control.count_operator_keys().await.must(b, "count"),
        2,
        "the refused operator key left nothing behind"
    );
    b.control
        .delete_key_index(entry.key_id)
        .await
        .must(b, "delete_key_index");
    let gone = b.control.lookup_key(&entry.hash).await.must(b, "lookup");
    ensure!(b, gone.is_none(), "a deleted index entry is not found");
    b.control
        .delete_key_index(ApiKeyId::new())
        .await
        .must(b, "delete_key_index of an unknown key is Ok");
    let unknown = b.control.lookup_key(&[0; 32]).await.must(b, "lookup");
    ensure!(b, unknown.is_none(), "an unknown hash is None");
}

/// Publishers read back by exact name; `list_publishers` is in byte order of names;
/// a taken name or id is a `Conflict`.
pub async fn publishers_round_trip_and_order(b: &Backend) {
    let names = ["zeta", "Alpha", "alpha", "éclair", "a-b_c"];
    let mut all = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = PublisherRecord {
            id: PublisherId::new(),
            name: (*name).into(),
            created_at: at(i as i64, 500),
        };
        b.control
            .insert_publisher(&p)
            .await
            .must(b, "insert_publisher");
        all.push(p);
    }
    for p in &all {
        let got = b
            .control
            .get_publisher_by_name(&p.name)
            .await
            .must(b, "get_publisher_by_name");
        ensure_eq!(
            b,
            got.as_ref(),
            Some(p),
            "publisher {:?} round trip",
            p.name
        );
    }
    let upper = b
        .control
        .get_publisher_by_name("ALPHA")
        .await
        .must(b, "get");
    ensure!(
        b,
        upper.is_none(),
        "publisher names match exactly (case too)"
    );
    let mut want = all.clone();
    want.sort_by(|x, y| x.name.as_bytes().cmp(y.name.as_bytes()));
    let listed = b.control.list_publishers().await.must(b, "list_publishers");
    ensure_eq!(b, listed, want, "list_publishers in byte order of names");
    for (what, dup) in [
        (
            "name",
            PublisherRecord {
                id: PublisherId::new(),
                ..all[0].clone()
            },
        ),
        (
            "id",
            PublisherRecord {
                name: "fresh".into(),
                ..all[0].clone()
            },
        ),
    ] {
        let r = b.control.insert_publisher(&dup).await;
        ensure!(
            b,
            matches!(r, Err(StoreError::Conflict(_))),
            "a duplicate publisher {what} is Conflict, got {r:?}"
        );
    }
}

fn publisher_key(
    publisher: PublisherId,
    key_id: &str,
    created_at: time::OffsetDateTime,
) -> PublisherKeyRecord {
    PublisherKeyRecord {
        key_id: key_id.into(),
        publisher_id: publisher,
        public_key: format!("ed25519:{key_id}"),
        not_before: at(-10, 250_000),
        not_after: None,
        revoked_at: None,
        created_at,
    }
}

/// Publisher keys read back; listed by creation time (ties by key id); revoking
/// answers `true` once and keeps the first time; unknown keys answer `false`;
/// a taken key id or public key is a `Conflict`; a key needs its publisher.
pub async fn publisher_keys_and_revocation(b: &Backend) {
    let p = PublisherRecord {
        id: PublisherId::new(),
        name: "acme".into(),
        created_at: at(0, 0),
    };
    b.control
        .insert_publisher(&p)
        .await
        .must(b, "insert_publisher");
    let mut k1 = publisher_key(p.id, "k1", at(5, 0));
    k1.not_after = Some(at(1_000_000, 1));
    let k2 = publisher_key(p.id, "k2", at(3, 0));
    let k0 = publisher_key(p.id, "k0", at(5, 0));
    for k in [&k1, &k2, &k0] {
        b.control
            .insert_publisher_key(k)
            .await
            .must(b, "insert_publisher_key");
    }
    let got = b
        .control
        .get_publisher_key("k1", Seen::NOTHING)
        .await
        .must(b, "get");
    ensure_eq!(b, got.as_ref(), Some(&k1), "publisher key round trip");
    let listed = b.control.list_publisher_keys(p.id).await.must(b, "list");
    ensure_eq!(
        b,
        listed,
        vec![k2.clone(), k0.clone(), k1.clone()],
        "list_publisher_keys by created_at, ties by key_id"
    );
    let other = b
        .control
        .list_publisher_keys(PublisherId::new())
        .await
        .must(b, "list");
    ensure!(b, other.is_empty(), "another publisher has no keys");
    let first = at(100, 123_456);
    let r = b
        .control
        .revoke_publisher_key("k1", first)
        .await
        .must(b, "revoke");
    ensure!(b, r, "revoking a live key is true");
    let r = b
        .control
        .revoke_publisher_key("k1", at(200, 0))
        .await
        .must(b, "revoke");
    ensure!(b, !r, "revoking a revoked key is false");
    let r = b
        .control
        .revoke_publisher_key("nope", at(200, 0))
        .await
        .must(b, "revoke");
    ensure!(b, !r, "revoking an unknown key is false");
    let got = b
        .control
        .get_publisher_key("k1", Seen::NOTHING)
        .await
        .must(b, "get");
    ensure_eq!(
        b,
        got.and_then(|k| k.revoked_at),
        Some(first),
        "the first revocation time is kept"
    );
    let got = b
        .control
        .get_publisher_key("k2", Seen::NOTHING)
        .await
        .must(b, "get");
    ensure!(
        b,
        got.is_some_and(|k| k.revoked_at.is_none()),
        "revoking one key leaves the others"
    );
    for (what, dup) in [
        (
            "key id",
            PublisherKeyRecord {
                public_key: "ed25519:new".into(),
                ..k2.clone()
            },
        ),
        (
            "public key",
            PublisherKeyRecord {
                key_id: "k9".into(),
                ..k2.clone()
            },
        ),
    ] {
        let r = b.control.insert_publisher_key(&dup).await;
        ensure!(
            b,
            matches!(r, Err(StoreError::Conflict(_))),
            "a duplicate publisher {what} is Conflict, got {r:?}"
        );
    }
    let orphan = publisher_key(PublisherId::new(), "orphan", at(0, 0));
    let r = b.control.insert_publisher_key(&orphan).await;
    ensure!(
        b,
        r.is_err() && !matches!(r, Err(StoreError::Conflict(_))),
        "a key of an unknown publisher is refused (not as Conflict), got {r:?}"
    );
    ensure!(
        b,
        b.control
            .get_publisher_key("orphan", Seen::NOTHING)
            .await
            .must(b, "get")
            .is_none(),
        "the refused key was not stored"
    );
}

/// The first version creates the plugin; later ones move `latest_version` and the
/// summary's description; `created_at` stays the first publication; versions are
/// listed by publication time (ties by version); a version published twice is a
/// `Conflict` that changes nothing.
pub async fn versions_and_plugin_summary(b: &Backend) {
    let v1 = version("@acme/echo", "1.0.0", "acme", "Echo ✓", at(10, 1));
    let mut v2 = version("@acme/echo", "1.1.0", "acme", "Echo, better", at(20, 2));
    v2.artifact_size = i64::MAX as u64;
    let v3 = version("@acme/echo", "1.0.1", "acme", "Echo, patched", at(20, 2));
    for v in [&v1, &v2] {
        b.control.insert_version(v).await.must(b, "insert_version");
    }
    let s = b
        .control
        .get_plugin("@acme/echo")
        .await
        .must(b, "get_plugin");
    let want = PluginSummary {
        name: "@acme/echo".into(),
        publisher: "acme".into(),
        description: "Echo, better".into(),
        latest_version: "1.1.0".into(),
        capabilities: vec!["kv".into(), "http".into()],
        rating_average: None,
        rating_count: 0,
        created_at: v1.published_at,
    };
    ensure_eq!(
        b,
        s.as_ref(),
        Some(&want),
        "plugin summary after two versions"
    );
    let got = b
        .control
        .get_version("@acme/echo", "1.1.0")
        .await
        .must(b, "get_version");
    ensure_eq!(
        b,
        got.as_ref(),
        Some(&v2),
        "version round trip (artifact_size i64::MAX)"
    );
    b.control
        .insert_version(&v3)
        .await
        .must(b, "insert_version");
    let listed = b
        .control
        .list_versions("@acme/echo")
        .await
        .must(b, "list_versions");
    ensure_eq!(
        b,
        listed,
        vec![v1.clone(), v3.clone(), v2.clone()],
        "list_versions by published_at, ties by version"
    );
    let dup = version("@acme/echo", "1.0.0", "acme", "Hijacked", at(30, 0));
    let r = b.control.insert_version(&dup).await;
    ensure!(
        b,
        matches!(r, Err(StoreError::Conflict(_))),
        "a version published twice is Conflict, got {r:?}"
    );
    let s = b
        .control
        .get_plugin("@acme/echo")
        .await
        .must(b, "get_plugin");
    ensure!(
        b,
        s.is_some_and(|s| s.description == "Echo, patched" && s.latest_version == "1.0.1"),
        "a refused version leaves the plugin's summary as it was"
    );
    let got = b
        .control
        .get_version("@acme/echo", "1.0.0")
        .await
        .must(b, "get_version");
    ensure_eq!(
        b,
        got.as_ref(),
        Some(&v1),
        "a refused version leaves the stored one"
    );
    ensure!(
        b,
        b.control
            .get_plugin("@acme/none")
            .await
            .must(b, "get")
            .is_none()
            && b.control
                .get_version("@acme/echo", "9.9.9")
                .await
                .must(b, "get")
                .is_none()
            && b.control
                .list_versions("@acme/none")
                .await
                .must(b, "list")
                .is_empty(),
        "unknown plugins and versions answer nothing"
    );
}

/// Every term must occur, case-insensitively and literally (`%`, `_` are plain
/// characters), in the name, description, capabilities or docs; results are in name
/// order; `limit` bounds them (0 answers nothing); an empty query lists all.
pub async fn search_plugins_terms_and_limit(b: &Backend) {
    for (name, desc) in [
        ("@acme/kv-store", "Stores 50% off"),
        ("@acme/echo", "Echoes Input"),
        ("@other/fetch", "Fetches ÜBER pages"),
    ] {
        let v = version(
            name,
            "1.0.0",
            name.split('/').next().unwrap_or("x"),
            desc,
            at(1, 0),
        );
        b.control.insert_version(&v).await.must(b, "insert_version");
    }
    let names = |v: Vec<PluginSummary>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
    let all = vec!["@acme/echo", "@acme/kv-store", "@other/fetch"];
    for (query, limit, want) in [
        ("", 10, all.clone()),
        ("", 2, all[..2].to_vec()),
        ("", 0, vec![]),
        ("ECHO", 10, vec!["@acme/echo"]),
        ("acme stores", 10, vec!["@acme/kv-store"]),
        ("50%", 10, vec!["@acme/kv-store"]),
        ("%", 10, all.clone()),
        ("the_input", 10, all.clone()),
        ("the%input", 10, vec![]),
        ("t_e_input", 10, vec![]),
        ("http", 10, all.clone()),
        ("über", 10, vec!["@other/fetch"]),
        ("echo missing", 10, vec![]),
    ] {
        let got = b
            .control
            .search_plugins(query, limit)
            .await
            .must(b, "search");
        ensure_eq!(b, names(got), want, "search_plugins({query:?}, {limit})");
    }
}

/// One review per (plugin, org): writing again replaces rating, body and
/// `updated_at` but keeps `created_at`; listed newest update first (ties by org id);
/// the summary averages them; ratings outside 1..=5 and unknown plugins are refused.
pub async fn reviews_upsert_and_order(b: &Backend) {
    let v = version("@acme/echo", "1.0.0", "acme", "Echo", at(0, 0));
    b.control.insert_version(&v).await.must(b, "insert_version");
    let (a, c) = (OrgId::new(), OrgId::new());
    let review = |org, rating, body: &str, t| ReviewRecord {
        plugin: "@acme/echo".into(),
        org_id: org,
        rating,
        body: body.into(),
        created_at: t,
        updated_at: t,
    };
    let ra = review(a, 5, "great ✓", at(1, 0));
    let rc = review(c, 3, "", at(2, 0));
    for r in [&ra, &rc] {
        b.control.upsert_review(r).await.must(b, "upsert_review");
    }
    let listed = b.control.list_reviews("@acme/echo").await.must(b, "list");
    ensure_eq!(
        b,
        listed,
        vec![rc.clone(), ra.clone()],
        "reviews newest first"
    );
    let s = b
        .control
        .get_plugin("@acme/echo")
        .await
        .must(b, "get_plugin");
    ensure_eq!(
        b,
        s.map(|s| (s.rating_average, s.rating_count)),
        Some((Some(4.0), 2)),
        "average and count of two reviews"
    );
    let again = review(a, 1, "changed my mind", at(3, 7));
    b.control
        .upsert_review(&again)
        .await
        .must(b, "upsert_review");
    let listed = b.control.list_reviews("@acme/echo").await.must(b, "list");
    let replaced = ReviewRecord {
        created_at: ra.created_at,
        ..again.clone()
    };
    ensure_eq!(
        b,
        listed,
        vec![replaced, rc.clone()],
        "an upsert replaces rating, body and updated_at, keeps created_at"
    );
    // Equal update times: ties by org id.
    let (x, y) = if a < c { (a, c) } else { (c, a) };
    for org in [y, x] {
        b.control
            .upsert_review(&review(org, 2, "tie", at(9, 0)))
            .await
            .must(b, "upsert_review");
    }
    let listed = b.control.list_reviews("@acme/echo").await.must(b, "list");
    ensure_eq!(
        b,
        listed.iter().map(|r| r.org_id).collect::<Vec<_>>(),
        vec![x, y],
        "reviews updated at the same time are in org id order"
    );
    for rating in [0, 6] {
        let r = b
            .control
            .upsert_review(&review(OrgId::new(), rating, "x", at(4, 0)))
            .await;
        ensure!(b, r.is_err(), "a rating of {rating} is refused, got {r:?}");
    }
    let mut orphan = review(OrgId::new(), 4, "x", at(4, 0));
    orphan.plugin = "@acme/none".into();
    let r = b.control.upsert_review(&orphan).await;
    ensure!(
        b,
        r.is_err(),
        "a review of an unknown plugin is refused, got {r:?}"
    );
    ensure_eq!(
        b,
        b.control
            .list_reviews("@acme/echo")
            .await
            .must(b, "list")
            .len(),
        2,
        "refused reviews left nothing behind"
    );
}

/// Blobs read back byte for byte (empty and 1 MiB); a stored digest is never
/// rewritten; an unknown digest is `None`.
pub async fn blobs_round_trip(b: &Backend) {
    let big: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases = [
        ("a".repeat(64), Vec::new()),
        ("b".repeat(64), big),
        ("c".repeat(64), vec![0, 255, 0]),
    ];
    for (digest, bytes) in &cases {
        b.blobs.put_blob(digest, bytes).await.must(b, "put_blob");
    }
    for (digest, bytes) in &cases {
        let got = b.blobs.get_blob(digest).await.must(b, "get_blob");
        ensure!(
            b,
            got.as_deref() == Some(bytes.as_slice()),
            "blob {}… of {} bytes round trip (got {:?} bytes)",
            &digest[..8],
            bytes.len(),
            got.map(|g| g.len())
        );
    }
    b.blobs
        .put_blob(&cases[2].0, b"other")
        .await
        .must(b, "put_blob again");
    let got = b.blobs.get_blob(&cases[2].0).await.must(b, "get_blob");
    ensure_eq!(
        b,
        got,
        Some(vec![0, 255, 0]),
        "a stored digest is never rewritten"
    );
    let none = b.blobs.get_blob(&"d".repeat(64)).await.must(b, "get_blob");
    ensure!(b, none.is_none(), "an unknown digest is None");
}
