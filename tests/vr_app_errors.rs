//! The VR app's routes when things go wrong: unknown photos, files and
//! models, the AI or Immich down, the generate wait bound passing. Each is
//! a clear JSON answer, and nothing is half-written.

mod common;

use common::ai_standin::{AiStandin, Mode};
use common::immich_standin::{library, ImmichStandin, KEY};
use common::{client, json, start_with_ai, Api, TestServer};
use serde_json::json;

const PHOTO: &str = "00000000-0000-4000-8000-000000000001";

async fn app(
    ai: &str,
    im: &ImmichStandin,
    tweak: impl FnOnce(&mut immichvr::Config),
) -> TestServer {
    let url = im.url();
    start_with_ai(ai, move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = Some(KEY.parse().unwrap());
        tweak(c);
    })
    .await
}

async fn expect(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status(), status);
    assert!(
        common::spec_declares(&r, code).await,
        "{} {status} {code} undeclared",
        r.url().path()
    );
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let b = json(r).await;
    assert_eq!(b["code"], code, "{b}");
    assert!(!b["message"].as_str().unwrap().is_empty());
}

fn nothing_stored(s: &TestServer) {
    for dir in ["depth_maps", "splats"] {
        let left: Vec<_> = std::fs::read_dir(s.data_dir.join(dir)).unwrap().collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_photos_files_and_models() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(1)).await;
    let s = app(&ai.url(), &im, |_| {}).await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    let unknown = "00000000-0000-4000-8000-0000000000ff";
    let gen = |id: &str, body: serde_json::Value| {
        let url = s.at(&format!("/api/assets/{id}/generate"));
        async move { client().post(url).json(&body).send().await.unwrap() }
    };
    expect(
        gen(unknown, json!({"type": "depth", "modelKey": "small"})).await,
        404,
        "photo-not-found",
    )
    .await;
    expect(
        gen(PHOTO, json!({"type": "depth", "modelKey": "huge"})).await,
        400,
        "invalid-model",
    )
    .await;
    expect(
        gen(PHOTO, json!({"type": "mesh"})).await,
        422,
        "invalid-body",
    )
    .await;
    // Files: an unknown or malformed id is a 404 (upstream: 500).
    for fid in [unknown, "fake-file-id", "1"] {
        expect(
            s.get(&format!("/api/assets/{PHOTO}/files/{fid}/download"))
                .await,
            404,
            "file-not-found",
        )
        .await;
        let del = client()
            .delete(s.at(&format!("/api/assets/{PHOTO}/files/{fid}")))
            .send()
            .await
            .unwrap();
        expect(del, 404, "file-not-found").await;
    }
    // Convert: the format is checked first (upstream answered 404 here).
    let conv = |body: serde_json::Value| {
        let url = s.at(&format!("/api/assets/{PHOTO}/convert"));
        async move { client().post(url).json(&body).send().await.unwrap() }
    };
    expect(
        conv(json!({"from": "ply", "to": "obj"})).await,
        400,
        "unsupported-conversion",
    )
    .await;
    expect(
        conv(json!({"from": "ply", "to": "ksplat"})).await,
        404,
        "photo-not-found",
    )
    .await;
    // Models: every route answers 404 for an unknown key.
    for (method, path) in [
        ("POST", "/api/settings/models/nope/load"),
        ("POST", "/api/settings/models/nope/unload"),
        ("POST", "/api/settings/models/nope/download"),
        ("DELETE", "/api/settings/models/nope"),
    ] {
        let r = client()
            .request(method.parse().unwrap(), s.at(path))
            .send()
            .await
            .unwrap();
        expect(r, 404, "model-not-found").await;
    }
    nothing_stored(&s);
    s.stop().await;
}

/// The AI service down: the job waits (no attempt used) and the request
/// gets a 504 at the wait bound; once the AI is back, the job finishes by
/// itself and asking again is a cache hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_down_then_the_wait_bound_then_recovery() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(1)).await;
    let s = app(&ai.url(), &im, |c| c.vr.generate_wait_secs = 1).await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    ai.down().await;
    let body = json!({"type": "depth", "modelKey": "small"});
    let r = s
        .post_json(&format!("/api/assets/{PHOTO}/generate"), &body)
        .await;
    expect(r, 504, "still-generating").await;
    nothing_stored(&s);
    let items = s.get_json("/api/queue/items").await;
    assert_eq!(items["items"][0]["priority"], 0, "ahead of bulk work");
    assert_eq!(items["items"][0]["attempts"], 0);
    ai.up().await;
    common::wait_status(
        &s.url,
        items["items"][0]["id"].as_str().unwrap(),
        "completed",
        20.0,
    )
    .await;
    let r = s
        .post_json(&format!("/api/assets/{PHOTO}/generate"), &body)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-asset-cache"], "hit");
    s.stop().await;
}

/// An AI refusal fails the job: 502 with the AI's words; nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_failure_is_a_502_with_its_message() {
    let ai = AiStandin::start(Mode::Status(500)).await;
    let im = ImmichStandin::start(library(1)).await;
    let s = app(&ai.url(), &im, |_| {}).await;
    let body = json!({"type": "depth", "modelKey": "small"});
    // The catalogue still says small is downloaded (the AI lists it).
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    let r = s
        .post_json(&format!("/api/assets/{PHOTO}/generate"), &body)
        .await;
    assert_eq!(r.status(), 502);
    let b = json(r).await;
    assert_eq!(b["code"], "generation-failed");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("stand-in told to answer 500"),
        "{b}"
    );
    nothing_stored(&s);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immich_down_or_missing() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(1)).await;
    let s = app(&ai.url(), &im, |_| {}).await;
    im.down().await;
    expect(
        s.get("/api/immich/timeline").await,
        503,
        "immich-unreachable",
    )
    .await;
    expect(
        s.get("/api/immich/timeline/2025-06-01").await,
        503,
        "immich-unreachable",
    )
    .await;
    let body = json!({"type": "depth", "modelKey": "small"});
    expect(
        s.post_json(&format!("/api/assets/{PHOTO}/generate"), &body)
            .await,
        503,
        "immich-unreachable",
    )
    .await;
    nothing_stored(&s);
    s.stop().await;

    let s = TestServer::start().await;
    expect(
        s.get("/api/immich/timeline").await,
        503,
        "immich-not-configured",
    )
    .await;
    expect(
        s.get("/api/immich/processed").await,
        503,
        "immich-not-configured",
    )
    .await;
    s.stop().await;
}

/// An older AI service without the model routes keeps working for depth
/// maps; the catalogue actions say clearly why they cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_ai_without_a_catalogue() {
    use poem::{get, handler, listener::TcpListener as PoemListener, Route, Server};
    #[handler]
    fn health() -> poem::web::Json<serde_json::Value> {
        poem::web::Json(json!({"status": "healthy", "model_status": "loaded"}))
    }
    /// The older service: one model, `/api/depth` and `/health`, nothing else.
    #[handler]
    fn depth() -> poem::Response {
        poem::Response::builder()
            .content_type("image/png")
            .body(common::ai_standin::depth_png(160, 120))
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let routes = Route::new()
        .at("/health", get(health))
        .at("/api/depth", poem::post(depth));
    tokio::spawn(Server::new(PoemListener::bind(addr.to_string())).run(routes));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let im = ImmichStandin::start(library(1)).await;
    let s = app(&format!("http://{addr}"), &im, |_| {}).await;
    expect(
        s.post("/api/settings/models/sync").await,
        501,
        "ai-no-catalogue",
    )
    .await;
    expect(
        s.get("/api/settings/models/ai").await,
        501,
        "ai-no-catalogue",
    )
    .await;
    expect(
        s.post_json("/api/settings/models/small/load", &json!({}))
            .await,
        501,
        "ai-no-catalogue",
    )
    .await;
    let models = s.get_json("/api/settings/models").await;
    assert_eq!(
        models["models"].as_array().unwrap().len(),
        4,
        "the catalogue is still listed"
    );
    // Its one model makes depth maps as before.
    let body = json!({"type": "depth", "modelKey": "small"});
    let r = s
        .post_json(&format!("/api/assets/{PHOTO}/generate"), &body)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-asset-cache"], "miss");
    s.stop().await;
}

/// The AI refusing a load, a convert with no PLY to start from, and a
/// stored PLY that is not one: each a clear answer, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_loads_and_unconvertible_splats() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(2)).await;
    let s = app(&ai.url(), &im, |_| {}).await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);

    ai.inner.models.lock().unwrap().refuse_loads = true;
    let r = s
        .post_json("/api/settings/models/small/load", &json!({"device": "gpu"}))
        .await;
    expect(r, 502, "ai-refused").await;
    ai.inner.models.lock().unwrap().refuse_loads = false;

    // A depth map but no splat: nothing to convert.
    let gen = s
        .post_json(
            &format!("/api/assets/{PHOTO}/generate"),
            &json!({"type": "depth", "modelKey": "small"}),
        )
        .await;
    assert_eq!(gen.status(), 200);
    let conv = s
        .post_json(
            &format!("/api/assets/{PHOTO}/convert"),
            &json!({"from": "ply", "to": "ksplat"}),
        )
        .await;
    expect(conv, 404, "no-ply").await;

    // A splat whose stored PLY was damaged on disk after its KSPLAT was
    // removed: the conversion fails in plain words and stores nothing.
    let gen = s
        .post_json(
            &format!("/api/assets/{PHOTO}/generate"),
            &json!({"type": "splat", "modelKey": "sharp"}),
        )
        .await;
    assert_eq!(gen.status(), 200);
    let files = s.get_json(&format!("/api/assets/{PHOTO}/files")).await;
    let find = |format: &str| {
        files["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["format"] == format)
            .unwrap()
            .clone()
    };
    let (ply, ksplat) = (find("ply"), find("ksplat"));
    let del = client()
        .delete(s.at(&format!(
            "/api/assets/{PHOTO}/files/{}",
            ksplat["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    std::fs::write(
        s.data_dir.join(ply["filePath"].as_str().unwrap()),
        b"ply\nformat ascii 1.0\nend_header\n",
    )
    .unwrap();
    let conv = s
        .post_json(
            &format!("/api/assets/{PHOTO}/convert"),
            &json!({"from": "ply", "to": "ksplat"}),
        )
        .await;
    expect(conv, 422, "conversion-failed").await;
    let files = s.get_json(&format!("/api/assets/{PHOTO}/files")).await;
    assert_eq!(files["count"], 2, "depth and PLY only: {files}");
    let splats: Vec<_> = std::fs::read_dir(s.data_dir.join("splats"))
        .unwrap()
        .collect();
    assert_eq!(splats.len(), 1, "no KSPLAT left behind: {splats:?}");
    s.stop().await;
}

/// A generate whose id is not a UUID (a path, 5,000 characters, unicode)
/// names no photo: 404 without a request to Immich (which answered 400
/// "id must be a UUID", and so a 502), and the answer does not repeat the
/// 5,000 characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_are_not_uuids_never_reach_immich() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(1)).await;
    let s = app(&ai.url(), &im, |_| {}).await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    let long = "a".repeat(5000);
    for id in [
        "..%2F..",
        "..%2F..%2Fserver%2Fversion",
        long.as_str(),
        "%E2%98%83%F0%9F%93%B7",
        "00000000-0000-4000-8000-00000000000",
    ] {
        for body in [
            json!({"type": "depth", "modelKey": "small"}),
            json!({"type": "splat"}),
        ] {
            let r = s
                .post_json(&format!("/api/assets/{id}/generate"), &body)
                .await;
            assert_eq!(r.status(), 404, "{id:.40}");
            assert!(common::spec_declares(&r, "photo-not-found").await);
            let text = r.text().await.unwrap();
            assert!(text.len() < 400, "{} bytes echoed", text.len());
            let b: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(b["code"], "photo-not-found");
            assert!(b["message"].as_str().unwrap().contains("UUID"), "{b}");
        }
    }
    assert!(
        im.inner.asset_calls.lock().unwrap().is_empty(),
        "Immich was asked about {:?}",
        im.inner.asset_calls.lock().unwrap()
    );
    assert!(im.inner.original_calls.lock().unwrap().is_empty());
    assert!(im.inner.thumbnail_calls.lock().unwrap().is_empty());
    nothing_stored(&s);
    assert_eq!(s.get_json("/api/queue/items").await["items"], json!([]));
    s.stop().await;
}

/// `defaultDepthModel` takes a depth model of the catalogue: `sharp` is a
/// 400 (it was saved, and bulk jobs then failed at the AI with "Unknown
/// model 'sharp'"), and the stored default is unchanged.
#[tokio::test]
async fn the_default_depth_model_must_be_a_depth_model() {
    let s = TestServer::start().await;
    let put = |body: serde_json::Value| {
        let url = s.at("/api/settings");
        async move { client().put(url).json(&body).send().await.unwrap() }
    };
    assert_eq!(
        put(json!({"defaultDepthModel": "base"})).await.status(),
        200
    );
    let r = put(json!({"defaultDepthModel": "sharp"})).await;
    assert_eq!(r.status(), 400);
    assert!(common::spec_declares(&r, "invalid-model").await);
    let b = json(r).await;
    assert_eq!(b["code"], "invalid-model");
    let message = b["message"].as_str().unwrap();
    assert!(message.contains("small, base, large"), "{message}");
    assert_eq!(
        s.get_json("/api/settings").await["defaultDepthModel"],
        "base"
    );
    s.stop().await;
}

/// An invalid value is named in the error, not repeated whole: 200 KB
/// model keys and a 200 KB value of the wrong type come back as a short
/// answer, wherever they are refused.
#[tokio::test]
async fn a_200_kb_value_is_not_echoed_back() {
    let s = TestServer::start().await;
    let big = "x".repeat(200_000);
    let put = |body: serde_json::Value| {
        let url = s.at("/api/settings");
        async move { client().put(url).json(&body).send().await.unwrap() }
    };
    let answers = vec![
        (
            put(json!({"defaultDepthModel": big})).await,
            400,
            "invalid-model",
        ),
        (
            put(json!({"defaultDepthModel": [big]})).await,
            422,
            "invalid-body",
        ),
        (
            s.post_json(
                &format!("/api/assets/{PHOTO}/generate"),
                &json!({"type": "depth", "modelKey": big}),
            )
            .await,
            400,
            "invalid-model",
        ),
        (
            s.post_json(
                &format!("/api/assets/{PHOTO}/generate"),
                &json!({"type": big}),
            )
            .await,
            422,
            "invalid-body",
        ),
        (
            s.post(&format!("/api/settings/models/{}/load", &big[..8000]))
                .await,
            404,
            "model-not-found",
        ),
    ];
    for (r, status, code) in answers {
        let path = r.url().path().chars().take(60).collect::<String>();
        assert_eq!(r.status(), status, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.len() < 1500, "{path}: {} bytes echoed", text.len());
        let b: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(b["code"], code, "{path}");
        let message = b["message"].as_str().unwrap();
        assert!(
            message.contains("xxx"),
            "the value is still named: {message}"
        );
    }
    s.stop().await;
}
