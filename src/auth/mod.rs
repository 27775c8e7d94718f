//! Who is signed in, and with what. People sign in with their Immich
//! account (the password once, to make an Immich API key of their own, or
//! a key they paste); scripts and generated clients send `AUTH_TOKEN` as
//! a bearer and act as an operator. A browser keeps a session cookie that
//! maps to one of the two. Which paths need a sign-in, and the other
//! checks of a request, are `access`'s; what a signed-in person may see is
//! `access::sharing`'s.

mod caller;
pub mod extract;
pub mod limit;
pub mod routes;
pub mod sessions;
mod signin;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use subtle::ConstantTimeEq;

pub use caller::{Caller, Mode, User, Who};
pub use extract::{Authed, Operator};
pub use sessions::Hash;
pub use signin::{check_keys, SignedIn};

use crate::{
    config::{Config, Secret},
    immich::{ImmichClient, ImmichError},
    storage::{StorageError, Store},
};
use sessions::Info;

pub const COOKIE: &str = "immichvr_session";
/// "Remember this device".
pub const REMEMBER: Duration = Duration::from_secs(30 * 24 * 3600);

struct Session {
    expires: u64,
    info: Info,
}

#[derive(Default)]
struct Live {
    sessions: HashMap<Hash, Session>,
    users: HashMap<String, Arc<User>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    InvalidCredentials(String),
    #[error("Too many failed sign-ins from here or for this account; try again in {0} s")]
    Throttled(u64),
    #[error("Sign-in with an Immich account needs IMMICH_URL; sign in with the operator's AUTH_TOKEN instead")]
    NoImmich,
    #[error("This Immich API key lacks permissions this service needs: {}; make one with at least these (or `all`)", .0.join(", "))]
    KeyPermissions(Vec<&'static str>),
    #[error("No session {0} of yours")]
    SessionNotFound(String),
    #[error(transparent)]
    Immich(#[from] ImmichError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

crate::redb_errors_into!(AuthError);

impl crate::storage::Fault for AuthError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            AuthError::Storage(s) => Some(s),
            AuthError::InvalidCredentials(_)
            | AuthError::Throttled(_)
            | AuthError::NoImmich
            | AuthError::KeyPermissions(_)
            | AuthError::SessionNotFound(_)
            | AuthError::Immich(_) => None,
        }
    }
}

pub struct Auth {
    mode: Mode,
    token: Option<Secret>,
    /// How long a sign-in lasts (`SESSION_TTL_SECS`) unless remembered.
    pub ttl: Duration,
    /// The Immich server, without a key (sign-in); users' clients are
    /// made from it with their keys.
    immich: Option<ImmichClient>,
    store: Store,
    live: Mutex<Live>,
    pub limiter: limit::Limiter,
    /// Names the keys made in Immich ("ImmichVR on <host>").
    host: String,
    me: Weak<Auth>,
}

impl Auth {
    pub fn new(config: &Config, store: Store) -> Arc<Self> {
        let token = config.auth_token.clone().filter(|t| !t.expose().is_empty());
        let immich_url = config
            .immich_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let mode = match (config.auth_off(), immich_url, &token) {
            (true, _, _) => Mode::Off,
            (false, Some(_), _) => Mode::Immich,
            (false, None, Some(_)) => Mode::Token,
            (false, None, None) => Mode::Loopback,
        };
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "this server".into());
        Arc::new_cyclic(|me| Auth {
            mode,
            token,
            ttl: Duration::from_secs(config.session_ttl_secs.max(1)),
            immich: immich_url.map(|u| ImmichClient::new(u, Secret::default())),
            store,
            live: Mutex::new(Live::default()),
            limiter: limit::Limiter::default(),
            host,
            me: me.clone(),
        })
    }

    /// The sign-ins and users stored before a restart.
    pub async fn restore(&self) -> Result<(), StorageError> {
        let (sessions, users) = self
            .store
            .read(|txn| Ok::<_, StorageError>((sessions::live(txn)?, sessions::users(txn)?)))
            .await?;
        let mut live = self.lock();
        for u in users {
            live.users.insert(u.id.clone(), Arc::new(User::from_row(u)));
        }
        for (h, expires, info) in sessions {
            let info = info.unwrap_or(Info {
                user: None,
                created_at: 0,
                remember: false,
                device: String::new(),
                address: String::new(),
            });
            // A user's session whose key is gone is no sign-in.
            if info
                .user
                .as_ref()
                .is_some_and(|u| !live.users.contains_key(u))
            {
                continue;
            }
            live.sessions.insert(h, Session { expires, info });
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether requests need credentials (beyond loopback mode's rule).
    pub fn required(&self) -> bool {
        matches!(self.mode, Mode::Token | Mode::Immich)
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn immich_sign_in(&self) -> bool {
        self.mode == Mode::Immich
    }

    /// Immich's web address, for links (its API base without `/api`).
    pub fn immich_web_url(&self) -> Option<String> {
        let c = self.immich.as_ref().filter(|_| self.mode == Mode::Immich)?;
        Some(c.base().trim_end_matches("/api").to_string())
    }

    fn token_matches(&self, presented: &str) -> bool {
        match &self.token {
            Some(t) => t.expose().as_bytes().ct_eq(presented.as_bytes()).into(),
            None => false,
        }
    }

    /// Who the headers name: the token as a bearer, or a live session
    /// (whatever the mode; `AUTH=off` lets everyone in as `Anyone`). A
    /// bearer that is not the token names nobody, and a session cookie
    /// beside it does not count.
    pub fn caller(&self, headers: &poem::http::HeaderMap) -> Option<Caller> {
        if self.mode == Mode::Off {
            return Some(Caller::anyone());
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if let Some(b) = bearer {
            return self.token_matches(b.trim()).then(Caller::token);
        }
        let h = sessions::hash(&session_cookie(headers)?);
        self.session_caller(&h)
    }

    fn session_caller(&self, h: &Hash) -> Option<Caller> {
        let live = self.lock();
        let s = live
            .sessions
            .get(h)
            .filter(|s| s.expires > sessions::now())?;
        let who = match &s.info.user {
            None => Who::Token,
            Some(id) => Who::User(live.users.get(id)?.clone()),
        };
        Some(Caller {
            who,
            session: Some(*h),
        })
    }

    /// Whether `caller` may still act: its session has not ended, nor
    /// its user's key (open sockets are held to this).
    pub fn still_valid(&self, caller: &Caller) -> bool {
        match (&caller.session, &caller.who) {
            (Some(h), _) => self.session_caller(h).is_some(),
            (None, Who::User(u)) => self.lock().users.contains_key(&u.id),
            (None, Who::Anyone | Who::Token) => true,
        }
    }

    /// An Immich client with the user's own key; told when Immich no
    /// longer accepts it (the user's sign-ins then end).
    pub fn client_for(&self, user: &User) -> Option<ImmichClient> {
        let server = self.immich.as_ref()?;
        let me = self.me.clone();
        let id = user.id.clone();
        Some(server.with_key(
            user.key.clone(),
            Some(Arc::new(move || {
                if let Some(auth) = me.upgrade() {
                    let id = id.clone();
                    crate::tasks::spawn_named("revoke-user", async move {
                        auth.revoke_user(&id, "Immich no longer accepts the key")
                            .await;
                    });
                }
            })),
        ))
    }

    /// Ends every sign-in of a user whose key Immich refused, and forgets
    /// the key (it is useless now).
    pub async fn revoke_user(&self, id: &str, why: &str) {
        let hashes: Vec<Hash> = {
            let mut live = self.lock();
            if live.users.remove(id).is_none() {
                return;
            }
            let hashes: Vec<Hash> = live
                .sessions
                .iter()
                .filter(|(_, s)| s.info.user.as_deref() == Some(id))
                .map(|(h, _)| *h)
                .collect();
            for h in &hashes {
                live.sessions.remove(h);
            }
            hashes
        };
        tracing::warn!(user = %id, sessions = hashes.len(), "signed out: {why}");
        let users = vec![id.to_string()];
        if let Err(e) = self
            .store
            .write(move |txn| sessions::remove(txn, &hashes, &users))
            .await
        {
            tracing::warn!(error = %e, "the ended sign-ins stay on disk until their expiry");
        }
    }

    /// Every signed-in user (for the key checks).
    pub fn users(&self) -> Vec<Arc<User>> {
        self.lock().users.values().cloned().collect()
    }

    /// The users with a live session (whose libraries the live channel
    /// and the sharing cache may have to consider).
    pub fn user(&self, id: &str) -> Option<Arc<User>> {
        self.lock().users.get(id).cloned()
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme
/// name is case-insensitive (RFC 9110, section 11.1).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

fn session_cookie(headers: &poem::http::HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The public name of a session in the list of sessions: a prefix of its
/// hash (not the cookie, which cannot be derived from it).
pub fn public_id(h: &Hash) -> String {
    hex::encode(&h[..8])
}
