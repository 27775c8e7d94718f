//! The live channel's sessions are capped per address and in total,
//! WebSocket and polling alike: a client sending Engine.IO handshakes in a
//! loop gets JSON 503s once its address holds its share, the process's
//! memory stays put (it grew by a gigabyte before), other addresses are
//! still served, and a seat comes back when its session ends.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use common::{bin::Launch, raw};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PER_IP: usize = 24;
const TOTAL: usize = 40;
const HANDSHAKES: usize = 4000;
const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

fn from(last: u8) -> reqwest::Client {
    common::client_builder()
        .local_address(ip(last))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `n` polling handshakes from `client`, 8 at a time; the statuses seen
/// and one refusal's body.
async fn handshakes(
    client: &reqwest::Client,
    url: &str,
    n: usize,
) -> (usize, usize, Option<serde_json::Value>) {
    use futures_util::StreamExt;
    let results: Vec<(u16, String)> = futures_util::stream::iter(0..n)
        .map(|_| async {
            let r = client.get(format!("{url}{POLLING}")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(ok + refused.len(), n, "only 200 and 503 expected");
    if let Some((_, body)) = results.iter().find(|(s, _)| *s == 200) {
        assert!(
            body.starts_with("0{\"sid\""),
            "an Engine.IO open packet: {body}"
        );
    }
    let body = refused
        .first()
        .map(|(_, b)| serde_json::from_str(b).unwrap());
    (ok, refused.len(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_handshakes_are_capped_per_address_and_in_total_and_memory_stays_put() {
    let tmp = tempfile::tempdir().unwrap();
    let b = Launch::new(&tmp.path().join("data"))
        .env("MAX_LIVE_SESSIONS_PER_IP", PER_IP)
        .env("MAX_LIVE_SESSIONS", TOTAL)
        .env("RUST_LOG", "warn")
        .start()
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(b.pid());

    let t0 = Instant::now();
    let (ok, refused, body) = handshakes(&from(1), &b.url, HANDSHAKES).await;
    let took = t0.elapsed();
    let after = rss_kib(b.pid());
    println!(
        "{HANDSHAKES} polling handshakes from one address in {took:?}: {ok} sessions, {refused} \
         refused; RSS {before} -> {after} KiB (+{} KiB)",
        after.saturating_sub(before)
    );
    // Sessions that never join a namespace end after 10 s, so a run longer
    // than that may seat a few more; never more than the cap at once.
    let rounds = (took.as_secs() / 10 + 1) as usize;
    assert!(ok >= PER_IP && ok <= PER_IP * rounds, "{ok} sessions");
    let body = body.expect("some were refused");
    assert_eq!(body["code"], "too-many-live-sessions");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("MAX_LIVE_SESSIONS_PER_IP"));
    // Without the cap each handshake kept ~20-30 KiB (about 100 MiB here).
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} to {after} KiB"
    );

    // Another address still gets in, up to what is left of the total.
    let (ok2, refused2, body2) = handshakes(&from(2), &b.url, PER_IP).await;
    let left = TOTAL - PER_IP;
    assert_eq!((ok2, refused2), (left, PER_IP - left));
    let message = body2.unwrap()["message"].as_str().unwrap().to_string();
    assert!(message.contains("MAX_LIVE_SESSIONS)"), "{message}");
    let (ok3, _, _) = handshakes(&from(3), &b.url, 1).await;
    assert_eq!(ok3, 0, "the total is reached");
    assert!(b.log_text().contains("live sessions refused"));

    // Sessions that never joined a namespace end at the connect timeout
    // (10 s), and their seats come back.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (ok4, _, _) = handshakes(&from(3), &b.url, 1).await;
    assert_eq!(ok4, 1, "seats came back after the connect timeout");
    b.terminate().await;
}

/// An Engine.IO WebSocket opened directly (as the app does) and, when
/// answered 101, joined to the `/` namespace as socket.io-client does;
/// the answer's head.
async fn websocket(url: &str, from: u8) -> (tokio::net::TcpStream, String) {
    let mut s = raw::connect(url, Some(ip(from))).await.unwrap();
    let host = url.trim_start_matches("http://");
    s.write_all(
        format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n\
             Authorization: Bearer {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            common::TOKEN
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let head = read_until(&mut s, &mut seen, b"\r\n\r\n").await;
    if head.starts_with("HTTP/1.1 101") {
        // A masked text frame "40" (mask 0): CONNECT to "/".
        s.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'4', b'0'])
            .await
            .unwrap();
        read_until(&mut s, &mut seen, b"40{\"sid\"").await;
    }
    (s, head)
}

/// Reads into `seen` until it holds `what`; all of it as text.
async fn read_until(s: &mut tokio::net::TcpStream, seen: &mut Vec<u8>, what: &[u8]) -> String {
    let mut buf = vec![0u8; 2048];
    while !seen.windows(what.len()).any(|w| w == what) {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(seen));
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_sessions_are_capped_and_a_closed_one_frees_its_seat() {
    let tmp = tempfile::tempdir().unwrap();
    let b = Launch::new(&tmp.path().join("data"))
        .env("MAX_LIVE_SESSIONS_PER_IP", 4)
        .env("MAX_LIVE_SESSIONS", 8)
        // An upgraded connection is not an idle one: it outlives this.
        .env("HEADER_TIMEOUT_SECS", 1)
        .start()
        .await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let (s, head) = websocket(&b.url, 1).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        open.push(s);
    }
    let (_, head) = websocket(&b.url, 1).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("too-many-live-sessions"), "{head}");
    // A polling handshake counts against the same cap.
    let r = from(1)
        .get(format!("{}{POLLING}", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Another address is still seated.
    let (_other, head) = websocket(&b.url, 2).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    // Past the header deadline the sockets still work.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let s = open.last_mut().unwrap();
    let ask = b"42[\"queue:get-status\"]";
    let mut frame = vec![0x81, 0x80 | ask.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(ask);
    s.write_all(&frame).await.unwrap();
    read_until(s, &mut Vec::new(), b"queue:update").await;

    // One socket closes: its seat is back within a second.
    drop(open.pop());
    let t0 = Instant::now();
    loop {
        let (s, head) = websocket(&b.url, 1).await;
        if head.starts_with("HTTP/1.1 101") {
            open.push(s);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "no seat after the socket closed: {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.terminate().await;
}
