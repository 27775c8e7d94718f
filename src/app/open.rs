//! Start-up, in order: directories, the database (migrated and checked),
//! what a crash left behind, items found `processing`, then the services.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    ai::AiClient,
    auth::Auth,
    catalog::{Catalog, CatalogError},
    config::Config,
    events::EventBus,
    immich::{import::Importer, ImmichClient},
    media::{self, gate::Gate, MediaDirs},
    settings::{self, manager::ModelManager},
    state::AppState,
    storage::{self, StorageError, Store},
    worker::Worker,
};

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
    Recover(#[from] CatalogError),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(#[from] crate::access::PolicyError),
}

pub(super) fn ensure_dir(path: &PathBuf) -> Result<(), StartError> {
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
        splats: config.splats_dir(),
    };
    for d in [
        &config.data_dir,
        &dirs.uploads,
        &dirs.depth_maps,
        &dirs.splats,
    ] {
        ensure_dir(d)?;
    }
    let store = open_store(&config).await?;
    remove_leftovers(&config, &dirs)?;
    if store.health().write_error.is_none() {
        // A database from before the settings and the catalogue, or a new one.
        store
            .write(settings::store::ensure_seeded)
            .await
            .map_err(|source| StartError::Storage {
                path: config.database_path(),
                source,
            })?;
    }
    let catalog = Catalog::new(store.clone(), EventBus::new(1024), dirs);
    if let Some(reason) = store.health().write_error {
        tracing::warn!(
            reason,
            "items found processing stay so: the database takes no writes"
        );
    } else {
        let requeued = catalog.requeue_in_flight().await?;
        if !requeued.is_empty() {
            tracing::warn!(
                items = requeued.len(),
                "items found processing at start-up returned to the queue"
            );
        }
    }
    let engine = crate::engine::Engine::new(&config, Some(catalog.events().clone()));
    let ai = AiClient::new(&config, engine);
    let immich = match (&config.immich_url, &config.immich_api_key) {
        (Some(url), Some(key)) if !url.trim().is_empty() && !key.expose().is_empty() => {
            Some(ImmichClient::new(url, key.clone()))
        }
        _ => None,
    };
    let models = ModelManager::new(catalog.clone(), ai.clone(), &config);
    let auth = Auth::new(&config, store.clone());
    if let Err(e) = auth.restore().await {
        tracing::warn!(error = %e, "stored sign-ins not restored");
    }
    let worker = Worker::new(
        &config,
        catalog.clone(),
        ai.clone(),
        immich.clone(),
        auth.clone(),
        models.clone(),
        shutdown.clone(),
    );
    let follower = crate::follow::Follower::new(
        &config,
        catalog.clone(),
        immich.clone(),
        auth.clone(),
        worker.clone(),
    );
    let access = Arc::new(crate::access::Policy::new(&config, auth.clone())?);
    let sharing = Arc::new(crate::access::sharing::Sharing::new(Duration::from_secs(
        config.sharing_cache_secs.max(1),
    )));
    Ok(Arc::new(AppState {
        access,
        sharing,
        uploads: Gate::new(
            config.upload_concurrency,
            config.upload_queue,
            Duration::from_secs(config.upload_wait_secs),
        ),
        auth,
        config,
        store,
        catalog,
        ai,
        worker,
        immich,
        models,
        importer: Arc::new(Importer::default()),
        follower,
        shutdown,
    }))
}

async fn open_store(config: &Config) -> Result<Store, StartError> {
    let path = config.database_path();
    let options = storage::Options {
        compact_after_deletes: config.compact_after_deletes,
        compact_min_free: config.compact_min_free_bytes,
        integrity_check_max_bytes: config.integrity_check_max_bytes,
        headroom: media::upload::DISK_HEADROOM,
        ..Default::default()
    };
    let p = path.clone();
    tokio::task::spawn_blocking(move || Store::open(&p, &crate::schema::SCHEMA, options))
        .await
        .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))?
        .map_err(|source| StartError::Storage { path, source })
}

/// What a crash left half-written. Runs before the server accepts
/// requests, so nothing can be writing these yet.
fn remove_leftovers(config: &Config, dirs: &MediaDirs) -> Result<(), StartError> {
    for d in [&dirs.uploads, &dirs.depth_maps, &dirs.splats] {
        let n = media::cleanup::remove_temp_files(d).map_err(|source| StartError::Dir {
            path: d.clone(),
            source,
        })?;
        if n > 0 {
            tracing::info!(dir = %d.display(), files = n, "removed unfinished temporary files");
        }
    }
    match storage::backup::remove_partials(&config.data_dir.join("backups")) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed unfinished backups (.partial)"),
        Err(e) => tracing::warn!(error = %e, "cannot clean the backups directory"),
    }
    Ok(())
}
