//! Backups: consistent under concurrent uploads, restorable, and refusing
//! to write something incomplete; compaction of a sparse file.

mod common;

use common::Api;

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use common::*;
use immichvr::{
    media, queue,
    schema::SCHEMA,
    storage::{backup, Options, Store},
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use uuid::Uuid;

/// Media ids with the instant their 201 arrived.
type Acks = Arc<Mutex<Vec<(Instant, Uuid)>>>;

async fn upload_stream(url: String, stream: u8, n: u8, acks: Acks) {
    for i in 0..n {
        let resp = upload(
            &url,
            &format!("s{stream}-{i}.png"),
            png(24, 24, stream * 100 + i),
        )
        .await;
        assert_eq!(resp.status(), 201);
        let body = json(resp).await;
        let id: Uuid = body["mediaItemId"].as_str().unwrap().parse().unwrap();
        acks.lock().unwrap().push((Instant::now(), id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_during_uploads_holds_every_acknowledged_upload_and_restores() {
    let s = TestServer::start().await;
    let acks: Acks = Arc::default();
    let streams: Vec<_> = (0..3)
        .map(|k| tokio::spawn(upload_stream(s.url.clone(), k, 25, acks.clone())))
        .collect();
    wait_for(20.0, "some uploads", || {
        let n = acks.lock().unwrap().len();
        async move { (n >= 10).then_some(()) }
    })
    .await;
    let asked = Instant::now();
    let resp = s.post("/api/admin/backup").await;
    assert_eq!(resp.status(), 201);
    let body = json(resp).await;
    for s in streams {
        s.await.unwrap();
    }
    let before: Vec<Uuid> = acks
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t < asked)
        .map(|(_, id)| *id)
        .collect();
    assert!(before.len() >= 10);
    assert!(acks.lock().unwrap().len() == 75);

    let path = std::path::PathBuf::from(body["path"].as_str().unwrap());
    assert!(path.starts_with(s.data_dir.join("backups").canonicalize().unwrap()));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        body["sizeBytes"].as_u64().unwrap()
    );
    assert_eq!(
        body["tables"].as_u64().unwrap() as usize,
        SCHEMA.all_tables().count()
    );

    {
        let db = redb::Database::open(&path).expect("the backup opens as a redb file");
        let txn = db.begin_read().unwrap();
        for id in &before {
            let row = media::store::get(&txn, *id).unwrap();
            assert!(
                row.is_some(),
                "acknowledged upload {id} missing from the backup"
            );
            assert!(queue::store::get_by_media(&txn, *id).unwrap().is_some());
        }
        // One snapshot: the counters agree with the rows they count.
        assert_eq!(
            queue::query::stats(&txn).unwrap(),
            queue::query::recount(&txn).unwrap()
        );
    }

    // Restore: the copy in place of the database of a fresh server.
    let (mut c, tmp) = test_config();
    std::fs::copy(&path, c.database_path()).unwrap();
    c.upload_dir = Some(s.data_dir.join("uploads"));
    let restored = TestServer::start_with(c, Some(tmp)).await;
    for id in &before {
        let r = restored.get(&format!("/api/media/{id}")).await;
        assert_eq!(r.status(), 200, "{id} after restore");
    }
    restored.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn backups_get_distinct_names_and_need_the_token_when_auth_is_on() {
    let (mut c, tmp) = test_config();
    c.auth_token = Some("backup-secret".parse().unwrap());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let r = s.post("/api/admin/backup").await;
    assert_eq!(r.status(), 401);
    let mut paths = Vec::new();
    for _ in 0..2 {
        let r = client()
            .post(s.at("/api/admin/backup"))
            .bearer_auth("backup-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        paths.push(json(r).await["path"].as_str().unwrap().to_string());
    }
    assert_ne!(paths[0], paths[1]);
    s.stop().await;
}

const STRAY: TableDefinition<u64, u64> = TableDefinition::new("stray");

fn store_in(dir: &std::path::Path) -> Store {
    Store::open(&dir.join("immichvr.redb"), &SCHEMA, Options::default()).unwrap()
}

fn backup_to(
    store: &Store,
    dest: &std::path::Path,
) -> Result<backup::BackupInfo, backup::BackupError> {
    store.read_blocking(|txn| backup::write(txn, &SCHEMA, dest))
}

#[test]
fn a_table_the_backup_does_not_know_fails_it_and_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    store
        .write_blocking(None, |txn: &redb::WriteTransaction| {
            txn.open_table(STRAY)?.insert(1, 2)?;
            Ok::<_, immichvr::storage::StorageError>(())
        })
        .unwrap();
    let dest = tmp.path().join("out.redb");
    let err = backup_to(&store, &dest).unwrap_err();
    assert!(
        matches!(err, backup::BackupError::UnknownTable(ref t) if t == "stray"),
        "{err}"
    );
    assert!(!dest.exists());
    assert!(!tmp.path().join("out.redb.partial").exists());
}

#[test]
fn an_existing_target_is_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let dest = tmp.path().join("taken.redb");
    std::fs::write(&dest, b"precious").unwrap();
    let err = backup_to(&store, &dest).unwrap_err();
    assert!(matches!(err, backup::BackupError::Exists(_)), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
}

#[test]
fn a_fresh_database_backs_up_every_table() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in(tmp.path());
    let info = backup_to(&store, &tmp.path().join("b.redb")).unwrap();
    let names = store
        .read_blocking(immichvr::storage::table_counts)
        .unwrap();
    assert_eq!(info.tables, names.len());
    assert_eq!(info.tables, SCHEMA.all_tables().count());
}

const BULK: TableDefinition<u64, &[u8]> = TableDefinition::new("bulk");
const KEEP: TableDefinition<u64, &[u8]> = TableDefinition::new("keep");

#[test]
fn compaction_runs_only_when_much_of_the_file_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.redb");
    let mut db = redb::Database::create(&path).unwrap();
    let blob = vec![7u8; 64 * 1024];
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BULK).unwrap();
        for i in 0..160u64 {
            t.insert(i, blob.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    assert_eq!(
        backup::compact_if_sparse(&mut db, &path, 1 << 20).unwrap(),
        None,
        "a full file is left alone"
    );
    let txn = db.begin_write().unwrap();
    txn.delete_table(BULK).unwrap();
    txn.commit().unwrap();
    let (before, after) = backup::compact_if_sparse(&mut db, &path, 1 << 20)
        .unwrap()
        .expect("a mostly free file is compacted");
    assert!(after < before / 2, "{before} -> {after}");
    assert_eq!(
        backup::compact_if_sparse(&mut db, &path, u64::MAX).unwrap(),
        None,
        "below the threshold nothing happens"
    );
}

fn meta_counter(path: &std::path::Path, value: Option<u64>) -> u64 {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    let old = {
        let mut meta = txn.open_table(immichvr::storage::META).unwrap();
        let key = immichvr::storage::DELETES_SINCE_COMPACTION;
        let old = meta.get(key).unwrap().map(|v| v.value()).unwrap_or(0);
        if let Some(v) = value {
            meta.insert(key, v).unwrap();
        }
        old
    };
    txn.commit().unwrap();
    old
}

/// Start-up looks at the free space (a walk of every page) only after
/// many deletions, so a large database opens at once.
#[test]
fn start_up_compacts_only_after_many_deletions() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("immichvr.redb");
    let store = store_in(tmp.path());
    let blob = vec![3u8; 1024 * 1024];
    for chunk in 0..4u64 {
        let blob = blob.clone();
        store
            .write_blocking(None, move |txn: &redb::WriteTransaction| {
                let mut t = txn.open_table(BULK)?;
                for i in 0..24u64 {
                    t.insert(chunk * 100 + i, blob.as_slice())?;
                }
                // Live data after each run of blobs, so that deleting the
                // blobs leaves holes rather than a tail to cut off.
                txn.open_table(KEEP)?.insert(chunk, &blob[..256 * 1024])?;
                Ok::<_, immichvr::storage::StorageError>(())
            })
            .unwrap();
    }
    store
        .write_blocking(None, |txn: &redb::WriteTransaction| {
            txn.delete_table(BULK)?;
            Ok::<_, immichvr::storage::StorageError>(())
        })
        .unwrap();
    drop(store);
    let size = || std::fs::metadata(&path).unwrap().len();
    let sparse = size();
    let defaults = Options::default();
    assert!(sparse > defaults.compact_min_free * 5 / 4, "{sparse}");

    meta_counter(&path, Some(defaults.compact_after_deletes - 1));
    drop(store_in(tmp.path()));
    assert_eq!(size(), sparse, "too few deletions: not even looked at");

    meta_counter(&path, Some(defaults.compact_after_deletes));
    drop(store_in(tmp.path()));
    assert!(size() < sparse / 4, "{sparse} -> {}", size());
    assert_eq!(meta_counter(&path, None), 0, "the count starts again");
}

#[tokio::test]
async fn deleting_an_item_counts_towards_compaction() {
    let s = TestServer::start().await;
    for i in 0..3u8 {
        let body = json(upload(&s.url, "d.png", png(8, 8, i)).await).await;
        let id = body["mediaItemId"].as_str().unwrap().to_string();
        let r = s.delete(&format!("/api/media/{id}")).await;
        assert_eq!(r.status(), 200);
    }
    let dir = s.stop().await.unwrap();
    assert_eq!(meta_counter(&dir.path().join("immichvr.redb"), None), 3);
}
