//! Files being received: a temporary name that is removed unless renamed
//! into place, and a writer that hashes and writes off the executor.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A file under a temporary name in the upload directory; removed on drop
/// unless it was renamed into place.
pub struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub fn new(dir: &Path) -> Self {
        TempFile {
            path: dir.join(format!(".tmp-{}", Uuid::new_v4())),
            armed: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the file's bytes to the disk (before it is renamed into
    /// place, when it was written without: an AI's answer is synced after
    /// the AI slot is given back).
    pub fn sync(&self) -> std::io::Result<()> {
        std::fs::File::open(&self.path)?.sync_data()
    }

    /// Renames into place. The new name is durable only once the
    /// directory is fsynced: the commit that records the file does that
    /// (`Store::write_after`), once for every file of its batch.
    pub fn rename_into(mut self, to: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

type Written = std::io::Result<(std::fs::File, Sha256, Vec<u8>)>;

/// Writes whole chunks to a file and hashes them on the blocking pool,
/// one chunk in flight while the caller fills the next: hashing and the
/// copy into the page cache run on the other core, and no chunk is copied
/// again into an intermediate buffer (as `tokio::fs::File` would).
pub struct HashingWriter {
    idle: Option<(std::fs::File, Sha256)>,
    in_flight: Option<JoinHandle<Written>>,
    chunk: usize,
    /// Bytes given by [`HashingWriter::push`] not yet handed over.
    pending: Vec<u8>,
}

impl HashingWriter {
    pub async fn create(path: &Path, chunk: usize) -> std::io::Result<Self> {
        let file = tokio::fs::File::create(path).await?.into_std().await;
        Ok(HashingWriter {
            idle: Some((file, Sha256::new())),
            in_flight: None,
            chunk,
            pending: Vec::new(),
        })
    }

    /// A buffer of the chunk size to fill.
    pub fn buffer(&self) -> Vec<u8> {
        vec![0; self.chunk]
    }

    /// Hands over the first `len` bytes of `buf`; returns a buffer of the
    /// chunk size to fill next (the previous one, once it is written).
    pub async fn write(&mut self, mut buf: Vec<u8>, len: usize) -> std::io::Result<Vec<u8>> {
        let spare = self.settle().await?;
        let (mut file, mut hasher) = self.idle.take().expect("settled");
        buf.truncate(len);
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            hasher.update(&buf);
            file.write_all(&buf)?;
            Ok((file, hasher, buf))
        }));
        Ok(match spare {
            Some(mut b) => {
                b.resize(self.chunk, 0);
                b
            }
            None => self.buffer(),
        })
    }

    /// Copies `data` in, handing over each chunk as it fills: for sources
    /// that yield their own buffers (an HTTP response's chunks).
    pub async fn push(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let take = (self.chunk - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == self.chunk {
                let full = std::mem::take(&mut self.pending);
                self.pending = self.write(full, self.chunk).await?;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Waits for the chunk in flight; returns its buffer.
    async fn settle(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let Some(job) = self.in_flight.take() else {
            return Ok(None);
        };
        let (file, hasher, buf) = job.await.map_err(std::io::Error::other)??;
        self.idle = Some((file, hasher));
        Ok(Some(buf))
    }

    /// Waits for the last chunk, fsyncs the file and returns its SHA-256.
    pub async fn finish(self) -> std::io::Result<[u8; 32]> {
        self.finish_with(true).await
    }

    /// [`HashingWriter::finish`] without the fsync: the caller syncs the
    /// file later ([`TempFile::sync`]), before anything records it.
    pub async fn finish_unsynced(self) -> std::io::Result<[u8; 32]> {
        self.finish_with(false).await
    }

    async fn finish_with(mut self, sync: bool) -> std::io::Result<[u8; 32]> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let len = rest.len();
            self.write(rest, len).await?;
        }
        self.settle().await?;
        let (file, hasher) = self.idle.take().expect("settled");
        tokio::task::spawn_blocking(move || {
            if sync {
                file.sync_data()?;
            }
            Ok(hasher.finalize().into())
        })
        .await
        .map_err(std::io::Error::other)?
    }
}
