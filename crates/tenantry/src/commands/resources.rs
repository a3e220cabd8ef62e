//! Client commands for orgs, members, keys, publishers, installs, secrets, audit.

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};
use tenantry_api_types as w;

use crate::cli::*;
use crate::client::{ApiError, Client, Reply, seg};
use crate::output::{cell, compact, joined, pairs, read_hidden, rfc3339, rfc3339_opt, show, table};
use crate::suggest::did_you_mean;

pub async fn org(cmd: OrgCmd, c: &Client, json: bool) -> Result<()> {
    let r: Reply<w::Org> = match cmd {
        OrgCmd::Create { name, tier } => c.post("/v1/orgs", &w::CreateOrg { name, tier }).await?,
        OrgCmd::List => {
            let r: Reply<Vec<w::Org>> = c.get("/v1/orgs").await?;
            show(json, &r, |orgs| {
                table(
                    &["id", "name", "tier", "suspended_at"],
                    orgs.iter()
                        .map(|o| {
                            vec![
                                cell(&o.id),
                                cell(&o.name),
                                cell(&o.tier),
                                rfc3339_opt(o.suspended_at),
                            ]
                        })
                        .collect(),
                )
            });
            return Ok(());
        }
        OrgCmd::Suspend { org, reason } => {
            let org = org_id(c, &org).await?;
            c.post(
                &format!("/v1/orgs/{}/suspend", seg(&org)),
                &w::SuspendOrg { reason },
            )
            .await?
        }
        OrgCmd::Resume { org } => {
            let org = org_id(c, &org).await?;
            c.post(
                &format!("/v1/orgs/{}/resume", seg(&org)),
                &serde_json::json!({}),
            )
            .await?
        }
        OrgCmd::Export { output } => {
            let res = c.get_raw("/v1/org/export").await?;
            download(res, output, json, export_is_complete).await?;
            return Ok(());
        }
        OrgCmd::Delete { org, yes } => {
            if !yes {
                bail!(
                    "deleting org {org} erases its data and destroys its key, and cannot be undone; run it again with --yes"
                );
            }
            let id = org_id(c, &org).await?;
            let r: Reply<w::DeletedOrg> = c.delete(&format!("/v1/orgs/{}", seg(&id))).await?;
            show(json, &r, |d| {
                pairs(&[
                    ("id", cell(&d.id)),
                    ("name", cell(&d.name)),
                    ("deleted_at", rfc3339(d.deleted_at)),
                    ("keys_shredded", cell(&d.keys_shredded)),
                ]);
                if !d.keys_shredded {
                    eprintln!(
                        "warning: this org had no key in the key vault; a backup of its data made before now still decrypts with the master key"
                    );
                }
            });
            return Ok(());
        }
        OrgCmd::SetTier { org, tier } => {
            let org = org_id(c, &org).await?;
            c.patch(&format!("/v1/orgs/{}", seg(&org)), &w::SetTier { tier })
                .await?
        }
        OrgCmd::Limits => {
            let r: Reply<w::LimitsView> = c.get("/v1/limits").await?;
            show(json, &r, |v| {
                let l = &v.limiter;
                println!(
                    "limiter: {}{}",
                    l.backend,
                    if l.degraded {
                        " (DEGRADED: Redis unreachable, deciding locally)"
                    } else {
                        ""
                    }
                );
                let e = &v.effective;
                pairs(&[
                    ("name", cell(&e.name)),
                    ("invocations_per_minute", cell(&e.invocations_per_minute)),
                    ("concurrent_executions", cell(&e.concurrent_executions)),
                    ("max_wall_time_ms", cell(&e.max_wall_time_ms)),
                    ("memory_bytes", cell(&e.memory_bytes)),
                    ("output_bytes", cell(&e.output_bytes)),
                    (
                        "host_calls_per_execution",
                        cell(&e.host_calls_per_execution),
                    ),
                    ("plugins_installed", cell(&e.plugins_installed)),
                    ("storage_bytes", cell(&e.storage_bytes)),
                    ("agents", cell(&e.agents)),
                ]);
                table(
                    &["quota", "used", "limit", "resets_at"],
                    v.quotas
                        .iter()
                        .map(|q| {
                            vec![
                                cell(&q.quota),
                                cell(&q.used),
                                cell(&q.limit),
                                rfc3339(q.resets_at),
                            ]
                        })
                        .collect(),
                );
                let p = &v.pilot;
                let list = |l: &Option<Vec<String>>| {
                    l.as_ref()
                        .map_or_else(|| "(any)".to_string(), |l| l.join(", "))
                };
                if p.max_orgs.is_some() || p.plugins.is_some() || p.egress.is_some() {
                    println!("pilot guardrails (the platform's, for every org):");
                    pairs(&[
                        (
                            "max_orgs",
                            p.max_orgs.map_or_else(|| "(any)".into(), |m| m.to_string()),
                        ),
                        ("plugins", list(&p.plugins)),
                        ("egress", list(&p.egress)),
                    ]);
                }
            });
            return Ok(());
        }
        OrgCmd::SetLimits { org, set } => {
            // The overrides as given: the server checks them and names a wrong field.
            let body = json_arg(&set, "--set")?;
            let org = org_id(c, &org).await?;
            c.put(&format!("/v1/orgs/{}/limits", seg(&org)), &body)
                .await?
        }
        OrgCmd::Show => {
            let r: Reply<w::OrgView> = c.get("/v1/org").await?;
            show(json, &r, |v| {
                show_org(&v.org);
                println!("permissions: {}", joined(&v.permissions));
                println!("key_version: {}", v.key_version);
            });
            return Ok(());
        }
        OrgCmd::RotateKey => {
            let r: Reply<w::KeyRotation> = c.post("/v1/org/key/rotate", &json!({})).await?;
            show(json, &r, |k| {
                pairs(&[
                    ("key_version", cell(&k.key_version)),
                    ("secrets_resealed", cell(&k.secrets_resealed)),
                    ("in_vault", cell(&k.in_vault)),
                ]);
            });
            return Ok(());
        }
    };
    show(json, &r, show_org);
    Ok(())
}

fn show_org(o: &w::Org) {
    pairs(&[
        ("id", cell(&o.id)),
        ("name", cell(&o.name)),
        ("tier", cell(&o.tier)),
        ("suspended_at", rfc3339_opt(o.suspended_at)),
    ]);
}

fn show_user(u: &w::User) {
    pairs(&[
        ("id", cell(&u.id)),
        ("name", cell(&u.name)),
        ("role", cell(&u.role)),
    ]);
}

pub async fn user(cmd: UserCmd, c: &Client, json: bool) -> Result<()> {
    let r: Reply<w::User> = match cmd {
        UserCmd::Add { name, role, org } => {
            let path = users_path(c, org.as_deref()).await?;
            let role = role_arg(&role)?;
            c.post(&path, &w::AddUser { name, role }).await?
        }
        UserCmd::List { org } => {
            let r: Reply<Vec<w::User>> = c.get(&users_path(c, org.as_deref()).await?).await?;
            show(json, &r, |users| {
                table(
                    &["id", "name", "role"],
                    users
                        .iter()
                        .map(|u| vec![cell(&u.id), cell(&u.name), cell(&u.role)])
                        .collect(),
                )
            });
            return Ok(());
        }
        UserCmd::SetRole { user, role } => {
            let user = user_id(c, &user, None).await?;
            let role = role_arg(&role)?;
            c.patch(&format!("/v1/users/{}", seg(&user)), &w::SetRole { role })
                .await?
        }
    };
    show(json, &r, show_user);
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
                Some(u) => Some(parse_id(&user_id(c, &u, None).await?)?),
                None => None,
            };
            let grants = grants
                .iter()
                .enumerate()
                .map(|(i, g)| permission_arg(g, i))
                .collect::<Result<_>>()?;
            let r: Reply<w::Agent> = c
                .post(
                    "/v1/agents",
                    &w::CreateAgent {
                        name,
                        on_behalf_of,
                        grants,
                    },
                )
                .await?;
            show(json, &r, |a| {
                pairs(&[
                    ("id", cell(&a.id)),
                    ("name", cell(&a.name)),
                    ("on_behalf_of", cell(&a.on_behalf_of)),
                ]);
                println!("grants: {}", joined(&a.grants));
            });
        }
        AgentCmd::List => {
            let r: Reply<Vec<w::Agent>> = c.get("/v1/agents").await?;
            show(json, &r, |agents| {
                table(
                    &["id", "name", "on_behalf_of"],
                    agents
                        .iter()
                        .map(|a| vec![cell(&a.id), cell(&a.name), cell(&a.on_behalf_of)])
                        .collect(),
                )
            });
        }
        AgentCmd::Delete { agent } => {
            let agent = agent_id(c, &agent).await?;
            let _: Reply<IgnoredAny> = c.delete(&format!("/v1/agents/{}", seg(&agent))).await?;
            done(json, "agent deleted; its keys are revoked");
        }
        AgentCmd::Bind { agent, install } => {
            let agent = agent_id(c, &agent).await?;
            let id = install_id(c, &install).await?;
            let r: Reply<w::Binding> = c
                .put_empty(&format!("/v1/agents/{}/installs/{}", seg(&agent), seg(&id)))
                .await?;
            show(json, &r, |_| {
                println!("agent {agent} may now use install {id}")
            });
        }
        AgentCmd::Unbind { agent, install } => {
            let agent = agent_id(c, &agent).await?;
            let id = install_id(c, &install).await?;
            let _: Reply<IgnoredAny> = c
                .delete(&format!("/v1/agents/{}/installs/{}", seg(&agent), seg(&id)))
                .await?;
            done(json, "binding removed");
        }
        AgentCmd::Bindings => {
            let r: Reply<Vec<w::Binding>> = c.get("/v1/bindings").await?;
            show(json, &r, |bindings| {
                table(
                    &["agent_id", "install_id"],
                    bindings
                        .iter()
                        .map(|b| vec![cell(&b.agent_id), cell(&b.install_id)])
                        .collect(),
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
                    w::KeyOwner::User(parse_id(&user_id(c, &u, org.as_deref()).await?)?)
                }
                (None, Some(a)) => w::KeyOwner::Agent(parse_id(&agent_id(c, &a).await?)?),
                (None, None) => w::KeyOwner::Caller,
            };
            let expires_at = match expires_in {
                Some(d) => Some(
                    time::OffsetDateTime::now_utc()
                        .checked_add(parse_duration(&d)?)
                        .ok_or_else(|| anyhow!("--expires-in {d} is too far in the future"))?,
                ),
                None => None,
            };
            let path = match org {
                Some(o) => format!("/v1/orgs/{}/keys", seg(&o)),
                None => "/v1/keys".into(),
            };
            let r: Reply<w::CreatedKey> = c
                .post(
                    &path,
                    &w::CreateKey {
                        owner,
                        name,
                        expires_at,
                    },
                )
                .await?;
            show(json, &r, |k| {
                println!(
                    "API key (shown once; store it now):\n\n    {}\n",
                    k.key.expose()
                );
                let k = &k.record;
                pairs(&[
                    ("id", cell(&k.id)),
                    ("principal_kind", cell(&k.principal_kind)),
                    ("principal_id", cell(&k.principal_id)),
                    ("expires_at", rfc3339_opt(k.expires_at)),
                ]);
            });
        }
        KeyCmd::List => {
            let r: Reply<Vec<w::ApiKey>> = c.get("/v1/keys").await?;
            show(json, &r, |keys| {
                table(
                    &[
                        "id",
                        "name",
                        "prefix",
                        "principal_kind",
                        "expires_at",
                        "revoked_at",
                        "last_used_at",
                    ],
                    keys.iter()
                        .map(|k| {
                            vec![
                                cell(&k.id),
                                cell(&k.name),
                                cell(&k.prefix),
                                cell(&k.principal_kind),
                                rfc3339_opt(k.expires_at),
                                rfc3339_opt(k.revoked_at),
                                rfc3339_opt(k.last_used_at),
                            ]
                        })
                        .collect(),
                )
            });
        }
        KeyCmd::Revoke { key } => {
            let r: Reply<w::ApiKey> = c.delete(&format!("/v1/keys/{}", seg(&key))).await?;
            show(json, &r, |_| println!("key {key} revoked"));
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
            let key = w::NewPublisherKey {
                public_key,
                not_before: time_arg(not_before.as_deref(), "not_before")?,
                not_after: time_arg(not_after.as_deref(), "not_after")?,
            };
            let r: Reply<w::PublisherView> = c
                .post("/v1/publishers", &w::RegisterPublisher { name, key })
                .await?;
            show(json, &r, |p| {
                pairs(&[
                    ("id", cell(&p.publisher.id)),
                    ("name", cell(&p.publisher.name)),
                ]);
                println!(
                    "key id: {}",
                    p.keys.first().map_or("-", |k| k.key_id.as_str())
                );
            });
        }
        PublisherCmd::List => {
            let r: Reply<Vec<w::PublisherView>> = c.get("/v1/publishers").await?;
            show(json, &r, |publishers| {
                let rows = publishers
                    .iter()
                    .map(|p| {
                        let keys: Vec<&str> = p.keys.iter().map(|k| k.key_id.as_str()).collect();
                        vec![p.publisher.name.clone(), keys.join(",")]
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
            let key = w::NewPublisherKey {
                public_key,
                not_before: None,
                not_after: time_arg(not_after.as_deref(), "not_after")?,
            };
            let r: Reply<w::PublisherKey> = c
                .post(&format!("/v1/publishers/{}/keys", seg(&publisher)), &key)
                .await?;
            show(json, &r, |k| {
                pairs(&[
                    ("key_id", cell(&k.key_id)),
                    ("not_before", rfc3339(k.not_before)),
                    ("not_after", rfc3339_opt(k.not_after)),
                ])
            });
        }
        PublisherCmd::RevokeKey { key_id } => {
            let _: Reply<IgnoredAny> = c
                .delete(&format!("/v1/publisher-keys/{}", seg(&key_id)))
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

/// Something listed with a name and an id: an org, a user, an agent.
trait Named: DeserializeOwned {
    fn name(&self) -> &str;
    fn id(&self) -> String;
}

impl Named for w::Org {
    fn name(&self) -> &str {
        &self.name
    }
    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl Named for w::User {
    fn name(&self) -> &str {
        &self.name
    }
    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl Named for w::Agent {
    fn name(&self) -> &str {
        &self.name
    }
    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// Resolves `r`, an id or the `name` of one item (a `T`) of the list at `path`.
async fn id_by_name<T: Named>(
    c: &Client,
    path: &str,
    r: &str,
    what: &str,
    list: &str,
) -> Result<String> {
    if is_id(r) {
        return Ok(r.to_string());
    }
    let items: Vec<T> = c.get(path).await?.body;
    let found: Vec<String> = items
        .iter()
        .filter(|i| i.name() == r)
        .map(Named::id)
        .collect();
    match &found[..] {
        [id] => Ok(id.clone()),
        [] => {
            let hint = did_you_mean(r, items.iter().map(Named::name));
            bail!("no {what} named {r}{}", or_see(&hint, list))
        }
        _ => bail!("several {what}s are named {r}; give the id (see `{list}`)"),
    }
}

/// An id resolved by [`id_by_name`] (a UUID in canonical form), typed for a body.
fn parse_id<T: std::str::FromStr<Err = w::InvalidId>>(id: &str) -> Result<T> {
    Ok(id.parse()?)
}

/// Resolves an org given by id or by name (operator).
pub async fn org_id(c: &Client, r: &str) -> Result<String> {
    id_by_name::<w::Org>(c, "/v1/orgs", r, "org", "tenantry org list").await
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
    id_by_name::<w::User>(c, &path, r, "user", list).await
}

/// Resolves an agent of your org given by id or by name.
pub async fn agent_id(c: &Client, r: &str) -> Result<String> {
    id_by_name::<w::Agent>(c, "/v1/agents", r, "agent", "tenantry agent list").await
}

/// Resolves an install given by id or by plugin name (`@scope/name`).
pub async fn install_id(c: &Client, r: &str) -> Result<String> {
    if !r.starts_with('@') {
        return Ok(r.to_string());
    }
    let installs: Vec<w::Install> = match c.get("/v1/installs").await {
        Ok(all) => all.body,
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
    if let Some(i) = installs.iter().find(|i| i.plugin == r) {
        return Ok(i.id.to_string());
    }
    let hint = did_you_mean(r, installs.iter().map(|i| i.plugin.as_str()));
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
    if let Ok(all) = c
        .get::<Vec<w::PluginSummary>>("/v1/plugins?limit=200")
        .await
    {
        let hint = did_you_mean(name, all.body.iter().map(|p| p.name.as_str()));
        a.hint.push_str(&hint);
    }
    e
}

/// A refusal of a value the server would refuse too, before anything is sent: the
/// server's code and wording (`body does not match the expected shape: …`).
fn invalid(field: &str, why: impl std::fmt::Display) -> anyhow::Error {
    ApiError {
        code: "INVALID_REQUEST".into(),
        message: format!("body does not match the expected shape: {field}: {why}"),
        request_id: None,
        hint: String::new(),
    }
    .into()
}

/// A role given on the command line (`owner`, `admin`, `member`, `viewer`).
fn role_arg(r: &str) -> Result<w::Role> {
    w::Role::deserialize(Value::from(r)).map_err(|e| invalid("role", e))
}

/// A permission given on the command line (`invoke`, `read_org`, …).
fn permission_arg(p: &str, i: usize) -> Result<w::Permission> {
    w::Permission::deserialize(Value::from(p)).map_err(|e| invalid(&format!("grants[{i}]"), e))
}

/// An optional RFC 3339 time given on the command line as `flag`.
fn time_arg(t: Option<&str>, field: &str) -> Result<Option<time::OffsetDateTime>> {
    t.map(|t| time::serde::rfc3339::deserialize(Value::from(t)).map_err(|e| invalid(field, e)))
        .transpose()
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

fn grants_of(g: &GrantArgs) -> w::Permissions {
    w::Permissions {
        egress: g.egress.clone(),
        kv: g.kv,
        secrets: g.secrets.clone(),
        tools: g.tools.clone(),
    }
}

fn show_install(v: &w::InstallView) {
    let i = &v.install;
    pairs(&[
        ("id", cell(&i.id)),
        ("plugin", cell(&i.plugin)),
        ("version", cell(&i.version)),
        ("previous_version", cell(&i.previous_version)),
        ("enabled", cell(&i.enabled)),
        ("artifact_sha256", cell(&i.artifact_sha256)),
    ]);
    println!("   config: {}", i.config);
    println!("  granted: {}", compact(&i.grants));
    println!("requested: {}", compact(&v.requested));
    println!("  secrets: {}", joined(&v.secret_names));
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
fn grant_flags(g: &w::Permissions, extra_secret: &str) -> String {
    let mut flags = Vec::new();
    flags.extend(g.egress.iter().map(|h| format!("--grant-egress {h}")));
    if g.kv {
        flags.push("--grant-kv".to_string());
    }
    flags.extend(g.secrets.iter().map(|x| format!("--grant-secret {x}")));
    flags.push(format!("--grant-secret {extra_secret}"));
    flags.extend(g.tools.iter().map(|t| format!("--grant-tool {t}")));
    flags.join(" ")
}

/// After a change to an install (`v`, its view): warns about each secret its plugin
/// reads (requested in the manifest's `permissions.secrets`) that the install does
/// not grant, since reading it is refused; and about each granted secret with no
/// value yet (`fresh`: a new install has none; else the install's secrets are
/// listed, and nothing is said if that fails).
async fn secret_warnings(c: &Client, v: &w::InstallView, json: bool, fresh: bool) {
    let declared = &v.secret_names;
    let requested: Vec<String> = v
        .requested
        .secrets
        .iter()
        .filter(|n| declared.is_empty() || declared.contains(n))
        .cloned()
        .collect();
    let grants = &v.install.grants;
    let granted = &grants.secrets;
    let plugin = &v.install.plugin;
    for name in requested.iter().filter(|n| !granted.contains(n)) {
        warn(
            json,
            "SECRET_NOT_GRANTED",
            &format!(
                "{plugin} declares secret '{name}' but this install does not grant it; invocations \
                 that read it are refused. Add it with --grant-secret {name} (`tenantry install \
                 grants {plugin} {}` keeps the other grants)",
                grant_flags(grants, name)
            ),
        );
    }
    if granted.is_empty() {
        return;
    }
    let set: Vec<String> = if fresh {
        Vec::new()
    } else {
        let path = format!("/v1/installs/{}/secrets", seg(&v.install.id.to_string()));
        match c.get::<Vec<w::SecretMeta>>(&path).await {
            Ok(list) => list.body.into_iter().map(|x| x.name).collect(),
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
    let patch = |id: &str, p: w::InstallPatch| {
        let path = format!("/v1/installs/{}", seg(id));
        async move { c.patch::<w::InstallView>(&path, &p).await }
    };
    let r = match cmd {
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
            let body = w::InstallRequest {
                plugin: plugin.clone(),
                version,
                config,
                grants: grants_of(&grants),
                enabled: !disabled,
            };
            let r: Reply<w::InstallView> = match c.post("/v1/installs", &body).await {
                Ok(r) => r,
                Err(e) => return Err(with_registry_hint(c, &plugin, e).await),
            };
            show(json, &r, show_install);
            secret_warnings(c, &r.body, json, true).await;
            return Ok(());
        }
        InstallCmd::List => {
            let r: Reply<Vec<w::Install>> = c.get("/v1/installs").await?;
            show(json, &r, |installs| {
                table(
                    &["id", "plugin", "version", "enabled"],
                    installs
                        .iter()
                        .map(|i| {
                            vec![
                                cell(&i.id),
                                cell(&i.plugin),
                                cell(&i.version),
                                cell(&i.enabled),
                            ]
                        })
                        .collect(),
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
            let config = Some(config_arg(&config)?);
            patch(
                &id,
                w::InstallPatch {
                    config,
                    ..Default::default()
                },
            )
            .await?
        }
        InstallCmd::Grants { install, grants } => {
            let id = install_id(c, &install).await?;
            let r = patch(
                &id,
                w::InstallPatch {
                    grants: Some(grants_of(&grants)),
                    ..Default::default()
                },
            )
            .await?;
            show(json, &r, show_install);
            secret_warnings(c, &r.body, json, false).await;
            return Ok(());
        }
        InstallCmd::RateLimit {
            install,
            per_minute,
        } => {
            let id = install_id(c, &install).await?;
            let limit = match per_minute.as_str() {
                "none" => None,
                n => Some(n.parse::<u32>().map_err(|_| {
                    anyhow!("per_minute must be a whole number of invocations or `none`")
                })?),
            };
            patch(
                &id,
                w::InstallPatch {
                    rate_limit_per_minute: Some(limit),
                    ..Default::default()
                },
            )
            .await?
        }
        InstallCmd::Enable { install } => {
            let id = install_id(c, &install).await?;
            patch(
                &id,
                w::InstallPatch {
                    enabled: Some(true),
                    ..Default::default()
                },
            )
            .await?
        }
        InstallCmd::Disable { install } => {
            let id = install_id(c, &install).await?;
            patch(
                &id,
                w::InstallPatch {
                    enabled: Some(false),
                    ..Default::default()
                },
            )
            .await?
        }
        InstallCmd::Upgrade { install, version } => {
            let id = install_id(c, &install).await?;
            let version = Some(version.unwrap_or_else(|| "*".into()));
            let r: Reply<w::InstallView> = c
                .post(
                    &format!("/v1/installs/{}/version", seg(&id)),
                    &w::ChangeVersion { version },
                )
                .await?;
            show(json, &r, show_install);
            secret_warnings(c, &r.body, json, false).await;
            return Ok(());
        }
        InstallCmd::Rollback { install } => {
            let id = install_id(c, &install).await?;
            let r: Reply<w::InstallView> = c
                .post(
                    &format!("/v1/installs/{}/version", seg(&id)),
                    &w::ChangeVersion { version: None },
                )
                .await?;
            show(json, &r, show_install);
            secret_warnings(c, &r.body, json, false).await;
            return Ok(());
        }
        InstallCmd::Remove { install } => {
            let id = install_id(c, &install).await?;
            let _: Reply<IgnoredAny> = c.delete(&format!("/v1/installs/{}", seg(&id))).await?;
            done(json, "uninstalled; its secrets and data are destroyed");
            return Ok(());
        }
    };
    show(json, &r, show_install);
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
            let body = w::SetSecret {
                value: w::SecretText::from(value),
            };
            let r: Reply<w::SecretMeta> = c
                .put(
                    &format!("/v1/installs/{}/secrets/{}", seg(&id), seg(&name)),
                    &body,
                )
                .await?;
            show(json, &r, |m| {
                println!("secret '{}' set (key version {})", m.name, m.key_version)
            });
        }
        SecretCmd::Delete { install, name } => {
            let c = &Client::connect(args)?;
            let id = install_id(c, &install).await?;
            let _: Reply<IgnoredAny> = c
                .delete(&format!("/v1/installs/{}/secrets/{}", seg(&id), seg(&name)))
                .await?;
            done(json, "secret deleted");
        }
        SecretCmd::List { install } => {
            let c = &Client::connect(args)?;
            let id = install_id(c, &install).await?;
            let r: Reply<Vec<w::SecretMeta>> =
                c.get(&format!("/v1/installs/{}/secrets", seg(&id))).await?;
            show(json, &r, |secrets| {
                table(
                    &["name", "key_version", "updated_at"],
                    secrets
                        .iter()
                        .map(|m| vec![cell(&m.name), cell(&m.key_version), rfc3339(m.updated_at)])
                        .collect(),
                )
            });
        }
    }
    Ok(())
}

pub async fn audit(cmd: AuditCmd, c: &Client, json: bool) -> Result<()> {
    let (action, target, limit, operator) = match cmd {
        AuditCmd::List {
            action,
            target,
            limit,
            operator,
        } => (action, target, limit, operator),
        AuditCmd::Verify {
            org,
            all_orgs,
            operator,
        } => return audit_verify(c, json, org, all_orgs, operator).await,
        AuditCmd::Checkpoint { org, operator } => {
            let path = match (org, operator) {
                (Some(o), _) => format!("/v1/orgs/{}/audit/checkpoint", seg(&org_id(c, &o).await?)),
                (None, true) => "/v1/operator/audit/checkpoint".into(),
                (None, false) => "/v1/audit/checkpoint".into(),
            };
            let r: Reply<w::CheckpointResult> = c.post(&path, &serde_json::json!({})).await?;
            show(json, &r, |v| match &v.checkpoint {
                Some(cp) => pairs(&[
                    ("seq", cell(&cp.seq)),
                    ("row_hash", cp.row_hash.clone()),
                    ("key", cp.key.clone()),
                    ("signature", cp.signature.clone()),
                ]),
                None => println!(
                    "nothing new to checkpoint (the trail is empty or ends in a checkpoint)"
                ),
            });
            return Ok(());
        }
    };
    let trail = if operator {
        "/v1/operator/audit"
    } else {
        "/v1/audit"
    };
    let mut q = format!("{trail}?limit={limit}");
    if let Some(a) = action {
        q.push_str(&format!("&action={}", seg(&a)));
    }
    if let Some(t) = target {
        q.push_str(&format!("&target={}", seg(&t)));
    }
    let r: Reply<Vec<w::AuditEntry>> = c.get(&q).await?;
    show(json, &r, |entries| {
        table(
            &["seq", "at", "actor_kind", "action", "target", "outcome"],
            entries
                .iter()
                .map(|e| {
                    vec![
                        cell(&e.seq),
                        rfc3339(e.at),
                        cell(&e.actor_kind),
                        cell(&e.action),
                        cell(&e.target),
                        cell(&e.outcome),
                    ]
                })
                .collect(),
        )
    });
    Ok(())
}

pub async fn operator_key(cmd: OperatorKeyCmd, c: &Client, json: bool) -> Result<()> {
    let show_key = |k: &w::OperatorKey| {
        pairs(&[
            ("id", cell(&k.id)),
            ("name", cell(&k.name)),
            ("created_at", rfc3339(k.created_at)),
            ("expires_at", rfc3339_opt(k.expires_at)),
            ("revoked_at", rfc3339_opt(k.revoked_at)),
        ])
    };
    match cmd {
        OperatorKeyCmd::Create { name, expires_at } => {
            let expires_at = expires_at
                .map(|t| {
                    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                        .with_context(|| format!("--expires-at {t}: not an RFC 3339 time"))
                })
                .transpose()?;
            let r: Reply<w::CreatedOperatorKey> = c
                .post(
                    "/v1/operator/keys",
                    &w::CreateOperatorKey { name, expires_at },
                )
                .await?;
            show(json, &r, |k| {
                show_key(&k.record);
                println!("key: {}", k.key.expose());
                eprintln!("the key is shown only now: keep it in a secret store");
            });
        }
        OperatorKeyCmd::List => {
            let r: Reply<Vec<w::OperatorKey>> = c.get("/v1/operator/keys").await?;
            show(json, &r, |keys| {
                table(
                    &["id", "name", "created_at", "expires_at", "revoked_at"],
                    keys.iter()
                        .map(|k| {
                            vec![
                                cell(&k.id),
                                cell(&k.name),
                                rfc3339(k.created_at),
                                rfc3339_opt(k.expires_at),
                                rfc3339_opt(k.revoked_at),
                            ]
                        })
                        .collect(),
                )
            });
        }
        OperatorKeyCmd::Revoke { key_id } => {
            let r: Reply<w::OperatorKey> = c
                .delete(&format!("/v1/operator/keys/{}", seg(&key_id)))
                .await?;
            show(json, &r, show_key);
        }
    }
    Ok(())
}

pub async fn master_key(cmd: MasterKeyCmd, client: &ClientArgs, json: bool) -> Result<()> {
    match cmd {
        MasterKeyCmd::New { output } => {
            let (_, created) = tenantry_crypto::MasterKey::load_or_create(&output)
                .with_context(|| format!("creating {}", output.display()))?;
            if !created {
                bail!(
                    "{} already exists; nothing was written (pick a new file)",
                    output.display()
                );
            }
            if json {
                println!("{}", json!({"ok": true, "path": output}));
            } else {
                println!(
                    "wrote a new master key to {} (mode 0600); copy it to every node, then follow docs/operations.md, 'Rotating keys'",
                    output.display()
                );
            }
        }
        MasterKeyCmd::Rotate { batch } => {
            let c = Client::connect(client)?;
            let mut total = w::MasterKeyRotation {
                orgs_checked: 0,
                vault_files_resealed: 0,
                org_keys_rotated: 0,
                remaining: 0,
            };
            loop {
                let r: Reply<w::MasterKeyRotation> = c
                    .post(
                        &format!("/v1/operator/master-key/rotate?limit={batch}"),
                        &json!({}),
                    )
                    .await?;
                let step = r.body;
                total.orgs_checked = step.orgs_checked;
                total.vault_files_resealed += step.vault_files_resealed;
                total.org_keys_rotated += step.org_keys_rotated;
                total.remaining = step.remaining;
                if !json {
                    eprintln!(
                        "resealed {} vault files, rotated {} org keys; {} orgs remaining",
                        total.vault_files_resealed, total.org_keys_rotated, step.remaining
                    );
                }
                if step.remaining == 0 {
                    break;
                }
            }
            if json {
                println!("{}", serde_json::to_string(&total)?);
            } else {
                println!(
                    "done: nothing needs the old master key; remove previous_master_key_file from every node's configuration, restart them, then destroy the old key"
                );
            }
        }
    }
    Ok(())
}

pub async fn breakglass(cmd: BreakglassCmd, c: &Client, json: bool) -> Result<()> {
    let show_grant = |g: &w::BreakGlassGrant| {
        pairs(&[
            ("id", cell(&g.id)),
            ("ticket", g.ticket.clone()),
            ("access", g.access.clone()),
            ("expires_at", rfc3339(g.expires_at)),
            ("open", cell(&g.open)),
            ("pending", cell(&g.pending)),
        ]);
    };
    match cmd {
        BreakglassCmd::Open {
            org,
            ticket,
            reason,
            ttl,
            write,
        } => {
            let ttl_seconds = u32::try_from(parse_duration(&ttl)?.whole_seconds())
                .map_err(|_| anyhow!("--ttl {ttl} is too long"))?;
            let org = org_id(c, &org).await?;
            let r: Reply<w::OpenedBreakGlass> = c
                .post(
                    &format!("/v1/orgs/{}/breakglass", seg(&org)),
                    &w::OpenBreakGlass {
                        ticket,
                        reason,
                        ttl_seconds,
                        write,
                    },
                )
                .await?;
            show(json, &r, |o| {
                println!(
                    "Break-glass token (shown once; every request with it is audited in the org):\n\n    export TENANTRY_API_KEY={}\n",
                    o.token.expose()
                );
                show_grant(&o.grant);
            });
        }
        BreakglassCmd::List { org } => {
            let path = match org {
                Some(o) => format!("/v1/orgs/{}/breakglass", seg(&org_id(c, &o).await?)),
                None => "/v1/breakglass".into(),
            };
            let r: Reply<Vec<w::BreakGlassGrant>> = c.get(&path).await?;
            show(json, &r, |grants| {
                table(
                    &[
                        "id",
                        "ticket",
                        "access",
                        "opened_at",
                        "expires_at",
                        "open",
                        "reason",
                    ],
                    grants
                        .iter()
                        .map(|g| {
                            vec![
                                cell(&g.id),
                                g.ticket.clone(),
                                g.access.clone(),
                                rfc3339(g.opened_at),
                                rfc3339(g.expires_at),
                                cell(&g.open),
                                g.reason.clone(),
                            ]
                        })
                        .collect(),
                )
            });
        }
        BreakglassCmd::Approve { id, org } => {
            let org = org_id(c, &org).await?;
            let r: Reply<w::BreakGlassGrant> = c
                .post(
                    &format!("/v1/orgs/{}/breakglass/{}/approve", seg(&org), seg(&id)),
                    &serde_json::json!({}),
                )
                .await?;
            show(json, &r, show_grant);
        }
        BreakglassCmd::Close { id, org } => {
            let r: Reply<w::BreakGlassGrant> = match org {
                Some(o) => {
                    let org = org_id(c, &o).await?;
                    c.post(
                        &format!("/v1/orgs/{}/breakglass/{}/close", seg(&org), seg(&id)),
                        &serde_json::json!({}),
                    )
                    .await?
                }
                None => c.delete(&format!("/v1/breakglass/{}", seg(&id))).await?,
            };
            show(json, &r, show_grant);
        }
    }
    Ok(())
}

/// `audit verify`: one org (yours, or `--org` for an operator) or every org.
async fn audit_verify(
    c: &Client,
    json: bool,
    org: Option<String>,
    all: bool,
    operator: bool,
) -> Result<()> {
    let operator_log = || {
        (
            "(operator)".to_string(),
            "/v1/operator/audit/verify".to_string(),
        )
    };
    let targets: Vec<(String, String)> = if all {
        let r: Reply<Vec<w::Org>> = c.get("/v1/orgs").await?;
        r.body
            .into_iter()
            .map(|o| {
                let id = o.id.to_string();
                (o.name, format!("/v1/orgs/{}/audit/verify", seg(&id)))
            })
            .chain([operator_log()])
            .collect()
    } else if operator {
        vec![operator_log()]
    } else if let Some(o) = org {
        let id = org_id(c, &o).await?;
        vec![(o, format!("/v1/orgs/{}/audit/verify", seg(&id)))]
    } else {
        vec![("(your org)".into(), "/v1/audit/verify".into())]
    };
    let mut reports = Vec::with_capacity(targets.len());
    for (name, path) in targets {
        let r: Reply<w::AuditVerification> = c.get(&path).await?;
        reports.push((name, r));
    }
    let broken: Vec<String> = reports
        .iter()
        .filter(|(_, r)| !r.body.intact)
        .map(|(n, _)| n.clone())
        .collect();
    let all_json = serde_json::Value::Array(reports.iter().map(|(_, r)| r.json.clone()).collect());
    let reply = Reply {
        json: if all {
            all_json
        } else {
            reports[0].1.json.clone()
        },
        body: (),
    };
    show(json, &reply, |_| {
        table(
            &[
                "org",
                "intact",
                "chained",
                "legacy",
                "head",
                "checkpoints",
                "first bad entry",
            ],
            reports
                .iter()
                .map(|(name, r)| {
                    let v = &r.body;
                    vec![
                        name.clone(),
                        cell(&v.intact),
                        cell(&v.chained),
                        cell(&v.legacy),
                        v.head_seq.map(|s| s.to_string()).unwrap_or_default(),
                        cell(&v.checkpoints),
                        v.first_bad
                            .as_ref()
                            .map(|b| format!("{} ({}): {}", b.seq, b.code, b.message))
                            .unwrap_or_default(),
                    ]
                })
                .collect(),
        )
    });
    if !broken.is_empty() {
        bail!("the audit trail of {} is broken", broken.join(", "));
    }
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
    let body = w::InvokeRequest {
        action: action.to_string(),
        input,
    };
    let r: Reply<w::InvokeResponse> = c
        .post(&format!("/v1/installs/{}/invoke", seg(&id)), &body)
        .await?;
    show(json, &r, |v| {
        let st = &v.stats;
        println!("outcome: {}", cell(&v.outcome));
        if let Some(output) = v.output.as_ref().filter(|o| !o.is_null()) {
            println!(
                "{}",
                serde_json::to_string_pretty(output).unwrap_or_default()
            );
        }
        if let Some(e) = &v.error {
            println!("error: {}", e.message);
        }
        println!(
            "({} µs, {} fuel, {} bytes peak memory, {} host calls)",
            st.duration_us, st.fuel, st.peak_memory_bytes, st.host_calls
        );
    });
    if r.body.outcome != w::Outcome::Ok {
        bail!("the invocation ended with {}", cell(&r.body.outcome));
    }
    Ok(())
}

pub async fn exec(c: &Client, json: bool, code: String, input: &str) -> Result<()> {
    let input = json_arg(input, "--input")?;
    let body = w::ExecuteRequest {
        language: w::ScriptLanguage::Javascript,
        code,
        input,
    };
    let r: Reply<w::ExecutionResult> = c.post("/v1/executions", &body).await?;
    show(json, &r, |v| {
        for l in &v.logs {
            eprintln!("[{}] {}", l.level, l.message);
        }
        if v.logs_dropped > 0 {
            eprintln!("({} more log lines not kept)", v.logs_dropped);
        }
        if let Some(value) = &v.value {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        }
        if let Some(e) = &v.error {
            let at = match (e.line, e.column) {
                (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
                (Some(l), None) => format!(" (line {l})"),
                _ => String::new(),
            };
            eprintln!("error {}{at}: {}", e.code, e.message);
        }
        eprintln!(
            "({} µs, {} tool calls, execution {})",
            v.stats.duration_us,
            v.stats.tool_call_count,
            cell(&v.execution_id)
        );
    });
    if let Some(e) = &r.body.error {
        bail!("the script failed with {}", e.code);
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
            let r: Reply<Vec<w::UsageEvent>> = c.get(&format!("/v1/usage{q}")).await?;
            show(json, &r, |events| {
                table(
                    &[
                        "id",
                        "at",
                        "plugin",
                        "action",
                        "outcome",
                        "duration_us",
                        "fuel",
                        "host_calls",
                    ],
                    events
                        .iter()
                        .map(|e| {
                            vec![
                                cell(&e.id),
                                rfc3339(e.at),
                                cell(&e.plugin),
                                cell(&e.action),
                                cell(&e.outcome),
                                cell(&e.duration_us),
                                cell(&e.fuel),
                                cell(&e.host_calls),
                            ]
                        })
                        .collect(),
                )
            });
        }
        UsageCmd::Summary { range, group_by } => {
            let q = query(&[
                ("group_by", Some(group_by)),
                ("since", range.since),
                ("until", range.until),
                ("install_id", opt_install(c, range.install_id).await?),
            ]);
            let r: Reply<w::UsageSummary> = c.get(&format!("/v1/usage/summary{q}")).await?;
            show(json, &r, |summary| {
                table(
                    &[
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
                    ],
                    summary
                        .rows
                        .iter()
                        .map(|u| {
                            vec![
                                cell(&u.key),
                                cell(&u.count),
                                cell(&u.errors),
                                cell(&u.p50_duration_ms),
                                cell(&u.p95_duration_ms),
                                cell(&u.p99_duration_ms),
                                cell(&u.fuel),
                                cell(&u.host_calls),
                                cell(&u.bytes_in),
                                cell(&u.bytes_out),
                            ]
                        })
                        .collect(),
                )
            });
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
            let res = c.get_raw(&format!("/v1/usage/export{q}")).await?;
            download(res, output, json, |_| Ok(())).await?;
        }
    }
    Ok(())
}

/// Writes a streamed export to `output` (through `<output>.partial`, renamed once
/// complete) or to standard output. `check` sees the stream's last bytes (up to 8
/// KiB) before a file is renamed into place.
async fn download(
    mut res: reqwest::Response,
    output: Option<std::path::PathBuf>,
    json: bool,
    check: impl Fn(&[u8]) -> Result<()>,
) -> Result<()> {
    const TAIL: usize = 8 * 1024;
    let mut tail: Vec<u8> = Vec::new();
    let mut keep = |chunk: &[u8]| {
        tail.extend_from_slice(chunk);
        if tail.len() > 2 * TAIL {
            tail.drain(..tail.len() - TAIL);
        }
    };
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
                keep(&chunk);
            }
            f.sync_all().context("flushing the export")?;
            check(&tail)?;
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
                keep(&chunk);
            }
            std::io::Write::flush(&mut out).context("writing stdout")?;
            check(&tail)?;
        }
    }
    Ok(())
}

/// An org export is complete when its last line is the `end` line.
fn export_is_complete(tail: &[u8]) -> Result<()> {
    let last = tail
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    match serde_json::from_slice::<w::ExportLine>(last) {
        Ok(w::ExportLine::End { .. }) => Ok(()),
        _ => bail!("the export is incomplete (it does not end with its 'end' line); run it again"),
    }
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
