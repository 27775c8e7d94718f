//! Keeping the AI busy and the app first (issue 28), not a test. The
//! binaries run as processes against in-process stand-ins: an AI that
//! serves one image at a time in a fixed `T` (as one GPU does) and an
//! Immich whose previews take a fixed `IMMICH_MS`.
//!
//! - AI utilisation: the busy share of each AI (its own record) while a
//!   backlog runs: a followed library of `PHOTOS` photos (candidate only),
//!   and 16 clients generating 200 photos (the measure), with 1
//!   and 2 AI endpoints;
//! - the app's latency with a backlog of 1,000 uploads (both binaries) and
//!   of the followed library (candidate): the generate's answer, and its
//!   wait for the AI (from the request to the AI starting its image);
//! - a photo appearing in Immich to its depth map being served
//!   (candidate, `IMMICH_SYNC_SECS=5`).
//!
//! `BASELINE_BIN` (optional) is the binary to compare with (3e48830);
//! `CANDIDATE_BIN` defaults to this checkout's release build. Prints
//! medians of `RUNS` (1). Run: `scripts/follow-bench.sh`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use common::stats::{env_or, median, pct};
use common::{
    ai_standin::{AiStandin, Mode},
    bin::{Binary, Launch},
    immich_standin::{new_photos, ImmichStandin, KEY},
    Api,
};
use futures_util::StreamExt;
use serde_json::json;

const T: Duration = Duration::from_millis(50);
const IMMICH_MS: u64 = 30;
const PHOTOS: usize = 1000;

fn photo(k: usize) -> String {
    format!("00000000-0000-4000-8000-f{:011}", k + 1)
}

async fn immich(n: usize) -> ImmichStandin {
    let im = ImmichStandin::start(new_photos(0, n, chrono::Utc::now())).await;
    *im.inner.preview_delay.lock().unwrap() = Duration::from_millis(IMMICH_MS);
    im
}

async fn ais(n: usize) -> Vec<AiStandin> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(AiStandin::start(Mode::Serial(T)).await);
    }
    v
}

fn urls(ais: &[AiStandin]) -> String {
    ais.iter().map(|a| a.url()).collect::<Vec<_>>().join(",")
}

async fn launch(
    exe: &PathBuf,
    data: &std::path::Path,
    ais: &[AiStandin],
    im: &ImmichStandin,
    follow: u64,
    worker: bool,
) -> Binary {
    let b = Launch::new(data)
        .exe(exe)
        .env("AI_SERVICE_URL", urls(ais))
        .env("IMMICH_URL", im.url())
        .env("IMMICH_API_KEY", KEY)
        .env("IMMICH_SYNC_SECS", follow)
        .env("AUTO_START_WORKER", worker)
        .env("RUST_LOG", "warn")
        .start()
        .await;
    assert_eq!(b.post("/api/settings/models/sync").await.status(), 200);
    b
}

/// Busy share of the AIs from the first image begun to the last ended.
fn utilisation(ais: &[AiStandin]) -> f64 {
    let spans: Vec<(Instant, Instant)> = ais
        .iter()
        .flat_map(|a| {
            a.inner
                .busy
                .lock()
                .unwrap()
                .iter()
                .map(|(s, e, _)| (*s, *e))
                .collect::<Vec<_>>()
        })
        .collect();
    let from = spans.iter().map(|s| s.0).min().unwrap();
    let to = spans.iter().map(|s| s.1).max().unwrap();
    let busy: f64 = ais
        .iter()
        .map(|a| a.busy_between(from, to).as_secs_f64())
        .sum();
    busy / (to - from).as_secs_f64() / ais.len() as f64
}

async fn ready(b: &Binary) -> u64 {
    let v = b.get_json("/api/library").await;
    v["libraries"][0]["ready"].as_u64().unwrap_or(0)
}

/// The followed library of `PHOTOS` made by `n` AIs.
async fn follow_backlog(exe: &PathBuf, n: usize) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let ai = ais(n).await;
    let im = immich(PHOTOS).await;
    let b = launch(exe, tmp.path(), &ai, &im, 3600, true).await;
    while ready(&b).await < PHOTOS as u64 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.terminate().await;
    utilisation(&ai)
}

async fn generate(url: &str, id: &str) -> (u16, Duration) {
    let t = Instant::now();
    let r = common::client()
        .post(format!("{url}/api/assets/{id}/generate"))
        .json(&json!({"type": "depth", "modelKey": "small"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    (status, t.elapsed())
}

/// 16 clients ask for 200 different photos (the measure).
async fn sixteen_clients(exe: &PathBuf, n: usize) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let ai = ais(n).await;
    let im = immich(200).await;
    let b = launch(exe, tmp.path(), &ai, &im, 0, true).await;
    let url = b.url.clone();
    let ok = futures_util::stream::iter(0..200)
        .map(|k| {
            let url = url.clone();
            async move { generate(&url, &photo(k)).await.0 }
        })
        .buffer_unordered(16)
        .filter(|s| futures_util::future::ready(*s == 200))
        .count()
        .await;
    assert_eq!(ok, 200);
    b.terminate().await;
    utilisation(&ai)
}

/// The app's generate while a backlog runs: `follow` a library of
/// `PHOTOS`, or else 1,000 uploads. Gives (answer, wait for the AI), ms.
async fn app_latency(exe: &PathBuf, follow: bool) -> (Vec<f64>, Vec<f64>) {
    let tmp = tempfile::tempdir().unwrap();
    let ai = ais(1).await;
    let im = immich(PHOTOS).await;
    let b = launch(
        exe,
        tmp.path(),
        &ai,
        &im,
        if follow { 3600 } else { 0 },
        follow,
    )
    .await;
    if !follow {
        let url = b.url.clone();
        futures_util::stream::iter(0..1000u32)
            .map(|i| {
                let url = url.clone();
                async move {
                    let r = common::client()
                        .post(format!("{url}/api/media/upload/raw?filename=b{i}.png"))
                        .body(
                            common::png(32, 24, (i % 251) as u8)
                                .into_iter()
                                .chain(i.to_le_bytes())
                                .collect::<Vec<u8>>(),
                        )
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        assert_eq!(b.post("/api/queue/worker/start").await.status(), 200);
    }
    // The backlog runs.
    while ai[0].inner.busy.lock().unwrap().len() < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut answer, mut wait) = (Vec::new(), Vec::new());
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    for i in 0..60 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(seed % T.as_millis() as u64)).await;
        // The oldest photos: last in the background's order.
        let k = PHOTOS - 1 - i;
        let sent = Instant::now();
        let (status, took) = generate(&b.url, &photo(k)).await;
        assert_eq!(status, 200);
        let name = format!("NEW_{k:05}.jpg");
        let started = ai[0]
            .inner
            .busy
            .lock()
            .unwrap()
            .iter()
            .find(|(_, _, n)| *n == name)
            .map(|(s, _, _)| *s)
            .expect("served");
        answer.push(took.as_secs_f64() * 1000.0);
        wait.push(started.saturating_duration_since(sent).as_secs_f64() * 1000.0);
    }
    b.kill();
    answer.sort_by(|a, b| a.partial_cmp(b).unwrap());
    wait.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (answer, wait)
}

/// A photo appears in Immich at a random moment; how long until its
/// depth map is listed (the AI idle otherwise).
async fn appearance(exe: &PathBuf, interval: u64) -> Vec<f64> {
    let tmp = tempfile::tempdir().unwrap();
    let ai = ais(1).await;
    let im = immich(0).await;
    let b = launch(exe, tmp.path(), &ai, &im, interval, true).await;
    let mut out = Vec::new();
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    for i in 0..10 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(seed % (interval * 1000))).await;
        im.add(new_photos(i, 1, chrono::Utc::now()));
        let t0 = Instant::now();
        let id = photo(i);
        loop {
            let map = b.get_json("/api/assets/map").await;
            if map["map"].get(&id).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    b.kill();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

fn bin(var: &str, default: Option<PathBuf>) -> Option<PathBuf> {
    std::env::var(var).ok().map(PathBuf::from).or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = env_or("RUNS", 1);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let cand = bin(
        "CANDIDATE_BIN",
        Some(PathBuf::from(format!("{target}/release/immichvr"))),
    )
    .unwrap();
    let base = bin("BASELINE_BIN", None);
    let mut bins = vec![("candidate", cand.clone())];
    if let Some(b) = &base {
        bins.push(("baseline", b.clone()));
    }
    println!(
        "T = {} ms per image at the AI, Immich previews {IMMICH_MS} ms, medians of {runs} run(s)\n",
        T.as_millis()
    );
    println!("| figure | binary | value |\n|---|---|---|");
    for n in [1, 2] {
        let mut v = Vec::new();
        for _ in 0..runs {
            v.push(follow_backlog(&cand, n).await);
        }
        println!("| AI utilisation, followed library of {PHOTOS} photos, {n} endpoint(s) | candidate | {:.3} |", median(v));
    }
    for n in [1, 2] {
        for (name, exe) in &bins {
            let mut v = Vec::new();
            for _ in 0..runs {
                v.push(sixteen_clients(exe, n).await);
            }
            println!("| AI utilisation, 16 clients generating 200 photos, {n} endpoint(s) | {name} | {:.3} |", median(v));
        }
    }
    let mut cases: Vec<(&str, &PathBuf, bool)> =
        vec![("candidate", &cand, true), ("candidate", &cand, false)];
    if let Some(b) = &base {
        cases.push(("baseline", b, false));
    }
    for (name, exe, follow) in cases {
        let (mut a50, mut a99, mut w50, mut w99) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let (a, w) = app_latency(exe, follow).await;
            a50.push(pct(&a, 0.5));
            a99.push(pct(&a, 0.99));
            w50.push(pct(&w, 0.5));
            w99.push(pct(&w, 0.99));
        }
        let backlog = if follow {
            "followed library"
        } else {
            "1,000 uploads"
        };
        println!(
            "| the app's generate with a backlog of {backlog}: answer p50 / p99; its wait for the AI p50 / p99 | {name} | {:.0} / {:.0} ms; {:.0} / {:.0} ms |",
            median(a50), median(a99), median(w50), median(w99)
        );
    }
    let interval = 5;
    let mut p50 = Vec::new();
    let mut max = Vec::new();
    for _ in 0..runs {
        let v = appearance(&cand, interval).await;
        p50.push(pct(&v, 0.5));
        max.push(v[v.len() - 1]);
    }
    println!(
        "| a photo appearing in Immich to its depth map served, IMMICH_SYNC_SECS={interval}, 10 photos | candidate | p50 {:.0} ms, max {:.0} ms (target {} ms) |",
        median(p50),
        median(max),
        interval * 1000 + T.as_millis() as u64
    );
}
