//! `builtin` in `AI_SERVICE_URL`: the same calls as to an AI service,
//! answered by the depth engine in this process (`crate::engine`), with
//! the same errors, so that the worker's slots, retries, events and the
//! model catalogue treat it as one more endpoint.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use serde_json::{json, Value};

use super::{gateway::Catalogue, AiClient, AiError, Input, Produced, Source};
use crate::{
    engine::{EngineError, BUILTIN},
    media::{sink::HashingWriter, sink::TempFile, MediaType},
};

/// What the worker makes of an engine error: exactly what it makes of the
/// AI service's answer in the same case.
pub(super) fn ai_error(e: EngineError) -> AiError {
    match e {
        // Nothing to work with yet: the items wait, no attempt used.
        EngineError::NothingDownloaded | EngineError::BadModel(_) => {
            AiError::NotReady(e.to_string())
        }
        EngineError::Io(io) => AiError::Disk(io),
        other => AiError::Engine(other.to_string()),
    }
}

/// Sets the flag when dropped: a job aborted (shutdown) or timed out stops
/// the computation at the next layer.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn missing(path: &str, what: &'static str) -> AiError {
    AiError::NoEndpoint {
        base: BUILTIN.to_string(),
        what,
        status: 404,
        path: path.to_string(),
    }
}

impl AiClient {
    pub(super) async fn builtin_depth(
        &self,
        input: Input,
        media_type: MediaType,
        model: Option<&str>,
        out_dir: &std::path::Path,
    ) -> Result<Produced, AiError> {
        if media_type == MediaType::Video {
            return Err(missing("/api/video/depth", "video"));
        }
        let key = model.unwrap_or("small").to_string();
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop(stop.clone());
        let work = async {
            let bytes = match input.source {
                Source::File(p) => bytes::Bytes::from(tokio::fs::read(&p).await?),
                Source::Bytes(b) => b,
            };
            self.engine
                .depth(bytes, &key, stop.clone())
                .await
                .map_err(ai_error)
        };
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(AiError::Timeout(self.timeout.as_secs())),
        };
        crate::metrics::ai_request(
            BUILTIN,
            started.elapsed(),
            result.as_ref().err().map(AiError::kind),
        );
        let depth = result?;
        let tmp = TempFile::new(out_dir);
        let mut out = HashingWriter::create(tmp.path(), 256 * 1024).await?;
        out.push(&depth.png).await?;
        let sha256 = out.finish().await?;
        Ok(Produced {
            file: tmp,
            size: depth.png.len() as u64,
            sha256,
            format: "png",
            width: Some(depth.width),
            height: Some(depth.height),
            model_used: Some(key),
        })
    }

    pub(super) fn builtin_json(&self, path: &str) -> Result<Value, AiError> {
        let mut v = self.engine.answer(path).ok_or_else(|| AiError::Rejected {
            status: 404,
            message: format!("the built-in engine has no {path}"),
        })?;
        if path == "/health" {
            if let Err(e) = self.engine.ready() {
                v["ready"] = json!(false);
                v["message"] = json!(e.to_string());
            } else {
                v["ready"] = json!(true);
            }
        }
        Ok(v)
    }

    pub(super) async fn builtin_catalogue(&self, action: Action<'_>) -> Result<Catalogue, AiError> {
        let e = &self.engine;
        let ok = |message: String| Catalogue::Answer(json!({"success": true, "message": message}));
        match action {
            Action::List => Ok(Catalogue::Answer(e.models_json())),
            Action::Load(key) => {
                e.load(key).await.map_err(ai_error)?;
                Ok(Catalogue::Answer(json!({
                    "success": true,
                    "message": format!("{key} loaded (built-in engine, CPU, {} threads)", e.threads()),
                    "current_model": key,
                })))
            }
            Action::Unload(key) => {
                e.unload(Some(key)).await;
                Ok(ok(format!("{key} unloaded")))
            }
            Action::Download(_, true) => Err(AiError::Engine(
                "the built-in engine makes depth maps only: SHARP splats need an AI service".into(),
            )),
            Action::Download(key, false) => {
                e.download(key, None).await.map_err(|e| match e {
                    EngineError::Io(io) => AiError::Disk(io),
                    other => AiError::Engine(other.to_string()),
                })?;
                Ok(ok(format!("{key} downloaded")))
            }
            Action::Delete(key) => {
                e.delete(key)
                    .await
                    .map_err(|e| AiError::Engine(e.to_string()))?;
                Ok(ok(format!("{key} deleted from this machine")))
            }
        }
    }

    pub(super) fn builtin_splat(&self) -> AiError {
        missing("/api/splat", "splat")
    }
}

/// A model catalogue call, for the built-in engine.
pub(super) enum Action<'a> {
    List,
    Load(&'a str),
    Unload(&'a str),
    /// The key, and whether it is the splat model.
    Download(&'a str, bool),
    Delete(&'a str),
}
