//! Shared test harness: the real server in-process on 127.0.0.1:0 with a
//! temporary data directory, plus real image bytes.
#![allow(dead_code)]

pub mod ai_models;
pub mod ai_standin;
pub mod bin;
pub mod fs;
pub mod hf_standin;
pub mod immich_standin;
pub mod immich_timeline;
pub mod immich_users;
pub mod ksplat;
pub mod library;
pub mod openapi_check;
pub mod raw;
pub mod snapshot;
pub mod spec_shape;
pub mod stats;

use std::{io::Cursor, path::PathBuf, time::Duration};

use immichvr::Config;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub url: String,
    pub shutdown: CancellationToken,
    pub data_dir: PathBuf,
    pub handle: tokio::task::JoinHandle<Result<(), immichvr::app::StartError>>,
    _tmp: Option<tempfile::TempDir>,
}

/// The operator's `AUTH_TOKEN` every test server gets, and every request
/// of [`client`] carries (the service is closed by default; tests act as
/// the operator unless they say otherwise).
pub const TOKEN: &str = "test-operator-token";

/// A configuration on a fresh temporary data directory, worker off (tests
/// that need it turn it on), AI pointed at a closed port, and the
/// operator's token [`TOKEN`].
pub fn test_config() -> (Config, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Config::with_data_dir(tmp.path());
    c.auth_token = Some(TOKEN.parse().unwrap());
    c.auto_start_worker = false;
    c.ai_service_url = "http://127.0.0.1:9".into();
    c.immich_url = None;
    c.immich_api_key = None;
    // Following an Immich library is what tests of it turn on: elsewhere
    // a stand-in's library would be made behind the test's back.
    c.background.immich_sync_secs = 0;
    (c, tmp)
}

impl TestServer {
    pub async fn start() -> Self {
        let (c, tmp) = test_config();
        Self::start_with(c, Some(tmp)).await
    }

    /// Starts on `config`; `tmp` (if any) is kept alive with the server.
    pub async fn start_with(config: Config, tmp: Option<tempfile::TempDir>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let data_dir = config.data_dir.clone();
        let handle = tokio::spawn(immichvr::serve(config, listener, shutdown.clone()));
        let client = client();
        for _ in 0..200 {
            if client.get(format!("{url}/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        TestServer {
            url,
            shutdown,
            data_dir,
            handle,
            _tmp: tmp,
        }
    }

    /// Stops the server and waits until it has let go of the database.
    pub async fn stop(self) -> Option<tempfile::TempDir> {
        self.shutdown.cancel();
        let _ = self.handle.await;
        self._tmp
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }
}

/// A fresh client per call (a pooled connection must not outlive its
/// test's runtime), on the server's TLS set-up, which reads the system's
/// CA files once per process rather than once per client.
pub fn client() -> reqwest::Client {
    client_builder().build().unwrap()
}

/// A client builder that sends the operator's token on every request.
pub fn client_builder() -> reqwest::ClientBuilder {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    immichvr::tls::client_builder().default_headers(h)
}

/// The token's header line, for requests written by hand.
pub const AUTH_LINE: &str = "Authorization: Bearer test-operator-token\r\n";

/// A client with no credentials at all (what a stranger sends).
pub fn anonymous() -> reqwest::Client {
    immichvr::tls::client_builder().build().unwrap()
}

/// Signs in at `url` as a browser would (`POST /api/auth/login` with
/// `body`, no other credentials) and returns the session cookie it set,
/// as `name=value` for a `Cookie` header.
pub async fn sign_in_with(url: &str, body: serde_json::Value) -> String {
    let r = anonymous()
        .post(format!("{url}/api/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-in with {body}");
    cookie_of(&r)
}

/// The `name=value` of the cookie an answer sets.
pub fn cookie_of(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// A real PNG of the given size.
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x as u8).wrapping_add(seed),
            (y as u8).wrapping_mul(3),
            seed,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A real JPEG of the given size.
pub fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x as u8) ^ seed, (y as u8).wrapping_add(seed), 128])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// Bytes that `infer` reads as an MP4 video (an `ftyp` box), padded.
pub fn mp4(len: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![
        0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm', 0, 0, 2, 0,
    ];
    v.extend_from_slice(b"isomiso2avc1mp41");
    while v.len() < len {
        v.push(seed.wrapping_add(v.len() as u8));
    }
    v
}

pub async fn upload(url: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new().part("media", part);
    client()
        .post(format!("{url}/api/media/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// A port nothing listens on right now (for a spawned binary).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET url` as text.
pub async fn get_text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn json(resp: reqwest::Response) -> serde_json::Value {
    resp.json().await.unwrap()
}

/// Polls `f` until it returns `Some`, or panics after `secs` seconds.
pub async fn wait_for<T, F, Fut>(secs: f64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if std::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The queue row of an item.
pub async fn queue_item(url: &str, queue_id: &str) -> serde_json::Value {
    json(
        client()
            .get(format!("{url}/api/queue/items/{queue_id}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Waits until the item reaches `status`, returning its row.
pub async fn wait_status(url: &str, queue_id: &str, status: &str, secs: f64) -> serde_json::Value {
    let (u, q, s) = (url.to_string(), queue_id.to_string(), status.to_string());
    wait_for(
        secs,
        &format!("item {queue_id} to be {status}"),
        move || {
            let (u, q, s) = (u.clone(), q.clone(), s.clone());
            async move {
                let row = queue_item(&u, &q).await;
                (row["status"] == s.as_str()).then_some(row)
            }
        },
    )
    .await
}

/// A server with the worker on, pointed at `ai_urls`, with fast retries.
pub async fn start_with_ai(ai_urls: &str, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let (mut c, tmp) = test_config();
    c.ai_service_url = ai_urls.to_string();
    c.auto_start_worker = true;
    c.retry_base_secs = 0.05;
    tweak(&mut c);
    TestServer::start_with(c, Some(tmp)).await
}

/// A household's server: the Immich stand-in with `admin` photos of the
/// service key's user (its admin), `alice` of Alice's and `bob` of Bob's
/// (ids `a1…`, `b0…`), the AI stand-in, Immich's sharing answers kept
/// 1 s, the model catalogue synced.
pub struct Household {
    pub ai: ai_standin::AiStandin,
    pub im: immich_standin::ImmichStandin,
    pub s: TestServer,
}

pub async fn household(
    (admin, alice, bob): (usize, usize, usize),
    tweak: impl FnOnce(&mut Config),
) -> Household {
    use immich_users::{ALICE, BOB};
    let ai = ai_standin::AiStandin::start(ai_standin::Mode::Ok).await;
    let mut assets = immich_standin::library(admin);
    assets.extend(immich_standin::owned_photos(ALICE, "a1", alice));
    assets.extend(immich_standin::owned_photos(BOB, "b0", bob));
    let im = immich_standin::ImmichStandin::start(assets).await;
    let url = im.url();
    let s = start_with_ai(&ai.url(), move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = Some(immich_standin::KEY.parse().unwrap());
        c.sharing_cache_secs = 1;
        tweak(c);
    })
    .await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    Household { ai, im, s }
}

/// A server following the library of `im` (a round at start, then only
/// when asked: the interval is an hour), worker on against `ai`, the
/// model catalogue read from the AI.
pub async fn follower(
    ai: &ai_standin::AiStandin,
    im: &immich_standin::ImmichStandin,
    tweak: impl FnOnce(&mut Config),
) -> TestServer {
    let url = im.url();
    let s = start_with_ai(&ai.url(), move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = Some(immich_standin::KEY.parse().unwrap());
        c.background.immich_sync_secs = 3600;
        tweak(c);
    })
    .await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    s
}

/// `GET url`, answered (any status).
pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

/// `POST url` without a body, answered (any status).
pub async fn post(url: impl reqwest::IntoUrl) -> reqwest::Response {
    client().post(url).send().await.unwrap()
}

/// Requests to a running service by path, for every kind of test server.
#[allow(async_fn_in_trait)]
pub trait Api {
    fn base(&self) -> &str;

    async fn get(&self, path: &str) -> reqwest::Response {
        get(format!("{}{path}", self.base())).await
    }

    async fn get_json(&self, path: &str) -> serde_json::Value {
        json(self.get(path).await).await
    }

    async fn post(&self, path: &str) -> reqwest::Response {
        post(format!("{}{path}", self.base())).await
    }

    async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        client()
            .post(format!("{}{path}", self.base()))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        client()
            .delete(format!("{}{path}", self.base()))
            .send()
            .await
            .unwrap()
    }
}

impl Api for TestServer {
    fn base(&self) -> &str {
        &self.url
    }
}

impl Api for bin::Binary {
    fn base(&self) -> &str {
        &self.url
    }
}

/// Reads SSE frames (`event:` + `data:`) from a response body.
pub async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
) -> Option<(String, serde_json::Value)> {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if data.is_empty() {
                continue; // keep-alive comment
            }
            return Some((name, serde_json::from_str(&data).unwrap()));
        }
        let chunk = tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(stream),
        )
        .await
        .ok()??
        .ok()?;
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// Whether the served spec declares `code` for the answer `r` (its path's
/// operations, its status), so that a client generated from it knows it.
pub async fn spec_declares(r: &reqwest::Response, code: &str) -> bool {
    let mut spec_url = r.url().clone();
    spec_url.set_path("/api/openapi.json");
    spec_url.set_query(None);
    let spec: serde_json::Value = get(spec_url.to_string()).await.json().await.unwrap();
    let status = r.status().as_u16().to_string();
    operations_at(&spec, r.url().path()).iter().any(|op| {
        op["responses"][status.as_str()]["description"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("`{code}`")))
    })
}

/// The spec's operations whose path template matches `path`.
pub fn operations_at<'a>(spec: &'a serde_json::Value, path: &str) -> Vec<&'a serde_json::Value> {
    let parts: Vec<&str> = path.split('/').collect();
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(template, _)| {
            let segs: Vec<&str> = template.split('/').collect();
            segs.len() == parts.len()
                && segs
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.starts_with('{') || s == p)
        })
        .flat_map(|(_, item)| item.as_object().unwrap().values())
        .collect()
}
