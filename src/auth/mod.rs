//! Optional authentication. With `AUTH_TOKEN` set, every `/api/*` route
//! and `/metrics` needs `Authorization: Bearer <token>` or the session
//! cookie that `POST /api/auth/login` sets (what the admin page and its
//! EventSource use: the raw token never travels in a URL). Which paths
//! need it, and the other checks of a request, are `access`'s.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use poem::Request;
use poem_openapi::{
    registry::{MetaSecurityScheme, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};
use subtle::ConstantTimeEq;

use crate::config::Secret;

pub mod routes;
pub mod sessions;

pub const COOKIE: &str = "immichvr_session";

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Nobody in particular: the service needs no credentials.
    Open,
    /// The `AUTH_TOKEN`, as a bearer.
    Token,
    /// A browser session (SHA-256 of its id).
    Session([u8; 32]),
}
const SCHEME: &str = "bearerAuth";

pub struct Auth {
    token: Option<Secret>,
    /// How long a sign-in lasts (`SESSION_TTL_SECS`).
    pub ttl: Duration,
    /// SHA-256 of each live session id -> expiry (unix seconds); a copy of
    /// the `sessions` table, so a request never waits on the database.
    sessions: Mutex<HashMap<[u8; 32], u64>>,
}

impl Auth {
    pub fn new(token: Option<Secret>, ttl: Duration) -> Self {
        Auth {
            token: token.filter(|t| !t.expose().is_empty()),
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The sessions stored before a restart.
    pub fn restore(&self, live: Vec<([u8; 32], u64)>) {
        self.sessions.lock().unwrap().extend(live);
    }

    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    fn token_matches(&self, presented: &str) -> bool {
        match &self.token {
            Some(t) => t.expose().as_bytes().ct_eq(presented.as_bytes()).into(),
            None => true,
        }
    }

    /// Who the headers name: the token as a bearer, or a live session.
    /// A bearer that is not the token names nobody (it is not tried as
    /// a session, and a session cookie beside it does not count).
    pub fn caller(&self, headers: &poem::http::HeaderMap) -> Option<Caller> {
        if !self.required() {
            return Some(Caller::Open);
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if let Some(b) = bearer {
            return self.token_matches(b.trim()).then_some(Caller::Token);
        }
        let h = sessions::hash(&session_cookie(headers)?);
        self.session_alive(&h).then_some(Caller::Session(h))
    }

    /// Whether a session is still live (not signed out, not expired).
    pub fn session_alive(&self, h: &[u8; 32]) -> bool {
        let now = sessions::now();
        self.sessions
            .lock()
            .unwrap()
            .get(h)
            .is_some_and(|exp| *exp > now)
    }

    /// Whether `caller` may still act: its session has not ended since
    /// it was checked (open sockets are held to this).
    pub fn still_valid(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Session(h) => self.session_alive(h),
            Caller::Open | Caller::Token => true,
        }
    }

    /// A new session for a correct token: its id, its hash and expiry
    /// (for the caller to store).
    pub fn login(&self, presented: &str) -> Option<(String, [u8; 32], u64)> {
        if !self.token_matches(presented) {
            return None;
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
        let (h, exp) = (sessions::hash(&id), sessions::now() + self.ttl.as_secs());
        let mut live = self.sessions.lock().unwrap();
        live.retain(|_, e| *e > sessions::now());
        live.insert(h, exp);
        Some((id, h, exp))
    }

    /// Ends the request's session; its hash, for the caller to unstore.
    pub fn logout(&self, req: &Request) -> Option<[u8; 32]> {
        let h = sessions::hash(&session_cookie(req.headers())?);
        self.sessions.lock().unwrap().remove(&h);
        Some(h)
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme
/// name is case-insensitive (RFC 9110, section 11.1).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

fn session_cookie(headers: &poem::http::HeaderMap) -> Option<String> {
    let header = headers.get("cookie")?.to_str().ok()?;
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Declares the bearer scheme on an operation so generated clients send
/// the token; the check itself is the middleware above.
pub struct Authed;

impl<'a> ApiExtractor<'a> for Authed {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some("The AUTH_TOKEN, when the server sets one."),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        _request: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Authed)
    }
}
