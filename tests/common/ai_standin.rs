//! A stand-in for the AI service that keeps its contract
//! (`docs/ai-service.md`): same paths, multipart field names,
//! status codes and content types, real PNG and ZIP bytes. Tests steer it
//! with [`Mode`] and read what it saw.

use std::{
    io::{Cursor, Write},
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use poem::{
    get, handler,
    http::StatusCode,
    listener::TcpAcceptor,
    post,
    web::{Data, Multipart, Query},
    EndpointExt, IntoResponse, Response, Route, Server,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub enum Mode {
    Ok,
    /// Answer after a delay.
    Delay(Duration),
    /// One request at a time, each taking this long, as one GPU serves
    /// them; the others wait their turn (`busy` records the service).
    Serial(Duration),
    /// Always answer this status with a JSON error.
    Status(u16),
    /// The first `n` requests get `status`, then normal answers.
    FailFirst(usize, u16),
    /// 200 with bytes that are not a PNG/ZIP.
    Garbage,
    /// Never answer.
    Hang,
    /// 200 with a valid PNG signature padded to this many bytes.
    Oversize(usize),
    /// 503 "model not loaded" on work endpoints, `not_loaded` on /health.
    NotLoaded,
    /// As the current upstream service: photos work, but the video routes
    /// are not registered, so Flask answers its HTML 404 page.
    NoVideo,
}

#[derive(Default)]
pub struct Seen {
    pub requests: usize,
    pub paths: Vec<String>,
    pub file_names: Vec<String>,
    pub queries: Vec<String>,
    /// When each file had been read in full.
    pub arrivals: Vec<Instant>,
    /// When each depth request's headers arrived, before its body.
    pub starts: Vec<Instant>,
}

pub struct Inner {
    pub mode: Mutex<Mode>,
    /// The current AI's models (`ai_models.rs`).
    pub models: Mutex<super::ai_models::ModelState>,
    pub seen: Mutex<Seen>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    served: AtomicUsize,
    /// When not 0: depth maps are noise of this side (incompressible, so
    /// a benchmark gets a PNG of a known size, ~side² bytes).
    pub noise_side: std::sync::atomic::AtomicU32,
    /// The one "GPU" of [`Mode::Serial`].
    gpu: tokio::sync::Mutex<()>,
    /// Each serial service, from start to end, with the file name served.
    pub busy: Mutex<Vec<(Instant, Instant, String)>>,
}

#[derive(Clone)]
pub struct AiStandin {
    pub addr: SocketAddr,
    pub inner: Arc<Inner>,
    stop: Arc<Mutex<Option<CancellationToken>>>,
}

impl AiStandin {
    pub async fn start(mode: Mode) -> Self {
        Self::start_on("127.0.0.1:0", mode).await
    }

    /// On a given address (the `standins` example uses a fixed port).
    pub async fn start_on(addr: &str, mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = AiStandin {
            addr,
            inner: Arc::new(Inner {
                mode: Mutex::new(mode),
                models: Mutex::new(Default::default()),
                seen: Mutex::new(Seen::default()),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                served: AtomicUsize::new(0),
                noise_side: Default::default(),
                gpu: tokio::sync::Mutex::new(()),
                busy: Mutex::new(Vec::new()),
            }),
            stop: Arc::new(Mutex::new(None)),
        };
        s.run(listener);
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn run(&self, listener: tokio::net::TcpListener) {
        let token = CancellationToken::new();
        *self.stop.lock().unwrap() = Some(token.clone());
        let app = Route::new()
            .at("/health", get(health))
            .at("/", get(info))
            .at("/api/depth", post(depth))
            .at("/api/splat", post(super::ai_models::splat))
            .at(
                "/api/splat/download",
                post(super::ai_models::splat_download),
            )
            .at("/api/models", get(super::ai_models::models))
            .at("/api/models/current", get(super::ai_models::current))
            .at("/api/models/:key/load", post(super::ai_models::load))
            .at("/api/models/:key/unload", post(super::ai_models::unload))
            .at(
                "/api/models/:key/download",
                post(super::ai_models::download),
            )
            .at("/api/models/:key", poem::delete(super::ai_models::delete))
            .at("/api/video/depth", post(video_depth).get(video_get))
            .data(self.inner.clone());
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(TcpAcceptor::from_tokio(listener).unwrap())
                .run_with_graceful_shutdown(
                    app,
                    token.cancelled_owned(),
                    Some(Duration::from_millis(100)),
                )
                .await;
        });
    }

    /// Closes the port: connections are refused until [`AiStandin::up`].
    pub async fn down(&self) {
        if let Some(t) = self.stop.lock().unwrap().take() {
            t.cancel();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    pub async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.run(listener);
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> usize {
        self.inner.seen.lock().unwrap().requests
    }

    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    /// How long the serial "GPU" was busy between `from` and `to`.
    pub fn busy_between(&self, from: Instant, to: Instant) -> Duration {
        self.inner
            .busy
            .lock()
            .unwrap()
            .iter()
            .map(|(a, b, _)| (*b).min(to).saturating_duration_since((*a).max(from)))
            .sum()
    }
}

#[handler]
fn health(inner: Data<&Arc<Inner>>) -> Response {
    let status = match *inner.mode.lock().unwrap() {
        Mode::NotLoaded => "not_loaded",
        _ => "loaded",
    };
    poem::web::Json(serde_json::json!({
        "status": "healthy", "service": "ai", "model": "Depth-Anything-V2", "model_status": status
    }))
    .into_response()
}

#[handler]
fn info() -> Response {
    poem::web::Json(serde_json::json!({
        "message": "ImmichVR AI Service", "version": "1.0.0", "model": "Depth Anything V2",
        "endpoints": {"health": "/health", "depth": "/api/depth", "video": "/api/video/depth"}
    }))
    .into_response()
}

/// GET on the POST-only route: Flask's 405, or its 404 when the route is
/// not registered at all.
#[handler]
fn video_get(inner: Data<&Arc<Inner>>) -> Response {
    if matches!(*inner.mode.lock().unwrap(), Mode::NoVideo) {
        flask_404()
    } else {
        Response::builder()
            .status(poem::http::StatusCode::METHOD_NOT_ALLOWED)
            .content_type("text/html; charset=utf-8")
            .body("<!doctype html>\n<title>405 Method Not Allowed</title>\n")
    }
}

/// Flask's own page for a route it does not have (werkzeug's NotFound).
pub fn flask_404() -> Response {
    Response::builder()
        .status(poem::http::StatusCode::NOT_FOUND)
        .content_type("text/html; charset=utf-8")
        .body(
            "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n\
             <p>The requested URL was not found on the server. If you entered the URL manually \
             please check your spelling and try again.</p>\n",
        )
}

fn json_err(status: u16, error: &str, message: &str) -> Response {
    let mut r =
        poem::web::Json(serde_json::json!({"error": error, "message": message})).into_response();
    r.set_status(StatusCode::from_u16(status).unwrap());
    r
}

/// Reads the one file field; 400 as the real service does when it is
/// missing or has no file name.
pub async fn read_field(mut form: Multipart, name: &str) -> Result<(String, Vec<u8>), Response> {
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some(name) {
            let file_name = field.file_name().unwrap_or("").to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| json_err(400, "Bad request", &e.to_string()))?;
            if file_name.is_empty() {
                return Err(json_err(400, "No file selected", "The file has no name"));
            }
            return Ok((file_name, bytes));
        }
    }
    Err(json_err(
        400,
        "No image provided",
        &format!("Send the file in field '{name}'"),
    ))
}

pub struct Track(Arc<Inner>);
impl Drop for Track {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Common prologue: count, apply the mode. `Ok(())` means answer normally.
pub async fn enter(
    inner: &Arc<Inner>,
    path: &str,
    file_name: &str,
    query: String,
) -> Result<Track, Response> {
    let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let track = Track(inner.clone());
    let n = inner.served.fetch_add(1, Ordering::SeqCst);
    {
        let mut seen = inner.seen.lock().unwrap();
        seen.requests += 1;
        seen.paths.push(path.to_string());
        seen.file_names.push(file_name.to_string());
        seen.queries.push(query);
        seen.arrivals.push(Instant::now());
    }
    let mode = inner.mode.lock().unwrap().clone();
    match mode {
        Mode::Ok | Mode::NoVideo | Mode::Garbage | Mode::Oversize(_) => Ok(track),
        Mode::Delay(d) => {
            tokio::time::sleep(d).await;
            Ok(track)
        }
        Mode::Serial(d) => {
            let _gpu = inner.gpu.lock().await;
            let start = Instant::now();
            tokio::time::sleep(d).await;
            inner
                .busy
                .lock()
                .unwrap()
                .push((start, Instant::now(), file_name.to_string()));
            Ok(track)
        }
        Mode::Status(s) => Err(json_err(
            s,
            "Processing failed",
            &format!("stand-in told to answer {s}"),
        )),
        Mode::FailFirst(k, s) if n < k => Err(json_err(
            s,
            "Processing failed",
            &format!("stand-in failure {}", n + 1),
        )),
        Mode::FailFirst(..) => Ok(track),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(track)
        }
        Mode::NotLoaded => Err(json_err(
            503,
            "Model not loaded",
            "The model is still loading",
        )),
    }
}

pub fn special_body(inner: &Arc<Inner>) -> Option<Response> {
    match *inner.mode.lock().unwrap() {
        Mode::Garbage => Some(
            Response::builder()
                .content_type("image/png")
                .body("this is not a png"),
        ),
        Mode::Oversize(n) => {
            let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
            v.resize(n, 0);
            Some(Response::builder().content_type("image/png").body(v))
        }
        _ => None,
    }
}

pub fn depth_png(w: u32, h: u32) -> Vec<u8> {
    depth_png_shaded(w, h, 0)
}

/// A gradient; each depth model shifts it, so their maps differ.
pub fn depth_png_shaded(w: u32, h: u32, shift: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y + shift) % 256) as u8]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[handler]
async fn depth(inner: Data<&Arc<Inner>>, form: Multipart, req: &poem::Request) -> Response {
    let inner = inner.0.clone();
    inner.seen.lock().unwrap().starts.push(Instant::now());
    let (name, bytes) = match read_field(form, "image").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let _track = match enter(
        &inner,
        "/api/depth",
        &name,
        req.uri().query().unwrap_or("").to_string(),
    )
    .await
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = special_body(&inner) {
        return r;
    }
    // `?model=` picks one of the three depth models (and loads it).
    let query = req.uri().query().unwrap_or("");
    let asked = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("model="))
        .map(str::to_string);
    let keys = super::ai_models::DEPTH_KEYS;
    if let Some(m) = &asked {
        if !keys.contains(&m.as_str()) {
            return json_err(
                400,
                "Invalid model",
                &format!("Unknown model '{m}'. Available: {keys:?}"),
            );
        }
    }
    let img = match image::load_from_memory(&bytes) {
        Ok(i) => i,
        Err(e) => {
            return json_err(
                500,
                "Processing failed",
                &format!("cannot identify image file: {e}"),
            )
        }
    };
    let model = {
        let mut s = inner.models.lock().unwrap();
        let m = asked
            .or_else(|| s.depth.clone())
            .unwrap_or_else(|| "small".into());
        s.depth = Some(m.clone());
        if !s.downloaded.contains(&m) {
            s.downloaded.push(m.clone());
        }
        m
    };
    let shade = keys.iter().position(|k| *k == model).unwrap_or(0) as u32 * 85;
    Response::builder()
        .content_type("image/png")
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"depth_{name}.png\""),
        )
        .header("X-Model-Used", model)
        .body(match inner.noise_side.load(Ordering::SeqCst) {
            0 => depth_png_shaded(img.width(), img.height(), shade),
            side => noise_png(side),
        })
}

/// A grayscale PNG of pseudo-random pixels: `side`² bytes that no
/// compressor shrinks.
pub fn noise_png(side: u32) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    let img = image::GrayImage::from_fn(side, side, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Luma([x as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[derive(Deserialize)]
struct VideoQuery {
    fps: Option<u32>,
    max_frames: Option<u32>,
}

#[handler]
async fn video_depth(
    inner: Data<&Arc<Inner>>,
    form: Multipart,
    q: Query<VideoQuery>,
    req: &poem::Request,
) -> Response {
    let inner = inner.0.clone();
    if matches!(*inner.mode.lock().unwrap(), Mode::NoVideo) {
        let mut seen = inner.seen.lock().unwrap();
        seen.requests += 1;
        seen.paths.push("/api/video/depth".into());
        return flask_404();
    }
    inner.seen.lock().unwrap().starts.push(Instant::now());
    let (name, _bytes) = match read_field(form, "video").await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let _track = match enter(
        &inner,
        "/api/video/depth",
        &name,
        req.uri().query().unwrap_or("").to_string(),
    )
    .await
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = special_body(&inner) {
        return r;
    }
    let frames = q.max_frames.unwrap_or(30).clamp(1, 3) * q.fps.unwrap_or(1).max(1);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..frames {
        zip.start_file(
            format!("frame_{i:04}.png"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&depth_png(32, 18)).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    Response::builder()
        .content_type("application/zip")
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"depth_{name}.zip\""),
        )
        .body(bytes)
}
