//! Sign-ins on disk, so that a restart signs nobody out (the VR app sends
//! no token: it rides on the session cookie). Only a SHA-256 of each
//! session id is stored. Three tables:
//!
//! - `sessions`: hash -> expiry (unix seconds), as since the first release;
//! - `session_info`: hash -> who and from where (a session without a row
//!   here is an operator's, signed in with `AUTH_TOKEN`, as every session
//!   was before sign-in with Immich, so old data dirs need no migration);
//! - `users`: Immich user id -> the user and the Immich API key this
//!   service holds for them. Keys are secrets: the database file is
//!   readable by its owner only (`storage::open`), and no answer, event or
//!   log line carries one.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    storage::{decode, encode, Reader, StorageError, TableSpec},
    table_spec,
};

/// SHA-256 of a session id -> when it expires (unix seconds)
pub const SESSIONS: TableDefinition<&[u8], u64> = TableDefinition::new("sessions");
/// SHA-256 of a session id -> [`Info`] (JSON)
pub const SESSION_INFO: TableDefinition<&[u8], &[u8]> = TableDefinition::new("session_info");
/// Immich user id -> [`UserRow`] (JSON)
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");

pub const TABLES: &[TableSpec] = &[
    table_spec!(SESSIONS),
    table_spec!(SESSION_INFO, json),
    table_spec!(USERS, json),
];

pub type Hash = [u8; 32];

/// Who a session is and where it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// The Immich user; `None` for an operator's `AUTH_TOKEN` sign-in.
    pub user: Option<String>,
    pub created_at: u64,
    /// "Remember this device": the long lifetime.
    pub remember: bool,
    /// A short description of the browser, for the list of sessions.
    pub device: String,
    /// The address it signed in from.
    pub address: String,
}

/// A person signed in with their Immich account, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    /// The Immich API key this service uses for them.
    pub key: String,
    pub key_id: String,
    /// Made by this service at a password sign-in (deleted from Immich at
    /// the last sign-out); a key the user pasted is theirs to keep.
    pub key_made_here: bool,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("is_admin", &self.is_admin)
            .field("key", &"<redacted>")
            .finish()
    }
}

pub fn hash(id: &str) -> Hash {
    Sha256::digest(id.as_bytes()).into()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Every live session with what is known of it.
pub fn live(txn: &impl Reader) -> Result<Vec<(Hash, u64, Option<Info>)>, StorageError> {
    let now = now();
    let info = txn.table(SESSION_INFO)?;
    let mut out = Vec::new();
    for e in txn.table(SESSIONS)?.iter()? {
        let (k, v) = e?;
        if v.value() <= now {
            continue;
        }
        let Ok(h) = Hash::try_from(k.value()) else {
            continue;
        };
        let i = match info.get(h.as_slice())? {
            Some(raw) => Some(decode::<Info>(raw.value())?),
            None => None,
        };
        out.push((h, v.value(), i));
    }
    Ok(out)
}

/// Every stored user.
pub fn users(txn: &impl Reader) -> Result<Vec<UserRow>, StorageError> {
    let mut out = Vec::new();
    for e in txn.table(USERS)?.iter()? {
        let (_, v) = e?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

/// Stores a session (and its user) and drops the expired ones.
pub fn put(
    txn: &WriteTransaction,
    h: &Hash,
    expires: u64,
    info: &Info,
    user: Option<&UserRow>,
) -> Result<(), StorageError> {
    let now = now();
    let mut t = txn.open_table(SESSIONS)?;
    let mut infos = txn.open_table(SESSION_INFO)?;
    let dead: Vec<Vec<u8>> = t
        .iter()?
        .filter_map(|e| e.ok())
        .filter(|(_, v)| v.value() <= now)
        .map(|(k, _)| k.value().to_vec())
        .collect();
    for k in dead {
        t.remove(k.as_slice())?;
        infos.remove(k.as_slice())?;
    }
    t.insert(h.as_slice(), expires)?;
    infos.insert(h.as_slice(), encode(info).as_slice())?;
    if let Some(u) = user {
        txn.open_table(USERS)?
            .insert(u.id.as_str(), encode(u).as_slice())?;
    }
    Ok(())
}

/// Removes sessions, and users whose key is no longer held.
pub fn remove(
    txn: &WriteTransaction,
    hashes: &[Hash],
    users: &[String],
) -> Result<(), StorageError> {
    let mut t = txn.open_table(SESSIONS)?;
    let mut infos = txn.open_table(SESSION_INFO)?;
    for h in hashes {
        t.remove(h.as_slice())?;
        infos.remove(h.as_slice())?;
    }
    let mut u = txn.open_table(USERS)?;
    for id in users {
        u.remove(id.as_str())?;
    }
    Ok(())
}

/// Updates what is known of a user (name, admin flag) after a check.
pub fn put_user(txn: &WriteTransaction, user: &UserRow) -> Result<(), StorageError> {
    txn.open_table(USERS)?
        .insert(user.id.as_str(), encode(user).as_slice())?;
    Ok(())
}
