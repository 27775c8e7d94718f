//! kill -9 at random moments, ten rounds, the real binary under uploads and
//! processing. Afterwards every acknowledged upload is there with the same
//! bytes, nothing is stuck `processing`, everything completes, no
//! temporary file is left, and the database opened every time.

mod common;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::ai_standin::{AiStandin, Mode};
use common::{
    bin::{Binary, Launch},
    client, png, Api,
};
use sha2::{Digest, Sha256};

const ROUNDS: u32 = 10;

fn launch(data: &Path, ai: &str) -> Launch {
    Launch::new(data)
        .env("AI_SERVICE_URL", ai)
        .env("AI_CONCURRENCY", 2)
        .env("UPLOAD_CONCURRENCY", 16)
}

async fn healthy(b: &Binary) -> bool {
    b.get("/health").await.status() == 200
}

/// Temporary files older than `started`: left by a crash and not cleaned
/// by start-up (the new process makes its own while it works).
fn temp_files(data: &Path, started: std::time::SystemTime) -> usize {
    ["uploads", "depth_maps"]
        .iter()
        .filter_map(|d| std::fs::read_dir(data.join(d)).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .map(|t| t < started)
                .unwrap_or(false)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_loses_nothing() {
    let ai = AiStandin::start(Mode::Delay(Duration::from_millis(30))).await;
    let tmp = tempfile::tempdir().unwrap();
    // media id -> sha256 of every upload that got its 201.
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut leftover_temp = 0;
    for round in 0..ROUNDS {
        let started = std::time::SystemTime::now();
        let child = launch(tmp.path(), &ai.url()).start().await;
        let url = child.url.clone();
        assert!(
            healthy(&child).await,
            "round {round}: the database did not open"
        );
        leftover_temp += temp_files(tmp.path(), started);
        let mut writers = Vec::new();
        for w in 0..4u32 {
            let (url, acked) = (url.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let bytes = png(24 + (i % 7), 16 + w, (round * 31 + w * 7 + i) as u8);
                    let mut b = bytes.clone();
                    b.extend_from_slice(format!("r{round}w{w}i{i}").as_bytes());
                    let sum = hex::encode(Sha256::digest(&b));
                    let part = reqwest::multipart::Part::bytes(b).file_name("k.png");
                    let form = reqwest::multipart::Form::new().part("media", part);
                    match client()
                        .post(format!("{url}/api/media/upload"))
                        .multipart(form)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 201 => {
                            if let Ok(v) = r.json::<serde_json::Value>().await {
                                acked
                                    .lock()
                                    .unwrap()
                                    .insert(v["mediaItemId"].as_str().unwrap().to_string(), sum);
                            }
                        }
                        _ => return,
                    }
                }
            }));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 600)).await;
        child.kill(); // SIGKILL
        for w in writers {
            let _ = w.await;
        }
    }

    // Final start: everything must be there and finish.
    let started = std::time::SystemTime::now();
    let child = launch(tmp.path(), &ai.url()).start().await;
    assert!(
        healthy(&child).await,
        "the database did not open after the last kill"
    );
    leftover_temp += temp_files(tmp.path(), started);
    let acked = acked.lock().unwrap().clone();
    let mut found = 0;
    for (id, sum) in &acked {
        let m = child.get_json(&format!("/api/media/{id}")).await;
        assert_eq!(m["checksum"].as_str(), Some(sum.as_str()), "row of {id}");
        let bytes = child
            .get(&format!("/api/media/{id}/file"))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), *sum, "file of {id}");
        found += 1;
    }
    let total = acked.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let st = child.get_json("/api/queue/stats").await;
        if st["stats"]["completed"].as_u64().unwrap() >= total && st["stats"]["processing"] == 0 {
            break st;
        }
        assert!(Instant::now() < deadline, "not all completed: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    child.kill();
    println!(
        "kill -9: {ROUNDS} rounds, {total} uploads acknowledged, {found} found intact, {} lost, {} completed, {} temp files left after start-up",
        total - found as u64,
        stats["stats"]["completed"],
        leftover_temp
    );
    assert!(total > 0);
    assert_eq!(found as u64, total);
    assert_eq!(leftover_temp, 0);
}
