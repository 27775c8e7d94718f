//! Follow tables: where each library's reading stands, and what is known
//! of each of its assets. Written with the media rows and jobs they make,
//! in one transaction (`catalog::follow`).

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{Followed, OwnerState};
use crate::{
    storage::{decode, encode, Reader, StorageError, TableSpec},
    table_spec,
};

/// owner's Immich user id -> where the library's reading stands (JSON)
pub const FOLLOW_OWNERS: TableDefinition<&str, &[u8]> = TableDefinition::new("follow_owners");
/// `<owner>\t<Immich asset id>` -> what is known of the asset (JSON); a
/// library's rows by the prefix `<owner>\t`
pub const FOLLOW_ASSETS: TableDefinition<&str, &[u8]> = TableDefinition::new("follow_assets");

pub const TABLES: &[TableSpec] = &[
    table_spec!(FOLLOW_OWNERS, json),
    table_spec!(FOLLOW_ASSETS, json),
];

fn key(owner: &str, asset: &str) -> String {
    format!("{owner}\t{asset}")
}

pub fn owner(txn: &impl Reader, id: &str) -> Result<Option<OwnerState>, StorageError> {
    match txn.table(FOLLOW_OWNERS)?.get(id)? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn owners(txn: &impl Reader) -> Result<Vec<OwnerState>, StorageError> {
    let mut out = Vec::new();
    for e in txn.table(FOLLOW_OWNERS)?.iter()? {
        out.push(decode(e?.1.value())?);
    }
    Ok(out)
}

pub fn put_owner(txn: &WriteTransaction, o: &OwnerState) -> Result<(), StorageError> {
    txn.open_table(FOLLOW_OWNERS)?
        .insert(o.owner_id.as_str(), encode(o).as_slice())?;
    Ok(())
}

pub fn get(txn: &impl Reader, owner: &str, asset: &str) -> Result<Option<Followed>, StorageError> {
    match txn.table(FOLLOW_ASSETS)?.get(key(owner, asset).as_str())? {
        Some(v) => Ok(Some(decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn put(txn: &WriteTransaction, owner: &str, row: &Followed) -> Result<(), StorageError> {
    txn.open_table(FOLLOW_ASSETS)?
        .insert(key(owner, &row.asset_id).as_str(), encode(row).as_slice())?;
    Ok(())
}

pub fn remove(txn: &WriteTransaction, owner: &str, asset: &str) -> Result<(), StorageError> {
    txn.open_table(FOLLOW_ASSETS)?
        .remove(key(owner, asset).as_str())?;
    Ok(())
}

/// Every row of a library, in asset id order, given to `f` one by one
/// (a library of 100,000 photos is read without holding it all).
pub fn each(
    txn: &impl Reader,
    owner: &str,
    mut f: impl FnMut(Followed) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let start = format!("{owner}\t");
    let end = format!("{owner}\n");
    for e in txn
        .table(FOLLOW_ASSETS)?
        .range(start.as_str()..end.as_str())?
    {
        f(decode(e?.1.value())?)?;
    }
    Ok(())
}

/// The rows of a library matching `keep`.
pub fn select(
    txn: &impl Reader,
    owner: &str,
    keep: impl Fn(&Followed) -> bool,
) -> Result<Vec<Followed>, StorageError> {
    let mut out = Vec::new();
    each(txn, owner, |r| {
        if keep(&r) {
            out.push(r);
        }
        Ok(())
    })?;
    Ok(out)
}
