//! The real binary killed mid-processing: SIGKILL loses nothing and the
//! item completes after a restart; SIGTERM exits within the grace period
//! and leaves no `processing` row.

mod common;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use common::{
    ai_standin::{AiStandin, Mode},
    bin::Launch,
    json, png, upload, wait_status, Api,
};
use redb::ReadableDatabase;

fn launch(data: &Path, ai: &AiStandin, grace: u64) -> Launch {
    Launch::new(data)
        .env("AI_SERVICE_URL", ai.url())
        .env("SHUTDOWN_GRACE_SECS", grace)
}

/// The per-status counters read straight from the file.
fn processing_rows(data: &Path) -> u64 {
    let db = redb::Database::open(data.join("immichvr.redb")).unwrap();
    let txn = db.begin_read().unwrap();
    immichvr::queue::query::stats(&txn).unwrap().processing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_processing_then_restart_completes() {
    let ai = AiStandin::start(Mode::Delay(Duration::from_secs(30))).await;
    let tmp = tempfile::tempdir().unwrap();
    let b = launch(tmp.path(), &ai, 30).start().await;
    let up = json(upload(&b.url, "k.png", png(16, 16, 1)).await).await;
    let qid = up["queueId"].as_str().unwrap().to_string();
    wait_status(&b.url, &qid, "processing", 10.0).await;
    b.kill();
    // The claim is committed without its own fsync, so the file holds the
    // item as `processing` or still `queued`: both must end completed.
    assert!(processing_rows(tmp.path()) <= 1);

    ai.set_mode(Mode::Ok);
    let b = launch(tmp.path(), &ai, 30).start().await;
    let row = wait_status(&b.url, &qid, "completed", 15.0).await;
    assert_eq!(
        row["attempts"], 1,
        "the interrupted attempt is not counted twice"
    );
    let media = up["mediaItemId"].as_str().unwrap();
    assert_eq!(
        b.get(&format!("/api/media/{media}/depth")).await.status(),
        200
    );
    b.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_grace_and_requeues() {
    let ai = AiStandin::start(Mode::Delay(Duration::from_secs(30))).await;
    let tmp = tempfile::tempdir().unwrap();
    let b = launch(tmp.path(), &ai, 2).start().await;
    let up = json(upload(&b.url, "t.png", png(16, 16, 2)).await).await;
    let qid = up["queueId"].as_str().unwrap().to_string();
    wait_status(&b.url, &qid, "processing", 10.0).await;
    let t0 = Instant::now();
    b.terminate().await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "took {took:?}"
    );
    assert_eq!(
        processing_rows(tmp.path()),
        0,
        "a processing row was left behind"
    );

    // And after a restart the item is simply queued, attempt not counted.
    ai.set_mode(Mode::Ok);
    let b = launch(tmp.path(), &ai, 2).start().await;
    let row = wait_status(&b.url, &qid, "completed", 15.0).await;
    assert_eq!(row["attempts"], 1);
    b.kill();
}
