//! Failed sign-ins, counted per client address and per account: after a
//! few free mistakes each further one doubles the wait before the next
//! try (1 s, 2 s, 4 s, ... at most 15 minutes), answered 429 with
//! `Retry-After`. A success clears the account's count; an address's
//! count is forgotten after a quiet quarter of an hour. The maps are
//! bounded, so a flood of addresses or names cannot grow them forever.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Mistakes allowed before waits start.
const FREE: u32 = 5;
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// A count with no failure for this long is forgotten.
const FORGET: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most per map (the oldest are dropped beyond it).
const CAP: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    last: Instant,
    until: Option<Instant>,
}

struct Counts<K>(Mutex<HashMap<K, Strikes>>);

impl<K: Hash + Eq + Clone> Counts<K> {
    fn new() -> Self {
        Counts(Mutex::new(HashMap::new()))
    }

    /// How long `k` must still wait, if it must.
    fn wait(&self, k: &K, now: Instant) -> Option<Duration> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(k)
            .and_then(|s| s.until)
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn fail(&self, k: K, now: Instant) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= CAP && !m.contains_key(&k) {
            m.retain(|_, s| now.duration_since(s.last) < FORGET);
            if m.len() >= CAP {
                if let Some(oldest) = m.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| k.clone()) {
                    m.remove(&oldest);
                }
            }
        }
        let s = m.entry(k).or_insert(Strikes {
            failures: 0,
            last: now,
            until: None,
        });
        if now.duration_since(s.last) >= FORGET {
            s.failures = 0;
        }
        s.failures += 1;
        s.last = now;
        if s.failures >= FREE {
            let exp = (s.failures - FREE).min(20);
            let wait = Duration::from_secs(1u64 << exp).min(MAX_WAIT);
            s.until = Some(now + wait);
        }
    }

    fn clear(&self, k: &K) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(k);
    }
}

pub struct Limiter {
    by_address: Counts<IpAddr>,
    by_account: Counts<String>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            by_address: Counts::new(),
            by_account: Counts::new(),
        }
    }
}

impl Limiter {
    /// Seconds to wait before this address may try this account again.
    pub fn check(&self, address: IpAddr, account: &str) -> Option<u64> {
        let now = Instant::now();
        let a = self.by_address.wait(&address, now);
        let b = self.by_account.wait(&account.to_ascii_lowercase(), now);
        a.max(b)
            .map(|d| d.as_secs().max(1) + u64::from(d.subsec_nanos() > 0))
    }

    pub fn failed(&self, address: IpAddr, account: &str) {
        let now = Instant::now();
        self.by_address.fail(address, now);
        self.by_account.fail(account.to_ascii_lowercase(), now);
        crate::metrics::sign_in("failed");
    }

    pub fn succeeded(&self, account: &str) {
        self.by_account.clear(&account.to_ascii_lowercase());
        crate::metrics::sign_in("ok");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_free_mistakes_and_double() {
        let c: Counts<u8> = Counts::new();
        let t0 = Instant::now();
        for _ in 0..FREE - 1 {
            c.fail(1, t0);
            assert!(c.wait(&1, t0).is_none());
        }
        c.fail(1, t0);
        assert_eq!(c.wait(&1, t0), Some(Duration::from_secs(1)));
        c.fail(1, t0);
        assert_eq!(c.wait(&1, t0), Some(Duration::from_secs(2)));
        c.fail(1, t0);
        assert_eq!(c.wait(&1, t0), Some(Duration::from_secs(4)));
        assert!(c.wait(&1, t0 + Duration::from_secs(5)).is_none());
        for _ in 0..40 {
            c.fail(1, t0);
        }
        assert_eq!(c.wait(&1, t0), Some(MAX_WAIT));
        c.clear(&1);
        assert!(c.wait(&1, t0).is_none());
    }

    #[test]
    fn a_quiet_quarter_hour_forgets_and_the_map_stays_bounded() {
        let c: Counts<u32> = Counts::new();
        let t0 = Instant::now();
        for _ in 0..FREE {
            c.fail(7, t0);
        }
        let later = t0 + FORGET + Duration::from_secs(1);
        c.fail(7, later);
        assert!(c.wait(&7, later).is_none(), "counting starts over");
        for k in 0..(CAP as u32 + 50) {
            c.fail(k, t0);
        }
        assert!(c.0.lock().unwrap().len() <= CAP);
    }
}
