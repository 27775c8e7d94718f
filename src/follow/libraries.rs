//! Which libraries are followed now, and with which key: the service
//! key's (`IMMICH_API_KEY`, whose user `GET /users/me` names), and each
//! signed-in person's who turned `followLibrary` on, read with the key
//! this service holds for them (a person who signed out of every session
//! has none: they are no longer followed). Also the requests to read
//! some of them now ("sync now", a person turning following on).

use std::collections::HashSet;

use super::{settings_for, store};
use crate::{
    auth::Auth,
    immich::ImmichClient,
    storage::{StorageError, Store},
};

/// A library to read this time, and the key to read it with.
pub struct Library {
    pub owner_id: String,
    pub owner_name: String,
    pub client: ImmichClient,
}

/// What one look found.
#[derive(Default)]
pub struct Found {
    pub libraries: Vec<Library>,
    /// The service key's user, when its key answered.
    pub service: Option<String>,
    /// Why the service key's library cannot be read.
    pub error: Option<String>,
}

/// The libraries followed now. `service`: the service key's client.
pub async fn find(
    store: &Store,
    auth: &Auth,
    service: Option<&ImmichClient>,
    sync_on: bool,
) -> Result<Found, StorageError> {
    let mut found = Found::default();
    if let Some(client) = service {
        match client.me().await {
            Ok(me) => {
                found.service = Some(me.id.clone());
                found.libraries.push(Library {
                    owner_id: me.id,
                    owner_name: me.name,
                    client: client.clone(),
                });
            }
            Err(e) => {
                found.error = Some(format!(
                    "cannot tell whose library the key reads (GET /users/me; the key needs the user.read permission): {e}"
                ));
            }
        }
    }
    let users = auth.users();
    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let svc = found.service.clone();
    let wanted: HashSet<String> = store
        .read(move |txn| {
            let mut out = HashSet::new();
            for id in ids {
                if settings_for(txn, &id, sync_on, svc.as_deref())?.follow {
                    out.insert(id);
                }
            }
            Ok::<_, StorageError>(out)
        })
        .await?;
    for u in users {
        // The service key's library is read once, with the service key.
        if !wanted.contains(&u.id) || found.service.as_deref() == Some(u.id.as_str()) {
            continue;
        }
        if let Some(client) = auth.client_for(&u) {
            found.libraries.push(Library {
                owner_id: u.id.clone(),
                owner_name: u.name.clone(),
                client,
            });
        }
    }
    Ok(found)
}

/// Libraries with rows here that are not followed any more (and not yet
/// marked so). Only when the service key's user is known: a key that did
/// not answer this time says nothing of its library.
pub async fn stopped(store: &Store, found: &Found) -> Result<Vec<String>, StorageError> {
    if found.error.is_some() {
        return Ok(Vec::new());
    }
    let now: HashSet<String> = found.libraries.iter().map(|l| l.owner_id.clone()).collect();
    store
        .read(move |txn| {
            Ok::<_, StorageError>(
                store::owners(txn)?
                    .into_iter()
                    .filter(|o| o.stopped_at.is_none() && !now.contains(&o.owner_id))
                    .map(|o| o.owner_id)
                    .collect(),
            )
        })
        .await
}

/// Libraries asked to be read now, until the follower takes them.
#[derive(Default)]
pub struct Requests {
    /// Every followed library.
    pub all: bool,
    pub owners: HashSet<String>,
    /// Read everything (notice deletions now, not within a day).
    pub full: bool,
}

impl Requests {
    pub fn add(&mut self, owner: Option<&str>, full: bool) {
        match owner {
            None => self.all = true,
            Some(o) => {
                self.owners.insert(o.to_string());
            }
        }
        self.full |= full;
    }

    pub fn wants(&self, owner: &str) -> bool {
        self.all || self.owners.contains(owner)
    }
}
