//! Signing in and out. A password sign-in asks Immich (`POST
//! /auth/login`), makes the user an API key of their own with only the
//! permissions this service needs (`POST /api-keys`, named after this
//! service and host), and logs that Immich session out at once: no
//! password and no Immich session is ever stored. A pasted key is checked
//! (`GET /users/me`, `GET /api-keys/me`). Signing out of a user's last
//! session deletes the key this service made. Keys are checked every
//! minute, so one revoked in Immich ends its sign-ins within a minute
//! (at once, when a request meets the refusal first).

use std::{net::IpAddr, sync::Arc, time::Duration};

use super::{
    sessions::{self, Hash, Info},
    Auth, AuthError, Caller, Mode, User, Who, REMEMBER,
};
use crate::{
    config::Secret,
    immich::{
        account::{missing_permissions, KEY_PERMISSIONS},
        ImmichClient, ImmichError,
    },
};

/// A new session: the cookie's value (only ever in the answer), who it
/// is and when it ends.
pub struct SignedIn {
    pub cookie: String,
    pub caller: Caller,
    pub expires: u64,
    pub max_age: u64,
}

/// What a sign-in presents.
pub enum Credentials {
    Password { email: String, password: Secret },
    ApiKey(Secret),
    Token(Secret),
}

impl Credentials {
    /// The account the attempt counts against, for the limiter.
    fn account(&self) -> String {
        match self {
            Credentials::Password { email, .. } => format!("email:{}", email.trim()),
            // Each key its own: a stranger trying keys is held by the
            // address count, and holds nobody else's sign-in.
            Credentials::ApiKey(k) => {
                format!("apikey:{}", hex::encode(&sessions::hash(k.expose())[..8]))
            }
            Credentials::Token(_) => "token".into(),
        }
    }
}

/// Where an attempt comes from.
pub struct From {
    pub address: IpAddr,
    pub device: String,
}

/// Immich failing is not a wrong password: only a 401/403/400 answer to
/// the credentials counts against the person.
fn refused(e: ImmichError, what: &str) -> AuthError {
    match e {
        ImmichError::Denied { .. } | ImmichError::Upstream { status: 400, .. } => {
            AuthError::InvalidCredentials(format!("Immich did not accept {what}"))
        }
        ImmichError::Upstream { status, message } if status >= 500 => AuthError::Immich(
            ImmichError::Unreachable(format!("Immich answered {status}: {message}")),
        ),
        other => AuthError::Immich(other),
    }
}

impl Auth {
    fn server(&self) -> Result<&ImmichClient, AuthError> {
        match (self.mode, &self.immich) {
            (Mode::Immich, Some(c)) => Ok(c),
            _ => Err(AuthError::NoImmich),
        }
    }

    /// One sign-in attempt, limited per address and account.
    pub async fn sign_in(
        &self,
        creds: Credentials,
        remember: bool,
        from: From,
    ) -> Result<SignedIn, AuthError> {
        let account = creds.account();
        if let Some(wait) = self.limiter.check(from.address, &account) {
            crate::metrics::sign_in("throttled");
            return Err(AuthError::Throttled(wait));
        }
        let outcome = match creds {
            Credentials::Token(t) => {
                if self.token_matches(t.expose()) {
                    Ok(None)
                } else {
                    Err(AuthError::InvalidCredentials(
                        "The token is not the server's AUTH_TOKEN".into(),
                    ))
                }
            }
            Credentials::Password { email, password } => {
                self.with_password(email.trim(), &password).await.map(Some)
            }
            Credentials::ApiKey(key) => self.with_key(key).await.map(Some),
        };
        let user = match outcome {
            Ok(u) => u,
            Err(e @ AuthError::InvalidCredentials(_)) => {
                self.limiter.failed(from.address, &account);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.limiter.succeeded(&account);
        self.start_session(user, remember, from).await
    }

    async fn with_password(&self, email: &str, password: &Secret) -> Result<User, AuthError> {
        let server = self.server()?;
        let login = server
            .login(email, password.expose())
            .await
            .map_err(|e| refused(e, "this email and password"))?;
        // A key this service made for them before is reused while it works.
        let known = self.user(&login.user_id);
        let reused = match known {
            // Asked without the revocation hook: a dead key is replaced here.
            Some(u) if u.key_made_here => {
                let c = server.with_key(u.key.clone(), None);
                c.me()
                    .await
                    .is_ok()
                    .then(|| (u.key.clone(), u.key_id.clone()))
            }
            _ => None,
        };
        let made = match reused {
            Some(k) => Ok(k),
            None => {
                let name = format!("ImmichVR on {}", self.host);
                server
                    .create_key(&login.access_token, &name, KEY_PERMISSIONS)
                    .await
                    .map(|k| (k.secret, k.id))
            }
        };
        // The Immich session is ended whatever happened to the key.
        if let Err(e) = server.logout(&login.access_token).await {
            tracing::warn!(error = %e, "the Immich session of a sign-in could not be logged out");
        }
        let (key, key_id) = made.map_err(AuthError::Immich)?;
        Ok(User {
            id: login.user_id,
            name: login.name,
            email: login.user_email,
            is_admin: login.is_admin,
            key,
            key_id,
            key_made_here: true,
        })
    }

    async fn with_key(&self, key: Secret) -> Result<User, AuthError> {
        let server = self.server()?;
        // A key Immich made is printable ASCII; anything else could not
        // even be sent as a header, and is a wrong key, not Immich down.
        let printable = |c: char| c.is_ascii_graphic();
        if key.expose().is_empty() || !key.expose().chars().all(printable) {
            return Err(AuthError::InvalidCredentials(
                "This is not an Immich API key (they are letters, digits and signs, no spaces)"
                    .into(),
            ));
        }
        let client = server.with_key(key.clone(), None);
        // The key's permissions first (asking needs none): a key too
        // narrow is told what it lacks, not that it is wrong.
        let info = client
            .my_key()
            .await
            .map_err(|e| refused(e, "this API key"))?;
        let missing = missing_permissions(&info.permissions);
        if !missing.is_empty() {
            return Err(AuthError::KeyPermissions(missing));
        }
        let me = client.me().await.map_err(|e| refused(e, "this API key"))?;
        Ok(User {
            id: me.id,
            name: me.name,
            email: me.email,
            is_admin: me.is_admin,
            key,
            key_id: info.id,
            key_made_here: false,
        })
    }

    /// Stores the session (and the user's key) before the answer, so a
    /// restart keeps the browser signed in.
    async fn start_session(
        &self,
        user: Option<User>,
        remember: bool,
        from: From,
    ) -> Result<SignedIn, AuthError> {
        let cookie = hex::encode(rand::random::<[u8; 32]>());
        let h = sessions::hash(&cookie);
        let max_age = if remember { REMEMBER } else { self.ttl }.as_secs();
        let now = sessions::now();
        let expires = now + max_age;
        let user = user.map(Arc::new);
        let info = Info {
            user: user.as_ref().map(|u| u.id.clone()),
            created_at: now,
            remember,
            device: from.device,
            address: from.address.to_string(),
        };
        let row = user.as_ref().map(|u| u.row());
        let stored = info.clone();
        self.store
            .write(move |txn| sessions::put(txn, &h, expires, &stored, row.as_ref()))
            .await?;
        let mut live = self.lock();
        let now = sessions::now();
        live.sessions.retain(|_, s| s.expires > now);
        live.sessions.insert(h, super::Session { expires, info });
        let who = match user {
            Some(u) => {
                live.users.insert(u.id.clone(), u.clone());
                Who::User(u)
            }
            None => Who::Token,
        };
        Ok(SignedIn {
            cookie,
            caller: Caller {
                who,
                session: Some(h),
            },
            expires,
            max_age,
        })
    }

    /// The sessions `caller` may see and end: a user's own, or the
    /// token's for an operator who came with it.
    pub fn sessions_of(&self, caller: &Caller) -> Vec<(Hash, u64, Info)> {
        let want = caller.user_id().map(str::to_string);
        let live = self.lock();
        let now = sessions::now();
        let mut out: Vec<(Hash, u64, Info)> = live
            .sessions
            .iter()
            .filter(|(_, s)| s.expires > now && s.info.user == want)
            .map(|(h, s)| (*h, s.expires, s.info.clone()))
            .collect();
        out.sort_by_key(|(_, _, i)| std::cmp::Reverse(i.created_at));
        out
    }

    /// Ends one session of `caller`'s (by its public id).
    pub async fn end_session(&self, caller: &Caller, public: &str) -> Result<(), AuthError> {
        let h = self
            .sessions_of(caller)
            .into_iter()
            .map(|(h, _, _)| h)
            .find(|h| super::public_id(h) == public)
            .ok_or_else(|| AuthError::SessionNotFound(crate::http::error::excerpt(public, 40)))?;
        self.sign_out(&h).await
    }

    /// Ends a session; a user's last one also deletes the key this
    /// service made for them in Immich (best effort: Immich may be down).
    pub async fn sign_out(&self, h: &Hash) -> Result<(), AuthError> {
        let (user, last) = {
            let mut live = self.lock();
            let Some(s) = live.sessions.remove(h) else {
                return Ok(());
            };
            match s.info.user {
                None => (None, false),
                Some(id) => {
                    let others = live
                        .sessions
                        .values()
                        .any(|o| o.info.user.as_deref() == Some(id.as_str()));
                    let user = if others {
                        live.users.get(&id).cloned()
                    } else {
                        live.users.remove(&id)
                    };
                    (user, !others)
                }
            }
        };
        let forget: Vec<String> = match (&user, last) {
            (Some(u), true) => vec![u.id.clone()],
            _ => Vec::new(),
        };
        let hashes = vec![*h];
        self.store
            .write(move |txn| sessions::remove(txn, &hashes, &forget))
            .await?;
        if let (Some(u), true) = (user, last) {
            if u.key_made_here {
                if let Some(client) = self
                    .immich
                    .as_ref()
                    .map(|s| s.with_key(u.key.clone(), None))
                {
                    match client.delete_key(&u.key_id).await {
                        Ok(()) => {
                            tracing::info!(user = %u.id, "signed out; the Immich key made for them was deleted")
                        }
                        Err(e) => {
                            tracing::warn!(user = %u.id, error = %e, "signed out; the Immich key made for them could not be deleted (delete it in Immich's account settings)")
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every minute: each user's key is asked who it belongs to; a key Immich
/// refuses ends that user's sign-ins, and a change of name or admin flag
/// is taken over.
pub async fn check_keys(
    auth: Arc<Auth>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        for u in auth.users() {
            let Some(client) = auth.client_for(&u) else {
                continue;
            };
            // A 401 calls the revocation hook itself.
            match client.me().await {
                Ok(me) if me.is_admin != u.is_admin || me.name != u.name => {
                    let fresh = Arc::new(User {
                        id: u.id.clone(),
                        name: me.name,
                        email: me.email,
                        is_admin: me.is_admin,
                        key: u.key.clone(),
                        key_id: u.key_id.clone(),
                        key_made_here: u.key_made_here,
                    });
                    let row = fresh.row();
                    auth.lock().users.insert(fresh.id.clone(), fresh);
                    let _ = auth
                        .store
                        .write(move |txn| sessions::put_user(txn, &row))
                        .await;
                }
                Ok(_) | Err(_) => {}
            }
        }
    }
}

/// "Chrome on Android": what the list of sessions shows of a browser.
pub fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "unknown".into();
    };
    let browser = [
        ("OculusBrowser", "Quest Browser"),
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("node", "Node.js"),
        ("python", "Python"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    let os = [
        ("Quest", "Meta Quest"),
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        _ => crate::http::error::excerpt(ua, 40),
    }
}
