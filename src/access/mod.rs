//! Who may ask what: the one rule every entry point calls (the poem
//! routes over HTTP/1.1 and HTTP/2, the app's files under `FRONTEND_DIR`,
//! `/admin/`, and the Socket.IO handshake, which is served before poem).
//!
//! In order: the `Host` the client named (DNS rebinding guard, while no
//! credentials are needed), the `Origin` a browser attached (its own
//! origin, `PUBLIC_URL`, or one of `CORS_ORIGINS`; anything else is
//! refused), then who the caller is (the `AUTH_TOKEN` bearer or a session
//! cookie) and whether the path needs one. The scheme, host and client
//! address are read as the client saw them: TLS from the connection,
//! `:authority` over HTTP/2, forwarding headers from trusted proxies.

pub mod hosts;
pub mod origin;
pub mod sharing;

use std::sync::Arc;

use poem::{
    http::{header, Method},
    Endpoint, IntoResponse, Request, Response,
};

pub use origin::{Facts, Origin, Seen};

use crate::{
    auth::{Auth, Caller, Mode, Who},
    config::Config,
    http::error::{ApiError, ErrorCode},
};
use hosts::HostRules;
use origin::Proxies;

/// The rules, built once from the configuration.
pub struct Policy {
    hosts: HostRules,
    /// Origins allowed to call cross-origin (`CORS_ORIGINS`).
    cors: Vec<Origin>,
    /// The address people use (`PUBLIC_URL`): its origin is ours too.
    public: Option<Origin>,
    proxies: Proxies,
    auth: Arc<Auth>,
}

/// What a request passed the rules as; kept in its extensions.
#[derive(Debug, Clone)]
pub struct Checked {
    pub seen: Seen,
    /// `None`: no credentials (on a path that needs none).
    pub caller: Option<Caller>,
}

/// Where a request enters; Socket.IO has no CORS, so a foreign origin
/// there is refused even when it would be a harmless simple request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Http,
    Socket,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("TRUSTED_PROXIES: {0:?} is neither an address nor a CIDR block")]
    Proxy(String),
    #[error("{name}: {value:?} is not an origin (scheme://host[:port])")]
    Origin { name: &'static str, value: String },
}

impl Policy {
    pub fn new(config: &Config, auth: Arc<Auth>) -> Result<Policy, PolicyError> {
        let proxies = Proxies::parse(&config.trusted_proxies).map_err(PolicyError::Proxy)?;
        let mut cors = Vec::new();
        for o in config.cors_origins.as_deref().unwrap_or("").split(',') {
            let o = o.trim();
            if o.is_empty() {
                continue;
            }
            cors.push(Origin::parse(o).ok_or_else(|| PolicyError::Origin {
                name: "CORS_ORIGINS",
                value: o.to_string(),
            })?);
        }
        let public = match config.public_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => Some(Origin::parse(u).ok_or_else(|| PolicyError::Origin {
                name: "PUBLIC_URL",
                value: u.to_string(),
            })?),
        };
        Ok(Policy {
            hosts: HostRules::new(config.allowed_hosts.as_deref()),
            cors,
            public,
            proxies,
            auth,
        })
    }

    /// The origins `CORS_ORIGINS` lists, as the CORS layer wants them.
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors.iter().map(Origin::to_string).collect()
    }

    /// The request's scheme, host and client as the client saw them.
    pub fn seen(&self, facts: &Facts) -> Seen {
        facts.seen(&self.proxies)
    }

    /// The whole rule for one request to `path`.
    pub fn check(&self, facts: &Facts, path: &str, entry: Entry) -> Result<Checked, ApiError> {
        let seen = self.seen(facts);
        let mode = self.auth.mode();
        let local = seen.client.is_loopback();
        let caller = self
            .auth
            .caller(facts.headers)
            .or_else(|| (mode == Mode::Loopback && local).then(Caller::anyone));
        // A rebinding page sends no credentials of ours: the guard matters
        // only for whom the mode lets in without any.
        let anyone = caller
            .as_ref()
            .is_some_and(|c| matches!(c.who, Who::Anyone));
        if anyone && !seen.authority.is_empty() && !self.hosts.allows(&seen.authority) {
            return Err(ApiError::new(
                ErrorCode::HostNotAllowed,
                format!(
                    "Requests for host {:?} are refused while no sign-in is needed (DNS rebinding guard); \
                     add it to ALLOWED_HOSTS, or set IMMICH_URL or AUTH_TOKEN",
                    cut(&seen.authority)
                ),
            ));
        }
        if let Some(o) = facts.origin() {
            if !self.origin_allowed(o, &seen) {
                return Err(foreign(o, &seen, entry));
            }
        }
        if caller.is_none() && needs_credentials(path) {
            return Err(match mode {
                Mode::Loopback => ApiError::new(
                    ErrorCode::LoopbackOnly,
                    "This ImmichVR server answers only on the machine it runs on until it has a \
                     sign-in: set IMMICH_URL (people sign in with their Immich account) or \
                     AUTH_TOKEN, then restart it",
                ),
                Mode::Off | Mode::Token | Mode::Immich => unauthenticated(entry),
            });
        }
        Ok(Checked { seen, caller })
    }

    /// Same origin as the request (or `PUBLIC_URL`), or listed in
    /// `CORS_ORIGINS` (over HTTP the CORS layer then adds its headers).
    fn origin_allowed(&self, origin: &str, seen: &Seen) -> bool {
        Origin::parse(origin).is_some_and(|o| self.is_ours(&o, seen) || self.cors.contains(&o))
    }

    fn is_ours(&self, o: &Origin, seen: &Seen) -> bool {
        Origin::of(seen).as_ref() == Some(o) || self.public.as_ref() == Some(o)
    }

    /// Whether the request's `Origin` is this service's own.
    pub fn same_origin(&self, facts: &Facts, seen: &Seen) -> bool {
        facts
            .origin()
            .and_then(Origin::parse)
            .is_some_and(|o| self.is_ours(&o, seen))
    }
}

/// A value of the request, shortened for an answer.
fn cut(s: &str) -> String {
    crate::http::error::excerpt(s, 100)
}

fn foreign(origin: &str, seen: &Seen, entry: Entry) -> ApiError {
    let ours = Origin::of(seen).map_or_else(|| "this service".to_string(), |o| o.to_string());
    let what = match entry {
        Entry::Http => "request",
        Entry::Socket => "live channel",
    };
    ApiError::new(
        ErrorCode::OriginNotAllowed,
        format!(
            "The {what} comes from a page of origin {:?}, not {ours}: add that origin to CORS_ORIGINS \
             (or set PUBLIC_URL to the address people use; behind a reverse proxy, have it send \
             X-Forwarded-Proto and X-Forwarded-Host and list it in TRUSTED_PROXIES)",
            cut(origin)
        ),
    )
}

fn unauthenticated(entry: Entry) -> ApiError {
    let hint = match entry {
        Entry::Http => "Send Authorization: Bearer <AUTH_TOKEN>, or sign in with POST /api/auth/login",
        Entry::Socket => "Sign in first (the session cookie is sent with the connection), or send Authorization: Bearer <token>",
    };
    ApiError::new(ErrorCode::Unauthorized, hint)
}

/// Paths that stay open while a sign-in is required: health, the
/// sign-in itself (its page and its call), and the API's description
/// (nothing of anyone's library is in them). Everything else, the app's
/// files and `/admin/` included, needs one.
pub fn needs_credentials(path: &str) -> bool {
    !(path == "/health"
        || path == "/api/health"
        || path == "/api/auth/login"
        || path == "/api/auth/status"
        || path == SIGN_IN.trim_end_matches('/')
        || path.starts_with(SIGN_IN)
        || path.starts_with("/api/openapi.")
        || path == "/api/docs"
        || path.starts_with("/api/docs/"))
}

/// The sign-in page.
pub const SIGN_IN: &str = "/signin/";

/// Whether a refused request is a browser opening a page (sent to the
/// sign-in page and back) rather than a call of the API or the live
/// channel (answered 401 JSON).
fn is_page_visit(req: &Request) -> bool {
    let path = req.uri().path();
    matches!(*req.method(), Method::GET | Method::HEAD)
        && !path.starts_with("/api/")
        && !path.starts_with("/socket.io/")
        && path != "/metrics"
        && crate::http::header(req, header::ACCEPT).is_some_and(|a| a.contains("text/html"))
}

/// `/signin/?next=<where the browser was going>`.
fn sign_in_redirect(req: &Request) -> Response {
    let next = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let encoded: String = url_escape(next);
    poem::web::Redirect::see_other(format!("{SIGN_IN}?next={encoded}")).into_response()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What a browser is shown when loopback mode refuses it.
fn loopback_page(e: &ApiError) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>ImmichVR: not configured for the network</title>\
         <body style=\"font:1.2rem/1.5 system-ui;max-width:40rem;margin:3rem auto;padding:0 1rem\">\
         <h1>ImmichVR is not open to the network yet</h1><p>{}</p></body>",
        e.body.message
    );
    Response::builder()
        .status(poem::http::StatusCode::FORBIDDEN)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// The middleware every poem request passes first: the rule above, then
/// a same-origin `Origin` is dropped (CORS is about other origins, and
/// the CORS layer would refuse the page's own), and the outcome is left
/// in the request for the handlers (who is asking, over which scheme).
pub async fn guard<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    policy: Arc<Policy>,
) -> poem::Result<Response> {
    let peer = match req.remote_addr().as_socket_addr() {
        Some(a) => a.ip(),
        None => std::net::IpAddr::from([127, 0, 0, 1]),
    };
    let tls = req.scheme() == &poem::http::uri::Scheme::HTTPS;
    let path = req.uri().path().to_string();
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let facts = Facts {
        uri: req.uri(),
        headers: req.headers(),
        tls,
        peer,
    };
    // A CORS preflight carries no credentials by design; the CORS layer
    // answers it without calling any route.
    let path_for_rule = if preflight { "/health" } else { path.as_str() };
    let checked = match policy.check(&facts, path_for_rule, Entry::Http) {
        Ok(c) => c,
        Err(e) if e.code == ErrorCode::Unauthorized && is_page_visit(&req) => {
            return Ok(sign_in_redirect(&req));
        }
        Err(e) if e.code == ErrorCode::LoopbackOnly && is_page_visit(&req) => {
            return Ok(loopback_page(&e));
        }
        Err(e) => {
            let mut resp = e.response();
            if e.code == ErrorCode::Unauthorized {
                resp.headers_mut().insert(
                    "www-authenticate",
                    poem::http::HeaderValue::from_static("Bearer"),
                );
            }
            return Ok(resp);
        }
    };
    if policy.same_origin(&facts, &checked.seen) {
        req.headers_mut().remove(header::ORIGIN);
    }
    req.extensions_mut().insert(checked);
    ep.call(req).await.map(IntoResponse::into_response)
}
