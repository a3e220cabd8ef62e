//! Tenantry's Rust guest SDK.
//!
//! A plugin implements [`Plugin`] (a list of actions and one `call` function over
//! JSON values) and exports it with [`export_plugin!`]. Host capabilities are the
//! generated modules re-exported here: [`kv`], [`secrets`], [`config`], [`log`],
//! [`tools`]; outbound HTTP(S) is [`http`], a small blocking client over the
//! standard `wasi:http/outgoing-handler` (so any other wasi:http client works too).
//!
//! Targets `tenantry:plugin@0.2.0`.
//!
//! ```ignore
//! use tenantry_plugin_sdk::{Plugin, Error, export_plugin, serde_json::{json, Value}};
//! struct Echo;
//! impl Plugin for Echo {
//!     const ACTIONS: &'static [(&'static str, &'static str)] = &[("echo", "returns its input")];
//!     fn call(_action: &str, input: Value) -> Result<Value, Error> { Ok(json!({"echo": input})) }
//! }
//! export_plugin!(Echo);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "tenantry_plugin_sdk::bindings",
        generate_all,
    });
}

pub mod http;

pub use bindings::tenantry::plugin::types::Error;
pub use bindings::tenantry::plugin::{config, kv, log, secrets, tools};
pub use serde_json;

/// A plugin: named actions over JSON.
pub trait Plugin {
    /// `(name, description)` of every action.
    const ACTIONS: &'static [(&'static str, &'static str)];
    /// Runs `action` on `input`.
    fn call(action: &str, input: serde_json::Value) -> Result<serde_json::Value, Error>;
}

/// The plugin's config as JSON.
pub fn config_json() -> serde_json::Value {
    serde_json::from_str(&config::get()).unwrap_or(serde_json::Value::Null)
}

#[doc(hidden)]
pub fn describe<P: Plugin>() -> String {
    let actions: Vec<serde_json::Value> = P::ACTIONS
        .iter()
        .map(|(n, d)| serde_json::json!({"name": n, "description": d}))
        .collect();
    serde_json::Value::Array(actions).to_string()
}

#[doc(hidden)]
pub fn invoke<P: Plugin>(action: String, input: String) -> Result<String, Error> {
    if !P::ACTIONS.iter().any(|(n, _)| *n == action) {
        return Err(Error::NotFound(format!("no action '{action}'")));
    }
    let input = serde_json::from_str(&input).map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
    P::call(&action, input).map(|v| v.to_string())
}

/// Exports a [`Plugin`] as the component's `describe` and `invoke`.
#[macro_export]
macro_rules! export_plugin {
    ($t:ty) => {
        struct __TenantryGuest;
        impl $crate::bindings::Guest for __TenantryGuest {
            fn describe() -> String {
                $crate::describe::<$t>()
            }
            fn invoke(action: String, input: String) -> Result<String, $crate::Error> {
                $crate::invoke::<$t>(action, input)
            }
        }
        $crate::bindings::export!(__TenantryGuest with_types_in $crate::bindings);
    };
}
