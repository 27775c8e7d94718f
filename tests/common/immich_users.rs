//! The Immich stand-in's people, as Immich 3.x has them
//! (`tests/fixtures/immich/openapi-3.0.3.json`): accounts with passwords
//! (one OAuth-only), login sessions (`POST /auth/login`, bearer access
//! tokens, `POST /auth/logout`), API keys with permissions (`POST
//! /api-keys` with a session, `GET /api-keys/me`, `DELETE /api-keys/{id}`
//! with `apiKey.delete`), `GET /users/me`, partners (`GET
//! /partners?direction=shared-with`) and albums (`GET /albums`, `GET
//! /albums/{id}`); and Immich's rule of who may read an asset: its owner,
//! a partner the owner shares with, a member of an album holding it.

#![allow(clippy::result_large_err)] // a stand-in answers its refusals whole

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex,
};

use poem::{
    handler,
    http::StatusCode,
    web::{Data, Json, Path, Query},
    IntoResponse, Request, Response,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::immich_standin::{err, Inner, KEY, KEY_NO_DOWNLOAD, OWNER};

/// The admin: the service key's user, who owns the default library.
pub const ADMIN: &str = OWNER;
pub const ALICE: &str = "a11ce000-0000-4000-8000-00000000000a";
pub const BOB: &str = "b0b00000-0000-4000-8000-00000000000b";
/// An account that signs in to Immich with OAuth only (no password).
pub const CAROL: &str = "ca401000-0000-4000-8000-00000000000c";

pub struct Account {
    pub id: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    /// `None`: OAuth only.
    pub password: Option<&'static str>,
    pub is_admin: bool,
}

pub const ACCOUNTS: &[Account] = &[
    Account {
        id: ADMIN,
        email: "admin@example.org",
        name: "Admin",
        password: Some("admin-password"),
        is_admin: true,
    },
    Account {
        id: ALICE,
        email: "alice@example.org",
        name: "Alice",
        password: Some("alice-password"),
        is_admin: false,
    },
    Account {
        id: BOB,
        email: "bob@example.org",
        name: "Bob",
        password: Some("bob-password"),
        is_admin: false,
    },
    Account {
        id: CAROL,
        email: "carol@example.org",
        name: "Carol",
        password: None,
        is_admin: false,
    },
];

#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    pub secret: String,
    pub user: String,
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Album {
    pub id: String,
    pub owner: String,
    pub members: Vec<String>,
    pub assets: Vec<String>,
}

#[derive(Default)]
pub struct People {
    pub keys: Mutex<Vec<Key>>,
    /// Live login sessions: access token -> user.
    pub sessions: Mutex<Vec<(String, String)>>,
    pub logins: AtomicUsize,
    pub logouts: AtomicUsize,
    /// (sharer, receiver): the sharer's library is visible to the receiver.
    pub partners: Mutex<Vec<(String, String)>>,
    pub albums: Mutex<Vec<Album>>,
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn account(id: &str) -> Option<&'static Account> {
    ACCOUNTS.iter().find(|a| a.id == id)
}

impl People {
    pub fn new() -> Self {
        let p = People::default();
        let all = vec!["all".to_string()];
        p.keys.lock().unwrap().extend([
            Key {
                id: uuid(),
                secret: KEY.into(),
                user: ADMIN.into(),
                name: "service".into(),
                permissions: all,
            },
            Key {
                id: uuid(),
                secret: KEY_NO_DOWNLOAD.into(),
                user: ADMIN.into(),
                name: "no download".into(),
                permissions: ["asset.read", "asset.view", "asset.statistics", "user.read"]
                    .map(String::from)
                    .to_vec(),
            },
        ]);
        p
    }

    /// A key made by hand in Immich's settings (what an OAuth-only user pastes).
    pub fn make_key(&self, user: &str, permissions: &[&str]) -> String {
        let secret = format!("handmade-{}", uuid());
        self.keys.lock().unwrap().push(Key {
            id: uuid(),
            secret: secret.clone(),
            user: user.into(),
            name: "by hand".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        });
        secret
    }

    pub fn key(&self, secret: &str) -> Option<Key> {
        self.keys
            .lock()
            .unwrap()
            .iter()
            .find(|k| k.secret == secret)
            .cloned()
    }

    pub fn keys_of(&self, user: &str) -> Vec<Key> {
        self.keys
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.user == user)
            .cloned()
            .collect()
    }

    /// What a user does in Immich's settings: deletes every key of theirs.
    pub fn revoke_keys_of(&self, user: &str) {
        self.keys.lock().unwrap().retain(|k| k.user != user);
    }

    pub fn share(&self, sharer: &str, receiver: &str) {
        self.partners
            .lock()
            .unwrap()
            .push((sharer.into(), receiver.into()));
    }

    pub fn unshare(&self, sharer: &str, receiver: &str) {
        self.partners
            .lock()
            .unwrap()
            .retain(|(s, r)| !(s == sharer && r == receiver));
    }

    pub fn album(&self, owner: &str, members: &[&str], assets: &[&str]) -> String {
        let id = uuid();
        self.albums.lock().unwrap().push(Album {
            id: id.clone(),
            owner: owner.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            assets: assets.iter().map(|a| a.to_string()).collect(),
        });
        id
    }

    pub fn live_sessions(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    /// Immich's rule: the owner, a partner the owner shares with, or a
    /// member (or the owner) of an album that holds the asset.
    pub fn can_read(&self, user: &str, asset: &Value) -> bool {
        let owner = asset["ownerId"].as_str().unwrap_or_default();
        let id = asset["id"].as_str().unwrap_or_default();
        owner == user
            || self
                .partners
                .lock()
                .unwrap()
                .iter()
                .any(|(s, r)| s == owner && r == user)
            || self.albums.lock().unwrap().iter().any(|a| {
                (a.owner == user || a.members.iter().any(|m| m == user))
                    && a.assets.iter().any(|x| x == id)
            })
    }

    /// Whose libraries show in a user's timeline: theirs and their partners'.
    pub fn in_timeline(&self, user: &str, asset: &Value) -> bool {
        let owner = asset["ownerId"].as_str().unwrap_or_default();
        owner == user
            || self
                .partners
                .lock()
                .unwrap()
                .iter()
                .any(|(s, r)| s == owner && r == user)
    }
}

/// The user and permissions of a request's `x-api-key`, or the Immich
/// 401 for an unknown key.
pub fn caller(inner: &Inner, req: &Request) -> Result<Key, Response> {
    let secret = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    inner
        .people
        .key(secret)
        .ok_or_else(|| err(401, "Unauthorized", "Invalid API key"))
}

/// Immich's 403 for a key without `perm`.
pub fn require(key: &Key, perm: &str) -> Result<(), Response> {
    if key.permissions.iter().any(|p| p == "all" || p == perm) {
        Ok(())
    } else {
        Err(err(
            403,
            "Forbidden",
            &format!("Missing required permission: {perm}"),
        ))
    }
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
}

fn session_user(inner: &Inner, req: &Request) -> Option<String> {
    let token = bearer(req)?;
    inner
        .people
        .sessions
        .lock()
        .unwrap()
        .iter()
        .find(|(t, _)| *t == token)
        .map(|(_, u)| u.clone())
}

fn created(v: Value) -> Response {
    let mut r = Json(v).into_response();
    r.set_status(StatusCode::CREATED);
    r
}

#[handler]
pub fn login(inner: Data<&Arc<Inner>>, body: Json<Value>) -> Response {
    let email = body["email"].as_str().unwrap_or_default();
    let password = body["password"].as_str().unwrap_or_default();
    let Some(a) = ACCOUNTS
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(email) && a.password.is_some_and(|p| p == password))
    else {
        return err(401, "Unauthorized", "Incorrect email or password");
    };
    let token = format!("session-{}", uuid());
    inner
        .people
        .sessions
        .lock()
        .unwrap()
        .push((token.clone(), a.id.into()));
    inner.people.logins.fetch_add(1, Ordering::SeqCst);
    created(json!({
        "accessToken": token, "userId": a.id, "userEmail": a.email, "name": a.name,
        "isAdmin": a.is_admin, "profileImagePath": "", "shouldChangePassword": false, "isOnboarded": true
    }))
}

#[handler]
pub fn logout(inner: Data<&Arc<Inner>>, req: &Request) -> Response {
    let Some(token) = bearer(req) else {
        return err(401, "Unauthorized", "Authentication required");
    };
    inner
        .people
        .sessions
        .lock()
        .unwrap()
        .retain(|(t, _)| *t != token);
    inner.people.logouts.fetch_add(1, Ordering::SeqCst);
    Json(json!({"successful": true, "redirectUri": "/auth/login?autoLaunch=0"})).into_response()
}

fn key_json(k: &Key) -> Value {
    json!({"id": k.id, "name": k.name, "createdAt": "2026-12-01T10:00:00.000Z",
           "updatedAt": "2026-12-01T10:00:00.000Z", "permissions": k.permissions})
}

#[handler]
pub fn create_key(inner: Data<&Arc<Inner>>, req: &Request, body: Json<Value>) -> Response {
    // A session's bearer token (or a key with apiKey.create).
    let user = match session_user(&inner, req) {
        Some(u) => u,
        None => match caller(&inner, req).and_then(|k| require(&k, "apiKey.create").map(|_| k)) {
            Ok(k) => k.user,
            Err(r) => return r,
        },
    };
    let Some(perms) = body["permissions"].as_array() else {
        return err(400, "Bad Request", "permissions must be an array");
    };
    let k = Key {
        id: uuid(),
        secret: format!("made-{}", uuid()),
        user,
        name: body["name"].as_str().unwrap_or("API Key").to_string(),
        permissions: perms
            .iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect(),
    };
    inner.people.keys.lock().unwrap().push(k.clone());
    created(json!({"secret": k.secret, "apiKey": key_json(&k)}))
}

#[handler]
pub fn my_key(inner: Data<&Arc<Inner>>, req: &Request) -> Response {
    match caller(&inner, req) {
        Ok(k) => Json(key_json(&k)).into_response(),
        Err(r) => r,
    }
}

#[handler]
pub fn delete_key(inner: Data<&Arc<Inner>>, req: &Request, Path(id): Path<String>) -> Response {
    let k = match caller(&inner, req).and_then(|k| require(&k, "apiKey.delete").map(|_| k)) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let mut keys = inner.people.keys.lock().unwrap();
    let before = keys.len();
    keys.retain(|x| !(x.id == id && x.user == k.user));
    if keys.len() == before {
        return err(400, "Bad Request", "API Key not found");
    }
    Response::builder().status(StatusCode::NO_CONTENT).finish()
}

/// `UserAdminResponseDto` of an account.
pub fn user_json(id: &str) -> Value {
    let a = account(id).expect("a known account");
    json!({
        "id": a.id, "email": a.email, "name": a.name, "isAdmin": a.is_admin,
        "avatarColor": "primary", "createdAt": "2025-01-01T00:00:00.000Z", "deletedAt": null,
        "license": null, "oauthId": if a.password.is_none() { "oauth-sub-1" } else { "" },
        "profileChangedAt": "2025-01-01T00:00:00.000Z", "profileImagePath": "",
        "quotaSizeInBytes": null, "quotaUsageInBytes": 0, "shouldChangePassword": false,
        "status": "active", "storageLabel": null, "updatedAt": "2025-01-01T00:00:00.000Z"
    })
}

#[handler]
pub fn me(inner: Data<&Arc<Inner>>, req: &Request) -> Response {
    let k = match caller(&inner, req).and_then(|k| require(&k, "user.read").map(|_| k)) {
        Ok(k) => k,
        Err(r) => return r,
    };
    Json(user_json(&k.user)).into_response()
}

#[derive(Deserialize)]
pub struct Direction {
    direction: Option<String>,
}

#[handler]
pub fn partners(inner: Data<&Arc<Inner>>, req: &Request, q: Query<Direction>) -> Response {
    let k = match caller(&inner, req).and_then(|k| require(&k, "partner.read").map(|_| k)) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let shared_with = match q.direction.as_deref() {
        Some("shared-with") => true,
        Some("shared-by") => false,
        _ => {
            return err(
                400,
                "Bad Request",
                "direction must be one of: shared-by, shared-with",
            )
        }
    };
    let list: Vec<Value> = inner
        .people
        .partners
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(s, r)| match shared_with {
            true if *r == k.user => Some(s.clone()),
            false if *s == k.user => Some(r.clone()),
            _ => None,
        })
        .map(|id| {
            let a = account(&id).unwrap();
            json!({"id": a.id, "email": a.email, "name": a.name, "avatarColor": "primary",
                   "profileChangedAt": "2025-01-01T00:00:00.000Z", "profileImagePath": "", "inTimeline": true})
        })
        .collect();
    Json(list).into_response()
}

fn album_json(inner: &Inner, a: &Album, with_assets: bool) -> Value {
    let assets: Vec<Value> = if with_assets {
        inner
            .assets
            .lock()
            .unwrap()
            .iter()
            .filter(|x| a.assets.iter().any(|id| x.json["id"] == id.as_str()))
            .map(|x| x.json.clone())
            .collect()
    } else {
        Vec::new()
    };
    let owner = user_json(&a.owner);
    let mut v = json!({
        "id": a.id, "albumName": "Shared", "description": "", "albumThumbnailAssetId": null,
        "createdAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-01T00:00:00.000Z",
        "ownerId": a.owner, "owner": owner, "shared": !a.members.is_empty(),
        "albumUsers": a.members.iter().map(|m| json!({"user": user_json(m), "role": "viewer"})).collect::<Vec<_>>(),
        "hasSharedLink": false, "isActivityEnabled": true, "assetCount": a.assets.len(),
        "assets": assets, "order": "desc"
    });
    // Immich leaves it out of an empty album (the spec has it a date, never null).
    if !a.assets.is_empty() {
        v["lastModifiedAssetTimestamp"] = json!("2025-03-10T10:00:00.000Z");
    }
    v
}

#[handler]
pub fn albums(inner: Data<&Arc<Inner>>, req: &Request) -> Response {
    let k = match caller(&inner, req).and_then(|k| require(&k, "album.read").map(|_| k)) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let list: Vec<Value> = inner
        .people
        .albums
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.owner == k.user || a.members.contains(&k.user))
        .map(|a| album_json(&inner, a, false))
        .collect();
    Json(list).into_response()
}

#[handler]
pub fn album(inner: Data<&Arc<Inner>>, req: &Request, Path(id): Path<String>) -> Response {
    let k = match caller(&inner, req).and_then(|k| require(&k, "album.read").map(|_| k)) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let found = inner
        .people
        .albums
        .lock()
        .unwrap()
        .iter()
        .find(|a| a.id == id && (a.owner == k.user || a.members.contains(&k.user)))
        .cloned();
    match found {
        Some(a) => Json(album_json(&inner, &a, true)).into_response(),
        None => err(400, "Bad Request", "Not found or no album.read access"),
    }
}
