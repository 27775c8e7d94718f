//! Body limits enforced before and while reading, upload slots that make
//! clients wait instead of fail, and answers that reach clients which
//! write their whole body before reading (Python's requests and httpx).

mod common;

use common::Api;

use std::time::{Duration, Instant};

use common::{client, json, png, raw, TestServer};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_upload_over_the_limit_is_413_and_leaves_nothing() {
    let (mut c, tmp) = common::test_config();
    c.max_upload_bytes = MIB;
    let s = TestServer::start_with(c, Some(tmp)).await;
    let mut head = raw::multipart("big.png", &png(8, 8, 1)).1;
    head.truncate(head.len() - 20);
    let boundary = "rawBOUNDARYx9";
    let tail = vec![7u8; 4 * MIB as usize];
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::from(head)),
        Ok(bytes::Bytes::from(tail)),
        Ok(bytes::Bytes::from(format!("\r\n--{boundary}--\r\n"))),
    ]);
    let r = client()
        .post(s.at("/api/media/upload"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(json(r).await["error"].is_string());
    let files: Vec<_> = std::fs::read_dir(s.data_dir.join("uploads"))
        .unwrap()
        .collect();
    assert!(files.is_empty(), "{files:?}");
    s.stop().await;
}

/// A photo of about `len` bytes, unique by `seed`.
fn photo(len: usize, seed: u64) -> Vec<u8> {
    let mut v = png(8, 8, seed as u8);
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

async fn upload_raw(url: String, name: String, file: Vec<u8>) -> Result<raw::Answer, String> {
    let (ctype, body) = raw::multipart(&name, &file);
    let head = format!(
        "POST /api/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer test-operator-token\r\nContent-Type: {ctype}\r\nContent-Length: {}",
        body.len()
    );
    raw::send_then_read(&url, &head, &body, body.len() as u64).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_storm_with_the_default_settings_loses_nothing() {
    const N: u64 = 500;
    let s = TestServer::start().await;
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let url = s.url.clone();
            tokio::spawn(async move {
                let file = photo(256 * 1024, i + 1);
                let sum = hex::encode(Sha256::digest(&file));
                (upload_raw(url, format!("storm-{i}.png"), file).await, sum)
            })
        })
        .collect();
    let (mut resets, mut errors, mut ids) = (0, 0, Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            (Ok(a), sum) if a.status == 201 => {
                let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
                ids.push((v["mediaItemId"].as_str().unwrap().to_string(), sum));
            }
            (Ok(a), _) => {
                errors += 1;
                eprintln!("{} {}", a.status, a.body);
            }
            (Err(e), _) => {
                resets += 1;
                eprintln!("{e}");
            }
        }
    }
    println!(
        "storm: {N} concurrent 256 KiB uploads in {:?}: {} stored, {errors} errors, {resets} resets",
        t0.elapsed(),
        ids.len()
    );
    assert_eq!((resets, errors), (0, 0));
    assert_eq!(ids.len() as u64, N);
    for (id, sum) in &ids {
        let m = s.get_json(&format!("/api/media/{id}")).await;
        assert_eq!(m["checksum"].as_str(), Some(sum.as_str()));
    }
    s.stop().await;
}

/// Holds the only upload slot until the returned sender is dropped.
async fn hold_the_slot(
    s: &TestServer,
    seed: u8,
) -> (
    tokio::task::JoinHandle<reqwest::Response>,
    tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    let (ctype, body) = raw::multipart("slow.png", &png(8, 8, seed));
    tx.send(body[..body.len() - 30].to_vec()).await.unwrap();
    let rest = body[body.len() - 30..].to_vec();
    let stream = futures_util::stream::unfold((rx, Some(rest)), |(mut rx, rest)| async move {
        match rx.recv().await {
            Some(x) => Some((Ok::<_, std::io::Error>(x), (rx, rest))),
            None => rest.map(|r| (Ok(r), (rx, None))),
        }
    });
    let url = s.at("/api/media/upload");
    let slow = tokio::spawn(async move {
        client()
            .post(url)
            .header("content-type", ctype)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    (slow, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_slots_uploads_wait_and_429_comes_only_when_the_line_is_full() {
    let (mut c, tmp) = common::test_config();
    c.upload_concurrency = 1;
    c.upload_queue = 1;
    c.upload_wait_secs = 2;
    let s = TestServer::start_with(c, Some(tmp)).await;
    let (slow, tx) = hold_the_slot(&s, 1).await;
    let url = s.url.clone();
    let waiter = tokio::spawn(async move { common::upload(&url, "w.png", png(8, 8, 2)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The line (one place) is taken: refused at once, with Retry-After, and
    // a client that writes its whole body first reads the 429.
    let t0 = Instant::now();
    let busy = upload_raw(s.url.clone(), "b.png".into(), photo(4 * MIB as usize, 3))
        .await
        .expect("the 429 reached a write-first client");
    assert_eq!(busy.status, 429, "{}", busy.body);
    assert!(
        busy.headers.to_ascii_lowercase().contains("retry-after: 2"),
        "{}",
        busy.headers
    );
    assert!(busy.body.contains("Too many uploads"));
    assert!(
        busy.body.contains("\"code\":\"too-many-uploads\""),
        "{}",
        busy.body
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    // The slot frees: the waiter gets it.
    drop(tx);
    assert_eq!(slow.await.unwrap().status(), 201);
    assert_eq!(waiter.await.unwrap().status(), 201);

    // A wait that runs out is a 429 too.
    let (slow, tx) = hold_the_slot(&s, 9).await;
    let t0 = Instant::now();
    let late = common::upload(&s.url, "late.png", png(8, 8, 4)).await;
    assert_eq!(late.status(), 429);
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );
    drop(tx);
    assert_eq!(slow.await.unwrap().status(), 201);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_from_the_length_reaches_a_client_that_writes_everything_first() {
    let (mut c, tmp) = common::test_config();
    c.max_upload_bytes = MIB;
    let s = TestServer::start_with(c, Some(tmp)).await;
    let a = upload_raw(
        s.url.clone(),
        "huge.png".into(),
        photo(64 * MIB as usize, 5),
    )
    .await
    .expect("the 413 reached a write-first client");
    assert_eq!(a.status, 413, "{}", a.body);
    s.stop().await;
}
