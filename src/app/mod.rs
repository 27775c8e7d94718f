//! Composition: the state, the routes, start-up order and shutdown. This
//! is the top of the arrows: it imports the routes and the state, and
//! nothing imports it but `main`.

mod open;
mod routes;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use open::{open_state, open_state_with, StartError};
pub use routes::{api_service, routes, spec_yaml};

use crate::{
    http::{guard, server},
    media,
    state::AppState,
    tasks::spawn_named,
};

/// Runs the service on `listener` until `shutdown` is cancelled. The HTTP
/// server and the worker share the one cancellation token.
pub async fn serve(
    config: crate::Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let state = open_state_with(config, shutdown.clone()).await?;
    // The app's requests are served whether background work runs or not.
    state.worker.launch();
    if state.config.auto_start_worker {
        let _ = state.worker.start().await;
    } else {
        tracing::info!(
            "worker not started (AUTO_START_WORKER=false); POST /api/queue/worker/start starts it"
        );
    }
    spawn_named("orphan-cleanup", remove_orphans(state.clone()));
    state.follower.spawn(shutdown.clone());
    state.models.spawn_sync(
        Duration::from_secs(state.config.vr.model_sync_secs.max(1)),
        shutdown.clone(),
    );
    spawn_named("builtin-downloads", builtin_downloads(state.clone()));
    tracing::info!(addr = %listener.local_addr()?, "listening");
    if let Some(client) = state.immich.clone() {
        spawn_named("immich-version-check", async move {
            match client.version().await {
                Ok(v) => {
                    let version = format!("{}.{}.{}", v.major, v.minor, v.patch);
                    match crate::immich::views::version_warning(v.major) {
                        Some(w) => tracing::warn!(%version, "{w}"),
                        None => tracing::info!(%version, "Immich connected"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Immich not reachable at start-up"),
            }
        });
    }
    match state.auth.mode() {
        crate::auth::Mode::Off => tracing::warn!(
            "AUTH=off: everything is open to anyone who can reach this port, without a sign-in"
        ),
        crate::auth::Mode::Loopback => tracing::warn!(
            "neither IMMICH_URL nor AUTH_TOKEN is set: only this machine is served; set IMMICH_URL \
             (people sign in with their Immich account) or AUTH_TOKEN to serve the network"
        ),
        crate::auth::Mode::Token => {
            tracing::info!("sign-in: the AUTH_TOKEN (no IMMICH_URL, so no Immich accounts)")
        }
        crate::auth::Mode::Immich => {
            tracing::info!("sign-in: Immich accounts (and the AUTH_TOKEN, when set)");
            spawn_named(
                "immich-key-check",
                crate::auth::check_keys(
                    state.auth.clone(),
                    Duration::from_secs(state.config.key_check_secs.max(1)),
                    shutdown.clone(),
                ),
            );
        }
    }
    let c = &state.config;
    let limits = server::Limits {
        header_timeout: Duration::from_secs(c.header_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(c.idle_timeout_secs.max(1)),
        max_connections: c.max_connections.max(1),
        max_per_ip: c.max_connections_per_ip.max(1),
        body_limit: {
            let max_upload = c.max_upload_bytes;
            Arc::new(move |path: &str| guard::body_limit(path, max_upload))
        },
        tls: crate::http::https::acceptor(c)
            .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))?,
        side: Some(crate::live::side_route(&state)),
    }
    .fit_to_fd_limit();
    let app = routes(state.clone());
    server::run(listener, app, limits, shutdown, Duration::from_secs(5)).await?;
    // The HTTP side is closed; in-flight items finish or go back to `queued`.
    state.worker.finished().await;
    tracing::info!("stopped");
    Ok(())
}

/// The built-in engine's downloads at start: `AUTO_DOWNLOAD_MODEL` when it
/// is not here yet, and any download a stop cut short (its `.partial`
/// is resumed). Through the catalogue when the engine is its endpoint.
async fn builtin_downloads(state: Arc<AppState>) {
    use crate::engine::{files, BUILTIN};
    let urls = state.config.ai_urls();
    if !urls.iter().any(|u| u == BUILTIN) {
        return;
    }
    let engine = state.ai.engine().clone();
    let mut keys: Vec<String> = Vec::new();
    if let Some(k) = state
        .config
        .engine
        .auto_download_model
        .as_deref()
        .map(str::trim)
    {
        if files::repo(k).is_none() {
            tracing::warn!(
                key = k,
                "AUTO_DOWNLOAD_MODEL is not a built-in model (small, base, large): ignored"
            );
        } else if engine.store().find(k).is_none() {
            keys.push(k.to_string());
        }
    }
    for &(k, ..) in files::MODELS {
        if engine.store().partial_path(k).exists()
            && engine.store().find(k).is_none()
            && !keys.iter().any(|x| x == k)
        {
            keys.push(k.to_string());
        }
    }
    for key in keys {
        tracing::info!(model = %key, "downloading the built-in depth model");
        let r = if urls.first().map(String::as_str) == Some(BUILTIN) {
            state
                .models
                .download(&key)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        } else {
            engine
                .download(&key, None)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        };
        if let Err(e) = r {
            tracing::warn!(model = %key, error = %e, "the built-in depth model was not downloaded");
        }
    }
}

/// The start-up clean-up of files no row names (see `media::cleanup`).
/// Its last log line says it finished, whatever happened.
async fn remove_orphans(state: Arc<AppState>) {
    let store = state.store.clone();
    let dirs = state.catalog.dirs().clone();
    let grace = Duration::from_secs(state.config.orphan_grace_secs);
    let r =
        tokio::task::spawn_blocking(move || media::cleanup::remove_orphans(&store, &dirs, grace))
            .await;
    match r {
        Ok(Ok(s)) => tracing::info!(
            uploads_removed = s.uploads_removed,
            depth_maps_removed = s.depth_maps_removed,
            splats_removed = s.splats_removed,
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
