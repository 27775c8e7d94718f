//! The DNS-rebinding guard: which `Host` names the service answers while
//! it needs no credentials.

use std::net::IpAddr;

/// Zones only a local network resolves.
const LOCAL_ZONES: &[&str] = &[
    "local",
    "lan",
    "home",
    "home.arpa",
    "internal",
    "localdomain",
];

/// Which `Host` names the service answers while it needs no credentials.
/// A page on the internet can point its own DNS name at a LAN address
/// ("DNS rebinding") and drive an open API from a visitor's browser; its
/// `Host` is then that dotted name. IP literals, `localhost`, this
/// machine's own name and single-label names (a compose service such as
/// `backend`, as a reverse proxy sends) are always fine.
pub struct HostRules {
    allowed: Vec<String>,
    machine: Option<String>,
}

impl HostRules {
    pub fn new(allowed: Option<&str>) -> Self {
        let allowed = allowed
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        HostRules { allowed, machine }
    }

    /// `host` as sent, possibly with a port and IPv6 brackets.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if host.starts_with('[') {
            return true; // an IPv6 literal
        }
        let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host);
        let name = name.trim_end_matches('.');
        if name.parse::<IpAddr>().is_ok() || !name.contains('.') {
            return true;
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        // The machine's own name, bare or in a home network's local zones.
        if self.machine.as_deref().is_some_and(|m| {
            m == name
                || name.strip_prefix(m).is_some_and(|zone| {
                    LOCAL_ZONES.contains(&zone.trim_start_matches('.')) && zone.starts_with('.')
                })
        }) {
            return true;
        }
        self.allowed.iter().any(|a| match a.strip_prefix("*.") {
            Some(suffix) => name.ends_with(&format!(".{suffix}")),
            None => a == name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::HostRules;

    #[test]
    fn dotted_names_need_listing() {
        let r = HostRules {
            allowed: vec!["photos.example.org".into(), "*.lan.example".into()],
            machine: Some("nas".into()),
        };
        for ok in [
            "127.0.0.1:3000",
            "[::1]:3000",
            "192.168.1.5",
            "localhost:3000",
            "backend",
            "backend:3000",
            "nas.local",
            "photos.example.org",
            "a.lan.example:443",
        ] {
            assert!(r.allows(ok), "{ok}");
        }
        for no in [
            "evil.example.com",
            "evil.example.com:3000",
            "nas.evil.com",
            "lan.example",
        ] {
            assert!(!r.allows(no), "{no}");
        }
    }
}
