//! The global plugin registry: publishers and their keys, publishing signed
//! versions, search, and reviews.
//!
//! Publishing checks, in order and before writing anything: artifact size, manifest,
//! publisher, key (known, owned by the publisher, valid at the statement's `created`
//! and also now, not revoked), signature over the canonical statement, and that the version is
//! higher than every published one. Artifacts are checked again ([`verify_for_use`])
//! every time they are about to be used.

use serde_json::json;
use tenantry_core::manifest::{Manifest, validate_ident, validate_plugin_name};
use tenantry_core::{
    Error, ErrorCode, OperatorScope, Permission, PublisherId, Result, Session, TenantScope,
};
use tenantry_crypto::{PublicKey, Signature, SigningStatement};
use tenantry_store::{
    PluginSummary, PublisherKeyRecord, PublisherRecord, ReviewRecord, Seen, VersionRecord,
};
use time::OffsetDateTime;

use crate::{RequestCtx, Service, audit_entry};

fn key_not_valid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::KeyNotValid, msg)
}

/// A publisher key to register.
#[derive(Debug, Clone)]
pub struct NewPublisherKey {
    /// `ed25519:<base64>`, as printed by `tenantry plugin keygen`.
    pub public_key: String,
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
}

/// Registers a publisher with its first key (operator action).
pub async fn register_publisher(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    name: &str,
    key: &NewPublisherKey,
) -> Result<(PublisherRecord, PublisherKeyRecord)> {
    validate_ident("publisher name", name)?;
    let pk = parse_public_key(&key.public_key)?;
    let now = tenantry_core::now();
    let publisher = PublisherRecord {
        id: PublisherId::new(),
        name: name.into(),
        created_at: now,
    };
    let record = key_record(&pk, publisher.id, key, now)?;
    svc.control
        .insert_publisher(&publisher)
        .await
        .map_err(|e| crate::members::conflict(e, "a publisher with that name already exists"))?;
    svc.control
        .insert_publisher_key(&record)
        .await
        .map_err(|e| crate::members::conflict(e, "that public key is already registered"))?;
    let details = json!({"name": name, "key_id": record.key_id});
    let log = op.operator_log();
    crate::audit::record_platform(svc, &log, ctx, "publisher.register", name, details).await;
    Ok((publisher, record))
}

/// Adds a key to an existing publisher (operator action; rotation).
pub async fn add_publisher_key(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    publisher: &str,
    key: &NewPublisherKey,
) -> Result<PublisherKeyRecord> {
    let p = svc
        .control
        .get_publisher_by_name(publisher)
        .await?
        .ok_or_else(|| Error::not_found("publisher"))?;
    let pk = parse_public_key(&key.public_key)?;
    let record = key_record(&pk, p.id, key, tenantry_core::now())?;
    svc.control
        .insert_publisher_key(&record)
        .await
        .map_err(|e| crate::members::conflict(e, "that public key is already registered"))?;
    let details = json!({"key_id": record.key_id});
    let log = op.operator_log();
    crate::audit::record_platform(svc, &log, ctx, "publisher.key_add", publisher, details).await;
    Ok(record)
}

/// Revokes a publisher key (operator action). Versions it signed stop being usable.
pub async fn revoke_publisher_key(
    svc: &Service,
    op: &OperatorScope,
    ctx: &RequestCtx,
    key_id: &str,
) -> Result<()> {
    if svc
        .control
        .revoke_publisher_key(key_id, tenantry_core::now())
        .await?
    {
        let log = op.operator_log();
        crate::audit::record_platform(svc, &log, ctx, "publisher.key_revoke", key_id, json!({}))
            .await;
        Ok(())
    } else {
        Err(Error::not_found("publisher key (or it is already revoked)"))
    }
}

pub async fn list_publishers(
    svc: &Service,
) -> Result<Vec<(PublisherRecord, Vec<PublisherKeyRecord>)>> {
    let mut out = Vec::new();
    for p in svc.control.list_publishers().await? {
        let keys = svc.control.list_publisher_keys(p.id).await?;
        out.push((p, keys));
    }
    Ok(out)
}

fn parse_public_key(s: &str) -> Result<PublicKey> {
    s.parse::<PublicKey>().map_err(|e| match e {
        tenantry_crypto::CryptoError::WeakKey => Error::invalid(
            "public_key is a weak (low-order) ed25519 key, which belongs to no real key pair and is refused; generate a key with `tenantry plugin keygen`",
        ),
        _ => Error::invalid(
            "public_key is not a valid ed25519 public key; it must be 'ed25519:<base64>' as printed by `tenantry plugin keygen`",
        ),
    })
}

fn key_record(
    pk: &PublicKey,
    publisher: PublisherId,
    k: &NewPublisherKey,
    now: OffsetDateTime,
) -> Result<PublisherKeyRecord> {
    // Signatures carry whole seconds, so a key valid "from now" starts at this second.
    let not_before = k
        .not_before
        .unwrap_or(now.replace_nanosecond(0).unwrap_or(now));
    if k.not_after.is_some_and(|end| end <= not_before) {
        return Err(Error::invalid("not_after must be later than not_before"));
    }
    Ok(PublisherKeyRecord {
        key_id: pk.key_id(),
        publisher_id: publisher,
        public_key: pk.to_string(),
        not_before,
        not_after: k.not_after,
        revoked_at: None,
        created_at: now,
    })
}

/// A detached signature as sent with a publish request.
#[derive(Debug, Clone)]
pub struct DetachedSignature {
    pub key_id: String,
    /// The `created` field of the signed statement.
    pub created: OffsetDateTime,
    /// Base64 ed25519 signature over the canonical statement.
    pub signature: String,
}

/// Builds the statement a publisher signs for a manifest + artifact pair.
pub fn statement_for(
    manifest: &Manifest,
    manifest_bytes: &[u8],
    artifact: &[u8],
    key_id: &str,
    created: OffsetDateTime,
) -> SigningStatement {
    SigningStatement {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        artifact_sha256: tenantry_crypto::sha256_hex(artifact),
        manifest_sha256: tenantry_crypto::sha256_hex(manifest_bytes),
        publisher: manifest.publisher.clone(),
        key_id: key_id.into(),
        created,
    }
}

/// Checks a statement's key and signature: the key must have been valid at the
/// statement's `created` time (so a version signed while its key was valid stays
/// usable until the key is revoked). Returns the key's record.
async fn check_signature(
    svc: &Service,
    st: &SigningStatement,
    signature: &str,
) -> Result<PublisherKeyRecord> {
    let publisher = svc
        .control
        .get_publisher_by_name(&st.publisher)
        .await?
        .ok_or_else(|| {
            key_not_valid(format!(
                "publisher '{}' is not registered; ask the operator to register it",
                st.publisher
            ))
        })?;
    let key = svc
        .control
        .get_publisher_key(&st.key_id, Seen::NOTHING)
        .await?
        .filter(|k| k.publisher_id == publisher.id)
        .ok_or_else(|| {
            key_not_valid(format!(
                "key '{}' is not a registered key of publisher '{}'",
                st.key_id, st.publisher
            ))
        })?;
    if key.revoked_at.is_some() {
        return Err(key_not_valid(format!(
            "key '{}' has been revoked; sign with a current key",
            st.key_id
        )));
    }
    if st.created < key.not_before {
        // The usual first-hour order: keygen, sign, then the operator registers the
        // key (valid from its registration), then publish.
        return Err(key_not_valid(format!(
            "the plugin was signed at {}, before key '{}' became valid at {} (when it was \
             registered); sign it again with `tenantry plugin sign` and publish",
            st.created, st.key_id, key.not_before
        )));
    }
    if !key.valid_at(st.created) {
        return Err(key_not_valid(format!(
            "key '{}' was not valid at the signature's time {}; sign with a key valid now",
            st.key_id, st.created
        )));
    }
    // A stored key that no longer parses (e.g. a weak key registered before they
    // were refused) can verify nothing.
    let pk: PublicKey = key.public_key.parse().map_err(|_| {
        key_not_valid(format!(
            "key '{}' is not a usable ed25519 key; ask the operator to revoke it and add a new key",
            st.key_id
        ))
    })?;
    let sig: Signature = signature.parse().map_err(|_| {
        Error::new(
            ErrorCode::InvalidSignature,
            "signature is not valid base64 ed25519",
        )
    })?;
    pk.verify(st, &sig).map_err(|_| {
        Error::new(ErrorCode::InvalidSignature, "signature does not match the manifest and artifact; re-sign with `tenantry plugin sign`")
    })?;
    Ok(key)
}

/// At publish time the key must also be valid now: `created` is chosen by the
/// signer, so an expired key could otherwise publish with a backdated timestamp.
fn check_key_valid_now(key: &PublisherKeyRecord, now: OffsetDateTime) -> Result<()> {
    if now < key.not_before {
        return Err(key_not_valid(format!(
            "key '{}' is not valid yet (from {}); publish after that time or sign with a key valid now",
            key.key_id, key.not_before
        )));
    }
    if let Some(end) = key.not_after
        && now >= end
    {
        return Err(key_not_valid(format!(
            "key '{}' expired at {end}; ask the operator to add a new key for the publisher and sign with it",
            key.key_id
        )));
    }
    Ok(())
}

/// Publishes a signed version.
pub async fn publish(
    svc: &Service,
    by: &Session,
    ctx: &RequestCtx,
    manifest_bytes: &[u8],
    artifact: &[u8],
    sig: &DetachedSignature,
) -> Result<VersionRecord> {
    let max = svc.settings.max_artifact_bytes;
    if artifact.len() as u64 > max {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!(
                "artifact is {} bytes; the registry's limit is {max}",
                artifact.len()
            ),
        ));
    }
    // The component-model preamble: magic, version 0x0d, layer 1. Core modules and
    // other files are refused here, cheaply; the whole component is validated and
    // compiled below, once the signature holds.
    if !artifact.starts_with(b"\0asm\x0d\x00\x01\x00") {
        return Err(Error::new(
            ErrorCode::InvalidArtifact,
            "artifact is not a WebAssembly component; build with a component toolchain (e.g. cargo build --target wasm32-wasip2)",
        ));
    }
    let manifest = Manifest::from_json(manifest_bytes)?;
    let now = tenantry_core::now();
    if sig.created > now + time::Duration::minutes(5) {
        return Err(key_not_valid(
            "the signature's created time is in the future; check the signer's clock",
        ));
    }
    let st = statement_for(
        &manifest,
        manifest_bytes,
        artifact,
        &sig.key_id,
        sig.created,
    );
    let key = check_signature(svc, &st, &sig.signature).await?;
    check_key_valid_now(&key, now)?;
    let version = manifest.semver()?;
    let existing = svc.control.list_versions(&manifest.name).await?;
    if let Some(first) = existing.first()
        && first.publisher != manifest.publisher
    {
        return Err(Error::denied(format!(
            "plugin {} belongs to publisher '{}'",
            manifest.name, first.publisher
        )));
    }
    if let Some(highest) = existing
        .iter()
        .filter_map(|v| semver::Version::parse(&v.version).ok())
        .max()
        && version <= highest
    {
        return Err(Error::new(
            ErrorCode::VersionNotIncreasing,
            format!(
                "version {version} is not higher than the published {highest}; bump the version"
            ),
        ));
    }
    check_runnable(svc, &st.artifact_sha256, artifact).await?;
    let digest = svc.artifacts.put(artifact).await?;
    let record = VersionRecord {
        plugin: manifest.name.clone(),
        version: manifest.version.clone(),
        publisher: manifest.publisher.clone(),
        manifest_json: String::from_utf8(manifest_bytes.to_vec())
            .map_err(|_| Error::invalid("manifest is not UTF-8"))?,
        manifest_sha256: st.manifest_sha256.clone(),
        artifact_sha256: digest,
        artifact_size: artifact.len() as u64,
        key_id: sig.key_id.clone(),
        signature: sig.signature.clone(),
        signed_at: sig.created,
        published_at: now,
    };
    svc.control.insert_version(&record).await.map_err(|e| {
        crate::members::conflict(
            e,
            "that version is already published; versions are immutable",
        )
    })?;
    let details = json!({
        "version": record.version,
        "artifact_sha256": record.artifact_sha256,
        "key_id": record.key_id,
        "org_id": match by {
            Session::Tenant(t) => Some(t.org_id()),
            Session::Operator(_) => None,
        },
    });
    let log = by.operator_log_writer();
    crate::audit::record_platform(svc, &log, ctx, "plugin.publish", &record.plugin, details).await;
    Ok(record)
}

/// Refuses an artifact this host could never run: it must parse and validate as a
/// component, import only what the plugin world provides, export the world, and fit
/// the sandbox's limits (initial memories and tables within the largest tier). The
/// runtime compiles it to find out (and keeps the result for the first invocation).
async fn check_runnable(svc: &Service, digest: &str, artifact: &[u8]) -> Result<()> {
    let rt = svc.runtime.clone();
    let (digest, bytes) = (digest.to_string(), artifact.to_vec());
    tokio::task::spawn_blocking(move || rt.load(&digest, &bytes))
        .await
        .map_err(|_| Error::internal())?
        .map(drop)
        .map_err(|e| {
            Error::new(
                ErrorCode::InvalidArtifact,
                format!(
                    "the artifact cannot run on Tenantry: {}; rebuild it against wit/plugin.wit",
                    tenantry_core::error::clip_to(&e.to_string(), 600)
                ),
            )
        })
}

/// A version that passed [`verify_for_use`].
pub struct Verified {
    pub manifest: Manifest,
    pub artifact: Vec<u8>,
    /// The key that signed it (registered, the publisher's, not revoked).
    pub key: PublisherKeyRecord,
}

/// Re-checks a version before use: manifest digest, key, signature, and the
/// artifact's digest on disk.
pub async fn verify_for_use(svc: &Service, v: &VersionRecord) -> Result<Verified> {
    let artifact = svc.artifacts.get(&v.artifact_sha256).await?;
    if tenantry_crypto::sha256_hex(v.manifest_json.as_bytes()) != v.manifest_sha256 {
        return Err(Error::new(
            ErrorCode::ArtifactTampered,
            format!(
                "stored manifest of {}@{} does not match its digest",
                v.plugin, v.version
            ),
        ));
    }
    let manifest: Manifest =
        serde_json::from_str(&v.manifest_json).map_err(|_| Error::internal())?;
    let st = statement_for(
        &manifest,
        v.manifest_json.as_bytes(),
        &artifact,
        &v.key_id,
        v.signed_at,
    );
    let key = check_signature(svc, &st, &v.signature).await?;
    Ok(Verified {
        manifest,
        artifact,
        key,
    })
}

/// A plugin with its versions and latest manifest.
#[derive(Debug)]
pub struct PluginDetail {
    pub summary: PluginSummary,
    pub versions: Vec<VersionInfo>,
    pub manifest: Manifest,
}

/// One version of a plugin, as listed with its details.
#[derive(Debug)]
pub struct VersionInfo {
    pub version: String,
    pub artifact_sha256: String,
    pub artifact_size: u64,
    pub key_id: String,
    pub published_at: OffsetDateTime,
}

pub async fn search(svc: &Service, query: &str, limit: u32) -> Result<Vec<PluginSummary>> {
    Ok(svc
        .control
        .search_plugins(query, limit.clamp(1, 200))
        .await?)
}

pub async fn show(svc: &Service, name: &str) -> Result<PluginDetail> {
    validate_plugin_name(name).map_err(|_| Error::not_found("plugin"))?;
    let summary = svc
        .control
        .get_plugin(name)
        .await?
        .ok_or_else(|| Error::not_found("plugin"))?;
    let versions = svc.control.list_versions(name).await?;
    let latest = versions
        .iter()
        .find(|v| v.version == summary.latest_version)
        .ok_or_else(Error::internal)?;
    let manifest = serde_json::from_str(&latest.manifest_json).map_err(|_| Error::internal())?;
    Ok(PluginDetail {
        summary,
        manifest,
        versions: versions
            .into_iter()
            .map(|v| VersionInfo {
                version: v.version,
                artifact_sha256: v.artifact_sha256,
                artifact_size: v.artifact_size,
                key_id: v.key_id,
                published_at: v.published_at,
            })
            .collect(),
    })
}

/// Resolves a requirement (`1.2.3`, `^1`, `*`, or none = latest) to the highest
/// published matching version.
pub async fn resolve(svc: &Service, plugin: &str, req: Option<&str>) -> Result<VersionRecord> {
    validate_plugin_name(plugin)?;
    let versions = svc.control.list_versions(plugin).await?;
    if versions.is_empty() {
        return Err(Error::not_found(&format!("plugin {plugin}")));
    }
    let req = match req {
        None | Some("latest") => semver::VersionReq::STAR,
        Some(r) => {
            // A bare version means exactly that version.
            let r = if semver::Version::parse(r).is_ok() {
                format!("={r}")
            } else {
                r.to_string()
            };
            semver::VersionReq::parse(&r).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidVersion,
                    format!(
                        "'{}' is not a semver requirement: {e}",
                        tenantry_core::error::clip(&r)
                    ),
                )
            })?
        }
    };
    versions
        .into_iter()
        .filter_map(|v| semver::Version::parse(&v.version).ok().map(|s| (s, v)))
        .filter(|(s, _)| req.matches(s))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v)
        .ok_or_else(|| Error::not_found(&format!("a version of {plugin} matching '{req}'")))
}

/// A review as shown to everyone: never the reviewing org.
#[derive(Debug)]
pub struct ReviewView {
    pub rating: u8,
    pub body: String,
    /// Whether the caller's org wrote it.
    pub mine: bool,
    pub updated_at: OffsetDateTime,
}

/// Writes (or replaces) the caller's org's review of a plugin.
pub async fn review(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    plugin: &str,
    rating: u8,
    body: &str,
) -> Result<ReviewView> {
    scope.require(Permission::Review)?;
    if !(1..=5).contains(&rating) {
        return Err(Error::invalid("rating must be 1 to 5"));
    }
    if body.chars().count() > 4096 {
        return Err(Error::new(
            ErrorCode::TooLarge,
            "a review is at most 4096 characters",
        ));
    }
    validate_plugin_name(plugin).map_err(|_| Error::not_found("plugin"))?;
    svc.control
        .get_plugin(plugin)
        .await?
        .ok_or_else(|| Error::not_found("plugin"))?;
    let now = tenantry_core::now();
    let tx = svc.write(scope).await?;
    svc.control
        .upsert_review(&ReviewRecord {
            plugin: plugin.into(),
            org_id: scope.org_id(),
            rating,
            body: body.into(),
            created_at: now,
            updated_at: now,
        })
        .await?;
    svc.finish(
        tx,
        audit_entry(
            scope,
            ctx,
            "review.upsert",
            plugin,
            json!({"rating": rating}),
        ),
    )
    .await?;
    Ok(ReviewView {
        rating,
        body: body.into(),
        mine: true,
        updated_at: now,
    })
}

pub async fn reviews(
    svc: &Service,
    viewer: Option<&TenantScope>,
    plugin: &str,
) -> Result<Vec<ReviewView>> {
    validate_plugin_name(plugin).map_err(|_| Error::not_found("plugin"))?;
    svc.control
        .get_plugin(plugin)
        .await?
        .ok_or_else(|| Error::not_found("plugin"))?;
    Ok(svc
        .control
        .list_reviews(plugin)
        .await?
        .into_iter()
        .map(|r| ReviewView {
            rating: r.rating,
            body: r.body,
            mine: viewer.is_some_and(|s| s.org_id() == r.org_id),
            updated_at: r.updated_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(not_before: OffsetDateTime, not_after: Option<OffsetDateTime>) -> PublisherKeyRecord {
        PublisherKeyRecord {
            key_id: "0011223344556677".into(),
            publisher_id: PublisherId::new(),
            public_key: String::new(),
            not_before,
            not_after,
            revoked_at: None,
            created_at: not_before,
        }
    }

    #[test]
    fn an_expired_key_cannot_publish_with_a_backdated_signature() {
        let k = key(
            datetime!(2026-01-01 00:00 UTC),
            Some(datetime!(2026-02-01 00:00 UTC)),
        );
        // The signer picks `created` inside the window: the signed-time check passes...
        assert!(k.valid_at(datetime!(2026-01-15 00:00 UTC)));
        // ...but the key is checked now too.
        let e = check_key_valid_now(&k, datetime!(2026-03-01 00:00 UTC)).unwrap_err();
        assert_eq!(e.code, ErrorCode::KeyNotValid);
        assert!(e.message.contains("expired"), "{}", e.message);
        assert!(
            check_key_valid_now(&k, datetime!(2026-02-01 00:00 UTC)).is_err(),
            "not_after is exclusive"
        );
        check_key_valid_now(&k, datetime!(2026-01-31 23:59:59 UTC)).unwrap();
    }

    #[test]
    fn a_key_not_yet_valid_cannot_publish() {
        let k = key(datetime!(2026-06-01 00:00 UTC), None);
        let e = check_key_valid_now(&k, datetime!(2026-05-31 23:59:59 UTC)).unwrap_err();
        assert_eq!(e.code, ErrorCode::KeyNotValid);
        assert!(e.message.contains("not valid yet"), "{}", e.message);
        check_key_valid_now(&k, datetime!(2026-06-01 00:00 UTC)).unwrap();
    }

    #[test]
    fn registering_a_low_order_public_key_is_refused_as_weak() {
        // The identity point, base64 of [1, 0, 0, ...].
        let e =
            parse_public_key("ed25519:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("weak"), "{}", e.message);
        let e = parse_public_key("ed25519:nope").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.message.contains("not a valid"), "{}", e.message);
    }
}
