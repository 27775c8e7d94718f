//! Every error code of the catalogue, as a client meets it: the status,
//! `error`, `message` and `code` of the answer agree with the catalogue.
//! Codes a request can trigger here are triggered over HTTP; the few that
//! need a broken disk, Immich or a crash are checked where those are set
//! up (named below), and every code appears in one list or the other.

mod common;

use std::time::Duration;

use common::{
    ai_standin::{AiStandin, Mode},
    client, png, raw, upload, TestServer,
};
use immichvr::http::error::ErrorCode;
use reqwest::{Method, Response};
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// The served spec, read once (every test server serves the same one).
static SPEC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();

/// Checks an answer against the catalogue's entry for `code`, and that the
/// spec declares it for the operation answered (routing errors aside).
async fn check(code: ErrorCode, r: Response) {
    let path = r.url().path().to_string();
    let routing = matches!(code, ErrorCode::NotFound | ErrorCode::MethodNotAllowed);
    if !routing {
        let status = r.status().as_u16().to_string();
        let spec = SPEC.get().expect("read at the start of the test");
        let declared = common::operations_at(spec, &path).iter().any(|op| {
            op["responses"][status.as_str()]["description"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("`{}`", code.as_str())))
        });
        assert!(
            declared,
            "{path} answered {status} {code:?}, which its spec entry does not declare"
        );
    }
    let status = r.status().as_u16();
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, code.status().as_u16(), "{code:?}: {body}");
    assert!(ctype.starts_with("application/json"), "{code:?}: {ctype}");
    assert_eq!(body["code"], code.as_str(), "{body}");
    assert_eq!(body["error"], code.title(), "{body}");
    assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
}

fn form(parts: &str) -> reqwest::Body {
    reqwest::Body::from(parts.replace('\n', "\r\n"))
}

async fn send(method: Method, url: String) -> Response {
    client().request(method, url).send().await.unwrap()
}

/// Codes checked in the test files that set up what they need.
const ELSEWHERE: &[(ErrorCode, &str)] = &[
    (ErrorCode::NoSettings, "vr_app.rs"),
    (ErrorCode::InvalidModel, "vr_app.rs, vr_app_errors.rs"),
    (ErrorCode::UnsupportedConversion, "vr_app_errors.rs"),
    (ErrorCode::ModelNotFound, "vr_app_errors.rs"),
    (ErrorCode::PhotoNotFound, "vr_app_errors.rs"),
    (ErrorCode::FileNotFound, "vr_app_errors.rs"),
    (ErrorCode::NoPly, "vr_app_errors.rs"),
    (ErrorCode::ModelNotDownloaded, "vr_app.rs"),
    (ErrorCode::ConversionFailed, "vr_app_errors.rs"),
    (ErrorCode::AiRefused, "vr_app_errors.rs"),
    (ErrorCode::GenerationFailed, "vr_app_errors.rs"),
    (ErrorCode::AiNoCatalogue, "vr_app_errors.rs"),
    (ErrorCode::StillGenerating, "vr_app_errors.rs"),
    (ErrorCode::DiskFull, "disk_full.rs, backups.rs"),
    (
        ErrorCode::StorageUnavailable,
        "disk_full.rs (redb read-only)",
    ),
    (ErrorCode::StorageError, "unit: http::error mapping"),
    (ErrorCode::FileSystemError, "unit: http::error mapping"),
    (ErrorCode::BackupFailed, "unit: http::error mapping"),
    (
        ErrorCode::BackupExists,
        "unit: http::error mapping (CLI only)",
    ),
    (ErrorCode::BackupRunning, "backups.rs"),
    (ErrorCode::InternalError, "unit: http::error mapping"),
    (ErrorCode::ImmichRefused, "immich.rs"),
    (ErrorCode::ImmichError, "immich.rs"),
    (ErrorCode::ImmichUnreachable, "immich.rs"),
    (ErrorCode::ImmichAssetNotFound, "immich.rs"),
    (ErrorCode::ImportRunning, "immich.rs"),
    (ErrorCode::TooManyConnections, "connections.rs"),
    (ErrorCode::TooManyLiveSessions, "live_caps.rs"),
    (ErrorCode::TooManyUploads, "limits.rs"),
    (ErrorCode::RequestTimeout, "connections.rs"),
    (ErrorCode::HostNotAllowed, "guards.rs"),
    (ErrorCode::Forbidden, "guards.rs (the CORS layer's refusal)"),
    (ErrorCode::OriginNotAllowed, "guards.rs, access.rs"),
    (
        ErrorCode::KeyPermissions,
        "people.rs (a pasted key too narrow)",
    ),
    (
        ErrorCode::InvalidCredentials,
        "people.rs (wrong password, unknown key)",
    ),
    (
        ErrorCode::SignInAgain,
        "people.rs (a key revoked in Immich)",
    ),
    (
        ErrorCode::OperatorOnly,
        "people.rs (every operator route as a person)",
    ),
    (
        ErrorCode::LoopbackOnly,
        "people.rs (neither IMMICH_URL nor AUTH_TOKEN)",
    ),
    (
        ErrorCode::SessionNotFound,
        "people.rs (ending another's session)",
    ),
    (
        ErrorCode::TooManySignIns,
        "people.rs (failed sign-ins limited)",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_code_answers_as_the_catalogue_says() {
    let ai = AiStandin::start(Mode::Ok).await;
    let (mut c, tmp) = common::test_config();
    c.ai_service_url = "http://127.0.0.1:9".into();
    c.max_upload_bytes = 64 * 1024;
    let s = TestServer::start_with(c, Some(tmp)).await;
    let u = |p: &str| s.at(p);
    let unknown = uuid::Uuid::now_v7();
    let spec: Value = client()
        .get(u("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    SPEC.get_or_init(|| spec);
    let mut seen = Vec::new();
    macro_rules! expect {
        ($code:expr, $resp:expr) => {{
            check($code, $resp).await;
            seen.push($code);
        }};
    }

    expect!(
        ErrorCode::BadRequest,
        send(Method::GET, u("/api/media/not-a-uuid")).await
    );
    expect!(ErrorCode::NotFound, send(Method::GET, u("/api/nope")).await);
    expect!(
        ErrorCode::MethodNotAllowed,
        send(Method::PUT, u("/api/queue/stats")).await
    );
    expect!(
        ErrorCode::MediaNotFound,
        send(Method::GET, u(&format!("/api/media/{unknown}"))).await
    );
    expect!(
        ErrorCode::QueueItemNotFound,
        send(Method::GET, u(&format!("/api/queue/items/{unknown}"))).await
    );
    let mp = |body: &str| {
        client()
            .post(u("/api/media/upload"))
            .header("content-type", "multipart/form-data; boundary=B")
            .body(form(body))
            .send()
    };
    expect!(
        ErrorCode::NoFile,
        mp("--B\nContent-Disposition: form-data; name=\"x\"\n\nv\n--B--\n")
            .await
            .unwrap()
    );
    expect!(
        ErrorCode::EmptyFile,
        mp("--B\nContent-Disposition: form-data; name=\"media\"; filename=\"e.png\"\n\n\n--B--\n")
            .await
            .unwrap()
    );
    expect!(
        ErrorCode::InvalidMultipart,
        mp("--B\nContent-Disposition: form-data; name=\"media\"; filename=\"x.png\"\n\nunterminated").await.unwrap()
    );
    expect!(
        ErrorCode::UnsupportedMediaType,
        upload(&s.url, "t.txt", b"just some text".to_vec()).await
    );
    expect!(
        ErrorCode::FileTooLarge,
        upload(&s.url, "big.png", {
            let mut v = png(8, 8, 1);
            v.resize(100 * 1024, 7);
            v
        })
        .await
    );
    expect!(
        ErrorCode::BodyTooLarge,
        client()
            .post(u("/api/auth/login"))
            .body(vec![b' '; 8192])
            .send()
            .await
            .unwrap()
    );
    expect!(
        ErrorCode::InvalidBody,
        client()
            .post(u(&format!("/api/queue/enqueue/{unknown}")))
            .json(&serde_json::json!({"maxAttempts": 99}))
            .send()
            .await
            .unwrap()
    );
    expect!(
        ErrorCode::HeadersTooLarge,
        client()
            .get(u("/api/queue/stats"))
            .header("x-big", "a".repeat(70_000))
            .send()
            .await
            .unwrap()
    );

    // An item: its depth map is not there yet; it is queued already.
    let up: Value = upload(&s.url, "p.png", png(16, 16, 3))
        .await
        .json()
        .await
        .unwrap();
    let (media, queue) = (
        up["mediaItemId"].as_str().unwrap(),
        up["queueId"].as_str().unwrap(),
    );
    expect!(
        ErrorCode::DepthMapNotFound,
        send(Method::GET, u(&format!("/api/media/{media}/depth"))).await
    );
    expect!(
        ErrorCode::AlreadyQueued,
        send(Method::POST, u(&format!("/api/queue/enqueue/{media}"))).await
    );
    expect!(
        ErrorCode::InvalidState,
        send(Method::POST, u(&format!("/api/queue/items/{queue}/retry"))).await
    );
    expect!(
        ErrorCode::RangeNotSatisfiable,
        client()
            .get(u(&format!("/api/media/{media}/file")))
            .header("range", "bytes=999999-")
            .send()
            .await
            .unwrap()
    );
    expect!(
        ErrorCode::WorkerStopped,
        send(Method::POST, u("/api/queue/worker/stop")).await
    );
    assert_eq!(
        send(Method::POST, u("/api/queue/worker/start"))
            .await
            .status(),
        200
    );
    expect!(
        ErrorCode::WorkerRunning,
        send(Method::POST, u("/api/queue/worker/start")).await
    );
    expect!(
        ErrorCode::FollowingOff,
        send(Method::POST, u("/api/library/sync")).await
    );
    expect!(
        ErrorCode::AiUnhealthy,
        send(Method::GET, u("/api/ai/health")).await
    );
    expect!(
        ErrorCode::AiUnreachable,
        send(Method::GET, u("/api/ai/info")).await
    );
    // Every Immich route, without Immich configured.
    let asset = uuid::Uuid::now_v7();
    for (method, path) in [
        (Method::GET, "/api/immich/test".to_string()),
        (Method::GET, "/api/immich/version".into()),
        (Method::GET, "/api/immich/statistics".into()),
        (Method::GET, "/api/immich/assets".into()),
        (Method::GET, "/api/immich/photos".into()),
        (Method::GET, "/api/immich/videos".into()),
        (Method::GET, format!("/api/immich/assets/{asset}")),
        (Method::GET, format!("/api/immich/assets/{asset}/thumbnail")),
        (Method::GET, format!("/api/immich/assets/{asset}/file")),
        (Method::POST, format!("/api/immich/assets/{asset}/enqueue")),
        (Method::GET, "/api/immich/import".into()),
    ] {
        expect!(ErrorCode::ImmichNotConfigured, send(method, u(&path)).await);
    }
    for (path, body) in [
        ("/api/immich/search", serde_json::json!({"query": "cat"})),
        ("/api/immich/import", serde_json::json!({})),
    ] {
        expect!(
            ErrorCode::ImmichNotConfigured,
            client().post(u(path)).json(&body).send().await.unwrap()
        );
    }
    s.stop().await;

    // An item being processed cannot be deleted.
    ai.set_mode(Mode::Hang);
    let s = common::start_with_ai(&ai.url(), |_| {}).await;
    let up: Value = upload(&s.url, "slow.png", png(16, 16, 4))
        .await
        .json()
        .await
        .unwrap();
    let q = up["queueId"].as_str().unwrap();
    common::wait_status(&s.url, q, "processing", 10.0).await;
    let media = up["mediaItemId"].as_str().unwrap();
    expect!(
        ErrorCode::ItemProcessing,
        send(Method::DELETE, s.at(&format!("/api/media/{media}"))).await
    );
    ai.set_mode(Mode::Ok);
    s.shutdown.cancel();
    drop(s);

    let (mut c, tmp) = common::test_config();
    c.auth_token = Some("codes-token".parse().unwrap());
    let s = TestServer::start_with(c, Some(tmp)).await;
    expect!(
        ErrorCode::Unauthorized,
        send(Method::GET, s.at("/api/queue/stats")).await
    );
    s.stop().await;

    for (code, _) in ELSEWHERE {
        seen.push(*code);
    }
    let missing: Vec<_> = ErrorCode::ALL
        .iter()
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes nobody checks: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_refusal_carries_its_code_too() {
    let (mut c, tmp) = common::test_config();
    c.max_connections_per_ip = 1;
    let s = TestServer::start_with(c, Some(tmp)).await;
    // Connections that send nothing: the first holds the address's one
    // slot (once the start-up probe's connection has gone), the next is
    // answered at once.
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() < 5, "no connection was refused");
        let mut c = raw::connect(&s.url, None).await.unwrap();
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => break String::from_utf8_lossy(&buf[..n]).into_owned(),
            _ => held.push(c),
        }
    };
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let body: Value = serde_json::from_str(refused.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["code"], "too-many-connections");
    assert_eq!(body["error"], ErrorCode::TooManyConnections.title());
    s.stop().await;
}
