//! Every route with a body refuses an oversized one from its length
//! before reading, or while reading when there is no length, and the
//! process does not grow. Alone in its test binary, so that no other test
//! moves the memory it measures.

mod common;

use std::time::Instant;

use common::{client, raw, TestServer};

const MIB: u64 = 1024 * 1024;

/// Sends `len` bytes of body to `path` with a Content-Length, the whole
/// body before reading, and returns the answer.
async fn oversized(s: &TestServer, path: &str, ctype: &str, len: u64) -> raw::Answer {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {len}"
    );
    raw::send_then_read(&s.url, &head, &vec![b'x'; 64 * 1024], len)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The same without a length: chunked, as a streaming client sends.
async fn chunked(s: &TestServer, path: &str, ctype: &str, len: u64) -> reqwest::Response {
    let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    let n = (len / chunk.len() as u64) as usize;
    let stream =
        futures_util::stream::iter((0..n).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    client()
        .post(s.at(path))
        .header("content-type", ctype)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_limited_route_refuses_an_oversized_body_without_growing() {
    let s = TestServer::start().await;
    let id = uuid::Uuid::now_v7();
    let routes = [
        ("/api/auth/login".to_string(), "application/json"),
        ("/api/immich/search".to_string(), "application/json"),
        ("/api/immich/import".to_string(), "application/json"),
        (format!("/api/queue/enqueue/{id}"), "application/json"),
        (
            "/api/media/upload".to_string(),
            "multipart/form-data; boundary=x",
        ),
    ];
    // Warm up with small bodies: the first answers allocate what every
    // later one reuses.
    for (path, ctype) in &routes {
        oversized(&s, path, ctype, 100).await;
        chunked(&s, path, ctype, 64 * 1024).await;
    }
    // The peak, not the current size: a body read whole and freed again
    // would leave the current size where it was.
    let before = raw::peak_rss_kib();
    let t0 = Instant::now();
    for (path, ctype) in &routes {
        let a = oversized(&s, path, ctype, 256 * MIB).await;
        assert_eq!(a.status, 413, "{path}: {}", a.body);
        assert!(a.body.contains("\"error\""), "{path}: {}", a.body);
        if !path.ends_with("upload") {
            let r = chunked(&s, path, ctype, 8 * MIB).await;
            assert_eq!(r.status(), 413, "{path} (chunked)");
        }
    }
    let grown = raw::peak_rss_kib().saturating_sub(before);
    println!(
        "body limits: {} routes x 256 MiB refused in {:?}; peak RSS grew {grown} KiB",
        routes.len(),
        t0.elapsed()
    );
    assert!(grown < 2048, "the process grew {grown} KiB");
    // Refused from its length: the upload never reached the disk.
    let files: Vec<_> = std::fs::read_dir(s.data_dir.join("uploads"))
        .unwrap()
        .collect();
    assert!(files.is_empty(), "{files:?}");
    // A body within the limits still works.
    let ok = client()
        .post(s.at("/api/auth/login"))
        .json(&serde_json::json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    assert_ne!(ok.status(), 413);
    s.stop().await;
}
