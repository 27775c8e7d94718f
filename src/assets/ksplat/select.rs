//! Deterministic decimation.
//!
//! Upstream tooling drops a random share of splats with an unseeded RNG, so the
//! same input never gives the same file. Here the choice is a pure function of
//! (count, fraction, seed): Knuth's selection sampling (Algorithm S) keeps
//! exactly `floor(fraction * n)` items, in their original order, in one pass
//! and without allocating.

/// SplitMix64: tiny, fast, and every seed (including 0) gives a good stream.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// How many of `n` items a keep fraction retains. NaN means "no decimation"
/// (losing data silently on a bad option is worse than keeping it all);
/// everything else is clamped to [0, 1].
pub(crate) fn keep_count(n: usize, fraction: f64) -> usize {
    let fraction = if fraction.is_nan() {
        1.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    // `as` saturates, and `min` guards against 1.0 * n rounding above n.
    ((n as f64 * fraction).floor() as usize).min(n)
}

/// Iterator over the indices `0..n` that survive decimation, ascending.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    rng: SplitMix64,
    needed: usize,
    remaining: usize,
    next: usize,
}

impl Selection {
    pub(crate) fn new(n: usize, fraction: f64, seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
            needed: keep_count(n, fraction),
            remaining: n,
            next: 0,
        }
    }
}

impl Iterator for Selection {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.needed > 0 {
            let index = self.next;
            self.next += 1;
            // Take with probability needed/remaining; once every remaining
            // item is needed, take them all without consuming randomness.
            let take = self.needed == self.remaining
                || self.rng.next_f64() * (self.remaining as f64) < self.needed as f64;
            self.remaining -= 1;
            if take {
                self.needed -= 1;
                return Some(index);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.needed, Some(self.needed))
    }
}

impl ExactSizeIterator for Selection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exactly_floor_of_fraction() {
        for &(n, f, want) in &[
            (0usize, 0.65, 0usize),
            (1, 0.65, 0),
            (2, 0.65, 1),
            (10, 0.65, 6),
            (1000, 0.65, 650),
            (12345, 0.5, 6172),
            (777, 1.0, 777),
            (777, 0.0, 0),
            (777, 1.5, 777),
            (777, -0.5, 0),
            (777, f64::NAN, 777),
        ] {
            let picked: Vec<usize> = Selection::new(n, f, 7).collect();
            assert_eq!(picked.len(), want, "n={n} f={f}");
            assert!(picked.windows(2).all(|w| w[0] < w[1]), "ascending, unique");
            assert!(picked.iter().all(|&i| i < n));
        }
    }

    #[test]
    fn same_seed_same_selection_other_seed_differs() {
        let a: Vec<usize> = Selection::new(10_000, 0.65, 42).collect();
        let b: Vec<usize> = Selection::new(10_000, 0.65, 42).collect();
        let c: Vec<usize> = Selection::new(10_000, 0.65, 43).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn selection_is_roughly_uniform() {
        // Each half of the input should keep close to 65% of its items.
        let picked: Vec<usize> = Selection::new(100_000, 0.65, 1).collect();
        let first_half = picked.iter().filter(|&&i| i < 50_000).count();
        assert!((31_500..33_500).contains(&first_half), "{first_half}");
    }
}
