//! Settings and model tables. Both are small: read whole, written whole.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{ModelRecord, Settings};
use crate::assets::Kind;
use crate::{
    storage::{decode, encode, Reader, StorageError, TableSpec},
    table_spec,
};

/// `"global"` -> the settings row (JSON); one row, so there is never a
/// second "global" settings row to disagree with the first. `"user:<id>"`
/// -> a signed-in person's own row, once they change anything (until then
/// they have the global one, which an operator sets).
pub const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// model key -> model record (JSON)
pub const MODELS: TableDefinition<&str, &[u8]> = TableDefinition::new("models");

pub const TABLES: &[TableSpec] = &[table_spec!(SETTINGS, json), table_spec!(MODELS, json)];

const GLOBAL: &str = "global";

/// The settings row. A default that is not a depth model of the catalogue
/// (`sharp` was accepted before, and bulk jobs then failed at the AI with
/// "Unknown model") reads as the default one.
pub fn settings(txn: &impl Reader) -> Result<Option<Settings>, StorageError> {
    row(txn, GLOBAL)
}

fn user_key(user: &str) -> String {
    format!("user:{user}")
}

/// The settings a person has: their own row, else the global one.
pub fn settings_of(
    txn: &impl Reader,
    user: Option<&str>,
) -> Result<Option<Settings>, StorageError> {
    if let Some(u) = user {
        if let Some(s) = row(txn, &user_key(u))? {
            return Ok(Some(s));
        }
    }
    settings(txn)
}

/// Stores a person's own row (`None`: the global one).
pub fn put_settings_of(
    txn: &WriteTransaction,
    user: Option<&str>,
    s: &Settings,
) -> Result<(), StorageError> {
    let key = user.map(user_key).unwrap_or_else(|| GLOBAL.into());
    txn.open_table(SETTINGS)?
        .insert(key.as_str(), encode(s).as_slice())?;
    Ok(())
}

fn row(txn: &impl Reader, key: &str) -> Result<Option<Settings>, StorageError> {
    let Some(mut s) = txn
        .table(SETTINGS)?
        .get(key)?
        .map(|v| decode::<Settings>(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    if !depth_models(txn)?.contains(&s.default_depth_model) {
        s.default_depth_model = Settings::default().default_depth_model;
    }
    Ok(Some(s))
}

/// The keys of the catalogue's depth models, in display order: the only
/// models a default for bulk depth maps can name.
pub fn depth_models(txn: &impl Reader) -> Result<Vec<String>, StorageError> {
    Ok(models(txn)?
        .into_iter()
        .filter(|m| m.kind == Kind::Depth)
        .map(|m| m.key)
        .collect())
}

pub fn put_settings(txn: &WriteTransaction, s: &Settings) -> Result<(), StorageError> {
    txn.open_table(SETTINGS)?
        .insert(GLOBAL, encode(s).as_slice())?;
    Ok(())
}

/// The default depth model, for new uploads and imports.
pub fn default_model(txn: &impl Reader) -> Result<String, StorageError> {
    default_model_of(txn, None)
}

/// A person's default depth model (their own upload, their library).
pub fn default_model_of(txn: &impl Reader, user: Option<&str>) -> Result<String, StorageError> {
    Ok(settings_of(txn, user)?
        .unwrap_or_default()
        .default_depth_model)
}

pub fn model(txn: &impl Reader, key: &str) -> Result<Option<ModelRecord>, StorageError> {
    match txn.table(MODELS)?.get(key)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

/// Every model, small, base, large first.
pub fn models(txn: &impl Reader) -> Result<Vec<ModelRecord>, StorageError> {
    let mut out: Vec<ModelRecord> = Vec::new();
    for e in txn.table(MODELS)?.iter()? {
        out.push(decode(e?.1.value())?);
    }
    out.sort_by_key(|m| (super::order(&m.key), m.key.clone()));
    Ok(out)
}

pub fn put_model(txn: &WriteTransaction, m: &ModelRecord) -> Result<(), StorageError> {
    txn.open_table(MODELS)?
        .insert(m.key.as_str(), encode(m).as_slice())?;
    Ok(())
}

/// At every start: the settings row and the seeded models exist (a fresh
/// database, or one made before them); nothing present is changed.
pub fn ensure_seeded(txn: &WriteTransaction) -> Result<bool, StorageError> {
    let mut changed = false;
    if settings(txn)?.is_none() {
        put_settings(txn, &Settings::default())?;
        changed = true;
    }
    for m in super::seeds() {
        if model(txn, &m.key)?.is_none() {
            put_model(txn, &m)?;
            changed = true;
        }
    }
    Ok(changed)
}
