//! The built-in depth engine: Depth Anything V2 in this binary, on the CPU
//! (candle), for `AI_SERVICE_URL=builtin` (the default). The AI client
//! sends it the work it would send an AI service (`crate::ai`), so the
//! worker, the queue and the app's generate use it as any endpoint.
//!
//! A good neighbour on a small server: its own thread pool of
//! `BUILTIN_THREADS` (half the cores by default), one inference at a time,
//! the model read on first use and dropped after `MODEL_TIMEOUT_AUTO` (or,
//! loaded by hand, `MODEL_TIMEOUT_MANUAL`) without use, and nothing ever
//! computed on the async executor.

pub mod arch;
mod attention;
mod backbone;
mod clock;
mod conv;
pub mod download;
pub mod files;
pub mod model;
mod ops;
pub mod photo;
pub mod resample;

use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, SystemTime},
};

use candle_core::{Device, Tensor};
use serde_json::{json, Value};

use crate::{
    config::Config,
    events::{Event, EventBus, ModelEvent},
};
use files::{Found, Store};

/// The name an `AI_SERVICE_URL` entry gives the built-in engine.
pub const BUILTIN: &str = "builtin";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown model {0} (the built-in engine has small, base and large)")]
    UnknownModel(String),
    #[error("the built-in depth model {0} is not downloaded: download it (the Models page, `immichvr models download {0}`, or POST /api/settings/models/{0}/download) or place it in MODEL_DIR")]
    NotDownloaded(String),
    #[error("no built-in depth model is downloaded yet: download one (the Models page, `immichvr models download small`, or POST /api/settings/models/small/download) or place it in MODEL_DIR")]
    NothingDownloaded,
    #[error("model file refused: {0}")]
    BadModel(String),
    #[error("{0}")]
    BadImage(String),
    #[error("model download failed: {0}")]
    Download(String),
    #[error("{0} is being downloaded by another process")]
    Busy(String),
    #[error("the depth engine failed: {0}")]
    Compute(String),
    #[error("cancelled")]
    Cancelled,
    #[error("model files: {0}")]
    Io(#[from] std::io::Error),
}

/// A depth map made here: a grayscale PNG at the photo's (upright) size.
pub struct DepthMap {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub timings: Timings,
}

/// How long a loaded model may sit unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Loaded by work (the queue, the app's generation).
    Auto,
    /// Loaded by hand (the Models page).
    Manual,
}

struct Loaded {
    key: String,
    model: model::DepthAnything,
    proc: arch::Processor,
}

#[derive(Default)]
struct Held {
    current: Option<Arc<Loaded>>,
    /// The last load that failed: not tried again until the file changes.
    failed: Option<(PathBuf, u64, Option<SystemTime>, String)>,
}

pub struct Engine {
    store: Store,
    threads: usize,
    pool: OnceLock<Result<rayon::ThreadPool, String>>,
    held: Mutex<Held>,
    /// One inference (or load) at a time.
    turn: tokio::sync::Mutex<()>,
    /// One download at a time.
    downloading: tokio::sync::Mutex<()>,
    progress: Mutex<HashMap<String, u32>>,
    auto: Duration,
    manual: Duration,
    epoch: AtomicU64,
    /// Made on the first download (idle memory stays as it was).
    http: OnceLock<reqwest::Client>,
    hf_endpoint: String,
    bus: Option<EventBus>,
}

fn file_id(p: &std::path::Path) -> (u64, Option<SystemTime>) {
    std::fs::metadata(p).map_or((0, None), |m| (m.len(), m.modified().ok()))
}

impl Engine {
    /// `bus` receives download progress as `model` events (none for the CLI).
    pub fn new(config: &Config, bus: Option<EventBus>) -> Arc<Self> {
        Arc::new(Engine {
            store: Store {
                downloads: config.data_dir.join("models"),
                placed: config.engine.model_dir.clone(),
            },
            threads: config.engine.threads(),
            pool: OnceLock::new(),
            held: Mutex::new(Held::default()),
            turn: tokio::sync::Mutex::new(()),
            downloading: tokio::sync::Mutex::new(()),
            progress: Mutex::new(HashMap::new()),
            auto: Duration::from_millis(config.vr.model_timeout_auto_ms.max(1)),
            manual: Duration::from_millis(config.vr.model_timeout_manual_ms.max(1)),
            epoch: AtomicU64::new(0),
            http: OnceLock::new(),
            hf_endpoint: config.engine.hf_endpoint.trim_end_matches('/').to_string(),
            bus,
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn known(key: &str) -> Result<(), EngineError> {
        files::repo(key)
            .map(|_| ())
            .ok_or_else(|| EngineError::UnknownModel(key.to_string()))
    }

    /// The loaded model's key.
    pub fn current(&self) -> Option<String> {
        self.held().current.as_ref().map(|l| l.key.clone())
    }

    /// Keys whose weights are on this machine.
    pub fn downloaded(&self) -> Vec<&'static str> {
        files::MODELS
            .iter()
            .map(|m| m.0)
            .filter(|k| self.store.find(k).is_some())
            .collect()
    }

    /// Runs `f` on the engine's own threads (a panic becomes an error).
    async fn on_pool<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let pool = self
            .pool
            .get_or_init(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads)
                    .thread_name(|i| format!("depth-engine-{i}"))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| EngineError::Compute(format!("no threads: {e}")))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        pool.spawn(move || {
            let r = std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
                Err(EngineError::Compute(format!(
                    "internal error: {}",
                    crate::storage::panic_text_of(p.as_ref())
                )))
            });
            let _ = tx.send(r);
        });
        rx.await
            .map_err(|_| EngineError::Compute("the engine's thread ended".into()))?
    }

    /// Whether work can be sent: some model is on disk and did not fail to load.
    pub fn ready(&self) -> Result<(), EngineError> {
        let held = self.held();
        if held.current.is_some() {
            return Ok(());
        }
        let found: Vec<Found> = files::MODELS
            .iter()
            .filter_map(|m| self.store.find(m.0))
            .collect();
        if found.is_empty() {
            return Err(EngineError::NothingDownloaded);
        }
        if let Some((path, len, mtime, msg)) = &held.failed {
            let all_failed = found
                .iter()
                .all(|f| &f.weights == path && file_id(path) == (*len, *mtime));
            if all_failed {
                return Err(EngineError::BadModel(msg.clone()));
            }
        }
        Ok(())
    }

    /// The model for `key`, read from disk if another (or none) is held.
    async fn ensure(self: &Arc<Self>, key: &str) -> Result<Arc<Loaded>, EngineError> {
        Self::known(key)?;
        if let Some(l) = self.held().current.clone().filter(|l| l.key == key) {
            return Ok(l);
        }
        let found = self.store.find(key).ok_or_else(|| {
            if self.downloaded().is_empty() {
                EngineError::NothingDownloaded
            } else {
                EngineError::NotDownloaded(key.to_string())
            }
        })?;
        // Free the one held before reading the next.
        self.held().current = None;
        let (k, f) = (key.to_string(), found.clone());
        let started = std::time::Instant::now();
        match self.on_pool(move || files::load(&k, &f)).await {
            Ok((model, proc)) => {
                tracing::info!(
                    model = key,
                    file = %found.weights.display(),
                    ms = started.elapsed().as_millis() as u64,
                    threads = self.threads,
                    "built-in depth model loaded"
                );
                let l = Arc::new(Loaded {
                    key: key.to_string(),
                    model,
                    proc,
                });
                let mut held = self.held();
                held.current = Some(l.clone());
                held.failed = None;
                Ok(l)
            }
            Err(e) => {
                let (len, mtime) = file_id(&found.weights);
                self.held().failed = Some((found.weights.clone(), len, mtime, e.to_string()));
                tracing::warn!(model = key, error = %e, "built-in depth model not loaded");
                Err(e)
            }
        }
    }

    /// Starts the idle timer over: the model is dropped after `hold`'s
    /// time without use.
    fn touch(self: &Arc<Self>, hold: Hold) {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let wait = match hold {
            Hold::Auto => self.auto,
            Hold::Manual => self.manual,
        };
        let me = self.clone();
        crate::tasks::spawn_named("depth-engine-idle", async move {
            tokio::time::sleep(wait).await;
            if me.epoch.load(Ordering::SeqCst) == epoch {
                let _turn = me.turn.lock().await;
                if me.epoch.load(Ordering::SeqCst) == epoch && me.held().current.take().is_some() {
                    tracing::info!(
                        after_ms = wait.as_millis() as u64,
                        "built-in depth model unloaded after idle"
                    );
                }
            }
        });
    }

    /// Loads `key` now (the Models page's "load").
    pub async fn load(self: &Arc<Self>, key: &str) -> Result<(), EngineError> {
        let _turn = self.turn.lock().await;
        self.ensure(key).await?;
        self.touch(Hold::Manual);
        Ok(())
    }

    /// Drops the model (`key`: only if it is that one).
    pub async fn unload(&self, key: Option<&str>) {
        let _turn = self.turn.lock().await;
        let mut held = self.held();
        if key.is_none() || held.current.as_ref().map(|l| l.key.as_str()) == key {
            held.current = None;
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Deletes a downloaded model's file (never one placed in MODEL_DIR).
    pub async fn delete(&self, key: &str) -> Result<(), EngineError> {
        Self::known(key)?;
        self.unload(Some(key)).await;
        let _dl = self.downloading.lock().await;
        for p in [self.store.download_path(key), self.store.partial_path(key)] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => tracing::info!(file = %p.display(), "built-in model file deleted"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let _ = tokio::fs::remove_file(download::sidecar(&self.store.partial_path(key))).await;
        Ok(())
    }

    /// A depth map of `photo` by `key`. `stop` cancels it between layers.
    pub async fn depth(
        self: &Arc<Self>,
        photo: bytes::Bytes,
        key: &str,
        stop: Arc<AtomicBool>,
    ) -> Result<DepthMap, EngineError> {
        let _turn = self.turn.lock().await;
        let loaded = self.ensure(key).await?;
        let started = std::time::Instant::now();
        let r = self.on_pool(move || infer(&loaded, &photo, &stop)).await;
        if let Ok(d) = &r {
            tracing::info!(
                model = key,
                width = d.width,
                height = d.height,
                ms = started.elapsed().as_millis() as u64,
                "depth map made by the built-in engine"
            );
        }
        self.touch(Hold::Auto);
        r
    }

    /// Download progress, percent, of the keys being downloaded.
    pub fn progress(&self, key: &str) -> Option<u32> {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    fn set_progress(&self, key: &str, pct: Option<u32>) {
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        match pct {
            Some(v) => {
                p.insert(key.to_string(), v);
            }
            None => {
                p.remove(key);
            }
        }
    }

    /// Downloads `key` from Hugging Face unless it is here already;
    /// `report` hears bytes done and the total.
    pub async fn download(
        &self,
        key: &str,
        report: Option<&(dyn Fn(u64, Option<u64>) + Send + Sync)>,
    ) -> Result<PathBuf, EngineError> {
        Self::known(key)?;
        let _dl = self.downloading.lock().await;
        if let Some(f) = self.store.find(key) {
            return Ok(f.weights);
        }
        let arch =
            arch::Arch::published(key).ok_or_else(|| EngineError::UnknownModel(key.into()))?;
        let repo = files::repo(key).unwrap_or_default();
        let url = format!("{}/{repo}/resolve/main/model.safetensors", self.hf_endpoint);
        let last = Mutex::new((u32::MAX, std::time::Instant::now()));
        let progress = |done: u64, total: Option<u64>| {
            if let Some(r) = report {
                r(done, total);
            }
            let Some(total) = total.filter(|t| *t > 0) else {
                return;
            };
            let pct = ((done.min(total) * 100) / total) as u32;
            let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
            if pct != l.0
                && (l.1.elapsed() >= Duration::from_millis(500) || pct == 100 || l.0 == u32::MAX)
            {
                *l = (pct, std::time::Instant::now());
                self.set_progress(key, Some(pct));
                if let Some(bus) = &self.bus {
                    bus.publish(Event::Model(ModelEvent {
                        status: "downloading".into(),
                        model_key: Some(key.to_string()),
                        loaded_at: None,
                        message: None,
                        progress: Some(pct),
                    }));
                }
            }
        };
        self.set_progress(key, Some(0));
        let http = self.http.get_or_init(|| {
            crate::tls::client_builder()
                .connect_timeout(Duration::from_secs(15))
                .read_timeout(Duration::from_secs(60))
                .build()
                .expect("the TLS backend initialises")
        });
        let r = download::fetch(
            http,
            &url,
            &self.store.partial_path(key),
            &self.store.download_path(key),
            &arch,
            &progress,
        )
        .await;
        self.set_progress(key, None);
        if let Ok(p) = &r {
            tracing::info!(model = key, file = %p.display(), "built-in depth model downloaded");
        }
        r
    }

    /// The AI service's `GET /api/models`, for the built-in models.
    pub fn models_json(&self) -> Value {
        let current = self.current();
        let models: Vec<Value> = files::MODELS
            .iter()
            .map(|&(key, repo, name, params, memory, license)| {
                json!({
                    "key": key,
                    "name": name,
                    "type": "depth",
                    "params": params,
                    "memory": memory,
                    "description": format!("Depth Anything V2 {name}, built in (CPU): a depth map per photo"),
                    "huggingface_id": repo,
                    "license": license,
                    "is_loaded": current.as_deref() == Some(key),
                    "is_downloaded": self.store.find(key).is_some(),
                })
            })
            .collect();
        json!({
            "models": models,
            "current_model": current,
            "current_device": current.as_ref().map(|_| "cpu"),
            "default_model": "small",
        })
    }

    /// The AI service's `GET /health` and `GET /`, for the built-in engine.
    pub fn answer(&self, path: &str) -> Option<Value> {
        let status = if self.current().is_some() {
            "loaded"
        } else {
            "not_loaded"
        };
        match path {
            "/health" => Some(json!({
                "status": "healthy",
                "service": "ai",
                "engine": BUILTIN,
                "model": "Depth-Anything-V2",
                "model_status": status,
                "current_model": self.current(),
                "downloaded_models": self.downloaded(),
                "threads": self.threads,
            })),
            "/" => Some(json!({
                "message": "ImmichVR built-in depth engine",
                "version": env!("CARGO_PKG_VERSION"),
                "model": "Depth Anything V2",
                "engine": "candle (CPU)",
                "threads": self.threads,
                "endpoints": {},
            })),
            _ => None,
        }
    }
}

/// Where one photo's time went, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub decode: f64,
    pub resize: f64,
    pub model: f64,
    pub post: f64,
    pub png: f64,
}

/// Photo to depth map, on the engine's threads.
fn infer(l: &Loaded, bytes: &[u8], stop: &AtomicBool) -> Result<DepthMap, EngineError> {
    let cancelled = || stop.load(Ordering::Relaxed);
    let mut t = Timings::default();
    let mut clock = std::time::Instant::now();
    let mut lap = || {
        let s = clock.elapsed().as_secs_f64();
        clock = std::time::Instant::now();
        s
    };
    let photo = photo::decode(bytes)?;
    t.decode = lap();
    let (h, w, rgb) = photo::resize(&l.proc, &photo);
    let px = photo::normalise(&l.proc, h, w, &rgb);
    drop(rgb);
    t.resize = lap();
    let compute = |e: candle_core::Error| {
        if cancelled() {
            EngineError::Cancelled
        } else {
            EngineError::Compute(e.to_string())
        }
    };
    let input =
        Tensor::from_vec(px.data, (1, 3, px.height, px.width), &Device::Cpu).map_err(compute)?;
    let depth = l.model.forward(&input, &cancelled).map_err(compute)?;
    let (_, dh, dw) = depth.dims3().map_err(compute)?;
    let values: Vec<f32> = depth
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(compute)?;
    t.model = lap();
    if cancelled() {
        return Err(EngineError::Cancelled);
    }
    let gray = photo::depth_to_u8(&values, dh, dw, photo.height, photo.width);
    t.post = lap();
    let png = photo::png(gray, photo.width, photo.height)?;
    t.png = lap();
    Ok(DepthMap {
        png,
        width: photo.width as u32,
        height: photo.height as u32,
        timings: t,
    })
}

/// For tests: the resized RGB the model saw, its raw output, and the
/// 8-bit map at the photo's size.
pub struct Trace {
    pub resized: Vec<u8>,
    pub input_size: (usize, usize),
    pub predicted: Vec<f32>,
    pub gray: Vec<u8>,
    pub size: (usize, usize),
}

/// Loads the model in `dir` (transformers layout) and runs one photo
/// through it, keeping the intermediate results (the parity test).
pub fn trace(dir: &std::path::Path, photo_bytes: &[u8]) -> Result<Trace, EngineError> {
    let found = Found {
        weights: dir.join("model.safetensors"),
        config_dir: Some(dir.to_path_buf()),
        placed: true,
    };
    let (model, proc) = files::load("small", &found)?;
    let l = Loaded {
        key: "small".into(),
        model,
        proc,
    };
    let p = photo::decode(photo_bytes)?;
    let (h, w, rgb) = photo::resize(&l.proc, &p);
    let px = photo::normalise(&l.proc, h, w, &rgb);
    let c = |e: candle_core::Error| EngineError::Compute(e.to_string());
    let input = Tensor::from_vec(px.data, (1, 3, h, w), &Device::Cpu).map_err(c)?;
    let predicted: Vec<f32> = l
        .model
        .forward(&input, &|| false)
        .and_then(|t| t.flatten_all()?.to_vec1())
        .map_err(c)?;
    let gray = photo::depth_to_u8(&predicted, h, w, p.height, p.width);
    Ok(Trace {
        resized: rgb,
        input_size: (h, w),
        predicted,
        gray,
        size: (p.height, p.width),
    })
}
