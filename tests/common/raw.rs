//! HTTP the way some real clients do it, over a bare socket: Python's
//! `requests` and `httpx` write the whole request body before they read a
//! byte of the answer, so a server that answers early and closes resets
//! them. These helpers send exactly that way.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// The status code and body of an answer read after the whole request
/// was written; `Err` names what went wrong (a reset, a timeout).
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

/// Connects from `from` (e.g. 127.0.0.2) when given.
pub async fn connect(url: &str, from: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

/// Writes `head` (request line and headers, without the blank line), the
/// body (`body` repeated to `len` bytes) and only then reads the answer.
pub async fn send_then_read(
    url: &str,
    head: &str,
    body: &[u8],
    len: u64,
) -> Result<Answer, String> {
    let mut s = connect(url, None)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    s.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("writing the head: {e}"))?;
    let mut sent = 0u64;
    while sent < len {
        let n = (len - sent).min(body.len() as u64) as usize;
        s.write_all(&body[..n])
            .await
            .map_err(|e| format!("writing the body at {sent} bytes: {e}"))?;
        sent += n as u64;
    }
    read_answer(&mut s).await
}

pub async fn read_answer(s: &mut TcpStream) -> Result<Answer, String> {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut out)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if out.is_empty() => return Err(format!("reading the answer: {e}")),
        Ok(Err(_)) => {}
        Err(_) => return Err("no answer within 60 s".into()),
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    Ok(Answer {
        status,
        headers: headers.to_string(),
        body: body.to_string(),
    })
}

/// A multipart upload of `file` in field `media`, as one byte string.
pub fn multipart(name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "rawBOUNDARYx9";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// The most resident memory this process ever had, in KiB: a buffer that
/// was filled and freed again still shows here.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM")
}

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(key))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}
