//! Composition: state, routes, start-up order and shutdown.

use std::{path::PathBuf, sync::Arc};

use poem::{get, Endpoint, EndpointExt, IntoEndpoint, Route};
use poem_openapi::{OpenApiService, Tags};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    config::Config,
    error::ApiError,
    events::EventBus,
    http::{guard, server},
    media::{self, gate::Gate, MediaDirs, MediaError, MediaRow},
    queue::{self, Queue},
    storage::{self, StorageError, Store},
    web,
    worker::Worker,
};

#[derive(Tags)]
pub enum ApiTags {
    /// Health, version and storage facts
    Service,
    /// Uploads, originals and depth maps
    Media,
    /// The processing queue and its worker
    Queue,
    /// The AI service, as the worker sees it
    Ai,
    /// Live events
    Events,
    /// Optional token authentication
    Auth,
    /// Operator actions: backups
    Admin,
    /// Browsing and importing from Immich
    Immich,
}

/// What every route handler shares.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub queue: Queue,
    pub dirs: MediaDirs,
    pub worker: Worker,
    pub auth: Arc<crate::auth::Auth>,
    /// Set when IMMICH_URL and IMMICH_API_KEY are.
    pub immich: Option<crate::immich::ImmichClient>,
    pub imports: std::sync::Mutex<crate::immich::import::ImportStatus>,
    /// Cancelled when the process shuts down; ends event streams and the worker.
    pub shutdown: CancellationToken,
    /// Upload slots (`UPLOAD_CONCURRENCY`) and the line waiting for them.
    pub uploads: Gate,
}

impl AppState {
    pub async fn media(&self, id: Uuid) -> Result<MediaRow, MediaError> {
        self.store
            .read(move |txn| media::store::get(txn, id)?.ok_or(MediaError::NotFound(id)))
            .await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("directory {path} is not usable: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Storage { path: PathBuf, source: StorageError },
    #[error("cannot recover in-flight items: {0}")]
    Recover(#[from] queue::QueueError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

fn ensure_dir(path: &PathBuf) -> Result<(), StartError> {
    let probe = || -> std::io::Result<()> {
        std::fs::create_dir_all(path)?;
        let test = path.join(format!(".tmp-probe-{}", Uuid::new_v4()));
        std::fs::write(&test, b"")?;
        std::fs::remove_file(&test)
    };
    probe().map_err(|source| StartError::Dir {
        path: path.clone(),
        source,
    })
}

/// The OpenAPI service; also what `immichvr openapi` prints.
pub fn api_service(state: Arc<AppState>) -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    OpenApiService::new(
        (
            web::service::ServiceApi { state: state.clone() },
            media::routes::MediaApi { state: state.clone() },
            queue::routes::QueueApi { state: state.clone() },
            crate::worker::routes::WorkerApi { state: state.clone() },
            crate::ai::routes::AiApi { state: state.clone() },
            crate::events::routes::EventsApi { state: state.clone() },
            crate::auth::AuthApi { state: state.clone() },
            web::admin_api::AdminApi { state: state.clone() },
            crate::immich::routes::ImmichApi { state },
        ),
        "ImmichVR backend",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Uploads photos and videos, queues them, turns them into depth maps with the AI service, and serves the results.")
}

/// The spec as YAML, for `immichvr openapi` and the drift test.
pub async fn spec_yaml(config: Config) -> Result<String, StartError> {
    let dir = tempdir_for_spec()?;
    let mut config = config;
    config.data_dir = dir.clone();
    config.upload_dir = None;
    config.depth_maps_dir = None;
    let state = open_state(config).await?;
    let yaml = api_service(state).spec_yaml();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(yaml)
}

fn tempdir_for_spec() -> Result<PathBuf, StartError> {
    let dir = std::env::temp_dir().join(format!("immichvr-spec-{}", Uuid::new_v4()));
    ensure_dir(&dir)?;
    Ok(dir)
}

/// Directories, database and start-up recovery, in that order.
pub async fn open_state(config: Config) -> Result<Arc<AppState>, StartError> {
    open_state_with(config, CancellationToken::new()).await
}

pub async fn open_state_with(
    config: Config,
    shutdown: CancellationToken,
) -> Result<Arc<AppState>, StartError> {
    let dirs = MediaDirs {
        uploads: config.upload_dir(),
        depth_maps: config.depth_maps_dir(),
    };
    for d in [&config.data_dir, &dirs.uploads, &dirs.depth_maps] {
        ensure_dir(d)?;
    }
    let db_path = config.database_path();
    let options = storage::Options {
        compact_after_deletes: config.compact_after_deletes,
        compact_min_free: config.compact_min_free_bytes,
        integrity_check_max_bytes: config.integrity_check_max_bytes,
        headroom: media::upload::DISK_HEADROOM,
        ..Default::default()
    };
    let store = {
        let p = db_path.clone();
        tokio::task::spawn_blocking(move || Store::open(&p, &crate::schema::SCHEMA, options))
            .await
            .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))?
            .map_err(|source| StartError::Storage {
                path: db_path.clone(),
                source,
            })?
    };
    // Before the server accepts requests: nothing can be writing these yet.
    for d in [&dirs.uploads, &dirs.depth_maps] {
        let n = media::cleanup::remove_temp_files(d).map_err(|source| StartError::Dir {
            path: d.clone(),
            source,
        })?;
        if n > 0 {
            tracing::info!(dir = %d.display(), files = n, "removed unfinished temporary files");
        }
    }
    let backups = config.data_dir.join("backups");
    match storage::backup::remove_partials(&backups) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed unfinished backups (.partial)"),
        Err(e) => tracing::warn!(error = %e, "cannot clean the backups directory"),
    }
    let queue = Queue::new(store.clone(), EventBus::new(1024));
    if let Some(reason) = store.health().write_error {
        tracing::warn!(
            reason,
            "items found processing stay so: the database takes no writes"
        );
    } else {
        let requeued = queue.requeue_in_flight().await?;
        if !requeued.is_empty() {
            tracing::warn!(
                items = requeued.len(),
                "items found processing at start-up returned to the queue"
            );
        }
    }
    let worker = Worker::new(&config, queue.clone(), dirs.clone(), shutdown.clone());
    let config_auth = config.auth_token.clone();
    let immich = match (&config.immich_url, &config.immich_api_key) {
        (Some(url), Some(key)) if !url.trim().is_empty() && !key.expose().is_empty() => {
            Some(crate::immich::ImmichClient::new(url, key.clone()))
        }
        _ => None,
    };
    Ok(Arc::new(AppState {
        uploads: Gate::new(
            config.upload_concurrency,
            config.upload_queue,
            std::time::Duration::from_secs(config.upload_wait_secs),
        ),
        config,
        store,
        queue,
        dirs,
        worker,
        shutdown,
        auth: Arc::new(crate::auth::Auth::new(config_auth)),
        immich,
        imports: Default::default(),
    }))
}

/// Builds every route on top of the state.
pub fn routes(state: Arc<AppState>) -> impl poem::Endpoint {
    let api = api_service(state.clone());
    let spec_json = api.spec();
    let spec_yaml = api.spec_yaml();
    let auth = state.auth.clone();
    let cors = cors(&state.config);
    let allow = Arc::new(crate::web::allow::AllowMap::from_spec(&spec_json));
    let hosts = (!state.auth.required())
        .then(|| Arc::new(guard::HostRules::new(state.config.allowed_hosts.as_deref())));
    Route::new()
        .at(
            "/metrics",
            get(poem::endpoint::make({
                let state = state.clone();
                move |_| {
                    let state = state.clone();
                    async move { metrics(&state).await }
                }
            })),
        )
        .at("/api/openapi.json", get(StaticText::json(spec_json)))
        .at("/api/openapi.yaml", get(StaticText::yaml(spec_yaml)))
        .at("/api/docs", get(web::docs::docs_redirect))
        .at("/api/docs/", get(web::docs::docs_index))
        .at("/api/docs/*path", get(web::docs::docs_file))
        .at("/admin", get(web::admin::admin_redirect))
        .at(
            "/admin/",
            web::admin::compressed(get(web::admin::admin_index)),
        )
        .at(
            "/admin/*path",
            web::admin::compressed(get(web::admin::admin_file)),
        )
        .nest("/", api.into_endpoint())
        .catch_all_error(|err| async move {
            poem::error::ResponseError::as_response(&ApiError::from_poem(err))
        })
        // Boxed between layers: each generic layer names the one inside it
        // twice, so unboxed the type doubles per layer and release builds
        // overflow the compiler's depth limit.
        .boxed()
        .around(move |ep, req| crate::auth::guard(ep, req, auth.clone()))
        .around(move |ep, req| crate::web::allow::add_allow(ep, req, allow.clone()))
        .boxed()
        .around(crate::web::allow::limit_headers)
        .around(web::admin::browsers_to_admin)
        .boxed()
        .with(cors)
        .around(web::admin::same_origin_is_not_cors)
        .boxed()
        .around(move |ep, req| {
            let hosts = hosts.clone();
            async move {
                match hosts {
                    Some(h) => guard::check_host(ep, req, h).await,
                    None => ep.call(req).await.map(poem::IntoResponse::into_response),
                }
            }
        })
        .boxed()
        .around(guard::json_errors)
        .around(web::access_log::log)
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(state: &AppState) -> poem::Response {
    match crate::metrics::render(state).await {
        Ok(body) => poem::Response::builder()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(body),
        Err(e) => poem::error::ResponseError::as_response(&ApiError::from(e)),
    }
}

/// CORS for the origins in `CORS_ORIGINS`; none by default (same origin only).
fn cors(config: &Config) -> poem::middleware::Cors {
    let mut cors = poem::middleware::Cors::new()
        .allow_credentials(false)
        .allow_headers(["authorization", "content-type", "range"])
        .expose_headers(["content-range", "etag", "retry-after"]);
    let origins: Vec<String> = config
        .cors_origins
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        // An origin that no browser sends: every cross-origin request is refused.
        cors = cors.allow_origin("null-origin.invalid");
    } else {
        cors = cors.allow_origins(origins);
    }
    cors
}

/// A fixed body served with its content type.
struct StaticText {
    body: String,
    content_type: &'static str,
}

impl StaticText {
    fn json(body: String) -> Self {
        StaticText {
            body,
            content_type: "application/json; charset=utf-8",
        }
    }
    fn yaml(body: String) -> Self {
        StaticText {
            body,
            content_type: "application/yaml; charset=utf-8",
        }
    }
}

impl poem::Endpoint for StaticText {
    type Output = poem::Response;
    async fn call(&self, _req: poem::Request) -> poem::Result<Self::Output> {
        Ok(poem::Response::builder()
            .content_type(self.content_type)
            .body(self.body.clone()))
    }
}

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let state = open_state_with(config, shutdown.clone()).await?;
    if state.config.auto_start_worker {
        let _ = state.worker.start().await;
    } else {
        tracing::info!(
            "worker not started (AUTO_START_WORKER=false); POST /api/queue/worker/start starts it"
        );
    }
    spawn_named("orphan-cleanup", remove_orphans(state.clone()));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    if let Some(client) = state.immich.clone() {
        spawn_named("immich-version-check", async move {
            match client.version().await {
                Ok(v) => match crate::immich::routes::version_warning(v.major) {
                    Some(w) => {
                        tracing::warn!(version = %format!("{}.{}.{}", v.major, v.minor, v.patch), "{w}")
                    }
                    None => {
                        tracing::info!(version = %format!("{}.{}.{}", v.major, v.minor, v.patch), "Immich connected")
                    }
                },
                Err(e) => tracing::warn!(error = %e, "Immich not reachable at start-up"),
            }
        });
    }
    if !state.auth.required() {
        tracing::warn!("AUTH_TOKEN is not set: the API is open to anyone who can reach this port");
    }
    let app = routes(state.clone());
    let c = &state.config;
    let limits = server::Limits {
        header_timeout: std::time::Duration::from_secs(c.header_timeout_secs.max(1)),
        idle_timeout: std::time::Duration::from_secs(c.idle_timeout_secs.max(1)),
        max_connections: c.max_connections.max(1),
        max_per_ip: c.max_connections_per_ip.max(1),
        body_limit: {
            let max_upload = c.max_upload_bytes;
            Arc::new(move |path: &str| guard::body_limit(path, max_upload))
        },
    }
    .fit_to_fd_limit();
    server::run(
        listener,
        app,
        limits,
        shutdown.clone(),
        std::time::Duration::from_secs(5),
    )
    .await?;
    // The HTTP side is closed; in-flight items finish or go back to `queued`.
    let _ = state.worker.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// The start-up clean-up of files no row names (see `media::cleanup`).
/// Its last log line says it finished, whatever happened.
async fn remove_orphans(state: Arc<AppState>) {
    let store = state.store.clone();
    let dirs = state.dirs.clone();
    let grace = std::time::Duration::from_secs(state.config.orphan_grace_secs);
    let r =
        tokio::task::spawn_blocking(move || media::cleanup::remove_orphans(&store, &dirs, grace))
            .await;
    match r {
        Ok(Ok(s)) => tracing::info!(
            uploads_removed = s.uploads_removed,
            depth_maps_removed = s.depth_maps_removed,
            named = s.named,
            too_young = s.too_young,
            "start-up clean-up finished"
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "start-up clean-up finished without removing the rest: {e}")
        }
        Err(e) => tracing::warn!(error = %e, "start-up clean-up finished: it panicked"),
    }
}

/// Spawns a task inside a span carrying its name, so its log lines say
/// which task wrote them.
pub fn spawn_named<F>(name: &'static str, fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    use tracing::Instrument;
    tokio::spawn(fut.instrument(tracing::info_span!("task", name)))
}
