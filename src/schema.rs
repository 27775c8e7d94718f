//! The database's layout as a whole: every domain's tables and the chain
//! of migrations. Sits above the domains, so that `storage` knows none of
//! them and each domain declares its tables once.

use redb::WriteTransaction;

use crate::{
    assets, auth, follow, media, queue, settings,
    storage::{self, Migration, Schema, StorageError},
};

pub static SCHEMA: Schema = Schema {
    tables: &[
        storage::TABLES,
        media::store::TABLES,
        queue::store::TABLES,
        assets::store::TABLES,
        settings::store::TABLES,
        auth::sessions::TABLES,
        follow::store::TABLES,
    ],
    migrations: &[
        Migration {
            to: 2,
            what: "file locations relative to their directory, and an index of files",
            run: media::store::migrate_to_v2,
        },
        Migration {
            to: 3,
            what: "generated assets per model (each depth map becomes a depth asset), jobs with a kind and a model",
            run: migrate_to_v3,
        },
        Migration {
            to: 4,
            what: "following Immich: where each library's reading stands, and what is known of each asset",
            run: migrate_to_v4,
        },
    ],
};

/// Schema 3: depth maps become `depth` assets of the model that made them
/// (`small` when unknown); queue rows name their kind and model and are in
/// the job index; settings and the model catalogue exist.
fn migrate_to_v3(txn: &WriteTransaction) -> Result<(), StorageError> {
    let assets = assets::store::migrate_depth_maps(txn)?;
    let jobs = queue::store::migrate_jobs(txn)?;
    settings::store::ensure_seeded(txn)?;
    tracing::info!(
        depth_maps = assets,
        jobs,
        "schema 3: depth maps are assets now"
    );
    Ok(())
}

/// Schema 4: the follow tables. They start empty: the first round reads
/// the whole library, and finds the depth maps made before as made (no
/// job twice, none made again).
fn migrate_to_v4(txn: &WriteTransaction) -> Result<(), StorageError> {
    for t in follow::store::TABLES {
        (t.create)(txn)?;
    }
    tracing::info!("schema 4: following Immich");
    Ok(())
}
