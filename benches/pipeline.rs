//! Pipeline benchmark (not a test): the whole path upload -> queue ->
//! worker -> AI stand-in (instant) -> depth map stored, in-process.
//!
//! Prints: dispatch delay (201 received -> AI request arrives) p50/p99 over
//! idle-worker uploads, and items/s for 200 photos of 1 MiB queued first
//! and then processed. Run: `cargo bench --bench pipeline`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::ai_standin::{AiStandin, Mode};
use common::{client, json, start_with_ai, upload};

const MIB: usize = 1024 * 1024;

/// A real PNG header followed by distinct bytes: 1 MiB, typed as a photo.
fn photo(i: u32) -> Vec<u8> {
    let mut v = common::png(64, 64, (i % 251) as u8);
    let tag = i.to_le_bytes();
    while v.len() < MIB {
        v.extend_from_slice(&tag);
        v.push((v.len() % 253) as u8);
    }
    v.truncate(MIB);
    v
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn wait_completed(url: &str, n: u64) {
    loop {
        let st = json(
            client()
                .get(format!("{url}/api/queue/stats"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        if st["stats"]["completed"].as_u64().unwrap() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut delays_all = Vec::new();
    let mut rates = Vec::new();
    for run in 0..runs {
        let ai = AiStandin::start(Mode::Ok).await;
        let s = start_with_ai(&ai.url(), |c| c.max_upload_bytes = 2 * MIB as u64).await;

        // Dispatch delay: one item at a time into an idle worker.
        let mut delays = Vec::new();
        for i in 0..50u32 {
            let bytes = photo(run as u32 * 100_000 + i);
            let before = ai.requests();
            let resp = upload(&s.url, "d.png", bytes).await;
            let acked = Instant::now();
            assert_eq!(resp.status(), 201);
            while ai.requests() == before {
                tokio::task::yield_now().await;
            }
            let arrived = ai.inner.seen.lock().unwrap().arrivals[before];
            let d = arrived.saturating_duration_since(acked);
            delays.push(d.as_secs_f64() * 1000.0);
            wait_completed(&s.url, i as u64 + 1).await;
        }
        delays_all.extend(delays);

        // Throughput: 200 queued photos, then the worker runs them.
        client()
            .post(s.at("/api/queue/worker/stop"))
            .send()
            .await
            .unwrap();
        for i in 0..200u32 {
            let r = upload(&s.url, "t.png", photo(run as u32 * 100_000 + 1000 + i)).await;
            assert_eq!(r.status(), 201);
        }
        let t0 = Instant::now();
        client()
            .post(s.at("/api/queue/worker/start"))
            .send()
            .await
            .unwrap();
        wait_completed(&s.url, 250).await;
        let secs = t0.elapsed().as_secs_f64();
        rates.push(200.0 / secs);
        eprintln!("run {}: 200 items in {:.2} s", run + 1, secs);
        s.stop().await;
    }
    delays_all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "dispatch delay (201 -> AI request): p50 {:.3} ms, p99 {:.3} ms over {} uploads",
        pct(&delays_all, 0.5),
        pct(&delays_all, 0.99),
        delays_all.len()
    );
    println!("pipeline throughput (200 x 1 MiB photos, instant AI): median {:.1} items/s over {} runs (min {:.1}, max {:.1})", rates[rates.len() / 2], runs, rates[0], rates[rates.len() - 1]);
}
