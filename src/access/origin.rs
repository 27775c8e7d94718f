//! Where a request was sent and from which page: the scheme the client
//! used, the host it named and the `Origin` a browser attached, read the
//! same way for HTTP/1.1 (`Host`), HTTP/2 (`:authority`, no `Host`), TLS,
//! and a TLS-terminating reverse proxy (`X-Forwarded-Proto`/`-Host` or
//! `Forwarded`, believed only from `TRUSTED_PROXIES`).

use std::net::IpAddr;

use ipnet::IpNet;
use poem::http::{header, HeaderMap, Uri};

/// One request's facts, from a poem request or a bare request head (the
/// Socket.IO handshake is served before poem sees it).
pub struct Facts<'a> {
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The connection is TLS (our own HTTPS).
    pub tls: bool,
    /// The peer's address (a proxy's, behind one).
    pub peer: IpAddr,
}

/// What the client used to reach us, once proxies are accounted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `https` or `http`.
    pub https: bool,
    /// The host (and port, if one was named) the client asked for,
    /// lowercased; empty when the request named none.
    pub authority: String,
    /// The client's address: the peer, or the one a trusted proxy names.
    pub client: IpAddr,
    /// The request came through a proxy we trust.
    pub proxied: bool,
}

/// A scheme, host and port, as browsers compare origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// `scheme://host[:port]`; `None` for `null`, other schemes or junk.
    pub fn parse(s: &str) -> Option<Origin> {
        let s = s.trim().trim_end_matches('/');
        let (scheme, rest) = s.split_once("://")?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_authority(rest, https)?;
        Some(Origin { https, host, port })
    }

    /// The origin a request was sent to: its scheme and authority.
    pub fn of(seen: &Seen) -> Option<Origin> {
        if seen.authority.is_empty() {
            return None;
        }
        let (host, port) = split_authority(&seen.authority, seen.https)?;
        Some(Origin {
            https: seen.https,
            host,
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            write!(f, "{scheme}://{}", self.host)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `host[:port]` (IPv6 in brackets) into a lowercase host and a port,
/// the scheme's default when none is named.
fn split_authority(a: &str, https: bool) -> Option<(String, u16)> {
    let a = a.trim().to_ascii_lowercase();
    let default = if https { 443 } else { 80 };
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        (format!("[{h}]"), port)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (a.clone(), default),
        }
    };
    let host = host.trim_end_matches('.').to_string();
    (!host.is_empty()).then_some((host, port))
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone)]
pub struct Proxies(Vec<IpNet>);

impl Proxies {
    /// A comma-separated list of addresses and CIDR blocks; the words
    /// that do not parse are returned for the start-up error.
    pub fn parse(list: &str) -> Result<Proxies, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| item.to_string())?;
            nets.push(net);
        }
        Ok(Proxies(nets))
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }
}

/// `::ffff:1.2.3.4` counts as `1.2.3.4`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The first element of a forwarding list: what the proxy nearest the
/// client recorded (a chain of our own trusted proxies is one hop to us).
fn first(list: &str) -> &str {
    list.split(',').next().unwrap_or("").trim()
}

/// `proto`, `host` and `for` of RFC 7239's `Forwarded` (first element).
fn forwarded(h: &HeaderMap) -> (Option<String>, Option<String>, Option<String>) {
    let (mut proto, mut host, mut by_for) = (None, None, None);
    if let Some(v) = text(h, "forwarded") {
        for pair in first(v).split(';') {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "proto" => proto = Some(v),
                "host" => host = Some(v),
                "for" => by_for = Some(v),
                _ => {}
            }
        }
    }
    (proto, host, by_for)
}

/// An address from `X-Forwarded-For` or `Forwarded: for=` (with or
/// without a port, IPv6 in brackets).
fn client_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    s.rsplit_once(':')?.0.parse().ok()
}

impl Facts<'_> {
    /// The authority the client named: HTTP/2's `:authority` (the URI's),
    /// else the `Host` header.
    fn authority(&self) -> String {
        self.uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| text(self.headers, header::HOST.as_str()).map(str::to_string))
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    pub fn seen(&self, proxies: &Proxies) -> Seen {
        let direct = Seen {
            https: self.tls,
            authority: self.authority(),
            client: canonical(self.peer),
            proxied: false,
        };
        if !proxies.trusts(self.peer) {
            return direct;
        }
        let (f_proto, f_host, f_for) = forwarded(self.headers);
        let proto = f_proto
            .or_else(|| text(self.headers, "x-forwarded-proto").map(|p| first(p).to_string()));
        let host =
            f_host.or_else(|| text(self.headers, "x-forwarded-host").map(|h| first(h).to_string()));
        let client = f_for
            .as_deref()
            .and_then(client_addr)
            .or_else(|| text(self.headers, "x-forwarded-for").and_then(|v| client_addr(first(v))));
        if proto.is_none() && host.is_none() && client.is_none() {
            return direct;
        }
        Seen {
            https: match proto.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("https") | Some("wss") => true,
                Some("http") | Some("ws") => false,
                _ => self.tls,
            },
            authority: host
                .filter(|h| !h.is_empty())
                .map(|h| h.to_ascii_lowercase())
                .unwrap_or(direct.authority),
            client: client.map(canonical).unwrap_or(direct.client),
            proxied: true,
        }
    }

    pub fn origin(&self) -> Option<&str> {
        text(self.headers, header::ORIGIN.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::HeaderValue;

    fn facts<'a>(uri: &'a Uri, h: &'a HeaderMap, tls: bool, peer: &str) -> Facts<'a> {
        Facts {
            uri,
            headers: h,
            tls,
            peer: peer.parse().unwrap(),
        }
    }

    #[test]
    fn origins_parse_with_default_ports() {
        let o = Origin::parse("https://Pi.Local").unwrap();
        assert_eq!((o.https, o.host.as_str(), o.port), (true, "pi.local", 443));
        let o = Origin::parse("http://127.0.0.1:3820/").unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (false, "127.0.0.1", 3820)
        );
        let o = Origin::parse("https://[::1]:8443").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("[::1]", 8443));
        for bad in [
            "null",
            "file://x",
            "https://",
            "https://a/b",
            "https://a:x",
            "ftp://a",
        ] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            Origin::parse("https://a:443").unwrap().to_string(),
            "https://a"
        );
        assert_eq!(
            Origin::parse("http://a:3000").unwrap().to_string(),
            "http://a:3000"
        );
    }

    #[test]
    fn http2_authority_counts_like_host() {
        let uri: Uri = "https://127.0.0.1:3820/api/settings".parse().unwrap();
        let h = HeaderMap::new();
        let seen = facts(&uri, &h, true, "127.0.0.1").seen(&Proxies::parse("").unwrap());
        assert_eq!(seen.authority, "127.0.0.1:3820");
        assert!(seen.https);
        let origin = Origin::of(&seen).unwrap();
        assert_eq!(Origin::parse("https://127.0.0.1:3820"), Some(origin));
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let uri: Uri = "/api/settings".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("Photos.Example.org"),
        );
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("192.168.1.20, 10.0.0.2"),
        );
        let proxies = Proxies::parse("127.0.0.0/8, ::1").unwrap();
        let via = facts(&uri, &h, false, "127.0.0.1").seen(&proxies);
        assert!(via.https && via.proxied);
        assert_eq!(via.authority, "photos.example.org");
        assert_eq!(via.client, "192.168.1.20".parse::<IpAddr>().unwrap());
        let direct = facts(&uri, &h, false, "192.168.1.9").seen(&proxies);
        assert!(!direct.https && !direct.proxied);
        assert_eq!(direct.authority, "127.0.0.1:3000");
        assert_eq!(direct.client, "192.168.1.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn rfc7239_forwarded_is_read() {
        let uri: Uri = "/".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "forwarded",
            HeaderValue::from_static(
                "for=\"[2001:db8::1]:4711\";proto=https;host=vr.lan, for=10.0.0.1",
            ),
        );
        let seen =
            facts(&uri, &h, false, "::ffff:127.0.0.1").seen(&Proxies::parse("127.0.0.1").unwrap());
        assert!(seen.https);
        assert_eq!(seen.authority, "vr.lan");
        assert_eq!(seen.client, "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn proxy_lists_refuse_junk() {
        assert_eq!(
            Proxies::parse("10.0.0.0/8, nonsense").unwrap_err(),
            "nonsense"
        );
        assert!(Proxies::parse("172.16.0.0/12")
            .unwrap()
            .trusts("172.20.1.1".parse().unwrap()));
    }
}
