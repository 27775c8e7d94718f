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
use common::stats::{env_or, pct};
use common::{client, get_text, json, start_with_ai, upload};

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

/// User + system CPU time of this process (server, stand-in and client).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from the state field (3rd).
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

async fn commits(url: &str) -> f64 {
    get_text(&format!("{url}/metrics"))
        .await
        .lines()
        .find_map(|l| l.strip_prefix("immichvr_database_commits_total "))
        .and_then(|v| v.parse().ok())
        .unwrap()
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
    let runs: usize = env_or("RUNS", 3);
    let mut delays_all = Vec::new();
    let mut starts_all = Vec::new();
    let mut rates = Vec::new();
    let mut rates2 = Vec::new();
    for run in 0..runs {
        let ai = AiStandin::start(Mode::Ok).await;
        let s = start_with_ai(&ai.url(), |c| c.max_upload_bytes = 2 * MIB as u64).await;

        // Dispatch delay: one item at a time into an idle worker.
        let mut delays = Vec::new();
        let mut starts = Vec::new();
        for i in 0..50u32 {
            let bytes = photo(run as u32 * 100_000 + i);
            let before = ai.requests();
            let resp = upload(&s.url, "d.png", bytes).await;
            let acked = Instant::now();
            assert_eq!(resp.status(), 201);
            // Sleeps, not spins: a spinning task would take one of the two
            // cores the server and the stand-in need. The stand-in stamps
            // the times itself, so the poll interval does not enter them.
            while ai.requests() == before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let (started, arrived) = {
                let seen = ai.inner.seen.lock().unwrap();
                (seen.starts[before], seen.arrivals[before])
            };
            let ms = |t: Instant| t.saturating_duration_since(acked).as_secs_f64() * 1000.0;
            starts.push(ms(started));
            delays.push(ms(arrived));
            wait_completed(&s.url, i as u64 + 1).await;
        }
        delays_all.extend(delays);
        starts_all.extend(starts);

        s.stop().await;

        // Throughput: 200 queued photos, then the worker runs them, with
        // the default one slot and with two.
        for (slots, rates) in [(1usize, &mut rates), (2, &mut rates2)] {
            let s = start_with_ai(&ai.url(), |c| {
                c.max_upload_bytes = 2 * MIB as u64;
                c.ai_concurrency = slots;
                c.auto_start_worker = false;
            })
            .await;
            for i in 0..200u32 {
                let r = upload(&s.url, "t.png", photo(run as u32 * 100_000 + 1000 + i)).await;
                assert_eq!(r.status(), 201);
            }
            let commits0 = commits(&s.url).await;
            let cpu0 = cpu_seconds();
            let t0 = Instant::now();
            client()
                .post(s.at("/api/queue/worker/start"))
                .send()
                .await
                .unwrap();
            wait_completed(&s.url, 200).await;
            let secs = t0.elapsed().as_secs_f64();
            let busy = (cpu_seconds() - cpu0) / (secs * cores());
            let per_item = (commits(&s.url).await - commits0) / 200.0;
            rates.push((200.0 / secs, busy, per_item));
            eprintln!(
                "run {}, {slots} slot(s): 200 items in {secs:.2} s, CPU {:.0} % of all cores, {per_item:.2} commits per item",
                run + 1,
                busy * 100.0
            );
            s.stop().await;
        }
    }
    delays_all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    starts_all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "dispatch delay (201 -> AI request starts): p50 {:.3} ms, p99 {:.3} ms over {} uploads",
        pct(&starts_all, 0.5),
        pct(&starts_all, 0.99),
        starts_all.len()
    );
    println!(
        "dispatch delay (201 -> AI has the whole 1 MiB file): p50 {:.3} ms, p99 {:.3} ms over {} uploads",
        pct(&delays_all, 0.5),
        pct(&delays_all, 0.99),
        delays_all.len()
    );
    for (slots, rates) in [(1, &mut rates), (2, &mut rates2)] {
        rates.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let mid = rates[rates.len() / 2];
        println!(
            "pipeline throughput (200 x 1 MiB photos, instant AI, AI_CONCURRENCY={slots}): median {:.1} items/s over {runs} runs (min {:.1}, max {:.1}); CPU {:.0} % of {} cores; {:.2} commits per item",
            mid.0,
            rates[0].0,
            rates[rates.len() - 1].0,
            mid.1 * 100.0,
            cores(),
            mid.2
        );
    }
}
