//! The built-in depth engine as a person meets it: the real binary with no
//! `AI_SERVICE_URL` (the engine is the default) and a model placed by hand
//! in `MODEL_DIR` (the tiny fixture, in the layout Hugging Face serves);
//! a kill -9 during inference; and the model download from a stand-in for
//! the Hugging Face Hub: a cut connection resumed, a restart resumed, a
//! damaged or wrong file refused.

mod common;

use std::{path::Path, time::Duration};

use common::{
    bin::{Binary, Launch},
    client,
    hf_standin::{safetensors, Behaviour, HfStandin},
    json, upload, wait_status, Api,
};
use immichvr::engine::arch::Arch;

const SMALL_REPO: &str = "depth-anything/Depth-Anything-V2-Small-hf";

/// MODEL_DIR holding the tiny model as `Depth-Anything-V2-Small-hf/`.
fn model_dir(root: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth-anything-tiny");
    let dir = root.join("models-by-hand");
    let hf = dir.join("Depth-Anything-V2-Small-hf");
    std::fs::create_dir_all(&hf).unwrap();
    for f in [
        "config.json",
        "preprocessor_config.json",
        "model.safetensors",
    ] {
        std::fs::copy(src.join(f), hf.join(f)).unwrap();
    }
    dir
}

fn builtin(data: &Path, models: &Path) -> Launch {
    Launch::new(data)
        .without("AI_SERVICE_URL")
        .env("MODEL_DIR", models.display())
        .env("BUILTIN_THREADS", 1)
}

async fn up(b: &Binary, name: &str, bytes: Vec<u8>) -> (String, String) {
    let r = json(upload(&b.url, name, bytes).await).await;
    (
        r["mediaItemId"].as_str().unwrap().into(),
        r["queueId"].as_str().unwrap().into(),
    )
}

/// The depth map's PNG header: 8-bit grayscale, `w` x `h`.
async fn depth_png(b: &Binary, media: &str) -> (u32, u32, image::ColorType) {
    let r = b.get(&format!("/api/media/{media}/depth")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let bytes = r.bytes().await.unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    (img.width(), img.height(), img.color())
}

#[tokio::test]
async fn with_no_ai_service_an_upload_gets_its_depth_map_from_the_builtin_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let models = model_dir(tmp.path());
    let data = tmp.path().join("data");
    let b = builtin(&data, &models).start().await;

    let status = b.get_json("/api/queue/worker/status").await;
    assert_eq!(status["endpoints"][0]["url"], "builtin", "{status}");
    let health = b.get_json("/api/ai/health").await;
    assert_eq!(health["engine"], "builtin", "{health}");
    assert_eq!(health["downloaded_models"], serde_json::json!(["small"]));

    let (media, q) = up(&b, "garden.jpg", common::jpeg(301, 199, 7)).await;
    let row = wait_status(&b.url, &q, "completed", 60.0).await;
    assert_eq!(row["attempts"], 1, "{row}");
    assert_eq!(
        depth_png(&b, &media).await,
        (301, 199, image::ColorType::L8)
    );
    b.wait_log("depth map made by the built-in engine", 5).await;

    // The catalogue says what is here, and under which licence.
    let list = b.get_json("/api/settings/models").await;
    let small = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "small")
        .unwrap()
        .clone();
    assert_eq!(small["license"], "Apache-2.0");
    assert_eq!(small["builtin"], true);
    let ai = b.get_json("/api/settings/models/ai").await;
    assert_eq!(ai["models"][0]["is_downloaded"], true, "{ai}");
    assert_eq!(ai["models"][2]["license"], "CC-BY-NC-4.0");

    // A photo it cannot decode fails as the AI service's 500 would, with
    // the reason; a video has no endpoint here.
    let (_, bad) = up(
        &b,
        "broken.png",
        [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 64]].concat(),
    )
    .await;
    let failed = wait_status(&b.url, &bad, "failed", 30.0).await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("built-in depth engine"),
        "{failed}"
    );

    // Read back after a restart.
    b.terminate().await;
    let b = builtin(&data, &models).start().await;
    assert_eq!(
        depth_png(&b, &media).await,
        (301, 199, image::ColorType::L8)
    );
}

#[tokio::test]
async fn a_kill_9_during_inference_redoes_the_item_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let models = model_dir(tmp.path());
    let data = tmp.path().join("data");
    let b = builtin(&data, &models).start().await;
    // Large enough that decoding, resizing and resizing back take a while.
    let (media, q) = up(&b, "big.png", common::png(2400, 1600, 3)).await;
    b.wait_log("built-in depth model loaded", 30).await;
    let row = common::queue_item(&b.url, &q).await;
    assert_eq!(row["status"], "processing", "{row}");
    let log = b.kill();
    assert!(
        !log.contains("depth map made by the built-in engine"),
        "killed too late: {log}"
    );

    // Whether the claim reached the disk or not, the item is done again.
    let b = builtin(&data, &models).start().await;
    let row = wait_status(&b.url, &q, "completed", 120.0).await;
    assert_eq!(
        depth_png(&b, &media).await,
        (2400, 1600, image::ColorType::L8)
    );
    assert!(row["attempts"].as_u64().unwrap() >= 1, "{row}");
    b.wait_log("depth map made by the built-in engine", 5).await;
}

#[tokio::test]
async fn without_a_model_items_wait_and_the_log_says_how_to_get_one() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("none");
    std::fs::create_dir_all(&empty).unwrap();
    let b = builtin(&tmp.path().join("data"), &empty)
        .env("AI_NOT_READY_HINT_SECS", 1)
        .start()
        .await;
    let (_, q) = up(&b, "a.jpg", common::jpeg(40, 30, 1)).await;
    b.wait_log("no built-in depth model is downloaded yet", 30)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = common::queue_item(&b.url, &q).await;
    assert_eq!(row["status"], "queued", "{row}");
    assert_eq!(row["attempts"], 0, "no attempt is used: {row}");
    let status = b.get_json("/api/queue/worker/status").await;
    assert_eq!(status["endpoints"][0]["reachable"], false, "{status}");
}

/// The real Small architecture's tensors, zeros: a file the download's
/// checks accept (99 MB).
fn small_file() -> Vec<u8> {
    safetensors(&Arch::published("small").unwrap().tensors(), 0.0)
}

async fn download(b: &Binary, key: &str) -> reqwest::Response {
    client()
        .post(b.at(&format!("/api/settings/models/{key}/download")))
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap()
}

/// The binary with the built-in engine, downloading from `hf`.
fn downloader(data: &Path, hf: &HfStandin) -> Launch {
    Launch::new(data)
        .env("AI_SERVICE_URL", "builtin")
        .env("HF_ENDPOINT", hf.url())
}

fn downloaded(data: &Path) -> std::path::PathBuf {
    data.join("models/depth-anything-v2-small.safetensors")
}

#[tokio::test]
async fn a_download_cut_midway_resumes_with_range_and_is_verified() {
    let file = small_file();
    let hf = HfStandin::start(
        SMALL_REPO,
        file.clone(),
        Behaviour {
            cut_after: Some(30 << 20),
            ..Default::default()
        },
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = downloader(&data, &hf).start().await;
    let mut events = client().get(b.at("/api/events")).send().await.unwrap();
    let r = download(&b, "small").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(std::fs::read(downloaded(&data)).unwrap(), file);
    let ranges = hf.ranges();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], None);
    assert_eq!(
        ranges[1].as_deref(),
        Some(format!("bytes={}-", 30 << 20).as_str())
    );
    assert!(!data
        .join("models/depth-anything-v2-small.safetensors.partial")
        .exists());

    // Progress went out as `model` events.
    let mut seen = String::new();
    while !seen.contains("\"status\":\"downloaded\"") {
        match tokio::time::timeout(Duration::from_secs(5), events.chunk()).await {
            Ok(Ok(Some(c))) => seen.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    assert!(seen.contains("\"progress\":"), "{seen}");
    let list = b.get_json("/api/settings/models").await;
    assert_eq!(list["models"][0]["status"], "downloaded", "{list}");
}

#[tokio::test]
async fn a_download_cut_by_a_restart_resumes_at_the_next_start() {
    let file = small_file();
    let hf = HfStandin::start(
        SMALL_REPO,
        file.clone(),
        Behaviour {
            rate: 20 << 20,
            ..Default::default()
        },
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let launch = || downloader(&data, &hf);
    let b = launch().start().await;
    let url = b.at("/api/settings/models/small/download");
    tokio::spawn(async move {
        let _ = client().post(url).send().await;
    });
    let partial = data.join("models/depth-anything-v2-small.safetensors.partial");
    common::wait_for(30.0, "a partial download", || {
        let p = partial.clone();
        async move { (std::fs::metadata(&p).map_or(0, |m| m.len()) > 10 << 20).then_some(()) }
    })
    .await;
    b.kill();
    let had = std::fs::metadata(&partial).unwrap().len();
    hf.behaviour.lock().unwrap().rate = 0;

    let b = launch().start().await;
    common::wait_for(60.0, "the resumed download", || {
        let d = downloaded(&data);
        async move { d.exists().then_some(()) }
    })
    .await;
    assert_eq!(std::fs::read(downloaded(&data)).unwrap(), file);
    let ranges = hf.ranges();
    let resumed = ranges.last().unwrap().as_deref().unwrap_or("");
    let from: u64 = resumed
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(
        from >= had && from > 0,
        "resumed from {from}, had {had}: {ranges:?}"
    );
    let list = common::wait_for(10.0, "the catalogue to say downloaded", || async {
        let l = b.get_json("/api/settings/models").await;
        (l["models"][0]["status"] == "downloaded").then_some(l)
    })
    .await;
    assert_eq!(list["models"][0]["key"], "small");
}

#[tokio::test]
async fn a_damaged_or_wrong_file_is_refused_and_deleted() {
    let file = small_file();
    let mut damaged = file.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x55;
    let hf = HfStandin::start(
        SMALL_REPO,
        file,
        Behaviour {
            served: Some(damaged),
            ..Default::default()
        },
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let b = downloader(&data, &hf).start().await;
    let r = download(&b, "small").await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let body = json(r).await;
    assert!(
        body["message"].as_str().unwrap().contains("SHA-256"),
        "{body}"
    );
    assert!(!downloaded(&data).exists());
    assert!(!data
        .join("models/depth-anything-v2-small.safetensors.partial")
        .exists());
    let list = b.get_json("/api/settings/models").await;
    assert_eq!(list["models"][0]["status"], "not_downloaded", "{list}");

    // The right checksum but not Small's tensors (the tiny model): refused too.
    let tiny = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/depth-anything-tiny/model.safetensors"),
    )
    .unwrap();
    let hf2 = HfStandin::start(SMALL_REPO, tiny, Behaviour::default()).await;
    let b2 = downloader(&tmp.path().join("data2"), &hf2).start().await;
    let body = json(download(&b2, "small").await).await;
    assert!(
        body["message"].as_str().unwrap().contains("has shape"),
        "{body}"
    );
    assert!(!downloaded(&tmp.path().join("data2")).exists());
}

#[tokio::test]
async fn builtin_works_beside_a_remote_ai_service() {
    let ai = common::ai_standin::AiStandin::start(common::ai_standin::Mode::Delay(
        Duration::from_millis(400),
    ))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let models = model_dir(tmp.path());
    let s = common::start_with_ai(&format!("builtin,{}", ai.url()), |c| {
        c.engine.model_dir = Some(models.clone());
        c.engine.builtin_threads = 1;
    })
    .await;
    let mut queued = Vec::new();
    for i in 0..6u8 {
        let r = json(upload(&s.url, &format!("p{i}.png"), common::png(64, 48, i)).await).await;
        queued.push(r["queueId"].as_str().unwrap().to_string());
    }
    for q in &queued {
        wait_status(&s.url, q, "completed", 60.0).await;
    }
    let by_remote = ai.requests();
    assert!(
        (1..6).contains(&by_remote),
        "both endpoints work: {by_remote} of 6 by the remote one"
    );
    let status = s.get_json("/api/queue/worker/status").await;
    let urls: Vec<&str> = status["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, ["builtin", ai.url().as_str()]);
}
