//! Object bytes on local disk, one file per blob under a generated id.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::fs;
use tokio::io::AsyncWriteExt;

use crate::Result;

/// A stored blob and its length in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub id: String,
    pub size: u64,
}

/// Directory of blobs: `<root>/blobs/<first two hex digits>/<id>` and `<root>/tmp`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub async fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("blobs")).await?;
        fs::create_dir_all(root.join("tmp")).await?;
        Ok(Self { root: root.to_path_buf() })
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn path(&self, id: &str) -> PathBuf {
        let shard = id.get(..2).unwrap_or("00");
        self.root.join("blobs").join(shard).join(id)
    }

    /// Starts a new blob. Nothing is visible until `BlobWriter::finish`.
    pub async fn create(&self) -> Result<BlobWriter> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp_path = self.tmp_dir().join(&id);
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&tmp_path).await?;
        Ok(BlobWriter { store: self.clone(), id, tmp_path, file: Some(file), size: 0, done: false })
    }

    pub async fn open_read(&self, id: &str) -> Result<fs::File> {
        Ok(fs::File::open(self.path(id)).await?)
    }

    /// Deletes blobs whose metadata row is gone. A missing file is not an error.
    pub async fn delete(&self, blobs: &[BlobRef]) {
        for blob in blobs {
            match fs::remove_file(self.path(&blob.id)).await {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => tracing::warn!(blob = %blob.id, error = %err, "failed to delete blob"),
            }
        }
    }

    /// Removes every temporary file and every blob not in `referenced`.
    /// Runs at start, before any request is served.
    pub async fn sweep_orphans(&self, referenced: &std::collections::HashSet<String>) -> Result<usize> {
        let mut removed = 0;
        let mut tmp = fs::read_dir(self.tmp_dir()).await?;
        while let Some(entry) = tmp.next_entry().await? {
            fs::remove_file(entry.path()).await?;
            removed += 1;
        }
        let mut shards = fs::read_dir(self.root.join("blobs")).await?;
        while let Some(shard) = shards.next_entry().await? {
            if !shard.file_type().await?.is_dir() {
                continue;
            }
            let mut files = fs::read_dir(shard.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let name = file.file_name().to_string_lossy().into_owned();
                if !referenced.contains(&name) {
                    fs::remove_file(file.path()).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// A blob being written. Dropping it before `finish` removes the temporary file,
/// so a failed or interrupted upload leaves nothing behind.
pub struct BlobWriter {
    store: BlobStore,
    id: String,
    tmp_path: PathBuf,
    file: Option<fs::File>,
    size: u64,
    done: bool,
}

impl BlobWriter {
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(file) = self.file.as_mut() {
            file.write_all(data).await?;
            self.size += data.len() as u64;
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the blob durable: fsync the data, rename it into place, fsync the
    /// directory that now names it.
    pub async fn finish(mut self) -> Result<BlobRef> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        let dest = self.store.path(&self.id);
        let parent = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        fs::create_dir_all(&parent).await?;
        fs::rename(&self.tmp_path, &dest).await?;
        fs::File::open(&parent).await?.sync_all().await?;
        self.done = true;
        Ok(BlobRef { id: self.id.clone(), size: self.size })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: the orphan sweep at start removes anything left here.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
