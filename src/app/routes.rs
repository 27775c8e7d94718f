//! Every route on top of the state, and the middleware around them.

use std::sync::Arc;

use poem::{get, Endpoint, EndpointExt, IntoEndpoint, Route};
use poem_openapi::{OpenApiService, ServerObject};

use super::open::{ensure_dir, open_state, StartError};
use crate::{
    access, admin, ai, assets, auth,
    config::Config,
    events, follow,
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
            auth::routes::AuthApi { state: state.clone() },
            admin::api::AdminApi { state: state.clone() },
            immich::routes::ImmichApi { state: state.clone() },
            immich::timeline::TimelineApi { state: state.clone() },
            assets::routes::AssetsApi { state: state.clone() },
            settings::routes::SettingsApi { state: state.clone() },
            follow::routes::LibraryApi { state },
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
    auth::routes::ERRORS,
    immich::routes::ERRORS,
    immich::timeline::ERRORS,
    assets::routes::ERRORS,
    settings::routes::ERRORS,
    follow::routes::ERRORS,
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
    let policy = state.access.clone();
    let cors = cors(&policy);
    let allow = Arc::new(allow::AllowMap::from_spec(&spec_json));
    let names = allow.clone();
    let frontend = state
        .config
        .vr
        .frontend_dir
        .as_deref()
        .and_then(admin::frontend::Frontend::new);
    Route::new()
        .at("/metrics", get(metrics.data(state.clone())))
        .at("/api/openapi.json", get(docs::Packed::json(&spec_json)))
        .at("/api/openapi.yaml", get(docs::Packed::yaml(&spec_yaml)))
        .at("/api/docs", get(docs::docs_redirect))
        .at("/api/docs/", get(docs::docs_index))
        .at("/api/docs/*path", get(docs::docs_file))
        .at("/signin", get(admin::page::signin_redirect))
        .at(
            "/signin/",
            admin::page::compressed(get(admin::page::signin_file)),
        )
        .at(
            "/signin/*path",
            admin::page::compressed(get(admin::page::signin_file)),
        )
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
        .around(move |ep, req| allow::add_allow(ep, req, allow.clone()))
        .boxed()
        .around(allow::limit_headers)
        .around(admin::page::browsers_to_admin)
        .boxed()
        .with(cors)
        .boxed()
        .around(move |ep, req| admin::frontend::serve(ep, req, frontend.clone()))
        .boxed()
        .around(photos_alias)
        .around(guard::json_errors)
        // First: every request, the app's files included, passes the one
        // rule before anything answers it.
        .around(move |ep, req| access::guard(ep, req, policy.clone()))
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
            let mut parts = req.uri().clone().into_parts();
            if let Ok(pq) = format!("/api/assets{rest}{query}").parse() {
                parts.path_and_query = Some(pq);
                if let Ok(uri) = poem::http::Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    ep.call(req).await.map(poem::IntoResponse::into_response)
}

/// `GET /metrics`: Prometheus text format; operators only (it tells how
/// the service is used).
#[poem::handler]
async fn metrics(state: poem::web::Data<&Arc<AppState>>, req: &poem::Request) -> poem::Response {
    let operator = req
        .extensions()
        .get::<access::Checked>()
        .and_then(|c| c.caller.as_ref())
        .is_some_and(|c| c.is_operator());
    if !operator {
        return ApiError::new(
            crate::http::codes::ErrorCode::OperatorOnly,
            "Metrics are for operators: send the AUTH_TOKEN, or sign in as an Immich admin",
        )
        .response();
    }
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

/// CORS for the origins in `CORS_ORIGINS`; none by default (same origin
/// only; `access` has refused every other origin already).
fn cors(policy: &access::Policy) -> poem::middleware::Cors {
    let cors = poem::middleware::Cors::new()
        .allow_credentials(false)
        .allow_headers(["authorization", "content-type", "range"])
        .expose_headers(["content-range", "etag", "retry-after"]);
    let origins = policy.cors_origins();
    if origins.is_empty() {
        // An origin that no browser sends: every cross-origin request is refused.
        cors.allow_origin("null-origin.invalid")
    } else {
        cors.allow_origins(origins)
    }
}
