//! How many live-channel sessions there may be, in total and per client
//! address, WebSocket and polling alike.
//!
//! Each session costs memory (about 20 KiB idle, BENCHMARKS.md) for as long
//! as it lives: up to the connect timeout when it never joins a namespace,
//! up to the heartbeat's 45 s when its client vanishes. Without a cap, one
//! client sending handshakes in a loop grew the process by a gigabyte in
//! seconds. A request that opens a session (one without `sid`) takes a
//! seat before Engine.IO sees it, or is refused with a JSON 503; the seat
//! rides in the request's extensions, which engineioxide keeps with the
//! session (`Socket::req_parts`), so it is given back when the session
//! ends, however it ends. (A session closed before it joined a namespace
//! keeps its seat until the connect timeout: socketioxide's timer for it
//! holds the session until then.)

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
};

use poem::http::{request::Parts, Method};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::{
    error::{ApiError, ErrorCode},
    per_ip::{canonical, IpShare, PerIp},
    server::Throttled,
};

pub struct Caps {
    total: Arc<Semaphore>,
    max_total: usize,
    per_ip: Arc<PerIp>,
    max_per_ip: usize,
    log: Mutex<Throttled>,
}

/// One session's place under both caps.
#[derive(Clone)]
struct Seat(#[allow(dead_code)] Arc<(OwnedSemaphorePermit, IpShare)>);

impl Caps {
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        let max_total = max_total.max(1);
        Caps {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            per_ip: Arc::new(PerIp::default()),
            max_per_ip: max_per_ip.clamp(1, max_total),
            log: Mutex::new(Throttled::new("live sessions refused")),
        }
    }

    /// Seats a request that opens a session; any other request passes.
    pub fn admit(&self, parts: &mut Parts, remote: IpAddr) -> Result<(), ApiError> {
        if !opens_session(parts) {
            return Ok(());
        }
        let refuse = |message: String| {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            log.hit(format!("{}: {message}", canonical(remote)));
            ApiError::new(ErrorCode::TooManyLiveSessions, message).retry_after(5)
        };
        let Some(share) = self.per_ip.take(remote, self.max_per_ip) else {
            return Err(refuse(format!(
                "This address already has {} live sessions (MAX_LIVE_SESSIONS_PER_IP); close some and try again",
                self.max_per_ip
            )));
        };
        let Ok(permit) = self.total.clone().try_acquire_owned() else {
            return Err(refuse(format!(
                "The server already has {} live sessions (MAX_LIVE_SESSIONS); try again later",
                self.max_total
            )));
        };
        parts.extensions.insert(Seat(Arc::new((permit, share))));
        Ok(())
    }
}

/// Engine.IO opens a session on a `GET` without `sid` (a polling
/// handshake or a WebSocket that did not start as polling).
fn opens_session(parts: &Parts) -> bool {
    parts.method == Method::GET
        && !parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .any(|p| p.starts_with("sid="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str) -> Parts {
        let req = poem::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap();
        req.into_parts().0
    }

    #[test]
    fn handshakes_take_seats_until_their_session_ends() {
        let caps = Caps::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let open = "/socket.io/?EIO=4&transport=polling";
        let mut sessions = Vec::new();
        for _ in 0..2 {
            let mut p = parts(Method::GET, open);
            caps.admit(&mut p, a).unwrap();
            sessions.push(p);
        }
        let e = caps.admit(&mut parts(Method::GET, open), a).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooManyLiveSessions);
        assert!(e.body.message.contains("MAX_LIVE_SESSIONS_PER_IP"));
        // Requests within a session take nothing.
        let within = "/socket.io/?EIO=4&transport=polling&sid=abc";
        caps.admit(&mut parts(Method::GET, within), a).unwrap();
        caps.admit(&mut parts(Method::POST, within), a).unwrap();

        let mut p = parts(Method::GET, "/socket.io/?EIO=4&transport=websocket");
        caps.admit(&mut p, b).unwrap();
        sessions.push(p);
        let e = caps.admit(&mut parts(Method::GET, open), c).unwrap_err();
        assert!(e.body.message.contains("MAX_LIVE_SESSIONS)"), "{e}");

        // A session's end (its head dropped, clones included) frees its seat.
        let kept = sessions.remove(0).extensions.clone();
        assert!(caps.admit(&mut parts(Method::GET, open), c).is_err());
        drop(kept);
        caps.admit(&mut parts(Method::GET, open), c).unwrap();
    }
}
