//! The database's layout as a whole: every domain's tables and the chain
//! of migrations. Sits above the domains, so that `storage` knows none of
//! them and each domain declares its tables once.

use crate::{
    media, queue,
    storage::{self, Migration, Schema},
};

pub static SCHEMA: Schema = Schema {
    tables: &[storage::TABLES, media::store::TABLES, queue::store::TABLES],
    migrations: &[Migration {
        to: 2,
        what: "file locations relative to their directory, and an index of files",
        run: media::store::migrate_to_v2,
    }],
};
