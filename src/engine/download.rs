//! A model download from the Hugging Face Hub (`HF_ENDPOINT`), as
//! `huggingface_hub` does it: a `HEAD` of `/<repo>/resolve/main/<file>`
//! without following the redirect tells the file's SHA-256
//! (`X-Linked-Etag`) and size (`X-Linked-Size`); the bytes go to a
//! `.partial` file, resumed with `Range` after a cut (in this run, or
//! after a restart: a side file remembers which version it holds), then
//! checked (size, SHA-256, every tensor's name and shape) before the
//! rename. A file that fails a check is deleted, never used.

use std::{
    io::Read,
    path::{Path, PathBuf},
    time::Duration,
};

use futures_util::TryStreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::{
    fs::File,
    io::{AsyncSeekExt, AsyncWriteExt},
};

use super::{arch::Arch, files, EngineError};

/// Attempts in a row that bring no new byte before the download gives up.
const TRIES: u32 = 5;

pub fn sidecar(partial: &Path) -> PathBuf {
    let mut s = partial.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// What the Hub says of the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Remote {
    etag: Option<String>,
    size: Option<u64>,
}

impl Remote {
    /// The SHA-256 when the etag is one (LFS files: every weights file).
    fn sha256(&self) -> Option<String> {
        let e = self
            .etag
            .as_deref()?
            .trim_start_matches("W/")
            .trim_matches('"');
        (e.len() == 64 && e.bytes().all(|b| b.is_ascii_hexdigit())).then(|| e.to_ascii_lowercase())
    }
}

fn failed(url: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Download(format!("{url}: {e}"))
}

async fn head(url: &str) -> Result<Remote, EngineError> {
    let no_redirect = crate::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| failed(url, e))?;
    let r = no_redirect
        .head(url)
        .header("accept-encoding", "identity")
        .send()
        .await
        .map_err(|e| failed(url, e.without_url()))?;
    let s = r.status();
    if !(s.is_success() || s.is_redirection()) {
        return Err(failed(url, format!("answered {s}")));
    }
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ok(Remote {
        etag: h("x-linked-etag").or_else(|| h("etag")),
        size: h("x-linked-size")
            .or_else(|| s.is_success().then(|| h("content-length")).flatten())
            .and_then(|v| v.parse().ok()),
    })
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Downloads `url` into `partial`, checks it, renames it to `dest`.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    partial: &Path,
    dest: &Path,
    arch: &Arch,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
) -> Result<PathBuf, EngineError> {
    if let Some(dir) = partial.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(partial)?;
    // Another process (the CLI beside the service) downloading the same file.
    if file.try_lock().is_err() {
        return Err(EngineError::Busy(dest.display().to_string()));
    }
    let mut file = File::from_std(file);
    let remote = head(url).await?;
    let side = sidecar(partial);
    let before: Option<Remote> = std::fs::read(&side)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if before.as_ref() != Some(&remote) {
        // Bytes of another version (or of unknown origin): start over.
        file.set_len(0).await?;
        tokio::fs::write(
            &side,
            serde_json::to_vec(&json!(remote)).unwrap_or_default(),
        )
        .await?;
    }
    let mut have = file.metadata().await?.len();
    if have > 0 {
        tracing::info!(url, bytes = have, "resuming the model download");
    }
    let mut fruitless = 0;
    loop {
        if remote.size.is_some_and(|s| have >= s) {
            if remote.size != Some(have) {
                file.set_len(0).await?;
                have = 0;
                continue;
            }
            break;
        }
        progress(have, remote.size);
        match receive(http, url, &mut file, have, remote.size, progress).await {
            Ok(Received::Done(n)) => {
                have = n;
                if remote.size.is_none() {
                    break;
                }
            }
            Ok(Received::Cut(n)) | Err(Cut::Retry(n)) => {
                fruitless = if n > have { 0 } else { fruitless + 1 };
                have = n;
                if fruitless >= TRIES {
                    return Err(failed(
                        url,
                        "the connection keeps failing; download again to resume",
                    ));
                }
                tracing::warn!(url, bytes = have, "model download cut; resuming");
                tokio::time::sleep(Duration::from_millis(500 * (1 << fruitless.min(4)))).await;
            }
            Err(Cut::Fatal(e)) => return Err(e),
        }
    }
    file.sync_all().await?;
    drop(file);
    progress(have, remote.size.or(Some(have)));
    let (p, a, expected) = (partial.to_path_buf(), arch.clone(), remote.sha256());
    let check = tokio::task::spawn_blocking(move || -> Result<(), EngineError> {
        if let Some(want) = expected {
            let got = hash_file(&p)?;
            if got != want {
                return Err(EngineError::BadModel(format!(
                    "SHA-256 {got} where the Hub says {want} (damaged in transit)"
                )));
            }
        }
        files::verify(&p, &a).map(|_| ())
    })
    .await
    .map_err(|e| EngineError::Compute(e.to_string()))?;
    if let Err(e) = check {
        let _ = std::fs::remove_file(partial);
        let _ = std::fs::remove_file(&side);
        tracing::warn!(url, error = %e, "downloaded model refused and deleted");
        return Err(e);
    }
    tokio::fs::rename(partial, dest).await?;
    if let Some(dir) = dest.parent() {
        File::open(dir).await?.sync_all().await?;
    }
    let _ = tokio::fs::remove_file(&side).await;
    Ok(dest.to_path_buf())
}

enum Received {
    /// The answer ended where the file ends (or its size was unknown).
    Done(u64),
    /// The answer ended early.
    Cut(u64),
}

enum Cut {
    /// Worth another try from this many bytes.
    Retry(u64),
    Fatal(EngineError),
}

/// One `GET` from byte `have` on, appended to `file`.
async fn receive(
    http: &reqwest::Client,
    url: &str,
    file: &mut File,
    mut have: u64,
    size: Option<u64>,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
) -> Result<Received, Cut> {
    let mut req = http.get(url).header("accept-encoding", "identity");
    if have > 0 {
        req = req.header("range", format!("bytes={have}-"));
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "model download request failed");
            return Err(Cut::Retry(have));
        }
    };
    let status = resp.status().as_u16();
    let io = |e: std::io::Error| Cut::Fatal(EngineError::Io(e));
    match status {
        206 => {
            let start = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(have) {
                file.set_len(0).await.map_err(io)?;
                return Err(Cut::Retry(0));
            }
        }
        200 => {
            // The server sends it all again: start over.
            file.set_len(0).await.map_err(io)?;
            have = 0;
        }
        416 => {
            file.set_len(0).await.map_err(io)?;
            return Err(Cut::Retry(0));
        }
        s if s >= 500 || s == 429 => return Err(Cut::Retry(have)),
        s => return Err(Cut::Fatal(failed(url, format!("answered {s}")))),
    }
    file.seek(std::io::SeekFrom::Start(have))
        .await
        .map_err(io)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, &mut *file);
    let mut stream = resp.bytes_stream();
    loop {
        match stream.try_next().await {
            Ok(Some(chunk)) => {
                out.write_all(&chunk).await.map_err(io)?;
                have += chunk.len() as u64;
                progress(have, size);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "model download stream failed");
                out.flush().await.map_err(io)?;
                return Ok(Received::Cut(have));
            }
        }
    }
    out.flush().await.map_err(io)?;
    match size {
        Some(s) if have < s => Ok(Received::Cut(have)),
        _ => Ok(Received::Done(have)),
    }
}
