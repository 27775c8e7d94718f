//! The HTTP side below the routes: our accept loop with its connection
//! limits and deadlines, the checks every request passes, error rendering,
//! the access log, a body extractor and the Swagger UI.

pub mod access_log;
pub mod allow;
pub mod body;
pub mod codes;
pub mod conn;
pub mod docs;
pub mod error;
pub mod guard;
pub mod server;

/// A request header as text, if it is there and is text.
pub fn header(req: &poem::Request, name: poem::http::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}
