//! The forward pass's stage timer.

/// Where a forward pass spends its time, summed per stage, logged at debug
/// level (`RUST_LOG=immichvr::engine=debug`); free when that is off.
pub(super) struct Clock {
    on: bool,
    at: std::time::Instant,
    stages: Vec<(&'static str, f64)>,
}

impl Clock {
    pub(super) fn new() -> Self {
        Clock {
            on: tracing::enabled!(tracing::Level::DEBUG),
            at: std::time::Instant::now(),
            stages: Vec::new(),
        }
    }

    pub(super) fn lap(&mut self, stage: &'static str) {
        if !self.on {
            return;
        }
        let s = self.at.elapsed().as_secs_f64();
        self.at = std::time::Instant::now();
        match self.stages.iter_mut().find(|(n, _)| *n == stage) {
            Some((_, t)) => *t += s,
            None => self.stages.push((stage, s)),
        }
    }

    pub(super) fn report(&self, h: usize, w: usize) {
        if self.on {
            let stages: Vec<String> = self
                .stages
                .iter()
                .map(|(n, t)| format!("{n} {:.0} ms", t * 1000.0))
                .collect();
            tracing::debug!(height = h, width = w, "forward pass: {}", stages.join(", "));
        }
    }
}
