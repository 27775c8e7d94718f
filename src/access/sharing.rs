//! What a signed-in person may see, as Immich decides it. Generated 3D
//! assets are one cache keyed by Immich asset id (made once, whoever asked
//! first), but each is shown only to people whose own Immich key can read
//! the asset: they own it, its owner shares their library with them as a
//! partner, or it is in an album shared with them. Items uploaded here
//! belong to whoever uploaded them.
//!
//! Lists (the asset map, "3D only", the queue, events) are filtered with
//! what Immich said of the person a moment ago: the owners whose libraries
//! they see (themselves and partners who share with them) and the assets
//! of albums shared with them. One item (a file, a download, a generate
//! that finds its answer stored) also asks Immich about that asset with
//! the person's key when the lists' answer is no. Both are remembered for
//! `SHARING_CACHE_SECS` (120 s): a share revoked in Immich ends access
//! within that time.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    auth::{Auth, Caller, User, Who},
    immich::{ImmichClient, ImmichError},
    media::MediaRow,
};

/// What Immich said a person sees beyond their own assets.
#[derive(Debug)]
pub struct View {
    /// Whose libraries: themselves and every partner who shares with them.
    owners: HashSet<String>,
    /// Assets of albums they own or were shared.
    album_assets: HashSet<String>,
    at: Instant,
    /// Tells apart two views of one person (for caches of what they see).
    pub generation: u64,
}

/// Whose followed library's figures a caller may see: `user`, the
/// signed-in person asking (`None`: the operator's token, or whoever the
/// mode lets in, who see every library). A person sees their own only,
/// an Immich admin included: the figures name photos, and Immich shows
/// an admin no one else's photos either.
pub fn sees_library(user: Option<&str>, owner: &str) -> bool {
    user.is_none_or(|u| u == owner)
}

/// Whose followed library a caller's "sync now" reads: `None`, every
/// one (operators run the service: the token, whoever the mode lets in,
/// Immich admins; reading a library shows nobody anything); else the
/// signed-in person's own.
pub fn library_scope(caller: &Caller) -> Option<&str> {
    caller.user_id().filter(|_| !caller.is_operator())
}

/// Who is looking.
#[derive(Clone)]
pub enum Viewer {
    /// Sees everything: the operator's token, or whoever the mode lets in.
    All,
    /// A person, with what Immich lets them see.
    User {
        user: Arc<User>,
        view: Arc<View>,
        client: ImmichClient,
    },
}

impl Viewer {
    pub fn sees_all(&self) -> bool {
        matches!(self, Viewer::All)
    }

    /// Whether the figures of `owner`'s followed library are theirs to see.
    pub fn sees_library(&self, owner: &str) -> bool {
        sees_library(self.user_id(), owner)
    }

    pub fn user_id(&self) -> Option<&str> {
        match self {
            Viewer::All => None,
            Viewer::User { user, .. } => Some(&user.id),
        }
    }

    /// From what is known of an item: its owner and its Immich asset id.
    /// An item of unknown owner is seen by operators only (until a look at
    /// Immich says otherwise: [`Sharing::may_see`]).
    pub fn sees(&self, owner: Option<&str>, immich_id: Option<&str>) -> bool {
        match self {
            Viewer::All => true,
            Viewer::User { view, .. } => {
                owner.is_some_and(|o| view.owners.contains(o))
                    || immich_id.is_some_and(|i| view.album_assets.contains(i))
            }
        }
    }

    /// An Immich asset by what Immich shares; a file uploaded here only
    /// by the one who uploaded it.
    pub fn sees_item(&self, m: &MediaRow) -> bool {
        match &m.immich_asset_id {
            Some(_) => self.sees(m.owner.as_deref(), m.immich_asset_id.as_deref()),
            None => self.owns(m),
        }
    }

    /// Whether the item is theirs to delete: their own upload or asset.
    pub fn owns(&self, m: &MediaRow) -> bool {
        match self {
            Viewer::All => true,
            Viewer::User { user, .. } => m.owner.as_deref() == Some(user.id.as_str()),
        }
    }
}

type Checked = HashMap<(String, String), (bool, Instant)>;

pub struct Sharing {
    ttl: Duration,
    views: Mutex<HashMap<String, Arc<View>>>,
    /// One refresh at a time per person.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// (person, asset) -> whether Immich let them read it, and when.
    checked: Mutex<Checked>,
    generations: std::sync::atomic::AtomicU64,
}

/// Entries kept at most in the per-asset cache.
const CHECKED_CAP: usize = 100_000;

impl Sharing {
    pub fn new(ttl: Duration) -> Self {
        Sharing {
            ttl,
            views: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
            checked: Mutex::new(HashMap::new()),
            generations: Default::default(),
        }
    }

    fn fresh(&self, id: &str) -> Option<Arc<View>> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .filter(|v| v.at.elapsed() < self.ttl)
            .cloned()
    }

    /// Who `caller` is as a viewer; a person's view is asked of Immich
    /// when it is older than the cache's lifetime.
    pub async fn viewer(&self, auth: &Auth, caller: &Caller) -> Result<Viewer, ImmichError> {
        let user = match &caller.who {
            Who::Anyone | Who::Token => return Ok(Viewer::All),
            Who::User(u) => u.clone(),
        };
        let client = auth.client_for(&user).ok_or(ImmichError::NotConfigured)?;
        let view = match self.fresh(&user.id) {
            Some(v) => v,
            None => self.refresh(&user, &client).await?,
        };
        Ok(Viewer::User { user, view, client })
    }

    async fn refresh(&self, user: &User, client: &ImmichClient) -> Result<Arc<View>, ImmichError> {
        let lock = self
            .refreshing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(user.id.clone())
            .or_default()
            .clone();
        let _one = lock.lock().await;
        // Another request refreshed it while this one waited.
        if let Some(v) = self.fresh(&user.id) {
            return Ok(v);
        }
        let stale = self
            .views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user.id)
            .cloned();
        let view = match ask(user, client).await {
            Ok((owners, album_assets)) => Arc::new(View {
                owners,
                album_assets,
                at: Instant::now(),
                generation: self
                    .generations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            }),
            Err(ImmichError::KeyRevoked) => return Err(ImmichError::KeyRevoked),
            // Immich is down: what it said last is kept a while longer,
            // else only their own library counts.
            Err(e) => {
                tracing::warn!(user = %user.id, error = %e, "what a person may see could not be asked of Immich");
                match stale {
                    Some(v) => return Ok(v),
                    None => Arc::new(View {
                        owners: HashSet::from([user.id.clone()]),
                        album_assets: HashSet::new(),
                        // Asked again at the next request.
                        at: Instant::now() - self.ttl,
                        generation: self
                            .generations
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    }),
                }
            }
        };
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.id.clone(), view.clone());
        Ok(view)
    }

    /// Whether the viewer may see the item: the lists' answer, else (for
    /// an Immich asset) Immich's own for this asset and their key.
    pub async fn may_see(&self, viewer: &Viewer, m: &MediaRow) -> bool {
        if viewer.sees_item(m) {
            return true;
        }
        let (Viewer::User { user, client, .. }, Some(asset)) = (viewer, &m.immich_asset_id) else {
            return false;
        };
        self.can_read(&user.id, client, asset).await
    }

    /// Immich's answer to "may this key read this asset", remembered.
    pub async fn can_read(&self, user: &str, client: &ImmichClient, asset: &str) -> bool {
        let k = (user.to_string(), asset.to_string());
        if let Some((ok, at)) = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
        {
            if at.elapsed() < self.ttl {
                return *ok;
            }
        }
        let ok = match client.asset(asset).await {
            Ok(_) => true,
            Err(
                ImmichError::NotFound(_) | ImmichError::Denied { .. } | ImmichError::KeyRevoked,
            ) => false,
            // Immich is down: no, for now, and not remembered.
            Err(_) => return false,
        };
        let mut c = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= CHECKED_CAP {
            let ttl = self.ttl;
            c.retain(|_, (_, at)| at.elapsed() < ttl);
            if c.len() >= CHECKED_CAP {
                c.clear();
            }
        }
        c.insert(k, (ok, Instant::now()));
        ok
    }

    /// Forgets what was said of a person (they signed out, or a test).
    pub fn forget(&self, user: &str) {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user);
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(u, _), _| u != user);
    }
}

/// Partners who share with them and the assets of albums they are in.
async fn ask(
    user: &User,
    client: &ImmichClient,
) -> Result<(HashSet<String>, HashSet<String>), ImmichError> {
    let mut owners: HashSet<String> = client
        .partners_sharing_with_me()
        .await?
        .into_iter()
        .collect();
    owners.insert(user.id.clone());
    let mut album_assets = HashSet::new();
    for album in client.albums().await? {
        // Assets of one's own unshared album are one's own already.
        if !album.shared {
            continue;
        }
        for a in client.album(&album.id).await?.assets {
            album_assets.insert(a.id);
        }
    }
    Ok((owners, album_assets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(owners: &[&str], albums: &[&str]) -> Arc<View> {
        Arc::new(View {
            owners: owners.iter().map(|s| s.to_string()).collect(),
            album_assets: albums.iter().map(|s| s.to_string()).collect(),
            at: Instant::now(),
            generation: 0,
        })
    }

    #[test]
    fn a_person_sees_their_own_their_partners_and_shared_albums() {
        let v = Viewer::User {
            user: Arc::new(User::for_tests("alice", false)),
            view: view(&["alice", "bob"], &["a-7"]),
            client: ImmichClient::new("http://127.0.0.1:9", Default::default()),
        };
        assert!(v.sees(Some("alice"), Some("a-1")));
        assert!(v.sees(Some("bob"), Some("b-1")), "a partner's");
        assert!(v.sees(Some("carol"), Some("a-7")), "a shared album's");
        assert!(!v.sees(Some("carol"), Some("c-1")));
        assert!(!v.sees(None, None), "unknown owner: operators only");
        assert!(Viewer::All.sees(None, None));
        assert!(v.sees_library("alice"));
        assert!(
            !v.sees_library("bob"),
            "a partner's library figures are theirs"
        );
        assert!(Viewer::All.sees_library("bob"));
    }
}
