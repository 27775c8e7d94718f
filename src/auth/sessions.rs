//! Browser sessions on disk, so that a restart does not sign out the VR
//! app (which sends no token: it rides on the session cookie a sign-in
//! through `/admin/` on the same origin set). Only a SHA-256 of each
//! session id is stored.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use sha2::{Digest, Sha256};

use crate::{
    storage::{Reader, StorageError, TableSpec},
    table_spec,
};

/// SHA-256 of a session id -> when it expires (unix seconds)
pub const SESSIONS: TableDefinition<&[u8], u64> = TableDefinition::new("sessions");

pub const TABLES: &[TableSpec] = &[table_spec!(SESSIONS)];

pub fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Every live session.
pub fn live(txn: &impl Reader) -> Result<Vec<([u8; 32], u64)>, StorageError> {
    let now = now();
    let mut out = Vec::new();
    for e in txn.table(SESSIONS)?.iter()? {
        let (k, v) = e?;
        if v.value() > now {
            if let Ok(h) = <[u8; 32]>::try_from(k.value()) {
                out.push((h, v.value()));
            }
        }
    }
    Ok(out)
}

/// Stores a session and drops the expired ones.
pub fn put(txn: &WriteTransaction, h: &[u8; 32], expires: u64) -> Result<(), StorageError> {
    let mut t = txn.open_table(SESSIONS)?;
    let now = now();
    let dead: Vec<Vec<u8>> = t
        .iter()?
        .filter_map(|e| e.ok())
        .filter(|(_, v)| v.value() <= now)
        .map(|(k, _)| k.value().to_vec())
        .collect();
    for k in dead {
        t.remove(k.as_slice())?;
    }
    t.insert(h.as_slice(), expires)?;
    Ok(())
}

pub fn remove(txn: &WriteTransaction, h: &[u8; 32]) -> Result<(), StorageError> {
    txn.open_table(SESSIONS)?.remove(h.as_slice())?;
    Ok(())
}
