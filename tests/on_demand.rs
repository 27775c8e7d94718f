//! The app's own requests never wait behind background work (issues 25.3
//! and 28.3): with 1,000 background jobs queued and the AI busy, a
//! generate waits only for the job already at the AI; with the worker
//! stopped, or outside `BACKGROUND_HOURS`, background work waits and the
//! app's generate is served. Timings are held to the AI stand-in's own
//! fixed service time, not to the speed of this machine.

mod common;

use std::time::{Duration, Instant};

use chrono::Timelike;
use common::{
    ai_standin::{AiStandin, Mode},
    immich_standin::{new_photos, ImmichStandin, KEY},
    png, upload, Api, TestServer,
};
use serde_json::{json, Value};

fn photo(k: usize) -> String {
    format!("00000000-0000-4000-8000-f{:011}", k + 1)
}

async fn queued(s: &TestServer) -> u64 {
    let st = s.get_json("/api/queue/stats").await;
    st["stats"]["queued"].as_u64().unwrap()
}

async fn generate(s: &TestServer, id: &str) -> reqwest::Response {
    s.post_json(
        &format!("/api/assets/{id}/generate"),
        &json!({"type": "depth", "modelKey": "small"}),
    )
    .await
}

/// When the AI began serving `name` (the preview's file name).
fn served_at(ai: &AiStandin, name: &str) -> Option<(usize, Instant)> {
    let busy = ai.inner.busy.lock().unwrap();
    busy.iter()
        .position(|(_, _, n)| n == name)
        .map(|i| (i, busy[i].0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_1000_background_jobs_the_app_waits_only_for_the_job_at_the_ai() {
    // One GPU: one image at a time, each in T.
    let t = Duration::from_millis(400);
    let ai = AiStandin::start(Mode::Serial(t)).await;
    let im = ImmichStandin::start(new_photos(0, 1000, chrono::Utc::now())).await;
    let s = common::follower(&ai, &im, |_| {}).await;
    common::wait_for(60.0, "1,000 background jobs", || async {
        (queued(&s).await >= 990).then_some(())
    })
    .await;
    common::wait_for(30.0, "the AI busy", || async {
        (ai.inner.busy.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    let mut waits = Vec::new();
    // The oldest photos: last in the background's order.
    for k in [999, 998, 997] {
        let sent = Instant::now();
        let r = generate(&s, &photo(k)).await;
        let took = sent.elapsed();
        assert_eq!(r.status(), 200, "{k}");
        assert_eq!(r.headers()["x-asset-cache"], "miss");
        let (at, started) = served_at(&ai, &format!("NEW_{k:05}.jpg")).expect("served");
        // Started by the AI after the request was sent and before it: only
        // the job it was running then (or one handed its slot just before).
        let busy = ai.inner.busy.lock().unwrap().clone();
        let between = busy[..at]
            .iter()
            .filter(|(start, _, _)| *start > sent && *start < started)
            .count();
        assert!(between <= 1, "{between} background jobs went first");
        let waited = started.saturating_duration_since(sent);
        assert!(
            waited <= t + Duration::from_millis(700),
            "waited {waited:?} for the AI, one job takes {t:?}"
        );
        assert!(
            took <= 2 * t + Duration::from_secs(1),
            "answered in {took:?}"
        );
        waits.push(waited);
    }
    eprintln!("the app's generate waited {waits:?} for the AI (one job: {t:?})");
    assert!(queued(&s).await >= 900, "the backlog is still there");
    s.stop().await;
}

/// Stopping the worker pauses background work only: uploads and what
/// following makes wait, the app's generate is served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_stop_pauses_background_work_only() {
    let t = Duration::from_millis(100);
    let ai = AiStandin::start(Mode::Serial(t)).await;
    let im = ImmichStandin::start(new_photos(0, 30, chrono::Utc::now())).await;
    let s = common::follower(&ai, &im, |_| {}).await;
    common::wait_for(30.0, "background jobs", || async {
        (queued(&s).await >= 20).then_some(())
    })
    .await;
    let r = s.post("/api/queue/worker/stop").await;
    assert_eq!(r.status(), 200);
    let status = s.get_json("/api/queue/worker/status").await;
    assert_eq!(status["running"], false);
    assert!(
        status["backgroundPausedReason"]
            .as_str()
            .unwrap()
            .contains("stopped"),
        "{status}"
    );
    assert!(
        status["inFlight"].as_array().unwrap().is_empty(),
        "{status}"
    );
    let before = ai.requests();
    let sent = Instant::now();
    let r = generate(&s, &photo(29)).await;
    assert_eq!(r.status(), 200);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    let r = upload(&s.url, "up.png", png(20, 20, 1)).await;
    assert_eq!(r.status(), 201);
    let q = common::json(r).await["queueId"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ai.requests(), before + 1, "only the app's request");
    assert_eq!(common::queue_item(&s.url, &q).await["status"], "queued");
    assert_eq!(s.post("/api/queue/worker/start").await.status(), 200);
    common::wait_status(&s.url, &q, "completed", 30.0).await;
    s.stop().await;
}

/// Outside `BACKGROUND_HOURS` background work waits, and says until when;
/// the app's generate is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_background_hours_only_the_apps_requests_run() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(new_photos(0, 5, chrono::Utc::now())).await;
    let h = chrono::Local::now().hour();
    let hours = format!("{}-{}", (h + 2) % 24, (h + 3) % 24);
    let s = common::follower(&ai, &im, |c| {
        c.background.background_hours = Some(hours.parse().unwrap())
    })
    .await;
    common::wait_for(30.0, "background jobs", || async {
        (queued(&s).await == 5).then_some(())
    })
    .await;
    let status = s.get_json("/api/queue/worker/status").await;
    assert_eq!(status["backgroundHours"], hours.as_str());
    let why = status["backgroundPausedReason"].as_str().unwrap();
    assert!(why.contains("BACKGROUND_HOURS"), "{why}");
    let lib = s.get_json("/api/library").await;
    assert_eq!(lib["backgroundPausedReason"], why);
    let r = generate(&s, &photo(3)).await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ai.requests(), 1);
    assert_eq!(queued(&s).await, 4);
    s.stop().await;
}

/// A slow endpoint gets less work and holds nobody back: with one fast
/// and one slow AI, the fast one serves most of the backlog, and the
/// worker keeps both busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_gets_less_work() {
    let fast = AiStandin::start(Mode::Serial(Duration::from_millis(20))).await;
    let slow = AiStandin::start(Mode::Serial(Duration::from_millis(400))).await;
    let im = ImmichStandin::start(new_photos(0, 60, chrono::Utc::now())).await;
    let url = im.url();
    let s = common::start_with_ai(&format!("{},{}", fast.url(), slow.url()), move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = Some(KEY.parse().unwrap());
        c.background.immich_sync_secs = 3600;
    })
    .await;
    let lib: Value = common::wait_for(60.0, "60 depth maps", || async {
        let v = s.get_json("/api/library").await;
        let l = v["libraries"].get(0).cloned()?;
        (l["ready"] == 60).then_some(l)
    })
    .await;
    assert_eq!(lib["left"], 0);
    let (f, w) = (fast.requests(), slow.requests());
    assert_eq!(f + w, 60);
    assert!(w >= 1, "the slow one was used too");
    assert!(f >= 4 * w, "fast {f}, slow {w}");
    assert!(fast.max_in_flight() <= 1 && slow.max_in_flight() <= 1);
    s.stop().await;
}
