//! Envelope encryption of install secrets.
//!
//! Each value gets a fresh random data key; the value is sealed under the data key,
//! and the data key is sealed under the org key, both with the same AAD (format
//! version, org, install, secret name, key version). A blob copied to another row, org
//! or key version therefore fails to open. Blob layout:
//!
//! ```text
//! [0]      format version (1)
//! [1..5]   org key version, u32 big-endian
//! [5..7]   length of the wrapped data key, u16 big-endian (always 72)
//! [7..79]  wrapped data key: nonce(24) ‖ ciphertext(32) ‖ tag(16)
//! [79..]   sealed value:     nonce(24) ‖ ciphertext ‖ tag(16)
//! ```

use tenantry_core::{InstallId, OrgId};
use zeroize::Zeroizing;

use crate::keys::OrgKey;
use crate::{CryptoError, aead_open, aead_seal, random};

const FORMAT_V1: u8 = 1;
const WRAPPED_DEK_LEN: usize = 24 + 32 + 16;
const HEADER_LEN: usize = 1 + 4 + 2;

/// A secret value in memory: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    /// The bytes. Call only where the value is needed (encryption, the sandbox).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretValue {
    fn from(s: String) -> Self {
        Self::new(s.into_bytes())
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

/// What a secret ciphertext is bound to.
#[derive(Debug, Clone, Copy)]
pub struct SecretAad<'a> {
    pub org: OrgId,
    pub install: InstallId,
    pub name: &'a str,
    pub key_version: u32,
}

impl SecretAad<'_> {
    /// Unambiguous encoding: fixed-width ids, length-prefixed name.
    fn encode(&self) -> Vec<u8> {
        let mut out = b"tenantry/secret/v1".to_vec();
        out.push(FORMAT_V1);
        out.extend_from_slice(self.org.as_uuid().as_bytes());
        out.extend_from_slice(self.install.as_uuid().as_bytes());
        out.extend_from_slice(&(self.name.len() as u64).to_be_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out
    }
}

/// Seals a secret value for one (org, install, name, key version).
pub fn seal_secret(org_key: &OrgKey, aad: &SecretAad<'_>, value: &SecretValue) -> Vec<u8> {
    let aad_bytes = aad.encode();
    let dek = Zeroizing::new(random::<32>());
    let wrapped = aead_seal(org_key.bytes(), &aad_bytes, dek.as_slice());
    let sealed = aead_seal(&dek, &aad_bytes, value.expose());
    let mut out = Vec::with_capacity(HEADER_LEN + wrapped.len() + sealed.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&aad.key_version.to_be_bytes());
    out.extend_from_slice(&(WRAPPED_DEK_LEN as u16).to_be_bytes());
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(&sealed);
    out
}

/// Opens a blob from [`seal_secret`]; fails unless every AAD field matches.
pub fn open_secret(
    org_key: &OrgKey,
    aad: &SecretAad<'_>,
    blob: &[u8],
) -> Result<SecretValue, CryptoError> {
    if secret_key_version(blob)? != aad.key_version {
        return Err(CryptoError::Decrypt);
    }
    let dek_len = usize::from(u16::from_be_bytes([blob[5], blob[6]]));
    if dek_len != WRAPPED_DEK_LEN || blob.len() < HEADER_LEN + dek_len {
        return Err(CryptoError::BadFormat("secret blob is truncated".into()));
    }
    let (wrapped, sealed) = blob[HEADER_LEN..].split_at(dek_len);
    let aad_bytes = aad.encode();
    let dek = aead_open(org_key.bytes(), &aad_bytes, wrapped)?;
    let dek: [u8; 32] = dek
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Decrypt)?;
    let dek = Zeroizing::new(dek);
    let value = aead_open(&dek, &aad_bytes, sealed)?;
    Ok(SecretValue(value))
}

/// The org key version a blob was sealed with (for rotation), without decrypting.
pub fn secret_key_version(blob: &[u8]) -> Result<u32, CryptoError> {
    if blob.len() < HEADER_LEN || blob[0] != FORMAT_V1 {
        return Err(CryptoError::BadFormat(
            "not a Tenantry secret blob (format 1)".into(),
        ));
    }
    Ok(u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(org: OrgId, install: InstallId, name: &str, v: u32) -> SecretAad<'_> {
        SecretAad {
            org,
            install,
            name,
            key_version: v,
        }
    }

    struct Fixture {
        key: OrgKey,
        org: OrgId,
        install: InstallId,
        blob: Vec<u8>,
    }

    fn sealed() -> Fixture {
        let (key, org, install) = (OrgKey::generate(), OrgId::new(), InstallId::new());
        let blob = seal_secret(
            &key,
            &aad(org, install, "token", 1),
            &SecretValue::from("s3cret".to_string()),
        );
        Fixture {
            key,
            org,
            install,
            blob,
        }
    }

    #[test]
    fn round_trip() {
        let f = sealed();
        let v = open_secret(&f.key, &aad(f.org, f.install, "token", 1), &f.blob).unwrap();
        assert_eq!(v.expose(), b"s3cret");
        assert_eq!(secret_key_version(&f.blob).unwrap(), 1);
    }

    #[test]
    fn secret_copied_to_other_install_does_not_decrypt() {
        let f = sealed();
        assert!(open_secret(&f.key, &aad(f.org, InstallId::new(), "token", 1), &f.blob).is_err());
    }

    #[test]
    fn secret_copied_to_other_org_does_not_decrypt() {
        let f = sealed();
        assert!(open_secret(&f.key, &aad(OrgId::new(), f.install, "token", 1), &f.blob).is_err());
        assert!(
            open_secret(
                &OrgKey::generate(),
                &aad(f.org, f.install, "token", 1),
                &f.blob
            )
            .is_err()
        );
    }

    #[test]
    fn secret_copied_to_other_name_does_not_decrypt() {
        let f = sealed();
        assert!(open_secret(&f.key, &aad(f.org, f.install, "other", 1), &f.blob).is_err());
    }

    #[test]
    fn secret_copied_to_other_key_version_does_not_decrypt() {
        let f = sealed();
        let mut relabelled = f.blob.clone();
        relabelled[1..5].copy_from_slice(&2u32.to_be_bytes());
        assert!(open_secret(&f.key, &aad(f.org, f.install, "token", 2), &relabelled).is_err());
    }

    #[test]
    fn tampered_or_truncated_blob_fails() {
        let f = sealed();
        let a = aad(f.org, f.install, "token", 1);
        for i in [0, 10, f.blob.len() - 1] {
            let mut t = f.blob.clone();
            t[i] ^= 1;
            assert!(open_secret(&f.key, &a, &t).is_err(), "byte {i}");
        }
        assert!(open_secret(&f.key, &a, &f.blob[..20]).is_err());
        assert!(open_secret(&f.key, &a, &[]).is_err());
    }

    #[test]
    fn secret_value_debug_is_redacted() {
        let v = SecretValue::from("hunter2".to_string());
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
