//! The VR app's request sequences (`docs/vr-app.md`, "what the app
//! calls"), replayed against the real server with the Immich stand-in
//! (Immich 3.x timeline) and the AI stand-in (the current AI service's
//! models, depth per model and SHARP splats).

mod common;

use common::ai_standin::{AiStandin, Mode};
use common::immich_standin::{library, ImmichStandin, KEY};
use common::{client, json, start_with_ai, Api, TestServer};
use serde_json::{json, Value};

const PHOTO: &str = "00000000-0000-4000-8000-000000000001";
const OTHER: &str = "00000000-0000-4000-8000-000000000002";

async fn app(ai: &AiStandin, im: &ImmichStandin) -> TestServer {
    let url = im.url();
    let s = start_with_ai(&ai.url(), move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = Some(KEY.parse().unwrap());
    })
    .await;
    // What the start-up sync does, done now: the AI's downloaded models.
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    s
}

async fn put_settings(s: &TestServer, body: Value) -> reqwest::Response {
    client()
        .put(s.at("/api/settings"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn generate(s: &TestServer, id: &str, kind: &str, model: &str) -> reqwest::Response {
    s.post_json(
        &format!("/api/assets/{id}/generate"),
        &json!({"type": kind, "modelKey": model}),
    )
    .await
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// Open the gallery: F1 (twice), F2 per bucket, F7, F8, F10, F11.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_the_gallery() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(6)).await;
    let s = app(&ai, &im).await;

    for _ in 0..2 {
        let t = s.get_json("/api/immich/timeline").await;
        assert_eq!(t["status"], "success");
        let buckets = t["data"].as_array().unwrap();
        assert_eq!(buckets.len(), 3, "{t}");
        assert!(
            buckets[0]["timeBucket"].as_str().unwrap() > buckets[1]["timeBucket"].as_str().unwrap()
        );
    }
    let t = s.get_json("/api/immich/timeline").await;
    let mut seen = 0;
    for b in t["data"].as_array().unwrap() {
        let name = b["timeBucket"].as_str().unwrap();
        let path = format!("/api/immich/timeline/{}", urlencode(name));
        let bucket = s.get_json(&path).await;
        assert_eq!(bucket["status"], "success");
        let rows = bucket["data"].as_array().unwrap();
        assert_eq!(rows.len() as u64, b["count"].as_u64().unwrap(), "{bucket}");
        assert_eq!(bucket["count"], b["count"]);
        for r in rows {
            // Every column Immich sent, one value each, plus `type`.
            for col in [
                "id",
                "ratio",
                "fileCreatedAt",
                "isImage",
                "ownerId",
                "thumbhash",
                "city",
                "stack",
            ] {
                assert!(r.get(col).is_some(), "{col} missing in {r}");
            }
            assert!(r["ratio"].as_f64().unwrap() > 1.0);
            assert_eq!(
                r["type"],
                if r["isImage"] == true {
                    "IMAGE"
                } else {
                    "VIDEO"
                }
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 10, "6 photos, a HEIC, 2 videos and a big photo");

    let map = s.get_json("/api/assets/map").await;
    assert_eq!(map, json!({"status": "success", "count": 0, "map": {}}));
    let settings = s.get_json("/api/settings").await;
    assert_eq!(settings["defaultDepthModel"], "small");
    assert_eq!(settings["autoGenerateOnEnter"], false);
    assert_eq!(settings["disableAutoQuality"], false);

    let models = s.get_json("/api/settings/models").await;
    let keys: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["small", "base", "large", "sharp"]);
    let small = &models["models"][0];
    for f in [
        "name",
        "params",
        "memory",
        "description",
        "status",
        "is_loaded",
        "isActive",
        "huggingfaceId",
    ] {
        assert!(small.get(f).is_some(), "{f}: {small}");
    }
    assert_eq!(small["status"], "downloaded");
    assert_eq!(small["is_loaded"], true);
    assert_eq!(models["models"][1]["status"], "not_downloaded");

    let ai_models = s.get_json("/api/settings/models/ai").await;
    assert_eq!(ai_models["current_model"], "small");
    let sharp = ai_models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "sharp")
        .unwrap();
    assert_eq!(sharp["type"], "splat");
    assert_eq!(ai_models["models"][0]["params_size"], "25M");
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Select a photo with auto-generate on: F12, F11, F5, F6, F15 (miss, then
/// hit), F12, F13; then switch to `base` (downloaded first), and both
/// models' depth maps are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selecting_a_photo_generates_its_depth_map_once() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(3)).await;
    let s = app(&ai, &im).await;
    assert_eq!(
        put_settings(&s, json!({"autoGenerateOnEnter": true}))
            .await
            .status(),
        200
    );

    let files = s.get_json(&format!("/api/assets/{PHOTO}/files")).await;
    assert_eq!(files, json!({"photoId": PHOTO, "files": [], "count": 0}));
    let info = s.get_json(&format!("/api/immich/assets/{PHOTO}")).await;
    assert_eq!(info["data"]["originalFileName"], "IMG_0000.jpg");
    assert_eq!(
        s.get(&format!("/api/immich/assets/{PHOTO}/file"))
            .await
            .status(),
        200
    );

    let r = generate(&s, PHOTO, "depth", "small").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type").as_deref(), Some("image/png"));
    assert_eq!(header(&r, "x-asset-cache").as_deref(), Some("miss"));
    let png = r.bytes().await.unwrap();
    let img = image::load_from_memory(&png).unwrap();
    // The depth input is Immich's preview (160x120 in the stand-in).
    assert_eq!((img.width(), img.height()), (160, 120));
    assert!(im
        .inner
        .thumbnail_calls
        .lock()
        .unwrap()
        .iter()
        .any(|c| c == &format!("{PHOTO} preview")));
    let ai_calls = ai.requests();

    // Stored before the answer: listed at once, downloadable, and a hit.
    let files = s.get_json(&format!("/api/assets/{PHOTO}/files")).await;
    assert_eq!(files["count"], 1);
    let f = &files["files"][0];
    assert_eq!(
        (
            f["type"].as_str(),
            f["modelKey"].as_str(),
            f["format"].as_str()
        ),
        (Some("depth"), Some("small"), Some("png"))
    );
    let id = f["id"].as_str().unwrap();
    let down = s
        .get(&format!("/api/assets/{PHOTO}/files/{id}/download"))
        .await;
    assert_eq!(header(&down, "content-type").as_deref(), Some("image/png"));
    assert_eq!(down.bytes().await.unwrap(), png);
    let previews = im.inner.thumbnail_calls.lock().unwrap().len();
    let again = generate(&s, PHOTO, "depth", "small").await;
    assert_eq!(header(&again, "x-asset-cache").as_deref(), Some("hit"));
    assert_eq!(again.bytes().await.unwrap(), png);
    assert_eq!(ai.requests(), ai_calls, "a hit asks the AI nothing");
    assert_eq!(
        im.inner.thumbnail_calls.lock().unwrap().len(),
        previews,
        "nor Immich"
    );
    let map = s.get_json("/api/assets/map").await;
    assert_eq!(map["map"][PHOTO], json!({"depth": ["small"]}));

    // Switching to base: not downloaded yet, so download it first.
    let r = put_settings(&s, json!({"defaultDepthModel": "base"})).await;
    assert_eq!(r.status(), 200, "any catalogue model may be the default");
    let refused = generate(&s, PHOTO, "depth", "base").await;
    assert_eq!(refused.status(), 409);
    assert!(common::spec_declares(&refused, "model-not-downloaded").await);
    assert_eq!(json(refused).await["code"], "model-not-downloaded");
    let d = s.post("/api/settings/models/base/download").await;
    assert_eq!(d.status(), 200);
    assert_eq!(json(d).await["model"]["status"], "downloaded");
    let base = generate(&s, PHOTO, "depth", "base").await;
    assert_eq!(header(&base, "x-asset-cache").as_deref(), Some("miss"));
    let base_png = base.bytes().await.unwrap();
    assert_ne!(base_png, png, "another model, another map");
    let files = s.get_json(&format!("/api/assets/{PHOTO}/files")).await;
    let mut models: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["modelKey"].as_str().unwrap())
        .collect();
    models.sort();
    assert_eq!(models, ["base", "small"]);
    assert_eq!(files["files"][0]["modelKey"], "base", "newest first");

    // The old routes see the item too: its depth map is the default model's
    // of the time it was queued (the first request, small).
    let status = s.get_json("/api/media/status").await;
    assert_eq!(status["count"], 1);
    s.stop().await;
}

/// Queue a SHARP splat, convert it, delete and convert again, delete a
/// file (F14), "3D only" (F3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splats_kspat_conversion_deletion_and_the_3d_only_list() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(3)).await;
    let s = app(&ai, &im).await;

    let r = generate(&s, PHOTO, "splat", "whatever").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(header(&r, "x-asset-cache").as_deref(), Some("miss"));
    assert_eq!(header(&r, "x-asset-format").as_deref(), Some("ply"));
    let ply = r.bytes().await.unwrap();
    assert!(ply.starts_with(b"ply\nformat binary_little_endian 1.0\n"));
    // A JPEG original is what SHARP gets.
    assert_eq!(im.inner.original_calls.lock().unwrap().as_slice(), [PHOTO]);
    // SHARP downloads itself on first use: the catalogue says so at once.
    let models = s.get_json("/api/settings/models").await;
    assert_eq!(models["models"][3]["key"], "sharp");
    assert_eq!(models["models"][3]["status"], "downloaded", "{models}");

    let files = s.get_json(&format!("/api/assets/{PHOTO}/files")).await;
    let formats: Vec<(&str, &str, &str)> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap(),
                f["modelKey"].as_str().unwrap(),
                f["format"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(formats.contains(&("splat", "sharp", "ply")), "{formats:?}");
    assert!(
        formats.contains(&("splat", "sharp", "ksplat")),
        "{formats:?}"
    );
    let ksplat = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["format"] == "ksplat")
        .unwrap()
        .clone();
    let kid = ksplat["id"].as_str().unwrap();
    let bytes = s
        .get(&format!("/api/assets/{PHOTO}/files/{kid}/download"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..2], &[0, 1], "SplatBuffer v0.1");
    assert_eq!(ksplat["fileSize"], bytes.len().to_string());

    let hit = generate(&s, PHOTO, "splat", "sharp").await;
    assert_eq!(
        header(&hit, "x-asset-status").as_deref(),
        Some("already_exists")
    );
    assert_eq!(hit.bytes().await.unwrap(), ply);

    let conv = s
        .post_json(
            &format!("/api/assets/{PHOTO}/convert"),
            &json!({"from": "ply", "to": "ksplat"}),
        )
        .await;
    assert_eq!(json(conv).await["status"], "already_converted");
    let del = client()
        .delete(s.at(&format!("/api/photos/{PHOTO}/files/{kid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200, "/api/photos is the same router");
    assert_eq!(json(del).await["deletedFileId"], kid);
    let conv = s
        .post_json(&format!("/api/assets/{PHOTO}/convert"), &json!({}))
        .await;
    assert_eq!(conv.status(), 200);
    let conv = json(conv).await;
    assert_eq!(conv["status"], "converted");
    assert!(
        !conv["outputPath"].as_str().unwrap().starts_with('/'),
        "no server paths"
    );
    let again = s
        .get(&format!(
            "/api/assets/{PHOTO}/files/{}/download",
            conv["fileId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        again.bytes().await.unwrap(),
        bytes,
        "the same PLY converts to the same bytes"
    );

    // A depth map for a second photo, then the "3D only" list.
    assert_eq!(generate(&s, OTHER, "depth", "small").await.status(), 200);
    let map = s.get_json("/api/assets/map").await;
    assert_eq!(map["count"], 2);
    assert_eq!(map["map"][PHOTO]["splat"], json!(["sharp"]));
    let p = s
        .get_json("/api/immich/processed?page=0&size=100&type=all")
        .await;
    assert_eq!(p["count"], 2, "{p}");
    assert_eq!(p["hasMore"], false);
    let ids: Vec<&str> = p["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&PHOTO) && ids.contains(&OTHER), "{ids:?}");
    assert!(
        p["data"][0].get("someNewField").is_some(),
        "Immich's asset passed on whole"
    );
    let splats = s
        .get_json("/api/immich/processed?page=0&size=1&type=splat")
        .await;
    assert_eq!(
        (splats["count"].as_u64(), splats["total"].as_u64()),
        (Some(1), Some(1))
    );
    let page2 = s.get_json("/api/immich/processed?page=1&size=1").await;
    assert_eq!(page2["count"], 1);
    assert_ne!(
        page2["data"][0]["id"],
        s.get_json("/api/immich/processed?page=0&size=1").await["data"][0]["id"]
    );

    // F14 on the depth map of the second photo.
    let files = s.get_json(&format!("/api/assets/{OTHER}/files")).await;
    let fid = files["files"][0]["id"].as_str().unwrap();
    let del = client()
        .delete(s.at(&format!("/api/assets/{OTHER}/files/{fid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(json(del).await["message"], "Deleted small depth");
    assert_eq!(
        s.get_json(&format!("/api/assets/{OTHER}/files")).await["count"],
        0
    );
    assert_eq!(s.get_json("/api/assets/map").await["count"], 1);
    s.stop().await;
}

/// A HEIC original and a video go to SHARP as Immich's preview; an AI
/// refusal of an original is retried with the preview.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splat_inputs_fall_back_to_the_preview() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(1)).await;
    let s = app(&ai, &im).await;
    let heic = "00000000-0000-4000-8000-00000000000a";
    let video = "00000000-0000-4000-8000-00000000000b";
    for id in [heic, video] {
        let r = generate(&s, id, "splat", "sharp").await;
        assert_eq!(r.status(), 200, "{id}");
    }
    assert!(
        im.inner.original_calls.lock().unwrap().is_empty(),
        "originals never fetched"
    );
    let previews = im.inner.thumbnail_calls.lock().unwrap().clone();
    assert!(
        previews.contains(&format!("{heic} preview"))
            && previews.contains(&format!("{video} preview"))
    );
    s.stop().await;
}

/// Settings: every key round-trips; bad input is a clear 4xx; the row is
/// there on a fresh database (upstream answered 500).
#[tokio::test]
async fn settings_round_trip_and_refusals() {
    let s = TestServer::start().await;
    let first = s.get_json("/api/settings").await;
    assert_eq!(first["defaultDepthModel"], "small");
    for (body, key, value) in [
        (
            json!({"defaultDepthModel": "large"}),
            "defaultDepthModel",
            json!("large"),
        ),
        (
            json!({"autoGenerateOnEnter": true}),
            "autoGenerateOnEnter",
            json!(true),
        ),
        (
            json!({"disableAutoQuality": true}),
            "disableAutoQuality",
            json!(true),
        ),
    ] {
        let r = put_settings(&s, body).await;
        assert_eq!(r.status(), 200);
        let saved = json(r).await;
        assert_eq!(saved["success"], true);
        assert_eq!(saved[key], value);
        assert_eq!(s.get_json("/api/settings").await[key], value);
    }
    for (body, status, code) in [
        (json!({"defaultDepthModel": "huge"}), 400, "invalid-model"),
        (json!({}), 400, "no-settings"),
        (json!({"autoGenerateOnEnter": "yes"}), 422, "invalid-body"),
        (json!({"defaultDepthModel": 3}), 422, "invalid-body"),
    ] {
        let r = put_settings(&s, body.clone()).await;
        assert_eq!(r.status(), status, "{body}");
        assert!(common::spec_declares(&r, code).await, "{code} undeclared");
        assert_eq!(json(r).await["code"], code, "{body}");
    }
    let r = client()
        .put(s.at("/api/settings"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "malformed JSON is a 400 (upstream: 500)");
    let last = s.get_json("/api/settings").await;
    assert_eq!(
        last["defaultDepthModel"], "large",
        "refusals changed nothing"
    );
    s.stop().await;
}
