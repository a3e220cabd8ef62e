//! `tenantry login`, `logout` and `whoami`: remembering which server and key client
//! commands use (see [`crate::profile`]).

use anyhow::{Context, Result, bail};
use serde::de::IgnoredAny;
use serde_json::json;
use tenantry_api_types as w;

use crate::cli::ClientArgs;
use crate::client::{self, ApiError, Client, Reply};
use crate::output::{joined, print, read_hidden};
use crate::profile::{self, Profile};

/// Who a key is on a server: its org (from `GET /v1/org`), or the operator.
enum Identity {
    Org(Box<Reply<w::OrgView>>),
    Operator,
}

/// Asks the server who `key` is. An org key answers `GET /v1/org`; the operator's
/// key is refused there but may list orgs.
async fn identify(c: &Client) -> Result<Identity> {
    match c.get("/v1/org").await {
        Ok(v) => Ok(Identity::Org(Box::new(v))),
        Err(e) => {
            let code = e
                .downcast_ref::<ApiError>()
                .map(|a| a.code.clone())
                .unwrap_or_default();
            if code == "UNAUTHENTICATED" || code == "CONNECTION_FAILED" || code.is_empty() {
                return Err(e);
            }
            match c.get::<IgnoredAny>("/v1/orgs").await {
                Ok(_) => Ok(Identity::Operator),
                Err(_) => Err(e),
            }
        }
    }
}

/// Reads the API key ([`read_hidden`]), without surrounding white space.
fn read_key() -> Result<String> {
    let key = read_hidden("API key (hidden): ", "the API key")?;
    let key = key.trim().to_string();
    if key.is_empty() {
        bail!(
            "no API key given; type it at the prompt, pipe it on standard input, or pass --api-key"
        );
    }
    Ok(key)
}

pub async fn login(a: &ClientArgs, json: bool) -> Result<()> {
    let name = profile::name(a.profile.as_deref()).to_string();
    let path = profile::path()?;
    let mut creds = profile::load(&path)?;
    // The URL as every client command resolves it, except that the profile being
    // (re)written may not exist yet.
    let target = client::resolve(&ClientArgs {
        profile: None,
        api_key: None,
        ..a.clone()
    })?;
    let url = match (&a.url, creds.profiles.get(&name)) {
        (None, Some(p)) => p.url.clone(),
        _ => target.url,
    };
    let key = match a.api_key.clone().filter(|k| !k.is_empty()) {
        Some(k) => k,
        None => read_key()?,
    };
    let c = Client::new(&url, Some(key.clone()))?;
    let who = identify(&c)
        .await
        .with_context(|| format!("{url} did not accept the key, so nothing was stored"))?;
    creds.profiles.insert(
        name.clone(),
        Profile {
            url: url.clone(),
            api_key: key,
        },
    );
    profile::save(&path, &creds)?;
    let as_whom = match &who {
        Identity::Org(r) => json!({"operator": false, "org": r.json}),
        Identity::Operator => json!({"operator": true}),
    };
    let v = json!({"profile": name, "url": url, "file": path, "identity": as_whom});
    print(json, &v, |_| {
        let whom = match &who {
            Identity::Org(r) => format!("org {} ({})", r.body.org.name, r.body.org.id),
            Identity::Operator => "the operator".into(),
        };
        println!("Logged in to {url} as {whom}.");
        println!("Saved as profile '{name}' in {}.", path.display());
    });
    Ok(())
}

pub fn logout(given: Option<&str>, json: bool) -> Result<()> {
    let name = profile::name(given).to_string();
    let path = profile::path()?;
    let mut creds = profile::load(&path)?;
    let removed = creds.profiles.remove(&name).is_some();
    if removed {
        profile::save(&path, &creds)?;
    }
    let v = json!({"profile": name, "removed": removed});
    print(json, &v, |_| {
        if removed {
            println!(
                "Forgot profile '{name}' (its key still works until revoked: `tenantry key revoke`)."
            );
        } else {
            println!("There was no profile '{name}'; nothing to do.");
        }
    });
    Ok(())
}

pub async fn whoami(a: &ClientArgs, json: bool) -> Result<()> {
    let t = client::resolve(a)?;
    if t.key.is_none() {
        bail!(
            "no API key for {} (from {}); set TENANTRY_API_KEY or run `tenantry login`",
            t.url,
            t.url_from
        );
    }
    let c = Client::new(&t.url, t.key.clone())?;
    let who = identify(&c).await?;
    let identity = match &who {
        Identity::Org(r) => json!({"operator": false, "org": r.json}),
        Identity::Operator => json!({"operator": true}),
    };
    let v =
        json!({"url": t.url, "url_from": t.url_from, "key_from": t.key_from, "identity": identity});
    print(json, &v, |_| {
        println!("server: {} (from {})", t.url, t.url_from);
        println!("   key: from {}", t.key_from);
        match &who {
            Identity::Operator => println!("    as: operator"),
            Identity::Org(r) => {
                let o = &r.body;
                println!("   org: {} ({}, tier {})", o.org.name, o.org.id, o.org.tier);
                println!("permissions: {}", joined(&o.permissions));
            }
        }
    });
    Ok(())
}
