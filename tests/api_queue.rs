//! `/api/queue/*` over real HTTP (the worker stays off here).

mod common;

use common::Api;

use common::{client, json, png, upload, TestServer};
use serde_json::{json as j, Value};

async fn upload_n(s: &TestServer, n: u8) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(json(upload(&s.url, &format!("p{i}.png"), png(8 + i as u32, 8, i)).await).await);
    }
    out
}

#[tokio::test]
async fn stats_summary_items() {
    let s = TestServer::start().await;
    let ups = upload_n(&s, 3).await;
    let st = s.get_json("/api/queue/stats").await;
    let mut k: Vec<_> = st["stats"].as_object().unwrap().keys().cloned().collect();
    k.sort();
    assert_eq!(
        k,
        [
            "cancelled",
            "completed",
            "failed",
            "pending",
            "processing",
            "queued"
        ]
    );
    assert_eq!(st["stats"]["queued"], 3);
    assert!(st["timestamp"].as_str().unwrap().contains('T'));

    let qid = ups[0]["queueId"].as_str().unwrap();
    assert_eq!(
        s.post(&format!("/api/queue/items/{qid}/cancel"))
            .await
            .status(),
        200
    );
    let sum = s.get_json("/api/queue/summary").await;
    let rows = sum["summary"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let cancelled = rows.iter().find(|r| r["status"] == "cancelled").unwrap();
    assert_eq!(cancelled["count"], 1);
    assert_eq!(cancelled["avg_attempts"], 0.0);
    assert!(cancelled
        .as_object()
        .unwrap()
        .contains_key("avg_processing_time_seconds"));

    let list = s.get_json("/api/queue/items?status=queued").await;
    assert_eq!(list["count"], 2);
    assert_eq!(list["total"], 2);
    assert_eq!(list["pagination"], j!({"limit": 50, "offset": 0}));
    let item = &list["items"][0];
    let mut k: Vec<_> = item.as_object().unwrap().keys().cloned().collect();
    k.sort();
    assert_eq!(
        k,
        [
            "attempts",
            "completed_at",
            "file_size",
            "id",
            // Additive: what the job makes (depth/splat) and with which model.
            "kind",
            "last_error",
            "max_attempts",
            "media_item_id",
            "media_type",
            "model_key",
            "original_filename",
            "priority",
            "queued_at",
            "started_at",
            "status"
        ]
    );
    assert_eq!(
        (item["kind"].as_str(), item["model_key"].as_str()),
        (Some("depth"), Some("small"))
    );
    let all = json(
        s.get("/api/queue/items?orderBy=queued_at&orderDirection=DESC&limit=2")
            .await,
    )
    .await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["count"], 2);
    assert_eq!(all["items"][0]["original_filename"], "p2.png");
    let by_size = s
        .get_json("/api/queue/items?orderBy=file_size&orderDirection=ASC")
        .await;
    let sizes: Vec<u64> = by_size["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["file_size"].as_u64().unwrap())
        .collect();
    let mut sorted = sizes.clone();
    sorted.sort();
    assert_eq!(sizes, sorted);
    let capped = s.get_json("/api/queue/items?limit=5000").await;
    assert_eq!(capped["pagination"]["limit"], 1000);

    for bad in [
        "/api/queue/items?status=bogus",
        "/api/queue/items?orderBy=id;DROP TABLE",
        "/api/queue/items?orderDirection=sideways",
        "/api/queue/items?limit=0",
        "/api/queue/items?limit=-1",
        "/api/queue/items?offset=abc",
    ] {
        let r = s.get(bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(json(r).await["message"].is_string());
    }

    let detail = s.get_json(&format!("/api/queue/items/{qid}")).await;
    assert_eq!(detail["status"], "cancelled");
    assert!(detail["file_path"].as_str().unwrap().contains("uploads"));
    assert_eq!(detail["error_count"], 0);
    assert!(detail
        .as_object()
        .unwrap()
        .contains_key("processing_duration_seconds"));
    assert_eq!(s.get("/api/queue/items/nope").await.status(), 400);
    assert_eq!(
        s.get(&format!("/api/queue/items/{}", uuid::Uuid::new_v4()))
            .await
            .status(),
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn enqueue_cancel_retry_over_http() {
    let s = TestServer::start().await;
    let ups = upload_n(&s, 1).await;
    let media = ups[0]["mediaItemId"].as_str().unwrap();
    let qid = ups[0]["queueId"].as_str().unwrap();

    let again = s.post(&format!("/api/queue/enqueue/{media}")).await;
    assert_eq!(again.status(), 409);
    assert_eq!(json(again).await["error"], "Already in queue");
    let unknown = s
        .post(&format!("/api/queue/enqueue/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(s.post("/api/queue/enqueue/xyz").await.status(), 400);

    let retry_queued = s.post(&format!("/api/queue/items/{qid}/retry")).await;
    assert_eq!(retry_queued.status(), 409);
    let c = s.post(&format!("/api/queue/items/{qid}/cancel")).await;
    assert_eq!(c.status(), 200);
    assert_eq!(
        json(c).await,
        j!({"success": true, "message": "Queue item cancelled", "queueId": qid})
    );
    assert_eq!(
        s.post(&format!("/api/queue/items/{qid}/cancel"))
            .await
            .status(),
        409
    );

    // A cancelled entry is requeued under the same id, with a body.
    let bad_body = s
        .post_json(
            &format!("/api/queue/enqueue/{media}"),
            &j!({"maxAttempts": 50}),
        )
        .await;
    assert_eq!(bad_body.status(), 422);
    let bad_json = client()
        .post(s.at(&format!("/api/queue/enqueue/{media}")))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let e = s
        .post_json(
            &format!("/api/queue/enqueue/{media}"),
            &j!({"maxAttempts": 7}),
        )
        .await;
    assert_eq!(e.status(), 201);
    assert_eq!(
        json(e).await,
        j!({"success": true, "message": "Media item added to queue", "queueId": qid, "mediaItemId": media})
    );
    let item = s.get_json(&format!("/api/queue/items/{qid}")).await;
    assert_eq!(
        (item["status"].clone(), item["max_attempts"].clone()),
        (j!("queued"), j!(7))
    );

    s.post(&format!("/api/queue/items/{qid}/cancel")).await;
    let r = s.post(&format!("/api/queue/items/{qid}/retry")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        json(r).await,
        j!({"success": true, "message": "Queue item will be retried", "queueId": qid})
    );
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(
        s.post(&format!("/api/queue/items/{unknown}/cancel"))
            .await
            .status(),
        404
    );
    assert_eq!(
        s.post(&format!("/api/queue/items/{unknown}/retry"))
            .await
            .status(),
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let (c, tmp) = common::test_config();
    let s = TestServer::start_with(c.clone(), None).await;
    let ups = upload_n(&s, 4).await;
    let qid = ups[1]["queueId"].as_str().unwrap().to_string();
    s.post(&format!("/api/queue/items/{qid}/cancel")).await;
    let before_items = s.get_json("/api/queue/items?orderBy=queued_at").await;
    let before_media = s.get_json("/api/media/status").await;
    s.stop().await;

    let s = TestServer::start_with(c, Some(tmp)).await;
    let after_items = s.get_json("/api/queue/items?orderBy=queued_at").await;
    let after_media = s.get_json("/api/media/status").await;
    assert_eq!(before_items, after_items);
    assert_eq!(before_media, after_media);
    let st = s.get_json("/api/queue/stats").await;
    assert_eq!(
        (
            st["stats"]["queued"].clone(),
            st["stats"]["cancelled"].clone()
        ),
        (j!(3), j!(1))
    );
    for u in &ups {
        let f = s
            .get(&format!(
                "/api/media/{}/file",
                u["mediaItemId"].as_str().unwrap()
            ))
            .await;
        assert_eq!(f.status(), 200);
    }
    s.stop().await;
}

#[tokio::test]
async fn start_fails_cleanly_on_unusable_dir_and_newer_schema() {
    // A data dir that is a file: a one-line error naming it, not a panic.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("occupied");
    std::fs::write(&file, b"x").unwrap();
    let mut c = immichvr::Config::with_data_dir(&file);
    c.auto_start_worker = false;
    let err = immichvr::app::open_state(c)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("occupied"), "{err}");

    // A database from a newer schema is refused with a clear message.
    let (c, _tmp) = common::test_config();
    drop(immichvr::app::open_state(c.clone()).await.unwrap());
    {
        let db = redb::Database::create(c.database_path()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(immichvr::storage::META)
            .unwrap()
            .insert("schema_version", 99u64)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = immichvr::app::open_state(c)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("newer"), "{err}");
}
