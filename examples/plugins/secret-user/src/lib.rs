//! Uses a secret without revealing it: reports its length and a fingerprint.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, export_plugin, secrets};

struct SecretUser;

impl Plugin for SecretUser {
    const ACTIONS: &'static [(&'static str, &'static str)] =
        &[("check", "Reads secret `name` (default api_token); returns whether it is set and its length")];
    fn call(_action: &str, input: Value) -> Result<Value, Error> {
        let name = input["name"].as_str().unwrap_or("api_token");
        let v = secrets::get(name)?;
        let sum = v.as_deref().map(|s| s.bytes().fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b))));
        Ok(json!({"name": name, "set": v.is_some(), "length": v.as_ref().map(|s| s.len()), "fingerprint": sum}))
    }
}

export_plugin!(SecretUser);
