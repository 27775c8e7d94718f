//! The VR app's live channel: Socket.IO v4 (Engine.IO 4, protocol 5,
//! namespace `/`) at `/socket.io/` on the API's own port.
//!
//! socketioxide serves it. It needs hyper's upgrade handle, which poem
//! drops when it hands a request to a tower service, so our accept loop
//! (`http::server::SideRoute`) sends `/socket.io/` here before poem sees
//! the request. The handshake passes the same rule as every request
//! (`access::Policy::check`); the caller it found rides with the session,
//! and a socket whose sign-in ended is closed (`sessions`).

mod caps;
mod handlers;
mod relay;
mod sessions;
mod wire;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures_util::FutureExt;
use http_body_util::BodyExt;
use poem::http::{self, header, request::Parts};
use socketioxide::SocketIo;

use crate::{
    access::{Entry, Facts},
    http::{
        error::{ApiError, ErrorCode},
        server::{ResponseBody, SideRoute},
    },
    state::AppState,
};

/// The largest message a client may send; the app's are under 200 bytes.
const MAX_PAYLOAD: u64 = 16 * 1024;

/// How long a session may stay without joining a namespace (the app joins
/// at once; socketioxide's default kept a bare handshake 45 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the Socket.IO server, starts its relay from the event bus, and
/// gives the route the accept loop serves it on.
pub fn side_route(state: &Arc<AppState>) -> SideRoute {
    let (svc, io) = SocketIo::builder()
        .max_payload(MAX_PAYLOAD)
        .ws_max_message_size(MAX_PAYLOAD as usize)
        .ws_max_frame_size(MAX_PAYLOAD as usize)
        // Per-socket memory: the app's messages are small.
        .max_buffer_size(64)
        .ws_read_buffer_size(256)
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .connect_timeout(CONNECT_TIMEOUT)
        .build_svc();
    handlers::register(&io, state.clone());
    sessions::spawn(io.clone(), state.clone());
    relay::spawn(io, state.clone());
    let policy = state.access.clone();
    let c = &state.config;
    let caps = Arc::new(caps::Caps::new(
        c.max_live_sessions,
        c.max_live_sessions_per_ip,
    ));
    let serve = move |req: http::Request<hyper::body::Incoming>, remote: SocketAddr, tls: bool| {
        let svc = svc.clone();
        let policy = policy.clone();
        let caps = caps.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            let facts = Facts {
                uri: &parts.uri,
                headers: &parts.headers,
                tls,
                peer: remote.ip(),
            };
            // The rule first, then the session caps, counted per client
            // as the rule saw it (behind a trusted proxy, the forwarded one).
            let checked = match policy
                .check(&facts, parts.uri.path(), Entry::Socket)
                .and_then(|c| caps.admit(&mut parts, c.seen.client).map(|()| c))
            {
                Ok(c) => c,
                Err(e) => return http::Response::<ResponseBody>::from(e.response()),
            };
            detach(&mut parts);
            // Kept by Engine.IO with the request head for the session's
            // life: the handlers and the session sweep read it there.
            if let Some(caller) = checked.caller {
                parts.extensions.insert(caller);
            }
            let req = http::Request::from_parts(parts, body);
            match hyper::service::Service::call(&svc, req).await {
                Ok(resp) => {
                    resp.map(|b| b.map_err(|e| std::io::Error::other(e.to_string())).boxed())
                }
                Err(e) => http::Response::<ResponseBody>::from(
                    ApiError::new(ErrorCode::InternalError, e.to_string()).response(),
                ),
            }
        }
        .boxed()
    };
    SideRoute {
        prefix: "/socket.io/",
        serve: Arc::new(serve),
    }
}

/// Copies what Engine.IO still reads of the request's head out of hyper's
/// read buffer. hyper's URI and header values are slices of that buffer
/// (16 KiB by the time a request is parsed), and socketioxide keeps a
/// socket's request for as long as the socket lives: without the copy
/// every open socket kept its whole buffer alive, two thirds of its memory
/// (BENCHMARKS.md, the live channel). The other headers (the cookie and
/// the token among them) were checked already and are dropped, so an open
/// socket holds no secret either.
fn detach(parts: &mut Parts) {
    const KEPT: [header::HeaderName; 4] = [
        header::HOST,
        header::CONTENT_TYPE,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
    ];
    let mut headers = http::HeaderMap::with_capacity(KEPT.len());
    for name in KEPT {
        if let Some(value) = parts.headers.get(&name) {
            if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
                headers.insert(name, value);
            }
        }
    }
    parts.headers = headers;
    if let Ok(uri) = parts.uri.to_string().parse() {
        parts.uri = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keeps_what_engine_io_reads_and_lets_go_of_the_buffer() {
        let buf = bytes::Bytes::from_static(
            b"/socket.io/?EIO=4&transport=websocketBearer tok; sid=1dGhlIHNhbXBsZSBub25jZQ==",
        );
        let shared =
            |r: std::ops::Range<usize>| http::HeaderValue::from_maybe_shared(buf.slice(r)).unwrap();
        let mut req = http::Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket")
            .body(())
            .unwrap();
        let h = req.headers_mut();
        h.insert(header::AUTHORIZATION, shared(37..47));
        h.append(header::COOKIE, shared(49..54));
        h.insert(header::SEC_WEBSOCKET_KEY, shared(54..78));
        h.insert(
            header::HOST,
            http::HeaderValue::from_static("pi.local:3000"),
        );
        h.insert(header::USER_AGENT, http::HeaderValue::from_static("node"));
        let (mut parts, ()) = req.into_parts();
        detach(&mut parts);

        let range = buf.as_ptr_range();
        for v in parts.headers.values() {
            assert!(
                !range.contains(&v.as_bytes().as_ptr()),
                "still in the buffer"
            );
        }
        assert_eq!(
            parts.headers[header::SEC_WEBSOCKET_KEY],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert_eq!(parts.headers[header::HOST], "pi.local:3000");
        for gone in [header::AUTHORIZATION, header::COOKIE, header::USER_AGENT] {
            assert!(!parts.headers.contains_key(&gone), "{gone} kept");
        }
        assert_eq!(parts.headers.len(), 2);
        assert_eq!(parts.uri, "/socket.io/?EIO=4&transport=websocket");
    }
}
