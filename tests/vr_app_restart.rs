//! What the VR app stored survives the real binary stopping: after SIGTERM
//! and after kill -9, every asset is still listed with the same fields and
//! downloads byte for byte; settings, the model catalogue and browser
//! sessions too.

mod common;

use common::ai_standin::{AiStandin, Mode};
use common::bin::{Binary, Launch};
use common::immich_standin::{library, ImmichStandin, KEY};
use common::{client, json};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PHOTOS: [&str; 2] = [
    "00000000-0000-4000-8000-000000000001",
    "00000000-0000-4000-8000-000000000002",
];

fn launch(data: &std::path::Path, ai: &AiStandin, im: &ImmichStandin) -> Launch {
    // No grace for the start-up clean-up: every file of ours that no row
    // names goes at once, so a splat missing from the file index would.
    Launch::new(data)
        .env("ORPHAN_GRACE_SECS", "0")
        .env("AI_SERVICE_URL", ai.url())
        .env("IMMICH_URL", im.url())
        .env("IMMICH_API_KEY", KEY)
}

async fn post(b: &Binary, path: &str, body: Value) -> reqwest::Response {
    client().post(b.at(path)).json(&body).send().await.unwrap()
}

/// Files (fields and the SHA-256 of their bytes), map, settings, models.
async fn what_the_app_sees(b: &Binary) -> Value {
    let mut photos = serde_json::Map::new();
    for p in PHOTOS {
        let list = json(common::get(b.at(&format!("/api/assets/{p}/files"))).await).await;
        let mut files = Vec::new();
        for f in list["files"].as_array().unwrap() {
            let id = f["id"].as_str().unwrap();
            let r = common::get(b.at(&format!("/api/assets/{p}/files/{id}/download"))).await;
            assert_eq!(r.status(), 200);
            let sha = hex::encode(Sha256::digest(r.bytes().await.unwrap()));
            files.push(json!({"entry": f, "sha256": sha}));
        }
        photos.insert(p.to_string(), Value::Array(files));
    }
    let mut models = json(common::get(b.at("/api/settings/models")).await).await;
    for m in models["models"].as_array_mut().unwrap() {
        // What the AI holds in memory is not stored; the catalogue is.
        m.as_object_mut().unwrap().remove("is_loaded");
        m.as_object_mut().unwrap().remove("isActive");
    }
    json!({
        "photos": photos,
        "map": json(common::get(b.at("/api/assets/map")).await).await,
        "settings": json(common::get(b.at("/api/settings")).await).await,
        "models": models,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_kill_nine_keep_every_asset() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(2)).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = launch(&data, &ai, &im).start().await;
    assert_eq!(
        post(&b, "/api/settings/models/sync", json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        post(&b, "/api/settings/models/base/download", json!({}))
            .await
            .status(),
        200
    );
    let put = client()
        .put(b.at("/api/settings"))
        .json(&json!({"defaultDepthModel": "base"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    for (photo, kind, model) in [
        (PHOTOS[0], "depth", "small"),
        (PHOTOS[0], "depth", "base"),
        (PHOTOS[0], "splat", "sharp"),
        (PHOTOS[1], "depth", "small"),
    ] {
        let r = post(
            &b,
            &format!("/api/assets/{photo}/generate"),
            json!({"type": kind, "modelKey": model}),
        )
        .await;
        assert_eq!(r.status(), 200, "{photo} {kind} {model}");
    }
    let before = what_the_app_sees(&b).await;
    assert_eq!(
        before["photos"][PHOTOS[0]].as_array().unwrap().len(),
        4,
        "{before}"
    );
    assert_eq!(before["settings"]["defaultDepthModel"], "base");

    b.terminate().await;
    let b = launch(&data, &ai, &im).start().await;
    b.wait_log("start-up clean-up finished", 30).await;
    assert!(
        b.log_text().contains("splats_removed=0"),
        "{}",
        b.log_text()
    );
    assert_eq!(what_the_app_sees(&b).await, before, "after SIGTERM");

    b.kill();
    let b = launch(&data, &ai, &im).start().await;
    b.wait_log("start-up clean-up finished", 30).await;
    assert_eq!(what_the_app_sees(&b).await, before, "after kill -9");
    b.terminate().await;
}

/// The app sends no token: it rides on the session cookie a sign-in on the
/// same origin set. A restart must not sign it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sessions_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = "restart-token-0123456789";
    let b = Launch::new(&data).env("AUTH_TOKEN", token).start().await;
    let r = client()
        .post(b.at("/api/auth/login"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = common::cookie_of(&r);
    let with_cookie = |b: &Binary| {
        common::anonymous()
            .get(b.at("/api/settings"))
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(with_cookie(&b).await.unwrap().status(), 200);
    b.kill();
    let b = Launch::new(&data).env("AUTH_TOKEN", token).start().await;
    assert_eq!(
        with_cookie(&b).await.unwrap().status(),
        200,
        "signed out by a restart"
    );
    assert_eq!(common::get(b.at("/api/settings")).await.status(), 401);
    // Logging out ends it for good, restart or not.
    let out = common::anonymous()
        .post(b.at("/api/auth/logout"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    b.terminate().await;
    let b = Launch::new(&data).env("AUTH_TOKEN", token).start().await;
    assert_eq!(with_cookie(&b).await.unwrap().status(), 401);
    b.terminate().await;
}
