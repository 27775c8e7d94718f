//! What seeing an asset means for it: a pure decision from what was
//! known and what Immich says now, so every case has a unit test.

use super::{AssetState, Followed, Skip};
use crate::{
    immich::{Asset, AssetType},
    timestamp::Timestamp,
};

/// What the sweep does about the asset's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Its depth map is wanted: made unless stored or on its way.
    /// `redo`: it changed, make it again (and drop its other 3D assets,
    /// made from what it was). `revive`: it is wanted again (back from
    /// the trash or the archive, or its preview is ready), so a job that
    /// was cancelled runs again.
    Want {
        redo: bool,
        revive: bool,
    },
    /// Not wanted any more: a job still waiting is cancelled.
    Cancel,
}

/// The checksum and the thumbhash: the second changes when Immich makes
/// the previews again after an edit.
pub fn fingerprint(a: &Asset) -> String {
    format!(
        "{}/{}",
        a.checksum.as_deref().unwrap_or(""),
        a.thumbhash.as_deref().unwrap_or("")
    )
}

/// The asset's new row and what to do. `sweep`: the full sweep it is seen
/// in, if it is one.
pub fn plan(
    prev: Option<&Followed>,
    a: &Asset,
    sweep: Option<Timestamp>,
    now: Timestamp,
) -> (Followed, Action) {
    let fp = fingerprint(a);
    let visibility = a.visibility.as_deref().unwrap_or("timeline");
    let kind = AssetType::of(&a.asset_type);
    let was = prev.map(|p| &p.state);
    let was_wanted = matches!(was, Some(AssetState::Wanted));
    let changed = prev.is_some_and(|p| p.fingerprint != fp);
    let (state, action) = if a.is_trashed {
        let since = match was {
            Some(AssetState::Trashed { since }) => *since,
            _ => now,
        };
        (AssetState::Trashed { since }, Action::Cancel)
    } else if visibility == "locked" {
        // Moved to the locked folder: to be shown nowhere, like a deletion.
        let since = match was {
            Some(AssetState::Gone { since }) => *since,
            _ => now,
        };
        (AssetState::Gone { since }, Action::Cancel)
    } else if kind == AssetType::Video {
        let reason = if visibility == "hidden" {
            Skip::Hidden
        } else {
            Skip::Video
        };
        (AssetState::Skipped { reason }, Action::Nothing)
    } else if kind != AssetType::Image {
        let reason = Skip::NotAPhoto;
        (AssetState::Skipped { reason }, Action::Nothing)
    } else if visibility == "hidden" {
        let reason = Skip::Hidden;
        (AssetState::Skipped { reason }, Action::Cancel)
    } else if visibility == "archive" {
        let reason = Skip::Archived;
        (AssetState::Skipped { reason }, Action::Cancel)
    } else if a.thumbhash.is_none() {
        (AssetState::NoPreview, Action::Nothing)
    } else {
        match was {
            Some(AssetState::Evicted { at }) if !changed => {
                (AssetState::Evicted { at: *at }, Action::Nothing)
            }
            Some(AssetState::Wanted) if !changed => (AssetState::Wanted, Action::Nothing),
            _ => (
                AssetState::Wanted,
                Action::Want {
                    redo: changed && prev.is_some_and(|p| p.media_id.is_some()),
                    revive: !was_wanted,
                },
            ),
        }
    };
    let row = Followed {
        asset_id: a.id.clone(),
        file_name: a.original_file_name.clone(),
        fingerprint: fp,
        captured_at: a.file_created_at,
        updated_at: a.updated_at,
        state,
        media_id: prev.and_then(|p| p.media_id),
        seen_in: sweep.or(prev.and_then(|p| p.seen_in)),
        checked_at: Some(now),
    };
    (row, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(id: &str, thumbhash: Option<&str>) -> Asset {
        serde_json::from_value(serde_json::json!({
            "id": id, "type": "IMAGE", "originalFileName": "a.jpg", "checksum": "c1",
            "thumbhash": thumbhash, "visibility": "timeline", "isTrashed": false,
            "fileCreatedAt": "2025-01-01T00:00:00.000Z", "updatedAt": "2025-01-02T00:00:00.000Z"
        }))
        .unwrap()
    }

    /// Wanted again, nothing to redo.
    const REVIVE: Action = Action::Want {
        redo: false,
        revive: true,
    };

    fn now() -> Timestamp {
        Timestamp::now()
    }

    #[test]
    fn a_new_photo_is_wanted_once() {
        let a = asset("a", Some("t1"));
        let (row, act) = plan(None, &a, None, now());
        assert_eq!(row.state, AssetState::Wanted);
        assert_eq!(act, REVIVE);
        let mut known = row.clone();
        known.media_id = Some(uuid::Uuid::nil());
        let (again, act) = plan(Some(&known), &a, None, now());
        assert_eq!(act, Action::Nothing, "seen again unchanged: nothing");
        assert_eq!(again.media_id, known.media_id);
    }

    #[test]
    fn an_edit_is_redone_and_a_new_preview_counts_as_one() {
        let mut known = plan(None, &asset("a", Some("t1")), None, now()).0;
        known.media_id = Some(uuid::Uuid::nil());
        let (_, act) = plan(Some(&known), &asset("a", Some("t2")), None, now());
        assert_eq!(
            act,
            Action::Want {
                redo: true,
                revive: false
            }
        );
    }

    #[test]
    fn no_preview_waits_then_is_wanted() {
        let (row, act) = plan(None, &asset("a", None), None, now());
        assert_eq!(
            (row.state.clone(), act),
            (AssetState::NoPreview, Action::Nothing)
        );
        let (row, act) = plan(Some(&row), &asset("a", Some("t")), None, now());
        assert_eq!(row.state, AssetState::Wanted);
        assert_eq!(act, REVIVE);
    }

    #[test]
    fn trash_keeps_its_date_and_a_restore_revives() {
        let known = plan(None, &asset("a", Some("t")), None, now()).0;
        let mut trashed = asset("a", Some("t"));
        trashed.is_trashed = true;
        let t0 = now();
        let (row, act) = plan(Some(&known), &trashed, None, t0);
        assert_eq!(act, Action::Cancel);
        let (row2, _) = plan(Some(&row), &trashed, None, Timestamp::now());
        assert_eq!(row2.state, AssetState::Trashed { since: t0 });
        let (back, act) = plan(Some(&row2), &asset("a", Some("t")), None, now());
        assert_eq!(back.state, AssetState::Wanted);
        assert_eq!(act, REVIVE);
    }

    #[test]
    fn videos_archive_hidden_and_locked() {
        let mut v = asset("v", Some("t"));
        v.asset_type = "VIDEO".into();
        assert_eq!(
            plan(None, &v, None, now()).0.state,
            AssetState::Skipped {
                reason: Skip::Video
            }
        );
        v.visibility = Some("hidden".into());
        assert_eq!(
            plan(None, &v, None, now()).0.state,
            AssetState::Skipped {
                reason: Skip::Hidden
            }
        );
        let mut a = asset("a", Some("t"));
        a.visibility = Some("archive".into());
        let (row, act) = plan(None, &a, None, now());
        assert_eq!(
            row.state,
            AssetState::Skipped {
                reason: Skip::Archived
            }
        );
        assert_eq!(act, Action::Cancel);
        a.visibility = Some("locked".into());
        assert!(matches!(
            plan(None, &a, None, now()).0.state,
            AssetState::Gone { .. }
        ));
    }

    #[test]
    fn an_evicted_photo_stays_so_until_it_changes() {
        let mut known = plan(None, &asset("a", Some("t")), None, now()).0;
        known.media_id = Some(uuid::Uuid::nil());
        known.state = AssetState::Evicted { at: now() };
        let (row, act) = plan(Some(&known), &asset("a", Some("t")), None, now());
        assert!(matches!(row.state, AssetState::Evicted { .. }));
        assert_eq!(act, Action::Nothing);
        let (_, act) = plan(Some(&known), &asset("a", Some("t2")), None, now());
        assert_eq!(
            act,
            Action::Want {
                redo: true,
                revive: true
            }
        );
    }
}
