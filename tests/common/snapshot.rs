//! Everything the API shows about stored work, in one JSON value: every
//! media item, its status row and queue row, and the SHA-256 of its
//! original and depth map as served. Two snapshots of one library must be
//! equal across a restart, a crash, a backup and restore, a compaction or
//! an upgrade.
//!
//! Left out, because they legitimately change: absolute paths (a restored
//! or moved data dir), access counters (reading a depth map counts), and
//! timestamp digits beyond the millisecond (the formatter may change).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::client;

/// Fields that may differ between two snapshots of the same library.
const VOLATILE: &[&str] = &["file_path", "depth_map_path", "access_count", "accessed_at"];

async fn get_json(url: &str) -> Value {
    let resp = client().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {url}");
    resp.json().await.unwrap()
}

/// The SHA-256 of a file as served, or `null` when the API answers 404.
async fn served_sha(url: &str) -> Value {
    let resp = client().get(url).send().await.unwrap();
    match resp.status().as_u16() {
        200 => Value::String(hex::encode(Sha256::digest(resp.bytes().await.unwrap()))),
        404 => Value::Null,
        other => panic!(
            "GET {url}: {other} {}",
            resp.text().await.unwrap_or_default()
        ),
    }
}

/// Every row of a paged list endpoint.
async fn all_pages(base: &str, path: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = get_json(&format!("{base}{path}{sep}limit=1000&offset={}", out.len())).await;
        let rows = page[key].as_array().unwrap().clone();
        let n = rows.len();
        out.extend(rows);
        if n < 1000 {
            return out;
        }
    }
}

/// Drops the volatile fields and cuts timestamps to milliseconds, in place.
pub fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in VOLATILE {
                m.remove(*k);
            }
            for (_, x) in m.iter_mut() {
                normalise(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        Value::String(s) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                *s = t
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            }
        }
        _ => {}
    }
}

fn by(rows: Vec<Value>, id: &str) -> Map<String, Value> {
    rows.into_iter()
        .map(|mut r| {
            let key = r[id].as_str().unwrap().to_string();
            normalise(&mut r);
            (key, r)
        })
        .collect()
}

/// The whole API-visible state of the service at `base`.
pub async fn take(base: &str) -> Value {
    let status = by(
        all_pages(base, "/api/media/status", "media").await,
        "media_id",
    );
    let queue_rows = all_pages(base, "/api/queue/items", "items").await;
    let mut queue = Map::new();
    for row in queue_rows {
        let id = row["id"].as_str().unwrap().to_string();
        let mut detail = get_json(&format!("{base}/api/queue/items/{id}")).await;
        normalise(&mut detail);
        queue.insert(id, detail);
    }
    let mut media = Map::new();
    let mut originals = Map::new();
    let mut depth = Map::new();
    for id in status.keys() {
        let mut row = get_json(&format!("{base}/api/media/{id}")).await;
        normalise(&mut row);
        media.insert(id.clone(), row);
        originals.insert(
            id.clone(),
            served_sha(&format!("{base}/api/media/{id}/file")).await,
        );
        depth.insert(
            id.clone(),
            served_sha(&format!("{base}/api/media/{id}/depth")).await,
        );
    }
    let stats = get_json(&format!("{base}/api/queue/stats")).await["stats"].clone();
    json!({
        "media": media,
        "media_status": status,
        "queue": queue,
        "originals": originals,
        "depth_maps": depth,
        "stats": stats,
    })
}

/// `actual` holds everything `expected` does (new fields may be added by a
/// newer release; nothing may vanish or change). Maps of ids must have the
/// same ids.
pub fn assert_holds(expected: &Value, actual: &Value) {
    let mut diffs = Vec::new();
    compare(expected, actual, "", &mut diffs);
    assert!(
        diffs.is_empty(),
        "the library changed:\n{}",
        diffs.join("\n")
    );
}

fn compare(e: &Value, a: &Value, at: &str, diffs: &mut Vec<String>) {
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            // Top-level maps are keyed by ids: an id may not appear either.
            if at.matches('/').count() == 1 {
                for k in am.keys().filter(|k| !em.contains_key(*k)) {
                    diffs.push(format!("{at}/{k}: not expected, found {}", am[k]));
                }
            }
            for (k, ev) in em {
                match am.get(k) {
                    Some(av) => compare(ev, av, &format!("{at}/{k}"), diffs),
                    None => diffs.push(format!("{at}/{k}: missing (expected {ev})")),
                }
            }
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                compare(ev, av, &format!("{at}[{i}]"), diffs);
            }
        }
        _ if e == a => {}
        _ => diffs.push(format!("{at}: expected {e}, found {a}")),
    }
}

/// How many items the snapshot holds, and how many have a depth map.
pub fn counts(s: &Value) -> (usize, usize) {
    let media = s["media"].as_object().unwrap().len();
    let depth = s["depth_maps"]
        .as_object()
        .unwrap()
        .values()
        .filter(|v| !v.is_null())
        .count();
    (media, depth)
}
