//! Hostile input and a full disk: clear 4xx/507 answers, nothing lost,
//! never a 500 or a hang.

mod common;

use common::Api;

use std::time::Duration;

use common::ai_standin::{AiStandin, Mode};
use common::fs::SmallFs;
use common::{client, json, png, start_with_ai, upload, wait_status, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes and returns the status line and body.
async fn raw(url: &str, request: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn path_traversal_in_path_parameters() {
    let s = TestServer::start().await;
    for path in [
        "/api/media/..%2F..%2Fetc%2Fpasswd",
        "/api/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
        "/api/queue/items/..%2f..%2f/retry",
        "/api/media/00000000-0000-0000-0000-000000000000%00/file",
    ] {
        let r = s.get(path).await;
        assert!(
            r.status() == 400 || r.status() == 404 || r.status() == 405,
            "{path}: {}",
            r.status()
        );
        assert!(json(r).await["error"].is_string());
    }
    let resp = raw(
        &s.url,
        b"GET /api/media/../../../etc/passwd/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(!resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(!resp.contains("root:"), "served a system file");
    s.stop().await;
}

#[tokio::test]
async fn overlong_headers_and_file_names() {
    let s = TestServer::start().await;
    let r = client()
        .get(s.at("/api/queue/stats"))
        .header("x-long", "a".repeat(200_000))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    // The server is still fine.
    assert_eq!(s.get("/health").await.status(), 200);

    let long_name = format!("{}.png", "é".repeat(5000));
    let r = upload(&s.url, &long_name, png(8, 8, 1)).await;
    assert_eq!(r.status(), 201);
    let body = json(r).await;
    assert!(body["filename"].as_str().unwrap().chars().count() <= 255);
    s.stop().await;
}

#[tokio::test]
async fn invalid_utf8_and_many_fields_in_multipart() {
    let s = TestServer::start().await;
    let mut body = Vec::new();
    body.extend_from_slice(b"--B\r\nContent-Disposition: form-data; name=\"med\xffia\"; filename=\"\xfe\xff.png\"\r\n\r\n");
    body.extend_from_slice(&png(4, 4, 2));
    body.extend_from_slice(b"\r\n--B\r\nContent-Disposition: form-data; name=\"media\"; filename=\"ok\xc3\x28.png\"\r\n\r\n");
    body.extend_from_slice(&png(4, 4, 3));
    body.extend_from_slice(b"\r\n--B--\r\n");
    let r = client()
        .post(s.at("/api/media/upload"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status() == 201 || r.status() == 400, "{}", r.status());
    assert!(json(r).await.is_object());

    let mut form = String::new();
    for i in 0..10_000 {
        form.push_str(&format!(
            "--B\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n"
        ));
    }
    form.push_str("--B--\r\n");
    let r = client()
        .post(s.at("/api/media/upload"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(json(r).await["message"].as_str().unwrap().contains("parts"));
    let r = client()
        .post(s.at("/api/media/upload"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body("--B\r\nContent-Disposition: form-data; name=\"media\"; filename=\"x.png\"\r\n\r\nunterminated")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn png_header_with_garbage_fails_at_the_ai_with_a_clear_error() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(std::iter::repeat_n(0xAB, 4000));
    let r = upload(&s.url, "broken.png", bytes).await;
    assert_eq!(r.status(), 201, "typed by its magic bytes");
    let body = json(r).await;
    let row = wait_status(&s.url, body["queueId"].as_str().unwrap(), "failed", 10.0).await;
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot identify image"),
        "{}",
        row["last_error"]
    );
    s.stop().await;
}

fn incompressible_photo(len: usize, seed: u64) -> Vec<u8> {
    let mut v = png(8, 8, seed as u8);
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    while v.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

#[tokio::test]
async fn disk_full_answers_507_keeps_the_database_and_recovers() {
    // Mounting needs root; CI runs as root, so there this test always runs.
    let Some(fs) = SmallFs::mount(24) else { return };
    let (mut c, _tmp) = common::test_config();
    c.data_dir = fs.dir.path().to_path_buf();
    let s = TestServer::start_with(c, None).await;
    let mut stored = Vec::new();
    let mut full = None;
    for i in 0..20u64 {
        let r = upload(
            &s.url,
            "big.png",
            incompressible_photo(3 * 1024 * 1024, i + 1),
        )
        .await;
        match r.status().as_u16() {
            201 => stored.push(json(r).await["mediaItemId"].as_str().unwrap().to_string()),
            507 => {
                full = Some(json(r).await);
                break;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    let full = full.expect("the disk never filled");
    assert_eq!(full["error"], "Disk full");
    assert!(!stored.is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(fs.dir.path().join("uploads"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "partial file left");
    // The database is readable and every stored item is intact.
    let st = s.get_json("/api/queue/stats").await;
    assert_eq!(st["stats"]["queued"], stored.len());
    for id in &stored {
        assert_eq!(s.get(&format!("/api/media/{id}/file")).await.status(), 200);
    }
    // Freeing space makes uploads work again.
    for id in stored.iter().take(2) {
        assert_eq!(s.delete(&format!("/api/media/{id}")).await.status(), 200);
    }
    let again = upload(&s.url, "after.png", incompressible_photo(1024 * 1024, 99)).await;
    assert_eq!(again.status(), 201);
    s.stop().await;
    drop(fs);
}
