//! The Immich connector against the Immich stand-in.

mod common;

use common::Api;

use std::time::Duration;

use common::ai_standin::{AiStandin, Mode};
use common::immich_standin::{library, ImmichStandin, KEY, KEY_NO_DOWNLOAD};
use common::{client, json, test_config, wait_status, TestServer};
use futures_util::StreamExt;

const PHOTO1: &str = "00000000-0000-4000-8000-000000000001";
const HEIC: &str = "00000000-0000-4000-8000-00000000000a";
const VIDEO_OLD: &str = "00000000-0000-4000-8000-00000000000c";
const BIG: &str = "00000000-0000-4000-8000-00000000000d";

async fn server(immich: &ImmichStandin, key: &str, url_suffix: &str) -> TestServer {
    let (mut c, tmp) = test_config();
    c.immich_url = Some(format!("{}{url_suffix}", immich.url()));
    c.immich_api_key = Some(key.parse().unwrap());
    TestServer::start_with(c, Some(tmp)).await
}

#[tokio::test]
async fn not_configured_is_503_with_the_contract_message() {
    let s = TestServer::start().await;
    for path in [
        "/api/immich/test",
        "/api/immich/photos",
        &format!("/api/immich/assets/{PHOTO1}"),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 503, "{path}");
        let b = json(r).await;
        assert_eq!(b["error"], "Immich connector not configured");
        assert_eq!(
            b["message"],
            "Please set IMMICH_URL and IMMICH_API_KEY environment variables"
        );
    }
    let r = s
        .post(&format!("/api/immich/assets/{PHOTO1}/enqueue"))
        .await;
    assert_eq!(r.status(), 503);
    s.stop().await;
}

#[tokio::test]
async fn test_version_statistics_and_url_forms() {
    let im = ImmichStandin::start(library(5)).await;
    for suffix in ["", "/", "/api", "/api/"] {
        let s = server(&im, KEY, suffix).await;
        let t = s.get_json("/api/immich/test").await;
        assert_eq!(t["status"], "success", "{suffix}: {t}");
        assert_eq!(t["message"], "Connection to Immich successful");
        assert!(t["data"]["warning"].is_null());
        s.stop().await;
    }
    let s = server(&im, KEY, "").await;
    let v = s.get_json("/api/immich/version").await;
    assert_eq!(
        v["data"],
        serde_json::json!({"major": 3, "minor": 0, "patch": 3})
    );
    let st = s.get_json("/api/immich/statistics").await;
    assert_eq!(
        st["data"],
        serde_json::json!({"images": 7, "videos": 2, "total": 9})
    );
    *im.inner.major.lock().unwrap() = 1;
    let t = s.get_json("/api/immich/test").await;
    assert!(t["data"]["warning"]
        .as_str()
        .unwrap()
        .contains("2.x and 3.x"));
    s.stop().await;
}

#[tokio::test]
async fn browsing_pages_filters_and_parses() {
    let im = ImmichStandin::start(library(5)).await;
    let s = server(&im, KEY, "").await;
    let p = s.get_json("/api/immich/photos?size=2&page=1").await;
    assert_eq!(
        (
            p["count"].as_u64(),
            p["page"].as_u64(),
            p["nextPage"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert!(p["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["type"] == "IMAGE"));
    let body = im
        .inner
        .search_bodies
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(body["type"], "IMAGE", "filtered by Immich");
    assert_eq!(body["visibility"], "timeline");
    assert_eq!(body["page"], 1);
    let last = s.get_json("/api/immich/photos?size=5&page=2").await;
    assert!(last["nextPage"].is_null());
    let v = s.get_json("/api/immich/videos").await;
    assert_eq!(v["count"], 2);
    let mut durations: Vec<u64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["durationMs"].as_u64().unwrap())
        .collect();
    // Two videos of the same date: Immich orders them by id.
    durations.sort();
    assert_eq!(
        durations,
        vec![5000, 5500],
        "integer ms and the old string form"
    );
    let fav = s.get_json("/api/immich/assets?isFavorite=true").await;
    assert!(fav["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["isFavorite"] == true));
    let a = s.get_json(&format!("/api/immich/assets/{VIDEO_OLD}")).await;
    assert_eq!(a["data"]["originalFileName"], "old.mp4");
    assert_eq!(a["data"]["checksum"], "dGVzdGNoZWNrc3VtMTIzNDU2Nzg5MA==");
    let unknown = s
        .get("/api/immich/assets/00000000-0000-4000-8000-0000000000ff")
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(json(unknown).await["code"], "immich-asset-not-found");
    assert_eq!(s.get("/api/immich/assets/not-a-uuid").await.status(), 400);
    let found = json(
        client()
            .post(s.at("/api/immich/search"))
            .json(&serde_json::json!({"query": "IMG_0003", "type": "IMAGE"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        found["count"], 1,
        "falls back to file-name search without smart search"
    );
    s.stop().await;
}

#[tokio::test]
async fn thumbnails_and_originals_stream_with_headers() {
    let im = ImmichStandin::start(library(3)).await;
    let s = server(&im, KEY, "").await;
    let t = s
        .get(&format!(
            "/api/immich/assets/{PHOTO1}/thumbnail?size=preview"
        ))
        .await;
    assert_eq!(t.status(), 200);
    assert_eq!(t.headers()["content-type"], "image/jpeg");
    let img = image::load_from_memory(&t.bytes().await.unwrap()).unwrap();
    assert_eq!(img.width(), 160);
    let o = s.get(&format!("/api/immich/assets/{PHOTO1}/file")).await;
    assert_eq!(o.headers()["content-type"], "image/jpeg");
    assert!(o.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("IMG_0000.jpg"));
    let len: usize = o.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(o.bytes().await.unwrap().len(), len);
    let part = client()
        .get(s.at(&format!("/api/immich/assets/{PHOTO1}/file")))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert!(part.headers()["content-range"]
        .to_str()
        .unwrap()
        .starts_with("bytes 0-9/"));
    assert_eq!(part.bytes().await.unwrap().len(), 10);
    assert_eq!(
        s.get("/api/immich/assets/00000000-0000-4000-8000-0000000000ff/file")
            .await
            .status(),
        404
    );
    s.stop().await;
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_50_mib_original_streams_without_growing_memory() {
    let im = ImmichStandin::start(library(1)).await;
    let s = server(&im, KEY, "").await;
    // Warm up the connection pools and allocator.
    let _ = s
        .get(&format!("/api/immich/assets/{PHOTO1}/file"))
        .await
        .bytes()
        .await;
    let before = rss_kib();
    let resp = s.get(&format!("/api/immich/assets/{BIG}/file")).await;
    assert_eq!(resp.headers()["content-length"], "52428800");
    let mut stream = resp.bytes_stream();
    let (mut total, mut peak) = (0usize, before);
    while let Some(c) = stream.next().await {
        total += c.unwrap().len();
        peak = peak.max(rss_kib());
    }
    assert_eq!(total, 50 * 1024 * 1024);
    let growth = peak.saturating_sub(before);
    println!("proxying 50 MiB grew RSS by {growth} KiB");
    assert!(growth < 8 * 1024, "RSS grew by {growth} KiB");
    s.stop().await;
}

#[tokio::test]
async fn upstream_errors_map_to_502_404_503() {
    let im = ImmichStandin::start(library(2)).await;
    let wrong = server(&im, "wrong-key", "").await;
    let r = wrong.get("/api/immich/photos").await;
    assert_eq!(r.status(), 502);
    let b = json(r).await;
    assert!(b["message"].as_str().unwrap().contains("Invalid API key"));
    assert_eq!(b["code"], "immich-refused");
    wrong.stop().await;

    let limited = server(&im, KEY_NO_DOWNLOAD, "").await;
    let r = limited
        .get(&format!("/api/immich/assets/{PHOTO1}/file"))
        .await;
    assert_eq!(r.status(), 502);
    let b = json(r).await;
    assert!(
        b["message"].as_str().unwrap().contains("asset.download"),
        "{b}"
    );
    limited.stop().await;

    let s = server(&im, KEY, "").await;
    *im.inner.fail_from_page.lock().unwrap() = Some(1);
    let r = s.get("/api/immich/photos").await;
    assert_eq!(r.status(), 502);
    let b = json(r).await;
    assert!(b["message"].as_str().unwrap().contains("500"));
    assert_eq!(b["code"], "immich-error");
    im.down().await;
    let r = s.get("/api/immich/version").await;
    assert_eq!(r.status(), 503);
    let b = json(r).await;
    assert_eq!(b["error"], "Immich unreachable");
    assert_eq!(b["code"], "immich-unreachable");
    s.stop().await;
}

#[tokio::test]
async fn importing_one_asset_queues_it_and_the_worker_completes_it() {
    let im = ImmichStandin::start(library(2)).await;
    let ai = AiStandin::start(Mode::Ok).await;
    let (mut c, tmp) = test_config();
    c.immich_url = Some(im.url());
    c.immich_api_key = Some(KEY.parse().unwrap());
    c.ai_service_url = ai.url();
    c.auto_start_worker = true;
    let s = TestServer::start_with(c, Some(tmp)).await;
    let r = s
        .post(&format!("/api/immich/assets/{PHOTO1}/enqueue"))
        .await;
    assert_eq!(r.status(), 201);
    let first = json(r).await;
    assert_eq!(first["variant"], "original");
    let m = json(
        s.get(&format!(
            "/api/media/{}",
            first["mediaItemId"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(m["source"], "immich");
    assert_eq!(m["immich_asset_id"], PHOTO1);
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(64), Some(48))
    );
    wait_status(
        &s.url,
        first["queueId"].as_str().unwrap(),
        "completed",
        10.0,
    )
    .await;
    let again = s
        .post(&format!("/api/immich/assets/{PHOTO1}/enqueue"))
        .await;
    assert_eq!(again.status(), 200);
    let again = json(again).await;
    assert_eq!(
        (again["mediaItemId"].clone(), again["duplicate"].clone()),
        (first["mediaItemId"].clone(), serde_json::json!(true))
    );

    let heic = json(s.post(&format!("/api/immich/assets/{HEIC}/enqueue")).await).await;
    assert_eq!(heic["variant"], "preview");
    let m = json(
        s.get(&format!(
            "/api/media/{}",
            heic["mediaItemId"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(m["mime_type"], "image/jpeg");
    assert_eq!(m["immich_variant"], "preview");
    wait_status(&s.url, heic["queueId"].as_str().unwrap(), "completed", 10.0).await;
    s.stop().await;
}

async fn wait_import_done(s: &TestServer) -> serde_json::Value {
    for _ in 0..300 {
        let st = s.get_json("/api/immich/import").await;
        if st["running"] == false && st["startedAt"].is_string() {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import did not finish");
}

#[tokio::test]
async fn bulk_import_pages_respects_limit_and_refuses_a_second_run() {
    let im = ImmichStandin::start(library(9)).await;
    *im.inner.page_cap.lock().unwrap() = 3;
    let s = server(&im, KEY, "").await;
    let r = client()
        .post(s.at("/api/immich/import"))
        .json(&serde_json::json!({"type": "IMAGE", "limit": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let second = client()
        .post(s.at("/api/immich/import"))
        .json(&serde_json::json!({"type": "IMAGE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);
    assert_eq!(json(second).await["code"], "import-running");
    let done = wait_import_done(&s).await;
    assert_eq!(
        (done["queued"].as_u64(), done["failed"].as_u64()),
        (Some(7), Some(0)),
        "{done}"
    );
    assert_eq!(
        im.inner.search_bodies.lock().unwrap().len(),
        3,
        "three pages"
    );
    let st = s.get_json("/api/queue/stats").await;
    assert_eq!(st["stats"]["queued"], 7);
    s.stop().await;
}

#[tokio::test]
async fn immich_failing_mid_import_reports_failures_and_leaves_nothing_half_written() {
    let im = ImmichStandin::start(library(9)).await;
    *im.inner.page_cap.lock().unwrap() = 3;
    *im.inner.fail_from_page.lock().unwrap() = Some(2);
    let s = server(&im, KEY, "").await;
    let r = client()
        .post(s.at("/api/immich/import"))
        .json(&serde_json::json!({"type": "IMAGE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let done = wait_import_done(&s).await;
    assert_eq!(done["queued"], 3);
    assert_eq!(done["failed"], 1);
    assert!(done["errors"][0].as_str().unwrap().contains("page 2"));
    // Every stored item has its file; no temporary file is left.
    let list = s.get_json("/api/media/status").await;
    assert_eq!(list["count"], 3);
    for m in list["media"].as_array().unwrap() {
        assert_eq!(
            s.get(&format!(
                "/api/media/{}/file",
                m["media_id"].as_str().unwrap()
            ))
            .await
            .status(),
            200
        );
    }
    let tmp: Vec<_> = std::fs::read_dir(s.data_dir.join("uploads"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .collect();
    assert!(tmp.is_empty());
    s.stop().await;
}

/// The stand-in's timeline has Immich 3.x's shapes, checked against
/// Immich's own spec: a list of `{timeBucket, count}`, and a bucket whose
/// every required column is an array as long as `id`, of the right types.
#[tokio::test]
async fn the_stand_ins_timeline_has_immichs_shapes() {
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/immich/openapi-3.0.3.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let schemas = &spec["components"]["schemas"];
    let im = ImmichStandin::start(library(5)).await;
    let buckets = im.get_json("/timeline/buckets?visibility=timeline").await;
    let bucket_schema = &schemas["TimeBucketsResponseDto"];
    for b in buckets.as_array().unwrap() {
        for req in bucket_schema["required"].as_array().unwrap() {
            assert!(b.get(req.as_str().unwrap()).is_some(), "{b}");
        }
        assert!(b["count"].is_u64() && b["timeBucket"].is_string());
    }
    let first = buckets[0]["timeBucket"].as_str().unwrap().to_string();
    let cols = im
        .get_json(&format!(
            "/timeline/bucket?timeBucket={first}&visibility=timeline"
        ))
        .await;
    let dto = &schemas["TimeBucketAssetResponseDto"];
    let n = cols["id"].as_array().unwrap().len();
    assert!(n > 0);
    for (name, prop) in dto["properties"].as_object().unwrap() {
        let required = dto["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == name);
        let Some(col) = cols.get(name) else {
            assert!(!required, "required column {name} missing");
            continue;
        };
        let col = col
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an array"));
        assert_eq!(col.len(), n, "{name}");
        let item = &prop["items"];
        let nullable = item["nullable"] == true;
        for v in col {
            let ok = match item["type"].as_str() {
                Some("string") => v.is_string(),
                Some("number") => v.is_number(),
                Some("integer") => v.is_i64() || v.is_u64(),
                Some("boolean") => v.is_boolean(),
                Some("array") => v.is_array(),
                _ => v.is_string(), // $ref: an enum of strings
            };
            assert!(ok || (nullable && v.is_null()), "{name}: {v}");
        }
    }
    im.down().await;
}

/// The stand-in's `GET /assets/{id}` is Immich's `AssetResponseDto`,
/// checked against Immich's own spec (required fields, types, formats,
/// `exifInfo` as `ExifResponseDto`), for every asset of the library but
/// the one that keeps Immich 2's string `duration` on purpose.
#[tokio::test]
async fn the_stand_ins_asset_is_immichs_asset_response_dto() {
    let spec = common::spec_shape::immich_spec();
    for a in library(3) {
        if a.json["id"] == VIDEO_OLD {
            continue;
        }
        let wrong = common::spec_shape::mismatches(&spec, "AssetResponseDto", &a.json);
        assert!(wrong.is_empty(), "{}: {wrong:#?}", a.json["id"]);
        assert!(a.json["exifInfo"].is_object());
    }
    // The checker finds what is wrong.
    let mut bad = library(1)[0].json.clone();
    bad["exifInfo"]["exifImageWidth"] = serde_json::json!("64");
    bad.as_object_mut().unwrap().remove("ownerId");
    let wrong = common::spec_shape::mismatches(&spec, "AssetResponseDto", &bad);
    assert_eq!(wrong.len(), 2, "{wrong:#?}");
}

/// `GET /api/immich/assets/{id}` passes Immich's whole object through
/// (`exifInfo`, `people`, fields a later Immich adds), as upstream does
/// and its e2e gallery test reads.
#[tokio::test]
async fn one_asset_is_immichs_whole_object() {
    let im = ImmichStandin::start(library(2)).await;
    let s = server(&im, KEY, "").await;
    let a = s.get_json(&format!("/api/immich/assets/{PHOTO1}")).await;
    assert_eq!(a["status"], "success");
    let sent = im.inner.assets.lock().unwrap()[0].json.clone();
    assert_eq!(a["data"], sent, "exactly what Immich sent");
    assert_eq!(a["data"]["exifInfo"]["make"], "Google");
    assert!(a["data"]["exifInfo"]["fileSizeInByte"].as_u64().unwrap() > 0);
    let spec = common::spec_shape::immich_spec();
    let wrong = common::spec_shape::mismatches(&spec, "AssetResponseDto", &a["data"]);
    assert!(wrong.is_empty(), "{wrong:#?}");
    s.stop().await;
}
