//! Following the Immich library (issue 28), with the Immich stand-in
//! (its answers checked against Immich's spec) and the AI stand-in: new
//! photos get the default model's depth map, newest first, and the app's
//! generate is then a cache hit; an edit is redone; a deletion removes the
//! 3D assets after the grace period; a video is skipped with a reason, a
//! photo the AI refuses too, and neither is retried.

mod common;

use std::time::Duration;

use common::{
    ai_standin::{AiStandin, Mode},
    immich_standin::{new_photos, ImmichStandin, StandinAsset, KEY, OWNER},
    openapi_check::{immich_spec, violations},
    Api, TestServer,
};
use serde_json::{json, Value};

async fn library(s: &TestServer) -> Value {
    s.get_json("/api/library").await
}

/// Waits until the library's figures satisfy `done`, returning them.
async fn wait_library(
    s: &TestServer,
    secs: f64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let url = s.url.clone();
    let done = &done;
    common::wait_for(secs, what, move || {
        let url = url.clone();
        async move {
            let v = common::json(common::get(format!("{url}/api/library")).await).await;
            let lib = v["libraries"].get(0).cloned()?;
            (done(&lib) && lib["syncing"] == false).then_some(lib)
        }
    })
    .await
}

/// Starts a round and waits until it is over (its `lastSyncAt` moves).
async fn sync(s: &TestServer) -> Value {
    let before = library(s).await["libraries"][0]["lastSyncAt"].clone();
    let r = s.post("/api/library/sync").await;
    assert_eq!(r.status(), 202);
    wait_library(s, 30.0, "a round", |l| l["lastSyncAt"] != before).await
}

fn photo_ids(assets: &[StandinAsset]) -> Vec<String> {
    assets
        .iter()
        .map(|a| a.json["id"].as_str().unwrap().to_string())
        .collect()
}

async fn files(s: &TestServer, id: &str) -> Value {
    s.get_json(&format!("/api/assets/{id}/files")).await
}

async fn generate(s: &TestServer, id: &str, model: &str) -> reqwest::Response {
    s.post_json(
        &format!("/api/assets/{id}/generate"),
        &json!({"type": "depth", "modelKey": model}),
    )
    .await
}

/// The stand-in answers `/users/me`, the metadata search with the
/// filters following uses, and `/assets/{id}` in Immich's own shapes; and
/// the searches the follower sends are valid `MetadataSearchDto`s.
#[tokio::test]
async fn the_stand_ins_answers_and_our_requests_fit_immichs_spec() {
    let spec = immich_spec();
    let mut assets = new_photos(0, 3, chrono::Utc::now());
    // Less the video with Immich 2.x's `duration` string, made to test
    // that older form.
    assets.extend(
        common::immich_standin::library(2)
            .into_iter()
            .filter(|a| a.json["duration"].is_number() || a.json["duration"].is_null()),
    );
    let im = ImmichStandin::start(assets).await;
    im.trash("00000000-0000-4000-8000-000000000001");
    let me = im.get_json("/users/me").await;
    assert_eq!(
        violations(&spec, "UserAdminResponseDto", &me),
        Vec::<String>::new()
    );
    assert_eq!(me["id"], OWNER);
    let one = im
        .get_json("/assets/00000000-0000-4000-8000-f00000000001")
        .await;
    assert_eq!(
        violations(&spec, "AssetResponseDto", &one),
        Vec::<String>::new()
    );
    let page = common::client()
        .post(format!("{}/api/search/metadata", im.url()))
        .header("x-api-key", KEY)
        .json(
            &json!({"page": 1, "size": 1000, "withDeleted": true, "order": "desc",
                      "updatedAfter": "2000-01-01T00:00:00.000Z", "withExif": false}),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        violations(&spec, "SearchResponseDto", &page),
        Vec::<String>::new()
    );
    let items = page["assets"]["items"].as_array().unwrap();
    assert!(
        items.iter().any(|a| a["isTrashed"] == true),
        "withDeleted brings the trash"
    );
    // Newest capture first, as Immich orders it.
    let dates: Vec<&str> = items
        .iter()
        .map(|a| a["fileCreatedAt"].as_str().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");

    // What the follower sends is what Immich's spec accepts.
    let ai = AiStandin::start(Mode::Ok).await;
    let s = common::follower(&ai, &im, |_| {}).await;
    sync(&s).await;
    let bodies = im.inner.search_bodies.lock().unwrap().clone();
    assert!(!bodies.is_empty());
    for b in &bodies {
        assert_eq!(
            violations(&spec, "MetadataSearchDto", b),
            Vec::<String>::new(),
            "{b}"
        );
        assert_eq!(b["withDeleted"], true);
    }
    s.stop().await;
}

/// 200 new photos appear: each gets the default model's depth map, the
/// newest first, and the app's generate for one is then a cache hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_photos_get_the_default_depth_map_newest_first_and_the_app_hits_the_cache() {
    let ai = AiStandin::start(Mode::Serial(Duration::from_millis(5))).await;
    let im = ImmichStandin::start(Vec::new()).await;
    let s = common::follower(&ai, &im, |_| {}).await;
    let first = sync(&s).await;
    assert_eq!(
        (first["photos"].as_u64(), first["ready"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(first["ownerId"], OWNER);
    let photos = new_photos(0, 200, chrono::Utc::now());
    let ids = photo_ids(&photos);
    im.add(photos);
    sync(&s).await;
    let done = wait_library(&s, 120.0, "200 depth maps", |l| l["ready"] == 200).await;
    assert_eq!(
        (done["photos"].as_u64(), done["left"].as_u64()),
        (Some(200), Some(0)),
        "{done}"
    );
    assert_eq!(done["model"], "small");
    // Newest first: the AI saw them in capture order, give or take the
    // images prepared ahead.
    let served: Vec<usize> = ai
        .inner
        .busy
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, name)| {
            name.trim_start_matches("NEW_")
                .trim_end_matches(".jpg")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(served.len(), 200, "each photo once");
    for (pos, k) in served.iter().enumerate() {
        assert!(
            pos.abs_diff(*k) <= 3,
            "photo {k} (0 = newest) was served {pos}th: {served:?}"
        );
    }
    // Each has the app's depth map: the map lists them, and generate
    // answers from the store without asking the AI.
    let map = s.get_json("/api/assets/map").await;
    for id in &ids {
        assert_eq!(map["map"][id]["depth"], json!(["small"]), "{id}");
    }
    s.post("/api/settings/models/sync").await;
    let before = ai.requests();
    let r = generate(&s, &ids[17], "small").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-asset-cache"], "hit");
    assert_eq!(ai.requests(), before);
    // Nothing is made twice by a round that sees them again.
    sync(&s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ai.requests(), before);
    s.stop().await;
}

/// An edit (new checksum, previews made again) is made again; the other
/// 3D assets of the photo, made from it as it was, go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_photo_is_redone() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(new_photos(0, 3, chrono::Utc::now())).await;
    let s = common::follower(&ai, &im, |_| {}).await;
    sync(&s).await;
    wait_library(&s, 30.0, "3 depth maps", |l| l["ready"] == 3).await;
    let id = "00000000-0000-4000-8000-f00000000002";
    s.post("/api/settings/models/sync").await;
    assert_eq!(
        s.post("/api/settings/models/base/download").await.status(),
        200
    );
    assert_eq!(generate(&s, id, "base").await.status(), 200);
    let old = files(&s, id).await;
    assert_eq!(old["count"], 2, "{old}");
    let old_small = old["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["modelKey"] == "small")
        .unwrap()
        .clone();
    let before = ai.requests();
    im.edit(id, 1);
    sync(&s).await;
    let new = common::wait_for(30.0, "the edit made again", || async {
        let f = files(&s, id).await;
        let small = f["files"]
            .as_array()?
            .iter()
            .find(|x| x["modelKey"] == "small")?
            .clone();
        (small["id"] != old_small["id"]).then_some(f)
    })
    .await;
    assert_eq!(ai.requests(), before + 1, "only the edited photo");
    assert_eq!(
        new["count"], 1,
        "the base model's map was made from the old photo: {new}"
    );
    let done = wait_library(&s, 10.0, "ready again", |l| l["ready"] == 3).await;
    assert_eq!(done["left"], 0);
    s.stop().await;
}

/// Trashed: kept (it may come back). Gone for good: its 3D assets stay
/// for the grace period, then go, files too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_photo_loses_its_3d_assets_after_the_grace_period() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(new_photos(0, 2, chrono::Utc::now())).await;
    let s = common::follower(&ai, &im, |c| c.background.immich_delete_grace_secs = 2).await;
    sync(&s).await;
    wait_library(&s, 30.0, "2 depth maps", |l| l["ready"] == 2).await;
    let id = "00000000-0000-4000-8000-f00000000001";
    let file = files(&s, id).await["files"][0]["filePath"]
        .as_str()
        .unwrap()
        .to_string();
    let path = s.data_dir.join(&file);
    assert!(path.exists(), "{path:?}");
    im.trash(id);
    let lib = sync(&s).await;
    assert_eq!(
        (lib["trashed"].as_u64(), lib["photos"].as_u64()),
        (Some(1), Some(1)),
        "{lib}"
    );
    assert_eq!(files(&s, id).await["count"], 1, "kept while in the trash");
    im.delete(id);
    let lib = sync(&s).await;
    assert_eq!(
        (lib["trashed"].as_u64(), lib["gone"].as_u64()),
        (Some(0), Some(1)),
        "{lib}"
    );
    assert_eq!(files(&s, id).await["count"], 1, "kept for the grace period");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lib = sync(&s).await;
    assert_eq!(lib["gone"], 0, "{lib}");
    assert_eq!(files(&s, id).await["count"], 0);
    assert!(!path.exists(), "the file went too");
    let map = s.get_json("/api/assets/map").await;
    assert!(map["map"].get(id).is_none(), "{map}");
    assert_eq!(lib["ready"], 1, "the other photo stays");
    s.stop().await;
}

/// A video is skipped with its reason, and a photo the AI refuses ends
/// skipped with the AI's words; neither is tried again by later rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_and_refused_photos_are_skipped_with_a_reason_and_not_retried() {
    let ai = AiStandin::start(Mode::Status(400)).await;
    let mut assets = new_photos(0, 1, chrono::Utc::now());
    assets.extend(
        common::immich_standin::library(0)
            .into_iter()
            .filter(|a| a.json["type"] == "VIDEO"),
    );
    let im = ImmichStandin::start(assets).await;
    let s = common::follower(&ai, &im, |_| {}).await;
    sync(&s).await;
    let lib = wait_library(&s, 30.0, "the photo to fail", |l| {
        l["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["reason"] == "failed")
    })
    .await;
    let groups = lib["skipped"].as_array().unwrap();
    let video = groups.iter().find(|g| g["reason"] == "video").unwrap();
    assert_eq!(video["count"], 2, "{lib}");
    assert!(video["says"].as_str().unwrap().contains("video"));
    let failed = groups.iter().find(|g| g["reason"] == "failed").unwrap();
    assert!(
        failed["examples"][0]["error"]
            .as_str()
            .unwrap()
            .contains("stand-in told to answer 400"),
        "{failed}"
    );
    assert_eq!(
        (
            lib["photos"].as_u64(),
            lib["ready"].as_u64(),
            lib["left"].as_u64()
        ),
        (Some(1), Some(0), Some(0))
    );
    let paths = ai.inner.seen.lock().unwrap().paths.clone();
    assert!(
        !paths.iter().any(|p| p.contains("video")),
        "no video was sent: {paths:?}"
    );
    let tries = ai.requests();
    assert_eq!(tries, 3, "the photo's three attempts");
    ai.set_mode(Mode::Ok);
    sync(&s).await;
    sync(&s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ai.requests(), tries, "not tried again");
    s.stop().await;
}

/// The key cannot say whose library it reads (no `user.read`): following
/// says so plainly, and nothing else breaks.
#[tokio::test]
async fn a_key_without_user_read_is_reported() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(new_photos(0, 1, chrono::Utc::now())).await;
    *im.inner.me_status.lock().unwrap() = 403;
    let s = common::follower(&ai, &im, |_| {}).await;
    let v = common::wait_for(10.0, "the error", || async {
        let v = library(&s).await;
        v["error"].is_string().then_some(v)
    })
    .await;
    assert!(v["error"].as_str().unwrap().contains("user.read"), "{v}");
    assert_eq!(v["following"], true);
    assert_eq!(s.get("/api/health").await.status(), 200);
    s.stop().await;
}

/// With following off, the figures say so and "sync now" is refused with
/// its code.
#[tokio::test]
async fn sync_now_without_following_is_a_conflict() {
    let s = TestServer::start().await;
    let v = library(&s).await;
    assert_eq!(v["following"], false);
    assert_eq!(v["libraries"], json!([]));
    let r = s.post("/api/library/sync").await;
    assert_eq!(r.status(), 409);
    let body = common::json(r).await;
    assert_eq!(body["code"], "following-off", "{body}");
    s.stop().await;
}

/// `ASSET_DISK_BUDGET`: the newest photos fit, the rest wait (or, if
/// they were made first, go again); what the app asks for is made anyway
/// and kept; room is then made from the least recently viewed background
/// asset, never the one being viewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_budget_keeps_the_newest_and_what_is_viewed() {
    let ai = AiStandin::start(Mode::Serial(Duration::from_millis(100))).await;
    let im = ImmichStandin::start(new_photos(0, 10, chrono::Utc::now())).await;
    // Each depth map is 7,391 bytes (the stand-in's preview): room for 5.
    let s = common::follower(&ai, &im, |c| {
        c.background.asset_disk_budget = Some("40000".parse().unwrap())
    })
    .await;
    let id = |k: usize| format!("00000000-0000-4000-8000-f{:011}", k + 1);
    let has = |f: &Value| f["count"].as_u64().unwrap() > 0;
    let lib = wait_library(&s, 60.0, "the newest five", |l| {
        l["ready"] == 5 && l["left"].as_u64().unwrap() + l["ready"].as_u64().unwrap() <= 10
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for k in 0..5 {
        assert!(
            has(&files(&s, &id(k)).await),
            "photo {k} (newest first) is kept"
        );
    }
    for k in 5..10 {
        assert!(
            !has(&files(&s, &id(k)).await),
            "photo {k} does not fit: {lib}"
        );
    }
    let v = library(&s).await;
    assert!(v["disk"]["usedBytes"].as_u64().unwrap() <= 40000, "{v}");
    // Either the older five wait (the budget holds them back), or, made
    // before the budget was read, they went again and are not remade.
    let held = v["backgroundPausedReason"]
        .as_str()
        .unwrap_or("")
        .contains("ASSET_DISK_BUDGET");
    let removed = v["libraries"][0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["reason"] == "disk_budget" && g["count"] == 5);
    assert!(held || removed, "{v}");
    // The oldest of the five is being viewed.
    let f = files(&s, &id(4)).await;
    let file = f["files"][0]["id"].as_str().unwrap().to_string();
    let r = s
        .get(&format!("/api/assets/{}/files/{file}/download", id(4)))
        .await;
    assert_eq!(r.status(), 200);
    // The app asks for the oldest photo: made whatever the budget.
    s.post("/api/settings/models/sync").await;
    let r = generate(&s, &id(9), "small").await;
    assert_eq!(r.status(), 200);
    common::wait_for(20.0, "room made", || async {
        (!has(&files(&s, &id(3)).await)).then_some(())
    })
    .await;
    let v = common::wait_for(20.0, "the figures", || async {
        let v = library(&s).await;
        (v["disk"]["usedBytes"].as_u64()? <= 40000 && v["libraries"][0]["ready"] == 5).then_some(v)
    })
    .await;
    assert!(has(&files(&s, &id(9)).await), "the app's asset stays");
    assert!(has(&files(&s, &id(4)).await), "the one being viewed stays");
    for k in [0, 1, 2] {
        assert!(
            has(&files(&s, &id(k)).await),
            "photo {k}, viewed after 3, stays: {v}"
        );
    }
    let lib = &v["libraries"][0];
    let budget = lib["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["reason"] == "disk_budget")
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        budget["examples"].to_string().contains("NEW_00003"),
        "{lib}"
    );
    s.stop().await;
}
