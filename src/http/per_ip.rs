//! What each client address holds of a shared budget (connections, live
//! sessions), so that one address cannot take what all share.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

/// Counts per client address.
#[derive(Default)]
pub struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One unit of an address's count, given back when dropped.
pub struct IpShare {
    owner: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// A share for `ip` (`::ffff:1.2.3.4` counts as `1.2.3.4`), unless it
    /// already holds `max`.
    pub fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpShare> {
        let ip = canonical(ip);
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpShare {
            owner: self.clone(),
            ip,
        })
    }
}

impl Drop for IpShare {
    fn drop(&mut self) {
        let mut m = self.owner.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// `::ffff:1.2.3.4` is `1.2.3.4`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_back_and_mapped_addresses_count_as_one() {
        let p = Arc::new(PerIp::default());
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let a = p.take(v4, 2).unwrap();
        let _b = p.take(mapped, 2).unwrap();
        assert!(p.take(v4, 2).is_none());
        assert!(p.take("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(p.take(mapped, 2).is_some());
    }
}
