//! The Immich stand-in's timeline, as Immich 3.x answers it
//! (`tests/fixtures/immich/openapi-3.0.3.json`): `GET /timeline/buckets`
//! is a list of `{timeBucket, count}` (months, newest first) and
//! `GET /timeline/bucket?timeBucket=` is `TimeBucketAssetResponseDto`, one
//! array per column ("structure of arrays"), `visibility=timeline` only.

use std::sync::Arc;

use poem::{
    handler,
    web::{Data, Json, Query},
    IntoResponse, Request, Response,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::immich_standin::Inner;

#[derive(Deserialize)]
pub struct BucketsQuery {
    visibility: Option<String>,
}

#[derive(Deserialize)]
pub struct BucketQuery {
    #[serde(rename = "timeBucket")]
    time_bucket: Option<String>,
    visibility: Option<String>,
}

/// The bucket (first day of the month) an asset's `fileCreatedAt` falls in.
pub fn bucket_of(asset: &Value) -> String {
    let t = asset["fileCreatedAt"].as_str().unwrap_or("1970-01-01");
    format!("{}-01", &t[..7])
}

/// The assets in the key's user's timeline (theirs and their partners'),
/// of one visibility.
fn visible(inner: &Inner, req: &Request, visibility: Option<&str>) -> Vec<Value> {
    let user = req
        .extensions()
        .get::<super::immich_users::Key>()
        .map(|k| k.user.clone())
        .unwrap_or_default();
    inner
        .assets
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.json.clone())
        .filter(|a| inner.people.in_timeline(&user, a))
        .filter(|a| visibility.is_none_or(|v| a["visibility"] == v))
        .collect()
}

#[handler]
pub fn buckets(inner: Data<&Arc<Inner>>, q: Query<BucketsQuery>, req: &Request) -> Response {
    inner.timeline_calls.lock().unwrap().push("buckets".into());
    let mut counts: Vec<(String, u64)> = Vec::new();
    for a in visible(&inner, req, q.visibility.as_deref()) {
        let b = bucket_of(&a);
        match counts.iter_mut().find(|(k, _)| *k == b) {
            Some((_, n)) => *n += 1,
            None => counts.push((b, 1)),
        }
    }
    counts.sort_by(|a, b| b.0.cmp(&a.0));
    let list: Vec<Value> = counts
        .into_iter()
        .map(|(b, n)| json!({"timeBucket": b, "count": n}))
        .collect();
    Json(list).into_response()
}

#[handler]
pub fn bucket(inner: Data<&Arc<Inner>>, q: Query<BucketQuery>, req: &Request) -> Response {
    let Some(want) = q.time_bucket.clone() else {
        return super::immich_standin::err(400, "Bad Request", "timeBucket must be a string");
    };
    inner
        .timeline_calls
        .lock()
        .unwrap()
        .push(format!("bucket {want}"));
    // Immich accepts the bucket as a date or a date-time; its month counts.
    let month = want.get(..7).unwrap_or("").to_string();
    let rows: Vec<Value> = visible(&inner, req, q.visibility.as_deref())
        .into_iter()
        .filter(|a| bucket_of(a).starts_with(&month))
        .collect();
    Json(Value::Object(columns(&rows))).into_response()
}

/// Rows to Immich's columns: every column an array as long as the bucket.
pub fn columns(rows: &[Value]) -> Map<String, Value> {
    let col = |f: &dyn Fn(&Value) -> Value| Value::Array(rows.iter().map(f).collect());
    let mut m = Map::new();
    m.insert("id".into(), col(&|a| a["id"].clone()));
    m.insert("ownerId".into(), col(&|a| a["ownerId"].clone()));
    m.insert(
        "ratio".into(),
        col(&|a| {
            let w = a["width"].as_f64().unwrap_or(1.0);
            let h = a["height"].as_f64().unwrap_or(1.0).max(1.0);
            json!(w / h)
        }),
    );
    m.insert("isFavorite".into(), col(&|a| a["isFavorite"].clone()));
    m.insert("visibility".into(), col(&|a| a["visibility"].clone()));
    m.insert("isTrashed".into(), col(&|a| a["isTrashed"].clone()));
    m.insert("isImage".into(), col(&|a| json!(a["type"] == "IMAGE")));
    m.insert("thumbhash".into(), col(&|a| a["thumbhash"].clone()));
    m.insert("fileCreatedAt".into(), col(&|a| a["fileCreatedAt"].clone()));
    m.insert("createdAt".into(), col(&|a| a["createdAt"].clone()));
    m.insert("localOffsetHours".into(), col(&|_| json!(2)));
    m.insert(
        "duration".into(),
        col(&|a| match &a["duration"] {
            Value::Number(n) => json!(n),
            _ => Value::Null,
        }),
    );
    m.insert("projectionType".into(), col(&|_| Value::Null));
    m.insert("livePhotoVideoId".into(), col(&|_| Value::Null));
    m.insert("city".into(), col(&|_| json!("Lisbon")));
    m.insert("country".into(), col(&|_| json!("Portugal")));
    m.insert("latitude".into(), col(&|_| json!(38.72)));
    m.insert("longitude".into(), col(&|_| json!(-9.14)));
    m.insert("stack".into(), col(&|_| Value::Null));
    m
}
