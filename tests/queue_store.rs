//! The queue's state machine on real storage: ordering, atomic claims,
//! legal and illegal transitions, counters equal to a recount.

mod common;

use std::sync::Arc;

use chrono::Utc;
use immichvr::{
    app::open_state,
    catalog::CatalogError,
    media::{store as mstore, MediaError, MediaRow, MediaType, Source},
    queue::{priority, query, store as qstore, NewItem, QueueError, QueueRow, Status},
    state::AppState,
    storage::StorageError,
};
use proptest::prelude::*;
use uuid::Uuid;

fn media_row(t: MediaType, size: u64) -> MediaRow {
    let now = Utc::now();
    MediaRow {
        id: Uuid::now_v7(),
        original_filename: "x".into(),
        media_type: t,
        file_path: "/nonexistent".into(),
        file_size: size,
        mime_type: "image/png".into(),
        width: None,
        height: None,
        duration_seconds: None,
        frame_rate: None,
        checksum: String::new(),
        captured_at: None,
        uploaded_at: now.into(),
        source: Source::Upload,
        immich_asset_id: None,
        immich_variant: None,
        created_at: now.into(),
        updated_at: now.into(),
        seq: 0,
        owner: None,
        via: None,
    }
}

/// Inserts media + queue rows for each (type, size), in one transaction each.
async fn insert_many(state: &Arc<AppState>, items: Vec<(MediaType, u64)>) -> Vec<QueueRow> {
    state
        .store
        .write(move |txn| {
            let mut out = Vec::new();
            for &(t, size) in &items {
                let row = media_row(t, size);
                let sha = Uuid::new_v4().as_bytes().to_vec();
                let m = mstore::insert(txn, row, &sha)?;
                let item = NewItem {
                    media_id: m.id,
                    media_type: m.media_type,
                    file_size: m.file_size,
                    original_filename: m.original_filename.clone(),
                    max_attempts: 3,
                    kind: immichvr::assets::Kind::Depth,
                    model_key: "small".into(),
                    priority: None,
                };
                out.push(qstore::insert_new(txn, &item)?);
            }
            Ok::<_, StorageError>(out)
        })
        .await
        .unwrap()
}

async fn state() -> (Arc<AppState>, tempfile::TempDir) {
    let (c, tmp) = common::test_config();
    (open_state(c).await.unwrap(), tmp)
}

async fn assert_counters(state: &Arc<AppState>) {
    let (stats, recount) = state
        .store
        .read(|txn| Ok::<_, QueueError>((query::stats(txn)?, query::recount(txn)?)))
        .await
        .unwrap();
    assert_eq!(stats, recount, "counters drifted from the rows");
}

#[test]
fn priority_formula_matches_contract() {
    const MIB: u64 = 1024 * 1024;
    assert_eq!(priority(MediaType::Photo, MIB), 1);
    assert_eq!(priority(MediaType::Photo, 50 * MIB), 50);
    assert_eq!(priority(MediaType::Photo, 100 * MIB), 100);
    assert_eq!(priority(MediaType::Photo, 10_000 * MIB), 100);
    assert_eq!(priority(MediaType::Video, MIB), 101);
    assert_eq!(priority(MediaType::Video, 0), 101);
    assert_eq!(priority(MediaType::Video, 200 * MIB), 200);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn claims_follow_priority_then_fifo(items in prop::collection::vec((any::<bool>(), 0u64..300 * 1024 * 1024), 1..40)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (state, _tmp) = state().await;
            let typed: Vec<(MediaType, u64)> = items
                .iter()
                .map(|(v, s)| (if *v { MediaType::Video } else { MediaType::Photo }, *s))
                .collect();
            // One at a time so enqueue order is the insertion order.
            let mut rows = Vec::new();
            for it in typed {
                rows.extend(insert_many(&state, vec![it]).await);
            }
            let mut expected: Vec<(u32, usize, Uuid)> =
                rows.iter().enumerate().map(|(i, r)| (r.priority, i, r.id)).collect();
            expected.sort();
            let mut claimed = Vec::new();
            while let Some(r) = state.catalog.claim_next().await.unwrap() {
                prop_assert_eq!(r.status, Status::Processing);
                prop_assert_eq!(r.attempts, 1);
                prop_assert!(r.started_at.is_some());
                claimed.push(r.id);
            }
            let want: Vec<Uuid> = expected.into_iter().map(|e| e.2).collect();
            prop_assert_eq!(claimed, want);
            assert_counters(&state).await;
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_claimers_take_each_item_exactly_once() {
    let (state, _tmp) = state().await;
    let items: Vec<(MediaType, u64)> = (0..1000).map(|i| (MediaType::Photo, i * 1000)).collect();
    insert_many(&state, items).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let q = state.catalog.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(r) = q.claim_next().await.unwrap() {
                got.push(r.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), 1000);
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 1000, "an item was claimed twice");
    assert_eq!(state.catalog.stats().await.unwrap().processing, 1000);
    assert_counters(&state).await;
}

#[tokio::test]
async fn transitions_legal_and_illegal() {
    let (state, _tmp) = state().await;
    let q = &state.catalog;
    let rows = insert_many(&state, vec![(MediaType::Photo, 10); 4]).await;
    let (a, b, c, d) = (rows[0].id, rows[1].id, rows[2].id, rows[3].id);

    // queued: retry illegal, cancel legal
    assert!(matches!(
        q.retry(a).await,
        Err(CatalogError::Queue(QueueError::InvalidTransition { .. }))
    ));
    let r = q.cancel(a).await.unwrap();
    assert_eq!(r.status, Status::Cancelled);
    assert_counters(&state).await;
    // cancelled: cancel illegal, retry legal (attempts reset)
    assert!(matches!(
        q.cancel(a).await,
        Err(CatalogError::Queue(QueueError::InvalidTransition { .. }))
    ));
    let r = q.retry(a).await.unwrap();
    assert_eq!((r.status, r.attempts), (Status::Queued, 0));
    assert_counters(&state).await;

    // processing: cancel and retry illegal
    let claimed = q.claim_next().await.unwrap().unwrap();
    assert!(matches!(
        q.cancel(claimed.id).await,
        Err(CatalogError::Queue(QueueError::InvalidTransition { .. }))
    ));
    assert!(matches!(
        q.retry(claimed.id).await,
        Err(CatalogError::Queue(QueueError::InvalidTransition { .. }))
    ));

    // fail with attempts left -> queued (delayed), then failed at max_attempts
    let mut id = claimed.id;
    let zero = |_| Some(chrono::Duration::zero());
    for attempt in 1..=3u32 {
        let r = q.fail(id, format!("boom {attempt}"), zero).await.unwrap();
        if attempt < 3 {
            assert_eq!(r.status, Status::Queued);
            assert_eq!(
                r.last_error.as_deref(),
                Some(format!("boom {attempt}").as_str())
            );
            // Claim the same item again (it is first in line by priority and age).
            let mut next = q.claim_next().await.unwrap().unwrap();
            while next.id != id {
                q.release(next.id, None).await.unwrap();
                q.cancel(next.id).await.unwrap();
                next = q.claim_next().await.unwrap().unwrap();
            }
            assert_eq!(next.attempts, attempt + 1);
            id = next.id;
        } else {
            assert_eq!(r.status, Status::Failed);
            assert_eq!(r.last_error.as_deref(), Some("boom 3"));
            assert_eq!(r.attempts, 3);
        }
        assert_counters(&state).await;
    }
    // failed: complete/fail illegal (not processing)
    assert!(matches!(
        q.fail(id, "x".into(), zero).await,
        Err(CatalogError::Queue(QueueError::InvalidTransition { .. }))
    ));
    let r = q.retry(id).await.unwrap();
    assert_eq!(
        (r.status, r.attempts, r.last_error.clone()),
        (Status::Queued, 0, None)
    );

    // backoff: a failed attempt with a delay is not claimable before its time
    let _ = (b, c, d);
    let unknown = Uuid::now_v7();
    assert!(matches!(
        q.cancel(unknown).await,
        Err(CatalogError::Queue(QueueError::NotFound(_)))
    ));
    assert!(matches!(
        q.retry(unknown).await,
        Err(CatalogError::Queue(QueueError::NotFound(_)))
    ));
    assert_counters(&state).await;
}

#[tokio::test]
async fn backoff_delays_the_next_claim() {
    let (state, _tmp) = state().await;
    let q = &state.catalog;
    let rows = insert_many(&state, vec![(MediaType::Photo, 10)]).await;
    let claimed = q.claim_next().await.unwrap().unwrap();
    assert_eq!(claimed.id, rows[0].id);
    q.fail(claimed.id, "later".into(), |_| {
        Some(chrono::Duration::milliseconds(400))
    })
    .await
    .unwrap();
    assert!(
        q.claim_next().await.unwrap().is_none(),
        "claimed before its backoff ran out"
    );
    assert_eq!(q.stats().await.unwrap().queued, 1);
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let again = q
        .claim_next()
        .await
        .unwrap()
        .expect("due after the backoff");
    assert_eq!((again.id, again.attempts), (claimed.id, 2));
    assert_counters(&state).await;
}

#[tokio::test]
async fn requeue_in_flight_and_release_do_not_count_attempts() {
    let (state, _tmp) = state().await;
    let q = &state.catalog;
    insert_many(&state, vec![(MediaType::Photo, 10), (MediaType::Video, 10)]).await;
    let a = q.claim_next().await.unwrap().unwrap();
    let b = q.claim_next().await.unwrap().unwrap();
    assert_eq!(q.stats().await.unwrap().processing, 2);
    let back = q.requeue_in_flight().await.unwrap();
    assert_eq!(back.len(), 2);
    for r in &back {
        assert_eq!((r.status, r.attempts), (Status::Queued, 0));
    }
    // Same order as before: a released item keeps its place.
    assert_eq!(q.claim_next().await.unwrap().unwrap().id, a.id);
    assert_eq!(q.claim_next().await.unwrap().unwrap().id, b.id);
    assert_counters(&state).await;
}

#[tokio::test]
async fn enqueue_rules() {
    let (state, _tmp) = state().await;
    let q = &state.catalog;
    let rows = insert_many(&state, vec![(MediaType::Photo, 10)]).await;
    let media = rows[0].media_item_id;
    assert!(matches!(
        q.enqueue(media, 3, false).await,
        Err(CatalogError::Queue(QueueError::AlreadyQueued { .. }))
    ));
    assert!(matches!(
        q.enqueue(Uuid::now_v7(), 3, false).await,
        Err(CatalogError::Media(MediaError::NotFound(_)))
    ));
    let c = q.claim_next().await.unwrap().unwrap();
    assert!(
        matches!(
            q.enqueue(media, 3, true).await,
            Err(CatalogError::Queue(QueueError::AlreadyQueued { .. }))
        ),
        "processing is never requeued"
    );
    state
        .store
        .write(move |txn| qstore::complete(txn, c.id, Utc::now()))
        .await
        .unwrap();
    assert!(matches!(
        q.enqueue(media, 3, false).await,
        Err(CatalogError::Queue(QueueError::AlreadyQueued { .. }))
    ));
    let r = q.enqueue(media, 5, true).await.unwrap();
    assert_eq!(
        (r.id, r.status, r.max_attempts, r.attempts),
        (c.id, Status::Queued, 5, 0)
    );
    assert_counters(&state).await;
}
