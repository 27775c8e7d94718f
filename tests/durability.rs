//! Nothing a user made is lost: the whole API-visible library is the same
//! after SIGTERM, kill -9, backup and restore, start-up compaction, and
//! when a data dir of the previous release is opened.

mod common;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use common::{
    ai_standin::{AiStandin, Mode},
    bin::Launch,
    library, snapshot, Api,
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
    println!(
        "fixture written to {}: {:?}",
        out.display(),
        snapshot::counts(&snap)
    );
}

/// A binary on `data` with the worker on against `ai` (only for building
/// the library: restarts keep it off, so that nothing changes but what
/// the scenario does), and a clean-up that removes unnamed files at once.
async fn first_start(data: &Path, ai: &AiStandin) -> common::bin::Binary {
    Launch::new(data)
        .env("AI_SERVICE_URL", ai.url())
        .env("ORPHAN_GRACE_SECS", 0)
        .start()
        .await
}

fn restart(data: &Path) -> Launch {
    Launch::new(data)
        .env("AUTO_START_WORKER", "false")
        .env("ORPHAN_GRACE_SECS", 0)
}

/// Waits for the start-up clean-up and checks it removed nothing.
async fn settled(b: &common::bin::Binary) {
    b.wait_log("start-up clean-up finished", 30).await;
    let log = b.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("start-up clean-up finished"))
        .unwrap();
    assert!(
        line.contains("uploads_removed=0") && line.contains("depth_maps_removed=0"),
        "the clean-up removed files of a library: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_kill_nine_keep_every_result() {
    let ai = AiStandin::start(Mode::Ok).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = first_start(&data, &ai).await;
    library::build(&b.url, &ai, 1).await;
    let before = snapshot::take(&b.url).await;
    assert_eq!(snapshot::counts(&before), (8, 5));
    b.terminate().await;

    let b = restart(&data).start().await;
    settled(&b).await;
    snapshot::assert_holds(&before, &snapshot::take(&b.url).await);
    b.kill();

    let b = restart(&data).start().await;
    settled(&b).await;
    let after = snapshot::take(&b.url).await;
    snapshot::assert_holds(&before, &after);
    snapshot::assert_holds(&after, &before);
    b.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restored_into_a_fresh_data_dir_serves_the_same_library() {
    let ai = AiStandin::start(Mode::Ok).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = first_start(&data, &ai).await;
    library::build(&b.url, &ai, 2).await;
    let before = snapshot::take(&b.url).await;
    let r = common::post(b.at("/api/admin/backup")).await;
    assert_eq!(r.status(), 201);
    let backup = PathBuf::from(common::json(r).await["path"].as_str().unwrap());
    b.terminate().await;

    // The restore the operators guide describes, into a new place; the
    // old directory is gone before the service starts.
    let fresh = tmp.path().join("restored");
    for d in ["uploads", "depth_maps"] {
        copy_dir(&data.join(d), &fresh.join(d));
    }
    std::fs::copy(&backup, fresh.join("immichvr.redb")).unwrap();
    std::fs::remove_dir_all(&data).unwrap();

    let b = restart(&fresh).start().await;
    settled(&b).await;
    snapshot::assert_holds(&before, &snapshot::take(&b.url).await);
    b.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_compaction_keeps_the_library() {
    let ai = AiStandin::start(Mode::Ok).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = first_start(&data, &ai).await;
    let lib = library::build(&b.url, &ai, 3).await;
    for id in [&lib.failed, &lib.cancelled] {
        let r = b.delete(&format!("/api/media/{id}")).await;
        assert_eq!(r.status(), 200);
    }
    let before = snapshot::take(&b.url).await;
    assert_eq!(snapshot::counts(&before), (6, 5));
    b.terminate().await;

    let b = restart(&data)
        .env("COMPACT_AFTER_DELETES", 1)
        .env("COMPACT_MIN_FREE_BYTES", 0)
        .start()
        .await;
    settled(&b).await;
    assert!(
        b.log_text().contains("database compacted at start-up"),
        "no compaction: {}",
        b.log_text()
    );
    snapshot::assert_holds(&before, &snapshot::take(&b.url).await);
    b.terminate().await;

    // And the count started again: the next start does not compact.
    let b = restart(&data)
        .env("COMPACT_AFTER_DELETES", 1)
        .env("COMPACT_MIN_FREE_BYTES", 0)
        .start()
        .await;
    settled(&b).await;
    assert!(!b.log_text().contains("compacted"));
    snapshot::assert_holds(&before, &snapshot::take(&b.url).await);
    b.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_the_previous_release_opens_and_serves_the_same() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("snapshot.json")).unwrap())
            .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture().join("data"), &data);

    let b = restart(&data).start().await;
    settled(&b).await;
    assert!(
        b.log_text().contains("database migrated"),
        "{}",
        b.log_text()
    );
    let got = snapshot::take(&b.url).await;
    assert_eq!(snapshot::counts(&got), (7, 4));
    snapshot::assert_holds(&expected, &got);
    let info = common::json(common::get(b.at("/api/db/info")).await).await;
    assert_eq!(
        info["schema_version"],
        immichvr::schema::SCHEMA.version(),
        "upgraded to the current schema"
    );
    // Absolute paths name this data dir, not the one the fixture was made in.
    let any = got["media"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let row = common::json(common::get(b.at(&format!("/api/media/{any}"))).await).await;
    assert!(
        row["file_path"]
            .as_str()
            .unwrap()
            .starts_with(data.join("uploads").to_str().unwrap()),
        "{row}"
    );
    b.terminate().await;

    // The copy taken before migrating is the untouched old file.
    let copies: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(copies.len(), 1, "one copy of the old file");
    let sha = |p: &Path| hex::encode(Sha256::digest(std::fs::read(p).unwrap()));
    assert_eq!(
        sha(&copies[0].path()),
        sha(&fixture().join("data/immichvr.redb")),
        "the copy is the file as the previous release left it"
    );

    // A second start migrates nothing and still serves the same.
    let b = restart(&data).start().await;
    settled(&b).await;
    assert!(!b.log_text().contains("database migrated"));
    snapshot::assert_holds(&expected, &snapshot::take(&b.url).await);
    b.kill();
}

/// Plants a file with a modification time `age` ago.
fn plant(path: &Path, age: std::time::Duration) {
    std::fs::write(path, b"left by a crash").unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - age).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_up_removes_only_old_files_no_row_names() {
    let ai = AiStandin::start(Mode::Ok).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = first_start(&data, &ai).await;
    library::build(&b.url, &ai, 4).await;
    let before = snapshot::take(&b.url).await;
    b.terminate().await;

    let hour = std::time::Duration::from_secs(3600);
    let old_upload = data.join(format!("uploads/{}.png", uuid::Uuid::now_v7()));
    let old_depth = data.join(format!("depth_maps/{}.png", uuid::Uuid::now_v7()));
    let young = data.join(format!("uploads/{}.jpg", uuid::Uuid::now_v7()));
    let not_ours = data.join("uploads/holiday.png");
    // Every file a row names is made old: age alone never removes it.
    for d in ["uploads", "depth_maps"] {
        for e in std::fs::read_dir(data.join(d)).unwrap() {
            let f = std::fs::File::options()
                .write(true)
                .open(e.unwrap().path())
                .unwrap();
            f.set_modified(std::time::SystemTime::now() - 3 * hour)
                .unwrap();
        }
    }
    plant(&old_upload, 2 * hour);
    plant(&old_depth, 2 * hour);
    plant(&young, std::time::Duration::from_secs(60));
    plant(&not_ours, 48 * hour);

    let b = Launch::new(&data)
        .env("AUTO_START_WORKER", "false")
        .start()
        .await;
    b.wait_log("start-up clean-up finished", 30).await;
    let log = b.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("start-up clean-up finished"))
        .unwrap();
    for part in [
        "uploads_removed=1",
        "depth_maps_removed=1",
        "too_young=1",
        "named=13",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(!old_upload.exists() && !old_depth.exists());
    assert!(young.exists(), "younger than the grace period");
    assert!(not_ours.exists(), "not a name this service gives");
    snapshot::assert_holds(&before, &snapshot::take(&b.url).await);
    b.terminate().await;
}
