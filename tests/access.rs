//! The one access rule, asked the way browsers ask: HTTP/1.1 and HTTP/2
//! (`:authority`, no `Host`), over plain HTTP, over our TLS, and behind a
//! TLS-terminating proxy; for every entry point (API routes, the app's
//! files, `/admin/`, the Socket.IO handshake). A same-origin `Origin` is
//! the page's own and passes; any other is refused; the Host guard reads
//! `:authority` too; the session cookie is `Secure` whenever the client
//! used HTTPS.

mod common;

use std::net::SocketAddr;

use common::{immich_standin::ImmichStandin, TestServer};
use reqwest::{Method, StatusCode, Version};

#[derive(Debug, Clone, Copy)]
enum Proto {
    H1,
    H2,
}

/// A client speaking `proto` (HTTP/2 over TLS through ALPN, over plain
/// HTTP with prior knowledge, as curl's `--http2-prior-knowledge`),
/// accepting our self-signed certificate, resolving `names` to `addr`.
fn client(proto: Proto, addr: SocketAddr, names: &[&str]) -> reqwest::Client {
    let mut b = reqwest::Client::builder().danger_accept_invalid_certs(true);
    b = match proto {
        Proto::H1 => b.http1_only(),
        Proto::H2 => b.http2_prior_knowledge(),
    };
    for n in names {
        b = b.resolve(n, addr);
    }
    b.build().unwrap()
}

fn app_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("index.html"),
        "<!doctype html><title>ImmichVR</title>",
    )
    .unwrap();
    std::fs::create_dir(d.path().join("assets")).unwrap();
    std::fs::write(d.path().join("assets/app-1.js"), "console.log('vr')").unwrap();
    d
}

struct Setup {
    server: TestServer,
    _immich: ImmichStandin,
    _app: tempfile::TempDir,
    addr: SocketAddr,
}

async fn start(tls: bool, tweak: impl FnOnce(&mut immichvr::Config)) -> Setup {
    let immich = ImmichStandin::start(common::immich_standin::library(3)).await;
    let app = app_dir();
    let (mut c, tmp) = common::test_config();
    c.vr.tls_self_signed = tls;
    c.vr.frontend_dir = Some(app.path().to_path_buf());
    c.immich_url = Some(immich.url());
    c.immich_api_key = Some(common::immich_standin::KEY.parse().unwrap());
    tweak(&mut c);
    let server = TestServer::start_with(c, Some(tmp)).await;
    let addr: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    // The in-process server was waited for over plain HTTP; over TLS
    // wait here.
    if tls {
        let c = client(Proto::H1, addr, &[]);
        for _ in 0..200 {
            if c.get(format!("https://{addr}/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    Setup {
        server,
        _immich: immich,
        _app: app,
        addr,
    }
}

const PHOTO: &str = "00000000-0000-4000-8000-000000000001";

/// What a page of the app asks for: a thumbnail as a texture (GET with
/// `Origin`, crossOrigin="anonymous"), settings read and written, one of
/// its own files, the admin page's script, and the live channel's
/// handshake (polling: the same check as the WebSocket upgrade).
fn app_requests() -> Vec<(Method, String, Option<&'static str>)> {
    vec![
        (
            Method::GET,
            format!("/api/immich/assets/{PHOTO}/thumbnail"),
            None,
        ),
        (Method::GET, "/api/settings".into(), None),
        (
            Method::PUT,
            "/api/settings".into(),
            Some(r#"{"autoGenerateOnEnter":true}"#),
        ),
        (Method::GET, "/assets/app-1.js".into(), None),
        (Method::GET, "/admin/app.js".into(), None),
        (
            Method::GET,
            "/socket.io/?EIO=4&transport=polling".into(),
            None,
        ),
    ]
}

async fn send(
    c: &reqwest::Client,
    base: &str,
    (method, path, body): &(Method, String, Option<&'static str>),
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = c.request(method.clone(), format!("{base}{path}"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(*b);
    }
    r.send().await.unwrap()
}

async fn code(r: reqwest::Response) -> String {
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    v["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_s_own_origin_passes_over_every_protocol_and_others_are_refused() {
    for tls in [false, true] {
        let s = start(tls, |_| {}).await;
        let scheme = if tls { "https" } else { "http" };
        let base = format!("{scheme}://{}", s.addr);
        for proto in [Proto::H1, Proto::H2] {
            let c = client(proto, s.addr, &[]);
            for req in app_requests() {
                let r = send(&c, &base, &req, &[("origin", &base)]).await;
                let want = match proto {
                    Proto::H1 => Version::HTTP_11,
                    Proto::H2 => Version::HTTP_2,
                };
                assert_eq!(r.version(), want, "{scheme} {proto:?} {}", req.1);
                assert!(
                    r.status().is_success(),
                    "{scheme} {proto:?} {} {}: {}",
                    req.0,
                    req.1,
                    r.status()
                );
                // The other scheme on the same host and port is another origin.
                let other = if tls { "http" } else { "https" };
                let wrong = format!("{other}://{}", s.addr);
                for foreign in [wrong.as_str(), "http://evil.example", "null"] {
                    let r = send(&c, &base, &req, &[("origin", foreign)]).await;
                    assert_eq!(
                        r.status(),
                        StatusCode::FORBIDDEN,
                        "{scheme} {proto:?} {} from {foreign}",
                        req.1
                    );
                    assert_eq!(code(r).await, "origin-not-allowed");
                }
            }
        }
        s.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_guard_reads_http2_authority() {
    let s = start(false, |c| {
        c.allowed_hosts = Some("photos.example.org".into())
    })
    .await;
    for proto in [Proto::H1, Proto::H2] {
        let c = client(proto, s.addr, &["evil.example.com", "photos.example.org"]);
        let port = s.addr.port();
        for req in app_requests() {
            let r = send(&c, &format!("http://evil.example.com:{port}"), &req, &[]).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{proto:?} {}", req.1);
            assert_eq!(code(r).await, "host-not-allowed", "{proto:?} {}", req.1);
        }
        // A listed name is fine, over either protocol.
        let r = c
            .get(format!("http://photos.example.org:{port}/api/settings"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{proto:?}: {}", r.status());
    }
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_terminating_proxy_the_forwarded_scheme_and_host_count() {
    // The proxy is on this machine (loopback is trusted by default); it
    // either keeps the Host (Caddy) or names it in X-Forwarded-Host (nginx).
    let s = start(false, |c| {
        c.allowed_hosts = Some("photos.example.org".into())
    })
    .await;
    let base = format!("http://{}", s.addr);
    let origin = "https://photos.example.org";
    let kept_host = [
        ("host", "photos.example.org"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "192.168.1.23"),
        ("origin", origin),
    ];
    let forwarded_host = [
        ("x-forwarded-host", "photos.example.org"),
        ("x-forwarded-proto", "https"),
        ("origin", origin),
    ];
    let rfc7239 = [
        (
            "forwarded",
            "for=192.168.1.23;proto=https;host=photos.example.org",
        ),
        ("origin", origin),
    ];
    let c = client(Proto::H1, s.addr, &[]);
    for headers in [&kept_host[..], &forwarded_host[..], &rfc7239[..]] {
        for req in app_requests() {
            let r = send(&c, &base, &req, headers).await;
            assert!(
                r.status().is_success(),
                "{headers:?} {}: {}",
                req.1,
                r.status()
            );
        }
    }
    // Without the scheme the proxy saw, the page's https origin is not
    // this plain-HTTP request's.
    let r = send(
        &c,
        &base,
        &app_requests()[2],
        &[("host", "photos.example.org"), ("origin", origin)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(r).await, "origin-not-allowed");
    s.server.stop().await;

    // From a peer that is not a trusted proxy the same headers count for
    // nothing; PUBLIC_URL names the address people use instead.
    let s = start(false, |c| {
        c.trusted_proxies = "10.0.0.1".into();
        c.allowed_hosts = Some("photos.example.org".into());
    })
    .await;
    let base = format!("http://{}", s.addr);
    let r = send(&s_client(&s), &base, &app_requests()[2], &kept_host).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    s.server.stop().await;
    let s = start(false, |c| {
        c.public_url = Some("https://photos.example.org".into())
    })
    .await;
    let base = format!("http://{}", s.addr);
    for req in app_requests() {
        let r = send(&s_client(&s), &base, &req, &[("origin", origin)]).await;
        assert!(
            r.status().is_success(),
            "PUBLIC_URL {}: {}",
            req.1,
            r.status()
        );
    }
    s.server.stop().await;
}

fn s_client(s: &Setup) -> reqwest::Client {
    client(Proto::H1, s.addr, &[])
}

fn set_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn login(c: &reqwest::Client, base: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = c
        .post(format!("{base}/api/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"token":"access-token-1"}"#);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_whenever_the_client_used_https() {
    let token = |c: &mut immichvr::Config| c.auth_token = Some("access-token-1".parse().unwrap());
    let s = start(true, token).await;
    for proto in [Proto::H1, Proto::H2] {
        let c = client(proto, s.addr, &[]);
        let r = login(&c, &format!("https://{}", s.addr), &[]).await;
        assert_eq!(r.status(), 200);
        let cookie = set_cookie(&r);
        assert!(cookie.contains("; Secure"), "{proto:?}: {cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    }
    s.server.stop().await;

    let s = start(false, token).await;
    let base = format!("http://{}", s.addr);
    let c = s_client(&s);
    let plain = login(&c, &base, &[]).await;
    assert_eq!(plain.status(), 200);
    assert!(
        !set_cookie(&plain).contains("Secure"),
        "{}",
        set_cookie(&plain)
    );
    let proxied = login(&c, &base, &[("x-forwarded-proto", "https")]).await;
    assert!(set_cookie(&proxied).contains("; Secure"));
    s.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_entry_point_needs_credentials() {
    let s = start(false, |c| {
        c.auth_token = Some("access-token-1".parse().unwrap())
    })
    .await;
    let base = format!("http://{}", s.addr);
    for proto in [Proto::H1, Proto::H2] {
        let c = client(proto, s.addr, &[]);
        for path in [
            "/api/settings",
            "/socket.io/?EIO=4&transport=polling",
            "/metrics",
        ] {
            let r = c.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{proto:?} {path}");
            assert_eq!(code(r).await, "unauthorized");
            let r = c
                .get(format!("{base}{path}"))
                .bearer_auth("access-token-1")
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{proto:?} {path}: {}", r.status());
        }
        // A DNS-rebinding host needs no guard here: no credentials of ours
        // travel with it, and without them nothing answers.
        let r = c.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    s.server.stop().await;
}
