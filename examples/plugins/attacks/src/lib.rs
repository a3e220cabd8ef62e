//! Hostile behaviours, one action each, for the attack suite. Never install this
//! anywhere but a test.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, export_plugin, http, kv, secrets, tools};

struct Attacks;

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64, pad: &mut [u8; 256]) -> u64 {
    pad[(n % 256) as usize] = n as u8;
    let mut next = [0u8; 256];
    next[0] = pad[0];
    1 + recurse(n + 1, &mut next) + u64::from(pad[1])
}

impl Plugin for Attacks {
    const ACTIONS: &'static [(&'static str, &'static str)] = &[
        ("ok", "Does nothing"),
        ("loop", "Spins forever"),
        ("memory", "Allocates without bound"),
        ("recurse", "Recurses without bound"),
        ("output", "Returns `bytes` bytes of output"),
        ("host-flood", "Calls the host `n` times"),
        ("secret", "Reads secret `name`"),
        ("kv-get", "Reads kv `key`"),
        ("kv-set", "Writes kv `key` = `value`"),
        ("fetch", "GETs `url`"),
        ("tool", "Calls `plugin`#`action`"),
    ];
    fn call(action: &str, input: Value) -> Result<Value, Error> {
        match action {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => {
                let mut pad = [0u8; 256];
                Ok(json!(recurse(0, &mut pad)))
            }
            "output" => Ok(json!("x".repeat(input["bytes"].as_u64().unwrap_or(0) as usize))),
            "host-flood" => {
                for _ in 0..input["n"].as_u64().unwrap_or(1_000_000) {
                    kv::get("flood")?;
                }
                Ok(json!("done"))
            }
            "secret" => Ok(json!(secrets::get(input["name"].as_str().unwrap_or(""))?.map(|s| s.len()))),
            "kv-get" => Ok(json!(kv::get(input["key"].as_str().unwrap_or(""))?.map(|v| String::from_utf8_lossy(&v).into_owned()))),
            "kv-set" => {
                kv::set(input["key"].as_str().unwrap_or(""), input["value"].as_str().unwrap_or("").as_bytes())?;
                Ok(json!("ok"))
            }
            "fetch" => {
                let url = input["url"].as_str().unwrap_or("");
                let r = http::fetch(&http::Request { method: "GET".into(), url: url.into(), headers: vec![], body: None })?;
                Ok(json!({"status": r.status, "body": String::from_utf8_lossy(&r.body)}))
            }
            "tool" => Ok(json!(tools::call(
                input["plugin"].as_str().unwrap_or(""),
                input["action"].as_str().unwrap_or(""),
                &input["input"].to_string()
            )?)),
            _ => Ok(json!("ok")),
        }
    }
}

export_plugin!(Attacks);
