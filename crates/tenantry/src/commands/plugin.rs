//! `tenantry plugin`: a plugin author's three commands (keygen, sign, publish) and
//! registry reads.
//!
//! A plugin directory holds `tenantry.json` (the manifest), `plugin.wasm` (the
//! component) and, after signing, `tenantry.sig.json` (the detached signature).

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tenantry_core::manifest::Manifest;
use tenantry_crypto::{SigningKeyPair, SigningStatement, sha256_hex};

use crate::cli::{PluginCmd, PluginFiles};
use crate::client::{Client, seg};
use crate::output::{fields, print, s, table};

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

/// Builds the publish request body for a signed plugin.
pub fn publish_body(manifest_bytes: &[u8], artifact: &[u8], sig: &Value) -> Result<Value> {
    Ok(json!({
        "manifest": String::from_utf8(manifest_bytes.to_vec()).context("manifest is not UTF-8")?,
        "artifact_base64": base64::engine::general_purpose::STANDARD.encode(artifact),
        "signature": {"key_id": sig["key_id"], "created": sig["created"], "signature": sig["signature"]},
    }))
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
            let v = Client::connect(&client)?
                .post("/v1/plugins", publish_body(&manifest, &artifact, &sig)?)
                .await?;
            print(json_out, &v, |v| {
                println!("Published {}@{}", s(v, "plugin"), s(v, "version"));
                fields(v, &["artifact_sha256", "key_id"]);
            });
        }
        PluginCmd::Search { client, query } => {
            let q = query.join(" ");
            let v = Client::connect(&client)?
                .get(&format!("/v1/plugins?q={}", seg(&q)))
                .await?;
            let cols = [
                "name",
                "latest_version",
                "description",
                "rating_average",
                "rating_count",
            ];
            print(json_out, &v, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| cols.iter().map(|c| s(r, c)).collect())
                    .collect();
                table(&cols, rows)
            });
        }
        PluginCmd::Show { client, name } => {
            let c = Client::connect(&client)?;
            let v = match c.get(&plugin_path(&name)?).await {
                Ok(v) => v,
                Err(e) => return Err(super::resources::with_registry_hint(&c, &name, e).await),
            };
            print(json_out, &v, |v| {
                fields(
                    v,
                    &[
                        "name",
                        "publisher",
                        "latest_version",
                        "description",
                        "rating_average",
                        "rating_count",
                    ],
                );
                println!(
                    "versions: {}",
                    v["versions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| s(x, "version"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!(
                    "actions: {}",
                    v["manifest"]["actions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| s(x, "name"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!("requests: {}", v["manifest"]["permissions"]);
            });
        }
        PluginCmd::Reviews { client, name } => {
            let v = Client::connect(&client)?
                .get(&format!("{}/reviews", plugin_path(&name)?))
                .await?;
            print(json_out, &v, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| vec![s(r, "rating"), s(r, "mine"), s(r, "body")])
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
            let v = Client::connect(&client)?
                .put(
                    &format!("{}/review", plugin_path(&name)?),
                    Some(json!({"rating": rating, "body": body})),
                )
                .await?;
            print(json_out, &v, |_| println!("review saved"));
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
