//! Optional authentication, CORS, upload concurrency and secrets in logs.

mod common;

use common::Api;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

// Strangers and this file's own token: not the harness's operator.
use common::{anonymous as client, json, png, TestServer};

const TOKEN: &str = "s3cret-token-for-tests-0123456789";

async fn with_token() -> TestServer {
    let (mut c, tmp) = common::test_config();
    c.auth_token = Some(TOKEN.parse().unwrap());
    TestServer::start_with(c, Some(tmp)).await
}

#[tokio::test]
async fn token_guards_api_but_not_health_or_docs() {
    let s = with_token().await;
    for path in [
        "/api/queue/stats",
        "/api/media/status",
        "/api/db/info",
        "/api/events",
        "/api/queue/worker/status",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        assert_eq!(json(r).await["error"], "Unauthorized");
    }
    let wrong = client()
        .get(s.at("/api/queue/stats"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = client()
        .get(s.at("/api/queue/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // The root is the service's too: closed like everything but these.
    assert_eq!(
        common::anonymous()
            .get(s.at("/"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    for path in [
        "/health",
        "/api/openapi.json",
        "/api/openapi.yaml",
        "/api/docs/",
        "/api/auth/status",
    ] {
        assert_eq!(s.get(path).await.status(), 200, "{path}");
    }
    let st = s.get_json("/api/auth/status").await;
    assert_eq!(
        (st["required"].as_bool(), st["authenticated"].as_bool()),
        (Some(true), Some(false))
    );
    // Uploads are refused before any byte is stored.
    let r = common::upload(&s.url, "x.png", png(4, 4, 1)).await;
    assert_eq!(r.status(), 401);
    assert!(std::fs::read_dir(s.data_dir.join("uploads"))
        .unwrap()
        .next()
        .is_none());
    s.stop().await;
}

#[tokio::test]
async fn login_cookie_works_for_event_stream_and_logout_ends_it() {
    let s = with_token().await;
    let bad = client()
        .post(s.at("/api/auth/login"))
        .json(&serde_json::json!({"token": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let r = client()
        .post(s.at("/api/auth/login"))
        .json(&serde_json::json!({"token": TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(
        !cookie.contains(TOKEN),
        "the cookie must not carry the raw token"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let ev = client()
        .get(s.at("/api/events"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(ev.status(), 200);
    drop(ev);
    let st = json(
        client()
            .get(s.at("/api/auth/status"))
            .header("cookie", &pair)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st["authenticated"], true);
    let out = client()
        .post(s.at("/api/auth/logout"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let after = client()
        .get(s.at("/api/queue/stats"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn spec_declares_bearer_scheme() {
    let s = TestServer::start().await;
    let spec = s.get_json("/api/openapi.json").await;
    assert_eq!(
        spec["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert!(spec["paths"]["/api/queue/stats"]["get"]["security"].is_array());
    assert!(spec["paths"]["/health"]["get"].get("security").is_none());
    s.stop().await;
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let (mut c, tmp) = common::test_config();
    c.cors_origins = Some("http://vr.example".into());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let pre = |origin: &'static str| {
        client()
            .request(reqwest::Method::OPTIONS, s.at("/api/queue/stats"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = pre("http://vr.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://vr.example"
    );
    let other = pre("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    s.stop().await;

    let s = TestServer::start().await;
    let r = client()
        .get(s.at("/api/queue/stats"))
        .header("origin", "http://vr.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    s.stop().await;
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_logs_or_responses() {
    let cap = Capture::default();
    let writer = cap.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .try_init();
    let key = "immich-key-never-logged-987";
    let (mut c, tmp) = common::test_config();
    c.auth_token = Some(TOKEN.parse().unwrap());
    // A real Immich stand-in that refuses this key: the error paths run.
    let immich =
        common::immich_standin::ImmichStandin::start(common::immich_standin::library(1)).await;
    c.immich_url = Some(immich.url());
    c.immich_api_key = Some(key.parse().unwrap());
    tracing::info!(config = ?c, "config under test");
    let s = TestServer::start_with(c, Some(tmp)).await;
    let mut bodies = String::new();
    for (path, auth) in [
        ("/api/queue/stats", true),
        ("/api/queue/stats", false),
        ("/api/media/nope", true),
        ("/api/ai/health", true),
        ("/api/immich/test", true),
        ("/api/immich/photos", true),
        (
            "/api/immich/assets/00000000-0000-4000-8000-000000000001/file",
            true,
        ),
        ("/api/db/info", true),
    ] {
        let mut r = client().get(s.at(path));
        if auth {
            r = r.bearer_auth(TOKEN);
        }
        let resp = r.send().await.unwrap();
        bodies.push_str(&format!("{:?}", resp.headers()));
        bodies.push_str(&resp.text().await.unwrap());
    }
    let login = client()
        .post(s.at("/api/auth/login"))
        .json(&serde_json::json!({"token": "wrong"}))
        .send()
        .await
        .unwrap();
    bodies.push_str(&login.text().await.unwrap());
    s.stop().await;
    let logs = String::from_utf8_lossy(&cap.0.lock().unwrap()).into_owned();
    assert!(logs.contains("config under test"), "capture works");
    for secret in [TOKEN, key] {
        assert!(!logs.contains(secret), "a secret reached the logs");
        assert!(!bodies.contains(secret), "a secret reached a response");
    }
}
