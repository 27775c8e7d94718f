//! `/api/media/*` and the service routes over real HTTP.

mod common;

use common::Api;

use common::{client, jpeg, json, mp4, png, upload, TestServer};
use serde_json::Value;

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn service_routes() {
    let s = TestServer::start().await;
    let h = s.get_json("/health").await;
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["service"], "backend");
    assert_eq!(h["database"], "connected");
    let r = s.get_json("/").await;
    assert_eq!(r["message"], "ImmichVR Backend Service");
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    let db = s.get_json("/api/db/info").await;
    assert!(db["database"].as_str().unwrap().ends_with("immichvr.redb"));
    assert_eq!(db["status"], "connected");
    assert_eq!(db["views"], serde_json::json!([]));
    let tables: Vec<&str> = db["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in [
        "media",
        "queue",
        "queue_ready",
        "queue_counts",
        "media_by_checksum",
        "meta",
        "assets",
        "asset_keys",
        "settings",
        "models",
    ] {
        assert!(tables.contains(&t), "missing table {t}");
    }
    assert!(db["file_size_bytes"].as_u64().unwrap() > 0);
    s.stop().await;
}

#[tokio::test]
async fn upload_photo_then_read_it_back() {
    let s = TestServer::start().await;
    let bytes = png(64, 48, 1);
    let resp = upload(&s.url, "holiday.png", bytes.clone()).await;
    assert_eq!(resp.status(), 201);
    let body = json(resp).await;
    assert_eq!(
        keys(&body),
        sorted(&[
            "success",
            "message",
            "mediaItemId",
            "queueId",
            "filename",
            "size",
            "type",
            "duplicate"
        ])
    );
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Media uploaded and queued for processing");
    assert_eq!(body["filename"], "holiday.png");
    assert_eq!(body["size"], bytes.len() as u64);
    assert_eq!(body["type"], "photo");
    let id = body["mediaItemId"].as_str().unwrap().to_string();

    let m = s.get_json(&format!("/api/media/{id}")).await;
    assert_eq!(
        keys(&m),
        sorted(&[
            "id",
            "original_filename",
            "media_type",
            "file_path",
            "file_size",
            "mime_type",
            "width",
            "height",
            "duration_seconds",
            "frame_rate",
            "checksum",
            "captured_at",
            "uploaded_at",
            "source",
            "immich_asset_id",
            "immich_variant",
            "created_at",
            "updated_at"
        ])
    );
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(64), Some(48))
    );
    assert_eq!(m["mime_type"], "image/png");
    assert_eq!(m["source"], "upload");
    use sha2::Digest;
    assert_eq!(m["checksum"], hex::encode(sha2::Sha256::digest(&bytes)));

    // The original, whole and by range, with an ETag that revalidates.
    let f = s.get(&format!("/api/media/{id}/file")).await;
    assert_eq!(f.status(), 200);
    assert_eq!(f.headers()["content-type"], "image/png");
    let etag = f.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(f.bytes().await.unwrap().to_vec(), bytes);
    let part = client()
        .get(s.at(&format!("/api/media/{id}/file")))
        .header("Range", "bytes=0-7")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[..8].to_vec());
    let cached = client()
        .get(s.at(&format!("/api/media/{id}/file")))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    let bad_range = client()
        .get(s.at(&format!("/api/media/{id}/file")))
        .header("Range", "bytes=999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_range.status(), 416);

    // No depth map yet.
    let d = s.get(&format!("/api/media/{id}/depth")).await;
    assert_eq!(d.status(), 404);
    assert_eq!(json(d).await["error"], "Depth map not found");

    // Status listing, newest first, contract field names.
    upload(&s.url, "second.jpg", jpeg(20, 10, 2)).await;
    let st = s.get_json("/api/media/status").await;
    assert_eq!(st["count"], 2);
    let rows = st["media"].as_array().unwrap();
    assert_eq!(rows[0]["original_filename"], "second.jpg");
    assert_eq!(
        keys(&rows[1]),
        sorted(&[
            "media_id",
            "original_filename",
            "media_type",
            "uploaded_at",
            "processing_status",
            "processing_attempts",
            "last_error",
            "depth_map_id",
            "depth_map_path",
            "depth_map_generated_at"
        ])
    );
    assert_eq!(rows[1]["processing_status"], "queued");
    let page = s.get_json("/api/media/status?limit=1&offset=1").await;
    assert_eq!(page["media"][0]["original_filename"], "holiday.png");
    s.stop().await;
}

#[tokio::test]
async fn video_upload_is_a_video() {
    let s = TestServer::start().await;
    let resp = upload(&s.url, "clip.mp4", mp4(4096, 1)).await;
    assert_eq!(resp.status(), 201);
    let body = json(resp).await;
    assert_eq!(body["type"], "video");
    let q = json(
        client()
            .get(s.at(&format!(
                "/api/queue/items/{}",
                body["queueId"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(q["priority"], 101);
    s.stop().await;
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn upload_errors() {
    let (mut c, tmp) = common::test_config();
    c.max_upload_bytes = 10_000;
    let s = TestServer::start_with(c, Some(tmp)).await;
    let uploads = s.data_dir.join("uploads");

    let mut big = png(16, 16, 3);
    big.resize(50_000, 7);
    let big = upload(&s.url, "big.png", big).await;
    assert_eq!(big.status(), 413);
    assert_eq!(json(big).await["error"], "File too large");
    assert!(
        files_in(&uploads).is_empty(),
        "partial file left: {:?}",
        files_in(&uploads)
    );

    let text = upload(
        &s.url,
        "notes.png",
        b"just some text, not an image".to_vec(),
    )
    .await;
    assert_eq!(text.status(), 415);
    let body = json(text).await;
    assert_eq!(body["error"], "Unsupported media type");
    assert!(files_in(&uploads).is_empty());

    let pdf = upload(&s.url, "doc.pdf", b"%PDF-1.4\n%....".to_vec()).await;
    assert_eq!(pdf.status(), 415);
    assert!(json(pdf).await["message"]
        .as_str()
        .unwrap()
        .contains("application/pdf"));

    let empty = upload(&s.url, "empty.png", Vec::new()).await;
    assert_eq!(empty.status(), 400);
    assert_eq!(json(empty).await["error"], "Empty file");

    let wrong_field = client()
        .post(s.at("/api/media/upload"))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(png(4, 4, 0)).file_name("a.png"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_field.status(), 400);
    assert_eq!(json(wrong_field).await["error"], "No file uploaded");

    let not_multipart = client()
        .post(s.at("/api/media/upload"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert!(not_multipart.status().is_client_error());
    assert!(json(not_multipart).await["message"].is_string());

    let mut form = reqwest::multipart::Form::new();
    for i in 0..100 {
        form = form.text(format!("f{i}"), "x");
    }
    let many = client()
        .post(s.at("/api/media/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(many.status(), 400);

    // Nothing was stored by any of these.
    let st = s.get_json("/api/queue/stats").await;
    assert_eq!(st["stats"]["queued"], 0);
    assert!(files_in(&uploads).is_empty());
    s.stop().await;
}

#[tokio::test]
async fn duplicate_upload_returns_existing_ids() {
    let s = TestServer::start().await;
    let bytes = png(10, 10, 9);
    let first = json(upload(&s.url, "a.png", bytes.clone()).await).await;
    let again = upload(&s.url, "b.png", bytes).await;
    assert_eq!(again.status(), 200);
    let again = json(again).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["mediaItemId"], first["mediaItemId"]);
    assert_eq!(again["queueId"], first["queueId"]);
    assert_eq!(files_in(&s.data_dir.join("uploads")).len(), 1);
    let st = s.get_json("/api/queue/stats").await;
    assert_eq!(st["stats"]["queued"], 1);
    s.stop().await;
}

#[tokio::test]
async fn hostile_file_names_stay_metadata() {
    let s = TestServer::start().await;
    for (i, name) in [
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "фото 📷.png",
        "/abs/path.png",
    ]
    .iter()
    .enumerate()
    {
        let resp = upload(&s.url, name, png(8, 8, 40 + i as u8)).await;
        assert_eq!(resp.status(), 201, "{name}");
        let body = json(resp).await;
        // multer keeps a quoted-string's escapes, so compare the tail only.
        assert!(body["filename"]
            .as_str()
            .unwrap()
            .ends_with(name.rsplit(['/', '\\']).next().unwrap()));
        let m = json(
            client()
                .get(s.at(&format!(
                    "/api/media/{}",
                    body["mediaItemId"].as_str().unwrap()
                )))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let path = std::path::PathBuf::from(m["file_path"].as_str().unwrap());
        assert_eq!(path.parent().unwrap(), s.data_dir.join("uploads"));
        assert!(!path.to_string_lossy().contains(".."));
        assert_eq!(m["original_filename"], body["filename"]);
    }
    assert!(!s.data_dir.join("etc").exists());
    s.stop().await;
}

#[tokio::test]
async fn media_ids_malformed_unknown_and_delete() {
    let s = TestServer::start().await;
    for path in [
        "/api/media/not-a-uuid",
        "/api/media/123/file",
        "/api/media/zz/depth",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 400, "{path}");
        let b = json(r).await;
        assert!(b["error"].is_string() && b["message"].is_string());
    }
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/media/{unknown}"),
        format!("/api/media/{unknown}/file"),
        format!("/api/media/{unknown}/depth"),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(json(r).await["error"], "Media item not found");
    }
    let del = s.delete(&format!("/api/media/{unknown}")).await;
    assert_eq!(del.status(), 404);

    let body = json(upload(&s.url, "gone.png", png(5, 5, 5)).await).await;
    let id = body["mediaItemId"].as_str().unwrap();
    let qid = body["queueId"].as_str().unwrap();
    let del = s.delete(&format!("/api/media/{id}")).await;
    assert_eq!(del.status(), 200);
    assert_eq!(s.get(&format!("/api/media/{id}")).await.status(), 404);
    assert_eq!(
        s.get(&format!("/api/queue/items/{qid}")).await.status(),
        404
    );
    assert!(files_in(&s.data_dir.join("uploads")).is_empty());
    let st = s.get_json("/api/queue/stats").await;
    assert_eq!(st["stats"]["queued"], 0);
    // The same bytes can be uploaded again after a delete.
    assert_eq!(upload(&s.url, "gone.png", png(5, 5, 5)).await.status(), 201);
    s.stop().await;
}

#[tokio::test]
async fn unknown_route_and_method_are_json() {
    let s = TestServer::start().await;
    let r = s.get("/api/nope").await;
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let r = client().put(s.at("/api/queue/stats")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(json(r).await["error"].is_string());
    s.stop().await;
}

async fn raw(s: &TestServer, name: Option<&str>, bytes: Vec<u8>) -> reqwest::Response {
    // Only plain names here: no percent-encoding needed.
    let query = name.map(|n| format!("?filename={n}")).unwrap_or_default();
    client()
        .post(s.at(&format!("/api/media/upload/raw{query}")))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

/// The raw-body upload answers exactly as the multipart one: 201, then 200
/// with the same ids for the same bytes (whichever door they came
/// through), and the same refusals.
#[tokio::test]
async fn raw_body_upload_has_the_answers_of_the_multipart_one() {
    let (mut c, tmp) = common::test_config();
    c.max_upload_bytes = 64 * 1024;
    let s = TestServer::start_with(c, Some(tmp)).await;
    let photo = png(40, 30, 7);
    let r = raw(&s, Some("beach.png"), photo.clone()).await;
    assert_eq!(r.status(), 201);
    let first = json(r).await;
    assert_eq!(first["filename"], "beach.png");
    assert_eq!(first["type"], "photo");
    assert_eq!(first["size"], photo.len());
    let id = first["mediaItemId"].as_str().unwrap().to_string();
    let again = raw(&s, None, photo.clone()).await;
    assert_eq!(again.status(), 200);
    let again = json(again).await;
    assert_eq!(
        (again["duplicate"].clone(), again["mediaItemId"].clone()),
        (Value::Bool(true), first["mediaItemId"].clone())
    );
    let via_form = json(upload(&s.url, "other-name.png", photo.clone()).await).await;
    assert_eq!(via_form["mediaItemId"], first["mediaItemId"]);
    let stored = s
        .get(&format!("/api/media/{id}/file"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), photo.as_slice());

    let refusals: [(Vec<u8>, u16, &str); 3] = [
        (Vec::new(), 400, "empty-file"),
        (
            b"just some text, not a photo".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            [png(4, 4, 1), vec![0; 100_000]].concat(),
            413,
            "file-too-large",
        ),
    ];
    for (bytes, status, code) in refusals {
        let r = raw(&s, Some("x.bin"), bytes).await;
        assert_eq!(r.status(), status, "{code}");
        assert_eq!(json(r).await["code"], code);
    }
    let long = "n".repeat(300);
    let r = raw(&s, Some(&long), jpeg(8, 8, 1)).await;
    assert_eq!(r.status(), 400);
    // Nothing refused was kept: one item, one file.
    let list = s.get_json("/api/media/status").await;
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(files_in(&s.data_dir.join("uploads")).len(), 1);
    s.stop().await;
}
