//! The embedded admin page: routes, content types, caching, compression,
//! browser negotiation at `/`, and same-origin requests past CORS.

mod common;

use common::Api;

use common::TestServer;
use reqwest::{header, redirect::Policy, StatusCode};

fn client() -> reqwest::Client {
    common::client_builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn admin_files_have_types_etags_and_revalidate() {
    let s = TestServer::start().await;
    let c = client();
    let r = c.get(s.at("/admin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.headers()[header::LOCATION], "/admin/");

    for (path, ty) in [
        ("/admin/", "text/html; charset=utf-8"),
        ("/admin/index.html", "text/html; charset=utf-8"),
        ("/admin/app.js", "text/javascript; charset=utf-8"),
        ("/admin/js/queue.js", "text/javascript; charset=utf-8"),
        ("/admin/style.css", "text/css; charset=utf-8"),
        ("/admin/icon.svg", "image/svg+xml"),
    ] {
        let r = c.get(s.at(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], ty, "{path}");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache", "{path}");
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() > 10, "{path}: {etag}");
        assert!(!r.bytes().await.unwrap().is_empty());

        let again = c
            .get(s.at(path))
            .header(header::IF_NONE_MATCH, format!("W/{etag}, \"other\""))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }

    let r = c.get(s.at("/admin/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "Not found");
    let r = c.get(s.at("/admin/../Cargo.toml")).send().await.unwrap();
    assert_ne!(r.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn admin_files_are_compressed_when_asked() {
    let s = TestServer::start().await;
    let c = client();
    let plain = c.get(s.at("/admin/style.css")).send().await.unwrap();
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain_len = plain.bytes().await.unwrap().len();
    let gz = c
        .get(s.at("/admin/style.css"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
    assert!(gz.bytes().await.unwrap().len() < plain_len / 2);
    s.stop().await;
}

#[tokio::test]
async fn browsers_at_root_go_to_the_page_and_api_clients_keep_json() {
    let s = TestServer::start().await;
    let c = client();
    let browser = c
        .get(s.at("/"))
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.headers()[header::LOCATION], "/admin/");
    for accept in [None, Some("application/json"), Some("*/*")] {
        let mut req = c.get(s.at("/"));
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{accept:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["message"], "ImmichVR Backend Service");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_page_s_own_origin_is_not_refused_by_cors() {
    let s = TestServer::start().await;
    let c = client();
    let own = s.url.clone();
    // What a browser sends for the page's module scripts and its POSTs.
    let script = c
        .get(s.at("/admin/app.js"))
        .header(header::ORIGIN, &own)
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    let post = c
        .post(s.at("/api/queue/retry-failed"))
        .header(header::ORIGIN, &own)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    // Another origin is still not let in.
    let other = c
        .get(s.at("/api/queue/stats"))
        .header(header::ORIGIN, "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(other
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    s.stop().await;
}

/// The sample photos in `assets/samples` ship inside the binary for a
/// first try; the bytes served are the repository's, and they make a
/// real upload.
#[tokio::test]
async fn sample_photos_are_served_and_upload_as_real_photos() {
    let s = TestServer::start().await;
    for (name, ty, w, h) in [
        ("garden.jpg", "image/jpeg", 320, 240),
        ("portrait.png", "image/png", 120, 160),
    ] {
        let r = s.get(&format!("/admin/samples/{name}")).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], ty);
        let bytes = r.bytes().await.unwrap().to_vec();
        let file = std::fs::read(format!(
            "{}/assets/samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(bytes, file);
        let up = common::json(common::upload(&s.url, name, bytes).await).await;
        let m = common::json(
            client()
                .get(s.at(&format!(
                    "/api/media/{}",
                    up["mediaItemId"].as_str().unwrap()
                )))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (
                m["width"].as_u64(),
                m["height"].as_u64(),
                m["mime_type"].as_str()
            ),
            (Some(w), Some(h), Some(ty))
        );
    }
    let r = s.get("/admin/samples/nope.jpg").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.stop().await;
}
