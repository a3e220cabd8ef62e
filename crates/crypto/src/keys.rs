//! The master key (key-encryption key) and per-org keys wrapped by it.
//!
//! The master key lives in a file with mode 0600 (created on first run with
//! `create_new`, so two processes cannot race) or comes from the environment. Each
//! org has versioned keys stored wrapped (XChaCha20-Poly1305 under the master key,
//! AAD binding the org and version), so a wrapped key copied to another org or
//! version does not unwrap. The key they are wrapped under is the org's own
//! key-encryption key from the vault ([`crate::vault`]), or the master key for an
//! org without one.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::io::Write;
use std::path::Path;
use tenantry_core::OrgId;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::vault::OrgKek;
use crate::{CryptoError, aead_open, aead_seal, random};

/// The master key-encryption key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        Self(random())
    }

    /// Parses base64 text of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let mut bytes = zeroize::Zeroizing::new(
            STANDARD
                .decode(s.trim())
                .map_err(|_| CryptoError::BadKeyFile("not base64".into()))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            CryptoError::BadKeyFile(format!("expected 32 bytes, found {}", bytes.len()))
        })?;
        bytes.zeroize();
        Ok(Self(key))
    }

    /// Loads an existing key file (mode 0600).
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
        check_private(path)?;
        Self::from_base64(&text)
    }

    /// Whether two keys are the same key (a startup check on the configuration, not
    /// on anything a request sends: no constant-time comparison needed).
    pub fn same_as(&self, other: &MasterKey) -> bool {
        self.0 == other.0
    }

    /// Loads the key file, or creates it (mode 0600) if it does not exist.
    /// Returns the key and whether it was created now.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        load_or_create_file(path, Self::from_base64, || {
            let key = Self::generate();
            let text = zeroize::Zeroizing::new(format!("{}\n", STANDARD.encode(key.0)));
            (key, text)
        })
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Loads a private key file through `parse`, or creates it from `generate` (the key
/// and its text) with mode 0600 and `create_new`, so two processes cannot race:
/// the loser reads the winner's. Returns the key and whether it was created now.
pub(crate) fn load_or_create_file<K>(
    path: &Path,
    parse: impl Fn(&str) -> Result<K, CryptoError>,
    generate: impl FnOnce() -> (K, zeroize::Zeroizing<String>),
) -> Result<(K, bool), CryptoError> {
    let load = || -> Result<K, CryptoError> {
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
        check_private(path)?;
        parse(&text)
    };
    match load() {
        Err(CryptoError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, text) = generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            match opts.open(path) {
                Ok(mut f) => {
                    f.write_all(text.as_bytes())?;
                    f.sync_all()?;
                    Ok((key, true))
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok((load()?, false)),
                Err(e) => Err(e.into()),
            }
        }
        other => other.map(|k| (k, false)),
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(CryptoError::BadKeyFile(format!(
            "{} is readable by group or others (mode {:o}); run `chmod 600` on it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), CryptoError> {
    Ok(())
}

/// One version of an org's data-key-encryption key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct OrgKey([u8; 32]);

impl std::fmt::Debug for OrgKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgKey([redacted])")
    }
}

impl OrgKey {
    pub fn generate() -> Self {
        Self(random())
    }
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn org_key_aad(org: OrgId, version: u32) -> Vec<u8> {
    format!("tenantry/org-key/v1\0{org}\0{version}").into_bytes()
}

/// Wraps an org key under the org's key-encryption key ([`crate::vault`]).
pub fn wrap_org_key(kek: &OrgKek, org: OrgId, version: u32, key: &OrgKey) -> Vec<u8> {
    aead_seal(kek.bytes(), &org_key_aad(org, version), key.bytes())
}

/// Unwraps an org key; fails if it was wrapped for another org or version.
pub fn unwrap_org_key(
    kek: &OrgKek,
    org: OrgId,
    version: u32,
    wrapped: &[u8],
) -> Result<OrgKey, CryptoError> {
    let bytes = aead_open(kek.bytes(), &org_key_aad(org, version), wrapped)?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(OrgKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_file_is_created_0600_and_reloads_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (k1, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (k2, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.0, k2.0);
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_master_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&path),
            Err(CryptoError::BadKeyFile(_))
        ));
    }

    #[test]
    fn org_key_wrapped_for_one_org_or_version_does_not_unwrap_for_another() {
        let kek = OrgKek::legacy(&MasterKey::generate());
        let (a, b) = (OrgId::new(), OrgId::new());
        let key = OrgKey::generate();
        let w = wrap_org_key(&kek, a, 1, &key);
        assert_eq!(unwrap_org_key(&kek, a, 1, &w).unwrap().0, key.0);
        assert!(unwrap_org_key(&kek, b, 1, &w).is_err());
        assert!(unwrap_org_key(&kek, a, 2, &w).is_err());
        assert!(unwrap_org_key(&OrgKek::legacy(&MasterKey::generate()), a, 1, &w).is_err());
    }

    #[test]
    fn debug_output_is_redacted() {
        let k = MasterKey::generate();
        let hexed = hex::encode(k.0);
        let shown = format!("{k:?} {:?}", OrgKey::generate());
        assert!(shown.contains("redacted") && !shown.contains(&hexed));
    }
}
