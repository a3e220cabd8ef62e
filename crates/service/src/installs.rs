//! Installs (an org's instances of plugin versions) and agent bindings.
//!
//! Installing resolves the version, re-verifies it, validates config against the
//! manifest's schema, checks grants ⊆ requested permissions, and checks that every
//! dependency is installed in the same org at a matching version, all before the
//! write. Uninstalling refuses while another install depends on the plugin and
//! destroys the install's secrets, kv data and bindings.

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tenantry_core::manifest::{Grants, Manifest, Permissions};
use tenantry_core::{AgentId, Error, ErrorCode, InstallId, Permission, Result, TenantScope};
use tenantry_store::{BindingRecord, InstallRecord, Seen, TenantTx};

use crate::limits::check_standing;
use crate::{RequestCtx, Service, audit_entry, registry};

/// An install with what its manifest requested next to what was granted.
#[derive(Debug)]
pub struct InstallView {
    pub install: InstallRecord,
    pub requested: Permissions,
    /// Secret names the manifest declares (values are never shown).
    pub secret_names: Vec<String>,
}

/// What to install.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    pub plugin: String,
    /// Exact version or semver requirement; latest if `None`.
    pub version: Option<String>,
    pub config: Value,
    pub grants: Grants,
    pub enabled: bool,
}

async fn manifest_of(svc: &Service, plugin: &str, version: &str) -> Result<Manifest> {
    let v = svc
        .control
        .get_version(plugin, version)
        .await?
        .ok_or_else(Error::internal)?;
    serde_json::from_str(&v.manifest_json).map_err(|_| Error::internal())
}

fn view(install: InstallRecord, m: &Manifest) -> InstallView {
    InstallView {
        install,
        requested: m.permissions.clone(),
        secret_names: m.secret_fields().into_iter().map(String::from).collect(),
    }
}

/// Checks every dependency of `m` is installed in this org at a matching version.
async fn check_dependencies(tx: &mut Box<dyn TenantTx>, m: &Manifest) -> Result<()> {
    let mut missing = Vec::new();
    for (dep, req) in &m.dependencies {
        let req = semver::VersionReq::parse(req).map_err(|_| Error::internal())?;
        let ok = tx
            .get_install_by_plugin(dep)
            .await?
            .and_then(|i| semver::Version::parse(&i.version).ok())
            .is_some_and(|v| req.matches(&v));
        if !ok {
            missing.push(format!("{dep} {req}"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::DependencyMissing,
            format!("install these first: {}", missing.join(", ")),
        ))
    }
}

/// Which plugins each install of the org depends on (by plugin name), with
/// `changed`'s dependencies taken from the manifest it is about to get.
async fn dependency_graph(
    svc: &Service,
    tx: &mut Box<dyn TenantTx>,
    changed: Option<&Manifest>,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut graph = BTreeMap::new();
    for i in tx.list_installs().await? {
        if changed.is_some_and(|m| m.name == i.plugin) {
            continue;
        }
        let m = manifest_of(svc, &i.plugin, &i.version).await?;
        graph.insert(i.plugin, m.dependencies.into_keys().collect());
    }
    if let Some(m) = changed {
        graph.insert(m.name.clone(), m.dependencies.keys().cloned().collect());
    }
    Ok(graph)
}

/// A dependency path `from → … → to`, if there is one.
fn dependency_path(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        for next in graph.get(at).into_iter().flatten() {
            if next == to {
                let mut path = vec![to.to_string(), at.to_string()];
                let mut cur = at;
                while cur != from {
                    cur = came_from[cur];
                    path.push(cur.to_string());
                }
                path.reverse();
                return Some(path);
            }
            if next != from && !came_from.contains_key(next.as_str()) {
                came_from.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Refuses a manifest whose dependencies would lead back to itself through the org's
/// installs (an org with a cycle could uninstall neither side).
async fn check_no_cycle(svc: &Service, tx: &mut Box<dyn TenantTx>, m: &Manifest) -> Result<()> {
    let graph = dependency_graph(svc, tx, Some(m)).await?;
    match dependency_path(&graph, &m.name, &m.name) {
        None => Ok(()),
        Some(path) => Err(Error::new(
            ErrorCode::DependencyCycle,
            format!(
                "{} {} would make a dependency cycle: {}; choose a version of one of them without that dependency",
                m.name,
                m.version,
                path.join(" → ")
            ),
        )),
    }
}

pub async fn install(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    req: &InstallRequest,
) -> Result<InstallView> {
    scope.require(Permission::ManageInstalls)?;
    svc.settings
        .pilot
        .check_install(&req.plugin, &req.grants.egress)?;
    let version = registry::resolve(svc, &req.plugin, req.version.as_deref()).await?;
    let manifest = registry::verify_for_use(svc, &version).await?.manifest;
    manifest.validate_config(&req.config)?;
    manifest.check_grants(&req.grants)?;
    let mut tx = svc.write(scope).await?;
    if tx.get_install_by_plugin(&req.plugin).await?.is_some() {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "{} is already installed in this org; use upgrade or configure",
                req.plugin
            ),
        ));
    }
    check_dependencies(&mut tx, &manifest).await?;
    check_no_cycle(svc, &mut tx, &manifest).await?;
    let tier = svc.tier_of(scope.org_id(), Seen::NOTHING).await?;
    let installed = tx.list_installs().await?.len() as u64;
    check_standing(
        "plugins_installed",
        installed,
        1,
        u64::from(tier.plugins_installed),
        "uninstall a plugin first or ask the operator for a higher tier",
    )?;
    let now = tenantry_core::now();
    let install = InstallRecord {
        id: InstallId::new(),
        plugin: req.plugin.clone(),
        version: version.version.clone(),
        previous_version: None,
        artifact_sha256: version.artifact_sha256.clone(),
        config: req.config.clone(),
        grants: req.grants.clone(),
        enabled: req.enabled,
        rate_limit_per_minute: None,
        created_at: now,
        updated_at: now,
    };
    tx.insert_install(&install).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "install.create",
        install.id.to_string(),
        json!({"plugin": install.plugin, "version": install.version, "grants": install.grants}),
    );
    svc.finish(tx, entry).await?;
    Ok(view(install, &manifest))
}

/// The org's installs; an agent without `read_org` but with `invoke` sees the installs
/// bound to it (the ones it may invoke), so it can name them.
pub async fn list(svc: &Service, scope: &TenantScope) -> Result<Vec<InstallRecord>> {
    let agent_invoking = scope.agent_id().filter(|_| {
        !scope.permissions().contains(&Permission::ReadOrg)
            && scope.permissions().contains(&Permission::Invoke)
    });
    let Some(agent) = agent_invoking else {
        scope.require(Permission::ReadOrg)?;
        return Ok(svc.read(scope).await?.list_installs().await?);
    };
    let mut tx = svc.read(scope).await?;
    let bound: BTreeSet<InstallId> = tx
        .list_bindings()
        .await?
        .into_iter()
        .filter(|b| b.agent_id == agent)
        .map(|b| b.install_id)
        .collect();
    Ok(tx
        .list_installs()
        .await?
        .into_iter()
        .filter(|i| bound.contains(&i.id))
        .collect())
}

pub async fn get(svc: &Service, scope: &TenantScope, id: InstallId) -> Result<InstallView> {
    scope.require(Permission::ReadOrg)?;
    let install = svc
        .read(scope)
        .await?
        .get_install(id)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    let m = manifest_of(svc, &install.plugin, &install.version).await?;
    Ok(view(install, &m))
}

/// Changes to an install's configuration. Absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct InstallPatch {
    pub config: Option<Value>,
    pub grants: Option<Grants>,
    pub enabled: Option<bool>,
    /// The install's own invocation rate limit per minute (the tier's applies when it
    /// is lower); `Some(None)` removes it.
    pub rate_limit_per_minute: Option<Option<u32>>,
}

pub async fn update(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    id: InstallId,
    patch: &InstallPatch,
) -> Result<InstallView> {
    scope.require(Permission::ManageInstalls)?;
    let mut tx = svc.write(scope).await?;
    let mut install = tx
        .get_install(id)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    let m = manifest_of(svc, &install.plugin, &install.version).await?;
    if let Some(c) = &patch.config {
        m.validate_config(c)?;
        install.config = c.clone();
    }
    if let Some(g) = &patch.grants {
        m.check_grants(g)?;
        svc.settings
            .pilot
            .check_install(&install.plugin, &g.egress)?;
        install.grants = g.clone();
    }
    if let Some(e) = patch.enabled {
        install.enabled = e;
    }
    if let Some(limit) = patch.rate_limit_per_minute {
        if limit == Some(0) {
            return Err(Error::invalid(
                "rate_limit_per_minute must be at least 1; disable the install to stop it, or send null to use the org's limit",
            ));
        }
        install.rate_limit_per_minute = limit;
    }
    install.updated_at = tenantry_core::now();
    tx.update_install(&install).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "install.update",
        id.to_string(),
        json!({"config_changed": patch.config.is_some(), "grants": patch.grants, "enabled": patch.enabled, "rate_limit_per_minute": patch.rate_limit_per_minute}),
    );
    svc.finish(tx, entry).await?;
    Ok(view(install, &m))
}

/// Moves an install to another version (higher = upgrade, lower = rollback). The
/// current config and grants must be valid for the target version's manifest.
/// `None` rolls back to the previous version.
pub async fn change_version(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    id: InstallId,
    target: Option<&str>,
) -> Result<InstallView> {
    scope.require(Permission::ManageInstalls)?;
    let current = svc
        .read(scope)
        .await?
        .get_install(id)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    let target = match target {
        Some(t) => t.to_string(),
        None => current.previous_version.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::Conflict,
                "this install has no previous version to roll back to",
            )
        })?,
    };
    svc.settings
        .pilot
        .check_install(&current.plugin, &current.grants.egress)?;
    let version = registry::resolve(svc, &current.plugin, Some(&target)).await?;
    let manifest = registry::verify_for_use(svc, &version).await?.manifest;
    manifest.validate_config(&current.config)?;
    manifest.check_grants(&current.grants)?;
    let mut tx = svc.write(scope).await?;
    let mut install = tx
        .get_install(id)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    if install.version == version.version {
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("the install is already at {}", version.version),
        ));
    }
    check_dependencies(&mut tx, &manifest).await?;
    check_no_cycle(svc, &mut tx, &manifest).await?;
    let from = std::mem::replace(&mut install.version, version.version.clone());
    install.previous_version = Some(from.clone());
    install.artifact_sha256 = version.artifact_sha256.clone();
    install.updated_at = tenantry_core::now();
    tx.update_install(&install).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "install.change_version",
        id.to_string(),
        json!({"from": from, "to": install.version}),
    );
    svc.finish(tx, entry).await?;
    Ok(view(install, &manifest))
}

/// Uninstalls: refused while another install depends on this plugin. Destroys the
/// install's secrets, kv data and bindings in the same transaction.
pub async fn uninstall(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    id: InstallId,
) -> Result<()> {
    scope.require(Permission::ManageInstalls)?;
    let mut tx = svc.write(scope).await?;
    let install = tx
        .get_install(id)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    // A dependent blocks the uninstall, unless it is also a dependency of this
    // install: a cycle (left by an older version of Tenantry) must not trap an org.
    let graph = dependency_graph(svc, &mut tx, None).await?;
    for (other, deps) in &graph {
        if other != &install.plugin
            && deps.contains(&install.plugin)
            && dependency_path(&graph, &install.plugin, other).is_none()
        {
            return Err(Error::new(
                ErrorCode::DependencyInUse,
                format!("{other} depends on {}; uninstall it first", install.plugin),
            ));
        }
    }
    let secrets = tx.delete_secrets_of(id).await?;
    tx.kv_delete_all(id).await?;
    tx.delete_bindings_of_install(id).await?;
    tx.delete_install(id).await?;
    let entry = audit_entry(
        scope,
        ctx,
        "install.delete",
        id.to_string(),
        json!({"plugin": install.plugin, "secrets_destroyed": secrets}),
    );
    svc.finish(tx, entry).await
}

pub async fn bind(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    agent: AgentId,
    install: InstallId,
) -> Result<BindingRecord> {
    scope.require(Permission::ManageInstalls)?;
    let mut tx = svc.write(scope).await?;
    tx.get_agent(agent)
        .await?
        .ok_or_else(|| Error::not_found("agent"))?;
    tx.get_install(install)
        .await?
        .ok_or_else(|| Error::not_found("install"))?;
    let b = BindingRecord {
        agent_id: agent,
        install_id: install,
        created_at: tenantry_core::now(),
    };
    tx.insert_binding(&b)
        .await
        .map_err(|e| crate::members::conflict(e, "that agent is already bound to that install"))?;
    svc.finish(
        tx,
        audit_entry(
            scope,
            ctx,
            "binding.create",
            install.to_string(),
            json!({"agent_id": agent}),
        ),
    )
    .await?;
    Ok(b)
}

pub async fn unbind(
    svc: &Service,
    scope: &TenantScope,
    ctx: &RequestCtx,
    agent: AgentId,
    install: InstallId,
) -> Result<()> {
    scope.require(Permission::ManageInstalls)?;
    let mut tx = svc.write(scope).await?;
    if !tx.delete_binding(agent, install).await? {
        return Err(Error::not_found("binding"));
    }
    svc.finish(
        tx,
        audit_entry(
            scope,
            ctx,
            "binding.delete",
            install.to_string(),
            json!({"agent_id": agent}),
        ),
    )
    .await
}

pub async fn bindings(svc: &Service, scope: &TenantScope) -> Result<Vec<BindingRecord>> {
    scope.require(Permission::ReadOrg)?;
    Ok(svc.read(scope).await?.list_bindings().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn a_dependency_cycle_is_found_with_its_path() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        assert_eq!(
            dependency_path(&g, "a", "a"),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert_eq!(dependency_path(&g, "d", "d"), None);
        let acyclic = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(dependency_path(&acyclic, "a", "a"), None);
        assert_eq!(
            dependency_path(&acyclic, "a", "c"),
            Some(vec!["a".into(), "c".into()])
        );
    }
}
