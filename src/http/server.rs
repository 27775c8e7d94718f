//! Our own accept loop in front of poem (hyper-util underneath).
//!
//! poem's server sets no deadline on a request's headers, so one address
//! could hold every connection with requests it never finishes. Here each
//! connection gets hyper's header deadline, and whatever its protocol
//! (HTTP/1.1, HTTP/2 over TLS or prior knowledge, or nothing said yet) is
//! closed once it has had no request in progress for that long (`idle`);
//! the connection count is capped in total (beyond it new connections
//! wait in the kernel's backlog) and per client address (beyond it they
//! are answered 503 and closed), and running out of file descriptors
//! backs off instead of spinning. Owning the loop also lets a later
//! protocol (Socket.IO's upgrade) be routed beside poem on the same port.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use poem::{endpoint::BoxEndpoint, Addr, Endpoint, EndpointExt, Response};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use poem::http::uri::Scheme;

use super::{
    conn::{BodyFlags, ConnIo, GuardedBody},
    idle::{Activity, Tracked},
    per_ip::{canonical, IpShare, PerIp},
};
use crate::http::error::{ApiError, ErrorCode};

/// The body type hyper gets from poem's answers.
pub type ResponseBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// A path served beside poem, straight from hyper: Socket.IO needs hyper's
/// upgrade handle, which poem drops when it hands a request to a tower
/// service. The connection limits and the header deadline still apply.
/// It is called with the request, the peer's address and whether the
/// connection is TLS.
#[derive(Clone)]
pub struct SideRoute {
    pub prefix: &'static str,
    #[allow(clippy::type_complexity)]
    pub serve: Arc<
        dyn Fn(
                poem::http::Request<Incoming>,
                SocketAddr,
                bool,
            )
                -> futures_util::future::BoxFuture<'static, poem::http::Response<ResponseBody>>
            + Send
            + Sync,
    >,
}

/// How connections are limited; see the configuration reference.
#[derive(Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_ip: usize,
    /// The largest body a request to this path may have.
    pub body_limit: Arc<dyn Fn(&str) -> u64 + Send + Sync>,
    /// HTTPS, when configured (`http::https`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The live channel (`/socket.io/`), when there is one.
    pub side: Option<SideRoute>,
}

/// Streams one HTTP/2 connection may have open at once (RFC 9113 advises
/// no fewer than 100; a browser loading a page of thumbnails opens dozens).
const MAX_STREAMS: u32 = 100;

/// File descriptors kept for everything that is not a connection: the
/// database, files being received or served, the AI and Immich clients.
const FD_RESERVE: u64 = 128;

impl Limits {
    /// Lowers the caps so that connections cannot use up the open-file
    /// limit (after raising the soft limit to the hard one, as Go does).
    pub fn fit_to_fd_limit(mut self) -> Self {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
            return self;
        };
        let budget = (soft.saturating_sub(FD_RESERVE) * 3 / 4).max(16) as usize;
        if self.max_connections > budget {
            tracing::info!(
                configured = self.max_connections,
                used = budget,
                open_file_limit = soft,
                "MAX_CONNECTIONS lowered to fit the open-file limit"
            );
            self.max_connections = budget;
        }
        let per_ip = (self.max_connections / 2).max(1);
        if self.max_per_ip > per_ip {
            tracing::info!(
                configured = self.max_per_ip,
                used = per_ip,
                "MAX_CONNECTIONS_PER_IP lowered to half of MAX_CONNECTIONS"
            );
            self.max_per_ip = per_ip;
        }
        self
    }
}

/// One connection's share of the limits, given back when its socket closes.
struct Slot {
    _total: tokio::sync::OwnedSemaphorePermit,
    _ip: IpShare,
}

/// A log line at most every 10 s per kind, with how often it happened.
pub struct Throttled {
    what: &'static str,
    last: Option<Instant>,
    since: u64,
}

impl Throttled {
    pub fn new(what: &'static str) -> Self {
        Throttled {
            what,
            last: None,
            since: 0,
        }
    }

    pub fn hit(&mut self, detail: impl std::fmt::Display) {
        self.since += 1;
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(times = self.since, "{}: {detail}", self.what);
        self.last = Some(Instant::now());
        self.since = 0;
    }
}

/// The answer to a connection over its address's cap: written without
/// waiting, then the socket closes.
fn refusal(max: usize) -> Vec<u8> {
    ApiError::new(
        ErrorCode::TooManyConnections,
        format!(
            "This address already has {max} open connections (MAX_CONNECTIONS_PER_IP); close some and try again"
        ),
    )
    .retry_after(5)
    .raw_answer()
}

/// Whether an accept error means the process (or system) is out of
/// descriptors or memory: then waiting, not retrying, is what helps.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 12 | 105))
}

/// Serves `ep` on `listener` until `shutdown`; connections still open then
/// get `drain` to finish their requests.
pub async fn run<E>(
    listener: TcpListener,
    ep: E,
    limits: Limits,
    shutdown: CancellationToken,
    drain: Duration,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let ep: Arc<BoxEndpoint<'static, Response>> = Arc::new(ep.map_to_response().boxed());
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let local = listener.local_addr()?;
    let tracker = TaskTracker::new();
    let (mut full_log, mut ip_log, mut fd_log) = (
        Throttled::new("connection limit reached (MAX_CONNECTIONS); new connections wait"),
        Throttled::new("connections refused (MAX_CONNECTIONS_PER_IP)"),
        Throttled::new("cannot accept connections"),
    );
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = match total.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                full_log.hit(limits.max_connections);
                tokio::select! {
                    p = total.clone().acquire_owned() => p.expect("never closed"),
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (stream, remote) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) if out_of_resources(&e) => {
                fd_log.hit(format!("{e}; waiting {} ms", backoff.as_millis()));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            // A connection that went away before it was accepted.
            Err(_) => continue,
        };
        let Some(share) = per_ip.take(remote.ip(), limits.max_per_ip) else {
            ip_log.hit(canonical(remote.ip()));
            let _ = stream.try_write(&refusal(limits.max_per_ip));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let slot = Slot {
            _total: permit,
            _ip: share,
        };
        let io = ConnIo::new(stream, limits.idle_timeout, slot);
        let (ep, limits2, stop) = (ep.clone(), limits.clone(), shutdown.clone());
        match limits.tls.clone() {
            None => {
                tracker.spawn(connection(
                    io,
                    local,
                    remote,
                    ep,
                    limits2,
                    stop,
                    drain,
                    Scheme::HTTP,
                ));
            }
            Some(tls) => {
                // The first byte and the handshake have the header deadline:
                // a client that opens a connection and says nothing holds no
                // slot for long.
                let deadline = limits.header_timeout;
                tracker.spawn(async move {
                    let secured = tokio::time::timeout(deadline, async {
                        if io.first_byte().await.ok()?.is_ascii_alphabetic() {
                            // Plain HTTP on the HTTPS port: a browser that
                            // was typed `http://` is sent to `https://`.
                            super::https::answer_plain_http(io).await;
                            return None;
                        }
                        tls.accept(io).await.ok()
                    })
                    .await;
                    if let Ok(Some(io)) = secured {
                        connection(io, local, remote, ep, limits2, stop, drain, Scheme::HTTPS)
                            .await;
                    }
                });
            }
        }
    }
    drop(listener);
    tracker.close();
    let _ = tokio::time::timeout(drain + Duration::from_secs(1), tracker.wait()).await;
    Ok(())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::BodyTooLarge,
        format!("This route accepts at most {limit} bytes of body"),
    )
}

/// The `Content-Length`, when there is one; a 400 when it is not a number.
fn declared_length<B>(req: &poem::http::Request<B>) -> Result<Option<u64>, ApiError> {
    match req.headers().get(poem::http::header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("Content-Length is not a number")),
    }
}

/// Runs one request with its body guarded; a body that stalled or grew
/// past the limit decides the answer, whatever the handler said.
async fn handle(
    ep: &BoxEndpoint<'static, Response>,
    mut req: poem::Request,
    idle: Duration,
    limit: u64,
) -> Response {
    let flags = Arc::new(BodyFlags::default());
    let body = req.take_body().into_bytes_stream();
    req.set_body(poem::Body::from_bytes_stream(GuardedBody::new(
        Box::pin(body),
        idle,
        limit,
        flags.clone(),
    )));
    let resp = ep.get_response(req).await;
    let replaced = if flags.too_large.load(Ordering::SeqCst) {
        too_large(limit)
    } else if flags.stalled.load(Ordering::SeqCst) {
        let e = super::conn::stalled("sending the request body", idle);
        ApiError::new(ErrorCode::RequestTimeout, e.to_string())
    } else {
        return resp;
    };
    let mut resp = replaced.response();
    // The rest of the body will not be read: this connection ends here.
    resp.headers_mut()
        .insert(poem::http::header::CONNECTION, "close".parse().unwrap());
    resp
}

#[allow(clippy::too_many_arguments)]
async fn connection<I>(
    io: I,
    local: SocketAddr,
    remote: SocketAddr,
    ep: Arc<BoxEndpoint<'static, Response>>,
    limits: Limits,
    shutdown: CancellationToken,
    drain: Duration,
    scheme: Scheme,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let idle = limits.idle_timeout;
    let body_limit = limits.body_limit.clone();
    let side = limits.side.clone();
    let activity = Activity::new();
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |req: poem::http::Request<Incoming>| {
        let busy = requests.busy();
        let ep = ep.clone();
        let scheme = scheme.clone();
        let limit = body_limit(req.uri().path());
        let side = side
            .as_ref()
            .filter(|s| req.uri().path().starts_with(s.prefix))
            .map(|s| s.serve.clone());
        async move {
            let tls = scheme == Scheme::HTTPS;
            let resp = match (side, declared_length(&req)) {
                (Some(serve), _) => serve(req, remote, tls).await,
                (None, Err(e)) => e.response().into(),
                (None, Ok(Some(n))) if n > limit => too_large(limit).response().into(),
                (None, Ok(_)) => {
                    let req = (
                        req,
                        poem::web::LocalAddr(Addr::SocketAddr(local)),
                        poem::web::RemoteAddr(Addr::SocketAddr(remote)),
                        scheme,
                    )
                        .into();
                    handle(&ep, req, idle, limit).await.into()
                }
            };
            Ok::<_, Infallible>(resp.map(|body| ResponseBody::new(Tracked::new(body, busy))))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // HTTP/2 has no header deadline in hyper: the watchdog below closes a
    // connection without an open stream, pings find a peer that vanished
    // while a stream was open, and one connection opens a bounded number of
    // streams at once.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.cancelled() => {}
        // No request in progress for the header deadline: an idle
        // keep-alive, an HTTP/2 connection without a stream, or a client
        // that never sent its first byte.
        _ = activity.idle_for(limits.header_timeout) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(drain, conn).await;
}
