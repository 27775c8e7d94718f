//! Storage benchmark (not a test): queue operations on real redb files of
//! 1 k, 100 k and (with `SIZES=1000,100000,1000000`) 1 M items.
//!
//! For each size it times, as medians over repeats: enqueue (one durable
//! transaction each), claim_next, complete, fail+requeue, stats, one list
//! page, and opening the database. With `KEEP_DIR=path` the filled data
//! directories are kept (`path/n<size>`) for the HTTP benchmarks.
//! Run: `cargo bench --bench storage`.

use std::{path::Path, sync::Arc, time::Instant};

use chrono::Utc;
use immichvr::{
    app::open_state,
    media::{store as mstore, MediaRow, MediaType, Source},
    queue::{query, store as qstore, ListQuery, NewItem, OrderBy, QueueError, Status},
    state::AppState,
};
use uuid::Uuid;

fn row(i: u64) -> MediaRow {
    let now = Utc::now();
    MediaRow {
        id: Uuid::now_v7(),
        original_filename: format!("photo-{i}.jpg"),
        media_type: if i.is_multiple_of(10) {
            MediaType::Video
        } else {
            MediaType::Photo
        },
        file_path: format!("/nonexistent/{i}.jpg"),
        file_size: (i * 7919) % (150 * 1024 * 1024),
        mime_type: "image/jpeg".into(),
        width: Some(4000),
        height: Some(3000),
        duration_seconds: None,
        frame_rate: None,
        checksum: format!("{i:064x}"),
        captured_at: None,
        uploaded_at: now.into(),
        source: Source::Upload,
        immich_asset_id: None,
        immich_variant: None,
        created_at: now.into(),
        updated_at: now.into(),
        seq: 0,
        owner: None,
        via: None,
    }
}

/// A media row and its queue entry, as an upload writes them.
fn insert_item(txn: &redb::WriteTransaction, r: MediaRow, sum: &[u8]) -> Result<(), QueueError> {
    let m = mstore::insert(txn, r, sum)?;
    let item = NewItem {
        media_id: m.id,
        media_type: m.media_type,
        file_size: m.file_size,
        original_filename: m.original_filename,
        max_attempts: 3,
        kind: immichvr::assets::Kind::Depth,
        model_key: "small".into(),
        priority: None,
    };
    qstore::insert_new(txn, &item)?;
    Ok(())
}

async fn fill(state: &Arc<AppState>, n: u64) {
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(20_000);
        let start = done;
        state
            .store
            .write(move |txn| {
                for i in start..start + batch {
                    let r = row(i);
                    let sum = i.to_le_bytes().repeat(4);
                    insert_item(txn, r, &sum)?;
                }
                Ok::<_, QueueError>(())
            })
            .await
            .unwrap();
        done += batch;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * 0.99) as usize]
}

async fn time_n<F, Fut>(n: usize, mut f: F) -> Vec<f64>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
}

fn us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.1} µs")
    }
}

async fn bench_size(n: u64, keep: Option<&Path>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = match keep {
        Some(k) => k.join(format!("n{n}")),
        None => tmp.path().to_path_buf(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = immichvr::Config::with_data_dir(&dir);
    config.auto_start_worker = false;
    let t = Instant::now();
    let state = open_state(config.clone()).await.unwrap();
    fill(&state, n).await;
    let fill_s = t.elapsed().as_secs_f64();

    let q = state.catalog.clone();
    let stats = time_n(200, |_| {
        let q = q.clone();
        async move {
            q.stats().await.unwrap();
        }
    })
    .await;
    let st2 = state.store.clone();
    let list = time_n(200, |_| {
        let s = st2.clone();
        async move {
            s.read(|txn| {
                let q = ListQuery {
                    status: Some(Status::Queued),
                    order: OrderBy::Priority,
                    descending: false,
                    limit: 50,
                    offset: 0,
                };
                Ok::<_, QueueError>(query::list(txn, &q)?)
            })
            .await
            .unwrap();
        }
    })
    .await;
    let enqueue = time_n(50, |i| {
        let s = state.store.clone();
        async move {
            s.write(move |txn| {
                insert_item(
                    txn,
                    row(10_000_000 + i as u64),
                    &(10_000_000 + i as u64).to_le_bytes().repeat(4),
                )?;
                Ok::<_, QueueError>(())
            })
            .await
            .unwrap();
        }
    })
    .await;
    let mut claimed = Vec::new();
    let claim = {
        let mut v = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            claimed.push(q.claim_next().await.unwrap().unwrap());
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        v
    };
    let complete = {
        let mut v = Vec::new();
        for c in claimed.drain(..25) {
            let t = Instant::now();
            let id = c.id;
            state
                .store
                .write(move |txn| qstore::complete(txn, id, Utc::now()))
                .await
                .unwrap();
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        v
    };
    let fail = {
        let mut v = Vec::new();
        for c in claimed.drain(..) {
            let t = Instant::now();
            q.fail(c.id, "bench".into(), |_| Some(chrono::Duration::zero()))
                .await
                .unwrap();
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        v
    };
    drop(q);
    drop(st2);
    drop(state);
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let s = open_state(config.clone()).await.unwrap();
        opens.push(t.elapsed().as_secs_f64() * 1e6);
        drop(s);
    }
    let size = std::fs::metadata(dir.join("immichvr.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "| {n} | {fill_s:.1} s | {} | {} | {} | {} | {} / p99 {} | {} / p99 {} | {} | {:.0} MiB |",
        us(median(enqueue)),
        us(median(claim)),
        us(median(complete)),
        us(median(fail)),
        us(median(stats.clone())),
        us(p99(stats)),
        us(median(list.clone())),
        us(p99(list)),
        us(median(opens)),
        size as f64 / 1048576.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<u64> = std::env::var("SIZES")
        .unwrap_or_else(|_| "1000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let keep = std::env::var("KEEP_DIR").ok().map(std::path::PathBuf::from);
    println!("| items | fill | enqueue (durable) | claim_next | complete (durable) | fail+requeue (durable) | stats | list page (50) | open | file |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        bench_size(n, keep.as_deref()).await;
    }
}
