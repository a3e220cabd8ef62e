//! Echo: returns its input, with the install's configured greeting.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, config_json, export_plugin};

struct Echo;

impl Plugin for Echo {
    const ACTIONS: &'static [(&'static str, &'static str)] = &[("echo", "Returns its input and the configured greeting")];
    fn call(_action: &str, input: Value) -> Result<Value, Error> {
        Ok(json!({"echo": input, "greeting": config_json()["greeting"]}))
    }
}

export_plugin!(Echo);
