//! `GET /metrics` in the Prometheus text format (prometheus-client).
//!
//! Event metrics (durations, errors, bytes) live in one process-wide set
//! so that instrumented code calls one function and carries no handle.
//! State metrics (queue counts, totals, database size) are read from the
//! service at scrape time, so they can never disagree with the API.

use std::{sync::LazyLock, time::Duration};

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use crate::queue::{Stats, Status};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    endpoint: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

struct Events {
    processing: Histogram,
    ai_duration: Family<EndpointLabel, Histogram>,
    ai_errors: Family<ErrorLabel, Counter>,
    upload_bytes: Counter,
    uploads: Counter,
    immich_errors: Counter,
    sign_ins: Family<OutcomeLabel, Counter>,
}

/// 0.05 s to ~27 min: a thumbnail on a GPU to a long video on a CPU.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 16))
}

static EVENTS: LazyLock<Events> = LazyLock::new(|| Events {
    processing: duration_histogram(),
    ai_duration: Family::new_with_constructor(duration_histogram),
    ai_errors: Family::default(),
    upload_bytes: Counter::default(),
    uploads: Counter::default(),
    immich_errors: Counter::default(),
    sign_ins: Family::default(),
});

/// One item's processing finished (any outcome), after `elapsed`.
pub fn item_processed(elapsed: Duration) {
    EVENTS.processing.observe(elapsed.as_secs_f64());
}

/// One request to an AI endpoint; `error` is the failure's kind, if any.
pub fn ai_request(endpoint: &str, elapsed: Duration, error: Option<&str>) {
    let endpoint = endpoint_label(endpoint);
    EVENTS
        .ai_duration
        .get_or_create(&EndpointLabel {
            endpoint: endpoint.clone(),
        })
        .observe(elapsed.as_secs_f64());
    if let Some(kind) = error {
        EVENTS
            .ai_errors
            .get_or_create(&ErrorLabel {
                endpoint,
                kind: kind.to_string(),
            })
            .inc();
    }
}

/// One upload stored, `bytes` long.
pub fn upload_received(bytes: u64) {
    EVENTS.uploads.inc();
    EVENTS.upload_bytes.inc_by(bytes);
}

/// A request to Immich failed (connection, status, or unusable answer).
pub fn immich_request_error() {
    EVENTS.immich_errors.inc();
}

/// One sign-in attempt: `ok`, `failed` (wrong credentials) or
/// `throttled` (refused with 429 before Immich was asked).
pub fn sign_in(outcome: &str) {
    EVENTS
        .sign_ins
        .get_or_create(&OutcomeLabel {
            outcome: outcome.to_string(),
        })
        .inc();
}

/// `scheme://host:port` only: an AI URL may carry credentials or a path.
fn endpoint_label(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "invalid".into(),
    }
}

/// The state the exposition shows, read by the caller at scrape time.
pub struct Facts {
    pub stats: Stats,
    pub processed: u64,
    pub failed: u64,
    pub db_size: u64,
    pub commits: u64,
}

/// The whole exposition.
pub fn render(facts: &Facts) -> String {
    let stats = &facts.stats;

    let mut reg = Registry::with_prefix("immichvr");
    // A fresh family per scrape: every status appears, even at zero.
    let queue = Family::<StatusLabel, Gauge>::default();
    for status in Status::ALL {
        queue
            .get_or_create(&StatusLabel {
                status: status.as_str().to_string(),
            })
            .set(stats.get(status) as i64);
    }
    reg.register("queue_items", "Queue items by status", queue);
    reg.register(
        "items_processed",
        "Items turned into depth maps since start",
        ConstCounter::new(facts.processed),
    );
    reg.register(
        "items_failed",
        "Items failed for good since start",
        ConstCounter::new(facts.failed),
    );
    reg.register(
        "database_size_bytes",
        "Size of the database file",
        ConstGauge::new(facts.db_size as i64),
    );
    reg.register(
        "database_commits",
        "Database commits since start; fewer than writes when concurrent writes share one",
        ConstCounter::new(facts.commits),
    );
    let e = &*EVENTS;
    macro_rules! register {
        ($($name:literal, $help:literal, $metric:expr;)*) => {
            $(reg.register($name, $help, $metric.clone());)*
        };
    }
    register! {
        "processing_duration_seconds", "Time to process one queue item, any outcome", e.processing;
        "ai_request_duration_seconds", "Duration of requests to the AI service, per endpoint", e.ai_duration;
        "ai_request_errors", "Failed requests to the AI service, per endpoint and kind", e.ai_errors;
        "upload_bytes", "Bytes of uploads stored", e.upload_bytes;
        "uploads", "Uploads stored", e.uploads;
        "immich_request_errors", "Failed requests to Immich", e.immich_errors;
        "sign_ins", "Sign-in attempts by outcome (ok, failed, throttled)", e.sign_ins;
    }
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String cannot fail");
    out
}
