//! Content-addressed artifacts over a [`BlobStore`] (files in embedded mode, a table
//! in pooled mode).
//!
//! Artifacts are named by their SHA-256 and re-hashed on every read, so bytes changed
//! in storage are refused (`ARTIFACT_TAMPERED`) before anything compiles them.

use std::sync::Arc;
use tenantry_core::{Error, ErrorCode, Result};
use tenantry_store::BlobStore;

#[derive(Clone)]
pub struct ArtifactStore {
    blobs: Arc<dyn BlobStore>,
}

fn check_digest(s: &str) -> Result<()> {
    let ok = s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidRequest,
            "artifact digest must be 64 lowercase hex characters",
        ))
    }
}

impl ArtifactStore {
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        Self { blobs }
    }

    /// Stores bytes under their digest.
    pub async fn put(&self, bytes: &[u8]) -> Result<String> {
        let digest = tenantry_crypto::sha256_hex(bytes);
        self.blobs.put_blob(&digest, bytes).await?;
        Ok(digest)
    }

    /// Reads an artifact and checks its digest.
    pub async fn get(&self, digest: &str) -> Result<Vec<u8>> {
        check_digest(digest)?;
        let bytes = self.blobs.get_blob(digest).await?.ok_or_else(|| {
            Error::new(
                ErrorCode::ArtifactTampered,
                format!("artifact {digest} is missing from storage; republish the version"),
            )
        })?;
        if tenantry_crypto::sha256_hex(&bytes) != digest {
            return Err(Error::new(
                ErrorCode::ArtifactTampered,
                format!(
                    "artifact {digest} in storage does not match its digest; it was modified or corrupted, refusing to use it"
                ),
            ));
        }
        Ok(bytes)
    }
}
