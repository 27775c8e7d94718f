//! Slow and half-open clients: one address opening more connections than
//! the process has file descriptors, each stopping in the middle of its
//! headers, neither takes the service down for others nor outlives the
//! header deadline.

mod common;

use common::Api;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use common::{bin::Launch, json, png, raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HALF_OPEN: usize = 1100;
const DEADLINE: u64 = 3;
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn from_other() -> reqwest::Client {
    common::client_builder()
        .local_address(OTHER)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_from_one_address_neither_block_others_nor_outlive_the_deadline() {
    // This process holds 1,100 sockets; the service gets 1,024 descriptors.
    rlimit::increase_nofile_limit(8192).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let b = Launch::new(&tmp.path().join("data"))
        .env("HEADER_TIMEOUT_SECS", DEADLINE)
        .nofile(1024)
        .start()
        .await;
    let pid = b.pid();

    let started = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..HALF_OPEN {
        let mut s = raw::connect(&b.url, None).await.unwrap();
        // The request line and one header, then nothing.
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        conns.push(s);
    }
    let opened = started.elapsed();
    let peak_fds = open_fds(pid);

    // Another address is served meanwhile.
    let other = from_other();
    let h = other.get(b.at("/health")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let part = reqwest::multipart::Part::bytes(png(16, 16, 9)).file_name("other.png");
    let up = other
        .post(b.at("/api/media/upload"))
        .multipart(reqwest::multipart::Form::new().part("media", part))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201, "{}", up.text().await.unwrap());

    // Every half-open connection ends: refused at once (over the
    // per-address cap) or closed at the header deadline.
    let mut refused = 0;
    let mut closed_at = Vec::new();
    let waits: Vec<_> = conns
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let r = tokio::time::timeout(
                    Duration::from_secs(DEADLINE + 10),
                    s.read_to_end(&mut buf),
                )
                .await;
                (r.is_ok(), buf, started.elapsed())
            })
        })
        .collect();
    for w in waits {
        let (ended, buf, at) = w.await.unwrap();
        assert!(ended, "a half-open connection was still open after {at:?}");
        let text = String::from_utf8_lossy(&buf);
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("\"error\""), "{text}");
            refused += 1;
        } else {
            closed_at.push(at);
        }
    }
    let held = closed_at.len();
    let last = closed_at.iter().max().copied().unwrap_or_default();
    println!(
        "half-open: {HALF_OPEN} connections opened in {opened:?}; {held} held and closed by \
         {last:?} (deadline {DEADLINE} s), {refused} refused at once; service fds at peak {peak_fds} \
         (limit 1024)"
    );
    assert!(held > 0 && refused > 0, "held {held}, refused {refused}");
    assert!(peak_fds < 1024, "{peak_fds} descriptors");
    assert!(
        last < Duration::from_secs(DEADLINE) + opened + Duration::from_secs(3),
        "closed only after {last:?}"
    );
    assert!(b
        .log_text()
        .contains("connections refused (MAX_CONNECTIONS_PER_IP)"));
    // And the service is still fine for everyone.
    let h = b.get("/health").await;
    assert_eq!(json(h).await["status"], "healthy");
    b.terminate().await;
}

/// An idle keep-alive connection goes at the header deadline; one that is
/// waiting for its answer (a busy handler) is never cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_request_outlives_the_deadlines_an_idle_connection_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let b = Launch::new(&tmp.path().join("data"))
        .env("HEADER_TIMEOUT_SECS", 1)
        .env("IDLE_TIMEOUT_SECS", 1)
        .env("UPLOAD_CONCURRENCY", 1)
        .start()
        .await;
    // Idle after one answer: closed at the deadline.
    let mut s = raw::connect(&b.url, None).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "an idle keep-alive connection stayed open");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );

    // A body that stops half-way: 408 after the idle timeout.
    let mut s = raw::connect(&b.url, None).await.unwrap();
    let (ctype, body) = raw::multipart("half.png", &png(64, 64, 1));
    s.write_all(
        format!(
            "POST /api/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer test-operator-token\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.write_all(&body[..body.len() / 2]).await.unwrap();
    let a = raw::read_answer(&mut s).await.unwrap();
    assert_eq!(a.status, 408, "{}", a.body);
    assert!(a.body.contains("IDLE_TIMEOUT_SECS"), "{}", a.body);
    assert!(
        a.body.contains("\"code\":\"request-timeout\""),
        "{}",
        a.body
    );

    // One upload holds the only slot for 3 s, trickling its body (never
    // silent for a whole second); a second waits for the slot, reading
    // nothing and sending nothing for those 3 s, and still succeeds.
    let (ctype, body) = raw::multipart("slow.png", &png(32, 32, 2));
    let url = b.url.clone();
    let slow = tokio::spawn(async move {
        let mut s = raw::connect(&url, None).await.unwrap();
        s.write_all(
            format!(
                "POST /api/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer test-operator-token\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let (head, tail) = body.split_at(body.len() - 6);
        s.write_all(head).await.unwrap();
        for byte in tail {
            tokio::time::sleep(Duration::from_millis(500)).await;
            s.write_all(&[*byte]).await.unwrap();
        }
        raw::read_answer(&mut s).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waited = Instant::now();
    let second = common::upload(&b.url, "second.png", png(32, 32, 3)).await;
    assert_eq!(second.status(), 201);
    assert!(
        waited.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        waited.elapsed()
    );
    assert_eq!(slow.await.unwrap().status, 201);
    b.terminate().await;
}
