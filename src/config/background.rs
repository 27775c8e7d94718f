//! Options for the work nobody is waiting for: following the Immich
//! library, the hours background work may run, and the disk it may use.
//! The app's own requests are never held back by any of them.

use std::{fmt, str::FromStr};

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct BackgroundConfig {
    /// Seconds between two looks at the Immich library for new, changed and deleted photos (each new photo gets the default depth model's depth map); 0 turns following off.
    #[arg(long, env = "IMMICH_SYNC_SECS", default_value_t = 300)]
    pub immich_sync_secs: u64,

    /// Seconds the 3D assets of a photo deleted in Immich (gone from its trash too) are kept before they are removed.
    #[arg(long, env = "IMMICH_DELETE_GRACE_SECS", default_value_t = 86_400)]
    pub immich_delete_grace_secs: u64,

    /// Local hours in which background work (uploads, imports, following Immich) runs, as START-END (`1-7`: from 01:00 to 07:00; `22-6` wraps midnight); unset: any time. The app's own requests run at any hour.
    #[arg(long, env = "BACKGROUND_HOURS")]
    pub background_hours: Option<Hours>,

    /// Most disk for 3D assets (bytes, or with K, M, G or T: `50G`); beyond it the least recently viewed assets made in the background are removed, and background work that would only be removed again waits. Unset: no limit.
    #[arg(long, env = "ASSET_DISK_BUDGET")]
    pub asset_disk_budget: Option<ByteSize>,
}

/// `BACKGROUND_HOURS`: a span of local hours, end excluded, that may wrap
/// midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    pub start: u8,
    pub end: u8,
}

impl Hours {
    /// Whether `hour` (0-23) is inside the span.
    pub fn contains(&self, hour: u8) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&hour)
        } else {
            hour >= self.start || hour < self.end
        }
    }
}

impl FromStr for Hours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a span of hours like 1-7 (START-END, 0 to 24)");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let start: u8 = a.trim().parse().map_err(|_| bad())?;
        let end: u8 = b.trim().parse().map_err(|_| bad())?;
        if start > 24 || end > 24 || start % 24 == end % 24 {
            return Err(bad());
        }
        Ok(Hours {
            start: start % 24,
            end: end % 24,
        })
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A number of bytes, written plainly or with a binary suffix (`50G`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || format!("{s:?} is not a size like 500M, 50G or 1T");
        let split = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let unit = unit
            .trim()
            .trim_end_matches(['B', 'b'])
            .trim_end_matches('i');
        let mult: u64 = match unit.to_ascii_uppercase().as_str() {
            "" => 1,
            "K" => 1 << 10,
            "M" => 1 << 20,
            "G" => 1 << 30,
            "T" => 1 << 40,
            _ => return Err(bad()),
        };
        if !n.is_finite() || n <= 0.0 {
            return Err(bad());
        }
        Ok(ByteSize((n * mult as f64) as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_parse_and_wrap() {
        let night: Hours = "1-7".parse().unwrap();
        assert!(night.contains(1) && night.contains(6));
        assert!(!night.contains(7) && !night.contains(0) && !night.contains(23));
        let wrap: Hours = "22-6".parse().unwrap();
        assert!(wrap.contains(23) && wrap.contains(0) && wrap.contains(5));
        assert!(!wrap.contains(6) && !wrap.contains(21));
        let to_midnight: Hours = "20-24".parse().unwrap();
        assert!(to_midnight.contains(23) && !to_midnight.contains(0));
        for bad in ["", "7", "1-1", "0-24", "a-b", "3-25", "-1-4"] {
            assert!(bad.parse::<Hours>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!("1024".parse::<ByteSize>().unwrap().0, 1024);
        assert_eq!("50G".parse::<ByteSize>().unwrap().0, 50 << 30);
        assert_eq!("1.5MiB".parse::<ByteSize>().unwrap().0, 3 << 19);
        assert_eq!("2 tb".parse::<ByteSize>().unwrap().0, 2 << 40);
        for bad in ["", "G", "-1G", "3X", "0"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }
}
