//! Background tasks with names, so their log lines say which task wrote them.

use tracing::Instrument;

/// Spawns `fut` inside a span carrying `name`.
pub fn spawn_named<F>(name: &'static str, fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(fut.instrument(tracing::info_span!("task", name)))
}
