//! HTTPS for the server. A headset on the LAN can enter VR (WebXR) only in
//! a secure context, so the app must come over HTTPS: from `TLS_CERT` and
//! `TLS_KEY` (PEM), or with `TLS_SELF_SIGNED=true` from a certificate made
//! on first start and kept in `DATA_DIR/tls/` (as the app's upstream stack
//! does), so a headset that accepted it once keeps accepting it.
//!
//! Plain HTTP sent to the HTTPS port (a browser given `http://nas:3000`)
//! gets a redirect to the same address over `https://`, or a 400 when it
//! names no host, instead of a TLS alert the browser shows as garbage.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use poem::http::uri::{Authority, PathAndQuery};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::{conn::ConnIo, error::ApiError};
use crate::config::Config;

/// The most of a plain request's head read to answer it.
const MAX_PLAIN_HEAD: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("set both TLS_CERT and TLS_KEY (only one is set)")]
    Half,
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot make the self-signed certificate in {dir}: {message}")]
    SelfSigned { dir: PathBuf, message: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The acceptor, or `None` for plain HTTP.
pub fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, HttpsError> {
    let vr = &config.vr;
    let (cert, key) = match (&vr.tls_cert, &vr.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (Some(_), None) | (None, Some(_)) => return Err(HttpsError::Half),
        (None, None) if vr.tls_self_signed => self_signed(&config.data_dir.join("tls"))?,
        (None, None) => return Ok(None),
    };
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| HttpsError::Read {
            path: p.to_path_buf(),
            message: e.to_string(),
        })
    };
    let cert_pem = read(&cert)?;
    let key_pem = read(&key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| HttpsError::Read {
            path: cert.clone(),
            message: e.to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| HttpsError::Read {
        path: key.clone(),
        message: e.to_string(),
    })?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| HttpsError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| HttpsError::Config(e.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// Answers a plain HTTP request on the HTTPS port; the caller bounds the
/// time it takes.
pub async fn answer_plain_http<T: Send + Unpin + 'static>(mut io: ConnIo<T>) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_PLAIN_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = io.write_all(&plain_http_answer(&head)).await;
    let _ = io.shutdown().await;
}

/// A temporary redirect to the same host and path over HTTPS (temporary:
/// a browser must not remember it if HTTPS is turned off later), or a
/// JSON 400 when the request names no usable host.
fn plain_http_answer(head: &[u8]) -> Vec<u8> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = matches!(req.parse(head), Ok(httparse::Status::Complete(_)));
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
        .filter(|h| !h.contains('@'))
        .and_then(|h| h.parse::<Authority>().ok());
    let path = req
        .path
        .filter(|p| p.starts_with('/'))
        .and_then(|p| p.parse::<PathAndQuery>().ok());
    match (parsed, host) {
        (true, Some(host)) => {
            let path = path.as_ref().map_or("/", PathAndQuery::as_str);
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: https://{host}{path}\r\n\
                 content-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_bytes()
        }
        _ => ApiError::bad_request("This port speaks HTTPS only: use an https:// address")
            .raw_answer(),
    }
}

/// `dir/cert.pem` and `dir/key.pem`, made once (names: localhost, this
/// machine's name, 127.0.0.1, ::1) and kept.
fn self_signed(dir: &Path) -> Result<(PathBuf, PathBuf), HttpsError> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let fail = |message: String| HttpsError::SelfSigned {
        dir: dir.to_path_buf(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim().to_string();
        if !h.is_empty() && !names.contains(&h) {
            names.push(h);
        }
    }
    let made = rcgen::generate_simple_self_signed(names).map_err(|e| fail(e.to_string()))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes()).map_err(fail)?;
    write_private(&cert, made.cert.pem().as_bytes()).map_err(fail)?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for HTTPS");
    Ok((cert, key))
}

/// Written whole (temp name, fsync, rename), readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| e.to_string())?;
    f.write_all(bytes).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::plain_http_answer;

    fn answer(head: &str) -> String {
        String::from_utf8(plain_http_answer(head.as_bytes())).unwrap()
    }

    #[test]
    fn plain_http_is_sent_to_https_on_the_same_host_and_path() {
        let a = answer("GET /admin/?tab=models HTTP/1.1\r\nHost: nas.local:3000\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 307 "), "{a}");
        assert!(
            a.contains("\r\nlocation: https://nas.local:3000/admin/?tab=models\r\n"),
            "{a}"
        );
        let a = answer("HEAD * HTTP/1.1\r\nHost: [::1]:3000\r\n\r\n");
        assert!(a.contains("location: https://[::1]:3000/\r\n"), "{a}");
    }

    #[test]
    fn no_usable_host_is_a_json_400() {
        for head in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: evil.example@nas\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: nas",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let a = answer(head);
            assert!(a.starts_with("HTTP/1.1 400 "), "{head:?}: {a}");
            assert!(a.contains("\"code\":\"bad-request\""), "{a}");
            assert!(!a.contains("location"), "{a}");
        }
    }
}
