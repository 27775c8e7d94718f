//! Upload benchmark (not a test) with a lean load generator: the release
//! binary as its own process, 1 MiB photos sent by C concurrent clients
//! for D seconds, each body a unique 64-byte head followed by one shared
//! 1 MiB buffer (no per-request copy in the client, unlike wrk's Lua,
//! which builds every 1 MiB body as a new string on the same two cores).
//!
//! Run: `cargo build --release && cargo bench --bench uploads`
//! (`CONNS=8 SECS=10 RUNS=3 BIN=target/release/immichvr`). With `URL=...`
//! it loads a server already running instead, and with `COUNT=N` it stops
//! after N uploads (`SIZE` bytes each, default 1 MiB): `scripts/bench.sh`
//! uses that to push 10,000 items through a server and read its memory.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;

#[path = "../tests/common/mod.rs"]
mod common;

use common::stats::env_or;

const MIB: usize = 1024 * 1024;
const BOUNDARY: &str = "benchBOUNDARY";

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(bin: &str) -> Server {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let port = common::free_port();
    let child = Command::new(bin)
        .env("DATA_DIR", dir.path())
        .env("BACKEND_PORT", port.to_string())
        .env("BIND_ADDR", "127.0.0.1")
        .env("AUTO_START_WORKER", "false")
        .env("AI_SERVICE_URL", "http://127.0.0.1:9")
        .env("UPLOAD_CONCURRENCY", "64")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e} (build it with cargo build --release)"));
    // Owned at once, so that a panic below still kills and reaps it.
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = reqwest::Client::new();
    for _ in 0..500 {
        if client
            .get(format!("{}/health", server.url))
            .send()
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server did not become healthy");
}

/// What every body shares: a real 8x8 PNG (so an AI stand-in can decode
/// it) and the filler that makes the file `size` bytes.
struct Parts {
    png: Bytes,
    filler: Bytes,
}

impl Parts {
    fn new(size: usize) -> Parts {
        let png = common::png(8, 8, 7);
        let filler = vec![b'x'; size.saturating_sub(png.len() + 16)];
        Parts {
            png: png.into(),
            filler: filler.into(),
        }
    }

    /// Multipart body: the shared PNG, 16 unique bytes after its end (so
    /// no two files have the same checksum), the shared filler.
    fn body(&self, n: u64) -> (reqwest::Body, u64) {
        let head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"b.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        );
        let tail = format!("\r\n--{BOUNDARY}--\r\n");
        let parts: Vec<Bytes> = vec![
            head.into(),
            self.png.clone(),
            format!("{n:016}").into(),
            self.filler.clone(),
            tail.into(),
        ];
        let len = parts.iter().map(|p| p.len() as u64).sum();
        let stream = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
        (reqwest::Body::wrap_stream(stream), len)
    }
}

/// Uploads for `secs` seconds, or until `count` uploads are answered.
async fn run_once(
    url: &str,
    conns: u64,
    secs: u64,
    count: u64,
    size: usize,
) -> (f64, f64, f64, u64) {
    let parts = Arc::new(Parts::new(size));
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (client, url, parts) = (client.clone(), url.to_string(), parts.clone());
            let (stop, seq, errors, lat) = (stop.clone(), seq.clone(), errors.clone(), lat.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        break;
                    }
                    let (b, len) = parts.body(n);
                    let t = Instant::now();
                    let r = client
                        .post(format!("{url}/api/media/upload"))
                        .header(
                            "content-type",
                            format!("multipart/form-data; boundary={BOUNDARY}"),
                        )
                        .header("content-length", len)
                        .body(b)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 201 => {
                            lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0)
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = tokio::time::sleep(Duration::from_secs(secs));
    tokio::pin!(deadline);
    let all = futures_util::future::join_all(tasks);
    tokio::pin!(all);
    tokio::select! {
        _ = &mut deadline => {
            stop.store(true, Ordering::Relaxed);
            all.await;
        }
        _ = &mut all => {}
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let mut lat = lat.lock().unwrap().clone();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    (
        lat.len() as f64 / elapsed,
        p(0.5),
        p(0.99),
        errors.load(Ordering::Relaxed),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let bin = std::env::var("BIN").unwrap_or_else(|_| "target/release/immichvr".into());
    let (conns, secs, runs) = (
        env_or("CONNS", 8u64),
        env_or("SECS", 10u64),
        env_or("RUNS", 3u64),
    );
    let (count, size) = (env_or("COUNT", u64::MAX), env_or("SIZE", MIB));
    let external = std::env::var("URL").ok();
    let mut rates = Vec::new();
    for run in 1..=runs {
        let server = match &external {
            Some(_) => None,
            None => Some(start(&bin).await),
        };
        let url = external
            .clone()
            .unwrap_or_else(|| server.as_ref().unwrap().url.clone());
        let (rate, p50, p99, errors) = run_once(&url, conns, secs, count, size).await;
        eprintln!(
            "run {run}: {rate:.1} uploads/s, latency p50 {p50:.1} ms p99 {p99:.1} ms, {errors} errors"
        );
        assert_eq!(errors, 0, "every upload must be answered 201");
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "uploads ({size} bytes, {conns} concurrent, lean client): median {:.1} uploads/s = {:.1} MiB/s over {runs} runs (min {:.1}, max {:.1})",
        rates[rates.len() / 2],
        rates[rates.len() / 2] * size as f64 / MIB as f64,
        rates[0],
        rates[rates.len() - 1]
    );
}
