//! The main flow through the client progenitor generates at compile time
//! from `openapi.yaml` here, which `scripts/progenitor-test.sh` writes with
//! `immichvr openapi --without-multipart`.
//!
//! Usage: immichvr-progenitor-flow BASE_URL TOKEN

use std::{
    num::NonZeroU32,
    time::{Duration, Instant},
};

use futures::TryStreamExt;

progenitor::generate_api!("openapi.yaml");

const PHOTO: &[u8] = include_bytes!("../../../../assets/samples/portrait.png");

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, token) = (&args[1], &args[2]);
    let mut headers = reqwest::header::HeaderMap::new();
    let auth = format!("Bearer {token}").parse().expect("a token is a header value");
    headers.insert(reqwest::header::AUTHORIZATION, auth);
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client");
    let client = Client::new_with_client(base, http);

    let up = client
        .upload_media_raw(Some(&"rust.png".parse().expect("a short name")), PHOTO.to_vec())
        .await
        .expect("uploadMediaRaw")
        .into_inner();
    assert_eq!(up.filename, "rust.png");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let item = client.get_queue_item(&up.queue_id).await.expect("getQueueItem").into_inner();
        if item.status == types::Status::Completed {
            break;
        }
        assert!(item.status != types::Status::Failed, "failed: {:?}", item.last_error);
        assert!(Instant::now() < deadline, "still {:?}", item.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let listed = client.list_media_status(NonZeroU32::new(50), None).await.expect("listMediaStatus").into_inner();
    assert!(listed.media.iter().any(|m| m.media_id == up.media_item_id));
    let done = client
        .list_queue_items(NonZeroU32::new(50), None, None, None, Some(types::Status::Completed))
        .await
        .expect("listQueueItems")
        .into_inner();
    assert!(done.items.iter().all(|i| i.status == types::Status::Completed));

    let depth = client.get_media_depth(&up.media_item_id).await.expect("getMediaDepth");
    let bytes: Vec<u8> = depth
        .into_inner()
        .into_inner()
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .expect("depth bytes");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));

    match client.get_media(&uuid::Uuid::new_v4()).await {
        Err(Error::ErrorResponse(e)) => {
            assert_eq!(e.status().as_u16(), 404);
            assert_eq!(e.code, types::ErrorCode::MediaNotFound);
        }
        other => panic!("expected a typed 404, got {other:?}"),
    }
    client.stop_worker().await.expect("stopWorker");
    match client.stop_worker().await {
        Err(Error::ErrorResponse(e)) => assert_eq!(e.code, types::ErrorCode::WorkerStopped),
        other => panic!("expected a typed 409, got {other:?}"),
    }
    client.start_worker().await.expect("startWorker");
    println!("rust (progenitor): ok");
}
