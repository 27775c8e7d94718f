//! A stand-in for the Hugging Face Hub's file route, as `huggingface_hub`
//! meets it: `HEAD /<repo>/resolve/main/<file>` answers 302 with the
//! file's SHA-256 in `X-Linked-Etag` and its size in `X-Linked-Size`; the
//! `GET` is redirected to a CDN path that honours `Range` (206 with
//! `Content-Range`). Tests make it cut the connection once, send slowly,
//! or serve other bytes than the ones it announces. Raw HTTP/1.1 on a
//! loopback socket, so that a cut is a real cut.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

#[derive(Default)]
pub struct Behaviour {
    /// The first body sent stops after this many bytes (connection closed).
    pub cut_after: Option<u64>,
    /// Bytes per second at most (0: as fast as it goes).
    pub rate: u64,
    /// Bytes served instead of the announced file (same length).
    pub served: Option<Vec<u8>>,
}

/// (method, path, Range header) of a request.
pub type Request = (String, String, Option<String>);

pub struct HfStandin {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Request>>>,
    pub behaviour: Arc<Mutex<Behaviour>>,
}

impl HfStandin {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `Range` headers of the file's GETs.
    pub fn ranges(&self) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == "GET" && p.starts_with("/cdn/"))
            .map(|(_, _, r)| r.clone())
            .collect()
    }

    /// Serves `file` as `<repo>/resolve/main/model.safetensors`.
    pub async fn start(repo: &str, file: Vec<u8>, behaviour: Behaviour) -> HfStandin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sha = hex::encode(Sha256::digest(&file));
        let file = Arc::new(file);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(behaviour));
        let resolve = format!("/{repo}/resolve/main/model.safetensors");
        let (s, b) = (seen.clone(), behaviour.clone());
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (file, sha, seen, b, resolve) = (
                    file.clone(),
                    sha.clone(),
                    s.clone(),
                    b.clone(),
                    resolve.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(sock, &file, &sha, &seen, &b, &resolve).await;
                });
            }
        });
        HfStandin {
            addr,
            seen,
            behaviour,
        }
    }
}

async fn serve(
    sock: tokio::net::TcpStream,
    file: &[u8],
    sha: &str,
    seen: &Mutex<Vec<Request>>,
    behaviour: &Mutex<Behaviour>,
    resolve: &str,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut range = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("range") {
                    range = Some(v.trim().to_string());
                }
            }
        }
        seen.lock()
            .unwrap()
            .push((method.clone(), path.clone(), range.clone()));
        if path == resolve {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: /cdn/model.safetensors\r\nX-Linked-Etag: \"{sha}\"\r\nX-Linked-Size: {}\r\nX-Repo-Commit: 0123456789abcdef0123456789abcdef01234567\r\nContent-Length: 0\r\n\r\n",
                file.len()
            );
            w.write_all(head.as_bytes()).await?;
            continue;
        }
        if !path.starts_with("/cdn/") {
            w.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
            continue;
        }
        let start: u64 = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split('-').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let len = file.len() as u64;
        if start >= len && len > 0 {
            let head = format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n");
            w.write_all(head.as_bytes()).await?;
            continue;
        }
        let head = if range.is_some() {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n\r\n",
                len - 1,
                len - start
            )
        } else {
            format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\n\r\n")
        };
        w.write_all(head.as_bytes()).await?;
        if method == "HEAD" {
            continue;
        }
        let (cut, rate, served) = {
            let mut b = behaviour.lock().unwrap();
            (b.cut_after.take(), b.rate, b.served.clone())
        };
        let body = served.as_deref().unwrap_or(file);
        let end = match cut {
            Some(n) => (start + n).min(len),
            None => len,
        };
        let mut at = start as usize;
        let chunk = if rate > 0 {
            (rate / 20).max(1) as usize
        } else {
            1 << 20
        };
        while at < end as usize {
            let next = (at + chunk).min(end as usize);
            w.write_all(&body[at..next]).await?;
            at = next;
            if rate > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if cut.is_some() {
            // The connection drops mid-body.
            return Ok(());
        }
    }
}

/// A safetensors file holding `tensors` (f32 zeros, or `fill`).
pub fn safetensors(tensors: &[(String, Vec<usize>)], fill: f32) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let n: usize = shape.iter().product::<usize>() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + offset);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    let word = fill.to_le_bytes();
    for _ in 0..offset / 4 {
        out.extend_from_slice(&word);
    }
    out
}
