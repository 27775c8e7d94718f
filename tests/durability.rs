//! Nothing a user made is lost: the whole API-visible library is the same
//! after SIGTERM, kill -9, backup and restore, start-up compaction, and
//! when a data dir of the previous release is opened.

mod common;

use std::path::{Path, PathBuf};

use common::{
    ai_standin::{AiStandin, Mode},
    bin::Launch,
    library, snapshot,
};

/// The data dir written by the previous release (commit 66c7c4d) and what
/// that release served from it.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/previous-release")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Writes `tests/fixtures/previous-release` with the binary named by
/// `IMMICHVR_FIXTURE_BIN` (the previous release). Run by hand:
/// `IMMICHVR_FIXTURE_BIN=/path/to/old/immichvr cargo test --test durability -- --ignored make_fixture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn make_fixture() {
    let exe = std::env::var("IMMICHVR_FIXTURE_BIN").expect("IMMICHVR_FIXTURE_BIN");
    let ai = AiStandin::start(Mode::Ok).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = Launch::new(&data)
        .exe(&exe)
        .env("AI_SERVICE_URL", ai.url())
        .start()
        .await;
    library::build(&b.url, &ai, 7).await;
    let snap = snapshot::take(&b.url).await;
    b.terminate().await;
    let out = fixture();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    for d in ["uploads", "depth_maps"] {
        copy_dir(&data.join(d), &out.join("data").join(d));
    }
    std::fs::copy(data.join("immichvr.redb"), out.join("data/immichvr.redb")).unwrap();
    std::fs::write(
        out.join("snapshot.json"),
        serde_json::to_string_pretty(&snap).unwrap(),
    )
    .unwrap();
    println!("fixture written to {}: {:?}", out.display(), snapshot::counts(&snap));
}
