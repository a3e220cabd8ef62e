//! Content-addressed artifact files: `<data>/artifacts/sha256/<hex>.wasm`.
//!
//! Files are named by their SHA-256 and re-hashed on every read, so a file changed on
//! disk is refused (`ARTIFACT_TAMPERED`) before anything compiles it.

use std::path::{Path, PathBuf};
use tenantry_core::{Error, ErrorCode, Result};

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ArtifactStore {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("artifacts").join("sha256"),
        }
    }

    fn path(&self, digest: &str) -> Result<PathBuf> {
        if !is_digest(digest) {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                "artifact digest must be 64 lowercase hex characters",
            ));
        }
        Ok(self.dir.join(format!("{digest}.wasm")))
    }

    /// Stores bytes under their digest (atomically: temp file + rename + fsync).
    pub async fn put(&self, bytes: &[u8]) -> Result<String> {
        let digest = tenantry_crypto::sha256_hex(bytes);
        let path = self.path(&digest)?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(digest);
        }
        let io = |e: std::io::Error| {
            tracing::error!(error = %e, "artifact write failed");
            Error::internal()
        };
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let tmp = self
            .dir
            .join(format!(".{digest}.{}.tmp", uuid::Uuid::now_v7()));
        let data = bytes.to_vec();
        let tmp2 = tmp.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp2)?;
            f.write_all(&data)?;
            f.sync_all()
        })
        .await
        .map_err(|_| Error::internal())?
        .map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(digest)
    }

    /// Reads an artifact and checks its digest.
    pub async fn get(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.path(digest)?;
        let bytes = tokio::fs::read(&path).await.map_err(|_| {
            Error::new(
                ErrorCode::ArtifactTampered,
                format!(
                    "artifact {digest} is missing from the data directory; republish the version"
                ),
            )
        })?;
        if tenantry_crypto::sha256_hex(&bytes) != digest {
            return Err(Error::new(
                ErrorCode::ArtifactTampered,
                format!(
                    "artifact {digest} on disk does not match its digest; it was modified or corrupted, refusing to use it"
                ),
            ));
        }
        Ok(bytes)
    }

    /// Path of an artifact (for tests that tamper with it).
    pub fn path_of(&self, digest: &str) -> Result<PathBuf> {
        self.path(digest)
    }
}
