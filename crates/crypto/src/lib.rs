//! `tenantry-crypto`: every cryptographic operation Tenantry performs, behind small
//! typed functions built on well-kept crates (RustCrypto's `chacha20poly1305`,
//! `sha2`, and `ed25519-dalek`).
//!
//! - [`keys`]: the master key file and per-org keys, wrapped by the org's KEK;
//! - [`vault`]: each org's key-encryption key, sealed under the master key outside
//!   the data, destroyed to crypto-shred a deleted org;
//! - [`secrets`]: envelope encryption of install secrets (BRIEF §8);
//! - [`api_keys`]: `tny_` bearer keys, stored only as SHA-256;
//! - [`signing`]: publisher ed25519 keys and the canonical signed statement.
//!
//! Secret-bearing types zeroize on drop, print `[redacted]` in `Debug`, and do not
//! implement `Serialize` or `Display`. This crate must not depend on storage or HTTP.

pub mod api_keys;
pub mod keys;
pub mod secrets;
pub mod signing;
pub mod vault;

pub use api_keys::{NewApiKey, generate_api_key, hash_api_key};
pub use keys::{MasterKey, OrgKey, unwrap_org_key, wrap_org_key};
pub use secrets::{SecretAad, SecretValue, open_secret, seal_secret, secret_key_version};
pub use signing::{Checkpoint, PublicKey, Signature, SigningKeyPair, SigningStatement};
pub use vault::{KeyVault, OrgKek};

use sha2::{Digest, Sha256};

/// What can go wrong. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong context (AAD) or tampered data.
    #[error("cannot decrypt: wrong key, wrong context, or tampered data")]
    Decrypt,
    #[error("key file: {0}")]
    BadKeyFile(String),
    #[error("malformed data: {0}")]
    BadFormat(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("bad key: {0}")]
    BadKey(String),
    /// A low-order ("weak") ed25519 public key: it belongs to no real key pair.
    #[error("weak key: a low-order ed25519 public key is refused")]
    WeakKey,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// Fills a buffer from the OS CSPRNG. The OS generator failing is not recoverable.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the operating system's random number generator failed");
    b
}

/// XChaCha20-Poly1305 seal with a fresh random 24-byte nonce; returns nonce ‖ ciphertext.
pub(crate) fn aead_seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = random::<24>();
    // Encryption with a valid key and in-memory buffers cannot fail.
    #[allow(clippy::expect_used)]
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("in-memory AEAD encryption");
    let mut out = nonce.to_vec();
    out.extend(ct);
    out
}

/// Opens nonce ‖ ciphertext from [`aead_seal`].
pub(crate) fn aead_open(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    if sealed.len() < 24 + 16 {
        return Err(CryptoError::Decrypt);
    }
    let (nonce, ct) = sealed.split_at(24);
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| CryptoError::Decrypt)?;
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
        .map(zeroize::Zeroizing::new)
        .map_err(|_| CryptoError::Decrypt)
}
