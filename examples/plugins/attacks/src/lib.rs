//! Hostile behaviours, one action each, for the attack suite. Never install this
//! anywhere but a test.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, export_plugin, http, kv, secrets, tools};

struct Attacks;

const MASK: u8 = 0x5a;
static mut PLANTED: [u8; 256] = [0; 256];

/// Copies of `secret`, XOR-masked, anywhere in linear memory. Compares byte by byte
/// with the mask applied on the fly, so the masked needle itself is never in memory.
fn count_masked(secret: &str) -> usize {
    let secret = secret.as_bytes();
    let size = core::arch::wasm32::memory_size(0) * 65536;
    if secret.is_empty() {
        return 0;
    }
    (8..size.saturating_sub(secret.len()))
        .filter(|&start| {
            // SAFETY: `start + i < size`, inside linear memory.
            (0..secret.len()).all(|i| unsafe {
                std::ptr::read_volatile((start + i) as *const u8) == secret[i] ^ MASK
            })
        })
        .count()
}

fn mask(s: &str) -> Vec<u8> {
    s.bytes().map(|b| b ^ MASK).collect()
}

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
        ("fetch-many", "GETs `url` `n` times, ignoring failures; returns how many answered"),
        ("tool", "Calls `plugin`#`action`"),
        ("plant", "Writes `secret` (masked) to static data, the heap, the stack and a grown page"),
        ("find", "Counts copies of `secret` (masked) anywhere in its linear memory"),
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
                let r = http::Request::get(url).send()?;
                Ok(json!({"status": r.status, "body": String::from_utf8_lossy(&r.body)}))
            }
            "fetch-many" => {
                let url = input["url"].as_str().unwrap_or("");
                let n = input["n"].as_u64().unwrap_or(1);
                let answered = (0..n).filter(|_| http::Request::get(url).send().is_ok()).count();
                Ok(json!({"answered": answered}))
            }
            "tool" => Ok(json!(tools::call(
                input["plugin"].as_str().unwrap_or(""),
                input["action"].as_str().unwrap_or(""),
                &input["input"].to_string()
            )?)),
            "plant" => {
                // The secret is stored XOR-masked so the input the host copied in
                // does not match what `find` looks for.
                let masked: Vec<u8> = mask(input["secret"].as_str().unwrap_or(""));
                // SAFETY: single-threaded guest; nothing else touches PLANTED.
                unsafe {
                    let planted = &mut *std::ptr::addr_of_mut!(PLANTED);
                    let n = masked.len().min(planted.len());
                    planted[..n].copy_from_slice(&masked[..n]);
                    std::hint::black_box(&planted);
                }
                std::mem::forget(std::hint::black_box(masked.repeat(64)));
                let mut on_stack = [0u8; 1024];
                on_stack[..masked.len().min(1024)].copy_from_slice(&masked[..masked.len().min(1024)]);
                std::hint::black_box(&on_stack);
                let page = core::arch::wasm32::memory_grow(0, 1);
                if page != usize::MAX {
                    // SAFETY: the page was just added to linear memory.
                    unsafe {
                        let at = (page * 65536) as *mut u8;
                        std::ptr::copy_nonoverlapping(masked.as_ptr(), at, masked.len().min(65536));
                    }
                }
                // Proof that `find` would see what was planted.
                Ok(json!({"found": count_masked(input["secret"].as_str().unwrap_or(""))}))
            }
            "find" => Ok(json!({"found": count_masked(input["secret"].as_str().unwrap_or(""))})),
            _ => Ok(json!("ok")),
        }
    }
}

export_plugin!(Attacks);
