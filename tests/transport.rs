//! HTTP/2 and the HTTPS port against clients that hold connections without
//! using them: silent HTTP/2 connections (prior knowledge over plain TCP,
//! and ALPN `h2` over TLS) are closed at the header deadline while another
//! address is served throughout; a peer that stops answering pings loses
//! its connection even with a stream open; plain HTTP sent to the HTTPS
//! port is redirected there instead of getting a TLS alert.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use common::{bin::Launch, raw};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

const DEADLINE: Duration = Duration::from_secs(2);
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// The binary with a short header deadline and small connection caps
/// (per address: half of 64), plain HTTP or HTTPS.
async fn launch(tls: bool) -> (common::bin::Binary, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Launch::new(&tmp.path().join("data"))
        .env("HEADER_TIMEOUT_SECS", DEADLINE.as_secs())
        .env("MAX_CONNECTIONS", 64)
        .env("MAX_CONNECTIONS_PER_IP", 32);
    if tls {
        l = l.env("TLS_SELF_SIGNED", "true");
    }
    (l.start().await, tmp)
}

fn addr(b: &common::bin::Binary) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], b.port))
}

/// A TLS client that trusts the binary's own certificate and offers `alpn`.
fn tls_connector(b: &common::bin::Binary, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let pem = std::fs::read(b.data.join("tls/cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A TCP (and TLS, when `tls`) connection from `from`.
async fn open(
    b: &common::bin::Binary,
    from: Option<IpAddr>,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> std::io::Result<Box<dyn Io>> {
    let tcp = raw::connect(&format!("http://{}", addr(b)), from).await?;
    Ok(match tls {
        None => Box::new(tcp),
        Some(c) => {
            let name = rustls::pki_types::ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
            Box::new(c.connect(name, tcp).await?)
        }
    })
}

/// An HTTP/2 client connection; its driver's task ends when the server
/// closes the connection, and says when.
struct H2 {
    send: h2::client::SendRequest<Bytes>,
    ended: tokio::task::JoinHandle<Instant>,
}

/// The handshake, complete once the server answered a ping (so it has
/// read our preface and we have its SETTINGS); `None` if it closed instead.
async fn h2_connect(io: Box<dyn Io>) -> Option<H2> {
    let (send, mut conn) = h2::client::handshake(io).await.ok()?;
    let mut ping = conn.ping_pong().expect("taken once");
    let ended = tokio::spawn(async move {
        let _ = conn.await;
        Instant::now()
    });
    tokio::time::timeout(Duration::from_secs(5), ping.ping(h2::Ping::opaque()))
        .await
        .ok()?
        .ok()?;
    Some(H2 { send, ended })
}

impl H2 {
    async fn get(&mut self, authority: &str, path: &str) -> Result<u16, String> {
        let req = poem::http::Request::get(format!("http://{authority}{path}"))
            .body(())
            .unwrap();
        let mut send = self.send.clone().ready().await.map_err(|e| e.to_string())?;
        let (resp, _) = send.send_request(req, true).map_err(|e| e.to_string())?;
        let resp = resp.await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        Ok(status)
    }
}

/// Silent connections from one address, up to its cap, while another
/// address asks for `/health` over HTTP/2 and HTTP/1.1 every 100 ms.
async fn silent_connections_close_and_others_are_served(tls: bool) {
    let (b, _tmp) = launch(tls).await;
    let proto = if tls { "h2 over TLS" } else { "h2c" };
    let connector = tls.then(|| tls_connector(&b, b"h2"));
    let authority = addr(&b).to_string();

    // 40 connections from 127.0.0.1: 32 fit the address's cap, the rest
    // are refused at once. Half of the held ones ask one request first
    // (an idle keep-alive), the other half finish the handshake and say
    // nothing more.
    let opened = Instant::now();
    let mut held = Vec::new();
    let mut refused = 0;
    let mut streams = Vec::new();
    for i in 0..40 {
        let io = match open(&b, None, connector.as_ref()).await {
            Ok(io) => io,
            Err(_) => {
                refused += 1;
                continue;
            }
        };
        let Some(mut c) = h2_connect(io).await else {
            refused += 1;
            continue;
        };
        streams.push(c.send.current_max_send_streams());
        if i % 2 == 0 {
            assert_eq!(c.get(&authority, "/health").await, Ok(200));
        }
        held.push(c);
    }
    let after_open = opened.elapsed();
    assert_eq!(held.len(), 32, "{proto}: {refused} refused");

    // Another address is served throughout, until every silent one closed.
    let other = reqwest::Client::builder()
        .local_address(OTHER)
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let scheme = if tls { "https" } else { "http" };
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    loop {
        let t = Instant::now();
        let r = other
            .get(format!("{scheme}://{authority}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let io = open(&b, Some(OTHER), connector.as_ref()).await.unwrap();
        let mut c = h2_connect(io).await.unwrap();
        assert_eq!(c.get(&authority, "/health").await, Ok(200));
        slowest = slowest.max(t.elapsed());
        served += 1;
        if held.iter().all(|c| c.ended.is_finished()) {
            break;
        }
        assert!(
            opened.elapsed() < after_open + DEADLINE + Duration::from_secs(8),
            "{proto}: silent connections still open after {:?}",
            opened.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut closed = Vec::new();
    for c in held {
        closed.push(c.ended.await.unwrap().duration_since(opened));
    }
    let first = *closed.iter().min().unwrap();
    let last = *closed.iter().max().unwrap();
    println!(
        "{proto}: 32 silent connections held, {refused} refused; closed between {first:?} and \
         {last:?} after the first opened (deadline {DEADLINE:?}, opening took {after_open:?}); \
         another address served {served} times, slowest {slowest:?}"
    );
    assert!(
        first >= DEADLINE,
        "{proto}: closed before the deadline: {first:?}"
    );
    assert!(
        streams.iter().all(|&n| n == 100),
        "{proto}: the stream limit the server set: {streams:?}"
    );
    assert!(slowest < Duration::from_secs(1), "{proto}: {slowest:?}");
    assert!(b.log_text().contains("MAX_CONNECTIONS_PER_IP"));
    b.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_h2c_connections_close_at_the_deadline_while_another_address_is_served() {
    silent_connections_close_and_others_are_served(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_h2_tls_connections_close_at_the_deadline_while_another_address_is_served() {
    silent_connections_close_and_others_are_served(true).await;
}

/// Connections that never send a byte (not even a TLS hello or the HTTP/2
/// preface) go at the deadline too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_speaks_is_closed_at_the_deadline() {
    for tls in [false, true] {
        let (b, _tmp) = launch(tls).await;
        let mut s = raw::connect(&b.url, None).await.unwrap();
        let t0 = Instant::now();
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        assert!(r.is_ok(), "tls {tls}: still open after 10 s");
        let at = t0.elapsed();
        assert!(
            at >= DEADLINE - Duration::from_millis(100),
            "tls {tls}: {at:?}"
        );
        assert!(at < DEADLINE + Duration::from_secs(3), "tls {tls}: {at:?}");
        b.terminate().await;
    }
}

/// Raw HTTP/2 frames: a client that opens a stream on the event stream
/// (which never ends) and then neither reads nor answers pings.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK: a literal header with an indexed name (RFC 7541 6.2.2).
fn literal(name_index: u8, value: &str) -> Vec<u8> {
    let mut h = vec![name_index, value.len() as u8];
    h.extend_from_slice(value.as_bytes());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_pings_loses_its_connection_with_a_stream_open() {
    let (b, _tmp) = launch(false).await;
    let mut s = TcpStream::connect(addr(&b)).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&frame(4, 0, 0, &[])).await.unwrap();
    // Its SETTINGS first (acknowledged), then the request.
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 4, "the server's SETTINGS come first");
    let mut settings = vec![0u8; u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize];
    s.read_exact(&mut settings).await.unwrap();
    s.write_all(&frame(4, 1, 0, &[])).await.unwrap();
    let mut headers = vec![0x82, 0x86]; // GET, http
    headers.extend(literal(4, "/api/events"));
    headers.extend(literal(1, &addr(&b).to_string()));
    s.write_all(&frame(1, 0x4 | 0x1, 1, &headers))
        .await
        .unwrap();
    let asked = Instant::now();

    // Read everything, answer nothing: the server pings, then gives up.
    let mut frames = Vec::new();
    let mut pings = 0;
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let mut head = [0u8; 9];
            if s.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if s.read_exact(&mut payload).await.is_err() {
                return;
            }
            if head[3] == 6 && head[4] & 1 == 0 {
                pings += 1;
            }
            frames.push(head[3]);
        }
    })
    .await;
    let at = asked.elapsed();
    assert!(
        ended.is_ok(),
        "an unanswered peer with a stream open still connected after 15 s; frames {frames:?}"
    );
    assert!(pings >= 1, "no ping before the close: {frames:?}");
    assert!(frames.contains(&1), "the stream was answered: {frames:?}");
    // A ping after the deadline without frames from the peer, then the
    // same again for its answer.
    assert!(at >= DEADLINE * 2 - Duration::from_millis(200), "{at:?}");
    assert!(at < DEADLINE * 2 + Duration::from_secs(4), "{at:?}");
    println!("unanswered pings: closed {at:?} after the request; frames {frames:?}");
    b.terminate().await;
}

/// Plain HTTP to the HTTPS port: a redirect to the same host and path
/// over HTTPS (which then works), a JSON 400 without a usable host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_https_port_is_redirected_to_https() {
    let (b, _tmp) = launch(true).await;
    let url = &b.url;
    let host = addr(&b).to_string();

    let a = raw::send_then_read(
        url,
        &format!("GET /api/settings?x=1 HTTP/1.1\r\nHost: {host}"),
        b"",
        0,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 307, "{} {}", a.headers, a.body);
    let location = format!("https://{host}/api/settings?x=1");
    assert!(
        a.headers
            .to_ascii_lowercase()
            .contains(&format!("location: {location}")),
        "{}",
        a.headers
    );

    // As a browser's fetch would: the redirect followed to a working page.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = plain.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status(), 307);
    let next = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(next, format!("https://{host}/health"));
    let secure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = secure.get(&next).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A request without a host to send it to: a JSON 400.
    let a = raw::send_then_read(url, "GET / HTTP/1.0", b"", 0)
        .await
        .unwrap();
    assert_eq!(a.status, 400, "{}", a.body);
    let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["code"], "bad-request");
    assert!(body["message"].as_str().unwrap().contains("https://"));

    // A body the redirect does not read still gets the answer, not a reset.
    let a = raw::send_then_read(
        url,
        &format!("POST /api/media/upload/raw?filename=a.png HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1048576"),
        &[7u8; 65536],
        1024 * 1024,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 307);
    b.terminate().await;
}
