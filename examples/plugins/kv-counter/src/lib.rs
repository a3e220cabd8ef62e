//! A counter kept in the install's key-value store.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, export_plugin, kv};

struct Counter;

fn read(key: &str) -> Result<u64, Error> {
    Ok(kv::get(key)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

impl Plugin for Counter {
    const ACTIONS: &'static [(&'static str, &'static str)] = &[
        ("increment", "Adds `by` (default 1) to counter `name` (default \"default\")"),
        ("get", "Reads counter `name`"),
    ];
    fn call(action: &str, input: Value) -> Result<Value, Error> {
        let name = input["name"].as_str().unwrap_or("default");
        let key = format!("counter/{name}");
        let mut n = read(&key)?;
        if action == "increment" {
            n += input["by"].as_u64().unwrap_or(1);
            kv::set(&key, n.to_string().as_bytes())?;
        }
        Ok(json!({"name": name, "value": n}))
    }
}

export_plugin!(Counter);
