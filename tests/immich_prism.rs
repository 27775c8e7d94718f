//! Contract test against Immich's own spec: Prism (`@stoplight/prism-cli`)
//! mocks Immich's spec (`tests/fixtures/immich/openapi-3.0.3.json`) and validates every request our
//! connector sends. Any request Prism finds invalid comes back as a 4xx,
//! which our routes would turn into a 502: every route must answer 2xx.

mod common;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{client, test_config, TestServer};

/// Immich's own spec (v3.0.3), kept in the repository.
const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/immich/openapi-3.0.3.json"
);

fn prism_bin() -> PathBuf {
    let local = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/node_modules/.bin/prism"
    ));
    if local.exists() {
        return local;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v prism"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    match found {
        Some(o) => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        None => panic!("prism not found: install it with `npm install -g @stoplight/prism-cli` (scripts/test.sh does)"),
    }
}

/// Prism ignores the spec's `/api` server path, so the copy it serves has
/// every path prefixed with `/api`.
fn prefixed_spec(dir: &std::path::Path) -> PathBuf {
    let mut spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(SPEC).expect("the Immich spec in tests/fixtures/immich"),
    )
    .unwrap();
    let paths = spec["paths"].as_object().unwrap().clone();
    let prefixed: serde_json::Map<String, serde_json::Value> = paths
        .into_iter()
        .map(|(k, v)| (format!("/api{k}"), v))
        .collect();
    spec["paths"] = serde_json::Value::Object(prefixed);
    spec.as_object_mut().unwrap().remove("servers");
    // Prism's own example of a license key ("string") breaks the key's
    // pattern, and with --errors it refuses its own answer to
    // `GET /users/me`: the pattern goes (answers only, never a request).
    spec["components"]["schemas"]["UserLicense"]["properties"]["licenseKey"]
        .as_object_mut()
        .unwrap()
        .remove("pattern");
    let out = dir.join("immich-prefixed.json");
    std::fs::write(&out, serde_json::to_vec(&spec).unwrap()).unwrap();
    out
}

struct Prism(Child);
impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn every_connector_request_is_valid_for_immichs_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = prefixed_spec(tmp.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(tmp.path().join("prism.log")).unwrap();
    let _prism = Prism(
        Command::new(prism_bin())
            .args([
                "mock",
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .arg(&spec)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("prism starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client()
        .get(format!("{base}/api/server/ping"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "prism did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut c, dir) = test_config();
    c.immich_url = Some(base.clone());
    c.immich_api_key = Some("prism-contract-key".parse().unwrap());
    // Following the library: `/users/me`, the metadata search with its
    // sync filters, `/assets/{id}` of what waits, all through Prism.
    c.background.immich_sync_secs = 3600;
    let s = TestServer::start_with(c, Some(dir)).await;
    let id = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
    let mut failures = Vec::new();
    let calls: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", "/api/immich/test".into(), None),
        ("GET", "/api/immich/version".into(), None),
        ("GET", "/api/immich/statistics".into(), None),
        (
            "GET",
            "/api/immich/assets?size=10&page=1&isFavorite=true".into(),
            None,
        ),
        ("GET", "/api/immich/assets?isArchived=true".into(), None),
        ("GET", "/api/immich/photos?size=1000".into(), None),
        ("GET", "/api/immich/videos".into(), None),
        ("GET", format!("/api/immich/assets/{id}"), None),
        (
            "GET",
            format!("/api/immich/assets/{id}/thumbnail?size=preview"),
            None,
        ),
        ("GET", format!("/api/immich/assets/{id}/thumbnail"), None),
        ("GET", format!("/api/immich/assets/{id}/file"), None),
        (
            "POST",
            "/api/immich/search".into(),
            Some(serde_json::json!({"query": "beach", "type": "IMAGE", "size": 5})),
        ),
        // The VR app's gallery: Immich answers from its spec (columns).
        ("GET", "/api/immich/timeline".into(), None),
        ("GET", "/api/immich/timeline/2024-01-01".into(), None),
        (
            "GET",
            "/api/immich/timeline/2024-01-01T00%3A00%3A00.000Z".into(),
            None,
        ),
    ];
    for (method, path, body) in calls {
        let mut r = client().request(method.parse().unwrap(), s.at(&path));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        // A bucket made from Prism's columns: one object per id, every
        // column a value of it.
        if status.is_success() && path.starts_with("/api/immich/timeline/") {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            for row in v["data"].as_array().unwrap() {
                assert!(row["id"].is_string() && row["type"].is_string(), "{row}");
            }
        }
        if !status.is_success() {
            failures.push(format!(
                "{method} {path}: {status} {}",
                text.chars().take(300).collect::<String>()
            ));
        }
    }
    // Signing in through Prism: an Immich account (login, a key of the
    // user's own, logout of the Immich session, who it is), what a
    // person's view asks with that key (partners, albums), signing out
    // (the key deleted); then a pasted key (who, the key's permissions).
    for body in [
        serde_json::json!({"email": "alice@example.org", "password": "alice-password"}),
        serde_json::json!({"apiKey": "prism-user-key"}),
    ] {
        let r = common::anonymous()
            .post(s.at("/api/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .map(str::to_string);
        let text = r.text().await.unwrap_or_default();
        let Some(cookie) = cookie.filter(|_| status.is_success()) else {
            failures.push(format!("sign-in {body}: {status} {text}"));
            continue;
        };
        for (method, path) in [("GET", "/api/assets/map"), ("POST", "/api/auth/logout")] {
            let r = common::anonymous()
                .request(method.parse().unwrap(), s.at(path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            if !r.status().is_success() {
                failures.push(format!("signed in, {method} {path}: {}", r.status()));
            }
        }
    }
    // Two rounds of following (the one at start, then "sync now"): each
    // ends without an error, so Prism took every request.
    let mut last = serde_json::Value::Null;
    for round in 0..2 {
        if round == 1 {
            let r = client()
                .post(s.at("/api/library/sync"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
        }
        let before = last.clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        let lib = loop {
            let v: serde_json::Value = client()
                .get(s.at("/api/library"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let lib = v["libraries"][0].clone();
            if let Some(e) = v["error"].as_str() {
                failures.push(format!("following: {e}"));
                break lib;
            }
            if lib["lastSyncAt"].is_string()
                && lib["lastSyncAt"] != before
                && lib["syncing"] == false
            {
                break lib;
            }
            assert!(Instant::now() < deadline, "no round ended: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        if let Some(e) = lib["lastError"].as_str() {
            failures.push(format!("following, round {round}: {e}"));
        }
        last = lib["lastSyncAt"].clone();
    }
    s.stop().await;
    assert!(
        failures.is_empty(),
        "Prism refused requests:\n{}",
        failures.join("\n")
    );
}
