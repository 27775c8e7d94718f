//! Serving the VR app itself: its build from `FRONTEND_DIR` at `/` with
//! the cross-origin isolation headers, our routes keeping precedence; and
//! HTTPS with a self-signed certificate made once and kept.

mod common;

use std::time::{Duration, Instant};

use common::{client, json, Api, TestServer};

fn app_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("index.html"),
        "<!doctype html><title>ImmichVR</title><div id=root></div>",
    )
    .unwrap();
    std::fs::create_dir(d.path().join("assets")).unwrap();
    std::fs::write(d.path().join("assets/index-abc123.js"), "console.log('vr')").unwrap();
    std::fs::write(d.path().join("favicon.svg"), "<svg/>").unwrap();
    d
}

fn isolated(r: &reqwest::Response) -> bool {
    r.headers()
        .get("cross-origin-opener-policy")
        .is_some_and(|v| v == "same-origin")
        && r.headers()
            .get("cross-origin-embedder-policy")
            .is_some_and(|v| v == "require-corp")
}

#[tokio::test]
async fn the_app_is_served_at_the_root_and_our_routes_keep_precedence() {
    let app = app_dir();
    let (mut c, tmp) = common::test_config();
    c.vr.frontend_dir = Some(app.path().to_path_buf());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let browser = |path: &str| {
        client()
            .get(s.at(path))
            .header("accept", "text/html")
            .send()
    };

    for path in ["/", "/gallery/2025", "/index.html"] {
        let r = browser(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(isolated(&r), "{path}");
        assert_eq!(r.headers()["cache-control"], "no-cache");
        assert!(
            r.text().await.unwrap().contains("<title>ImmichVR</title>"),
            "{path}"
        );
    }
    let js = s.get("/assets/index-abc123.js").await;
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert_eq!(js.text().await.unwrap(), "console.log('vr')");
    // Outside the directory is never served.
    let r = client()
        .get(s.at("/%2e%2e/%2e%2e/etc/passwd"))
        .send()
        .await
        .unwrap();
    assert!(
        !r.text().await.unwrap().contains("root:"),
        "escaped the app directory"
    );

    // Ours: the API (isolated too), the admin page, health.
    let api = s.get("/api/settings").await;
    assert!(isolated(&api));
    assert_eq!(json(api).await["defaultDepthModel"], "small");
    let admin = browser("/admin/").await.unwrap();
    assert!(admin.text().await.unwrap().contains("ImmichVR admin"));
    assert_eq!(s.get_json("/health").await["status"], "healthy");
    let missing = s.get("/api/nope").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(json(missing).await["code"], "not-found");
    s.stop().await;
}

/// Without `FRONTEND_DIR`, `/` stays the admin page's redirect.
#[tokio::test]
async fn no_file_outside_the_app_directory_is_served_through_a_link() {
    let app = app_dir();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "root:x:0:0:not for the app").unwrap();
    std::os::unix::fs::symlink(&secret, app.path().join("assets/x.js")).unwrap();
    std::os::unix::fs::symlink(outside.path(), app.path().join("linked")).unwrap();
    // A link that stays inside is an ordinary file of the app.
    std::os::unix::fs::symlink(
        app.path().join("assets/index-abc123.js"),
        app.path().join("assets/alias.js"),
    )
    .unwrap();
    let (mut c, tmp) = common::test_config();
    c.vr.frontend_dir = Some(app.path().to_path_buf());
    let s = TestServer::start_with(c, Some(tmp)).await;
    for path in ["/assets/x.js", "/linked/secret.txt"] {
        let r = s.get(path).await;
        let cache = r.headers().get("cache-control").cloned();
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("not for the app"),
            "{path} served a file outside"
        );
        assert_ne!(
            cache.as_ref().and_then(|v| v.to_str().ok()),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
    }
    assert_eq!(
        s.get("/assets/alias.js").await.text().await.unwrap(),
        "console.log('vr')"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_first_path_segment_not_a_prefix_decides_what_is_ours() {
    let app = app_dir();
    let (mut c, tmp) = common::test_config();
    c.vr.frontend_dir = Some(app.path().to_path_buf());
    let s = TestServer::start_with(c, Some(tmp)).await;
    // The app's own routes that merely start like ours.
    for path in ["/healthz", "/administrator", "/apis/x", "/metrics-of-mine"] {
        let r = client()
            .get(s.at(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.text().await.unwrap().contains("<title>ImmichVR</title>"),
            "{path}"
        );
    }
    // Ours stay ours.
    assert_eq!(json(s.get("/health").await).await["status"], "healthy");
    assert_eq!(s.get("/api/nope").await.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn without_the_app_the_root_is_ours() {
    let s = TestServer::start().await;
    let nr = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = nr
        .get(s.at("/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/admin/");
    assert!(!isolated(&r));
    s.stop().await;
}

fn tls_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

/// Starts the binary with HTTPS and waits for it over TLS.
async fn start_https(data: &std::path::Path) -> (std::process::Child, String) {
    let port = common::free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_immichvr"))
        .env("DATA_DIR", data)
        .env("BACKEND_PORT", port.to_string())
        .env("BIND_ADDR", "127.0.0.1")
        .env("TLS_SELF_SIGNED", "true")
        .env("AUTO_START_WORKER", "false")
        .env_remove("AUTH_TOKEN")
        .env_remove("IMMICHVR_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tls_client()
        .get(format!("{url}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "no HTTPS answer within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate_made_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut child, url) = start_https(&data).await;
    let r = tls_client()
        .get(format!("{url}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "healthy"
    );
    // Plain HTTP on the same port gets nothing useful.
    let plain = client()
        .get(url.replace("https", "http") + "/health")
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    let cert = std::fs::read(data.join("tls/cert.pem")).unwrap();
    assert!(String::from_utf8_lossy(&cert).contains("BEGIN CERTIFICATE"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "the key is the owner's alone");
    child.kill().unwrap();
    child.wait().unwrap();

    // A restart keeps the certificate a headset already accepted.
    let (mut child, url) = start_https(&data).await;
    assert_eq!(std::fs::read(data.join("tls/cert.pem")).unwrap(), cert);
    let r = tls_client()
        .get(format!("{url}/api/settings"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Half a certificate configuration is refused at start, clearly.
#[test]
fn a_certificate_without_its_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (ok, out) = common::bin::Launch::new(tmp.path())
        .env("TLS_CERT", tmp.path().join("cert.pem").display())
        .run_to_exit();
    assert!(!ok);
    assert!(out.contains("set both TLS_CERT and TLS_KEY"), "{out}");
}
