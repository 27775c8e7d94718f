//! Optional authentication. With `AUTH_TOKEN` set, every `/api/*` route
//! and `/metrics` needs `Authorization: Bearer <token>` or the session
//! cookie that `POST /api/auth/login` sets (what the admin page and its
//! EventSource use: the raw token never travels in a URL).

use crate::http::{
    codes::ErrorCode as E,
    spec::{op, OpErrors, Storage},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::{
    payload::Json,
    registry::{MetaSecurityScheme, Registry},
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
};
use subtle::ConstantTimeEq;

use crate::{
    config::Secret,
    http::{
        body::JsonBody,
        error::{ApiError, ErrorCode},
    },
    state::{ApiTags, AppState},
};

pub mod sessions;

pub const COOKIE: &str = "immichvr_session";
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const SCHEME: &str = "bearerAuth";

pub struct Auth {
    token: Option<Secret>,
    /// SHA-256 of each live session id -> expiry (unix seconds); a copy of
    /// the `sessions` table, so a request never waits on the database.
    sessions: Mutex<HashMap<[u8; 32], u64>>,
}

impl Auth {
    pub fn new(token: Option<Secret>) -> Self {
        Auth {
            token: token.filter(|t| !t.expose().is_empty()),
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

    /// Whether the request carries the token or a live session.
    pub fn allows(&self, req: &Request) -> bool {
        self.allows_headers(req.headers())
    }

    /// The same, from the headers alone (the live channel's handshake).
    pub fn allows_headers(&self, headers: &poem::http::HeaderMap) -> bool {
        if !self.required() {
            return true;
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        if let Some(b) = bearer {
            return self.token_matches(b.trim());
        }
        match session_cookie(headers) {
            Some(id) => {
                let now = sessions::now();
                let mut live = self.sessions.lock().unwrap();
                live.retain(|_, exp| *exp > now);
                live.contains_key(&sessions::hash(&id))
            }
            None => false,
        }
    }

    /// A new session for a correct token: its id, its hash and expiry
    /// (for the caller to store).
    pub fn login(&self, presented: &str) -> Option<(String, [u8; 32], u64)> {
        if !self.token_matches(presented) {
            return None;
        }
        let id = hex::encode(rand::random::<[u8; 32]>());
        let (h, exp) = (sessions::hash(&id), sessions::now() + SESSION_TTL.as_secs());
        self.sessions.lock().unwrap().insert(h, exp);
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

/// Paths that stay open with authentication on.
pub fn is_open(path: &str) -> bool {
    let protected = path.starts_with("/api/") || path == "/metrics";
    !protected
        || path.starts_with("/api/openapi.")
        || path == "/api/docs"
        || path.starts_with("/api/docs/")
        || path == "/api/auth/login"
        || path == "/api/auth/status"
        || path == "/api/health"
}

/// The middleware: 401 JSON for a protected path without credentials.
pub async fn guard<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    auth: Arc<Auth>,
) -> poem::Result<Response> {
    if !is_open(req.uri().path()) && !auth.allows(&req) {
        let mut resp = ApiError::new(
            ErrorCode::Unauthorized,
            "Send Authorization: Bearer <AUTH_TOKEN>, or log in with POST /api/auth/login",
        )
        .response();
        resp.headers_mut().insert(
            "www-authenticate",
            poem::http::HeaderValue::from_static("Bearer"),
        );
        return Ok(resp);
    }
    ep.call(req).await.map(IntoResponse::into_response)
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

pub struct AuthApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
pub struct LoginBody {
    pub token: crate::http::body::Text,
}

#[derive(Debug, Object)]
pub struct AuthStatus {
    /// Whether the server requires a token.
    pub required: bool,
    /// Whether this request carries a valid token or session.
    pub authenticated: bool,
}

#[derive(Debug, Object)]
pub struct LoginResult {
    pub success: bool,
    pub message: String,
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Logged in: the session cookie is set.
    #[oai(status = 200)]
    Ok(Json<LoginResult>, #[oai(header = "Set-Cookie")] String),
}

#[OpenApi(prefix_path = "/api/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Whether a token is required and whether this request has one
    #[oai(path = "/status", method = "get", operation_id = "getAuthStatus")]
    async fn status(&self, req: &Request) -> Json<AuthStatus> {
        Json(AuthStatus {
            required: self.state.auth.required(),
            authenticated: self.state.auth.allows(req),
        })
    }

    /// Exchange the token for a session cookie (for browsers and EventSource)
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(&self, body: JsonBody<LoginBody>) -> Result<LoginResponse, ApiError> {
        let (id, h, exp) = self.state.auth.login(&body.0.token).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "The token is not the server's AUTH_TOKEN",
            )
        })?;
        // Stored before the answer: a restart keeps the browser signed in.
        self.state
            .store
            .write(move |txn| sessions::put(txn, &h, exp))
            .await?;
        let cookie = format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_TTL.as_secs()
        );
        Ok(LoginResponse::Ok(
            Json(LoginResult {
                success: true,
                message: "Logged in".into(),
            }),
            cookie,
        ))
    }

    /// End this browser session
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, req: &Request, _auth: Authed) -> Result<Json<LoginResult>, ApiError> {
        if let Some(h) = self.state.auth.logout(req) {
            self.state
                .store
                .write(move |txn| sessions::remove(txn, &h))
                .await?;
        }
        Ok(Json(LoginResult {
            success: true,
            message: "Logged out".into(),
        }))
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getAuthStatus", Storage::None, &[]),
    op("login", Storage::Writes, &[E::Unauthorized]),
    op("logout", Storage::Writes, &[]),
];
