//! A household on one server (issue 27), not a test: with Alice and Bob
//! signed in (session cookies), the cached generate hit and the asset map
//! of 10,000 processed photos as each of them, beside the operator (the
//! `AUTH_TOKEN`) as the baseline in the same run; and what a sign-in
//! costs us beyond Immich's own time (the stand-in answers at once; the
//! same Immich calls are timed directly and taken off).
//!
//! The map: 10,000 photos made in 3D, 5,000 of Alice's and 5,000 of
//! Bob's; Bob shares his library with Alice, so her map is all 10,000
//! (the operator's size) and his is his 5,000, each filtered per person.
//!
//! Prints medians of `RUNS` (3) runs. Run: `cargo bench --bench people`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::ai_standin::{AiStandin, Mode};
use common::immich_standin::{library, owned_photos, ImmichStandin, KEY};
use common::immich_users::{ALICE, BOB};
use common::stats::{env_or, median, pct};
use common::{anonymous, client, TestServer};
use futures_util::StreamExt;
use serde_json::{json, Value};

const PHOTO: &str = "00000000-0000-4000-8000-000000000001";

/// Who asks: a cookie, or the operator's token (`None`).
#[derive(Clone)]
struct As(Option<String>);

impl As {
    fn req(&self, c: &reqwest::Client, m: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        match &self.0 {
            Some(cookie) => c.request(m, url).header("cookie", cookie.as_str()),
            None => c
                .request(m, url)
                .header("authorization", format!("Bearer {}", common::TOKEN)),
        }
    }
}

async fn sign_in(s: &TestServer, body: Value) -> String {
    common::sign_in_with(&s.url, body).await
}

async fn generate(c: &reqwest::Client, s: &TestServer, who: &As, id: &str) -> reqwest::Response {
    who.req(
        c,
        reqwest::Method::POST,
        s.at(&format!("/api/assets/{id}/generate")),
    )
    .json(&json!({"type": "depth", "modelKey": "small"}))
    .send()
    .await
    .unwrap()
}

/// p50 and p99 (ms) of `n` sequential requests (after `n / 10` to warm
/// up), answers read whole, on one keep-alive connection; and the size of
/// the last answer (what `one` gives).
async fn series<F, Fut>(n: usize, mut one: F) -> (f64, f64, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut ms = Vec::with_capacity(n);
    let mut size = 0;
    for i in 0..n + n / 10 {
        let t = Instant::now();
        size = one().await;
        if i >= n / 10 {
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (pct(&ms, 0.5), pct(&ms, 0.99), size)
}

struct World {
    _ai: AiStandin,
    im: ImmichStandin,
    s: TestServer,
    alice: As,
    bob: As,
}

async fn world(each: usize, png_side: u32) -> World {
    let ai = AiStandin::start(Mode::Ok).await;
    ai.inner
        .noise_side
        .store(png_side, std::sync::atomic::Ordering::SeqCst);
    let mut assets = library(1);
    assets.extend(owned_photos(ALICE, "a1", each));
    assets.extend(owned_photos(BOB, "b0", each));
    let im = ImmichStandin::start(assets).await;
    let url = im.url();
    let s = common::start_with_ai(&ai.url(), move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = Some(KEY.parse().unwrap());
    })
    .await;
    let r = client()
        .post(s.at("/api/settings/models/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let alice = As(Some(
        sign_in(
            &s,
            json!({"email": "alice@example.org", "password": "alice-password"}),
        )
        .await,
    ));
    let bob = As(Some(
        sign_in(
            &s,
            json!({"email": "bob@example.org", "password": "bob-password"}),
        )
        .await,
    ));
    World {
        _ai: ai,
        im,
        s,
        alice,
        bob,
    }
}

fn id(prefix: &str, k: usize) -> String {
    format!("{prefix}000000-0000-4000-8000-{:012}", k + 1)
}

async fn cached_hit(runs: usize) {
    let w = world(1, 1024).await;
    let c = anonymous();
    let cases = [
        ("operator (token)", As(None), PHOTO.to_string()),
        ("Alice (cookie)", w.alice.clone(), id("a1", 0)),
        ("Bob (cookie)", w.bob.clone(), id("b0", 0)),
    ];
    for (_, who, photo) in &cases {
        let r = generate(&c, &w.s, who, photo).await;
        assert_eq!(r.status(), 200, "{photo}");
        assert_eq!(r.headers()["x-asset-cache"], "miss");
    }
    let mut rows = Vec::new();
    for (name, who, photo) in &cases {
        let (mut p50, mut p99) = (Vec::new(), Vec::new());
        let mut size = 0;
        for _ in 0..runs {
            let (a, b, n) = series(500, || async {
                let r = generate(&c, &w.s, who, photo).await;
                assert_eq!(r.headers()["x-asset-cache"], "hit");
                r.bytes().await.unwrap().len()
            })
            .await;
            size = n;
            p50.push(a);
            p99.push(b);
        }
        rows.push((name, size, median(p50), median(p99)));
    }
    let base = rows[0].3;
    for (name, size, p50, p99) in rows {
        println!(
            "| cached generate (hit), {:.2} MiB PNG, 500 requests, as {name} | p50 {p50:.3} ms, p99 {p99:.3} ms ({:.2}x the operator's p99) |",
            size as f64 / 1048576.0,
            p99 / base
        );
    }
    w.s.stop().await;
}

async fn map_of(each: usize, runs: usize) {
    let w = world(each, 64).await;
    // Bob shares his library with Alice: her map is everything. (Before
    // anything is asked, so what she sees is read with the share.)
    w.im.inner.people.share(BOB, ALICE);
    let t = Instant::now();
    for (who, prefix) in [(&w.alice, "a1"), (&w.bob, "b0")] {
        let made = futures_util::stream::iter(0..each)
            .map(|k| {
                let (s, who) = (&w.s, who);
                async move {
                    let c = anonymous();
                    generate(&c, s, who, &id(prefix, k)).await.status().as_u16()
                }
            })
            .buffer_unordered(16)
            .filter(|st| futures_util::future::ready(*st == 200))
            .count()
            .await;
        assert_eq!(made, each, "{prefix}");
    }
    let fill = t.elapsed();
    let sharing = w.s.at("/api/assets/map");
    let c = anonymous();
    let count = |who: &As| {
        let (c, url) = (c.clone(), sharing.clone());
        let who = who.clone();
        async move {
            let r = who.req(&c, reqwest::Method::GET, url).send().await.unwrap();
            let v: Value = r.json().await.unwrap();
            v["count"].as_u64().unwrap()
        }
    };
    let operator = As(None);
    assert_eq!(count(&operator).await, 2 * each as u64);
    assert_eq!(count(&w.alice).await, 2 * each as u64);
    assert_eq!(count(&w.bob).await, each as u64);
    let cases = [
        ("operator (token)", operator, 2 * each),
        (
            "Alice (cookie; her own and Bob's, shared)",
            w.alice.clone(),
            2 * each,
        ),
        ("Bob (cookie; his own)", w.bob.clone(), each),
    ];
    let mut rows = Vec::new();
    for (name, who, n) in &cases {
        let (mut p50, mut p99) = (Vec::new(), Vec::new());
        let mut size = 0;
        for _ in 0..runs {
            let (a, b, n) = series(200, || async {
                let r = who
                    .req(&c, reqwest::Method::GET, sharing.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap().len()
            })
            .await;
            size = n;
            p50.push(a);
            p99.push(b);
        }
        rows.push((name, n, size, median(p50), median(p99)));
    }
    let base = rows[0].4;
    for (name, n, size, p50, p99) in rows {
        println!(
            "| GET /api/assets/map, {} photos processed, as {name}: {n} entries ({} KiB) | p50 {p50:.3} ms, p99 {p99:.3} ms ({:.2}x the operator's p99) |",
            2 * each,
            size / 1024,
            p99 / base
        );
    }
    println!(
        "| (the 10,000 made through generate, as their owners) | {:.1} s, {:.0}/s |",
        fill.as_secs_f64(),
        (2 * each) as f64 / fill.as_secs_f64()
    );
    w.s.stop().await;
}

/// p50 and p99 of the Immich calls a sign-in makes, asked directly.
async fn immich_direct(
    im: &ImmichStandin,
    key_sign_in: Option<&str>,
    n: usize,
) -> (f64, f64, usize) {
    let c = anonymous();
    let base = im.url();
    let me_key = im.inner.people.keys_of(ALICE)[0].secret.clone();
    series(n, || {
        let (c, base, me_key) = (c.clone(), base.clone(), me_key.clone());
        async move {
            match key_sign_in {
                // A pasted key: its permissions, then its user.
                Some(k) => {
                    for p in ["/api/api-keys/me", "/api/users/me"] {
                        let r = c
                            .get(format!("{base}{p}"))
                            .header("x-api-key", k)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200);
                        r.bytes().await.unwrap();
                    }
                    0
                }
                // A password: Immich's login, the check of the key kept
                // for her (reused while it works), Immich's logout.
                None => {
                    let r = c
                        .post(format!("{base}/api/auth/login"))
                        .json(&json!({"email": "alice@example.org", "password": "alice-password"}))
                        .send()
                        .await
                        .unwrap();
                    let v: Value = r.json().await.unwrap();
                    let token = v["accessToken"].as_str().unwrap().to_string();
                    let r = c
                        .get(format!("{base}/api/users/me"))
                        .header("x-api-key", &me_key)
                        .send()
                        .await
                        .unwrap();
                    r.bytes().await.unwrap();
                    let r = c
                        .post(format!("{base}/api/auth/logout"))
                        .bearer_auth(token)
                        .send()
                        .await
                        .unwrap();
                    r.bytes().await.unwrap();
                    0
                }
            }
        }
    })
    .await
}

async fn sign_in_time(runs: usize) {
    let w = world(1, 64).await;
    let carol_key = w.im.inner.people.make_key(
        common::immich_users::CAROL,
        immichvr::immich::account::KEY_PERMISSIONS,
    );
    let c = anonymous();
    let ways = [
        (
            "email and password (Alice; her key kept, reused)",
            json!({"email": "alice@example.org", "password": "alice-password"}),
            None,
        ),
        (
            "a pasted API key (Carol)",
            json!({"apiKey": carol_key}),
            Some(carol_key.clone()),
        ),
    ];
    for (name, body, key) in &ways {
        let (mut t50, mut t99, mut d50, mut d99) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            // Each sign-in is then signed out of (not timed), so that every
            // one meets the same number of sessions; Alice's first session
            // keeps her key.
            let mut ms = Vec::new();
            for i in 0..220 {
                let t = Instant::now();
                let r = c
                    .post(w.s.at("/api/auth/login"))
                    .json(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let cookie = r.headers()["set-cookie"]
                    .to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_string();
                r.bytes().await.unwrap();
                if i >= 20 {
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                let out = c
                    .post(w.s.at("/api/auth/logout"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(out.status(), 200);
            }
            ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (a, b) = (pct(&ms, 0.5), pct(&ms, 0.99));
            let (d, e, _) = immich_direct(&w.im, key.as_deref(), 200).await;
            t50.push(a);
            t99.push(b);
            d50.push(d);
            d99.push(e);
        }
        let (t50, t99, d50, d99) = (median(t50), median(t99), median(d50), median(d99));
        println!(
            "| sign-in with {name}, 200 sign-ins | end to end p50 {t50:.3} ms, p99 {t99:.3} ms; Immich's calls alone p50 {d50:.3} ms, p99 {d99:.3} ms; ours p50 {:.3} ms ({:.0} % of the whole) |",
            t50 - d50,
            100.0 * (t50 - d50) / t50
        );
    }
    w.s.stop().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = env_or("RUNS", 3);
    let photos: usize = env_or("MAP_PHOTOS", 10_000);
    println!("| figure | value |\n|---|---|");
    cached_hit(runs).await;
    map_of(photos / 2, runs).await;
    sign_in_time(runs).await;
}
