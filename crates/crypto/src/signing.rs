//! Publisher signing keys (ed25519) and the statement they sign.
//!
//! A publisher signs a detached statement binding name, version, artifact digest,
//! manifest digest, publisher, key id and creation time, so an artifact cannot be
//! swapped, renamed or downgraded under a valid signature.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

use crate::secrets::SecretValue;
use crate::{CryptoError, random, sha256};

const SECRET_PREFIX: &str = "tenantry-ed25519-secret:";
const PUBLIC_PREFIX: &str = "ed25519:";
const DOMAIN: &[u8] = b"tenantry-signature-v1\n";

/// A publisher's signing key pair.
pub struct SigningKeyPair(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKeyPair([redacted], public {})",
            self.public_key()
        )
    }
}

impl SigningKeyPair {
    pub fn generate() -> Self {
        let seed = zeroize::Zeroizing::new(random::<32>());
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Text form for a key file.
    pub fn to_text(&self) -> SecretValue {
        let seed = zeroize::Zeroizing::new(self.0.to_bytes());
        SecretValue::from(format!(
            "{SECRET_PREFIX}{}\n",
            STANDARD.encode(seed.as_slice())
        ))
    }

    pub fn from_text(s: &str) -> Result<Self, CryptoError> {
        let b64 = s.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            CryptoError::BadKey(format!("a secret key file starts with '{SECRET_PREFIX}'"))
        })?;
        let bytes = zeroize::Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| CryptoError::BadKey("not base64".into()))?,
        );
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKey("expected 32 bytes".into()))?;
        let seed = zeroize::Zeroizing::new(seed);
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn sign(&self, statement: &SigningStatement) -> Signature {
        Signature(self.0.sign(&statement.canonical_bytes()))
    }

    /// Signs a checkpoint of an audit trail (the server's audit key).
    pub fn sign_checkpoint(&self, c: &Checkpoint) -> Signature {
        Signature(self.0.sign(&c.canonical_bytes()))
    }

    /// Loads a key file in [`Self::to_text`]'s form, or creates one (mode 0600,
    /// `create_new`, so two processes cannot race). Returns the key and whether it
    /// was created now.
    pub fn load_or_create(path: &std::path::Path) -> Result<(Self, bool), CryptoError> {
        crate::keys::load_or_create_file(path, Self::from_text, || {
            let key = Self::generate();
            let text = zeroize::Zeroizing::new(
                String::from_utf8_lossy(key.to_text().expose()).into_owned(),
            );
            (key, text)
        })
    }
}

/// What a checkpoint of an org's audit trail signs: the org, the `seq` of the entry
/// it covers and that entry's row hash. Domain-separated from publisher statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub org: tenantry_core::OrgId,
    pub seq: u64,
    pub row_hash: [u8; 32],
}

impl Checkpoint {
    /// `tenantry-audit-checkpoint-v1\n`, the org's 16 bytes, `seq` as 8 bytes
    /// big-endian, the 32-byte row hash.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = b"tenantry-audit-checkpoint-v1\n".to_vec();
        out.extend_from_slice(self.org.as_uuid().as_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.row_hash);
        out
    }
}

/// A publisher's public key; text form `ed25519:<base64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// First 16 hex characters of SHA-256 over the raw key.
    pub fn key_id(&self) -> String {
        hex::encode(&sha256(self.0.as_bytes())[..8])
    }

    /// Strict verification (`verify_strict`): besides the usual checks (S reduced,
    /// R recomputed), it refuses a low-order key or a low-order R. The lenient check
    /// accepts, for instance, (R = identity, S = 0) for *every* message under the
    /// identity key, so a weak key registered by mistake would sign anything.
    pub fn verify(&self, statement: &SigningStatement, sig: &Signature) -> Result<(), CryptoError> {
        self.0
            .verify_strict(&statement.canonical_bytes(), &sig.0)
            .map_err(|_| CryptoError::BadSignature)
    }

    /// Strict verification of an audit checkpoint's signature.
    pub fn verify_checkpoint(&self, c: &Checkpoint, sig: &Signature) -> Result<(), CryptoError> {
        self.0
            .verify_strict(&c.canonical_bytes(), &sig.0)
            .map_err(|_| CryptoError::BadSignature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parsing refuses weak (low-order) keys with [`CryptoError::WeakKey`]: such a key
/// is never the public half of a real key pair and could "sign" almost any message
/// under lenient verification (strict verification refuses it too, so refusing it
/// here loses nothing and tells whoever registers it why).
impl FromStr for PublicKey {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, CryptoError> {
        let b64 = s.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            CryptoError::BadKey(format!("a public key starts with '{PUBLIC_PREFIX}'"))
        })?;
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::BadKey("not base64".into()))?;
        let raw: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKey("expected 32 bytes".into()))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|_| CryptoError::BadKey("not a valid ed25519 point".into()))?;
        if key.is_weak() {
            return Err(CryptoError::WeakKey);
        }
        Ok(PublicKey(key))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A detached ed25519 signature; text form base64.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature(ed25519_dalek::Signature);

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0.to_bytes()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Signature {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(s.trim())
            .map_err(|_| CryptoError::BadFormat("signature is not base64".into()))?;
        let raw: [u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadFormat("signature must be 64 bytes".into()))?;
        Ok(Self(ed25519_dalek::Signature::from_bytes(&raw)))
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The statement a publisher signs for one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningStatement {
    pub name: String,
    pub version: String,
    pub artifact_sha256: String,
    pub manifest_sha256: String,
    pub publisher: String,
    pub key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

impl SigningStatement {
    /// The bytes that are signed: `tenantry-signature-v1\n` then a JSON object with
    /// keys in lexicographic order, no whitespace, and `created` as RFC 3339 UTC with
    /// whole seconds. It is canonical because the field set is fixed, the keys are
    /// emitted in a fixed sorted order (serde_json's `Map` is a `BTreeMap` without the
    /// `preserve_order` feature, and we build it explicitly anyway), string escaping is
    /// serde_json's deterministic one, and the time has exactly one text form.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let created = self.created.to_offset(time::UtcOffset::UTC);
        let created = created.replace_nanosecond(0).unwrap_or(created);
        let created = created
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let fields: [(&str, &str); 7] = [
            ("artifact_sha256", &self.artifact_sha256),
            ("created", &created),
            ("key_id", &self.key_id),
            ("manifest_sha256", &self.manifest_sha256),
            ("name", &self.name),
            ("publisher", &self.publisher),
            ("version", &self.version),
        ];
        let mut out = DOMAIN.to_vec();
        out.push(b'{');
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Serialising a &str to JSON cannot fail.
            out.extend(serde_json::to_vec(k).unwrap_or_default());
            out.push(b':');
            out.extend(serde_json::to_vec(v).unwrap_or_default());
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> SigningStatement {
        SigningStatement {
            name: "@acme/echo".into(),
            version: "1.0.0".into(),
            artifact_sha256: "aa".into(),
            manifest_sha256: "bb".into(),
            publisher: "acme".into(),
            key_id: "0011223344556677".into(),
            created: time::macros::datetime!(2026-11-22 12:00:00.5 UTC),
        }
    }

    #[test]
    fn canonical_bytes_are_stable() {
        assert_eq!(
            String::from_utf8(statement().canonical_bytes()).unwrap(),
            "tenantry-signature-v1\n{\"artifact_sha256\":\"aa\",\"created\":\"2026-11-22T12:00:00Z\",\"key_id\":\"0011223344556677\",\"manifest_sha256\":\"bb\",\"name\":\"@acme/echo\",\"publisher\":\"acme\",\"version\":\"1.0.0\"}"
        );
    }

    #[test]
    fn sign_verify_round_trip_and_text_forms() {
        let k = SigningKeyPair::generate();
        let sig = k.sign(&statement());
        let pk: PublicKey = k.public_key().to_string().parse().unwrap();
        pk.verify(&statement(), &sig.to_string().parse().unwrap())
            .unwrap();
        let again =
            SigningKeyPair::from_text(std::str::from_utf8(k.to_text().expose()).unwrap()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        assert_eq!(pk.key_id().len(), 16);
    }

    #[test]
    fn signature_over_different_statement_fails() {
        let k = SigningKeyPair::generate();
        let sig = k.sign(&statement());
        let mut other = statement();
        other.version = "1.0.1".into();
        assert!(k.public_key().verify(&other, &sig).is_err());
        let mut swapped = statement();
        swapped.artifact_sha256 = "cc".into();
        assert!(k.public_key().verify(&swapped, &sig).is_err());
    }

    #[test]
    fn signature_by_other_key_fails() {
        let sig = SigningKeyPair::generate().sign(&statement());
        assert!(
            SigningKeyPair::generate()
                .public_key()
                .verify(&statement(), &sig)
                .is_err()
        );
    }

    /// Small-order points of edwards25519, as encoded keys (libsodium's blocklist):
    /// the identity (order 1), y = 0 (order 4), y = -1 (order 2) and two of order 8.
    const LOW_ORDER_KEYS: [(&str, [u8; 32]); 5] = [
        ("identity", {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        }),
        ("order 4 (y = 0)", [0u8; 32]),
        ("order 2 (y = -1)", {
            let mut b = [0xffu8; 32];
            b[0] = 0xec;
            b[31] = 0x7f;
            b
        }),
        (
            "order 8 (a)",
            [
                0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef,
                0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88,
                0x6d, 0x53, 0xfc, 0x05,
            ],
        ),
        (
            "order 8 (b)",
            [
                0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10,
                0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77,
                0x92, 0xac, 0x03, 0x7a,
            ],
        ),
    ];

    #[test]
    fn a_low_order_public_key_is_refused() {
        for (name, raw) in LOW_ORDER_KEYS {
            let text = format!("{PUBLIC_PREFIX}{}", STANDARD.encode(raw));
            match text.parse::<PublicKey>() {
                Err(CryptoError::WeakKey) => {}
                other => panic!("{name}: expected WeakKey, got {other:?}"),
            }
        }
        // A real key still parses.
        let k = SigningKeyPair::generate().public_key();
        assert_eq!(k.to_string().parse::<PublicKey>().unwrap(), k);
    }

    #[test]
    fn a_signature_forged_for_the_identity_key_is_refused_by_strict_verification() {
        // Under the identity key A, (R = identity, S = 0) satisfies the lenient
        // equation [S]B = R + [k]A for every message; strict verification refuses it.
        // (The key cannot come from text, parsing refuses it; this is the defence in depth.)
        let (_, identity) = LOW_ORDER_KEYS[0];
        let weak = PublicKey(ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap());
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        let forged = Signature(ed25519_dalek::Signature::from_bytes(&forged));
        assert!(matches!(
            weak.verify(&statement(), &forged),
            Err(CryptoError::BadSignature)
        ));
        let mut other = statement();
        other.version = "6.6.6".into();
        assert!(weak.verify(&other, &forged).is_err());
    }

    #[test]
    fn a_signature_with_an_unreduced_s_is_refused() {
        // Malleability: S + L verifies the same equation as S; only the reduced S is
        // accepted, so a signature has one encoding.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x10,
        ];
        let k = SigningKeyPair::generate();
        let sig = k.sign(&statement());
        k.public_key().verify(&statement(), &sig).unwrap();
        let mut bytes = sig.0.to_bytes();
        // S < L < 2^253, so S + L < 2^254 fits in 32 bytes.
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(bytes[32 + i]) + u16::from(L[i]) + carry;
            bytes[32 + i] = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        let malleated: Signature = STANDARD.encode(bytes).parse().unwrap();
        assert!(matches!(
            k.public_key().verify(&statement(), &malleated),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn signing_key_debug_is_redacted() {
        let k = SigningKeyPair::generate();
        let text = String::from_utf8(k.to_text().expose().to_vec()).unwrap();
        let b64 = text.trim().strip_prefix(SECRET_PREFIX).unwrap();
        assert!(!format!("{k:?}").contains(b64));
    }
}
