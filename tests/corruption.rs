//! A damaged database file is noticed and said so, and what can still be
//! read is served: a list endpoint answers, nothing on disk is removed.

mod common;

use common::Api;

use std::path::Path;

use common::{
    ai_standin::{AiStandin, Mode},
    bin::Launch,
    json, library,
};

/// Overwrites 32 bytes just before every copy of `needle` in the file:
/// the page holding that row (and any older copy of it) no longer
/// matches its checksum.
fn damage_row(path: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(path).unwrap();
    let mut hits = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
        let pos = at + i;
        for b in &mut bytes[pos.saturating_sub(32)..pos] {
            *b = 0xA5;
        }
        hits += 1;
        at = pos + needle.len();
    }
    std::fs::write(path, bytes).unwrap();
    hits
}

fn files(data: &Path) -> usize {
    ["uploads", "depth_maps"]
        .iter()
        .map(|d| std::fs::read_dir(data.join(d)).unwrap().count())
        .sum()
}

async fn library_then(data: &Path, harm: impl FnOnce(&Path)) -> usize {
    let ai = AiStandin::start(Mode::Ok).await;
    let b = Launch::new(data)
        .env("AI_SERVICE_URL", ai.url())
        .start()
        .await;
    library::build(&b.url, &ai, 5).await;
    b.terminate().await;
    harm(&data.join("immichvr.redb"));
    files(data)
}

/// Starts on the damaged dir and checks what a user would: the service
/// runs, says what is wrong and what to do, lists answer, nothing on
/// disk is removed.
async fn check_damaged(data: &Path, before: usize) {
    let b = Launch::new(data)
        .env("AUTO_START_WORKER", "false")
        .env("ORPHAN_GRACE_SECS", 0)
        .start()
        .await;
    b.wait_log("start-up clean-up finished", 30).await;
    let h = b.get("/health").await;
    assert_eq!(h.status(), 503);
    let body = json(h).await;
    assert_eq!(body["database"], "damaged", "{body}");
    assert!(body["error"].as_str().unwrap().contains("backup"), "{body}");
    assert!(
        b.log_text().contains("the database file is damaged"),
        "{}",
        b.log_text()
    );
    for path in [
        "/api/media/status",
        "/api/queue/items",
        "/api/queue/items?orderBy=attempts",
        "/api/queue/items?status=completed",
    ] {
        let r = b.get(path).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status == 200, "{path}: {status} {text}");
    }
    // Writes are refused with the reason, not a 500.
    let up = common::upload(&b.url, "after.png", common::png(8, 8, 77)).await;
    assert!(up.status() == 503 || up.status() == 507, "{}", up.status());
    assert_eq!(
        files(data),
        before,
        "nothing removed from a damaged library"
    );
    b.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_damaged_row_is_reported_and_lists_still_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut hits = 0;
    let before = library_then(&data, |db| hits = damage_row(db, b"beach.png")).await;
    assert!(hits > 0, "the row was not found in the file");
    check_damaged(&data, before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_queue_rows_damaged_is_reported_and_lists_still_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut hits = 0;
    let before = library_then(&data, |db| hits = damage_row(db, b"\"queued_at\"")).await;
    assert!(hits > 1, "{hits}");
    check_damaged(&data, before).await;
}
