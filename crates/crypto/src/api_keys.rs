//! API keys: `tny_` + 43 characters of unpadded base64url (32 random bytes). Only
//! the SHA-256 of the key text is stored; the key is shown once.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secrets::SecretValue;
use crate::{random, sha256};

pub const PREFIX: &str = "tny_";
const BODY_LEN: usize = 43;

/// A freshly generated key.
pub struct NewApiKey {
    /// The key text; give it to its owner once, never store it.
    pub plaintext: SecretValue,
    pub hash: [u8; 32],
    /// First 12 characters, to recognise the key in listings.
    pub prefix: String,
}

pub fn generate_api_key() -> NewApiKey {
    let text = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(random::<32>()));
    let hash = sha256(text.as_bytes());
    let prefix = text.chars().take(12).collect();
    NewApiKey {
        plaintext: SecretValue::from(text),
        hash,
        prefix,
    }
}

/// The SHA-256 of a presented key, or `None` if it cannot be a Tenantry key.
pub fn hash_api_key(presented: &str) -> Option<[u8; 32]> {
    let body = presented.strip_prefix(PREFIX)?;
    let well_formed = body.len() == BODY_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| sha256(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_hash_recognises_its_own_key_and_rejects_lookalikes() {
        let k = generate_api_key();
        let text = String::from_utf8(k.plaintext.expose().to_vec()).unwrap();
        assert_eq!(hash_api_key(&text), Some(k.hash));
        assert!(text.starts_with(&k.prefix));
        assert_eq!(hash_api_key(&text[..text.len() - 1]), None);
        assert_eq!(hash_api_key(&format!("{text}x")), None);
        assert_eq!(hash_api_key(&text.replacen("tny_", "tnx_", 1)), None);
        assert_eq!(hash_api_key(&format!("tny_{}", "!".repeat(43))), None);
        assert_ne!(generate_api_key().hash, k.hash);
    }
}
