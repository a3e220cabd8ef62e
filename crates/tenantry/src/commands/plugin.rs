//! `tenantry plugin`: a plugin author's three commands (keygen, sign, publish) and
//! registry reads.
//!
//! A plugin directory holds `tenantry.json` (the manifest), `plugin.wasm` (the
//! component) and, after signing, `tenantry.sig.json` (the detached signature).

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tenantry_api_types as w;
use tenantry_core::manifest::Manifest;
use tenantry_crypto::{SigningKeyPair, SigningStatement, sha256_hex};

use crate::cli::{PluginCmd, PluginFiles};
use crate::client::{Client, Reply, seg};
use crate::output::{cell, compact, joined, pairs, print, s, show, table};

pub const MANIFEST_FILE: &str = "tenantry.json";
pub const ARTIFACT_FILE: &str = "plugin.wasm";
pub const SIGNATURE_FILE: &str = "tenantry.sig.json";

struct Files {
    manifest: PathBuf,
    artifact: PathBuf,
    signature: PathBuf,
}

fn files(f: &PluginFiles) -> Result<Files> {
    let dir = f.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let manifest = f
        .manifest
        .clone()
        .unwrap_or_else(|| dir.join(MANIFEST_FILE));
    let artifact = f
        .artifact
        .clone()
        .unwrap_or_else(|| dir.join(ARTIFACT_FILE));
    let signature = f.signature.clone().unwrap_or_else(|| {
        manifest
            .parent()
            .map(|p| p.join(SIGNATURE_FILE))
            .unwrap_or_else(|| PathBuf::from(SIGNATURE_FILE))
    });
    Ok(Files {
        manifest,
        artifact,
        signature,
    })
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

/// Writes a file readable only by its owner, refusing to overwrite.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}

/// Signs a manifest + artifact pair; returns the detached signature JSON.
pub fn sign(manifest_bytes: &[u8], artifact: &[u8], key: &SigningKeyPair) -> Result<Value> {
    let manifest = Manifest::from_json(manifest_bytes).map_err(|e| anyhow!("{e}"))?;
    let key_id = key.public_key().key_id();
    let now = time::OffsetDateTime::now_utc();
    let created = now.replace_nanosecond(0).unwrap_or(now);
    let st = SigningStatement {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        artifact_sha256: sha256_hex(artifact),
        manifest_sha256: sha256_hex(manifest_bytes),
        publisher: manifest.publisher.clone(),
        key_id: key_id.clone(),
        created,
    };
    let sig = key.sign(&st);
    Ok(json!({
        "key_id": key_id,
        "created": created.format(&time::format_description::well_known::Rfc3339)?,
        "signature": sig.to_string(),
        "statement": st,
    }))
}

/// Builds the publish request body for a signed plugin from its signature file's
/// JSON (what [`sign`] wrote: the detached signature and the signed statement).
pub fn publish_body(
    manifest_bytes: &[u8],
    artifact: &[u8],
    sig: &Value,
) -> Result<w::PublishRequest> {
    let signature = w::DetachedSignature::deserialize(sig).context(
        "the signature file is not a detached signature; run `tenantry plugin sign` again",
    )?;
    Ok(w::PublishRequest {
        manifest: String::from_utf8(manifest_bytes.to_vec()).context("manifest is not UTF-8")?,
        artifact_base64: base64::engine::general_purpose::STANDARD.encode(artifact),
        signature,
    })
}

pub async fn run(cmd: PluginCmd, json_out: bool) -> Result<()> {
    match cmd {
        PluginCmd::New {
            name,
            lang,
            dir,
            publisher,
            sdk_path,
        } => super::scaffold::new(&name, &lang, dir, publisher, sdk_path, json_out)?,
        PluginCmd::Keygen { out } => {
            let key = SigningKeyPair::generate();
            write_private(&out, key.to_text().expose())?;
            let pk = key.public_key();
            let v = json!({"secret_key_file": out, "public_key": pk.to_string(), "key_id": pk.key_id()});
            print(json_out, &v, |v| {
                println!(
                    "Wrote the secret key to {} (mode 0600; keep it private).",
                    s(v, "secret_key_file")
                );
                println!(
                    "Public key: {}\nKey id:     {}",
                    s(v, "public_key"),
                    s(v, "key_id")
                );
                println!(
                    "Ask the operator to run: tenantry publisher register <name> --public-key {}",
                    s(v, "public_key")
                );
            });
        }
        PluginCmd::Sign { files: f, key } => {
            let f = files(&f)?;
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("reading the publisher key {}", key.display()))?;
            let key = SigningKeyPair::from_text(text.trim())
                .map_err(|e| anyhow!("{}: {e}", key.display()))?;
            let sig = sign(&read(&f.manifest)?, &read(&f.artifact)?, &key)?;
            std::fs::write(&f.signature, serde_json::to_vec_pretty(&sig)?)
                .with_context(|| format!("writing {}", f.signature.display()))?;
            print(json_out, &sig, |v| {
                println!(
                    "Signed {}@{} with key {}",
                    s(&v["statement"], "name"),
                    s(&v["statement"], "version"),
                    s(v, "key_id")
                );
                println!("Signature written to {}", f.signature.display());
            });
        }
        PluginCmd::Publish { client, files: f } => {
            let f = files(&f)?;
            let manifest = read(&f.manifest)?;
            let artifact = read(&f.artifact)?;
            let sig: Value = serde_json::from_slice(
                &read(&f.signature).context("run `tenantry plugin sign` first")?,
            )
            .context("signature file is not JSON")?;
            if sig["statement"]["artifact_sha256"]
                .as_str()
                .is_some_and(|d| d != sha256_hex(&artifact))
            {
                bail!("the artifact changed since it was signed; run `tenantry plugin sign` again");
            }
            // Progress for people watching a terminal; nothing on a pipe or in a log.
            if !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!(
                    "Publishing {} ({} bytes)…",
                    f.artifact.display(),
                    artifact.len()
                );
            }
            let c = Client::connect(&client)?;
            let body = publish_body(&manifest, &artifact, &sig)?;
            let r: Reply<w::Version> = c.post("/v1/plugins", &body).await?;
            show(json_out, &r, |v| {
                println!("Published {}@{}", v.plugin, v.version);
                pairs(&[
                    ("artifact_sha256", cell(&v.artifact_sha256)),
                    ("key_id", cell(&v.key_id)),
                ]);
            });
        }
        PluginCmd::Search { client, query } => {
            let q = query.join(" ");
            let r: Reply<Vec<w::PluginSummary>> = Client::connect(&client)?
                .get(&format!("/v1/plugins?q={}", seg(&q)))
                .await?;
            show(json_out, &r, |plugins| {
                let rows = plugins
                    .iter()
                    .map(|p| {
                        vec![
                            cell(&p.name),
                            cell(&p.latest_version),
                            cell(&p.description),
                            cell(&p.rating_average),
                            cell(&p.rating_count),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "name",
                        "latest_version",
                        "description",
                        "rating_average",
                        "rating_count",
                    ],
                    rows,
                )
            });
        }
        PluginCmd::Show { client, name } => {
            let c = Client::connect(&client)?;
            let r: Reply<w::PluginDetail> = match c.get(&plugin_path(&name)?).await {
                Ok(r) => r,
                Err(e) => return Err(super::resources::with_registry_hint(&c, &name, e).await),
            };
            show(json_out, &r, |d| {
                let p = &d.summary;
                pairs(&[
                    ("name", cell(&p.name)),
                    ("publisher", cell(&p.publisher)),
                    ("latest_version", cell(&p.latest_version)),
                    ("description", cell(&p.description)),
                    ("rating_average", cell(&p.rating_average)),
                    ("rating_count", cell(&p.rating_count)),
                ]);
                println!(
                    "versions: {}",
                    joined(d.versions.iter().map(|x| &x.version))
                );
                println!(
                    "actions: {}",
                    joined(d.manifest.actions.iter().map(|x| &x.name))
                );
                println!("requests: {}", compact(&d.manifest.permissions));
            });
        }
        PluginCmd::Reviews { client, name } => {
            let r: Reply<Vec<w::ReviewView>> = Client::connect(&client)?
                .get(&format!("{}/reviews", plugin_path(&name)?))
                .await?;
            show(json_out, &r, |reviews| {
                let rows = reviews
                    .iter()
                    .map(|r| vec![cell(&r.rating), cell(&r.mine), cell(&r.body)])
                    .collect();
                table(&["rating", "mine", "body"], rows)
            });
        }
        PluginCmd::Review {
            client,
            name,
            rating,
            body,
        } => {
            let r: Reply<w::ReviewView> = Client::connect(&client)?
                .put(
                    &format!("{}/review", plugin_path(&name)?),
                    &w::PutReview { rating, body },
                )
                .await?;
            show(json_out, &r, |_| println!("review saved"));
        }
    }
    Ok(())
}

fn plugin_path(name: &str) -> Result<String> {
    let (scope, pkg) = name
        .split_once('/')
        .ok_or_else(|| anyhow!("plugin names look like @scope/name"))?;
    Ok(format!("/v1/plugins/{}/{}", seg(scope), seg(pkg)))
}
