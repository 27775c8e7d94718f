//! Every route on top of the state, and the middleware around them.

use std::sync::Arc;

use poem::{get, Endpoint, EndpointExt, IntoEndpoint, Route};
use poem_openapi::{OpenApiService, ServerObject};

use super::open::{ensure_dir, open_state, StartError};
use crate::{
    admin, ai, assets, auth,
    config::Config,
    events,
    http::{
        access_log, allow, docs,
        error::ApiError,
        guard,
        spec::{self, OpErrors},
    },
    immich, media, queue, settings,
    state::AppState,
    worker,
};

/// The OpenAPI service; also what `immichvr openapi` prints.
pub fn api_service(state: Arc<AppState>) -> OpenApiService<impl poem_openapi::OpenApi, ()> {
    OpenApiService::new(
        (
            admin::service::ServiceApi { state: state.clone() },
            media::routes::MediaApi { state: state.clone() },
            queue::routes::QueueApi { state: state.clone() },
            worker::routes::WorkerApi { state: state.clone() },
            ai::routes::AiApi { state: state.clone() },
            events::routes::EventsApi { state: state.clone() },
            auth::AuthApi { state: state.clone() },
            admin::api::AdminApi { state: state.clone() },
            immich::routes::ImmichApi { state: state.clone() },
            immich::timeline::TimelineApi { state: state.clone() },
            assets::routes::AssetsApi { state: state.clone() },
            settings::routes::SettingsApi { state },
        ),
        "ImmichVR backend",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Uploads photos and videos, queues them, turns them into depth maps with the AI service, and serves the results.")
    .server(
        ServerObject::new(format!("http://localhost:{}", crate::config::DEFAULT_PORT))
            .description("The default address; use your server's"),
    )
}

/// Every domain's list of what its operations answer.
const ERRORS: &[&[OpErrors]] = &[
    admin::service::ERRORS,
    admin::api::ERRORS,
    media::routes::ERRORS,
    queue::routes::ERRORS,
    worker::routes::ERRORS,
    ai::routes::ERRORS,
    events::routes::ERRORS,
    auth::ERRORS,
    immich::routes::ERRORS,
    immich::timeline::ERRORS,
    assets::routes::ERRORS,
    settings::routes::ERRORS,
];

/// The published document (`/api/openapi.json`, `immichvr openapi`).
pub fn document<T: poem_openapi::OpenApi>(
    api: &OpenApiService<T, ()>,
    options: spec::Options,
) -> serde_json::Value {
    spec::finish(&api.spec(), ERRORS, options)
}

/// The spec as YAML, for `immichvr openapi` and the drift test.
pub async fn spec_yaml(mut config: Config, without_multipart: bool) -> Result<String, StartError> {
    let dir = std::env::temp_dir().join(format!("immichvr-spec-{}", uuid::Uuid::new_v4()));
    ensure_dir(&dir)?;
    config.data_dir = dir.clone();
    config.upload_dir = None;
    config.depth_maps_dir = None;
    let state = open_state(config).await?;
    let doc = document(&api_service(state), spec::Options { without_multipart });
    let yaml = spec::to_yaml(&doc);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(yaml)
}

/// Builds every route on top of the state.
pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = api_service(state.clone());
    let doc = document(&api, spec::Options::default());
    let spec_json = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let spec_yaml = spec::to_yaml(&doc);
    let auth = state.auth.clone();
    let cors = cors(&state.config);
    let allow = Arc::new(allow::AllowMap::from_spec(&spec_json));
    let names = allow.clone();
    let frontend = state
        .config
        .vr
        .frontend_dir
        .as_deref()
        .and_then(admin::frontend::Frontend::new);
    let hosts = (!state.auth.required())
        .then(|| Arc::new(guard::HostRules::new(state.config.allowed_hosts.as_deref())));
    Route::new()
        .at("/metrics", get(metrics.data(state.clone())))
        .at("/api/openapi.json", get(docs::Packed::json(&spec_json)))
        .at("/api/openapi.yaml", get(docs::Packed::yaml(&spec_yaml)))
        .at("/api/docs", get(docs::docs_redirect))
        .at("/api/docs/", get(docs::docs_index))
        .at("/api/docs/*path", get(docs::docs_file))
        .at("/admin", get(admin::page::admin_redirect))
        .at(
            "/admin/",
            admin::page::compressed(get(admin::page::admin_index)),
        )
        .at(
            "/admin/*path",
            admin::page::compressed(get(admin::page::admin_file)),
        )
        .nest(
            "/",
            api.into_endpoint()
                .around(move |ep, req| allow::name_path_params(ep, req, names.clone())),
        )
        .catch_all_error(|err| async move { ApiError::from_poem(err).response() })
        // Boxed between layers: each generic layer names the one inside it
        // twice, so unboxed the type doubles per layer and release builds
        // overflow the compiler's depth limit.
        .boxed()
        .around(move |ep, req| auth::guard(ep, req, auth.clone()))
        .around(move |ep, req| allow::add_allow(ep, req, allow.clone()))
        .boxed()
        .around(allow::limit_headers)
        .around(admin::page::browsers_to_admin)
        .boxed()
        .with(cors)
        .around(admin::page::same_origin_is_not_cors)
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
        .around(move |ep, req| admin::frontend::serve(ep, req, frontend.clone()))
        .boxed()
        .around(guard::json_errors)
        .around(photos_alias)
        .around(access_log::log)
}

/// `/api/photos/...` is `/api/assets/...` (the app's upstream backend
/// mounts the asset routes twice); rewritten before anything else looks
/// at the path, so the spec documents the routes once.
async fn photos_alias<E: Endpoint>(
    ep: Arc<E>,
    mut req: poem::Request,
) -> poem::Result<poem::Response> {
    if let Some(rest) = req.uri().path().strip_prefix("/api/photos") {
        if rest.is_empty() || rest.starts_with('/') {
            let query = req
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            if let Ok(uri) = format!("/api/assets{rest}{query}").parse() {
                *req.uri_mut() = uri;
            }
        }
    }
    ep.call(req).await.map(poem::IntoResponse::into_response)
}

/// `GET /metrics`: Prometheus text format.
#[poem::handler]
async fn metrics(state: poem::web::Data<&Arc<AppState>>) -> poem::Response {
    let stats = match state.catalog.stats().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).response(),
    };
    let worker = state.worker.status().await;
    let facts = crate::metrics::Facts {
        stats,
        processed: worker.processed,
        failed: worker.failed,
        db_size: tokio::fs::metadata(state.config.database_path())
            .await
            .map(|m| m.len())
            .unwrap_or(0),
        commits: state.store.commits(),
    };
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(&facts))
}

/// CORS for the origins in `CORS_ORIGINS`; none by default (same origin only).
fn cors(config: &Config) -> poem::middleware::Cors {
    let cors = poem::middleware::Cors::new()
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
        cors.allow_origin("null-origin.invalid")
    } else {
        cors.allow_origins(origins)
    }
}
