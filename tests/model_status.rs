//! What the catalogue says of a model is what the AI service said in this
//! run, and nothing is stuck: the real binary started before its AI (as
//! after a reboot) asks the AI before refusing a generate and answers 503
//! while no AI answers; `downloading` lasts as long as the download in
//! this process, whatever the interleaving of 16 asks, a failing AI, a
//! SIGTERM or a kill -9 in the middle.

mod common;

use std::time::{Duration, Instant};

use common::ai_standin::{AiStandin, Mode};
use common::bin::{Binary, Launch};
use common::immich_standin::{library, ImmichStandin, KEY};
use common::{client, free_port, json, Api};
use serde_json::{json, Value};

const PHOTO: &str = "00000000-0000-4000-8000-000000000001";

/// The binary on `data`, its AI at `ai` (up or not), Immich at `im`, and
/// no periodic sync within a test's time: what fixes a status must be the
/// rule under test, not the timer.
fn launch(data: &std::path::Path, ai: &str, im: &ImmichStandin) -> Launch {
    Launch::new(data)
        .env("AI_SERVICE_URL", ai)
        .env("IMMICH_URL", im.url())
        .env("IMMICH_API_KEY", KEY)
        .env("MODEL_SYNC_SECS", "3600")
}

/// The binary on a fresh data dir with its AI's address reserved but
/// nothing listening there yet, as at boot; that address.
async fn before_its_ai(im: &ImmichStandin) -> (Binary, String, tempfile::TempDir) {
    let ai_addr = format!("127.0.0.1:{}", free_port());
    let tmp = tempfile::tempdir().unwrap();
    let b = launch(&tmp.path().join("data"), &format!("http://{ai_addr}"), im)
        .start()
        .await;
    (b, ai_addr, tmp)
}

async fn generate(b: &Binary, model: &str) -> reqwest::Response {
    b.post_json(
        &format!("/api/assets/{PHOTO}/generate"),
        &json!({"type": "depth", "modelKey": model}),
    )
    .await
}

async fn status(b: &Binary, key: &str) -> String {
    let list = b.get_json("/api/settings/models").await;
    list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == key)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// An error answer: its status, code, message, and that the spec declares it.
async fn refused(r: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(r.status(), status, "{}", r.url());
    assert!(common::spec_declares(&r, code).await, "{code} undeclared");
    let b = json(r).await;
    assert_eq!(b["code"], code, "{b}");
    b["message"].as_str().unwrap().to_string()
}

/// 16 asks at once; their statuses and bodies (0 and null for an ask the
/// binary never answered: a test may stop it meanwhile).
async fn sixteen_downloads(url: &str, key: &str) -> Vec<(u16, Value)> {
    let asks: Vec<_> = (0..16)
        .map(|_| {
            let u = format!("{url}/api/settings/models/{key}/download");
            tokio::spawn(async move {
                match client().post(u).send().await {
                    Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
                    Err(_) => (0, Value::Null),
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for a in asks {
        out.push(a.await.unwrap());
    }
    out
}

/// The reboot: our binary is up in a moment, the AI service a while
/// later. Until it answers, a generate is a 503 that says so (not "download
/// it"); the first generate once it is up succeeds, with no sync timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_generate_after_the_ai_comes_up_succeeds() {
    let im = ImmichStandin::start(library(1)).await;
    let (b, ai_addr, _tmp) = before_its_ai(&im).await;

    let r = generate(&b, "small").await;
    let retry = r.headers().get("retry-after").cloned();
    let message = refused(r, 503, "ai-unreachable").await;
    assert!(retry.is_some(), "a 503 says when to ask again");
    assert!(
        message.contains("AI service") && !message.contains("download it"),
        "{message}"
    );
    // The settings panel's load follows the same rule.
    let load = b.post("/api/settings/models/small/load").await;
    refused(load, 503, "ai-unreachable").await;
    assert_eq!(status(&b, "small").await, "not_downloaded");

    let ai = AiStandin::start_on(&ai_addr, Mode::Ok).await;
    let r = generate(&b, "small").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(status(&b, "small").await, "downloaded");
    // A model the AI does not have is refused, on its word.
    let r = generate(&b, "large").await;
    let message = refused(r, 409, "model-not-downloaded").await;
    assert!(message.contains("not_downloaded"), "{message}");
    assert!(ai.requests() >= 1);
    b.terminate().await;
}

/// Without any request, the catalogue catches up soon after the AI comes
/// up (a failed reading is retried from 1 s, doubling), though the sync
/// period is an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_catches_up_by_itself_when_the_ai_comes_up() {
    let im = ImmichStandin::start(library(1)).await;
    let (b, ai_addr, _tmp) = before_its_ai(&im).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status(&b, "small").await, "not_downloaded");
    let _ai = AiStandin::start_on(&ai_addr, Mode::Ok).await;
    let up = Instant::now();
    while status(&b, "small").await != "downloaded" {
        assert!(
            up.elapsed() < Duration::from_secs(8),
            "the catalogue did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.terminate().await;
}

/// The worker finding the AI back (its endpoint probe) makes the catalogue
/// read the AI's list at once: a model the AI got meanwhile is listed,
/// though the last reading succeeded and the next is an hour away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_endpoint_coming_back_resyncs_the_catalogue() {
    let im = ImmichStandin::start(library(1)).await;
    let ai = AiStandin::start(Mode::Ok).await;
    let tmp = tempfile::tempdir().unwrap();
    let b = launch(&tmp.path().join("data"), &ai.url(), &im)
        .env("GENERATE_WAIT_SECS", "1")
        .start()
        .await;
    let synced = b.post("/api/settings/models/sync").await;
    assert_eq!(synced.status(), 200);
    assert_eq!(status(&b, "small").await, "downloaded");
    assert_eq!(status(&b, "base").await, "not_downloaded");

    ai.down().await;
    // A job for the AI, so the worker finds it down and probes it.
    let r = generate(&b, "small").await;
    refused(r, 504, "still-generating").await;
    ai.inner
        .models
        .lock()
        .unwrap()
        .downloaded
        .push("base".into());
    ai.up().await;
    let up = Instant::now();
    while status(&b, "base").await != "downloaded" {
        assert!(
            up.elapsed() < Duration::from_secs(20),
            "no resync when the endpoint came back; log:\n{}",
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.terminate().await;
}

/// 16 downloads at once with the AI down: each a 503, and the model is
/// never left `downloading`, before or after a SIGTERM or a kill -9;
/// generate says the AI is down (503), not "downloading" (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_downloads_with_the_ai_down_leave_nothing_stuck() {
    let im = ImmichStandin::start(library(1)).await;
    let ai_addr = format!("127.0.0.1:{}", free_port());
    let ai_url = format!("http://{ai_addr}");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut b = launch(&data, &ai_url, &im).start().await;
    for stop in ["sigterm", "kill -9"] {
        for (status, body) in sixteen_downloads(&b.url, "large").await {
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["code"], "ai-unreachable");
        }
        assert_eq!(status(&b, "large").await, "not_downloaded");
        refused(generate(&b, "large").await, 503, "ai-unreachable").await;
        // And once more, after the restart.
        match stop {
            "sigterm" => {
                b.terminate().await;
            }
            _ => {
                b.kill();
            }
        }
        b = launch(&data, &ai_url, &im).start().await;
        assert_eq!(status(&b, "large").await, "not_downloaded", "after {stop}");
        refused(generate(&b, "large").await, 503, "ai-unreachable").await;
    }
    // The AI comes up without the model: a plain "not downloaded", and a
    // download then works.
    let ai = AiStandin::start_on(&ai_addr, Mode::Ok).await;
    let message = refused(generate(&b, "large").await, 409, "model-not-downloaded").await;
    assert!(message.contains("not_downloaded"), "{message}");
    let d = b.post("/api/settings/models/large/download").await;
    assert_eq!(d.status(), 200);
    assert_eq!(json(d).await["model"]["status"], "downloaded");
    assert_eq!(generate(&b, "large").await.status(), 200);
    assert!(ai.requests() >= 1);
    b.terminate().await;
}

/// An AI whose download fails: 16 asks make one download (they join
/// it), each gets its refusal, and the status is as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_download_is_one_download_and_changes_nothing() {
    let im = ImmichStandin::start(library(1)).await;
    let ai = AiStandin::start(Mode::Ok).await;
    {
        let mut m = ai.inner.models.lock().unwrap();
        m.refuse_downloads = true;
        m.download_delay = Duration::from_millis(800);
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = launch(&tmp.path().join("data"), &ai.url(), &im)
        .start()
        .await;
    let answers = sixteen_downloads(&b.url, "large").await;
    for (status, body) in &answers {
        assert_eq!(*status, 502, "{body}");
        assert_eq!(body["code"], "ai-refused");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Hugging Face is unreachable"),
            "{body}"
        );
    }
    let downloads = ai
        .inner
        .models
        .lock()
        .unwrap()
        .actions
        .iter()
        .filter(|a| *a == "download large")
        .count();
    assert_eq!(downloads, 1, "the asks joined one download");
    assert_eq!(status(&b, "large").await, "not_downloaded");
    let message = refused(generate(&b, "large").await, 409, "model-not-downloaded").await;
    assert!(message.contains("not_downloaded"), "{message}");
    b.terminate().await;
}

/// A reading of the AI's list that began before a download ended does not
/// undo it: the model stays `downloaded` (the list is older than the fact).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_older_than_a_download_does_not_undo_it() {
    let im = ImmichStandin::start(library(1)).await;
    let ai = AiStandin::start(Mode::Ok).await;
    let tmp = tempfile::tempdir().unwrap();
    let b = launch(&tmp.path().join("data"), &ai.url(), &im)
        .start()
        .await;
    assert_eq!(b.post("/api/settings/models/sync").await.status(), 200);
    ai.inner.models.lock().unwrap().list_delay = Duration::from_millis(1500);
    let url = b.at("/api/settings/models/sync");
    let slow_sync = tokio::spawn(async move { client().post(url).send().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = b.post("/api/settings/models/large/download").await;
    assert_eq!(d.status(), 200);
    assert_eq!(status(&b, "large").await, "downloaded");
    assert_eq!(slow_sync.await.unwrap().status(), 200);
    assert_eq!(
        status(&b, "large").await,
        "downloaded",
        "the older list won"
    );
    ai.inner.models.lock().unwrap().list_delay = Duration::ZERO;
    assert_eq!(generate(&b, "large").await.status(), 200);
    b.terminate().await;
}

/// A download cut by a SIGTERM or a kill -9: `downloading` while it runs,
/// and after the restart whatever the AI says, never `downloading`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_by_a_restart_is_not_downloading_after_it() {
    let im = ImmichStandin::start(library(1)).await;
    let ai = AiStandin::start(Mode::Ok).await;
    ai.inner.models.lock().unwrap().download_delay = Duration::from_secs(120);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut b = launch(&data, &ai.url(), &im).start().await;
    for stop in ["sigterm", "kill -9"] {
        let url = b.url.clone();
        let asks = tokio::spawn(async move { sixteen_downloads(&url, "large").await });
        let start = Instant::now();
        while status(&b, "large").await != "downloading" {
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A generate meanwhile says what is going on.
        let message = refused(generate(&b, "large").await, 409, "model-not-downloaded").await;
        assert!(message.contains("being downloaded"), "{message}");
        match stop {
            "sigterm" => {
                b.terminate().await;
            }
            _ => {
                b.kill();
            }
        }
        asks.abort();
        b = launch(&data, &ai.url(), &im).start().await;
        assert_eq!(status(&b, "large").await, "not_downloaded", "after {stop}");
        let synced = b.post("/api/settings/models/sync").await;
        assert_eq!(synced.status(), 200);
        assert_eq!(status(&b, "large").await, "not_downloaded", "after {stop}");
        let message = refused(generate(&b, "large").await, 409, "model-not-downloaded").await;
        assert!(!message.contains("downloading"), "{message}");
    }
    b.terminate().await;
}

/// A data dir from before: a model stored `downloading` (the status was
/// stored then) and `sharp` as the default depth model (accepted then).
/// The first reads as not downloaded and the next sync corrects it; the
/// second reads as the default depth model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_downloading_and_a_splat_default_from_before_are_read_right() {
    use immichvr::settings::{store, ModelStatus};
    let im = ImmichStandin::start(library(1)).await;
    let ai = AiStandin::start(Mode::Ok).await;
    ai.inner
        .models
        .lock()
        .unwrap()
        .downloaded
        .push("large".into());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    launch(&data, "http://127.0.0.1:9", &im)
        .start()
        .await
        .terminate()
        .await;
    let db = immichvr::storage::Store::open(
        &data.join("immichvr.redb"),
        &immichvr::schema::SCHEMA,
        immichvr::storage::Options::default(),
    )
    .unwrap();
    db.write_blocking(None, |txn| {
        let mut large = store::model(txn, "large")?.unwrap();
        large.status = ModelStatus::Downloading;
        large.download_progress = 40;
        store::put_model(txn, &large)?;
        let mut s = store::settings(txn)?.unwrap();
        s.default_depth_model = "sharp".into();
        // Written raw: `put_settings` stores what it is given.
        store::put_settings(txn, &s)?;
        Ok::<_, immichvr::storage::StorageError>(())
    })
    .unwrap();
    drop(db);

    let b = launch(&data, "http://127.0.0.1:9", &im).start().await;
    assert_eq!(status(&b, "large").await, "not_downloaded");
    assert_eq!(
        b.get_json("/api/settings").await["defaultDepthModel"],
        "small"
    );
    b.terminate().await;
    let b = launch(&data, &ai.url(), &im).start().await;
    let synced = b.post("/api/settings/models/sync").await;
    assert_eq!(synced.status(), 200);
    assert_eq!(status(&b, "large").await, "downloaded");
    assert_eq!(generate(&b, "large").await.status(), 200);
    b.terminate().await;
}
