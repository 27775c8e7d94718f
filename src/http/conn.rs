//! One client connection's socket and request bodies, with the deadlines
//! that keep a stalled client from holding the server.
//!
//! - A body the handler is reading that sends nothing for the idle timeout
//!   fails (408); a handler that is busy (waiting for an upload slot, a
//!   long AI call) reads nothing and so is never cut.
//! - An answer the client does not read for the idle timeout closes the
//!   connection.
//! - When hyper closes a connection it answered without reading the whole
//!   request body (a 413 or 429 sent early), closing at once would make the
//!   kernel reset the connection, and a client that writes its whole body
//!   before reading would see the reset instead of the answer. So the
//!   socket's write side is shut and what the client still sends is read
//!   and dropped for a bounded time ("lingering close", as nginx does).

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures_util::Stream;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};

/// Longest a lingering close reads, and longest it waits for one read.
const LINGER_TOTAL: Duration = Duration::from_secs(30);
const LINGER_QUIET: Duration = Duration::from_secs(5);

/// A timer armed while something waits on the client, disarmed when it
/// moves; fires after `limit` of waiting.
struct Stall {
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Stall {
    fn new(limit: Duration) -> Self {
        Stall { limit, timer: None }
    }

    /// Call when the wait goes on: `true` once the client stalled too long.
    fn waiting(&mut self, cx: &mut Context<'_>) -> bool {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).is_ready()
    }

    fn moved(&mut self) {
        self.timer = None;
    }
}

pub fn stalled(what: &str, limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the client sent nothing while {what} for {} s (IDLE_TIMEOUT_SECS)",
            limit.as_secs()
        ),
    )
}

/// The socket of one connection. `T` rides along until the socket is
/// closed, lingering included (the connection's slot in the limits).
pub struct ConnIo<T: Send + Unpin + 'static> {
    stream: Option<TcpStream>,
    write_stall: Stall,
    shut_down: bool,
    slot: Option<T>,
}

impl<T: Send + Unpin + 'static> ConnIo<T> {
    pub fn new(stream: TcpStream, idle: Duration, slot: T) -> Self {
        ConnIo {
            stream: Some(stream),
            write_stall: Stall::new(idle),
            shut_down: false,
            slot: Some(slot),
        }
    }

    /// The client's first byte, left unread (0 once it closed).
    pub async fn first_byte(&self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        let n = self
            .stream
            .as_ref()
            .expect("open until dropped")
            .peek(&mut b)
            .await?;
        Ok(if n == 0 { 0 } else { b[0] })
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.stream.as_mut().expect("open until dropped"))
    }
}

impl<T: Send + Unpin + 'static> AsyncRead for ConnIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl<T: Send + Unpin + 'static> AsyncWrite for ConnIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.stream().poll_write(cx, buf) {
            Poll::Pending => {
                if self.write_stall.waiting(cx) {
                    let limit = self.write_stall.limit;
                    return Poll::Ready(Err(stalled("receiving the answer", limit)));
                }
                Poll::Pending
            }
            ready => {
                self.write_stall.moved();
                ready
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut_down = true;
        self.stream().poll_shutdown(cx)
    }
}

impl<T: Send + Unpin + 'static> Drop for ConnIo<T> {
    fn drop(&mut self) {
        let (Some(stream), true) = (self.stream.take(), self.shut_down) else {
            return;
        };
        let slot = self.slot.take();
        // Outside a runtime (process exit) the socket simply closes.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(linger(stream, slot));
        }
    }
}

/// Reads and drops what the client still sends after our answer, until it
/// closes its side or the time is up; then the socket closes.
async fn linger<T>(mut stream: TcpStream, slot: Option<T>) {
    let deadline = Instant::now() + LINGER_TOTAL;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let wait = LINGER_QUIET.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => continue,
            _ => break,
        }
    }
    drop(slot);
}

/// What happened to a request's body, for the answer: parsers (multer,
/// poem's JSON) replace a body error's text with their own, so the server
/// looks here to answer 408 or 413 whatever the handler made of it.
#[derive(Default)]
pub struct BodyFlags {
    pub stalled: AtomicBool,
    pub too_large: AtomicBool,
}

/// A request body that fails when the client stops sending while the
/// handler waits for it, or sends more than `limit` bytes. Nothing is
/// buffered here: an oversized body fails at the first byte past the
/// limit, whatever reads it.
pub struct GuardedBody<S> {
    inner: S,
    stall: Stall,
    limit: u64,
    seen: u64,
    flags: Arc<BodyFlags>,
}

impl<S> GuardedBody<S> {
    pub fn new(inner: S, idle: Duration, limit: u64, flags: Arc<BodyFlags>) -> Self {
        GuardedBody {
            inner,
            stall: Stall::new(idle),
            limit,
            seen: 0,
            flags,
        }
    }
}

impl<S> Stream for GuardedBody<S>
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => {
                if self.stall.waiting(cx) {
                    self.flags.stalled.store(true, Ordering::SeqCst);
                    let limit = self.stall.limit;
                    return Poll::Ready(Some(Err(stalled("sending the request body", limit))));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.stall.moved();
                self.seen += chunk.len() as u64;
                if self.seen > self.limit {
                    self.flags.too_large.store(true, Ordering::SeqCst);
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the body is larger than {} bytes", self.limit),
                    ))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            ready => {
                self.stall.moved();
                ready
            }
        }
    }
}
