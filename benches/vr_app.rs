//! The VR app's paths (not a test): a cached generate, the timeline proxy,
//! the asset map with 10,000 processed photos, and KSPLAT conversion of a
//! 1 M-gaussian PLY. In-process server; AI and Immich stand-ins.
//!
//! Prints medians of `RUNS` (3) runs. Run: `cargo bench --bench vr_app`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::ai_standin::{AiStandin, Mode};
use common::immich_standin::{library, ImmichStandin, KEY};
use common::stats::{env_or, median, pct};
use common::{client, TestServer};
use futures_util::StreamExt;
use serde_json::json;

const PHOTO: &str = "00000000-0000-4000-8000-000000000001";

/// p50 and p99 in ms of `n` sequential GETs of `url` (answer read whole).
async fn latency(url: &str, headers: &[(&str, &str)], n: usize) -> (f64, f64) {
    let c = client();
    let mut ms = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let mut req = c.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let t = Instant::now();
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await.unwrap();
        if i >= n / 10 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (pct(&ms, 0.5), pct(&ms, 0.99))
}

async fn server(ai: &AiStandin, im: &ImmichStandin) -> TestServer {
    let url = im.url();
    let s = common::start_with_ai(&ai.url(), move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = Some(KEY.parse().unwrap());
    })
    .await;
    let r = client()
        .post(s.at("/api/settings/models/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s
}

async fn generate(s: &TestServer, id: &str) -> reqwest::Response {
    client()
        .post(s.at(&format!("/api/assets/{id}/generate")))
        .json(&json!({"type": "depth", "modelKey": "small"}))
        .send()
        .await
        .unwrap()
}

async fn cached_hit(runs: usize) {
    let ai = AiStandin::start(Mode::Ok).await;
    ai.inner
        .noise_side
        .store(1024, std::sync::atomic::Ordering::SeqCst);
    let im = ImmichStandin::start(library(1)).await;
    let s = server(&ai, &im).await;
    let first = generate(&s, PHOTO).await;
    assert_eq!(first.headers()["x-asset-cache"], "miss");
    let size = first.bytes().await.unwrap().len();
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut ms = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            let r = generate(&s, PHOTO).await;
            assert_eq!(r.headers()["x-asset-cache"], "hit");
            assert_eq!(r.bytes().await.unwrap().len(), size);
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        p50.push(pct(&ms, 0.5));
        p99.push(pct(&ms, 0.99));
    }
    println!(
        "| cached generate (hit), {:.2} MiB PNG, 500 requests | p50 {:.3} ms, p99 {:.3} ms |",
        size as f64 / 1048576.0,
        median(p50),
        median(p99)
    );
    s.stop().await;
}

async fn timeline_overhead(runs: usize) {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(300)).await;
    let s = server(&ai, &im).await;
    let key = [("x-api-key", KEY)];
    let pairs = [
        (
            "buckets",
            format!("{}/api/timeline/buckets?visibility=timeline", im.url()),
            s.at("/api/immich/timeline"),
        ),
        (
            "bucket (100 assets)",
            format!(
                "{}/api/timeline/bucket?timeBucket=2025-06-01&visibility=timeline",
                im.url()
            ),
            s.at("/api/immich/timeline/2025-06-01"),
        ),
    ];
    for (name, direct, ours) in pairs {
        let (mut d50, mut d99, mut o50, mut o99) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let (a, b) = latency(&direct, &key, 1000).await;
            let (c, d) = latency(&ours, &[], 1000).await;
            d50.push(a);
            d99.push(b);
            o50.push(c);
            o99.push(d);
        }
        let (d50, d99, o50, o99) = (median(d50), median(d99), median(o50), median(o99));
        println!(
            "| {name}: Immich stand-in direct / through us | p50 {d50:.3} / {o50:.3} ms, p99 {d99:.3} / {o99:.3} ms; added p99 {:.3} ms |",
            o99 - d99
        );
    }
    s.stop().await;
}

async fn map_of(photos: usize, runs: usize) {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(library(photos)).await;
    let s = server(&ai, &im).await;
    let t = Instant::now();
    let ids: Vec<String> = (0..photos)
        .map(|i| format!("00000000-0000-4000-8000-{:012}", i + 1))
        .collect();
    let made = futures_util::stream::iter(ids.iter())
        .map(|id| {
            let s = &s;
            async move { generate(s, id).await.status().as_u16() }
        })
        .buffer_unordered(16)
        .filter(|st| futures_util::future::ready(*st == 200))
        .count()
        .await;
    assert_eq!(made, photos);
    let fill = t.elapsed();
    let map = common::get(s.at("/api/assets/map"))
        .await
        .bytes()
        .await
        .unwrap();
    let count = serde_json::from_slice::<serde_json::Value>(&map).unwrap()["count"].clone();
    assert_eq!(count, photos);
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (a, b) = latency(&s.at("/api/assets/map"), &[], 200).await;
        p50.push(a);
        p99.push(b);
    }
    println!(
        "| GET /api/assets/map, {photos} photos with a depth asset ({} KiB answer) | p50 {:.3} ms, p99 {:.3} ms (made through generate in {:.1} s: {:.0}/s) |",
        map.len() / 1024,
        median(p50),
        median(p99),
        fill.as_secs_f64(),
        photos as f64 / fill.as_secs_f64()
    );
    s.stop().await;
}

fn ksplat(n: usize, runs: usize) {
    let gaussians = common::ksplat::synthetic_gaussians(n, 7);
    let ply = common::ksplat::ml_sharp_ply(&gaussians);
    let opts = immichvr::assets::ksplat::Options::default();
    let mut ms = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = immichvr::assets::ksplat::convert(&ply, &opts).unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        size = out.len();
    }
    println!(
        "| KSPLAT from a {n}-gaussian PLY ({:.1} MiB) | {:.0} ms (median of {runs}); {:.1} MiB, {:.2} of the PLY |",
        ply.len() as f64 / 1048576.0,
        median(ms),
        size as f64 / 1048576.0,
        size as f64 / ply.len() as f64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = env_or("RUNS", 3);
    let photos: usize = env_or("MAP_PHOTOS", 10_000);
    println!("| figure | value |\n|---|---|");
    cached_hit(runs).await;
    timeline_overhead(runs).await;
    map_of(photos, runs).await;
    tokio::task::spawn_blocking(move || ksplat(1_000_000, runs))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
}
