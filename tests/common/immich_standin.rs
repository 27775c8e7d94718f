//! A stand-in for Immich 3.x that follows `immich-openapi-3.0.3.json` for
//! the endpoints the connector uses: base path `/api`, `x-api-key`, 401
//! without a key, Immich-style 403 for a missing permission, `nextPage`
//! paging, real JPEG bytes, `duration` in both its old and new forms.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use poem::{
    get, handler,
    http::StatusCode,
    listener::TcpAcceptor,
    post,
    web::{Data, Json, Path, Query},
    Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::immich_users as users;

pub const KEY: &str = "test-immich-key-3f9a";
/// The key's user (`GET /users/me`), who owns the stand-in's assets.
pub const OWNER: &str = "6f0a3f3e-0000-4000-8000-000000000001";
/// A key whose user lacks `asset.download`.
pub const KEY_NO_DOWNLOAD: &str = "test-immich-key-no-download";

#[derive(Clone)]
pub struct StandinAsset {
    pub json: Value,
    /// Original bytes (None: generated on the fly, `big_len` long).
    pub original: Option<Vec<u8>>,
    pub big_len: usize,
}

pub struct Inner {
    pub assets: Mutex<Vec<StandinAsset>>,
    pub major: Mutex<u64>,
    /// Largest page the search answers, whatever `size` asks.
    pub page_cap: Mutex<usize>,
    /// Search pages at or past this one answer 500.
    pub fail_from_page: Mutex<Option<u32>>,
    pub search_bodies: Mutex<Vec<Value>>,
    pub requests: AtomicUsize,
    /// Timeline requests, as `buckets` or `bucket <timeBucket>`.
    pub timeline_calls: Mutex<Vec<String>>,
    /// Asset-info requests (`GET /assets/{id}`), by id.
    pub asset_calls: Mutex<Vec<String>>,
    /// Thumbnail requests, as `<id> <size>`.
    pub thumbnail_calls: Mutex<Vec<String>>,
    /// Original downloads, by id.
    pub original_calls: Mutex<Vec<String>>,
    /// Each search page waits this long before it answers.
    pub search_delay: Mutex<Duration>,
    /// Each preview waits this long before it answers.
    pub preview_delay: Mutex<Duration>,
    /// `GET /users/me` answers this status (403: the key lacks `user.read`).
    pub me_status: Mutex<u16>,
    /// Accounts, sessions, keys, partners and albums (`immich_users`).
    pub people: super::immich_users::People,
}

#[derive(Clone)]
pub struct ImmichStandin {
    pub addr: SocketAddr,
    pub inner: Arc<Inner>,
    stop: CancellationToken,
}

fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    // Seeds far apart in every channel: JPEG quantisation must not make two equal.
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x as u8)
                .wrapping_mul(3)
                .wrapping_add(seed.wrapping_mul(37)),
            (y as u8) ^ seed.wrapping_mul(11),
            seed.wrapping_mul(53),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// Immich 3.0.3's `AssetResponseDto` as `GET /assets/{id}` answers it for
/// a photo from a phone: every field Immich sends, `exifInfo` included
/// (`tests/immich.rs` checks the shape against Immich's spec), plus one
/// field a later Immich might add.
pub fn asset_json(id: &str, ty: &str, name: &str, mime: &str, fav: bool, duration: Value) -> Value {
    let mut a = json!({
        "id": id, "type": ty, "originalFileName": name, "originalMimeType": mime,
        "checksum": "dGVzdGNoZWNrc3VtMTIzNDU2Nzg5MA==", "createdAt": "2025-06-01T10:00:00.000Z",
        "fileCreatedAt": "2025-06-01T10:00:00.000Z", "fileModifiedAt": "2025-06-01T10:00:00.000Z",
        "localDateTime": "2025-06-01T12:00:00.000Z", "updatedAt": "2025-06-01T10:00:00.000Z",
        "duration": duration, "hasMetadata": true, "height": 48, "width": 64, "isArchived": false,
        "isEdited": false, "isFavorite": fav, "isOffline": false, "isTrashed": false,
        "originalPath": format!("/upload/{name}"), "ownerId": OWNER,
        "libraryId": null, "livePhotoVideoId": null, "duplicateId": null, "stack": null,
        "thumbhash": thumbhash(id, 0), "visibility": "timeline",
        "people": [], "tags": [], "someNewField": {"x": 1}
    });
    a["exifInfo"] = json!({
        "make": "Google", "model": "Pixel 8", "exifImageWidth": 64, "exifImageHeight": 48,
        "fileSizeInByte": null, "orientation": "1",
        "dateTimeOriginal": "2025-06-01T10:00:00.000Z", "modifyDate": "2025-06-01T10:00:00.000Z",
        "timeZone": "Europe/Berlin", "lensModel": null, "fNumber": 1.7, "focalLength": 6.9,
        "iso": 52, "exposureTime": "1/1000", "latitude": 52.52, "longitude": 13.405,
        "city": "Berlin", "state": "Berlin", "country": "Germany", "description": "",
        "projectionType": null, "rating": null
    });
    a
}

/// A thumbhash as Immich writes one (base64), new for each `version` of
/// the asset's previews (`rev`).
pub fn thumbhash(id: &str, rev: u32) -> String {
    let seed = format!("{id}/{rev}");
    base64(&seed.as_bytes()[seed.len().saturating_sub(20)..])
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c.iter().fold(0u32, |n, b| n << 8 | *b as u32) << (8 * (3 - c.len()));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Now, as Immich writes its timestamps.
pub fn now_stamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `n` new JPEG photos (ids `...f00000000001` on, offset by `first`), the
/// newest first in `fileCreatedAt` (a minute apart, from `newest` back),
/// changed now.
pub fn new_photos(
    first: usize,
    n: usize,
    newest: chrono::DateTime<chrono::Utc>,
) -> Vec<StandinAsset> {
    (0..n)
        .map(|i| {
            let k = first + i;
            let id = format!("00000000-0000-4000-8000-f{:011}", k + 1);
            let mut json = asset_json(
                &id,
                "IMAGE",
                &format!("NEW_{k:05}.jpg"),
                "image/jpeg",
                false,
                Value::Null,
            );
            let when = (newest - chrono::Duration::minutes(k as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            json["fileCreatedAt"] = json!(when);
            json["localDateTime"] = json!(when);
            json["createdAt"] = json!(now_stamp());
            json["updatedAt"] = json!(now_stamp());
            StandinAsset {
                json,
                original: Some(jpeg(64, 48, k as u8)),
                big_len: 0,
            }
        })
        .collect()
}

/// `n` JPEG photos of one person (ids `<prefix>000000-0000-4000-8000-00000000000k`),
/// a minute apart from 2025-03-10 10:00 back (thousands of them stay in
/// March, one timeline bucket).
pub fn owned_photos(owner: &str, prefix: &str, n: usize) -> Vec<StandinAsset> {
    let newest = chrono::DateTime::parse_from_rfc3339("2025-03-10T10:00:00Z").unwrap();
    (0..n)
        .map(|k| {
            let id = format!("{prefix}000000-0000-4000-8000-{:012}", k + 1);
            let mut json = asset_json(
                &id,
                "IMAGE",
                &format!("{prefix}_{k}.jpg"),
                "image/jpeg",
                false,
                Value::Null,
            );
            json["ownerId"] = json!(owner);
            let when = (newest - chrono::Duration::minutes(k as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            json["fileCreatedAt"] = json!(when);
            json["localDateTime"] = json!(when);
            StandinAsset {
                json,
                original: Some(jpeg(
                    64,
                    48,
                    (k as u8).wrapping_add(100 + prefix.len() as u8 * 17),
                )),
                big_len: 0,
            }
        })
        .collect()
}

/// The default library: `photos` JPEG photos (ids ...0001, ...0002, ...),
/// one HEIC photo, two videos (new and old `duration`), one 50 MiB photo.
pub fn library(photos: usize) -> Vec<StandinAsset> {
    let mut v = Vec::new();
    for i in 0..photos {
        let id = format!("00000000-0000-4000-8000-{:012}", i + 1);
        let mut json = asset_json(
            &id,
            "IMAGE",
            &format!("IMG_{i:04}.jpg"),
            "image/jpeg",
            i % 2 == 0,
            Value::Null,
        );
        // Three months of photos, so the timeline has three buckets.
        let when = format!("2025-0{}-{:02}T10:00:00.000Z", 6 - i % 3, 1 + i % 28);
        json["fileCreatedAt"] = json!(when);
        json["localDateTime"] = json!(when);
        json["exifInfo"]["dateTimeOriginal"] = json!(when);
        let bytes = jpeg(64, 48, i as u8);
        json["exifInfo"]["fileSizeInByte"] = json!(bytes.len());
        v.push(StandinAsset {
            json,
            original: Some(bytes),
            big_len: 0,
        });
    }
    let mut heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic".to_vec();
    heic.extend(std::iter::repeat_n(7u8, 2000));
    v.push(StandinAsset {
        json: asset_json(
            "00000000-0000-4000-8000-00000000000a",
            "IMAGE",
            "IMG_HEIC.HEIC",
            "image/heic",
            false,
            Value::Null,
        ),
        original: Some(heic),
        big_len: 0,
    });
    let mut mp4 = vec![
        0, 0, 0, 0x18, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm', 0, 0, 2, 0,
    ];
    mp4.extend(std::iter::repeat_n(3u8, 4000));
    v.push(StandinAsset {
        json: asset_json(
            "00000000-0000-4000-8000-00000000000b",
            "VIDEO",
            "clip.mp4",
            "video/mp4",
            false,
            json!(5000),
        ),
        original: Some(mp4.clone()),
        big_len: 0,
    });
    v.push(StandinAsset {
        json: asset_json(
            "00000000-0000-4000-8000-00000000000c",
            "VIDEO",
            "old.mp4",
            "video/mp4",
            false,
            json!("0:00:05.500000"),
        ),
        original: Some(mp4),
        big_len: 0,
    });
    v.push(StandinAsset {
        json: asset_json(
            "00000000-0000-4000-8000-00000000000d",
            "IMAGE",
            "big.jpg",
            "image/jpeg",
            false,
            Value::Null,
        ),
        original: None,
        big_len: 50 * 1024 * 1024,
    });
    v
}

impl ImmichStandin {
    pub async fn start(assets: Vec<StandinAsset>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            assets: Mutex::new(assets),
            major: Mutex::new(3),
            page_cap: Mutex::new(1000),
            fail_from_page: Mutex::new(None),
            search_bodies: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            timeline_calls: Mutex::new(Vec::new()),
            asset_calls: Mutex::new(Vec::new()),
            thumbnail_calls: Mutex::new(Vec::new()),
            original_calls: Mutex::new(Vec::new()),
            search_delay: Mutex::new(Duration::ZERO),
            preview_delay: Mutex::new(Duration::ZERO),
            me_status: Mutex::new(200),
            people: super::immich_users::People::new(),
        });
        let stop = CancellationToken::new();
        let app = Route::new()
            .at("/api/server/ping", get(ping))
            .at("/api/server/version", get(version))
            .at("/api/assets/statistics", get(statistics))
            .at("/api/users/me", get(me))
            .at("/api/search/metadata", post(search))
            .at("/api/search/smart", post(smart))
            .at("/api/assets/:id", get(asset))
            .at("/api/assets/:id/thumbnail", get(thumbnail))
            .at("/api/assets/:id/original", get(original))
            .at(
                "/api/timeline/buckets",
                get(super::immich_timeline::buckets),
            )
            .at("/api/timeline/bucket", get(super::immich_timeline::bucket))
            .at("/api/auth/login", post(users::login))
            .at("/api/auth/logout", post(users::logout))
            .at("/api/api-keys", post(users::create_key))
            .at("/api/api-keys/me", get(users::my_key))
            .at("/api/api-keys/:id", poem::delete(users::delete_key))
            .at("/api/partners", get(users::partners))
            .at("/api/albums", get(users::albums))
            .at("/api/albums/:id", get(users::album))
            .around(|ep, mut req| async move {
                let inner = req.data::<Arc<Inner>>().unwrap().clone();
                inner.requests.fetch_add(1, Ordering::SeqCst);
                // Signing in, out, and making a key go with a session's
                // bearer token (or none); everything else needs a key.
                let path = req.uri().path().to_string();
                if path == "/api/auth/login"
                    || path == "/api/auth/logout"
                    || (path == "/api/api-keys" && req.method() == poem::http::Method::POST)
                {
                    return ep.call(req).await.map(IntoResponse::into_response);
                }
                match users::caller(&inner, &req) {
                    Ok(key) => {
                        req.extensions_mut().insert(key);
                        ep.call(req).await.map(IntoResponse::into_response)
                    }
                    Err(r) => Ok(r),
                }
            })
            .data(inner.clone());
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(TcpAcceptor::from_tokio(listener).unwrap())
                .run_with_graceful_shutdown(
                    app,
                    token.cancelled_owned(),
                    Some(Duration::from_millis(100)),
                )
                .await;
        });
        ImmichStandin { addr, inner, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /api{path}` of the stand-in with the key, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        immichvr::tls::client_builder()
            .build()
            .unwrap()
            .get(format!("{}/api{path}", self.url()))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Adds assets, as uploads to Immich would (changed now).
    pub fn add(&self, assets: Vec<StandinAsset>) {
        self.inner.assets.lock().unwrap().extend(assets);
    }

    /// Changes an asset as Immich would, `updatedAt` set to now.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut all = self.inner.assets.lock().unwrap();
        let a = all
            .iter_mut()
            .find(|a| a.json["id"] == id)
            .expect("the asset");
        f(&mut a.json);
        a.json["updatedAt"] = json!(now_stamp());
    }

    /// An edit: new bytes, so a new checksum, and previews made again.
    pub fn edit(&self, id: &str, rev: u32) {
        self.update(id, |j| {
            j["checksum"] = json!(thumbhash(&format!("edit{id}"), rev));
            j["thumbhash"] = json!(thumbhash(id, rev));
            j["isEdited"] = json!(true);
        });
    }

    /// Moves an asset to the trash.
    pub fn trash(&self, id: &str) {
        self.update(id, |j| j["isTrashed"] = json!(true));
    }

    /// Deletes an asset for good (the trash emptied).
    pub fn delete(&self, id: &str) {
        self.inner
            .assets
            .lock()
            .unwrap()
            .retain(|a| a.json["id"] != id);
    }

    /// Closes the port: connections are refused from now on.
    pub async fn down(&self) {
        self.stop.cancel();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn err(status: u16, error: &str, message: &str) -> Response {
    let mut r = Json(json!({"message": message, "error": error, "statusCode": status, "correlationId": "abc123"})).into_response();
    r.set_status(StatusCode::from_u16(status).unwrap());
    r
}

#[handler]
fn ping() -> Json<Value> {
    Json(json!({"res": "pong"}))
}

#[handler]
fn version(inner: Data<&Arc<Inner>>) -> Json<Value> {
    Json(json!({"major": *inner.major.lock().unwrap(), "minor": 0, "patch": 3, "prerelease": null}))
}

/// The key a request came with (the middleware checked it).
fn key_of(req: &Request) -> users::Key {
    req.extensions()
        .get::<users::Key>()
        .cloned()
        .expect("checked")
}

/// Whether the request's key may read `asset` (Immich's access rule).
fn readable(inner: &Inner, req: &Request, a: &Value) -> bool {
    inner.people.can_read(&key_of(req).user, a)
}

#[handler]
fn statistics(inner: Data<&Arc<Inner>>, req: &Request) -> Json<Value> {
    let user = key_of(req).user;
    let a = inner.assets.lock().unwrap();
    let a: Vec<&StandinAsset> = a
        .iter()
        .filter(|x| x.json["ownerId"] == user.as_str())
        .collect();
    let images = a.iter().filter(|x| x.json["type"] == "IMAGE").count();
    let videos = a.iter().filter(|x| x.json["type"] == "VIDEO").count();
    Json(json!({"images": images, "videos": videos, "total": images + videos}))
}

#[handler]
fn me(inner: Data<&Arc<Inner>>, req: &Request) -> Response {
    let status = *inner.me_status.lock().unwrap();
    if status != 200 {
        return err(
            status,
            "Forbidden",
            "Missing required permission: user.read",
        );
    }
    let key = key_of(req);
    if let Err(r) = users::require(&key, "user.read") {
        return r;
    }
    Json(users::user_json(&key.user)).into_response()
}

/// Immich's filters on a timestamp field: `>=` (its `...After`).
fn at_or_after(a: &Value, field: &str, after: Option<&Value>) -> bool {
    let Some(after) = after.and_then(|v| v.as_str()) else {
        return true;
    };
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (a[field].as_str().and_then(parse), parse(after)) {
        (Some(t), Some(after)) => t >= after,
        _ => false,
    }
}

#[handler]
async fn search(inner: Data<&Arc<Inner>>, body: Json<Value>, req: &Request) -> Response {
    // Metadata search finds the key's user's assets and those of partners
    // who share with them (Immich's `getUserIdsToSearch`).
    let user = key_of(req).user;
    inner.search_bodies.lock().unwrap().push(body.0.clone());
    let delay = *inner.search_delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let page = body["page"].as_u64().unwrap_or(1).max(1) as usize;
    if let Some(f) = *inner.fail_from_page.lock().unwrap() {
        if page as u32 >= f {
            return err(500, "Internal Server Error", "database is gone");
        }
    }
    let size = (body["size"].as_u64().unwrap_or(250) as usize)
        .min(*inner.page_cap.lock().unwrap())
        .max(1);
    let all: Vec<Value> = inner
        .assets
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.json.clone())
        .filter(|a| inner.people.in_timeline(&user, a))
        .filter(|a| body.get("type").is_none_or(|t| a["type"] == *t))
        .filter(|a| body.get("isFavorite").is_none_or(|f| a["isFavorite"] == *f))
        .filter(|a| {
            body.get("originalFileName")
                .and_then(|n| n.as_str())
                .is_none_or(|n| a["originalFileName"].as_str().unwrap().contains(n))
        })
        .filter(|a| body.get("visibility").is_none_or(|v| a["visibility"] == *v))
        // Trashed assets only with `withDeleted` (Immich leaves them out).
        .filter(|a| body["withDeleted"] == true || a["isTrashed"] != true)
        .filter(|a| at_or_after(a, "updatedAt", body.get("updatedAfter")))
        .collect();
    // Immich orders by `fileCreatedAt`, then id, newest first unless asked.
    let mut all = all;
    all.sort_by(|a, b| {
        let key = |x: &Value| {
            (
                x["fileCreatedAt"].as_str().unwrap_or("").to_string(),
                x["id"].as_str().unwrap_or("").to_string(),
            )
        };
        key(b).cmp(&key(a))
    });
    if body["order"] == "asc" {
        all.reverse();
    }
    let start = (page - 1) * size;
    let items: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let next = (start + size < all.len()).then(|| (page + 1).to_string());
    Json(json!({
        "albums": {"count": 0, "facets": [], "items": [], "nextPage": null, "total": 0},
        "assets": {"count": items.len(), "facets": [], "items": items, "nextPage": next, "total": all.len()}
    }))
    .into_response()
}

#[handler]
fn smart() -> Response {
    err(400, "Bad Request", "Smart search is not enabled")
}

fn find(inner: &Inner, id: &str) -> Option<StandinAsset> {
    inner
        .assets
        .lock()
        .unwrap()
        .iter()
        .find(|a| a.json["id"] == id)
        .cloned()
}

/// Immich validates ids before anything else: a 400 whose `message` is a
/// list (NestJS's validation pipe), which our connector cannot read as a
/// "not found".
fn not_a_uuid(id: &str) -> Option<Response> {
    if uuid::Uuid::parse_str(id).is_ok() && id.len() == 36 {
        return None;
    }
    let mut r = Json(
        json!({"message": ["id must be a UUID"], "error": "Bad Request",
                              "statusCode": 400, "correlationId": "abc123"}),
    )
    .into_response();
    r.set_status(StatusCode::BAD_REQUEST);
    Some(r)
}

#[handler]
fn asset(inner: Data<&Arc<Inner>>, Path(id): Path<String>, req: &Request) -> Response {
    inner.asset_calls.lock().unwrap().push(id.clone());
    if let Some(r) = not_a_uuid(&id) {
        return r;
    }
    match find(&inner, &id).filter(|a| readable(&inner, req, &a.json)) {
        Some(a) => Json(a.json).into_response(),
        None => err(400, "Bad Request", "Not found or no asset.read access"),
    }
}

#[derive(Deserialize)]
struct ThumbQuery {
    size: Option<String>,
}

#[handler]
async fn thumbnail(
    inner: Data<&Arc<Inner>>,
    Path(id): Path<String>,
    q: Query<ThumbQuery>,
    req: &Request,
) -> Response {
    inner
        .thumbnail_calls
        .lock()
        .unwrap()
        .push(format!("{id} {}", q.size.as_deref().unwrap_or("thumbnail")));
    let Some(a) = find(&inner, &id) else {
        return err(404, "Not Found", "Asset not found");
    };
    if !readable(&inner, req, &a.json) {
        return err(400, "Bad Request", "Not found or no asset.view access");
    }
    let delay = *inner.preview_delay.lock().unwrap();
    if !delay.is_zero() && q.size.as_deref() == Some("preview") {
        tokio::time::sleep(delay).await;
    }
    let (w, h) = if q.size.as_deref() == Some("preview") {
        (160, 120)
    } else {
        (32, 24)
    };
    Response::builder()
        .content_type("image/jpeg")
        .header("cache-control", "private, max-age=86400")
        .body(jpeg(w, h, 9))
}

#[handler]
fn original(inner: Data<&Arc<Inner>>, Path(id): Path<String>, req: &Request) -> Response {
    if let Err(r) = users::require(&key_of(req), "asset.download") {
        return r;
    }
    inner.original_calls.lock().unwrap().push(id.clone());
    let Some(a) = find(&inner, &id) else {
        return err(404, "Not Found", "Asset not found");
    };
    if !readable(&inner, req, &a.json) {
        return err(400, "Bad Request", "Not found or no asset.download access");
    }
    let name = a.json["originalFileName"].as_str().unwrap().to_string();
    let mime = a.json["originalMimeType"].as_str().unwrap().to_string();
    let builder = Response::builder()
        .content_type(mime)
        .header(
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        )
        .header("accept-ranges", "bytes");
    match a.original {
        Some(bytes) => {
            let range = req
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.strip_prefix("bytes="));
            if let Some((s, e)) = range.and_then(|r| r.split_once('-')) {
                let s: usize = s.parse().unwrap_or(0);
                let e: usize = e.parse().unwrap_or(bytes.len() - 1).min(bytes.len() - 1);
                return builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header("content-range", format!("bytes {s}-{e}/{}", bytes.len()))
                    .header("content-length", e + 1 - s)
                    .body(bytes[s..=e].to_vec());
            }
            builder.header("content-length", bytes.len()).body(bytes)
        }
        None => {
            // A large original, generated as it is sent.
            let len = a.big_len;
            let mut head = jpeg(8, 8, 1);
            head.truncate(200);
            let chunks = futures_util::stream::iter((0..len.div_ceil(65536)).map(move |i| {
                let n = 65536.min(len - i * 65536);
                let mut c = vec![(i % 251) as u8; n];
                if i == 0 {
                    c[..head.len()].copy_from_slice(&head);
                }
                Ok::<_, std::io::Error>(bytes::Bytes::from(c))
            }));
            builder
                .header("content-length", len)
                .body(Body::from_bytes_stream(chunks))
        }
    }
}
