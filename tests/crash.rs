//! The real binary killed mid-processing: SIGKILL loses nothing and the
//! item completes after a restart; SIGTERM exits within the grace period
//! and leaves no `processing` row.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::ai_standin::{AiStandin, Mode};
use common::{client, free_port, json, png, queue_item, upload, wait_for, wait_status};
use redb::ReadableDatabase;

fn spawn(data: &Path, port: u16, ai: &str, grace: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_immichvr"))
        .env("DATA_DIR", data)
        .env("BACKEND_PORT", port.to_string())
        .env("BIND_ADDR", "127.0.0.1")
        .env("AI_SERVICE_URL", ai)
        .env("SHUTDOWN_GRACE_SECS", grace.to_string())
        .env("RETRY_BASE_SECS", "0.05")
        .env_remove("IMMICH_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn healthy(url: &str) {
    let u = url.to_string();
    wait_for(10.0, "server healthy", move || {
        let u = u.clone();
        async move {
            client()
                .get(format!("{u}/health"))
                .send()
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
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
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn(tmp.path(), port, &ai.url(), 30);
    healthy(&url).await;
    let up = json(upload(&url, "k.png", png(16, 16, 1)).await).await;
    let qid = up["queueId"].as_str().unwrap().to_string();
    wait_status(&url, &qid, "processing", 10.0).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The claim is committed without its own fsync, so the file holds the
    // item as `processing` or still `queued`: both must end completed.
    assert!(processing_rows(tmp.path()) <= 1);

    ai.set_mode(Mode::Ok);
    let mut child = spawn(tmp.path(), port, &ai.url(), 30);
    healthy(&url).await;
    let row = wait_status(&url, &qid, "completed", 15.0).await;
    assert_eq!(
        row["attempts"], 1,
        "the interrupted attempt is not counted twice"
    );
    let media = up["mediaItemId"].as_str().unwrap();
    assert_eq!(
        client()
            .get(format!("{url}/api/media/{media}/depth"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_grace_and_requeues() {
    let ai = AiStandin::start(Mode::Delay(Duration::from_secs(30))).await;
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = spawn(tmp.path(), port, &ai.url(), 2);
    healthy(&url).await;
    let up = json(upload(&url, "t.png", png(16, 16, 2)).await).await;
    let qid = up["queueId"].as_str().unwrap().to_string();
    wait_status(&url, &qid, "processing", 10.0).await;
    // SIGTERM through kill(1): the crate forbids unsafe code, tests included.
    let t0 = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status:?}");
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
    let mut child = spawn(tmp.path(), port, &ai.url(), 2);
    healthy(&url).await;
    let row = wait_status(&url, &qid, "completed", 15.0).await;
    assert_eq!(row["attempts"], 1);
    let _ = queue_item(&url, &qid).await;
    child.kill().unwrap();
    child.wait().unwrap();
}
