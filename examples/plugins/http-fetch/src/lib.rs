//! Fetches a URL over `wasi:http` (HTTPS), through the host's egress policy.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, export_plugin, http};

struct Fetch;

impl Plugin for Fetch {
    const ACTIONS: &'static [(&'static str, &'static str)] = &[
        ("get", "GETs `url` and returns status and body text"),
        ("request", "Sends `method` `url` with `headers` (object) and `body` (text); returns status, headers and body text"),
    ];
    fn call(action: &str, input: Value) -> Result<Value, Error> {
        let url = input["url"].as_str().ok_or_else(|| Error::InvalidInput("`url` is required".into()))?;
        let res = match action {
            "get" => http::Request::get(url).send()?,
            _ => {
                let mut req = http::Request::new(input["method"].as_str().unwrap_or("GET"), url);
                if let Some(headers) = input["headers"].as_object() {
                    for (k, v) in headers {
                        req = req.header(k, v.as_str().unwrap_or_default());
                    }
                }
                if let Some(body) = input["body"].as_str() {
                    req = req.body(body);
                }
                req.send()?
            }
        };
        let headers: serde_json_map::Map = res.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        Ok(json!({"status": res.status, "headers": headers, "body": res.text()}))
    }
}

mod serde_json_map {
    pub type Map = tenantry_plugin_sdk::serde_json::Map<String, tenantry_plugin_sdk::serde_json::Value>;
}

export_plugin!(Fetch);
