//! `/api/auth`: sign in (an Immich account, a user's own Immich API key,
//! or the operator's `AUTH_TOKEN`) for a session cookie, who is signed in,
//! sign out, and a person's own sessions, each of which they may end.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi, Union};

use super::{
    signin::{self, Credentials},
    Authed, Caller, COOKIE,
};
use crate::{
    access::Checked,
    config::Secret,
    http::{
        body::{JsonBody, Text},
        codes::ErrorCode as E,
        error::ApiError,
        spec::{op, OpErrors, Storage},
    },
    state::{ApiTags, AppState},
    timestamp::Timestamp,
};

pub struct AuthApi {
    pub state: Arc<AppState>,
}

/// An Immich account's email and password.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct PasswordLogin {
    pub email: Text,
    pub password: Text,
    /// "Remember this device": 30 days instead of `SESSION_TTL_SECS`.
    #[oai(default)]
    pub remember: bool,
}

/// An Immich API key of the user's own (accounts that sign in to Immich
/// with OAuth only).
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct KeyLogin {
    pub api_key: Text,
    #[oai(default)]
    pub remember: bool,
}

/// The operator's `AUTH_TOKEN`.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct TokenLogin {
    pub token: Text,
    #[oai(default)]
    pub remember: bool,
}

/// One of three ways in, exactly one.
#[derive(Union)]
#[oai(one_of)]
pub enum LoginBody {
    Password(PasswordLogin),
    ApiKey(KeyLogin),
    Token(TokenLogin),
}

/// Which way in, never the values: a password, a key or the token must
/// not reach a log line through a `{:?}`.
impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginBody::Password(p) => write!(f, "Password({:?}, <redacted>)", p.email.0),
            LoginBody::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            LoginBody::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// A signed-in Immich user.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub email: String,
    pub is_admin: bool,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AuthStatus {
    /// Whether requests need a sign-in (or the token).
    pub required: bool,
    /// Whether this request carries one.
    pub authenticated: bool,
    /// `immich` (sign in with Immich), `token` (the operator's token
    /// only), `loopback` (only this machine, no sign-in), `off`.
    pub mode: String,
    /// The ways of signing in this server offers: `password` and `apiKey`
    /// (with Immich), `token` (when AUTH_TOKEN is set).
    pub methods: Vec<String>,
    /// `operator` or `user`, when signed in.
    #[oai(nullable)]
    pub role: Option<String>,
    /// The Immich user, when signed in as one.
    #[oai(nullable)]
    pub user: Option<UserView>,
    /// Immich's web address (for its API-key page), with sign-in with Immich.
    #[oai(nullable)]
    pub immich_url: Option<String>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct LoginResult {
    pub success: bool,
    pub message: String,
    /// `operator` or `user`.
    pub role: String,
    #[oai(nullable)]
    pub user: Option<UserView>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Object)]
pub struct LogoutResult {
    pub success: bool,
    pub message: String,
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Signed in: the session cookie is set.
    #[oai(status = 200)]
    Ok(Json<LoginResult>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// Signed out: the cookie is cleared.
    #[oai(status = 200)]
    Ok(Json<LogoutResult>, #[oai(header = "Set-Cookie")] String),
}

/// One of a person's sessions.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct SessionView {
    /// Names the session in `DELETE /api/auth/sessions/{id}`.
    pub id: String,
    /// The session this request came with.
    pub current: bool,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub remember: bool,
    /// The browser, as its User-Agent says.
    pub device: String,
    /// The address it signed in from.
    pub address: String,
}

#[derive(Debug, Object)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

fn view(c: &Caller) -> Option<UserView> {
    c.user().map(|u| UserView {
        id: u.id.clone(),
        name: u.name.clone(),
        email: u.email.clone(),
        is_admin: u.is_admin,
    })
}

fn checked(req: &Request) -> Option<&Checked> {
    req.extensions().get::<Checked>()
}

fn secret(t: Text) -> Secret {
    t.0.parse().unwrap_or_default()
}

/// The credentials, and whether to remember the device.
fn credentials(b: LoginBody) -> (Credentials, bool) {
    match b {
        LoginBody::Password(p) => (
            Credentials::Password {
                email: p.email.0,
                password: secret(p.password),
            },
            p.remember,
        ),
        LoginBody::ApiKey(k) => (Credentials::ApiKey(secret(k.api_key)), k.remember),
        LoginBody::Token(t) => (Credentials::Token(secret(t.token)), t.remember),
    }
}

/// The session cookie: `Secure` whenever the client came over HTTPS
/// (ours, or a trusted proxy's), so the browser never sends it over plain
/// HTTP; `SameSite=Lax` so that following a link to the service (from
/// Immich, a bookmark) arrives signed in, while no other site's requests
/// that change anything carry it.
fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

#[OpenApi(prefix_path = "/api/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Who is signed in, and the ways of signing in
    #[oai(path = "/status", method = "get", operation_id = "getAuthStatus")]
    async fn status(&self, req: &Request) -> Json<AuthStatus> {
        let auth = &self.state.auth;
        let caller = checked(req).and_then(|c| c.caller.clone());
        let mut methods = Vec::new();
        if auth.immich_sign_in() {
            methods.extend(["password".to_string(), "apiKey".to_string()]);
        }
        if auth.has_token() {
            methods.push("token".into());
        }
        Json(AuthStatus {
            required: auth.required(),
            authenticated: caller.is_some(),
            mode: auth.mode().as_str().into(),
            methods,
            role: caller.as_ref().map(|c| c.role().to_string()),
            user: caller.as_ref().and_then(view),
            immich_url: auth.immich_web_url(),
        })
    }

    /// Sign in for a session cookie (browsers, EventSource, the VR app)
    ///
    /// Failed attempts are limited per address and per account: after
    /// five, each further one doubles the wait (429 with Retry-After).
    /// Immich being down is a 503, not a failed attempt.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        body: JsonBody<LoginBody>,
    ) -> Result<LoginResponse, ApiError> {
        let seen = checked(req).map(|c| c.seen.clone());
        let https = seen.as_ref().is_some_and(|s| s.https);
        let address = seen
            .map(|s| s.client)
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let (creds, remember) = credentials(body.0);
        let from = signin::From {
            address,
            device: signin::device(crate::http::header(req, poem::http::header::USER_AGENT)),
        };
        let s = self.state.auth.sign_in(creds, remember, from).await?;
        let message = match s.caller.user() {
            Some(u) => format!("Signed in as {}", u.name),
            None => "Signed in as the operator".into(),
        };
        Ok(LoginResponse::Ok(
            Json(LoginResult {
                success: true,
                message,
                role: s.caller.role().into(),
                user: view(&s.caller),
                expires_at: Timestamp::from_unix(s.expires),
            }),
            cookie(&s.cookie, s.max_age, https),
        ))
    }

    /// End this browser session
    ///
    /// A user's last session also deletes the Immich API key this service
    /// made for them; their open sockets close within a second.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(&self, req: &Request, auth: Authed) -> Result<LogoutResponse, ApiError> {
        if let Some(h) = auth.0.session {
            self.state.auth.sign_out(&h).await?;
        }
        let https = checked(req).is_some_and(|c| c.seen.https);
        Ok(LogoutResponse::Ok(
            Json(LogoutResult {
                success: true,
                message: "Signed out".into(),
            }),
            cookie("", 0, https),
        ))
    }

    /// My sessions (a user's own; the token's for an operator)
    #[oai(path = "/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(&self, auth: Authed) -> Json<SessionList> {
        let current = auth.0.session;
        let sessions = self
            .state
            .auth
            .sessions_of(&auth.0)
            .into_iter()
            .map(|(h, expires, info)| SessionView {
                id: super::public_id(&h),
                current: current == Some(h),
                created_at: Timestamp::from_unix(info.created_at),
                expires_at: Timestamp::from_unix(expires),
                remember: info.remember,
                device: info.device,
                address: info.address,
            })
            .collect();
        Json(SessionList { sessions })
    }

    /// End one of my sessions (another device, say)
    #[oai(path = "/sessions/:id", method = "delete", operation_id = "endSession")]
    async fn end(&self, auth: Authed, id: Path<String>) -> Result<Json<LogoutResult>, ApiError> {
        self.state.auth.end_session(&auth.0, &id.0).await?;
        Ok(Json(LogoutResult {
            success: true,
            message: "Session ended".into(),
        }))
    }
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getAuthStatus", Storage::None, &[]),
    op(
        "login",
        Storage::Writes,
        &[
            E::InvalidCredentials,
            E::KeyPermissions,
            E::TooManySignIns,
            E::ImmichNotConfigured,
            E::ImmichUnreachable,
            E::ImmichError,
        ],
    ),
    op("logout", Storage::Writes, &[]),
    op("listSessions", Storage::None, &[]),
    op("endSession", Storage::Writes, &[E::SessionNotFound]),
];
