//! Backups under pressure: many at once, a crash in the middle of one,
//! unfinished ones at start-up, and a disk without room for the copy.

mod common;

use common::Api;

use std::time::Duration;

use common::{bin::Launch, client, fs::SmallFs, json, png, upload, TestServer};
use immichvr::schema::SCHEMA;
use redb::ReadableDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_simultaneous_backups_never_fail_with_a_5xx() {
    let s = TestServer::start().await;
    for i in 0..20u8 {
        assert_eq!(upload(&s.url, "b.png", png(16, 16, i)).await.status(), 201);
    }
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let url = s.at("/api/admin/backup");
            tokio::spawn(async move { common::post(url).await })
        })
        .collect();
    let (mut created, mut busy) = (Vec::new(), 0);
    for t in tasks {
        let r = t.await.unwrap();
        match r.status().as_u16() {
            201 => created.push(json(r).await["path"].as_str().unwrap().to_string()),
            409 => {
                assert_eq!(json(r).await["code"], "backup-running");
                busy += 1;
            }
            other => panic!("{other}: {}", r.text().await.unwrap()),
        }
    }
    println!(
        "30 simultaneous backups: {} written, {busy} told a backup is running",
        created.len()
    );
    assert!(!created.is_empty());
    created.sort();
    created.dedup();
    assert_eq!(
        created.len() + busy,
        30,
        "every written backup has its own file"
    );
    for p in &created {
        let db = redb::Database::open(p).unwrap();
        let txn = db.begin_read().unwrap();
        assert_eq!(
            txn.list_tables().unwrap().count(),
            SCHEMA.all_tables().count()
        );
    }
    s.stop().await;
}

/// Whether `path` opens as a complete backup: every table, every upload.
fn complete(path: &std::path::Path, uploads: u64) -> Result<(), String> {
    let db = redb::Database::open(path).map_err(|e| e.to_string())?;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let tables = txn.list_tables().map_err(|e| e.to_string())?.count();
    if tables != SCHEMA.all_tables().count() {
        return Err(format!("{tables} tables"));
    }
    let media = txn
        .open_table(immichvr::media::store::MEDIA)
        .map_err(|e| e.to_string())?;
    let n = redb::ReadableTableMetadata::len(&media).map_err(|e| e.to_string())?;
    if n != uploads {
        return Err(format!("{n} media rows, {uploads} uploaded"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_during_backups_never_leaves_a_file_that_looks_complete_but_is_not() {
    const ROUNDS: u64 = 20;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = Launch::new(&data).start().await;
    // Enough rows that a backup takes a while.
    let mut uploads = 0;
    for i in 0..300u32 {
        let mut bytes = png(8, 8, i as u8);
        bytes.extend_from_slice(&i.to_le_bytes());
        assert_eq!(upload(&b.url, "k.png", bytes).await.status(), 201);
        uploads += 1;
    }
    b.terminate().await;
    let mut partial_seen = 0;
    let mut seed = 0x2545F4914F6CDD1Du64;
    for _ in 0..ROUNDS {
        let b = Launch::new(&data)
            .env("AUTO_START_WORKER", "false")
            .start()
            .await;
        let leftovers = std::fs::read_dir(data.join("backups"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(leftovers, 0, "start-up removes unfinished backups");
        let url = b.at("/api/admin/backup");
        let firing = tokio::spawn(async move {
            loop {
                if client().post(&url).send().await.is_err() {
                    return;
                }
            }
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(20 + seed % 200)).await;
        b.kill();
        let _ = firing.await;
        for e in std::fs::read_dir(data.join("backups")).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".partial") {
                partial_seen += 1;
                continue;
            }
            complete(&p, uploads).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
    let written = std::fs::read_dir(data.join("backups")).unwrap().count();
    println!(
        "kill -9 during backups: {ROUNDS} rounds, {written} backups left, every one complete; \
         {partial_seen} unfinished (.partial) seen after a kill, all removed at the next start"
    );
    let b = Launch::new(&data).start().await;
    b.wait_log("start-up clean-up finished", 30).await;
    b.terminate().await;
    assert!(written > 0);
    let partials = std::fs::read_dir(data.join("backups"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")
        })
        .count();
    assert_eq!(partials, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_would_eat_the_headroom_answers_507() {
    let Some(fs) = SmallFs::mount(24) else { return };
    let data = fs.dir.path().join("data");
    let b = Launch::new(&data).start().await;
    for i in 0..50u32 {
        let mut bytes = png(8, 8, i as u8);
        bytes.extend_from_slice(&i.to_le_bytes());
        assert_eq!(upload(&b.url, "h.png", bytes).await.status(), 201);
    }
    // Leave less room than the copy plus the database's own headroom.
    let db_len = std::fs::metadata(data.join("immichvr.redb")).unwrap().len();
    let free = fs4::available_space(fs.dir.path()).unwrap();
    let keep = db_len + 4 * 1024 * 1024;
    std::fs::write(
        fs.dir.path().join("filler"),
        vec![0u8; (free - keep) as usize],
    )
    .unwrap();
    let r = b.post("/api/admin/backup").await;
    assert_eq!(r.status(), 507);
    let body = json(r).await;
    assert_eq!(body["error"], "Disk full");
    assert_eq!(body["code"], "disk-full");
    println!("backup refused: {}", body["message"]);
    let left: Vec<_> = std::fs::read_dir(data.join("backups"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // With room again it works.
    std::fs::remove_file(fs.dir.path().join("filler")).unwrap();
    let r = b.post("/api/admin/backup").await;
    assert_eq!(r.status(), 201);
    b.terminate().await;
}
