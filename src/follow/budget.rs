//! `ASSET_DISK_BUDGET`: beyond it, the least recently viewed 3D assets
//! made in the background go first (one never viewed counts as viewed
//! when its photo was taken), never one viewed in the last minutes, never
//! one the app asked for. While the budget is full, background work that
//! would only be removed again waits: a photo newer than what would go
//! next still gets its depth map (and makes room), an older one does not.

use std::time::Duration;

use crate::{
    assets::AssetRow,
    queue::{follow_priority, FOLLOW_PRIORITY},
    timestamp::Timestamp,
    worker::TRIGGER,
};

/// An asset served this recently is being viewed: it is never removed.
pub const VIEWING: Duration = Duration::from_secs(600);
/// Removal goes this far below the budget, so it does not run per job.
const SLACK: f64 = 0.95;

/// What one reading of the disk means.
#[derive(Debug, Default)]
pub struct Verdict {
    /// To remove now, least recently viewed first.
    pub evict: Vec<AssetRow>,
    /// Background work following makes may run below this priority, and why
    /// it waits (`None`: no limit).
    pub bound: Option<(u32, String)>,
}

/// The order of removal: the last view, or the photo's date.
fn age(row: &AssetRow, captured: Option<Timestamp>) -> Timestamp {
    row.accessed_at.or(captured).unwrap_or(row.generated_at)
}

/// `50.0 GiB`, for the words the status shows.
fn human_bytes(n: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `rows`: every asset with its photo's capture date; `viewed`: when it
/// was last served in this run, if it was.
pub fn decide(
    rows: Vec<(AssetRow, Option<Timestamp>, Option<Timestamp>)>,
    used: u64,
    budget: u64,
    now: Timestamp,
) -> Verdict {
    let viewing = chrono::Duration::from_std(VIEWING).unwrap_or_default();
    let mut candidates: Vec<(Timestamp, AssetRow)> = rows
        .into_iter()
        .filter(|(r, _, viewed)| {
            let recent = r
                .accessed_at
                .max(*viewed)
                .is_some_and(|t| *now - *t < viewing);
            r.metadata.get(TRIGGER).map(String::as_str) == Some("background")
                && r.immich_asset_id.is_some()
                && !recent
        })
        .map(|(r, captured, viewed)| {
            let mut r = r;
            r.accessed_at = r.accessed_at.max(viewed);
            (age(&r, captured), r)
        })
        .collect();
    candidates.sort_by_key(|c| c.0);
    let mut verdict = Verdict::default();
    let mut used = used;
    let target = (budget as f64 * SLACK) as u64;
    let mut rest = candidates.into_iter().peekable();
    if used > budget {
        while used > target {
            let Some((_, r)) = rest.next() else { break };
            used = used.saturating_sub(r.file_size);
            verdict.evict.push(r);
        }
    }
    if used >= target {
        let shown = human_bytes(budget);
        verdict.bound = Some(match rest.peek() {
            Some((next, _)) => (
                follow_priority(Some(*next)),
                format!(
                    "ASSET_DISK_BUDGET ({shown}) is full: only photos taken after {} get depth maps now (they replace the least recently viewed)",
                    next.render()
                ),
            ),
            None => (
                FOLLOW_PRIORITY,
                format!("ASSET_DISK_BUDGET ({shown}) is full of 3D assets that are kept (viewed lately, or asked for by the app): following Immich waits for room"),
            ),
        });
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(size: u64, trigger: &str, accessed: Option<Timestamp>) -> AssetRow {
        let mut metadata = BTreeMap::new();
        metadata.insert(TRIGGER.to_string(), trigger.to_string());
        AssetRow {
            id: uuid::Uuid::now_v7(),
            media_item_id: uuid::Uuid::now_v7(),
            immich_asset_id: Some("x".into()),
            kind: crate::assets::Kind::Depth,
            model_key: "small".into(),
            format: crate::assets::Format::Png,
            file_name: "f.png".into(),
            file_size: size,
            width: None,
            height: None,
            checksum: String::new(),
            metadata,
            generated_at: Timestamp::now(),
            access_count: 0,
            accessed_at: accessed,
        }
    }

    fn day(d: i64) -> Timestamp {
        Timestamp(chrono::DateTime::from_timestamp(1_700_000_000 + d * 86_400, 0).unwrap())
    }

    #[test]
    fn the_least_recently_viewed_background_assets_go_first() {
        let now = Timestamp::now();
        let old_photo = row(100, "background", None);
        let new_photo = row(100, "background", None);
        let viewed_long_ago = row(100, "background", Some(day(5)));
        let asked = row(100, "app", None);
        let viewing = row(100, "background", Some(now));
        let rows = vec![
            (new_photo.clone(), Some(day(10)), None),
            (old_photo.clone(), Some(day(1)), None),
            (viewed_long_ago.clone(), Some(day(0)), None),
            (asked.clone(), Some(day(0)), None),
            (viewing.clone(), Some(day(0)), None),
        ];
        let v = decide(rows.clone(), 500, 350, now);
        let gone: Vec<_> = v.evict.iter().map(|r| r.id).collect();
        assert_eq!(
            gone,
            vec![old_photo.id, viewed_long_ago.id],
            "oldest view first"
        );
        assert!(v.bound.is_none(), "room again below the budget");
        // Nearly full: nothing goes yet, but only photos newer than what
        // would go next are made.
        let v = decide(rows, 500, 510, now);
        assert!(v.evict.is_empty());
        let (bound, why) = v.bound.unwrap();
        assert_eq!(bound, follow_priority(Some(day(1))));
        assert!(why.contains("ASSET_DISK_BUDGET"), "{why}");
    }

    #[test]
    fn under_budget_nothing_happens() {
        let v = decide(
            vec![(row(100, "background", None), None, None)],
            100,
            1000,
            Timestamp::now(),
        );
        assert!(v.evict.is_empty() && v.bound.is_none());
    }

    #[test]
    fn kept_assets_alone_hold_all_following() {
        let now = Timestamp::now();
        let v = decide(vec![(row(500, "app", None), None, None)], 500, 400, now);
        assert!(v.evict.is_empty());
        assert_eq!(v.bound.unwrap().0, FOLLOW_PRIORITY);
    }
}
