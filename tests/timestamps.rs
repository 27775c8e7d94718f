//! Every timestamp the service shows, in every REST answer and every event,
//! is RFC 3339 UTC with `Z` and at most 6 fraction digits. Checked over the
//! bodies themselves, since this machine's Python and zod accept more than
//! older clients (Python 3.10's `fromisoformat`, browsers) do.

mod common;

use common::ai_standin::{AiStandin, Mode};
use common::{json, mp4, next_event, png, start_with_ai, upload, wait_status, Api};
use serde_json::Value;

/// `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z`, nothing else.
fn strict(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !head || !s.ends_with('Z') {
        return false;
    }
    let fraction = &s[19..s.len() - 1];
    fraction.is_empty()
        || (fraction.starts_with('.')
            && (2..=7).contains(&fraction.len())
            && fraction[1..].bytes().all(|c| c.is_ascii_digit()))
}

/// Any string that starts like a date-time is a timestamp and must be strict.
fn check(v: &Value, at: &str, seen: &mut usize) {
    match v {
        Value::String(s) => {
            let looks_like = s.len() >= 11
                && s.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                && s.as_bytes()[4] == b'-'
                && s.as_bytes()[10] == b'T';
            if looks_like {
                assert!(strict(s), "{at}: {s}");
                *seen += 1;
            }
        }
        Value::Array(items) => items.iter().for_each(|i| check(i, at, seen)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| check(v, &format!("{at}.{k}"), seen)),
        _ => {}
    }
}

#[test]
fn the_checker_itself() {
    assert!(strict("2026-11-29T20:01:03.591Z"));
    assert!(strict("2026-11-29T20:01:03Z"));
    assert!(strict("2026-11-29T20:01:03.123456Z"));
    assert!(!strict("2026-11-29T20:01:03.591450760+00:00"));
    assert!(!strict("2026-11-29T20:01:03.591450760Z"));
    assert!(!strict("2026-11-29T20:01:03+00:00"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_timestamp_in_answers_and_events_is_rfc3339_utc_z() {
    let ai = AiStandin::start(Mode::Ok).await;
    let s = start_with_ai(&ai.url(), |_| {}).await;
    let events = common::client()
        .get(s.at("/api/events"))
        .send()
        .await
        .unwrap();
    let mut stream = events.bytes_stream();
    let mut buf = String::new();

    let up = json(upload(&s.url, "a.png", png(24, 16, 3)).await).await;
    let media = up["mediaItemId"].as_str().unwrap().to_string();
    let queue = up["queueId"].as_str().unwrap().to_string();
    wait_status(&s.url, &queue, "completed", 10.0).await;
    let video = json(upload(&s.url, "b.mp4", mp4(8_000, 2)).await).await;
    wait_status(
        &s.url,
        video["queueId"].as_str().unwrap(),
        "completed",
        10.0,
    )
    .await;
    assert_eq!(s.post("/api/admin/backup").await.status(), 201);

    let mut seen = 0;
    let mut paths = vec![
        "/health".to_string(),
        "/api/media/status".into(),
        format!("/api/media/{media}"),
        "/api/queue/items".into(),
        format!("/api/queue/items/{queue}"),
        "/api/queue/stats".into(),
        "/api/queue/summary".into(),
        "/api/queue/worker/status".into(),
        "/api/db/info".into(),
    ];
    paths.push("/api/queue/items?status=completed&orderBy=completed_at".into());
    for path in &paths {
        let r = s.get(path).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        check(&json(r).await, path, &mut seen);
    }
    let backup = json(s.post("/api/admin/backup").await).await;
    check(&backup, "backup", &mut seen);

    // Queue rows have four timestamps, media rows and depth maps more.
    assert!(seen >= 15, "only {seen} timestamps seen");

    let mut events_seen = 0;
    let mut names = Vec::new();
    while events_seen < 8 {
        let Some((name, data)) = next_event(&mut stream, &mut buf).await else {
            break;
        };
        check(&data, &name, &mut seen);
        assert_eq!(data["type"], name.as_str(), "{data}");
        names.push(name);
        events_seen += 1;
    }
    assert!(names.iter().any(|n| n == "stats"), "{names:?}");
    assert!(names.iter().any(|n| n == "item"), "{names:?}");
    s.stop().await;
}
