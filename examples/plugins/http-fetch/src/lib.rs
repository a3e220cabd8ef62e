//! Fetches a URL through the host's egress-checked HTTP.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, export_plugin, http};

struct Fetch;

impl Plugin for Fetch {
    const ACTIONS: &'static [(&'static str, &'static str)] = &[("get", "GETs `url` and returns status and body text")];
    fn call(_action: &str, input: Value) -> Result<Value, Error> {
        let url = input["url"].as_str().ok_or_else(|| Error::InvalidInput("`url` is required".into()))?;
        let res = http::fetch(&http::Request { method: "GET".into(), url: url.into(), headers: vec![], body: None })?;
        Ok(json!({"status": res.status, "body": String::from_utf8_lossy(&res.body)}))
    }
}

export_plugin!(Fetch);
