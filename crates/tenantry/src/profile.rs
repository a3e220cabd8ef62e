//! Login profiles: a server URL and an API key per name, kept in a per-user file
//! (`$TENANTRY_CONFIG_HOME/credentials.toml`, else `<config dir>/tenantry/
//! credentials.toml`, e.g. `~/.config/tenantry/credentials.toml`), mode 0600.

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub url: String,
    pub api_key: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The credentials file's path.
pub fn path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TENANTRY_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("credentials.toml"));
    }
    let dir = dirs::config_dir().ok_or_else(|| {
        anyhow!("cannot find your configuration directory (is $HOME set?); set TENANTRY_CONFIG_HOME to a private directory")
    })?;
    Ok(dir.join("tenantry").join("credentials.toml"))
}

/// The profile's name: the one given, else `default`.
pub fn name(given: Option<&str>) -> &str {
    given.filter(|n| !n.is_empty()).unwrap_or(DEFAULT_PROFILE)
}

/// Reads the credentials file; an absent file holds no profile.
pub fn load(path: &Path) -> Result<Credentials> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid credentials file; fix it or delete it and run `tenantry login` again",
            path.display()
        )
    })
}

/// Writes the credentials file readable only by its owner (in a 0700 directory),
/// replacing it atomically.
pub fn save(path: &Path, creds: &Credentials) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let text = toml::to_string(creds).context("encoding the credentials")?;
    let tmp = path.with_extension("toml.partial");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
