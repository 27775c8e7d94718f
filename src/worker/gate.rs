//! Whether background work may be claimed now. The app's own requests
//! (priority 0) always may; everything else (uploads, imports, what
//! following Immich makes) waits while the worker is stopped, outside
//! `BACKGROUND_HOURS`, or, for work that following made, while the disk
//! budget has no room for it.

use std::sync::{
    atomic::{AtomicBool, AtomicU32, Ordering},
    Mutex,
};

use chrono::{DateTime, Local, Timelike};

use crate::{config::background::Hours, queue::INTERACTIVE_PRIORITY};

pub struct Gate {
    running: AtomicBool,
    hours: Option<Hours>,
    /// Claims stay below this priority (`u32::MAX`: no limit): the disk
    /// budget sets it inside the band of work following makes.
    budget_bound: AtomicU32,
    budget_reason: Mutex<Option<String>>,
}

/// Why background work waits, in the words the status shows.
pub const STOPPED: &str = "the worker is stopped: background work waits until it is started";

impl Gate {
    pub fn new(hours: Option<Hours>) -> Self {
        Gate {
            running: AtomicBool::new(false),
            hours,
            budget_bound: AtomicU32::new(u32::MAX),
            budget_reason: Mutex::new(None),
        }
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Returns whether it changed.
    pub fn set_running(&self, on: bool) -> bool {
        self.running.swap(on, Ordering::SeqCst) != on
    }

    pub fn hours(&self) -> Option<Hours> {
        self.hours
    }

    /// The disk budget's bound on claims, and why (`None`: no bound).
    pub fn set_budget(&self, bound: Option<(u32, String)>) {
        let (b, r) = match bound {
            Some((b, r)) => (b, Some(r)),
            None => (u32::MAX, None),
        };
        self.budget_bound.store(b, Ordering::SeqCst);
        *self.budget_reason.lock().unwrap_or_else(|e| e.into_inner()) = r;
    }

    /// Why background work waits right now (`None`: it runs).
    pub fn held(&self, now: DateTime<Local>) -> Option<String> {
        if !self.running() {
            return Some(STOPPED.into());
        }
        match self.hours {
            Some(h) if !h.contains(now.hour() as u8) => Some(format!(
                "outside BACKGROUND_HOURS ({h}): background work resumes at {:02}:00",
                h.start
            )),
            _ => None,
        }
    }

    /// What the disk budget holds back, if anything.
    pub fn budget_reason(&self) -> Option<String> {
        self.budget_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Claims take items of a priority below this.
    pub fn bound(&self, now: DateTime<Local>) -> u32 {
        if self.held(now).is_some() {
            INTERACTIVE_PRIORITY + 1
        } else {
            self.budget_bound.load(Ordering::SeqCst)
        }
    }

    /// How long until the hours may let background work in again (for
    /// the dispatcher's timer); `None` when the hours do not hold it.
    pub fn until_open(&self, now: DateTime<Local>) -> Option<std::time::Duration> {
        let h = self.hours?;
        if h.contains(now.hour() as u8) {
            return None;
        }
        let secs_into_hour = now.minute() as u64 * 60 + now.second() as u64;
        Some(std::time::Duration::from_secs(
            (3600 - secs_into_hour).max(1),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stopped_and_quiet_hours_hold_background_work_only() {
        let g = Gate::new(Some("1-7".parse().unwrap()));
        let at = |h| Local.with_ymd_and_hms(2026, 3, 1, h, 30, 0).unwrap();
        assert_eq!(g.bound(at(3)), 1, "stopped: only the app's requests");
        g.set_running(true);
        assert_eq!(g.bound(at(3)), u32::MAX);
        assert!(g.held(at(3)).is_none());
        assert_eq!(g.bound(at(12)), 1);
        assert!(g.held(at(12)).unwrap().contains("resumes at 01:00"));
        assert!(g.until_open(at(12)).unwrap().as_secs() <= 1800);
        g.set_budget(Some((5000, "full".into())));
        assert_eq!(g.bound(at(3)), 5000);
        assert_eq!(g.budget_reason().as_deref(), Some("full"));
    }
}
