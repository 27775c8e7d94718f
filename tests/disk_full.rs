//! A full disk never poisons the service: writes stop with 507 and
//! `/health` says why, reads go on, and once space returns the database
//! is reopened and everything resumes without a restart.

mod common;

use std::time::Duration;

use common::fs::{fill, SmallFs};

use immichvr::{
    schema::SCHEMA,
    storage::{Options, StorageError, Store},
};
use redb::{ReadableTableMetadata, TableDefinition};

const BLOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("blobs");

#[test]
fn redb_out_of_space_turns_read_only_then_reopens_by_itself() {
    let Some(fs) = SmallFs::mount(24) else { return };
    // Room to give back later, without writing to the database.
    let reserve = fs.dir.path().join("reserve");
    std::fs::write(&reserve, vec![1u8; 12 * 1024 * 1024]).unwrap();
    let store = Store::open(&fs.dir.path().join("db.redb"), &SCHEMA, Options::default()).unwrap();
    let blob = vec![7u8; 256 * 1024];
    let mut written = 0u64;
    let err = loop {
        let (b, k) = (blob.clone(), written);
        let r = store.write_blocking(None, move |txn: &redb::WriteTransaction| {
            txn.open_table(BLOBS)?.insert(k, b.as_slice())?;
            Ok::<_, StorageError>(())
        });
        match r {
            Ok(()) => written += 1,
            Err(e) => break e,
        }
        assert!(written < 1000, "the disk never filled");
    };
    assert!(err.is_disk_full(), "{err}");
    let h = store.health();
    assert!(
        h.write_error.as_deref().unwrap().contains("disk full"),
        "{h:?}"
    );
    // Writes are refused at once, with the reason; reads go on.
    let again = store.write_blocking(None, |txn: &redb::WriteTransaction| {
        txn.open_table(BLOBS)?.insert(u64::MAX, &[1u8][..])?;
        Ok::<_, StorageError>(())
    });
    assert!(
        matches!(&again, Err(e @ StorageError::ReadOnly(_)) if e.is_disk_full()),
        "{again:?}"
    );
    let count = || {
        store
            .read_blocking(|txn| Ok::<_, StorageError>(txn.open_table(BLOBS)?.len()?))
            .unwrap()
    };
    assert_eq!(count(), written);

    // Room again: the store reopens the file by itself.
    std::fs::remove_file(&reserve).unwrap();
    let t0 = std::time::Instant::now();
    while store.health().write_error.is_some() {
        assert!(t0.elapsed() < Duration::from_secs(10), "never reopened");
        std::thread::sleep(Duration::from_millis(20));
    }
    store
        .write_blocking(None, move |txn: &redb::WriteTransaction| {
            txn.open_table(BLOBS)?.insert(u64::MAX, &[1u8][..])?;
            Ok::<_, StorageError>(())
        })
        .unwrap();
    assert_eq!(
        count(),
        written + 1,
        "every acknowledged write is still there"
    );
    let v = store
        .read_blocking(|txn| {
            Ok::<_, StorageError>(txn.open_table(BLOBS)?.get(0)?.unwrap().value().to_vec())
        })
        .unwrap();
    assert_eq!(v, blob);
    println!(
        "redb: {written} writes until the disk was full; reopened {:?} after space returned",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_with_the_worker_running_pauses_and_recovers_without_a_restart() {
    use common::{
        ai_standin::{AiStandin, Mode},
        bin::Launch,
        json, png, snapshot, upload, Api,
    };
    use sha2::{Digest, Sha256};
    let Some(fs) = SmallFs::mount(48) else { return };
    let ai = AiStandin::start(Mode::Delay(Duration::from_millis(400))).await;
    let b = Launch::new(&fs.dir.path().join("data"))
        .env("AI_SERVICE_URL", ai.url())
        .start()
        .await;
    let mut acked = Vec::new();
    for i in 0..6u8 {
        let bytes = png(48, 40, i);
        let sum = hex::encode(Sha256::digest(&bytes));
        let r = upload(&b.url, &format!("p{i}.png"), bytes).await;
        assert_eq!(r.status(), 201);
        acked.push((
            json(r).await["mediaItemId"].as_str().unwrap().to_string(),
            sum,
        ));
    }
    let filler = fill(fs.dir.path());

    // Full: uploads 507, /health 503 with the reason, processing pauses.
    let r = upload(&b.url, "late.png", png(48, 40, 99)).await;
    assert_eq!(r.status(), 507);
    let body = json(r).await;
    assert_eq!(body["error"], "Disk full");
    assert_eq!(body["code"], "disk-full");
    let h = b.get("/health").await;
    assert_eq!(h.status(), 503);
    let hb = json(h).await;
    assert!(hb["error"].as_str().unwrap().contains("disk full"), "{hb}");
    let url = b.url.clone();
    let paused = common::wait_for(15.0, "the worker to pause", move || {
        let url = url.clone();
        async move {
            let w = json(common::get(format!("{url}/api/queue/worker/status")).await).await;
            w["pausedReason"].as_str().map(str::to_string)
        }
    })
    .await;
    // Writes while the disk is full: each either lands or is refused
    // cleanly (507/503), never a 500, and nothing stays stuck.
    let first = acked[5].0.clone();
    let q = b.get_json(&format!("/api/media/{first}")).await;
    assert!(q["id"].is_string());
    let mut refused = 0;
    for _ in 0..40 {
        let st = b.get_json("/api/queue/items?status=queued&limit=1").await;
        let Some(item) = st["items"].as_array().and_then(|a| a.first()).cloned() else {
            break;
        };
        let id = item["id"].as_str().unwrap();
        for action in ["cancel", "retry"] {
            let r = b.post(&format!("/api/queue/items/{id}/{action}")).await;
            assert!(
                r.status().is_success() || r.status() == 507 || r.status() == 503,
                "{action}: {}",
                r.status()
            );
            if !r.status().is_success() {
                refused += 1;
            }
        }
    }
    let during = b.get_json("/health").await;
    let stats_during = b.get_json("/api/queue/stats").await;

    // Space returns: everything resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    let t0 = std::time::Instant::now();
    let url = b.url.clone();
    common::wait_for(20.0, "/health to be 200 again", move || {
        let url = url.clone();
        async move { (common::get(format!("{url}/health")).await.status() == 200).then_some(()) }
    })
    .await;
    let recovered = t0.elapsed();
    let url = b.url.clone();
    let n = acked.len() as u64;
    common::wait_for(30.0, "every item to complete", move || {
        let url = url.clone();
        async move {
            let s = json(common::get(format!("{url}/api/queue/stats")).await).await;
            (s["stats"]["completed"] == n && s["stats"]["processing"] == 0).then_some(())
        }
    })
    .await;
    for (id, sum) in &acked {
        let bytes = b
            .get(&format!("/api/media/{id}/file"))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), *sum);
        let d = b.get(&format!("/api/media/{id}/depth")).await;
        assert_eq!(d.status(), 200);
    }
    let after = snapshot::take(&b.url).await;
    assert_eq!(snapshot::counts(&after), (acked.len(), acked.len()));
    let w = b.get_json("/api/queue/worker/status").await;
    assert!(w["pausedReason"].is_null(), "{w}");
    println!(
        "disk full: paused ({paused}); while full /health said {:?} ({}), {refused} writes refused, stats {}; \
         /health 200 again {recovered:?} after space returned; {} items completed",
        during["database"], during["error"], stats_during["stats"], acked.len()
    );
    b.terminate().await;
}
