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
pub mod https;
pub mod idle;
pub mod per_ip;
pub mod server;
pub mod spec;

/// A request header as text, if it is there and is text.
pub fn header(req: &poem::Request, name: poem::http::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Whether the client's `Accept-Encoding` takes gzip (`gzip` or `*`, not
/// with `q=0`). gzip is the one encoding this service sends: flate2 is
/// linked anyway, brotli and zstd would add 1.6 MB to the binary.
pub fn accepts_gzip(req: &poem::Request) -> bool {
    header(req, poem::http::header::ACCEPT_ENCODING).is_some_and(|v| {
        v.split(',').any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

/// `bytes` gzipped at `level` (1 fastest, 9 smallest).
pub fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(bytes)
        .and_then(|()| enc.finish())
        .expect("writing to memory")
}

/// The part of poem-openapi's `Type` that is the same for every type that
/// is its own raw value (a JSON scalar or a passed-on object).
macro_rules! own_raw_value {
    () => {
        const IS_REQUIRED: bool = true;
        type RawValueType = Self;
        type RawElementValueType = Self;

        fn as_raw_value(&self) -> Option<&Self::RawValueType> {
            Some(self)
        }

        fn raw_element_iter<'a>(
            &'a self,
        ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
            Box::new(self.as_raw_value().into_iter())
        }
    };
}
pub(crate) use own_raw_value;
