//! `/api/events` delivers an upload's state changes in order.

mod common;

use common::Api;

use std::time::Duration;

use common::ai_standin::{AiStandin, Mode};
use common::{json, next_event, png, start_with_ai, upload};

#[tokio::test]
async fn upload_events_arrive_in_order() {
    let ai = AiStandin::start(Mode::Delay(Duration::from_millis(100))).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let resp = s.get("/api/events").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let (name, first) = next_event(&mut stream, &mut buf).await.unwrap();
    assert_eq!(name, "stats");
    assert_eq!(first["stats"]["queued"], 0);

    let up = json(upload(&s.url, "e.png", png(10, 10, 1)).await).await;
    let qid = up["queueId"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("completed") {
        let (name, ev) = next_event(&mut stream, &mut buf)
            .await
            .expect("stream ended early");
        if name == "item" && ev["id"] == qid.as_str() {
            assert_eq!(ev["type"], "item");
            assert!(
                ev.get("media_item_id").is_some()
                    && ev.get("attempts").is_some()
                    && ev.get("last_error").is_some()
            );
            seen.push(ev["status"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ["queued", "processing", "completed"]);

    s.post("/api/queue/worker/stop").await;
    loop {
        let (name, ev) = next_event(&mut stream, &mut buf)
            .await
            .expect("worker event");
        if name == "worker" {
            assert_eq!(ev["running"], false);
            break;
        }
    }
    s.stop().await;
}

/// Model changes (download, load, unload, refusals) reach the stream as
/// `model` events, in the order they happened, from the one place that
/// commits and announces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_changes_reach_the_event_stream() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    let resp = s.get("/api/events").await;
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    for path in [
        "/api/settings/models/base/download",
        "/api/settings/models/base/load",
        "/api/settings/models/base/unload",
        "/api/settings/models/large/load",
    ] {
        s.post_json(path, &serde_json::json!({})).await;
    }
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let (name, ev) =
            tokio::time::timeout(Duration::from_secs(10), next_event(&mut stream, &mut buf))
                .await
                .expect("a model event within 10 s")
                .expect("stream ended early");
        if name == "model" {
            assert_eq!(ev["type"], "model");
            seen.push(format!(
                "{} {}",
                ev["status"].as_str().unwrap(),
                ev["modelKey"].as_str().unwrap_or("-")
            ));
        }
    }
    assert_eq!(
        seen,
        [
            "downloading base",
            "downloaded base",
            "loading base",
            "loaded base",
            "unloaded base",
            "error large"
        ],
        "large is not downloaded, so loading it is refused"
    );
    s.stop().await;
}
