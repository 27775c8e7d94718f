//! `/api/auth`: the session cookie for browsers (and EventSource, which
//! cannot send a header), and whether this request is signed in.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};

use super::{sessions, Authed, COOKIE};
use crate::{
    access::Checked,
    http::{
        body::JsonBody,
        codes::ErrorCode as E,
        error::{ApiError, ErrorCode},
        spec::{op, OpErrors, Storage},
    },
    state::{ApiTags, AppState},
};

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
            authenticated: checked(req).is_some_and(|c| c.caller.is_some()),
        })
    }

    /// Exchange the token for a session cookie (for browsers and EventSource)
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        body: JsonBody<LoginBody>,
    ) -> Result<LoginResponse, ApiError> {
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
        // Secure whenever the client came over HTTPS (ours, or a trusted
        // proxy's): the browser then never sends it over plain HTTP.
        let secure = if checked(req).is_some_and(|c| c.seen.https) {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.state.auth.ttl.as_secs()
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

/// What the access rule found for this request.
fn checked(req: &Request) -> Option<&Checked> {
    req.extensions().get::<Checked>()
}

/// What each operation answers besides the errors every one can (`http::spec`).
pub const ERRORS: &[OpErrors] = &[
    op("getAuthStatus", Storage::None, &[]),
    op("login", Storage::Writes, &[E::Unauthorized]),
    op("logout", Storage::Writes, &[]),
];
