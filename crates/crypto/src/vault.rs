//! The key vault: each org's key-encryption key, kept outside the data.
//!
//! An org's keys are stored wrapped in the org's own data (its SQLite file, or its
//! pooled rows). If they were wrapped under the master key alone, a copy of the data
//! made before the org's deletion (a backup) would still open with the master key,
//! and deleting an org could not make its secrets unreadable. So each org gets a
//! random key-encryption key ([`OrgKek`]) of its own, kept in the vault: a folder
//! with one file per org, `<org id>.kek`, holding the KEK sealed under the master key
//! (AAD: the org id), mode 0600. The vault sits beside the master key, outside the
//! data directory and its backups. Destroying an org's vault file crypto-shreds the
//! org: every wrapped org key, in the live store or in any copy, stays sealed.
//!
//! Orgs created before the vault existed (or where none is configured) have no vault
//! file; their keys are wrapped under the master key ([`OrgKek::legacy`]).
//!
//! Written here rather than taken from a crate: a folder of sealed files with
//! `create_new`, fsync and removal is a few lines; a KMS client would be the
//! alternative for deployments that have one.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tenantry_core::OrgId;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::MasterKey;
use crate::{CryptoError, aead_open, aead_seal, random};

/// The key an org's keys are wrapped under.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct OrgKek([u8; 32]);

impl std::fmt::Debug for OrgKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgKek([redacted])")
    }
}

impl OrgKek {
    /// The KEK of an org without a vault file: the master key itself.
    pub fn legacy(master: &MasterKey) -> Self {
        Self(*master.bytes())
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn aad(org: OrgId) -> Vec<u8> {
    format!("tenantry/org-kek/v1\0{org}").into_bytes()
}

/// A folder of per-org key-encryption keys (see the module docs).
#[derive(Debug, Clone)]
pub struct KeyVault {
    dir: PathBuf,
}

impl KeyVault {
    /// Opens (creating, mode 0700) the vault folder.
    pub fn open(dir: &Path) -> Result<Self, CryptoError> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one org; derived from the id only.
    fn path(&self, org: OrgId) -> PathBuf {
        self.dir.join(format!("{org}.kek"))
    }

    /// Creates the org's KEK. Fails if the org has one (never overwritten: that would
    /// shred the org's keys) or had one (a deleted org's id is never reused).
    pub fn create(&self, master: &MasterKey, org: OrgId) -> Result<OrgKek, CryptoError> {
        if self.dir.join(format!("{org}.shredded")).exists() {
            return Err(CryptoError::BadKey(format!("org {org} was deleted")));
        }
        let kek = OrgKek(random());
        let sealed = aead_seal(master.bytes(), &aad(org), kek.bytes());
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(sealed)));
        let path = self.path(org);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        sync_dir(&self.dir)?;
        Ok(kek)
    }

    /// The org's KEK; `None` if the org has no vault file (created before the vault,
    /// or destroyed).
    pub fn get(&self, master: &MasterKey, org: OrgId) -> Result<Option<OrgKek>, CryptoError> {
        let text = match std::fs::read_to_string(self.path(org)) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let sealed = STANDARD.decode(text.trim()).map_err(|_| {
            CryptoError::BadKeyFile(format!("vault file of org {org} is not base64"))
        })?;
        let bytes = aead_open(master.bytes(), &aad(org), &sealed)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(Some(OrgKek(key)))
    }

    /// Seals the org's KEK again under `master` (rotating the master key): written
    /// to a temporary file, synced, then renamed over the old one, so a crash leaves
    /// either file whole.
    pub fn reseal(&self, master: &MasterKey, org: OrgId, kek: &OrgKek) -> Result<(), CryptoError> {
        let sealed = aead_seal(master.bytes(), &aad(org), kek.bytes());
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(sealed)));
        let tmp = self.dir.join(format!("{org}.kek.tmp"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path(org))?;
        sync_dir(&self.dir)
    }

    /// Destroys the org's KEK: overwrites the file, syncs it, removes it, leaves an
    /// empty `<org id>.shredded` marker and syncs the folder. Returns whether the org
    /// had a KEK (now or in an earlier, interrupted deletion). (On copy-on-write or
    /// wear-levelled storage the overwrite may leave old blocks behind; the sealed
    /// KEK in them is still useless without the master key.)
    pub fn destroy(&self, org: OrgId) -> Result<bool, CryptoError> {
        let path = self.path(org);
        let marker = self.dir.join(format!("{org}.shredded"));
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(marker.exists()),
            Err(e) => return Err(e.into()),
        };
        {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.write_all(&vec![0u8; usize::try_from(len).unwrap_or(0)])?;
            f.sync_all()?;
        }
        std::fs::File::create(&marker)?;
        std::fs::remove_file(&path)?;
        sync_dir(&self.dir)?;
        Ok(true)
    }
}

fn sync_dir(dir: &Path) -> Result<(), CryptoError> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{OrgKey, unwrap_org_key, wrap_org_key};

    #[test]
    fn a_destroyed_vault_file_leaves_a_copied_wrapped_key_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let vault = KeyVault::open(dir.path()).unwrap();
        let master = MasterKey::generate();
        let org = OrgId::new();
        let kek = vault.create(&master, org).unwrap();
        let wrapped = wrap_org_key(&kek, org, 1, &OrgKey::generate());
        let again = vault.get(&master, org).unwrap().unwrap();
        assert!(unwrap_org_key(&again, org, 1, &wrapped).is_ok());
        assert!(vault.destroy(org).unwrap());
        assert!(vault.get(&master, org).unwrap().is_none());
        // Deleting again (after an interruption) still reports the shredding.
        assert!(vault.destroy(org).unwrap());
        assert!(!vault.destroy(OrgId::new()).unwrap());
        // Neither the master key nor a fresh vault file opens the copy.
        assert!(unwrap_org_key(&OrgKek::legacy(&master), org, 1, &wrapped).is_err());
        let other = KeyVault::open(&dir.path().join("other")).unwrap();
        let fresh = other.create(&master, org).unwrap();
        assert!(unwrap_org_key(&fresh, org, 1, &wrapped).is_err());
    }

    #[test]
    fn a_resealed_vault_file_opens_with_the_new_master_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let vault = KeyVault::open(dir.path()).unwrap();
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let org = OrgId::new();
        let kek = vault.create(&old, org).unwrap();
        vault.reseal(&new, org, &kek).unwrap();
        assert!(vault.get(&old, org).is_err());
        let again = vault.get(&new, org).unwrap().unwrap();
        assert_eq!(again.bytes(), kek.bytes());
        assert!(!dir.path().join(format!("{org}.kek.tmp")).exists());
    }

    #[test]
    fn a_vault_file_is_never_overwritten_and_is_bound_to_its_org() {
        let dir = tempfile::tempdir().unwrap();
        let vault = KeyVault::open(dir.path()).unwrap();
        let master = MasterKey::generate();
        let (a, b) = (OrgId::new(), OrgId::new());
        vault.create(&master, a).unwrap();
        assert!(vault.create(&master, a).is_err());
        // A's file copied over B's name does not open as B's.
        std::fs::copy(vault.path(a), vault.path(b)).unwrap();
        assert!(vault.get(&master, b).is_err());
        // Another master key does not open it either.
        assert!(vault.get(&MasterKey::generate(), a).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(vault.path(a))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
