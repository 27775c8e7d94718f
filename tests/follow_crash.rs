//! kill -9 of the real binary in the middle of reading the Immich library,
//! twice: each restart resumes the sweep at the page it stopped at, and
//! in the end every photo has exactly one job and one depth map, none
//! missing, none twice.

mod common;

use std::{collections::HashSet, path::Path, time::Duration};

use common::{
    ai_standin::{AiStandin, Mode},
    bin::{Binary, Launch},
    immich_standin::{new_photos, ImmichStandin, KEY},
    Api,
};
use serde_json::Value;

const PHOTOS: usize = 200;

fn launch(data: &Path, ai: &AiStandin, im: &ImmichStandin, worker: bool) -> Launch {
    Launch::new(data)
        .env("AI_SERVICE_URL", ai.url())
        .env("IMMICH_URL", im.url())
        .env("IMMICH_API_KEY", KEY)
        .env("IMMICH_SYNC_SECS", 3600)
        .env("AUTO_START_WORKER", worker)
}

async fn jobs(b: &Binary) -> u64 {
    let st = b.get_json("/api/queue/stats").await;
    ["queued", "processing", "completed"]
        .iter()
        .map(|k| st["stats"][k].as_u64().unwrap_or(0))
        .sum()
}

fn pages_asked(im: &ImmichStandin) -> Vec<u64> {
    im.inner
        .search_bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| b["page"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_mid_sync_leaves_no_duplicate_and_no_gap() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(new_photos(0, PHOTOS, chrono::Utc::now())).await;
    // Ten pages of 20, each a little slow: time to be killed in between.
    *im.inner.page_cap.lock().unwrap() = 20;
    *im.inner.search_delay.lock().unwrap() = Duration::from_millis(250);
    let tmp = tempfile::tempdir().unwrap();
    for (round, at_least) in [(0, 40), (1, 120)] {
        let b = launch(tmp.path(), &ai, &im, false).start().await;
        common::wait_for(30.0, "pages committed", || async {
            (jobs(&b).await >= at_least).then_some(())
        })
        .await;
        let before = pages_asked(&im).len();
        b.kill();
        let committed = {
            let b = launch(tmp.path(), &ai, &im, false).start().await;
            let n = jobs(&b).await;
            b.kill();
            n
        };
        assert!(
            committed >= at_least && committed < PHOTOS as u64,
            "round {round}: {committed} jobs after the kill"
        );
        // The restart asked again from where the sweep had got to, not
        // from the first page.
        let resumed = pages_asked(&im)[before];
        assert!(resumed > 1, "round {round}: restarted at page {resumed}");
    }
    let b = launch(tmp.path(), &ai, &im, true).start().await;
    let lib: Value = common::wait_for(60.0, "the library read and made", || async {
        let v = b.get_json("/api/library").await;
        let l = v["libraries"].get(0).cloned()?;
        (l["ready"] == PHOTOS && l["syncing"] == false).then_some(l)
    })
    .await;
    assert_eq!(lib["photos"], PHOTOS, "{lib}");
    let items = b.get_json("/api/queue/items?limit=1000").await;
    let rows = items["items"].as_array().unwrap();
    assert_eq!(rows.len(), PHOTOS, "one job per photo");
    let media: HashSet<&str> = rows
        .iter()
        .map(|r| r["media_item_id"].as_str().unwrap())
        .collect();
    assert_eq!(media.len(), PHOTOS, "one media item per photo");
    assert!(rows.iter().all(|r| r["status"] == "completed"));
    assert_eq!(ai.requests(), PHOTOS, "each made once");
    let map = b.get_json("/api/assets/map").await;
    assert_eq!(map["count"], PHOTOS);
    for k in 0..PHOTOS {
        let id = format!("00000000-0000-4000-8000-f{:011}", k + 1);
        assert_eq!(
            map["map"][&id]["depth"],
            serde_json::json!(["small"]),
            "{id}"
        );
    }
    b.terminate().await;
}
