//! A household on one server: each person signs in with their Immich
//! account and sees only what Immich lets them see. The Immich stand-in
//! has an admin (the service key's user, who owns the default library),
//! Alice and Bob with private photos, and Carol who signs in to Immich
//! with OAuth only; partner and album shares are made in it as a test
//! goes. Every answer is asked as the person would: their session cookie,
//! nothing else.

mod common;

use std::time::Duration;

use common::{
    anonymous,
    immich_standin::{owned_photos, ImmichStandin},
    immich_users::{ADMIN, ALICE, BOB, CAROL},
    Api, TestServer,
};
use serde_json::{json, Value};

const A1: &str = "a1000000-0000-4000-8000-000000000001";
const B1: &str = "b0000000-0000-4000-8000-000000000001";
const B2: &str = "b0000000-0000-4000-8000-000000000002";
const PHOTO: &str = "00000000-0000-4000-8000-000000000001";

type World = common::Household;

async fn world(tweak: impl FnOnce(&mut immichvr::Config)) -> World {
    common::household((3, 2, 2), tweak).await
}

/// A signed-in browser: its cookie on every request, nothing else.
#[derive(Clone)]
struct Person {
    base: String,
    cookie: String,
}

impl Person {
    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        anonymous()
            .request(m, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.req(reqwest::Method::GET, path).send().await.unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        self.req(reqwest::Method::DELETE, path)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.req(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn generate(&self, id: &str) -> reqwest::Response {
        self.post(
            &format!("/api/assets/{id}/generate"),
            json!({"type": "depth", "modelKey": "small"}),
        )
        .await
    }
}

async fn login(s: &TestServer, body: Value) -> reqwest::Response {
    anonymous()
        .post(s.at("/api/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn sign_in(s: &TestServer, email: &str, password: &str) -> Person {
    let cookie = common::sign_in_with(&s.url, json!({"email": email, "password": password})).await;
    Person {
        base: s.url.clone(),
        cookie,
    }
}

async fn code(r: reqwest::Response) -> String {
    let v: Value = r.json().await.unwrap_or_default();
    v["code"].as_str().unwrap_or_default().to_string()
}

fn map_ids(map: &Value) -> Vec<String> {
    let mut ids: Vec<String> = map["map"].as_object().unwrap().keys().cloned().collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_sign_in_makes_a_key_of_the_users_own_and_keeps_no_immich_session() {
    let w = world(|_| {}).await;
    let r = login(
        &w.s,
        json!({"email": "alice@example.org", "password": "alice-password"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["role"], "user");
    assert_eq!(body["user"]["id"], ALICE);
    assert_eq!(body["user"]["isAdmin"], false);
    // One key of hers, with only what this service needs, named after it.
    let keys = w.im.inner.people.keys_of(ALICE);
    assert_eq!(keys.len(), 1);
    assert!(keys[0].name.starts_with("ImmichVR on "), "{}", keys[0].name);
    let mut perms = keys[0].permissions.clone();
    perms.sort();
    let mut want: Vec<String> = immichvr::immich::account::KEY_PERMISSIONS
        .iter()
        .map(|p| p.to_string())
        .collect();
    want.sort();
    assert_eq!(perms, want);
    assert!(!perms.contains(&"all".to_string()));
    // Immich's session was ended at once: none is kept.
    let people = &w.im.inner.people;
    assert_eq!(people.logins.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(people.logouts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(people.live_sessions(), 0);
    // Who is signed in.
    let alice = Person {
        base: w.s.url.clone(),
        cookie: cookie.split(';').next().unwrap().into(),
    };
    let st = alice.json("/api/auth/status").await;
    assert_eq!(
        (st["authenticated"].as_bool(), st["role"].as_str()),
        (Some(true), Some("user"))
    );
    assert_eq!(st["user"]["email"], "alice@example.org");
    assert_eq!(st["mode"], "immich");
    // Signing in again reuses the key while it works.
    sign_in(&w.s, "alice@example.org", "alice-password").await;
    assert_eq!(w.im.inner.people.keys_of(ALICE).len(), 1);
    // A wrong password is a failed sign-in; nothing is made.
    let r = login(
        &w.s,
        json!({"email": "bob@example.org", "password": "nope"}),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "invalid-credentials");
    assert!(w.im.inner.people.keys_of(BOB).is_empty());
    // Exactly one way in per call.
    for bad in [
        json!({}),
        json!({"email": "a@b.c"}),
        json!({"token": "x", "apiKey": "y"}),
    ] {
        let r = login(&w.s, bad.clone()).await;
        assert_eq!(r.status(), 422, "{bad}");
        assert_eq!(code(r).await, "invalid-body");
    }
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_only_user_pastes_a_key_of_their_own() {
    let w = world(|_| {}).await;
    let people = &w.im.inner.people;
    // No password works for Carol: Immich says no.
    let r = login(
        &w.s,
        json!({"email": "carol@example.org", "password": "anything"}),
    )
    .await;
    assert_eq!(r.status(), 401);
    let good = people.make_key(
        CAROL,
        &[
            "asset.read",
            "asset.view",
            "asset.download",
            "asset.statistics",
            "album.read",
            "partner.read",
            "user.read",
        ],
    );
    let r = login(&w.s, json!({"apiKey": good})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], CAROL);
    // A key too narrow is refused with what it lacks; an unknown one is a failed sign-in.
    let narrow = people.make_key(CAROL, &["asset.read"]);
    let r = login(&w.s, json!({"apiKey": narrow})).await;
    let status = r.status();
    let b: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{b}");
    assert_eq!(b["code"], "key-permissions");
    assert!(
        b["message"].as_str().unwrap().contains("asset.download"),
        "{b}"
    );
    let r = login(&w.s, json!({"apiKey": "not-a-key"})).await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "invalid-credentials");
    // A "key" that could not even be a header (the fuzzer's find: it was
    // a 503 "Immich unreachable") is a wrong key, counted as one.
    let before = w.im.inner.people.keys_of(CAROL).len();
    for odd in ["two words", "l\u{00e9}", "line\nbreak"] {
        let r = login(&w.s, json!({"apiKey": odd})).await;
        assert_eq!(r.status(), 401, "{odd:?}");
        assert_eq!(code(r).await, "invalid-credentials", "{odd:?}");
    }
    assert_eq!(w.im.inner.people.keys_of(CAROL).len(), before);
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_person_sees_their_own_and_what_is_shared_with_them_nothing_else() {
    let w = world(|_| {}).await;
    let alice = sign_in(&w.s, "alice@example.org", "alice-password").await;
    let bob = sign_in(&w.s, "bob@example.org", "bob-password").await;
    let admin = sign_in(&w.s, "admin@example.org", "admin-password").await;

    // Each makes a depth map of their own photo, with their own key.
    for (p, id) in [(&alice, A1), (&bob, B1), (&admin, PHOTO)] {
        let r = p.generate(id).await;
        assert_eq!(r.status(), 200, "{id}: {}", r.text().await.unwrap());
    }
    // Nobody makes one of a photo they cannot read, nor learns it exists.
    let r = alice.generate(B2).await;
    assert_eq!(r.status(), 404);
    assert_eq!(code(r).await, "photo-not-found");
    // ... nor gets the stored one of somebody else's.
    let r = alice.generate(B1).await;
    assert_eq!(r.status(), 404);
    assert_eq!(code(r).await, "photo-not-found");

    // The map: one's own; the operator's token sees all.
    assert_eq!(map_ids(&alice.json("/api/assets/map").await), [A1]);
    assert_eq!(map_ids(&bob.json("/api/assets/map").await), [B1]);
    assert_eq!(map_ids(&admin.json("/api/assets/map").await), [PHOTO]);
    let all = map_ids(&w.s.get_json("/api/assets/map").await);
    assert_eq!(all, [PHOTO, A1, B1]);

    // Files and downloads of Bob's photo are not Alice's to see.
    let bobs = bob.json(&format!("/api/assets/{B1}/files")).await;
    assert_eq!(bobs["count"], 1);
    let fid = bobs["files"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        alice.json(&format!("/api/assets/{B1}/files")).await["count"],
        0
    );
    let r = alice
        .get(&format!("/api/assets/{B1}/files/{fid}/download"))
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(code(r).await, "file-not-found");
    let r = alice.delete(&format!("/api/assets/{B1}/files/{fid}")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        bob.get(&format!("/api/assets/{B1}/files/{fid}/download"))
            .await
            .status(),
        200
    );

    // "3D only": one's own.
    let p = alice.json("/api/immich/processed").await;
    let ids: Vec<&str> = p["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [A1]);
    assert_eq!(p["missing"].as_array().unwrap().len(), 0);
    assert_eq!(p["total"], 1);

    // Browsing Immich goes with one's own key: Bob's photo is not there for Alice.
    for path in [
        format!("/api/immich/assets/{B1}"),
        format!("/api/immich/assets/{B1}/thumbnail"),
        format!("/api/immich/assets/{B1}/file"),
    ] {
        let r = alice.get(&path).await;
        assert_eq!(r.status(), 404, "{path}");
    }
    assert_eq!(
        alice
            .get(&format!("/api/immich/assets/{A1}/thumbnail"))
            .await
            .status(),
        200
    );
    let buckets = alice.json("/api/immich/timeline").await;
    let count: u64 = buckets["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, 2, "Alice's timeline is her two photos: {buckets}");

    // The queue: one's own items; the token sees every one.
    let items = |v: Value| -> usize { v["items"].as_array().unwrap().len() };
    assert_eq!(items(alice.json("/api/queue/items").await), 1);
    assert_eq!(items(w.s.get_json("/api/queue/items").await), 3);
    let bob_item = bob.json("/api/queue/items").await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        alice
            .get(&format!("/api/queue/items/{bob_item}"))
            .await
            .status(),
        404
    );

    // Bob shares his library with Alice as a partner: within the cache's
    // lifetime (1 s here) she sees his photos too, decided by Immich.
    w.im.inner.people.share(BOB, ALICE);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(map_ids(&alice.json("/api/assets/map").await), [A1, B1]);
    assert_eq!(
        alice
            .get(&format!("/api/assets/{B1}/files/{fid}/download"))
            .await
            .status(),
        200
    );
    let r = alice.generate(B1).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-asset-cache"], "hit");
    // ... but may not delete his files: they are his.
    let r = alice.delete(&format!("/api/assets/{B1}/files/{fid}")).await;
    assert_eq!(r.status(), 403);
    // The share ends: so does her access.
    w.im.inner.people.unshare(BOB, ALICE);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(map_ids(&alice.json("/api/assets/map").await), [A1]);
    assert_eq!(
        alice
            .get(&format!("/api/assets/{B1}/files/{fid}/download"))
            .await
            .status(),
        404
    );

    // An album Bob shares with Alice holding B2: that photo only.
    w.im.inner.people.album(BOB, &[ALICE], &[B2]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = alice.generate(B2).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(map_ids(&alice.json("/api/assets/map").await), [A1, B2]);
    assert!(!map_ids(&alice.json("/api/assets/map").await).contains(&B1.to_string()));
    assert_eq!(map_ids(&bob.json("/api/assets/map").await), [B1, B2]);
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tell_a_person_only_of_their_own() {
    let w = world(|_| {}).await;
    let alice = sign_in(&w.s, "alice@example.org", "alice-password").await;
    let bob = sign_in(&w.s, "bob@example.org", "bob-password").await;
    let mut stream = alice.get("/api/events").await;
    assert_eq!(stream.status(), 200);
    assert_eq!(bob.generate(B1).await.status(), 200);
    assert_eq!(alice.generate(A1).await.status(), 200);
    // Read until Alice's own completion has come.
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains(&format!("\"id\":\"{A1}\"")) || !text.contains("\"complete\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("events in time");
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(!text.contains(B1), "Alice was told of Bob's photo");
    // Items of Bob's job never reach her either: only her own media id.
    let bob_media = bob.json("/api/queue/items").await["items"][0]["media_item_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!text.contains(&bob_media));
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_run_nothing_operators_run_the_service() {
    let w = world(|_| {}).await;
    let alice = sign_in(&w.s, "alice@example.org", "alice-password").await;
    let admin = sign_in(&w.s, "admin@example.org", "admin-password").await;
    for (m, path) in [
        (reqwest::Method::POST, "/api/queue/worker/stop"),
        (reqwest::Method::POST, "/api/queue/worker/start"),
        (reqwest::Method::GET, "/api/queue/worker/status"),
        (reqwest::Method::POST, "/api/queue/retry-failed"),
        (reqwest::Method::POST, "/api/admin/backup"),
        (reqwest::Method::GET, "/api/db/info"),
        (reqwest::Method::GET, "/metrics"),
        (reqwest::Method::POST, "/api/settings/models/sync"),
        (reqwest::Method::POST, "/api/settings/models/base/download"),
        (reqwest::Method::POST, "/api/settings/models/small/load"),
        (reqwest::Method::POST, "/api/settings/models/small/unload"),
        (reqwest::Method::DELETE, "/api/settings/models/base"),
        (reqwest::Method::POST, "/api/immich/import"),
        (
            reqwest::Method::POST,
            &format!("/api/immich/assets/{A1}/enqueue"),
        ),
    ] {
        let r = alice
            .req(m.clone(), path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{m} {path}");
        assert_eq!(code(r).await, "operator-only", "{m} {path}");
    }
    // An Immich admin is an operator.
    assert_eq!(admin.get("/api/queue/worker/status").await.status(), 200);
    assert_eq!(admin.get("/metrics").await.status(), 200);
    // What people may do: their own settings, starting from the global ones.
    let global = w.s.get_json("/api/settings").await;
    assert_eq!(
        alice.json("/api/settings").await["defaultDepthModel"],
        global["defaultDepthModel"]
    );
    let r = alice
        .req(reqwest::Method::PUT, "/api/settings")
        .json(&json!({"defaultDepthModel": "base", "autoGenerateOnEnter": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        alice.json("/api/settings").await["defaultDepthModel"],
        "base"
    );
    assert_eq!(
        w.s.get_json("/api/settings").await["defaultDepthModel"],
        global["defaultDepthModel"]
    );
    assert_eq!(
        admin.json("/api/settings").await["defaultDepthModel"],
        global["defaultDepthModel"]
    );
    // The token changes the global ones, which people who changed nothing have.
    let r = common::client()
        .put(w.s.at("/api/settings"))
        .json(&json!({"autoGenerateOnEnter": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        admin.json("/api/settings").await["autoGenerateOnEnter"],
        true
    );
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_by_default_only_health_and_the_sign_in_answer_strangers() {
    let w = world(|_| {}).await;
    let nr = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/api/settings",
        "/api/assets/map",
        "/api/immich/timeline",
        "/api/events",
        "/socket.io/?EIO=4&transport=polling",
        "/metrics",
    ] {
        let r = nr.get(w.s.at(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(code(r).await, "unauthorized", "{path}");
    }
    // A browser is sent to the sign-in page and back.
    for (path, next) in [
        ("/", "/"),
        ("/admin/", "/admin/"),
        ("/admin/?tab=models", "/admin/%3Ftab%3Dmodels"),
    ] {
        let r = nr
            .get(w.s.at(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(
            r.headers()["location"],
            format!("/signin/?next={next}").as_str(),
            "{path}"
        );
    }
    let page = nr.get(w.s.at("/signin/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign in"));
    for open in [
        "/signin/signin.js",
        "/signin/signin.css",
        "/signin/icon.svg",
    ] {
        assert_eq!(
            nr.get(w.s.at(open)).send().await.unwrap().status(),
            200,
            "{open}"
        );
    }
    // Health says nothing of the library.
    let h = common::json(nr.get(w.s.at("/health")).send().await.unwrap()).await;
    let text = h.to_string();
    for secret in [PHOTO, A1, "IMG_", "alice"] {
        assert!(!text.contains(secret), "{text}");
    }
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_immich_or_a_token_only_this_machine_is_served() {
    let (mut c, tmp) = common::test_config();
    c.auth_token = None;
    let s = TestServer::start_with(c, Some(tmp)).await;
    // This machine: served without a sign-in.
    assert_eq!(
        anonymous()
            .get(s.at("/api/settings"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Another machine (as a proxy on this one says): a plain refusal.
    let far = |r: reqwest::RequestBuilder| r.header("x-forwarded-for", "192.168.1.50");
    let r = far(anonymous().get(s.at("/api/settings")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(code(r).await, "loopback-only");
    let page = far(anonymous()
        .get(s.at("/admin/"))
        .header("accept", "text/html"))
    .send()
    .await
    .unwrap();
    assert_eq!(page.status(), 403);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("AUTH_TOKEN"));
    assert_eq!(
        far(anonymous().get(s.at("/health")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_per_address_and_per_account() {
    let w = world(|_| {}).await;
    let from = |ip: &str, body: Value| {
        anonymous()
            .post(w.s.at("/api/auth/login"))
            .header("x-forwarded-for", ip.to_string())
            .json(&body)
            .send()
    };
    let wrong = json!({"email": "alice@example.org", "password": "wrong"});
    for i in 0..5 {
        let r = from("10.0.0.1", wrong.clone()).await.unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = from("10.0.0.1", wrong.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(code(r).await, "too-many-sign-ins");
    // The account is held from another address too, even with the right password...
    let right = json!({"email": "alice@example.org", "password": "alice-password"});
    assert_eq!(from("10.0.0.2", right.clone()).await.unwrap().status(), 429);
    // ... and the address for another account.
    let bob = json!({"email": "bob@example.org", "password": "bob-password"});
    assert_eq!(from("10.0.0.1", bob.clone()).await.unwrap().status(), 429);
    // Others are not held.
    assert_eq!(from("10.0.0.3", bob).await.unwrap().status(), 200);
    // After the wait, the right password works and clears the account.
    tokio::time::sleep(Duration::from_secs(retry + 1)).await;
    assert_eq!(from("10.0.0.2", right).await.unwrap().status(), 200);
    // Counted where operators look (the counters are the process's: other
    // tests of this file count too).
    let m = w.s.get("/metrics").await.text().await.unwrap();
    let count = |outcome: &str| -> u64 {
        let prefix = format!("immichvr_sign_ins_total{{outcome=\"{outcome}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {outcome} count in {m}"))
    };
    assert!(count("failed") >= 5);
    assert!(count("throttled") >= 3);
    assert!(count("ok") >= 2);
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immich_down_is_a_503_not_a_failed_sign_in() {
    let w = world(|_| {}).await;
    w.im.down().await;
    for _ in 0..8 {
        let r = login(
            &w.s,
            json!({"email": "alice@example.org", "password": "alice-password"}),
        )
        .await;
        assert_eq!(r.status(), 503);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["code"], "immich-unreachable");
        assert!(!b["message"].as_str().unwrap().contains("alice-password"));
    }
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_ended_and_the_last_sign_out_deletes_the_key() {
    let w = world(|_| {}).await;
    let phone = sign_in(&w.s, "alice@example.org", "alice-password").await;
    let r = login(
        &w.s,
        json!({"email": "alice@example.org", "password": "alice-password", "remember": true}),
    )
    .await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains(&format!("Max-Age={}", 30 * 24 * 3600)),
        "{cookie}"
    );
    let headset = Person {
        base: w.s.url.clone(),
        cookie: cookie.split(';').next().unwrap().into(),
    };
    let list = headset.json("/api/auth/sessions").await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions.iter().filter(|s| s["remember"] == true).count(), 1);
    // Bob sees none of hers.
    let bob = sign_in(&w.s, "bob@example.org", "bob-password").await;
    assert_eq!(
        bob.json("/api/auth/sessions").await["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let phone_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = bob.delete(&format!("/api/auth/sessions/{phone_id}")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(code(r).await, "session-not-found");
    // She ends the phone's session from the headset; the key stays.
    let r = headset
        .delete(&format!("/api/auth/sessions/{phone_id}"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(phone.get("/api/settings").await.status(), 401);
    assert_eq!(w.im.inner.people.keys_of(ALICE).len(), 1);
    // Her last sign-out deletes the key made for her in Immich.
    let r = headset.post("/api/auth/logout", json!({})).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert!(w.im.inner.people.keys_of(ALICE).is_empty());
    assert_eq!(headset.get("/api/settings").await.status(), 401);
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_in_immich_signs_its_user_out() {
    let w = world(|c| c.key_check_secs = 1).await;
    let alice = sign_in(&w.s, "alice@example.org", "alice-password").await;
    let bob = sign_in(&w.s, "bob@example.org", "bob-password").await;
    assert_eq!(alice.get("/api/immich/timeline").await.status(), 200);
    // At once, when a request meets Immich's refusal.
    w.im.inner.people.revoke_keys_of(ALICE);
    let r = alice.get("/api/immich/timeline").await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "sign-in-again");
    common::wait_for(2.0, "Alice signed out", || {
        let a = alice.clone();
        async move { (a.get("/api/settings").await.status() == 401).then_some(()) }
    })
    .await;
    // Within the key check's period, with no request meeting it.
    w.im.inner.people.revoke_keys_of(BOB);
    common::wait_for(4.0, "Bob signed out by the key check", || {
        let b = bob.clone();
        async move { (b.get("/api/settings").await.status() == 401).then_some(()) }
    })
    .await;
    w.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_of_immich_is_an_operator_and_sees_only_what_immich_shows_them() {
    let w = world(|_| {}).await;
    let alice = sign_in(&w.s, "alice@example.org", "alice-password").await;
    let admin = sign_in(&w.s, "admin@example.org", "admin-password").await;
    assert_eq!(alice.generate(A1).await.status(), 200);
    let st = admin.json("/api/auth/status").await;
    assert_eq!(st["role"], "operator");
    assert_eq!(st["user"]["id"], ADMIN);
    // An operator, but Immich does not show admins other people's photos.
    assert!(map_ids(&admin.json("/api/assets/map").await).is_empty());
    assert_eq!(
        admin.json(&format!("/api/assets/{A1}/files")).await["count"],
        0
    );
    assert_eq!(
        admin.json("/api/queue/items").await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    w.s.stop().await;
}

/// The stand-in's people answer in Immich's own shapes (its spec in
/// `tests/fixtures`): what the sign-in and the sharing checks read is what
/// a real Immich sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standins_people_answer_in_immichs_shapes() {
    let im = ImmichStandin::start(owned_photos(BOB, "b0", 2)).await;
    im.inner.people.share(BOB, ALICE);
    let album = im.inner.people.album(BOB, &[ALICE], &[B2]);
    let spec = common::spec_shape::immich_spec();
    let c = anonymous();
    let at = |p: &str| format!("{}/api{p}", im.url());
    let mut wrong = Vec::new();
    let mut check = |what: &str, schema: &str, v: &Value| {
        for m in common::spec_shape::mismatches(&spec, schema, v) {
            wrong.push(format!("{what}: {m}"));
        }
    };

    let r = c
        .post(at("/auth/login"))
        .json(&json!({"email": "alice@example.org", "password": "alice-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let login: Value = r.json().await.unwrap();
    check("POST /auth/login", "LoginResponseDto", &login);
    let token = login["accessToken"].as_str().unwrap().to_string();
    let r = c
        .post(at("/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "immichvr test", "permissions": ["all"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    check("POST /api-keys", "ApiKeyCreateResponseDto", &key);
    let secret = key["secret"].as_str().unwrap().to_string();
    let r = c
        .post(at("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(
        "POST /auth/logout",
        "LogoutResponseDto",
        &r.json().await.unwrap(),
    );

    let get = |p: String| {
        let req = c.get(at(&p)).header("x-api-key", &secret);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200, "{p}");
            r.json::<Value>().await.unwrap()
        }
    };
    check(
        "GET /users/me",
        "UserAdminResponseDto",
        &get("/users/me".into()).await,
    );
    check(
        "GET /api-keys/me",
        "ApiKeyResponseDto",
        &get("/api-keys/me".into()).await,
    );
    let partners = get("/partners?direction=shared-with".into()).await;
    assert_eq!(partners.as_array().unwrap().len(), 1);
    for p in partners.as_array().unwrap() {
        check("GET /partners", "PartnerResponseDto", p);
    }
    let albums = get("/albums".into()).await;
    assert_eq!(albums.as_array().unwrap().len(), 1);
    for a in albums.as_array().unwrap() {
        check("GET /albums", "AlbumResponseDto", a);
    }
    check(
        "GET /albums/{id}",
        "AlbumResponseDto",
        &get(format!("/albums/{album}")).await,
    );
    let r = c
        .delete(at(&format!(
            "/api-keys/{}",
            key["apiKey"]["id"].as_str().unwrap()
        )))
        .header("x-api-key", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Immich's refusals: a wrong password, a deleted key.
    let r = c
        .post(at("/auth/login"))
        .json(&json!({"email": "alice@example.org", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(at("/users/me"))
        .header("x-api-key", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
