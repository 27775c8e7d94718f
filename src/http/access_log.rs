//! One log line per request: method, path, status, duration. The query
//! string is left out because it may carry tokens.

use std::{sync::Arc, time::Instant};

use poem::{Endpoint, IntoResponse, Request, Response};

pub async fn log<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let result = ep.call(req).await.map(IntoResponse::into_response);
    let status = match &result {
        Ok(resp) => resp.status(),
        Err(e) => e.status(),
    };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let duration_ms = (ms * 10.0).round() / 10.0;
    if status.is_server_error() {
        tracing::warn!(target: "immichvr::access", %method, %path, status = status.as_u16(), duration_ms, "request");
    } else {
        tracing::info!(target: "immichvr::access", %method, %path, status = status.as_u16(), duration_ms, "request");
    }
    result
}
