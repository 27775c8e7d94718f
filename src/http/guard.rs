//! Checks every request passes before a route sees it: body sizes (the
//! limits; the server enforces them while reading), the `Host` a browser
//! sent (DNS rebinding), and the JSON shape of every error whoever
//! produced it.

use std::{net::IpAddr, sync::Arc};

use poem::{http::header, Endpoint, IntoResponse, Request, Response};

use crate::http::error::{ApiError, ErrorCode};

/// Largest JSON body of any route (the largest real one is a few hundred bytes).
pub const MAX_JSON_BYTES: u64 = 256 * 1024;
/// The login body holds one token.
pub const MAX_LOGIN_BYTES: u64 = 4 * 1024;
/// Room for the multipart envelope around an upload's file.
pub const UPLOAD_SLACK: u64 = 64 * 1024;

/// Routes whose bodies are files, streamed to disk with their own limit.
pub fn is_upload(path: &str) -> bool {
    path == "/api/media/upload" || path == "/api/media/upload/raw"
}

/// The largest body a request to `path` may have: uploads stream to disk
/// and have their own limit; everything else is a small JSON body.
pub fn body_limit(path: &str, max_upload: u64) -> u64 {
    if is_upload(path) {
        max_upload.saturating_add(UPLOAD_SLACK)
    } else if path == "/api/auth/login" {
        MAX_LOGIN_BYTES
    } else {
        MAX_JSON_BYTES
    }
}

/// Which `Host` names the API answers while `AUTH_TOKEN` is unset. A page
/// on the internet can point its own DNS name at a LAN address ("DNS
/// rebinding") and drive an open API from a visitor's browser; its `Host`
/// is then that dotted name. IP literals, `localhost`, this machine's own
/// name and single-label names (a compose service such as `backend`, as a
/// reverse proxy sends) are always fine.
/// Zones only a local network resolves.
const LOCAL_ZONES: &[&str] = &[
    "local",
    "lan",
    "home",
    "home.arpa",
    "internal",
    "localdomain",
];

pub struct HostRules {
    allowed: Vec<String>,
    machine: Option<String>,
}

impl HostRules {
    pub fn new(allowed: Option<&str>) -> Self {
        let allowed = allowed
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        HostRules { allowed, machine }
    }

    /// `host` as sent, possibly with a port and IPv6 brackets.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if host.starts_with('[') {
            return true; // an IPv6 literal
        }
        let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host);
        let name = name.trim_end_matches('.');
        if name.parse::<IpAddr>().is_ok() || !name.contains('.') {
            return true;
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        // The machine's own name, bare or in a home network's local zones.
        if self.machine.as_deref().is_some_and(|m| {
            m == name
                || name.strip_prefix(m).is_some_and(|zone| {
                    LOCAL_ZONES.contains(&zone.trim_start_matches('.')) && zone.starts_with('.')
                })
        }) {
            return true;
        }
        self.allowed.iter().any(|a| match a.strip_prefix("*.") {
            Some(suffix) => name.ends_with(&format!(".{suffix}")),
            None => a == name,
        })
    }
}

pub async fn check_host<E: Endpoint>(
    ep: Arc<E>,
    req: Request,
    rules: Arc<HostRules>,
) -> poem::Result<Response> {
    let host = super::header(&req, header::HOST).map(str::to_owned);
    if let Some(host) = host.filter(|h| !rules.allows(h)) {
        return Ok(ApiError::new(
            ErrorCode::HostNotAllowed,
            format!(
                "Requests for host {host:?} are refused while AUTH_TOKEN is unset (DNS rebinding guard); \
                 add it to ALLOWED_HOSTS or set AUTH_TOKEN"
            ),
        )
        .response());
    }
    ep.call(req).await.map(IntoResponse::into_response)
}

/// The last word on every answer: an error that is not JSON yet (poem's
/// CORS refusal, a missing Swagger file) becomes the JSON error shape.
pub async fn json_errors<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => return Ok(ApiError::from_poem(e).response()),
    };
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let text = body.into_string().await.unwrap_or_default();
    let code = ErrorCode::for_status(status);
    let message = match text.trim() {
        "" => format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        t => t.chars().take(500).collect(),
    };
    let mut body = ApiError::new(code, message);
    // Our catalogue's status for the code, unless the layer said otherwise.
    if code.status() != status {
        body.body.error = status.canonical_reason().unwrap_or("Error").into();
    }
    let mut out = body.response();
    out.set_status(status);
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::HostRules;

    #[test]
    fn dotted_names_need_listing() {
        let r = HostRules {
            allowed: vec!["photos.example.org".into(), "*.lan.example".into()],
            machine: Some("nas".into()),
        };
        for ok in [
            "127.0.0.1:3000",
            "[::1]:3000",
            "192.168.1.5",
            "localhost:3000",
            "backend",
            "backend:3000",
            "nas.local",
            "photos.example.org",
            "a.lan.example:443",
        ] {
            assert!(r.allows(ok), "{ok}");
        }
        for no in [
            "evil.example.com",
            "evil.example.com:3000",
            "nas.evil.com",
            "lan.example",
        ] {
            assert!(!r.allows(no), "{no}");
        }
    }
}
