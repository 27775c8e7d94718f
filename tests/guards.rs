//! The small guards every request meets: the bearer scheme in any case,
//! the JSON error shape for whoever refuses, and the `Host` check that
//! keeps DNS-rebinding pages away from an open API.

mod common;

use common::Api;

use common::{client, json, TestServer};

const TOKEN: &str = "guards-token-0123456789";

fn is_json(r: &reqwest::Response) -> bool {
    r.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"))
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let (mut c, tmp) = common::test_config();
    c.auth_token = Some(TOKEN.parse().unwrap());
    let s = TestServer::start_with(c, Some(tmp)).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = client()
            .get(s.at("/api/queue/stats"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    for wrong in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        "bearer nope".into(),
    ] {
        let r = client()
            .get(s.at("/api/queue/stats"))
            .header("authorization", wrong.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
    }
    s.stop().await;
}

#[tokio::test]
async fn cors_refusals_and_unknown_paths_answer_the_json_shape() {
    let (mut c, tmp) = common::test_config();
    c.cors_origins = Some("http://vr.example".into());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let r = client()
        .request(reqwest::Method::OPTIONS, s.at("/api/queue/stats"))
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(is_json(&r));
    let body = json(r).await;
    assert_eq!(body["code"], "origin-not-allowed");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    // A listed origin asking for a header CORS does not allow: the CORS
    // layer's refusal, in the JSON shape.
    let r = client()
        .request(reqwest::Method::OPTIONS, s.at("/api/queue/stats"))
        .header("origin", "http://vr.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "x-not-allowed")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(is_json(&r));
    assert_eq!(json(r).await["code"], "forbidden");
    let r = client()
        .get(s.at("/api/queue/stats"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.status() == 403 && is_json(&r), "{}", r.status());
    for path in [
        "/nope",
        "/api/nope",
        "/api/docs/nope.js",
        "/admin/nope.js",
        "/api/media/x/y/z",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(is_json(&r), "{path}");
        assert!(json(r).await["error"].is_string(), "{path}");
    }
    s.stop().await;
}

async fn with_host(s: &TestServer, host: &str) -> reqwest::Response {
    client()
        .get(s.at("/api/queue/stats"))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_a_token_dotted_host_names_must_be_listed() {
    let (mut c, tmp) = common::test_config();
    c.allowed_hosts = Some("photos.example.org, *.lan.example".into());
    let s = TestServer::start_with(c, Some(tmp)).await;
    for ok in [
        "127.0.0.1",
        "localhost:3000",
        "backend",
        "backend:3000",
        "[::1]:3000",
        "192.168.1.20:3000",
        "photos.example.org",
        "nas.lan.example:8443",
    ] {
        assert_eq!(with_host(&s, ok).await.status(), 200, "{ok}");
    }
    for refused in [
        "evil.example.com",
        "rebind.attacker.net:3000",
        "lan.example",
    ] {
        let r = with_host(&s, refused).await;
        assert_eq!(r.status(), 403, "{refused}");
        assert!(is_json(&r));
        let body = json(r).await;
        assert_eq!(body["code"], "host-not-allowed");
        assert!(
            body["message"].as_str().unwrap().contains("ALLOWED_HOSTS"),
            "{body}"
        );
    }
    s.stop().await;

    // With a token the token is the guard: any Host works.
    let (mut c, tmp) = common::test_config();
    c.auth_token = Some(TOKEN.parse().unwrap());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let r = client()
        .get(s.at("/api/queue/stats"))
        .header("host", "photos.somewhere.net")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

/// Posts `body` and checks the answer is a JSON 422 `invalid-body`.
async fn invalid_body(s: &TestServer, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let r = s.post_json(path, body).await;
    assert!(is_json(&r), "{path} {body}");
    let status = r.status();
    let b = json(r).await;
    assert_eq!(status, 422, "{path} {body}: {b}");
    assert_eq!(b["code"], "invalid-body", "{path} {body}: {b}");
    b
}

/// poem-openapi reads `null` for an optional field as "left out"; the spec
/// says a boolean (or a string, a number), so a null is invalid input
/// (schemathesis found this on the import).
#[tokio::test]
async fn null_fields_are_invalid_input() {
    let s = TestServer::start().await;
    for (path, body) in [
        (
            "/api/immich/import",
            serde_json::json!({"isFavorite": null}),
        ),
        (
            "/api/immich/search",
            serde_json::json!({"query": "x", "size": null}),
        ),
        ("/api/auth/login", serde_json::json!({"token": null})),
    ] {
        let b = invalid_body(&s, path, &body).await;
        assert!(b["message"].as_str().unwrap().contains("null"), "{b}");
    }
    // A key the schema does not declare stays ignored, null or not.
    let r = s
        .post_json(
            "/api/immich/search",
            &serde_json::json!({"query": "x", "extra": null}),
        )
        .await;
    let status = r.status();
    let b = json(r).await;
    assert_ne!(b["code"], "invalid-body", "{status} {b}");
    s.stop().await;
}

/// poem-openapi's `String` turns `false` or `12` into text; the spec says
/// a string, so anything else is invalid input (schemathesis found this).
#[tokio::test]
async fn string_fields_take_only_strings() {
    let s = TestServer::start().await;
    for (path, body) in [
        ("/api/auth/login", serde_json::json!({"token": 12})),
        ("/api/auth/login", serde_json::json!({"token": false})),
        ("/api/immich/search", serde_json::json!({"query": false})),
        ("/api/immich/search", serde_json::json!({"query": 3.5})),
    ] {
        invalid_body(&s, path, &body).await;
    }
    s.stop().await;
}
