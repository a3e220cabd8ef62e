//! Calls another installed plugin's action through the host.
use tenantry_plugin_sdk::serde_json::{self, Value, json};
use tenantry_plugin_sdk::{Error, Plugin, export_plugin, tools};

struct Caller;

impl Plugin for Caller {
    const ACTIONS: &'static [(&'static str, &'static str)] =
        &[("call", "Calls `plugin`'s `action` with `input` and returns its output")];
    fn call(_action: &str, input: Value) -> Result<Value, Error> {
        let plugin = input["plugin"].as_str().ok_or_else(|| Error::InvalidInput("`plugin` is required".into()))?;
        let action = input["action"].as_str().ok_or_else(|| Error::InvalidInput("`action` is required".into()))?;
        let out = tools::call(plugin, action, &input["input"].to_string())?;
        let out: Value = serde_json::from_str(&out).unwrap_or(Value::String(out));
        Ok(json!({"called": plugin, "output": out}))
    }
}

export_plugin!(Caller);
