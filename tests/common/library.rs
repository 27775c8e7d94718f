//! A small library with every state an item can be in: photos and a video
//! completed (with depth maps; one photo came through the raw-body upload), a photo failed for good, one cancelled and
//! one still queued. Built through the API of a running binary whose worker
//! talks to the AI stand-in.

use serde_json::Value;

use super::{
    ai_standin::{AiStandin, Mode},
    client, jpeg, json, mp4, png, upload, wait_status,
};

/// Ids of what [`build`] made.
pub struct Library {
    pub completed: Vec<String>,
    pub failed: String,
    pub cancelled: String,
    pub queued: String,
}

async fn up(url: &str, name: &str, bytes: Vec<u8>) -> (String, String) {
    let r = upload(url, name, bytes).await;
    assert_eq!(r.status(), 201, "upload {name}");
    let b: Value = json(r).await;
    (
        b["mediaItemId"].as_str().unwrap().to_string(),
        b["queueId"].as_str().unwrap().to_string(),
    )
}

async fn post(url: &str) {
    let r = client().post(url).send().await.unwrap();
    assert!(r.status().is_success(), "POST {url}: {}", r.status());
}

/// Through the raw-body door (`POST /api/media/upload/raw`).
async fn up_raw(url: &str, name: &str, bytes: Vec<u8>) -> (String, String) {
    let r = client()
        .post(format!("{url}/api/media/upload/raw?filename={name}"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "raw upload {name}");
    let b: Value = json(r).await;
    (
        b["mediaItemId"].as_str().unwrap().to_string(),
        b["queueId"].as_str().unwrap().to_string(),
    )
}

/// Needs the worker running against `ai`; leaves it stopped.
pub async fn build(url: &str, ai: &AiStandin, seed: u8) -> Library {
    ai.set_mode(Mode::Ok);
    let mut completed = Vec::new();
    let mut queues = Vec::new();
    for (name, bytes) in [
        ("beach.png", png(64, 48, seed)),
        ("forest.jpg", jpeg(80, 60, seed)),
        ("clip.mp4", mp4(4096, seed)),
        ("city.png", png(40, 30, seed.wrapping_add(1))),
    ] {
        let (m, q) = up(url, name, bytes).await;
        completed.push(m);
        queues.push(q);
    }
    let (m, q) = up_raw(url, "raw-door.png", png(36, 28, seed.wrapping_add(5))).await;
    completed.push(m);
    queues.push(q);
    for q in &queues {
        wait_status(url, q, "completed", 30.0).await;
    }
    ai.set_mode(Mode::Status(400));
    let (failed, fq) = up(url, "broken.png", png(20, 20, seed.wrapping_add(2))).await;
    wait_status(url, &fq, "failed", 30.0).await;
    ai.set_mode(Mode::Ok);
    post(&format!("{url}/api/queue/worker/stop")).await;
    let (cancelled, cq) = up(url, "later.png", png(24, 24, seed.wrapping_add(3))).await;
    post(&format!("{url}/api/queue/items/{cq}/cancel")).await;
    let (queued, _) = up(url, "waiting.jpg", jpeg(30, 20, seed.wrapping_add(4))).await;
    Library {
        completed,
        failed,
        cancelled,
        queued,
    }
}
