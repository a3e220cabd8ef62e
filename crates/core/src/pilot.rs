//! Pilot guardrails: what the operator lets the whole platform do while it runs a
//! limited pilot (a few orgs, a vetted set of plugins and connectors).
//!
//! Each part is off when unset. The service checks them where an org is created
//! ([`PilotPolicy::check_new_org`]), where a plugin is installed or moved to another
//! version ([`PilotPolicy::check_install`]); the sandbox's outbound HTTP checks every
//! request's host against [`PilotPolicy::egress`] as well as the install's grants,
//! so narrowing the list applies to installs made before.

use serde::{Deserialize, Serialize};

use crate::manifest::{host_pattern_covers, pattern_covers_pattern, validate_host_pattern};
use crate::{Error, ErrorCode, Result};

/// The operator's pilot policy (`[pilot]` in `tenantry.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PilotPolicy {
    /// At most this many orgs.
    #[serde(default)]
    pub max_orgs: Option<u64>,
    /// Plugins orgs may install: `@scope/name`, or `@scope/*` for every plugin of a
    /// publisher. `None`: any published plugin.
    #[serde(default)]
    pub plugins: Option<Vec<String>>,
    /// Hosts plugins may reach (`api.example.com`, `*.example.com`), whatever an
    /// install was granted. `None`: no cap beyond each install's grants.
    #[serde(default)]
    pub egress: Option<Vec<String>>,
}

fn refused(what: &str, message: String) -> Error {
    Error::new(ErrorCode::PolicyDenied, message).with_details(serde_json::json!({"policy": what}))
}

impl PilotPolicy {
    /// Checks the policy's own patterns (at startup).
    pub fn validate(&self) -> Result<()> {
        for p in self.plugins.iter().flatten() {
            let ok = p
                .strip_prefix('@')
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(scope, name)| {
                    let ident = |s: &str| {
                        !s.is_empty()
                            && s.bytes().all(|b| {
                                b.is_ascii_lowercase()
                                    || b.is_ascii_digit()
                                    || b == b'-'
                                    || b == b'_'
                            })
                    };
                    ident(scope) && (name == "*" || ident(name))
                });
            if !ok {
                return Err(Error::invalid(format!(
                    "pilot.plugins entry '{p}' is not valid; use '@scope/name' or '@scope/*'"
                )));
            }
        }
        for h in self.egress.iter().flatten() {
            validate_host_pattern(h)
                .map_err(|e| Error::invalid(format!("pilot.egress: {}", e.message)))?;
        }
        Ok(())
    }

    /// Whether orgs may install `plugin` (`@scope/name`).
    pub fn allows_plugin(&self, plugin: &str) -> bool {
        let Some(list) = &self.plugins else {
            return true;
        };
        list.iter().any(|p| match p.strip_suffix("/*") {
            Some(scope) => plugin
                .strip_prefix(scope)
                .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1),
            None => p == plugin,
        })
    }

    /// Whether a request to `host` is within the platform's connector list.
    pub fn allows_host(&self, host: &str) -> bool {
        self.egress
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| host_pattern_covers(p, host)))
    }

    /// Refuses an org beyond `max_orgs` (`existing`: how many there are).
    pub fn check_new_org(&self, existing: u64) -> Result<()> {
        match self.max_orgs {
            Some(max) if existing >= max => Err(refused(
                "max_orgs",
                format!(
                    "this platform runs a pilot limited to {max} orgs; the operator can raise pilot.max_orgs"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses `plugin` outside the plugin list: at install, and at every invocation
    /// (so narrowing the list stops installs made before).
    pub fn check_plugin(&self, plugin: &str) -> Result<()> {
        if self.allows_plugin(plugin) {
            return Ok(());
        }
        Err(refused(
            "plugins",
            format!(
                "{plugin} is not on this platform's list of plugins orgs may use; ask the operator to add it to pilot.plugins"
            ),
        ))
    }

    /// Refuses installing `plugin` outside the plugin list, or egress grants outside
    /// the connector list (each grant must be within one entry).
    pub fn check_install(&self, plugin: &str, egress_grants: &[String]) -> Result<()> {
        self.check_plugin(plugin)?;
        if let Some(list) = &self.egress
            && let Some(g) = egress_grants
                .iter()
                .find(|g| !list.iter().any(|p| pattern_covers_pattern(p, g)))
        {
            return Err(refused(
                "egress",
                format!(
                    "egress to '{g}' is outside this platform's connector list; grant only hosts within pilot.egress"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PilotPolicy {
        PilotPolicy {
            max_orgs: Some(2),
            plugins: Some(vec!["@examples/*".into(), "@acme/weather".into()]),
            egress: Some(vec!["api.github.com".into(), "*.slack.com".into()]),
        }
    }

    #[test]
    fn the_plugin_list_matches_whole_scopes_and_exact_names_only() {
        let p = policy();
        assert!(p.allows_plugin("@examples/echo"));
        assert!(p.allows_plugin("@acme/weather"));
        assert!(!p.allows_plugin("@acme/weather2"));
        assert!(!p.allows_plugin("@examples-evil/echo"));
        assert!(!p.allows_plugin("@examples/"));
        assert!(PilotPolicy::default().allows_plugin("@any/thing"));
    }

    #[test]
    fn egress_grants_must_fall_within_the_connector_list() {
        let p = policy();
        let ok = |g: &[&str]| {
            p.check_install(
                "@examples/echo",
                &g.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert!(ok(&["api.github.com", "hooks.slack.com", "*.eu.slack.com"]).is_ok());
        for bad in ["github.com", "*.github.com", "slack.com", "*.com"] {
            let e = ok(&[bad]).expect_err(bad);
            assert_eq!(e.code, ErrorCode::PolicyDenied, "{bad}");
        }
        assert!(p.allows_host("hooks.slack.com") && !p.allows_host("evil.example"));
        assert!(PilotPolicy::default().allows_host("evil.example"));
    }

    #[test]
    fn org_cap_and_pattern_validation() {
        let p = policy();
        assert!(p.check_new_org(1).is_ok());
        assert_eq!(
            p.check_new_org(2).unwrap_err().code,
            ErrorCode::PolicyDenied
        );
        assert!(p.validate().is_ok());
        for bad in ["examples/*", "@Examples/x", "@x/", "@x/y/z", "@x/*y"] {
            let p = PilotPolicy {
                plugins: Some(vec![bad.into()]),
                ..Default::default()
            };
            assert!(p.validate().is_err(), "{bad}");
        }
        let p = PilotPolicy {
            egress: Some(vec!["https://x.com".into()]),
            ..Default::default()
        };
        assert!(p.validate().is_err());
    }
}
