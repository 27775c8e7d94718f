//! `GET /metrics`: the Prometheus text a scraper reads, after real work.

mod common;

use common::Api;

use common::{ai_standin::*, *};

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(s: &TestServer) -> String {
    let r = s.get("/metrics").await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn queue_uploads_and_database_size_are_exposed() {
    let s = TestServer::start().await;
    let before = scrape(&s).await;
    let bytes_before = sample(&before, "immichvr_upload_bytes_total").unwrap();
    let commits_before = sample(&before, "immichvr_database_commits_total").unwrap();
    for status in [
        "pending",
        "queued",
        "processing",
        "completed",
        "failed",
        "cancelled",
    ] {
        assert_eq!(
            sample(
                &before,
                &format!("immichvr_queue_items{{status=\"{status}\"}}")
            ),
            Some(0.0),
            "{status}"
        );
    }
    let a = png(40, 30, 1);
    let b = png(40, 30, 2);
    let total = (a.len() + b.len()) as f64;
    assert_eq!(upload(&s.url, "a.png", a).await.status(), 201);
    assert_eq!(upload(&s.url, "b.png", b).await.status(), 201);
    let after = scrape(&s).await;
    assert_eq!(
        sample(&after, "immichvr_queue_items{status=\"queued\"}"),
        Some(2.0)
    );
    // Other tests in this binary upload too: at least our bytes were added.
    assert!(sample(&after, "immichvr_upload_bytes_total").unwrap() >= bytes_before + total);
    assert!(sample(&after, "immichvr_database_size_bytes").unwrap() > 0.0);
    // One after the other, the two uploads cannot share a commit.
    assert!(sample(&after, "immichvr_database_commits_total").unwrap() >= commits_before + 2.0);
    assert_eq!(sample(&after, "immichvr_items_processed_total"), Some(0.0));
    assert!(after.contains("# TYPE immichvr_processing_duration_seconds histogram"));
    assert!(after.contains("# TYPE immichvr_immich_request_errors counter"));
    s.stop().await;
}

#[tokio::test]
async fn processing_and_ai_requests_are_counted_per_endpoint() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let body = json(upload(&s.url, "p.png", png(32, 32, 9)).await).await;
    wait_status(&s.url, body["queueId"].as_str().unwrap(), "completed", 20.0).await;
    let text = scrape(&s).await;
    let ep = format!("endpoint=\"http://{}\"", ai.addr);
    assert_eq!(sample(&text, "immichvr_items_processed_total"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            &format!("immichvr_ai_request_duration_seconds_count{{{ep}}}")
        ),
        Some(1.0)
    );
    assert!(sample(&text, "immichvr_processing_duration_seconds_count").unwrap() >= 1.0);
    assert!(sample(&text, "immichvr_queue_items{status=\"completed\"}") == Some(1.0));
    s.stop().await;
}

#[tokio::test]
async fn ai_errors_are_counted_by_kind_and_failures_total() {
    let ai = AiStandin::start(Mode::Status(400)).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let body = json(upload(&s.url, "p.png", png(32, 32, 10)).await).await;
    wait_status(&s.url, body["queueId"].as_str().unwrap(), "failed", 30.0).await;
    let text = scrape(&s).await;
    let series = format!(
        "immichvr_ai_request_errors_total{{endpoint=\"http://{}\",kind=\"rejected\"}}",
        ai.addr
    );
    assert!(sample(&text, &series).unwrap() >= 1.0, "{text}");
    assert_eq!(sample(&text, "immichvr_items_failed_total"), Some(1.0));
    s.stop().await;
}

#[tokio::test]
async fn immich_errors_are_a_counter_other_modules_increment() {
    let s = TestServer::start().await;
    let before = sample(&scrape(&s).await, "immichvr_immich_request_errors_total").unwrap();
    immichvr::metrics::immich_request_error();
    let after = sample(&scrape(&s).await, "immichvr_immich_request_errors_total").unwrap();
    assert!(after >= before + 1.0);
    s.stop().await;
}

#[tokio::test]
async fn metrics_need_the_token_when_auth_is_on() {
    let (mut c, tmp) = test_config();
    c.auth_token = Some("metrics-secret".parse().unwrap());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status(), 401);
    let r = client()
        .get(s.at("/metrics"))
        .bearer_auth("metrics-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}
