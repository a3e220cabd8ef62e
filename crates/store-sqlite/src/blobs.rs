//! Artifact files: `<data>/artifacts/sha256/<hex>.wasm`, written atomically.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use tenantry_store::{BlobStore, StoreError, StoreResult};

/// Artifact bytes as files under the data directory.
#[derive(Debug, Clone)]
pub struct FileBlobs {
    dir: PathBuf,
}

impl FileBlobs {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("artifacts").join("sha256"),
        }
    }

    /// The file of a digest. Callers pass validated digests (64 lowercase hex).
    pub fn path_of(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.wasm"))
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("artifact file: {e}"))
}

#[async_trait]
impl BlobStore for FileBlobs {
    /// Temp file + fsync + rename, so a crash leaves the old state or the whole file.
    async fn put_blob(&self, digest: &str, bytes: &[u8]) -> StoreResult<()> {
        let path = self.path_of(digest);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
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
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)
    }

    async fn get_blob(&self, digest: &str) -> StoreResult<Option<Vec<u8>>> {
        match tokio::fs::read(self.path_of(digest)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }
}
