//! Schema migrations on real data dirs: the previous release's fixture is
//! copied first and migrated in one step per version; a disk that cannot
//! hold the copy refuses the upgrade without touching the file; a newer
//! file is refused (tests/api_queue.rs); the tables a backup copies are the
//! tables that exist.

mod common;

use std::path::Path;

use common::{bin::Launch, fs::SmallFs};
use immichvr::schema::SCHEMA;
use redb::{ReadableDatabase, ReadableTable};
use sha2::{Digest, Sha256};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/previous-release/data")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn sha(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn the_chain_brings_the_previous_release_to_the_current_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture(), &data);
    let store = immichvr::storage::Store::open(
        &data.join("immichvr.redb"),
        &SCHEMA,
        immichvr::storage::Options::default(),
    )
    .unwrap();
    let (tables, version) = store
        .read_blocking(|txn| {
            Ok::<_, immichvr::storage::StorageError>((
                immichvr::storage::table_counts(txn)?,
                immichvr::storage::schema_version(txn)?,
            ))
        })
        .unwrap();
    assert_eq!(version, SCHEMA.version());
    // Every table the schema declares exists, and nothing else: the list
    // backups copy is the list that exists.
    assert_eq!(tables.len(), SCHEMA.all_tables().count(), "{tables:?}");
    // Rows name files relative to their directory, and every named file is
    // in the file index and on disk.
    let rows = store
        .read_blocking(|txn| {
            let media = txn.open_table(immichvr::media::store::MEDIA)?;
            let files = txn.open_table(immichvr::media::store::FILES)?;
            let mut out = Vec::new();
            for e in media.iter()? {
                let row: immichvr::media::MediaRow = immichvr::storage::decode(e?.1.value())?;
                let indexed = files
                    .get(format!("uploads/{}", row.file_path).as_str())?
                    .is_some();
                out.push((row.file_path, indexed));
            }
            Ok::<_, immichvr::storage::StorageError>(out)
        })
        .unwrap();
    assert_eq!(rows.len(), 7);
    for (name, indexed) in rows {
        assert!(!name.contains('/'), "{name}");
        assert!(indexed, "{name} not in the file index");
        assert!(data.join("uploads").join(&name).exists(), "{name}");
    }
}

#[tokio::test]
async fn a_disk_without_room_for_the_copy_refuses_the_upgrade_untouched() {
    let Some(fs) = SmallFs::mount(8) else { return };
    let data = fs.dir.path().join("data");
    copy_dir(&fixture(), &data);
    let before = sha(&data.join("immichvr.redb"));
    // Less room than the file plus the 4 MiB the database keeps free.
    let free = fs4::available_space(fs.dir.path()).unwrap();
    let keep = 2 * 1024 * 1024;
    std::fs::write(
        fs.dir.path().join("filler"),
        vec![0u8; (free - keep) as usize],
    )
    .unwrap();

    let (ok, out) = Launch::new(&data).run_to_exit();
    assert!(!ok, "started on a disk without room for the copy: {out}");
    assert!(
        out.contains("upgrading the database needs a copy of it first"),
        "{out}"
    );
    assert_eq!(
        sha(&data.join("immichvr.redb")),
        before,
        "the file was touched"
    );
    let baks: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".bak"))
        .collect();
    assert!(baks.is_empty(), "a partial copy was left: {baks:?}");

    // With room, the same data dir upgrades.
    std::fs::remove_file(fs.dir.path().join("filler")).unwrap();
    let b = Launch::new(&data)
        .env("AUTO_START_WORKER", "false")
        .start()
        .await;
    b.wait_log("database migrated", 30).await;
    let db = b.terminate().await;
    let _ = db;
    let file = redb::ReadOnlyDatabase::open(data.join("immichvr.redb")).unwrap();
    let txn = file.begin_read().unwrap();
    assert_eq!(
        immichvr::storage::schema_version(&txn).unwrap(),
        SCHEMA.version()
    );
}

/// Schema 3: each depth map of the previous release becomes a `depth`
/// asset of `small` (the model that made them is not recorded as one of
/// the catalogue's), served byte for byte by the old route and the new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_depth_maps_become_small_depth_assets_on_both_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture(), &data);
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("../snapshot.json")).unwrap())
            .unwrap();
    let b = Launch::new(&data)
        .env("AUTO_START_WORKER", "false")
        .start()
        .await;
    let mut checked = 0;
    for (media, want) in snapshot["depth_maps"].as_object().unwrap() {
        let Some(want) = want.as_str() else { continue };
        let old = common::get(b.at(&format!("/api/media/{media}/depth"))).await;
        assert_eq!(old.status(), 200, "{media}");
        // Each keeps its format: PNG for a photo, ZIP of frames for a video.
        let format = match old.headers()["content-type"].to_str().unwrap() {
            "image/png" => "png",
            "application/zip" => "zip",
            other => panic!("{media}: {other}"),
        };
        let old = hex::encode(Sha256::digest(old.bytes().await.unwrap()));
        assert_eq!(old, want, "{media}: old route");
        let files =
            common::json(common::get(b.at(&format!("/api/assets/{media}/files"))).await).await;
        assert_eq!(files["count"], 1, "{files}");
        let f = &files["files"][0];
        assert_eq!(
            (
                f["type"].as_str(),
                f["modelKey"].as_str(),
                f["format"].as_str()
            ),
            (Some("depth"), Some("small"), Some(format))
        );
        let id = f["id"].as_str().unwrap();
        let new = common::get(b.at(&format!("/api/assets/{media}/files/{id}/download"))).await;
        let new = hex::encode(Sha256::digest(new.bytes().await.unwrap()));
        assert_eq!(new, want, "{media}: new route");
        checked += 1;
    }
    assert_eq!(checked, 4, "the fixture has four depth maps");
    // The catalogue and the settings exist after the upgrade.
    let models = common::json(common::get(b.at("/api/settings/models")).await).await;
    assert_eq!(models["models"].as_array().unwrap().len(), 4);
    b.terminate().await;
}

fn release_v3() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-v3/data")
}

/// Schema 4 (following Immich) on a data dir a schema-3 release wrote
/// (`scripts/make-v3-fixture.sh`: the app's generate for three Immich
/// photos, one upload): it upgrades, and following the same library finds
/// the three made, so only the rest goes to the AI, once, even across a
/// restart; what was there is served byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_3_data_dir_upgrades_and_following_finds_what_was_made() {
    use common::{
        ai_standin::{AiStandin, Mode},
        immich_standin::{library, ImmichStandin, KEY},
        Api,
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&release_v3(), &data);
    let old_maps: std::collections::BTreeSet<String> = std::fs::read_dir(data.join("depth_maps"))
        .unwrap()
        .map(|e| sha(&e.unwrap().path()))
        .collect();
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(6)).await;
    let launch = || {
        Launch::new(&data)
            .env("AI_SERVICE_URL", ai.url())
            .env("IMMICH_URL", im.url())
            .env("IMMICH_API_KEY", KEY)
            .env("IMMICH_SYNC_SECS", 3600)
    };
    let b = launch().start().await;
    b.wait_log("database migrated", 30).await;
    assert!(b.log_text().contains("schema 4"), "{}", b.log_text());
    let info = b.get_json("/api/db/info").await;
    assert_eq!(info["schema_version"], SCHEMA.version());
    // Six JPEGs, the HEIC and the large photo; the videos are skipped.
    let ready = |b: &common::bin::Binary| {
        let url = b.url.clone();
        async move {
            let v = common::json(common::get(format!("{url}/api/library")).await).await;
            let l = v["libraries"].get(0).cloned()?;
            (l["ready"] == 8 && l["syncing"] == false).then_some(l)
        }
    };
    let lib = common::wait_for(60.0, "the library made", || ready(&b)).await;
    assert_eq!(lib["photos"], 8, "{lib}");
    assert_eq!(ai.requests(), 5, "the three made before were found made");
    for i in 1..=3 {
        let id = format!("00000000-0000-4000-8000-00000000000{i}");
        let r = b
            .post_json(
                &format!("/api/assets/{id}/generate"),
                &serde_json::json!({"type": "depth", "modelKey": "small"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-asset-cache"], "hit");
        let sum = hex::encode(Sha256::digest(r.bytes().await.unwrap()));
        assert!(
            old_maps.contains(&sum),
            "{id}: the map the old release made"
        );
    }
    b.terminate().await;
    let b = launch().start().await;
    let lib = common::wait_for(60.0, "the library read again", || ready(&b)).await;
    assert_eq!(lib["photos"], 8);
    assert_eq!(ai.requests(), 5, "nothing made twice after a restart");
    let media = b.get_json("/api/media/status").await;
    assert!(media.to_string().contains("upload.png"), "{media}");
    b.terminate().await;
}
