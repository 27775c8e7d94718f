//! The worker with the AI stand-in: results, failures, retries, outages.

mod common;

use common::Api;

use std::time::{Duration, Instant};

use common::ai_standin::{AiStandin, Mode};
use common::{jpeg, json, mp4, png, queue_item, start_with_ai, upload, wait_status};

async fn up(url: &str, name: &str, bytes: Vec<u8>) -> (String, String) {
    let r = json(upload(url, name, bytes).await).await;
    (
        r["mediaItemId"].as_str().unwrap().into(),
        r["queueId"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn photo_becomes_a_depth_map_of_the_same_size() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let (media, q) = up(&s.url, "cat.jpg", jpeg(120, 80, 1)).await;
    let row = wait_status(&s.url, &q, "completed", 10.0).await;
    assert_eq!(row["attempts"], 1);
    assert!(row["completed_at"].is_string());
    let detail = queue_item(&s.url, &q).await;
    assert!(detail["processing_duration_seconds"].as_f64().unwrap() >= 0.0);

    let d = s.get(&format!("/api/media/{media}/depth")).await;
    assert_eq!(d.status(), 200);
    assert_eq!(d.headers()["content-type"], "image/png");
    let bytes = d.bytes().await.unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (120, 80));
    // The stand-in saw the original file name in field `image`.
    assert_eq!(
        ai.inner.seen.lock().unwrap().file_names,
        vec!["cat.jpg".to_string()]
    );

    let st = s.get_json("/api/media/status").await;
    let m = &st["media"][0];
    assert_eq!(m["processing_status"], "completed");
    assert!(m["depth_map_id"].is_string() && m["depth_map_generated_at"].is_string());
    assert!(m["depth_map_path"].as_str().unwrap().contains("depth_maps"));
    let w = s.get_json("/api/queue/worker/status").await;
    assert_eq!(w["processed"], 1);
    assert_eq!(w["running"], true);
    s.stop().await;
}

#[tokio::test]
async fn video_becomes_a_zip() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |c| {
        c.video_fps = 2;
        c.video_max_frames = 5;
    })
    .await;
    let (media, q) = up(&s.url, "clip.mp4", mp4(20_000, 3)).await;
    wait_status(&s.url, &q, "completed", 10.0).await;
    let d = s.get(&format!("/api/media/{media}/depth")).await;
    assert_eq!(d.headers()["content-type"], "application/zip");
    let bytes = d.bytes().await.unwrap();
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    assert!(!zip.is_empty());
    {
        let seen = ai.inner.seen.lock().unwrap();
        assert_eq!(seen.paths, vec!["/api/video/depth".to_string()]);
        assert_eq!(seen.queries, vec!["fps=2&max_frames=5".to_string()]);
    }
    s.stop().await;
}

#[tokio::test]
async fn one_failure_then_success_uses_two_attempts() {
    let ai = AiStandin::start(Mode::FailFirst(1, 500)).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let (_, q) = up(&s.url, "a.png", png(30, 20, 1)).await;
    let row = wait_status(&s.url, &q, "completed", 10.0).await;
    assert_eq!(row["attempts"], 2);
    assert_eq!(queue_item(&s.url, &q).await["error_count"], 1);
    s.stop().await;
}

#[tokio::test]
async fn always_failing_ends_failed_with_the_message() {
    let ai = AiStandin::start(Mode::Status(500)).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let (_, q) = up(&s.url, "a.png", png(30, 20, 2)).await;
    let row = wait_status(&s.url, &q, "failed", 10.0).await;
    assert_eq!(row["attempts"], 3);
    let err = row["last_error"].as_str().unwrap();
    assert!(
        err.contains("500") && err.contains("stand-in told to answer 500"),
        "{err}"
    );
    assert_eq!(ai.requests(), 3);
    // Retry all failed brings it back; with the AI healthy it completes.
    ai.set_mode(Mode::Ok);
    let r = json(s.post("/api/queue/retry-failed").await).await;
    assert_eq!(r["count"], 1);
    wait_status(&s.url, &q, "completed", 10.0).await;
    s.stop().await;
}

#[tokio::test]
async fn outage_does_not_burn_attempts_and_recovery_is_automatic() {
    let ai = AiStandin::start(Mode::Ok).await;
    ai.down().await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let (_, q1) = up(&s.url, "a.png", png(10, 10, 1)).await;
    let (_, q2) = up(&s.url, "b.png", png(10, 10, 2)).await;
    // Wait until the worker has tried and marked the endpoint down.
    common::wait_for(5.0, "endpoint marked down", || async {
        let w = s.get_json("/api/queue/worker/status").await;
        (w["aiReachable"] == false).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for q in [&q1, &q2] {
        let row = queue_item(&s.url, q).await;
        assert_eq!(row["status"], "queued");
        assert_eq!(
            row["attempts"], 0,
            "an attempt was burned while the AI was down"
        );
    }
    let w = s.get_json("/api/queue/worker/status").await;
    assert!(w["endpoints"][0]["lastError"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    ai.up().await;
    // No request to our API is needed: the probe notices and work resumes.
    for q in [&q1, &q2] {
        let row = wait_status(&s.url, q, "completed", 20.0).await;
        assert_eq!(row["attempts"], 1);
    }
    s.stop().await;
}

#[tokio::test]
async fn model_loading_503_waits_without_attempts() {
    let ai = AiStandin::start(Mode::NotLoaded).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let (_, q) = up(&s.url, "a.png", png(10, 10, 3)).await;
    common::wait_for(5.0, "a 503 seen", || async {
        (ai.requests() >= 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let row = queue_item(&s.url, &q).await;
    assert_eq!(
        (row["status"].as_str(), row["attempts"].as_u64()),
        (Some("queued"), Some(0))
    );
    ai.set_mode(Mode::Ok);
    let row = wait_status(&s.url, &q, "completed", 20.0).await;
    assert_eq!(row["attempts"], 1);
    s.stop().await;
}

#[tokio::test]
async fn timeout_garbage_and_oversize_fail_with_clear_errors() {
    for (mode, needle) in [
        (Mode::Hang, "did not answer within 1 s"),
        (Mode::Garbage, "expected a PNG"),
        (Mode::Oversize(300_000), "larger than 100000 bytes"),
    ] {
        let ai = AiStandin::start(mode).await;
        let s = start_with_ai(&ai.url(), |c| {
            c.ai_timeout_secs = 1;
            c.ai_max_response_bytes = 100_000;
        })
        .await;
        let (_, q) = up(&s.url, "a.png", png(10, 10, 4)).await;
        let row = wait_status(&s.url, &q, "failed", 20.0).await;
        let err = row["last_error"].as_str().unwrap();
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(row["attempts"], 3);
        // Nothing half-written stays in the depth directory.
        let left: Vec<_> = std::fs::read_dir(s.data_dir.join("depth_maps"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "files left: {left:?}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_two_slots_each() {
    // Long enough that scheduling noise on a loaded machine stays small next to it.
    let delay = Duration::from_millis(500);
    let a = AiStandin::start(Mode::Delay(delay)).await;
    let b = AiStandin::start(Mode::Delay(delay)).await;
    let s = start_with_ai(&format!("{},{}", a.url(), b.url()), |c| {
        c.ai_concurrency = 2
    })
    .await;
    s.post("/api/queue/worker/stop").await;
    let mut qs = Vec::new();
    for i in 0..20u8 {
        qs.push(up(&s.url, &format!("{i}.png"), png(8, 8, i)).await.1);
    }
    let t0 = Instant::now();
    s.post("/api/queue/worker/start").await;
    for q in &qs {
        wait_status(&s.url, q, "completed", 30.0).await;
    }
    let took = t0.elapsed();
    assert!(
        a.max_in_flight() <= 2 && b.max_in_flight() <= 2,
        "{} {}",
        a.max_in_flight(),
        b.max_in_flight()
    );
    assert!(a.requests() > 0 && b.requests() > 0, "both endpoints used");
    assert_eq!(a.requests() + b.requests(), 20);
    let ideal = delay * 20 / 4;
    assert!(took < ideal * 2, "took {took:?}, ideal {ideal:?}");
    s.stop().await;
}

#[tokio::test]
async fn worker_start_stop_conflicts() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let r = s.post("/api/queue/worker/start").await;
    assert_eq!(r.status(), 409);
    let r = s.post("/api/queue/worker/stop").await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["message"], "Processing worker stopped");
    assert_eq!(s.post("/api/queue/worker/stop").await.status(), 409);
    let (_, q) = up(&s.url, "a.png", png(10, 10, 9)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(queue_item(&s.url, &q).await["status"], "queued");
    let r = s.post("/api/queue/worker/start").await;
    assert_eq!(json(r).await["message"], "Processing worker started");
    wait_status(&s.url, &q, "completed", 10.0).await;
    s.stop().await;
}

#[tokio::test]
async fn ai_proxy_routes() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let h = s.get_json("/api/ai/health").await;
    assert_eq!(h["service"], "ai");
    let i = s.get_json("/api/ai/info").await;
    assert_eq!(i["message"], "ImmichVR AI Service");
    ai.down().await;
    let r = s.get("/api/ai/health").await;
    assert_eq!(r.status(), 503);
    assert_eq!(json(r).await["error"], "AI service unhealthy");
    assert_eq!(s.get("/api/ai/info").await.status(), 503);
    s.stop().await;
}

/// The current upstream AI service has no video routes: Flask answers its
/// HTML 404. That cannot change on a retry, so the item fails on its first
/// attempt, with a plain sentence instead of the page.
#[tokio::test]
async fn an_ai_service_without_video_routes_fails_videos_at_once_in_plain_words() {
    let ai = AiStandin::start(Mode::NoVideo).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let (_, q) = up(&s.url, "clip.mp4", mp4(20_000, 9)).await;
    let row = wait_status(&s.url, &q, "failed", 10.0).await;
    assert_eq!(
        row["attempts"],
        1,
        "{row} {:?}",
        ai.inner.seen.lock().unwrap().paths
    );
    let err = row["last_error"].as_str().unwrap();
    assert_eq!(
        err,
        format!(
            "the AI service at {} has no video endpoint (404 at /api/video/depth)",
            ai.url()
        )
    );
    assert!(!err.contains('<'), "{err}");
    // Photos still work on the same service, and nothing retried the video.
    let (_, p) = up(&s.url, "a.png", png(30, 20, 2)).await;
    wait_status(&s.url, &p, "completed", 10.0).await;
    let seen = ai.inner.seen.lock().unwrap().paths.clone();
    assert_eq!(
        seen.iter()
            .filter(|p| p.as_str() == "/api/video/depth")
            .count(),
        1,
        "{seen:?}"
    );
    s.stop().await;
}

/// An AI service whose `/health` is not the documented shape is not
/// passed on as if it were: 503 with a plain reason.
#[tokio::test]
async fn an_ai_health_answer_of_another_shape_is_refused() {
    use poem::{get, handler, listener::TcpListener as PoemListener, Route, Server};
    #[handler]
    fn odd() -> poem::web::Json<serde_json::Value> {
        poem::web::Json(serde_json::json!({"up": true}))
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let app = Route::new().at("/health", get(odd)).at("/", get(odd));
    tokio::spawn(Server::new(PoemListener::bind(addr.to_string())).run(app));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = start_with_ai(&format!("http://{addr}"), |c| c.auto_start_worker = false).await;
    let r = s.get("/api/ai/health").await;
    assert_eq!(r.status(), 503);
    let body = json(r).await;
    assert_eq!(body["code"], "ai-unhealthy", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unexpected shape"),
        "{body}"
    );
    // `/` has no required field: any object passes, as it came.
    let i = s.get_json("/api/ai/info").await;
    assert_eq!(i["up"], true);
    s.stop().await;
}

/// A model that never loads is named in the log, with the service's URL and
/// what it reports, after the hint period and then at most once a period
/// (1 s here; a minute by default), while items wait without attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_stays_unloaded_gets_a_hint_in_the_log_at_most_once_a_period() {
    let ai = AiStandin::start(Mode::NotLoaded).await;
    let data = tempfile::tempdir().unwrap();
    let b = common::bin::Launch::new(data.path())
        .env("AI_SERVICE_URL", ai.url())
        .env("AI_NOT_READY_HINT_SECS", 1)
        .start()
        .await;
    let (_, q) = up(&b.url, "a.png", png(20, 20, 1)).await;
    let hint = "has not loaded its model";
    b.wait_log(hint, 15).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let log = b.log_text();
    let hints: Vec<&str> = log.lines().filter(|l| l.contains(hint)).collect();
    let periods = started.elapsed().as_secs_f64() + 1.0;
    assert!(
        hints.len() >= 2 && hints.len() as f64 <= periods + 1.0,
        "{} hints in about {periods:.1} periods:\n{log}",
        hints.len()
    );
    assert!(
        hints[0].contains(&ai.url()) && hints[0].contains("not_loaded"),
        "{}",
        hints[0]
    );
    assert_eq!(queue_item(&b.url, &q).await["attempts"], 0);
    ai.set_mode(Mode::Ok);
    wait_status(&b.url, &q, "completed", 20.0).await;
    b.terminate().await;
}
