//! Start-up clean-up of the media directories.
//!
//! Temporary files (`.tmp-*`) are left by a crash mid-write and go before
//! the server accepts requests. A finished file that no row names is left
//! when the process died between the rename and the commit; it goes only
//! when the file index (`media::store::FILES`, written in the same
//! transaction as every row) does not name it **and** it is older than a
//! grace period, because a new upload's file is renamed into place just
//! before its row commits. A file a row names is never touched, and when
//! the database cannot be read reliably nothing is removed at all.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use uuid::Uuid;

use super::{store, FileDir, MediaDirs, MediaError};
use crate::storage::Store;

/// Removes `.tmp-*` files in `dir`; returns how many.
pub fn remove_temp_files(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            std::fs::remove_file(entry.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// What one run of the orphan clean-up did, per directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub uploads_removed: usize,
    pub depth_maps_removed: usize,
    pub splats_removed: usize,
    /// Files a row names (kept).
    pub named: usize,
    /// Unnamed files younger than the grace period (kept for now).
    pub too_young: usize,
}

/// Whether `name` is one of ours: `<uuid>.<ext>`. Anything else in the
/// directory (an operator's own files) is never ours to remove.
fn ours(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("");
    Uuid::parse_str(stem).is_ok() && name.len() > stem.len()
}

/// Removes the files no row names that are older than `grace`.
pub fn remove_orphans(
    store: &Store,
    dirs: &MediaDirs,
    grace: Duration,
) -> Result<Swept, MediaError> {
    let mut swept = Swept::default();
    for which in [FileDir::Uploads, FileDir::DepthMaps, FileDir::Splats] {
        for entry in std::fs::read_dir(dirs.dir(which))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !ours(&name) || !entry.file_type()?.is_file() {
                continue;
            }
            // Every lookup asks the database's health first: a read error
            // marks it, and from then on nothing more is removed.
            let health = store.health();
            if let Some(d) = health.damage {
                return Err(MediaError::Io(std::io::Error::other(format!(
                    "stopped: the database is damaged ({d})"
                ))));
            }
            let key = which.key(&name);
            let owner = store.read_blocking(|txn| store::file_owner(txn, &key))?;
            if owner.is_some() {
                swept.named += 1;
                continue;
            }
            let age = entry
                .metadata()?
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or(Duration::ZERO);
            if age < grace {
                swept.too_young += 1;
                continue;
            }
            std::fs::remove_file(entry.path())?;
            match which {
                FileDir::Uploads => swept.uploads_removed += 1,
                FileDir::DepthMaps => swept.depth_maps_removed += 1,
                FileDir::Splats => swept.splats_removed += 1,
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::ours;

    #[test]
    fn only_our_names_are_candidates() {
        assert!(ours("01a2293f-5381-75c2-88a2-d8177fb1c102.png"));
        assert!(!ours("01a2293f-5381-75c2-88a2-d8177fb1c102"));
        assert!(!ours("holiday.png"));
        assert!(!ours(".tmp-01a2293f-5381-75c2-88a2-d8177fb1c102"));
    }
}
