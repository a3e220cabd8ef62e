//! The OpenAPI document as a contract.
//!
//! Route annotations describe each route's success; [`complete`] adds what every
//! route shares and what only the running server knows, so the document is true for
//! every answer the server can give: the one error body and the error statuses, the
//! bearer scheme, the configured tier names, the sandbox's memory ceiling, patterns
//! for names in paths and for RFC 3339 times (formats alone are annotations in JSON
//! Schema 2020-12). Schemathesis checks the result against the running server
//! (`crates/tenantry/tests/schemathesis.rs`).

use serde_json::{Value, json};
use tenantry_api_types::{ErrorBody, ExportFormat, GroupBy};
use utoipa::openapi::OpenApi;
use utoipa::{PartialSchema, ToSchema};

/// What only the running server knows.
pub struct Contract {
    /// Tier names an org may be given.
    pub tiers: Vec<String>,
    /// The sandbox's largest memory (the bound of a `memory_bytes` override).
    pub max_memory_bytes: u64,
}

/// Statuses any route may answer with an error body, and whether only routes that
/// need a key can.
const ERRORS: &[(&str, &str, bool)] = &[
    (
        "400",
        "INVALID_REQUEST or another 400 code: the request does not parse or validate",
        false,
    ),
    (
        "401",
        "UNAUTHENTICATED: no key, or an unknown, expired or revoked key",
        true,
    ),
    (
        "403",
        "PERMISSION_DENIED: the principal lacks the permission",
        true,
    ),
    (
        "404",
        "NOT_FOUND: no such resource (or another org's: same answer)",
        false,
    ),
    ("405", "the method is not allowed on this route", false),
    (
        "409",
        "CONFLICT or another state conflict (the code says which)",
        true,
    ),
    (
        "413",
        "TOO_LARGE: the body or a value is over its limit",
        false,
    ),
    (
        "429",
        "RATE_LIMITED or QUOTA_EXCEEDED, with Retry-After",
        true,
    ),
    (
        "503",
        "UNAVAILABLE: a store the request needs is unreachable; retry",
        false,
    ),
];

/// An RFC 3339 time the server parses: whole or fractional seconds, `Z` or an
/// offset. Days stop at 28 so that every matching string is a real date.
const RFC3339: &str = r"^(19[7-9]\d|2\d\d\d)-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-](0\d|1[0-3]):[0-5]\d)$";
/// `tenantry_core::manifest::validate_ident`.
const IDENT: &str = r"^[a-z0-9][a-z0-9_-]{0,63}$";

/// Path parameters' patterns: (path, parameter, pattern).
const PATH_PATTERNS: &[(&str, &str, &str)] = &[
    ("/v1/installs/{install_id}/secrets/{name}", "name", IDENT),
    ("/v1/publishers/{publisher}/keys", "publisher", IDENT),
    ("/v1/publisher-keys/{key_id}", "key_id", r"^[0-9a-f]{16}$"),
    (
        "/v1/plugins/{scope}/{name}",
        "scope",
        r"^@[a-z0-9][a-z0-9._-]{0,38}$",
    ),
    (
        "/v1/plugins/{scope}/{name}",
        "name",
        r"^[a-z0-9][a-z0-9._-]{0,63}$",
    ),
    (
        "/v1/plugins/{scope}/{name}/reviews",
        "scope",
        r"^@[a-z0-9][a-z0-9._-]{0,38}$",
    ),
    (
        "/v1/plugins/{scope}/{name}/reviews",
        "name",
        r"^[a-z0-9][a-z0-9._-]{0,63}$",
    ),
    (
        "/v1/plugins/{scope}/{name}/review",
        "scope",
        r"^@[a-z0-9][a-z0-9._-]{0,38}$",
    ),
    (
        "/v1/plugins/{scope}/{name}/review",
        "name",
        r"^[a-z0-9][a-z0-9._-]{0,63}$",
    ),
];

/// The completed document (see the module docs).
pub fn complete(doc: &OpenApi, c: &Contract) -> Value {
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    let mut schemas = vec![(ErrorBody::name().into_owned(), ErrorBody::schema())];
    <ErrorBody as ToSchema>::schemas(&mut schemas);
    for (name, schema) in [
        (ExportFormat::name(), ExportFormat::schema()),
        (GroupBy::name(), GroupBy::schema()),
    ] {
        schemas.push((name.into_owned(), schema));
    }
    let components = &mut doc["components"];
    for (name, schema) in schemas {
        if components["schemas"].get(&name).is_none() {
            components["schemas"][name] = serde_json::to_value(schema).unwrap_or_default();
        }
    }
    components["securitySchemes"]["bearer"] = json!({
        "type": "http", "scheme": "bearer", "bearerFormat": "tny_…",
        "description": "An API key: `Authorization: Bearer tny_…`"
    });
    for (schema, nullable) in [("CreateOrg", true), ("SetTier", false)] {
        if let Some(p) = components["schemas"][schema]["properties"].get_mut("tier") {
            let mut names: Vec<Value> = c.tiers.iter().map(|t| json!(t)).collect();
            if nullable {
                names.push(Value::Null);
            }
            p["enum"] = Value::Array(names);
        }
    }
    if let Some(m) = components["schemas"]["TierOverrides"]["properties"].get_mut("memory_bytes") {
        m["maximum"] = json!(c.max_memory_bytes);
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let public = path == "/healthz" || path == "/readyz";
            let Some(ops) = item.as_object_mut() else {
                continue;
            };
            for (_, op) in ops.iter_mut() {
                complete_operation(path, op, public);
            }
        }
    }
    time_patterns(&mut doc);
    doc
}

fn complete_operation(path: &str, op: &mut Value, public: bool) {
    if !public {
        op["security"] = json!([{"bearer": []}]);
    }
    for (status, description, needs_auth) in ERRORS {
        if public && *needs_auth {
            continue;
        }
        if op["responses"].get(*status).is_none() {
            op["responses"][*status] = json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            });
        }
    }
    let params = op.get_mut("parameters").and_then(Value::as_array_mut);
    for p in params.into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        if let Some((_, _, pattern)) = PATH_PATTERNS
            .iter()
            .find(|(pa, n, _)| *pa == path && *n == name && p["in"] == "path")
        {
            p["schema"]["pattern"] = json!(pattern);
        }
    }
}

/// Adds [`RFC3339`] to every `date-time` string schema, and drops `uniqueItems`:
/// sets in requests (an agent's grants) accept repeated items and merge them.
fn time_patterns(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("format").and_then(Value::as_str) == Some("date-time") {
                o.insert("pattern".into(), json!(RFC3339));
            }
            o.remove("uniqueItems");
            o.values_mut().for_each(time_patterns);
        }
        Value::Array(a) => a.iter_mut().for_each(time_patterns),
        _ => {}
    }
}
