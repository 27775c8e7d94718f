//! The AI service client (`docs/ai-service.md`): photos to
//! `/api/depth?model=`, videos to `/api/video/depth`, photos for splats to
//! `/api/splat`, the input streamed and the answer streamed to a temporary
//! file while it is checked; and the model catalogue routes (`gateway`).
//! The endpoint `builtin` is the depth engine in this process (`builtin`).

mod builtin;
mod error;
pub mod gateway;
pub mod routes;

pub use error::AiError;
use error::{classify, error_message, field_kind};

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures_util::TryStreamExt;
use reqwest::multipart::{Form, Part};
use tokio_util::io::ReaderStream;

use crate::{
    config::Config,
    engine::{Engine, BUILTIN},
    media::{
        sink::{HashingWriter, TempFile},
        MediaType,
    },
};

/// What is sent: a file streamed from disk, or bytes in memory (an Immich
/// preview), with the name and type the service is told.
pub struct Input {
    pub source: Source,
    pub file_name: String,
    pub mime: String,
}

pub enum Source {
    File(PathBuf),
    Bytes(bytes::Bytes),
}

impl Input {
    pub fn file(path: PathBuf, file_name: &str, mime: &str) -> Self {
        Input {
            source: Source::File(path),
            file_name: safe_name(file_name),
            mime: mime.to_string(),
        }
    }

    pub fn bytes(bytes: bytes::Bytes, file_name: &str, mime: &str) -> Self {
        Input {
            source: Source::Bytes(bytes),
            file_name: safe_name(file_name),
            mime: mime.to_string(),
        }
    }

    async fn part(self) -> Result<Part, AiError> {
        let part = match self.source {
            Source::File(path) => {
                let file = tokio::fs::File::open(&path).await?;
                let len = file.metadata().await?.len();
                // 256 KiB reads: the default 4 KiB would cost 256 blocking-pool trips per MiB.
                let body =
                    reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, 256 * 1024));
                Part::stream_with_length(body, len)
            }
            Source::Bytes(b) => {
                Part::stream_with_length(reqwest::Body::from(b.clone()), b.len() as u64)
            }
        };
        part.file_name(self.file_name)
            .mime_str(&self.mime)
            .map_err(|e| AiError::BadAnswer(e.to_string()))
    }
}

/// One kind of work request.
struct Work {
    path: &'static str,
    query: String,
    field: &'static str,
    expect: &'static [u8],
    timeout: Duration,
}

/// A file the service made, received and checked, under a temporary name
/// in the directory it belongs in; not yet synced to the disk
/// (`TempFile::sync` before it is recorded).
pub struct Produced {
    pub file: TempFile,
    pub size: u64,
    pub sha256: [u8; 32],
    pub format: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub model_used: Option<String>,
}

#[derive(Clone)]
pub struct AiClient {
    http: reqwest::Client,
    timeout: Duration,
    splat_timeout: Duration,
    download_timeout: Duration,
    max_bytes: u64,
    fps: u32,
    max_frames: u32,
    engine: Arc<Engine>,
}

const PLY_SIG: &[u8] = b"ply";
const PNG_SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
const ZIP_SIG: &[u8] = b"PK\x03\x04";

impl AiClient {
    /// `engine` answers for the endpoint `builtin`.
    pub fn new(config: &Config, engine: Arc<Engine>) -> Self {
        let http = crate::tls::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("the TLS backend initialises");
        AiClient {
            http,
            timeout: Duration::from_secs(config.ai_timeout_secs),
            splat_timeout: Duration::from_secs(config.vr.ai_splat_timeout_secs),
            download_timeout: Duration::from_secs(config.vr.ai_download_timeout_secs),
            max_bytes: config.ai_max_response_bytes,
            fps: config.video_fps,
            max_frames: config.video_max_frames,
            engine,
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The built-in depth engine (`AI_SERVICE_URL=builtin`).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// A depth map of `input` by `model` (`None`: the service's default),
    /// stored in `out_dir`. Photos go to `/api/depth`, videos to the video
    /// route (which the current upstream service does not have).
    pub async fn depth(
        &self,
        base: &str,
        input: Input,
        media_type: MediaType,
        model: Option<&str>,
        out_dir: &Path,
    ) -> Result<Produced, AiError> {
        if base == BUILTIN {
            return self.builtin_depth(input, media_type, model, out_dir).await;
        }
        let work = match media_type {
            MediaType::Photo => Work {
                path: "/api/depth",
                query: model.map(|m| format!("?model={m}")).unwrap_or_default(),
                field: "image",
                expect: PNG_SIG,
                timeout: self.timeout,
            },
            MediaType::Video => Work {
                path: "/api/video/depth",
                query: format!("?fps={}&max_frames={}", self.fps, self.max_frames),
                field: "video",
                expect: ZIP_SIG,
                timeout: self.timeout,
            },
        };
        self.work(base, input, work, out_dir).await
    }

    /// A Gaussian splat of `input` (`POST /api/splat`, SHARP), stored as a
    /// PLY in `out_dir`.
    pub async fn splat(
        &self,
        base: &str,
        input: Input,
        out_dir: &Path,
    ) -> Result<Produced, AiError> {
        if base == BUILTIN {
            return Err(self.builtin_splat());
        }
        let work = Work {
            path: "/api/splat",
            query: String::new(),
            field: "image",
            expect: PLY_SIG,
            timeout: self.splat_timeout,
        };
        self.work(base, input, work, out_dir).await
    }

    async fn work(
        &self,
        base: &str,
        input: Input,
        w: Work,
        out_dir: &Path,
    ) -> Result<Produced, AiError> {
        let Work {
            path,
            query,
            field,
            expect,
            timeout,
        } = w;
        let url = format!("{base}{path}{query}");
        let part = input.part().await?;
        let request = self
            .http
            .post(&url)
            .multipart(Form::new().part(field, part))
            .send();
        let secs = timeout.as_secs();
        let started = std::time::Instant::now();
        let work = async {
            let resp = match request.await {
                Ok(r) => r,
                // A server without the route may answer 404 before reading
                // the upload and close the connection, which the client sees
                // as a failed send; asking the route itself tells which.
                Err(e) if !e.is_connect() && !e.is_timeout() => {
                    return Err(self
                        .missing_route(base, path, field)
                        .await
                        .unwrap_or_else(|| classify(e)))
                }
                Err(e) => return Err(classify(e)),
            };
            let status = resp.status();
            if matches!(status.as_u16(), 404 | 405) {
                return Err(AiError::NoEndpoint {
                    base: base.to_string(),
                    what: field_kind(field, path),
                    status: status.as_u16(),
                    path: path.to_string(),
                });
            }
            if !status.is_success() {
                let message = error_message(resp).await;
                return Err(if status.as_u16() == 503 {
                    AiError::NotReady(message)
                } else {
                    AiError::Rejected {
                        status: status.as_u16(),
                        message,
                    }
                });
            }
            let model_used = resp
                .headers()
                .get("x-model-used")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut r = self.receive(resp, out_dir, expect).await?;
            r.model_used = model_used;
            Ok(r)
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(AiError::Timeout(secs)),
        };
        crate::metrics::ai_request(
            base,
            started.elapsed(),
            result.as_ref().err().map(AiError::kind),
        );
        result
    }

    /// `Some` when `GET {base}{path}` says the route does not exist at all
    /// (404; a POST-only route that exists answers 405).
    async fn missing_route(&self, base: &str, path: &str, field: &str) -> Option<AiError> {
        let r = self
            .http
            .get(format!("{base}{path}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        (r.status().as_u16() == 404).then(|| AiError::NoEndpoint {
            base: base.to_string(),
            what: field_kind(field, path),
            status: 404,
            path: path.to_string(),
        })
    }

    /// Streams the answer to disk with a size cap, checking its signature.
    async fn receive(
        &self,
        resp: reqwest::Response,
        out_dir: &Path,
        expect: &'static [u8],
    ) -> Result<Produced, AiError> {
        let tmp = TempFile::new(out_dir);
        // Network chunks are small: they are gathered into 256 KiB writes.
        let mut out = HashingWriter::create(tmp.path(), 256 * 1024).await?;
        let mut head = Vec::with_capacity(64);
        let mut size = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.try_next().await.map_err(classify)? {
            size += chunk.len() as u64;
            if size > self.max_bytes {
                return Err(AiError::TooLarge(self.max_bytes));
            }
            if head.len() < 64 {
                let take = (64 - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            out.push(&chunk).await?;
        }
        if !head.starts_with(expect) {
            let what = match expect {
                PNG_SIG => "a PNG",
                ZIP_SIG => "a ZIP",
                _ => "a PLY",
            };
            return Err(AiError::BadAnswer(format!(
                "expected {what}, got {size} bytes of something else"
            )));
        }
        // Synced by whoever keeps it (the worker, after the AI's slot is
        // given back): an fsync here would keep the AI waiting.
        let sha256 = out.finish_unsynced().await?;
        let (format, width, height) = match expect {
            PNG_SIG => {
                let dims = imagesize::blob_size(&head)
                    .map_err(|e| AiError::BadAnswer(format!("unreadable PNG header: {e}")))?;
                ("png", Some(dims.width as u32), Some(dims.height as u32))
            }
            ZIP_SIG => ("zip", None, None),
            _ => ("ply", None, None),
        };
        Ok(Produced {
            file: tmp,
            size,
            sha256,
            format,
            width,
            height,
            model_used: None,
        })
    }

    /// `GET {base}{path}` as JSON, for health checks and the proxy routes.
    pub async fn get_json(&self, base: &str, path: &str) -> Result<serde_json::Value, AiError> {
        if base == BUILTIN {
            return self.builtin_json(path);
        }
        let resp = self
            .http
            .get(format!("{base}{path}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(classify)?;
        let status = resp.status();
        if !status.is_success() {
            let message = error_message(resp).await;
            return Err(AiError::Rejected {
                status: status.as_u16(),
                message,
            });
        }
        resp.json()
            .await
            .map_err(|e| AiError::BadAnswer(e.to_string()))
    }

    /// Whether the endpoint is up with its model loaded.
    pub async fn ready(&self, base: &str) -> Result<(), AiError> {
        if base == BUILTIN {
            return self.engine.ready().map_err(builtin::ai_error);
        }
        let v = self.get_json(base, "/health").await?;
        match v.get("model_status").and_then(|s| s.as_str()) {
            Some(s @ "not_loaded") => Err(AiError::NotReady(format!("model_status: {s}"))),
            _ => Ok(()),
        }
    }
}

/// The AI service needs a non-empty file name; keep only its last segment.
fn safe_name(original: &str) -> String {
    let last = original.rsplit(['/', '\\']).next().unwrap_or("");
    if last.trim().is_empty() {
        "upload".to_string()
    } else {
        last.to_string()
    }
}
