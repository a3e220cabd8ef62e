//! The plugin manifest: what a plugin is, what it exposes, what it asks for.
//!
//! The format is documented in `docs/manifest.md` with a JSON Schema in
//! `docs/manifest.schema.json`. Validation here is the single source of truth: the
//! registry runs it before it stores a version, installs run [`Manifest::validate_config`]
//! and [`Manifest::check_grants`] before they write.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, ErrorCode, Result, clip};

/// Largest manifest accepted, in bytes of JSON.
pub const MAX_MANIFEST_BYTES: usize = 256 * 1024;

/// A plugin manifest (`tenantry.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `@scope/name`, lowercase.
    pub name: String,
    /// Semantic version of this release.
    pub version: String,
    pub description: String,
    /// The publisher's registered name; must be the signer.
    pub publisher: String,
    /// Free-form tags used by search.
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub actions: Vec<ActionSpec>,
    /// JSON Schema of the install config. Properties with `"secret": true` are
    /// secrets: they are set with the secrets API, never in config.
    #[serde(default = "empty_object_schema")]
    pub config_schema: Value,
    #[serde(default)]
    pub permissions: Permissions,
    /// Other plugins this one needs installed in the same org: name → semver requirement.
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    /// Markdown documentation.
    #[serde(default)]
    pub docs: String,
}

/// One exported action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the action's input.
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
}

/// What a plugin asks to be allowed to do. An install's [`Grants`] are a subset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Hosts for outbound HTTP: exact (`api.example.com`) or suffix (`*.example.com`).
    #[serde(default)]
    pub egress: Vec<String>,
    /// Access to the install's own key-value store.
    #[serde(default)]
    pub kv: bool,
    /// Names of secrets the plugin reads (each a secret field of the config schema).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Actions of other plugins it calls: `@scope/name` (any action) or `@scope/name#action`.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// What an org allowed one install to do. Always ⊆ the manifest's [`Permissions`].
pub type Grants = Permissions;

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidManifest, msg)
}

/// Checks a plugin name: `@scope/name`, lowercase letters, digits, `-`, `_`, `.`.
pub fn validate_plugin_name(name: &str) -> Result<()> {
    let ok = (|| {
        let rest = name.strip_prefix('@')?;
        let (scope, pkg) = rest.split_once('/')?;
        let part_ok = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && s.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                })
        };
        (part_ok(scope, 39) && part_ok(pkg, 64)).then_some(())
    })();
    ok.ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "'{}' is not a plugin name; use '@scope/name' with lowercase letters, digits, '-', '_' or '.'",
                clip(name)
            ),
        )
    })
}

/// Checks a short identifier (publisher, action, secret names): `[a-z0-9][a-z0-9_-]*`.
pub fn validate_ident(kind: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{kind} '{}' is not valid; use 1-64 lowercase letters, digits, '-' or '_'",
            clip(s)
        )))
    }
}

/// Checks an egress host pattern: a DNS name or `*.` + DNS name, lowercase, no port.
pub fn validate_host_pattern(p: &str) -> Result<()> {
    let host = p.strip_prefix("*.").unwrap_or(p);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "egress host '{}' is not valid; use 'api.example.com' or '*.example.com' (lowercase, no scheme or port)",
            clip(p)
        )))
    }
}

/// A parsed tool permission: `@scope/name` or `@scope/name#action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolTarget<'a> {
    pub plugin: &'a str,
    pub action: Option<&'a str>,
}

impl<'a> ToolTarget<'a> {
    pub fn parse(s: &'a str) -> Result<Self> {
        let (plugin, action) = match s.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (s, None),
        };
        validate_plugin_name(plugin).map_err(|e| bad(e.message))?;
        if let Some(a) = action {
            validate_ident("action", a).map_err(|e| bad(e.message))?;
        }
        Ok(Self { plugin, action })
    }

    /// Whether this permission covers calling `action` of `plugin`.
    pub fn covers(&self, plugin: &str, action: &str) -> bool {
        self.plugin == plugin && self.action.is_none_or(|a| a == action)
    }
}

/// Whether an egress pattern (`host` or `*.suffix`) covers a concrete host.
pub fn host_pattern_covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}

/// Whether every host `inner` (a host or `*.suffix`) covers is covered by `outer`: a
/// wildcard is covered only by an equal or wider wildcard.
pub fn pattern_covers_pattern(outer: &str, inner: &str) -> bool {
    outer == inner
        || match inner.strip_prefix("*.") {
            Some(suffix) => host_pattern_covers(outer, suffix) && outer.starts_with("*."),
            None => host_pattern_covers(outer, inner),
        }
}

/// Compiles a publisher's JSON Schema. Patterns use the `regex` engine (linear time,
/// no look-around or back-references), so an untrusted schema cannot make the host
/// backtrack for seconds on every invocation.
fn compile_schema(what: &str, schema: &Value) -> Result<jsonschema::Validator> {
    if !schema.is_object() {
        return Err(bad(format!("{what} must be a JSON Schema object")));
    }
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map_err(|e| bad(format!("{what} is not a valid JSON Schema: {e}")))
}

/// The actions' input schemas of one plugin version, compiled once and used for
/// every invocation of that version ([`Manifest::input_schemas`]).
pub struct InputSchemas {
    plugin: String,
    actions: BTreeMap<String, jsonschema::Validator>,
}

impl InputSchemas {
    /// Validates an action's input: `NOT_FOUND` (listing the actions) for an
    /// unknown action, `INVALID_INPUT` naming the field otherwise.
    pub fn validate(&self, action: &str, input: &Value) -> Result<()> {
        let validator = self.actions.get(action).ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!(
                    "plugin {} has no action '{}'; its actions are: {}",
                    self.plugin,
                    clip(action),
                    self.actions
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if let Some(e) = validator.iter_errors(input).next() {
            let path = e.instance_path.to_string();
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "input field '{}' is invalid: {e}",
                    if path.is_empty() { "(root)" } else { &path }
                ),
            ));
        }
        Ok(())
    }
}

impl Manifest {
    /// Parses and fully validates a manifest from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!(
                    "manifest is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                    bytes.len()
                ),
            ));
        }
        if crate::text::json_has_nul(bytes) {
            return Err(bad(format!("manifest: {}", crate::text::NUL_REFUSED)));
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("manifest is not valid: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    /// The parsed semantic version.
    pub fn semver(&self) -> Result<semver::Version> {
        semver::Version::parse(&self.version).map_err(|e| {
            Error::new(
                ErrorCode::InvalidVersion,
                format!(
                    "version '{}' is not semver ({e}); use e.g. 1.2.3",
                    clip(&self.version)
                ),
            )
        })
    }

    /// The scope of the plugin's name (`acme` for `@acme/weather`).
    pub fn scope(&self) -> Option<&str> {
        self.name.strip_prefix('@')?.split_once('/').map(|(s, _)| s)
    }

    /// Checks every rule a manifest must satisfy.
    pub fn validate(&self) -> Result<()> {
        validate_plugin_name(&self.name).map_err(|e| bad(e.message))?;
        self.semver()?;
        validate_ident("publisher", &self.publisher).map_err(|e| bad(e.message))?;
        // A publisher owns exactly the scope of its name (the operator assigns a
        // scope by registering its publisher), so no one can publish into, or
        // shadow, another publisher's scope.
        if self.scope() != Some(self.publisher.as_str()) {
            return Err(bad(format!(
                "'{}' is outside publisher '{}''s scope; publisher '{}' publishes only '@{}/…' plugins",
                clip(&self.name),
                self.publisher,
                self.publisher,
                self.publisher
            )));
        }
        if self.description.trim().is_empty() || self.description.len() > 1024 {
            return Err(bad("description must be 1-1024 characters"));
        }
        if self.capabilities.len() > 32 {
            return Err(bad("at most 32 capabilities"));
        }
        for c in &self.capabilities {
            validate_ident("capability", c).map_err(|e| bad(e.message))?;
        }
        if self.actions.is_empty() || self.actions.len() > 128 {
            return Err(bad("a plugin declares 1-128 actions"));
        }
        let mut seen = BTreeSet::new();
        for a in &self.actions {
            validate_ident("action name", &a.name).map_err(|e| bad(e.message))?;
            if !seen.insert(a.name.as_str()) {
                return Err(bad(format!("action '{}' is declared twice", a.name)));
            }
            compile_schema(
                &format!("input_schema of action '{}'", a.name),
                &a.input_schema,
            )?;
        }
        compile_schema("config_schema", &self.config_schema)?;
        let secret_fields = self.secret_fields();
        for s in &self.permissions.secrets {
            if !secret_fields.contains(s.as_str()) {
                return Err(bad(format!(
                    "permissions.secrets names '{}', which is not a config_schema property marked \"secret\": true",
                    clip(s)
                )));
            }
        }
        for h in &self.permissions.egress {
            validate_host_pattern(h)?;
        }
        for (dep, req) in &self.dependencies {
            validate_plugin_name(dep).map_err(|e| bad(e.message))?;
            if dep == &self.name {
                return Err(bad("a plugin cannot depend on itself"));
            }
            semver::VersionReq::parse(req).map_err(|e| {
                bad(format!(
                    "dependency '{dep}' has an invalid requirement '{}': {e}",
                    clip(req)
                ))
            })?;
        }
        for t in &self.permissions.tools {
            let target = ToolTarget::parse(t)?;
            if !self.dependencies.contains_key(target.plugin) {
                return Err(bad(format!(
                    "permissions.tools names '{}', which is not in dependencies",
                    target.plugin
                )));
            }
        }
        if self.docs.len() > 128 * 1024 {
            return Err(bad("docs are limited to 128 KiB"));
        }
        Ok(())
    }

    /// Names of the config-schema properties marked `"secret": true`.
    pub fn secret_fields(&self) -> BTreeSet<&str> {
        self.config_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, v)| v.get("secret").and_then(Value::as_bool) == Some(true))
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// Validates an install's config against the config schema, with the secret
    /// fields taken out (they must not appear in config). Errors name the field.
    pub fn validate_config(&self, config: &Value) -> Result<()> {
        let invalid = |m: String| Error::new(ErrorCode::InvalidConfig, m);
        let obj = config
            .as_object()
            .ok_or_else(|| invalid("config must be a JSON object".into()))?;
        let secrets = self.secret_fields();
        if let Some(k) = obj.keys().find(|k| secrets.contains(k.as_str())) {
            return Err(invalid(format!(
                "config field '{k}' is a secret; set it with `tenantry secret set` instead"
            )));
        }
        let mut schema = self.config_schema.clone();
        if let Some(s) = schema.as_object_mut() {
            strip_secret_fields(s, &secrets);
        }
        let validator = compile_schema("config_schema", &schema)?;
        if let Some(e) = validator.iter_errors(config).next() {
            let path = e.instance_path.to_string();
            let field = if path.is_empty() {
                "(root)".to_string()
            } else {
                path
            };
            return Err(invalid(format!("config field '{field}' is invalid: {e}")));
        }
        Ok(())
    }

    /// Compiles every action's input schema (once per plugin version; see
    /// [`InputSchemas`]).
    pub fn input_schemas(&self) -> Result<InputSchemas> {
        let mut actions = BTreeMap::new();
        for a in &self.actions {
            let v = compile_schema(
                &format!("input_schema of action '{}'", a.name),
                &a.input_schema,
            )?;
            actions.insert(a.name.clone(), v);
        }
        Ok(InputSchemas {
            plugin: self.name.clone(),
            actions,
        })
    }

    /// Checks that `grants` ⊆ the requested permissions; the error names the excess.
    pub fn check_grants(&self, grants: &Grants) -> Result<()> {
        let deny = |m: String| Error::new(ErrorCode::InvalidGrant, m);
        let req = &self.permissions;
        for h in &grants.egress {
            validate_host_pattern(h).map_err(|e| deny(e.message))?;
            let covered = req.egress.iter().any(|r| pattern_covers_pattern(r, h));
            if !covered {
                return Err(deny(format!(
                    "egress to '{h}' is not requested by the manifest"
                )));
            }
        }
        if grants.kv && !req.kv {
            return Err(deny("kv is not requested by the manifest".into()));
        }
        for s in &grants.secrets {
            if !req.secrets.contains(s) {
                return Err(deny(format!(
                    "secret '{}' is not requested by the manifest",
                    clip(s)
                )));
            }
        }
        for t in &grants.tools {
            let g = ToolTarget::parse(t).map_err(|e| deny(e.message))?;
            let covered = req.tools.iter().any(|r| {
                ToolTarget::parse(r).is_ok_and(|r| {
                    r.plugin == g.plugin && (r.action.is_none() || r.action == g.action)
                })
            });
            if !covered {
                return Err(deny(format!(
                    "tool '{}' is not requested by the manifest",
                    clip(t)
                )));
            }
        }
        Ok(())
    }
}

fn strip_secret_fields(schema: &mut Map<String, Value>, secrets: &BTreeSet<&str>) {
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.retain(|k, _| !secrets.contains(k.as_str()));
    }
    if let Some(Value::Array(req)) = schema.get_mut("required") {
        req.retain(|v| v.as_str().is_none_or(|s| !secrets.contains(s)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Manifest {
        serde_json::from_value(json!({
            "name": "@acme/weather",
            "version": "1.2.0",
            "description": "Weather lookups",
            "publisher": "acme",
            "capabilities": ["weather"],
            "actions": [{"name": "forecast", "input_schema": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}],
            "config_schema": {"type": "object", "required": ["units", "api_key"], "properties": {
                "units": {"type": "string", "enum": ["metric", "imperial"]},
                "api_key": {"type": "string", "secret": true}
            }},
            "permissions": {"egress": ["*.weather.example"], "kv": true, "secrets": ["api_key"], "tools": ["@acme/geo#lookup"]},
            "dependencies": {"@acme/geo": "^1"}
        }))
        .unwrap()
    }

    #[test]
    fn valid_manifest_passes() {
        manifest().validate().unwrap();
    }

    /// A publisher's schema is untrusted: a catastrophic-backtracking pattern must
    /// not cost the host seconds per invocation, and look-around (which needs a
    /// backtracking engine) is refused at publish.
    #[test]
    fn a_redos_pattern_in_an_input_schema_runs_in_linear_time() {
        let mut m = manifest();
        m.actions[0].input_schema = json!({"type": "object", "properties": {"city": {"type": "string", "pattern": "^(a+)+$"}}});
        m.validate().unwrap();
        let inputs = m.input_schemas().unwrap();
        let evil = format!("{}!", "a".repeat(50_000));
        let started = std::time::Instant::now();
        let e = inputs
            .validate("forecast", &json!({"city": evil}))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        // A backtracking engine needs 2^50000 steps here; a linear one microseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        m.actions[0].input_schema = json!({"type": "object", "properties": {"city": {"type": "string", "pattern": "(?=a)a"}}});
        assert_eq!(m.validate().unwrap_err().code, ErrorCode::InvalidManifest);
    }

    #[test]
    fn config_errors_name_the_field_and_secrets_are_refused_in_config() {
        let m = manifest();
        m.validate_config(&json!({"units": "metric"})).unwrap();
        let e = m.validate_config(&json!({"units": "kelvin"})).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidConfig);
        assert!(e.message.contains("/units"), "{}", e.message);
        let e = m
            .validate_config(&json!({"units": "metric", "api_key": "x"}))
            .unwrap_err();
        assert!(e.message.contains("api_key") && e.message.contains("secret"));
    }

    #[test]
    fn grants_must_be_subset_of_requested() {
        let m = manifest();
        let ok = Grants {
            egress: vec!["api.weather.example".into(), "*.eu.weather.example".into()],
            kv: true,
            secrets: vec!["api_key".into()],
            tools: vec!["@acme/geo#lookup".into()],
        };
        m.check_grants(&ok).unwrap();
        for bad in [
            Grants {
                egress: vec!["evil.example".into()],
                ..Default::default()
            },
            Grants {
                egress: vec!["weather.example".into()],
                ..Default::default()
            },
            Grants {
                secrets: vec!["other".into()],
                ..Default::default()
            },
            Grants {
                tools: vec!["@acme/geo".into()],
                ..Default::default()
            },
            Grants {
                tools: vec!["@acme/geo#other".into()],
                ..Default::default()
            },
        ] {
            assert_eq!(
                m.check_grants(&bad).unwrap_err().code,
                ErrorCode::InvalidGrant,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let mut m = manifest();
        m.name = "acme/weather".into();
        assert!(m.validate().is_err());
        let mut m = manifest();
        m.permissions.secrets.push("not_a_field".into());
        assert!(m.validate().is_err());
        let mut m = manifest();
        m.permissions.tools.push("@other/x".into());
        assert!(m.validate().is_err());
        assert!(Manifest::from_json(b"{\"name\": 1}").is_err());
    }
}
