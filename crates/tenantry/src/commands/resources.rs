//! Client commands for orgs, members, keys, publishers, installs, secrets, audit.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cli::*;
use crate::client::{ApiError, Client, seg};
use crate::output::{fields, list_of, print, read_hidden, s, table};
use crate::suggest::did_you_mean;

pub async fn org(cmd: OrgCmd, c: &Client, json: bool) -> Result<()> {
    let v = match cmd {
        OrgCmd::Create { name, tier } => {
            c.post("/v1/orgs", json!({"name": name, "tier": tier}))
                .await?
        }
        OrgCmd::List => {
            let v = c.get("/v1/orgs").await?;
            print(json, &v, |v| {
                table(&["id", "name", "tier"], rows(v, &["id", "name", "tier"]))
            });
            return Ok(());
        }
        OrgCmd::SetTier { org, tier } => {
            let org = org_id(c, &org).await?;
            c.patch(&format!("/v1/orgs/{}", seg(&org)), json!({"tier": tier}))
                .await?
        }
        OrgCmd::Limits => {
            let v = c.get("/v1/limits").await?;
            print(json, &v, |v| {
                let l = &v["limiter"];
                println!(
                    "limiter: {}{}",
                    l["backend"].as_str().unwrap_or("?"),
                    if l["degraded"].as_bool() == Some(true) {
                        " (DEGRADED: Redis unreachable, deciding locally)"
                    } else {
                        ""
                    }
                );
                let e = &v["effective"];
                fields(
                    e,
                    &[
                        "name",
                        "invocations_per_minute",
                        "concurrent_executions",
                        "max_wall_time_ms",
                        "memory_bytes",
                        "output_bytes",
                        "host_calls_per_execution",
                        "plugins_installed",
                        "storage_bytes",
                        "agents",
                    ],
                );
                table(
                    &["quota", "used", "limit", "resets_at"],
                    rows(&v["quotas"], &["quota", "used", "limit", "resets_at"]),
                );
            });
            return Ok(());
        }
        OrgCmd::SetLimits { org, set } => {
            let body = json_arg(&set, "--set")?;
            let org = org_id(c, &org).await?;
            c.put(&format!("/v1/orgs/{}/limits", seg(&org)), Some(body))
                .await?
        }
        OrgCmd::Show => {
            let v = c.get("/v1/org").await?;
            print(json, &v, |v| {
                fields(v, &["id", "name", "tier"]);
                println!("permissions: {}", list_of(&v["permissions"]));
            });
            return Ok(());
        }
    };
    print(json, &v, |v| fields(v, &["id", "name", "tier"]));
    Ok(())
}

pub async fn user(cmd: UserCmd, c: &Client, json: bool) -> Result<()> {
    let v = match cmd {
        UserCmd::Add { name, role, org } => {
            let path = users_path(c, org.as_deref()).await?;
            c.post(&path, json!({"name": name, "role": role})).await?
        }
        UserCmd::List { org } => {
            let v = c.get(&users_path(c, org.as_deref()).await?).await?;
            print(json, &v, |v| {
                table(&["id", "name", "role"], rows(v, &["id", "name", "role"]))
            });
            return Ok(());
        }
        UserCmd::SetRole { user, role } => {
            let user = user_id(c, &user, None).await?;
            c.patch(&format!("/v1/users/{}", seg(&user)), json!({"role": role}))
                .await?
        }
    };
    print(json, &v, |v| fields(v, &["id", "name", "role"]));
    Ok(())
}

pub async fn agent(cmd: AgentCmd, c: &Client, json: bool) -> Result<()> {
    match cmd {
        AgentCmd::Create {
            name,
            grants,
            on_behalf_of,
        } => {
            let on_behalf_of = match on_behalf_of {
                Some(u) => Some(user_id(c, &u, None).await?),
                None => None,
            };
            let v = c
                .post(
                    "/v1/agents",
                    json!({"name": name, "grants": grants, "on_behalf_of": on_behalf_of}),
                )
                .await?;
            print(json, &v, |v| {
                fields(v, &["id", "name", "on_behalf_of"]);
                println!("grants: {}", list_of(&v["grants"]));
            });
        }
        AgentCmd::List => {
            let v = c.get("/v1/agents").await?;
            print(json, &v, |v| {
                table(
                    &["id", "name", "on_behalf_of"],
                    rows(v, &["id", "name", "on_behalf_of"]),
                )
            });
        }
        AgentCmd::Delete { agent } => {
            let agent = agent_id(c, &agent).await?;
            c.delete(&format!("/v1/agents/{}", seg(&agent))).await?;
            done(json, "agent deleted; its keys are revoked");
        }
        AgentCmd::Bind { agent, install } => {
            let agent = agent_id(c, &agent).await?;
            let id = install_id(c, &install).await?;
            let v = c
                .put(
                    &format!("/v1/agents/{}/installs/{}", seg(&agent), seg(&id)),
                    None,
                )
                .await?;
            print(json, &v, |_| {
                println!("agent {agent} may now use install {id}")
            });
        }
        AgentCmd::Unbind { agent, install } => {
            let agent = agent_id(c, &agent).await?;
            let id = install_id(c, &install).await?;
            c.delete(&format!("/v1/agents/{}/installs/{}", seg(&agent), seg(&id)))
                .await?;
            done(json, "binding removed");
        }
        AgentCmd::Bindings => {
            let v = c.get("/v1/bindings").await?;
            print(json, &v, |v| {
                table(
                    &["agent_id", "install_id"],
                    rows(v, &["agent_id", "install_id"]),
                )
            });
        }
    }
    Ok(())
}

/// Parses `30d`, `12h`, `90m`, `45s`.
/// The longest `--expires-in`: 100 years, beyond any sensible expiry and far inside
/// what `OffsetDateTime` can add without overflowing.
const MAX_DURATION: time::Duration = time::Duration::days(36_500);

/// Parses `30d`, `12h`, `90m` or `45s`: a positive whole number and a unit. Small
/// enough that a crate (humantime etc.) would bring more syntax than we want to
/// support and document.
fn parse_duration(s: &str) -> Result<time::Duration> {
    let bad = || {
        anyhow!(
            "'{s}' is not a duration like 30d, 12h or 90m (a positive whole number up to 36500d, then d, h, m or s)"
        )
    };
    // Split before the last character on a char boundary: the unit may be any
    // character a user typed (`5é`, `1日`).
    let (at, unit) = s.char_indices().last().ok_or_else(bad)?;
    let seconds_per_unit: i64 = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    let n: i64 = s[..at].parse().map_err(|_| bad())?;
    let seconds = n
        .checked_mul(seconds_per_unit)
        .filter(|&x| x > 0)
        .ok_or_else(bad)?;
    let d = time::Duration::seconds(seconds);
    if d > MAX_DURATION {
        return Err(bad());
    }
    Ok(d)
}

pub async fn key(cmd: KeyCmd, c: &Client, json: bool) -> Result<()> {
    match cmd {
        KeyCmd::Create {
            name,
            user,
            agent,
            org,
            expires_in,
        } => {
            let org = match org {
                Some(o) => Some(org_id(c, &o).await?),
                None => None,
            };
            let owner = match (user, agent) {
                (Some(u), _) => {
                    json!({"kind": "user", "id": user_id(c, &u, org.as_deref()).await?})
                }
                (None, Some(a)) => json!({"kind": "agent", "id": agent_id(c, &a).await?}),
                (None, None) => json!({"kind": "self"}),
            };
            let expires_at = match expires_in {
                Some(d) => {
                    let t = time::OffsetDateTime::now_utc()
                        .checked_add(parse_duration(&d)?)
                        .ok_or_else(|| anyhow!("--expires-in {d} is too far in the future"))?;
                    Some(t.format(&time::format_description::well_known::Rfc3339)?)
                }
                None => None,
            };
            let path = match org {
                Some(o) => format!("/v1/orgs/{}/keys", seg(&o)),
                None => "/v1/keys".into(),
            };
            let v = c
                .post(
                    &path,
                    json!({"owner": owner, "name": name, "expires_at": expires_at}),
                )
                .await?;
            print(json, &v, |v| {
                println!(
                    "API key (shown once; store it now):\n\n    {}\n",
                    s(v, "key")
                );
                fields(v, &["id", "principal_kind", "principal_id", "expires_at"]);
            });
        }
        KeyCmd::List => {
            let v = c.get("/v1/keys").await?;
            let cols = [
                "id",
                "name",
                "prefix",
                "principal_kind",
                "expires_at",
                "revoked_at",
                "last_used_at",
            ];
            print(json, &v, |v| table(&cols, rows(v, &cols)));
        }
        KeyCmd::Revoke { key } => {
            let v = c.delete(&format!("/v1/keys/{}", seg(&key))).await?;
            print(json, &v, |_| println!("key {key} revoked"));
        }
    }
    Ok(())
}

pub async fn publisher(cmd: PublisherCmd, c: &Client, json: bool) -> Result<()> {
    match cmd {
        PublisherCmd::Register {
            name,
            public_key,
            not_before,
            not_after,
        } => {
            let v = c
                .post("/v1/publishers", json!({"name": name, "public_key": public_key, "not_before": not_before, "not_after": not_after}))
                .await?;
            print(json, &v, |v| {
                fields(v, &["id", "name"]);
                println!("key id: {}", s(&v["keys"][0], "key_id"));
            });
        }
        PublisherCmd::List => {
            let v = c.get("/v1/publishers").await?;
            print(json, &v, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let keys: Vec<String> = p["keys"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|k| s(k, "key_id"))
                            .collect();
                        vec![s(p, "name"), keys.join(",")]
                    })
                    .collect();
                table(&["name", "keys"], rows)
            });
        }
        PublisherCmd::AddKey {
            publisher,
            public_key,
            not_after,
        } => {
            let v = c
                .post(
                    &format!("/v1/publishers/{}/keys", seg(&publisher)),
                    json!({"public_key": public_key, "not_after": not_after}),
                )
                .await?;
            print(json, &v, |v| {
                fields(v, &["key_id", "not_before", "not_after"])
            });
        }
        PublisherCmd::RevokeKey { key_id } => {
            c.delete(&format!("/v1/publisher-keys/{}", seg(&key_id)))
                .await?;
            done(
                json,
                "publisher key revoked; versions it signed can no longer be installed or run",
            );
        }
    }
    Ok(())
}

/// Whether `r` has the shape of an id (a UUID), rather than a name.
fn is_id(r: &str) -> bool {
    r.len() == 36
        && r.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Resolves `r`, an id or the `name` of one item of the list at `path`.
async fn id_by_name(c: &Client, path: &str, r: &str, what: &str, list: &str) -> Result<String> {
    if is_id(r) {
        return Ok(r.to_string());
    }
    let all = c.get(path).await?;
    let items = all.as_array().map(Vec::as_slice).unwrap_or_default();
    let found: Vec<&str> = items
        .iter()
        .filter(|i| i["name"] == r)
        .filter_map(|i| i["id"].as_str())
        .collect();
    match found[..] {
        [id] => Ok(id.to_string()),
        [] => {
            let hint = did_you_mean(r, items.iter().filter_map(|i| i["name"].as_str()));
            bail!("no {what} named {r}{}", or_see(&hint, list))
        }
        _ => bail!("several {what}s are named {r}; give the id (see `{list}`)"),
    }
}

/// Resolves an org given by id or by name (operator).
pub async fn org_id(c: &Client, r: &str) -> Result<String> {
    id_by_name(c, "/v1/orgs", r, "org", "tenantry org list").await
}

/// `/v1/users` (your org), or an org's users for an operator naming it (id or name).
async fn users_path(c: &Client, org: Option<&str>) -> Result<String> {
    Ok(match org {
        Some(o) => format!("/v1/orgs/{}/users", seg(&org_id(c, o).await?)),
        None => "/v1/users".into(),
    })
}

/// Resolves a user given by id or by name: of your org, or of `org` (an org id) for
/// an operator.
pub async fn user_id(c: &Client, r: &str, org: Option<&str>) -> Result<String> {
    let (path, list) = match org {
        Some(o) => (
            format!("/v1/orgs/{}/users", seg(o)),
            "tenantry user list --org ORG",
        ),
        None => ("/v1/users".to_string(), "tenantry user list"),
    };
    id_by_name(c, &path, r, "user", list).await
}

/// Resolves an agent of your org given by id or by name.
pub async fn agent_id(c: &Client, r: &str) -> Result<String> {
    id_by_name(c, "/v1/agents", r, "agent", "tenantry agent list").await
}

/// Resolves an install given by id or by plugin name (`@scope/name`).
pub async fn install_id(c: &Client, r: &str) -> Result<String> {
    if !r.starts_with('@') {
        return Ok(r.to_string());
    }
    let all = match c.get("/v1/installs").await {
        Ok(all) => all,
        Err(mut e) => {
            if let Some(a) = e.downcast_mut::<ApiError>()
                && a.code == "PERMISSION_DENIED"
            {
                a.hint.push_str(&format!(
                    " (naming the install {r} by its plugin lists your org's installs, which needs \
                     read_org: give the install's id instead, or grant the agent read_org)"
                ));
            }
            return Err(e);
        }
    };
    let items = all.as_array().map(Vec::as_slice).unwrap_or_default();
    if let Some(id) = items
        .iter()
        .find(|i| i["plugin"] == r)
        .and_then(|i| i["id"].as_str())
    {
        return Ok(id.to_string());
    }
    let hint = did_you_mean(r, items.iter().filter_map(|i| i["plugin"].as_str()));
    bail!(
        "no install of {r} in your org{}",
        or_see(&hint, "tenantry install list")
    )
}

/// [`install_id`] of an optional filter.
async fn opt_install(c: &Client, r: Option<String>) -> Result<Option<String>> {
    match r {
        Some(r) => Ok(Some(install_id(c, &r).await?)),
        None => Ok(None),
    }
}

/// `hint` (a "did you mean"), or else a pointer to the command that lists the names.
fn or_see(hint: &str, list: &str) -> String {
    if hint.is_empty() {
        format!("; see `{list}`")
    } else {
        hint.to_string()
    }
}

/// Adds "did you mean" to a `NOT_FOUND` about plugin `name`, from the registry's
/// names (its first 200; best effort: a failure to list them leaves the error as
/// it was).
pub async fn with_registry_hint(c: &Client, name: &str, mut e: anyhow::Error) -> anyhow::Error {
    let Some(a) = e.downcast_mut::<ApiError>() else {
        return e;
    };
    if a.code != "NOT_FOUND" {
        return e;
    }
    if let Ok(all) = c.get("/v1/plugins?limit=200").await {
        let hint = did_you_mean(
            name,
            all.as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str()),
        );
        a.hint.push_str(&hint);
    }
    e
}

/// Reads `--config` text: inline JSON or `@file.json`.
fn config_arg(text: &str) -> Result<Value> {
    json_arg(text, "config")
}

/// Reads a JSON argument: inline JSON or `@file.json`.
fn json_arg(text: &str, what: &str) -> Result<Value> {
    let raw = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => text.to_string(),
    };
    serde_json::from_str(&raw).with_context(|| format!("{what} is not valid JSON"))
}

fn grants_json(g: &GrantArgs) -> Value {
    json!({"egress": g.egress, "kv": g.kv, "secrets": g.secrets, "tools": g.tools})
}

fn show_install(v: &Value) {
    fields(
        v,
        &[
            "id",
            "plugin",
            "version",
            "previous_version",
            "enabled",
            "artifact_sha256",
        ],
    );
    println!("   config: {}", v["config"]);
    println!("  granted: {}", v["grants"]);
    if !v["requested"].is_null() {
        println!("requested: {}", v["requested"]);
    }
    if !v["secret_names"].is_null() {
        println!("  secrets: {}", list_of(&v["secret_names"]));
    }
}

/// Prints a warning on standard error: `warning: …`, or with `--json` one
/// `{"warning": {"code", "message"}}` line (standard output stays the command's
/// JSON alone).
fn warn(json: bool, code: &str, message: &str) {
    if json {
        eprintln!("{}", json!({"warning": {"code": code, "message": message}}));
    } else if crate::output::colour(&std::io::stderr()) {
        eprintln!("\x1b[1;33mwarning\x1b[0m: {message}");
    } else {
        eprintln!("warning: {message}");
    }
}

/// The `--grant-…` flags that give an install the grants `g` (an install view's
/// `grants`), plus `extra_secret`.
fn grant_flags(g: &Value, extra_secret: &str) -> String {
    let strs = |k: &str| -> Vec<String> {
        g[k].as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    let mut flags = Vec::new();
    flags.extend(
        strs("egress")
            .into_iter()
            .map(|h| format!("--grant-egress {h}")),
    );
    if g["kv"] == true {
        flags.push("--grant-kv".to_string());
    }
    flags.extend(
        strs("secrets")
            .into_iter()
            .map(|x| format!("--grant-secret {x}")),
    );
    flags.push(format!("--grant-secret {extra_secret}"));
    flags.extend(
        strs("tools")
            .into_iter()
            .map(|t| format!("--grant-tool {t}")),
    );
    flags.join(" ")
}

/// After a change to an install (`v`, its view): warns about each secret its plugin
/// reads (requested in the manifest's `permissions.secrets`) that the install does
/// not grant, since reading it is refused; and about each granted secret with no
/// value yet (`fresh`: a new install has none; else the install's secrets are
/// listed, and nothing is said if that fails).
async fn secret_warnings(c: &Client, v: &Value, json: bool, fresh: bool) {
    let names = |x: &Value| -> Vec<String> {
        x.as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(String::from))
            .collect()
    };
    let declared = names(&v["secret_names"]);
    let requested: Vec<String> = names(&v["requested"]["secrets"])
        .into_iter()
        .filter(|n| declared.is_empty() || declared.contains(n))
        .collect();
    let granted = names(&v["grants"]["secrets"]);
    let plugin = s(v, "plugin");
    for name in requested.iter().filter(|n| !granted.contains(n)) {
        warn(
            json,
            "SECRET_NOT_GRANTED",
            &format!(
                "{plugin} declares secret '{name}' but this install does not grant it; invocations \
                 that read it are refused. Add it with --grant-secret {name} (`tenantry install \
                 grants {plugin} {}` keeps the other grants)",
                grant_flags(&v["grants"], name)
            ),
        );
    }
    if granted.is_empty() {
        return;
    }
    let set: Vec<String> = if fresh {
        Vec::new()
    } else {
        match c
            .get(&format!("/v1/installs/{}/secrets", seg(&s(v, "id"))))
            .await
        {
            Ok(list) => list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect(),
            Err(_) => return,
        }
    };
    for name in granted.iter().filter(|n| !set.contains(n)) {
        warn(
            json,
            "SECRET_NOT_SET",
            &format!(
                "secret '{name}' of {plugin} has no value yet; set it with `tenantry secret set \
                 {plugin} {name}` (reads it from a hidden prompt or standard input)"
            ),
        );
    }
}

pub async fn install(cmd: InstallCmd, c: &Client, json: bool) -> Result<()> {
    let v = match cmd {
        InstallCmd::Add {
            plugin,
            version,
            config,
            grants,
            disabled,
        } => {
            let config = config
                .map(|t| config_arg(&t))
                .transpose()?
                .unwrap_or_else(|| json!({}));
            let v = match c
                .post(
                    "/v1/installs",
                    json!({"plugin": plugin, "version": version, "config": config, "grants": grants_json(&grants), "enabled": !disabled}),
                )
                .await
            {
                Ok(v) => v,
                Err(e) => return Err(with_registry_hint(c, &plugin, e).await),
            };
            print(json, &v, show_install);
            secret_warnings(c, &v, json, true).await;
            return Ok(());
        }
        InstallCmd::List => {
            let v = c.get("/v1/installs").await?;
            print(json, &v, |v| {
                table(
                    &["id", "plugin", "version", "enabled"],
                    rows(v, &["id", "plugin", "version", "enabled"]),
                )
            });
            return Ok(());
        }
        InstallCmd::Show { install } => {
            c.get(&format!(
                "/v1/installs/{}",
                seg(&install_id(c, &install).await?)
            ))
            .await?
        }
        InstallCmd::Config { install, config } => {
            let id = install_id(c, &install).await?;
            c.patch(
                &format!("/v1/installs/{}", seg(&id)),
                json!({"config": config_arg(&config)?}),
            )
            .await?
        }
        InstallCmd::Grants { install, grants } => {
            let id = install_id(c, &install).await?;
            let v = c
                .patch(
                    &format!("/v1/installs/{}", seg(&id)),
                    json!({"grants": grants_json(&grants)}),
                )
                .await?;
            print(json, &v, show_install);
            secret_warnings(c, &v, json, false).await;
            return Ok(());
        }
        InstallCmd::RateLimit {
            install,
            per_minute,
        } => {
            let id = install_id(c, &install).await?;
            let limit = match per_minute.as_str() {
                "none" => Value::Null,
                n => json!(n.parse::<u32>().map_err(|_| anyhow!(
                    "per_minute must be a whole number of invocations or `none`"
                ))?),
            };
            c.patch(
                &format!("/v1/installs/{}", seg(&id)),
                json!({"rate_limit_per_minute": limit}),
            )
            .await?
        }
        InstallCmd::Enable { install } => {
            let id = install_id(c, &install).await?;
            c.patch(
                &format!("/v1/installs/{}", seg(&id)),
                json!({"enabled": true}),
            )
            .await?
        }
        InstallCmd::Disable { install } => {
            let id = install_id(c, &install).await?;
            c.patch(
                &format!("/v1/installs/{}", seg(&id)),
                json!({"enabled": false}),
            )
            .await?
        }
        InstallCmd::Upgrade { install, version } => {
            let id = install_id(c, &install).await?;
            let v = c
                .post(
                    &format!("/v1/installs/{}/version", seg(&id)),
                    json!({"version": version.unwrap_or_else(|| "*".into())}),
                )
                .await?;
            print(json, &v, show_install);
            secret_warnings(c, &v, json, false).await;
            return Ok(());
        }
        InstallCmd::Rollback { install } => {
            let id = install_id(c, &install).await?;
            let v = c
                .post(
                    &format!("/v1/installs/{}/version", seg(&id)),
                    json!({"version": null}),
                )
                .await?;
            print(json, &v, show_install);
            secret_warnings(c, &v, json, false).await;
            return Ok(());
        }
        InstallCmd::Remove { install } => {
            let id = install_id(c, &install).await?;
            c.delete(&format!("/v1/installs/{}", seg(&id))).await?;
            done(json, "uninstalled; its secrets and data are destroyed");
            return Ok(());
        }
    };
    print(json, &v, show_install);
    Ok(())
}

/// Reads a secret's value ([`read_hidden`]). An empty value is refused (an unset `$TOKEN` in
/// `echo -n "$TOKEN" | tenantry secret set …` must not store an empty secret).
fn read_secret(name: &str) -> Result<String> {
    let value = read_hidden(
        &format!("Value of secret '{name}' (hidden): "),
        "the secret",
    )?;
    if value.is_empty() {
        bail!(
            "the value of secret '{name}' is empty, so nothing was stored; pipe the value on standard input (e.g. `printf %s \"$TOKEN\" | tenantry secret set …`, and check that $TOKEN is set) or type it at the prompt"
        );
    }
    Ok(value)
}

pub async fn secret(cmd: SecretCmd, args: &ClientArgs, json: bool) -> Result<()> {
    match cmd {
        SecretCmd::Set { install, name } => {
            // Read (and check) the value before anything is sent.
            let value = read_secret(&name)?;
            let c = &Client::connect(args)?;
            let id = install_id(c, &install).await?;
            let v = c
                .put(
                    &format!("/v1/installs/{}/secrets/{}", seg(&id), seg(&name)),
                    Some(json!({"value": value})),
                )
                .await?;
            print(json, &v, |v| {
                println!(
                    "secret '{}' set (key version {})",
                    s(v, "name"),
                    s(v, "key_version")
                )
            });
        }
        SecretCmd::Delete { install, name } => {
            let c = &Client::connect(args)?;
            let id = install_id(c, &install).await?;
            c.delete(&format!("/v1/installs/{}/secrets/{}", seg(&id), seg(&name)))
                .await?;
            done(json, "secret deleted");
        }
        SecretCmd::List { install } => {
            let c = &Client::connect(args)?;
            let id = install_id(c, &install).await?;
            let v = c.get(&format!("/v1/installs/{}/secrets", seg(&id))).await?;
            print(json, &v, |v| {
                table(
                    &["name", "key_version", "updated_at"],
                    rows(v, &["name", "key_version", "updated_at"]),
                )
            });
        }
    }
    Ok(())
}

pub async fn audit(cmd: AuditCmd, c: &Client, json: bool) -> Result<()> {
    let AuditCmd::List {
        action,
        target,
        limit,
    } = cmd;
    let mut q = format!("/v1/audit?limit={limit}");
    if let Some(a) = action {
        q.push_str(&format!("&action={}", seg(&a)));
    }
    if let Some(t) = target {
        q.push_str(&format!("&target={}", seg(&t)));
    }
    let v = c.get(&q).await?;
    let cols = ["seq", "at", "actor_kind", "action", "target", "outcome"];
    print(json, &v, |v| table(&cols, rows(v, &cols)));
    Ok(())
}

pub async fn invoke(
    c: &Client,
    json: bool,
    install: &str,
    action: &str,
    input: &str,
) -> Result<()> {
    let id = install_id(c, install).await?;
    let input = config_arg(input).context("--input must be JSON")?;
    let v = c
        .post(
            &format!("/v1/installs/{}/invoke", seg(&id)),
            json!({"action": action, "input": input}),
        )
        .await?;
    print(json, &v, |v| {
        let st = &v["stats"];
        println!("outcome: {}", s(v, "outcome"));
        if !v["output"].is_null() {
            println!(
                "{}",
                serde_json::to_string_pretty(&v["output"]).unwrap_or_default()
            );
        }
        if !v["error"].is_null() {
            println!("error: {}", s(&v["error"], "message"));
        }
        println!(
            "({} µs, {} fuel, {} bytes peak memory, {} host calls)",
            s(st, "duration_us"),
            s(st, "fuel"),
            s(st, "peak_memory_bytes"),
            s(st, "host_calls")
        );
    });
    if v["outcome"] != "OK" {
        bail!("the invocation ended with {}", s(&v, "outcome"));
    }
    Ok(())
}

pub async fn usage(
    c: &Client,
    json: bool,
    cmd: Option<UsageCmd>,
    list: UsageListArgs,
) -> Result<()> {
    match cmd.unwrap_or(UsageCmd::List(list)) {
        UsageCmd::List(a) => {
            let q = query(&[
                ("since", a.range.since),
                ("until", a.range.until),
                ("install_id", opt_install(c, a.range.install_id).await?),
                ("after", a.after),
                ("limit", Some(a.limit.to_string())),
            ]);
            let v = c.get(&format!("/v1/usage{q}")).await?;
            let cols = [
                "id",
                "at",
                "plugin",
                "action",
                "outcome",
                "duration_us",
                "fuel",
                "host_calls",
            ];
            print(json, &v, |v| table(&cols, rows(v, &cols)));
        }
        UsageCmd::Summary { range, group_by } => {
            let q = query(&[
                ("group_by", Some(group_by)),
                ("since", range.since),
                ("until", range.until),
                ("install_id", opt_install(c, range.install_id).await?),
            ]);
            let v = c.get(&format!("/v1/usage/summary{q}")).await?;
            let cols = [
                "key",
                "count",
                "errors",
                "p50_duration_ms",
                "p95_duration_ms",
                "p99_duration_ms",
                "fuel",
                "host_calls",
                "bytes_in",
                "bytes_out",
            ];
            print(json, &v, |v| table(&cols, rows(&v["rows"], &cols)));
        }
        UsageCmd::Export {
            range,
            format,
            output,
        } => {
            let q = query(&[
                ("format", Some(format)),
                ("since", range.since),
                ("until", range.until),
                ("install_id", opt_install(c, range.install_id).await?),
            ]);
            let mut res = c.get_raw(&format!("/v1/usage/export{q}")).await?;
            match output {
                Some(path) => {
                    let mut partial = path.clone().into_os_string();
                    partial.push(".partial");
                    let partial = std::path::PathBuf::from(partial);
                    let mut f = std::fs::File::create(&partial)
                        .with_context(|| format!("creating {}", partial.display()))?;
                    let mut bytes = 0usize;
                    while let Some(chunk) = res.chunk().await.context("reading the export")? {
                        std::io::Write::write_all(&mut f, &chunk)
                            .with_context(|| format!("writing {}", partial.display()))?;
                        bytes += chunk.len();
                    }
                    f.sync_all().context("flushing the export")?;
                    std::fs::rename(&partial, &path)
                        .with_context(|| format!("renaming to {}", path.display()))?;
                    if json {
                        println!("{}", json!({"ok": true, "path": path, "bytes": bytes}));
                    } else {
                        println!("wrote {bytes} bytes to {}", path.display());
                    }
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    while let Some(chunk) = res.chunk().await.context("reading the export")? {
                        std::io::Write::write_all(&mut out, &chunk).context("writing stdout")?;
                    }
                    std::io::Write::flush(&mut out).context("writing stdout")?;
                }
            }
        }
    }
    Ok(())
}

/// `?a=1&b=2` from the parameters that are set (values percent-encoded), or "".
fn query(params: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", seg(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn rows(v: &Value, cols: &[&str]) -> Vec<Vec<String>> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| cols.iter().map(|c| s(r, c)).collect())
        .collect()
}

fn done(json: bool, msg: &str) {
    if json {
        println!("{}", json!({"ok": true}));
    } else {
        println!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_days_hours_minutes_and_seconds_parse() {
        assert_eq!(parse_duration("30d").unwrap(), time::Duration::days(30));
        assert_eq!(parse_duration("12h").unwrap(), time::Duration::hours(12));
        assert_eq!(parse_duration("90m").unwrap(), time::Duration::minutes(90));
        assert_eq!(parse_duration("45s").unwrap(), time::Duration::seconds(45));
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
    }

    #[test]
    fn a_multi_byte_last_character_is_an_error_not_a_panic() {
        for s in ["5é", "1日", "é", "日日"] {
            let e = parse_duration(s).unwrap_err().to_string();
            assert!(e.contains("is not a duration like 30d"), "{s}: {e}");
        }
    }

    #[test]
    fn empty_negative_zero_and_overflowing_durations_are_refused() {
        for s in [
            "",
            "d",
            "-1d",
            "0d",
            "0s",
            "99999999999999d",
            "36501d",
            "9223372036854775807s",
            "1.5h",
            " 1d",
            "1w",
        ] {
            let e = parse_duration(s).unwrap_err().to_string();
            assert!(e.contains("is not a duration like 30d"), "{s:?}: {e}");
        }
    }
}
