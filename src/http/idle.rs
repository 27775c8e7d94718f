//! When a connection is idle, whatever its protocol.
//!
//! hyper gives HTTP/1.1 a header deadline that also ends an idle
//! keep-alive connection, but nothing like it for HTTP/2 (a connection that
//! sent its preface and SETTINGS and then nothing stays open for ever) nor
//! for a connection that has not sent its first byte (hyper-util reads it
//! to tell HTTP/1.1 from HTTP/2, without a deadline). So each connection
//! counts its requests in progress, from the moment hyper hands one over
//! until its answer's last byte is sent, and the server closes a connection
//! that had none for the header deadline.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// One connection's requests in progress and since when it has had none.
pub struct Activity {
    in_progress: AtomicUsize,
    /// Milliseconds after `epoch` when the last request ended.
    idle_since_ms: AtomicU64,
    epoch: Instant,
}

/// A request in progress; dropped with its answer's body.
pub struct Busy(Arc<Activity>);

impl Activity {
    /// A connection accepted now: idle until its first request.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            in_progress: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_progress.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Resolves once the connection has had no request in progress for
    /// `limit`. One timer per connection, re-armed at most every `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let wait = if self.in_progress.load(Ordering::SeqCst) > 0 {
                limit
            } else {
                let since = self.idle_since_ms.load(Ordering::SeqCst);
                let idle = Duration::from_millis(self.now_ms().saturating_sub(since));
                match limit.checked_sub(idle) {
                    Some(left) if !left.is_zero() => left,
                    _ => return,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // The time first: a watchdog that sees no request in progress must
        // not read the end of an older one.
        let now = self.0.now_ms();
        self.0.idle_since_ms.store(now, Ordering::SeqCst);
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer's body that keeps its request in progress until hyper has
/// sent it whole (or dropped it).
pub struct Tracked<B> {
    inner: B,
    _busy: Busy,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, busy: Busy) -> Self {
        Tracked { inner, _busy: busy }
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_counts_from_the_end_of_the_last_request() {
        let a = Activity::new();
        let limit = Duration::from_millis(200);
        let t0 = Instant::now();
        a.idle_for(limit).await;
        let first = t0.elapsed();
        assert!(
            first >= limit && first < limit * 2,
            "idle from the start: {first:?}"
        );

        let busy = a.busy();
        let a2 = a.clone();
        let watch = tokio::spawn(async move { a2.idle_for(limit).await });
        tokio::time::sleep(limit * 3).await;
        assert!(!watch.is_finished(), "a request in progress is not idle");
        let ended = Instant::now();
        drop(busy);
        watch.await.unwrap();
        let after = ended.elapsed();
        assert!(after >= limit && after < limit * 3, "{after:?}");
    }
}
