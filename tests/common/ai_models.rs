//! The current AI service's model routes and splat route, as `docs/ai-service.md`
//! records them (upstream `services/ai` at 0eefa08): the catalogue of three
//! depth models and SHARP, load/unload/download/delete with their quirks
//! (unload of anything answers 200; delete of a depth model deletes
//! nothing; delete of `sharp` or an unknown key is a 400), `/api/models`
//! and `/api/models/current`, and `POST /api/splat` answering a binary PLY
//! in ml-sharp's layout.

use std::sync::Arc;

use poem::{
    handler,
    http::StatusCode,
    web::{Data, Json, Multipart, Path},
    IntoResponse, Request, Response,
};
use serde_json::{json, Value};

use super::ai_standin::Inner;

pub const DEPTH_KEYS: [&str; 3] = ["small", "base", "large"];

/// What the stand-in's AI holds: which models are on disk and loaded.
#[derive(Debug, Clone)]
pub struct ModelState {
    pub downloaded: Vec<String>,
    /// The loaded depth model.
    pub depth: Option<String>,
    pub sharp_loaded: bool,
    pub device: &'static str,
    /// Requests to load/unload/download/delete, as `"<verb> <key>"`.
    pub actions: Vec<String>,
    /// Loads fail as the real service's do when a model cannot be loaded
    /// (500 `{success:false, error, message}`).
    pub refuse_loads: bool,
    /// Downloads fail as the real service's do when Hugging Face cannot
    /// be reached (500 `{success:false, error, message}`).
    pub refuse_downloads: bool,
    /// Downloads take this long (the large model takes minutes).
    pub download_delay: std::time::Duration,
    /// `GET /api/models` answers this long after it read the state (a
    /// busy service: the list is older than the answer).
    pub list_delay: std::time::Duration,
}

impl Default for ModelState {
    /// As the real service starts: `small` downloaded and loaded (it loads
    /// its default depth model at start), SHARP not downloaded.
    fn default() -> Self {
        ModelState {
            downloaded: vec!["small".into()],
            depth: Some("small".into()),
            sharp_loaded: false,
            device: "cpu",
            actions: Vec::new(),
            refuse_loads: false,
            refuse_downloads: false,
            download_delay: std::time::Duration::ZERO,
            list_delay: std::time::Duration::ZERO,
        }
    }
}

fn catalogue() -> Vec<Value> {
    let depth = |key: &str, name: &str, params: &str, memory: &str, hf: &str| {
        json!({"key": key, "name": name, "type": "depth", "params": params, "memory": memory,
               "description": format!("Depth Anything V2 {name}"), "huggingface_id": hf})
    };
    vec![
        depth(
            "small",
            "Small",
            "25M",
            "~100MB",
            "depth-anything/Depth-Anything-V2-Small-hf",
        ),
        depth(
            "base",
            "Base",
            "97M",
            "~400MB",
            "depth-anything/Depth-Anything-V2-Base-hf",
        ),
        depth(
            "large",
            "Large",
            "335M",
            "~1.3GB",
            "depth-anything/Depth-Anything-V2-Large-hf",
        ),
        json!({"key": "sharp", "name": "SHARP", "type": "splat", "params": "~2GB",
               "memory": "~4GB RAM", "description": "Apple ml-sharp Gaussian splats",
               "huggingface_id": "apple/ml-sharp"}),
    ]
}

pub fn is_known(key: &str) -> bool {
    DEPTH_KEYS.contains(&key) || key == "sharp"
}

fn status(code: u16, body: Value) -> Response {
    let mut r = Json(body).into_response();
    r.set_status(StatusCode::from_u16(code).unwrap());
    r
}

fn unknown(key: &str) -> Response {
    status(
        400,
        json!({"error": "Unknown model", "message": format!("Unknown model '{key}'. Available: {:?}", DEPTH_KEYS)}),
    )
}

fn state(inner: &Arc<Inner>) -> std::sync::MutexGuard<'_, ModelState> {
    inner.models.lock().unwrap()
}

#[handler]
pub async fn models(inner: Data<&Arc<Inner>>) -> Response {
    let s = state(&inner).clone();
    tokio::time::sleep(s.list_delay).await;
    let models: Vec<Value> = catalogue()
        .into_iter()
        .map(|mut m| {
            let key = m["key"].as_str().unwrap().to_string();
            let loaded = if key == "sharp" {
                s.sharp_loaded
            } else {
                s.depth.as_deref() == Some(key.as_str())
            };
            m["is_loaded"] = json!(loaded);
            m["is_downloaded"] = json!(s.downloaded.contains(&key) || loaded);
            m
        })
        .collect();
    let loaded_now = s
        .depth
        .clone()
        .or_else(|| s.sharp_loaded.then(|| "sharp".to_string()));
    let device = loaded_now.as_ref().map(|_| s.device);
    Json(
        json!({"models": models, "current_model": loaded_now, "current_device": device,
                "default_model": "small"}),
    )
    .into_response()
}

#[handler]
pub fn current(inner: Data<&Arc<Inner>>) -> Response {
    let s = state(&inner).clone();
    let downloaded: Vec<&String> = s
        .downloaded
        .iter()
        .filter(|k| DEPTH_KEYS.contains(&k.as_str()))
        .collect();
    Json(
        json!({"loaded": s.depth.is_some(), "current_model": s.depth, "device": "CPU",
                "available_models": DEPTH_KEYS, "downloaded_models": downloaded}),
    )
    .into_response()
}

/// Flask 3: 415 unless the body is JSON, 400 for an empty or bad body.
#[handler]
pub async fn load(
    inner: Data<&Arc<Inner>>,
    Path(key): Path<String>,
    req: &Request,
    body: poem::Body,
) -> Response {
    let json_type = req
        .content_type()
        .is_some_and(|c| c.starts_with("application/json"));
    if !json_type {
        return status(415, json!({"error": "Unsupported Media Type"}));
    }
    let bytes = body.into_vec().await.unwrap_or_default();
    let Ok(options) = serde_json::from_slice::<Value>(&bytes) else {
        return status(400, json!({"error": "Bad Request"}));
    };
    if !is_known(&key) {
        return unknown(&key);
    }
    let mut s = state(&inner);
    s.actions.push(format!("load {key}"));
    if s.refuse_loads {
        return status(
            500,
            json!({"success": false, "error": "Failed to load model", "message": "CUDA out of memory"}),
        );
    }
    s.device = match options["device"].as_str() {
        Some("gpu") => "gpu",
        _ => "cpu",
    };
    if !s.downloaded.contains(&key) {
        s.downloaded.push(key.clone());
    }
    if key == "sharp" {
        s.sharp_loaded = true;
    } else {
        s.depth = Some(key.clone());
    }
    Json(json!({"success": true, "message": format!("Model {key} loaded"), "current_model": key}))
        .into_response()
}

#[handler]
pub fn unload(inner: Data<&Arc<Inner>>, Path(key): Path<String>) -> Response {
    let mut s = state(&inner);
    s.actions.push(format!("unload {key}"));
    if key == "sharp" {
        s.sharp_loaded = false;
    } else if s.depth.as_deref() == Some(key.as_str()) {
        s.depth = None;
    } else {
        return Json(
            json!({"success": true, "message": format!("Model {key} is not currently loaded")}),
        )
        .into_response();
    }
    Json(json!({"success": true, "message": format!("Model {key} unloaded")})).into_response()
}

#[handler]
pub async fn download(inner: Data<&Arc<Inner>>, Path(key): Path<String>) -> Response {
    if !is_known(&key) {
        return unknown(&key);
    }
    let delay = {
        let mut s = state(&inner);
        s.actions.push(format!("download {key}"));
        s.download_delay
    };
    tokio::time::sleep(delay).await;
    let mut s = state(&inner);
    if s.refuse_downloads {
        return status(
            500,
            json!({"success": false, "error": "Download failed",
                   "message": format!("Failed to download model '{key}': Hugging Face is unreachable")}),
        );
    }
    if !s.downloaded.contains(&key) {
        s.downloaded.push(key.clone());
    }
    Json(json!({"success": true, "message": format!("Model {key} downloaded")})).into_response()
}

/// Deletes nothing on disk (upstream D20): the model stays downloaded.
#[handler]
pub fn delete(inner: Data<&Arc<Inner>>, Path(key): Path<String>) -> Response {
    if !DEPTH_KEYS.contains(&key.as_str()) {
        return unknown(&key);
    }
    let mut s = state(&inner);
    s.actions.push(format!("delete {key}"));
    if s.depth.as_deref() == Some(key.as_str()) {
        s.depth = None;
    }
    Json(json!({"success": true, "message": format!("Model {key} deleted")})).into_response()
}

#[handler]
pub fn splat_download(inner: Data<&Arc<Inner>>) -> Response {
    let mut s = state(&inner);
    s.actions.push("download sharp".into());
    if s.downloaded.iter().any(|k| k == "sharp") {
        return Json(json!({"status": "already_downloaded", "message": "SHARP is downloaded"}))
            .into_response();
    }
    s.downloaded.push("sharp".into());
    Json(json!({"status": "success", "message": "SHARP downloaded"})).into_response()
}

/// `POST /api/splat`: a PLY in ml-sharp's layout, one gaussian per 8x8
/// block of the image (at most 4,096), deterministic in the image bytes.
#[handler]
pub async fn splat(inner: Data<&Arc<Inner>>, form: Multipart) -> Response {
    let inner = inner.0.clone();
    let (name, bytes) = match super::ai_standin::read_field(form, "image").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let _track = match super::ai_standin::enter(&inner, "/api/splat", &name, String::new()).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = super::ai_standin::special_body(&inner) {
        return r;
    }
    let img = match image::load_from_memory(&bytes) {
        Ok(i) => i,
        Err(e) => {
            return status(
                500,
                json!({"error": "Splat generation failed", "message": format!("cannot identify image file: {e}")}),
            )
        }
    };
    {
        let mut s = state(&inner);
        s.sharp_loaded = true;
        if !s.downloaded.iter().any(|k| k == "sharp") {
            s.downloaded.push("sharp".into());
        }
    }
    let n = ((img.width() / 8).max(1) * (img.height() / 8).max(1)).min(4096) as usize;
    let seed = bytes
        .iter()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(*b as u64));
    let ply = sharp_ply(n, seed, img.width(), img.height());
    let stem = name
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(&name)
        .to_string();
    Response::builder()
        .content_type("application/octet-stream")
        .header(
            "Content-Disposition",
            format!("attachment; filename=splat_{stem}.ply"),
        )
        .header("X-Model-Used", "sharp")
        .header("X-File-Size", ply.len().to_string())
        .body(ply)
}

/// A binary little-endian PLY exactly as ml-sharp writes it: 14 floats per
/// vertex, then the extrinsic, intrinsic, image size, frame, disparity,
/// colour space and version elements.
pub fn sharp_ply(n: usize, seed: u64, width: u32, height: u32) -> Vec<u8> {
    let mut header = format!("ply\nformat binary_little_endian 1.0\nelement vertex {n}\n");
    for p in [
        "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
        "rot_0", "rot_1", "rot_2", "rot_3",
    ] {
        header.push_str(&format!("property float {p}\n"));
    }
    header.push_str(
        "element extrinsic 16\nproperty float extrinsic\nelement intrinsic 9\nproperty float intrinsic\n\
         element image_size 2\nproperty uint image_size\nelement frame 2\nproperty int frame\n\
         element disparity 2\nproperty float disparity\nelement color_space 1\nproperty uchar color_space\n\
         element version 3\nproperty uchar version\nend_header\n",
    );
    let mut out = header.into_bytes();
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f32 / (1u64 << 53) as f32
    };
    for _ in 0..n {
        let v = [
            next() * 2.0 - 1.0,
            next() * 2.0 - 1.0,
            1.0 + next() * 3.0,
            next() * 2.0 - 1.0,
            next() * 2.0 - 1.0,
            next() * 2.0 - 1.0,
            next() * 8.0 - 2.0,
            -5.0 + next() * 2.0,
            -5.0 + next() * 2.0,
            -5.0 + next() * 2.0,
            1.0,
            next() * 0.2,
            next() * 0.2,
            next() * 0.2,
        ];
        for f in v {
            out.extend_from_slice(&f.to_le_bytes());
        }
    }
    let f = width.max(height) as f32;
    let identity = [
        1.0f32, 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.,
    ];
    identity
        .iter()
        .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    [
        f,
        0.,
        width as f32 / 2.,
        0.,
        f,
        height as f32 / 2.,
        0.,
        0.,
        1.,
    ]
    .iter()
    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&1i32.to_le_bytes());
    out.extend_from_slice(&(n as i32).to_le_bytes());
    out.extend_from_slice(&0.25f32.to_le_bytes());
    out.extend_from_slice(&0.9f32.to_le_bytes());
    out.push(1);
    out.extend_from_slice(&[1, 5, 0]);
    out
}
