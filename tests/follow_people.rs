//! Following each person's Immich library (issue 28 with the sign-in of
//! issue 27): a person who turns `followLibrary` on in their settings gets
//! each new photo made in 3D with THEIR `defaultDepthModel`, read with
//! their own key; no one else's library is made for them, nor shown to
//! them; turning it off makes nothing new; a partner's photo followed by
//! two people is made once and stays while either still has it; a
//! restart keeps each person's cursor. Every call is made as the person
//! would: their session cookie, nothing else.

mod common;

use std::time::Duration;

use common::{
    ai_standin::{AiStandin, Mode},
    anonymous,
    bin::Launch,
    immich_standin::{library, now_stamp, owned_photos, ImmichStandin, StandinAsset, KEY},
    immich_users::{ADMIN, ALICE, BOB},
    next_event, Api, TestServer,
};
use serde_json::{json, Value};

const A1: &str = "a1000000-0000-4000-8000-000000000001";
const A2: &str = "a1000000-0000-4000-8000-000000000002";
const B1: &str = "b0000000-0000-4000-8000-000000000001";
const B2: &str = "b0000000-0000-4000-8000-000000000002";

/// A signed-in browser: its cookie on every request, nothing else.
struct Person {
    base: String,
    cookie: String,
}

impl Person {
    async fn sign_in(base: &str, email: &str, password: &str) -> Person {
        let r = anonymous()
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        Person {
            base: base.to_string(),
            cookie,
        }
    }

    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        anonymous()
            .request(m, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        r.json().await.unwrap()
    }

    async fn settings(&self, body: Value) -> Value {
        let r = self.req(reqwest::Method::PUT, "/api/settings");
        let r = r.json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn sync(&self, query: &str) -> reqwest::Response {
        let path = format!("/api/library/sync{query}");
        self.req(reqwest::Method::POST, &path).send().await.unwrap()
    }

    /// Their library's figures, once no round is reading it and `done`.
    async fn wait_library(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let done = &done;
        common::wait_for(30.0, what, || async move {
            let v = self.json("/api/library").await;
            let l = v["libraries"].get(0).cloned()?;
            (l["syncing"] == false && done(&l)).then_some(l)
        })
        .await
    }

    /// Starts a round of their library and waits until it is over.
    async fn round(&self, query: &str) -> Value {
        let before = self.json("/api/library").await["libraries"][0]["lastSyncAt"].clone();
        let r = self.sync(query).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        self.wait_library("a round", |l| l["lastSyncAt"] != before)
            .await
    }
}

/// The owners of the libraries in a `GET /api/library` answer.
fn owners(answer: &Value) -> Vec<&str> {
    answer["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ownerId"].as_str().unwrap())
        .collect()
}

fn depth(map: &Value, id: &str) -> Value {
    map["map"][id]["depth"].clone()
}

/// Alice's and Bob's photos, and the admin's (the service key's) library.
fn assets() -> Vec<StandinAsset> {
    let mut a = library(3);
    a.extend(owned_photos(ALICE, "a1", 2));
    a.extend(owned_photos(BOB, "b0", 2));
    a
}

/// New photos of `owner`, changed now (what a phone backs up tonight).
fn backed_up(owner: &str, prefix: &str, n: usize) -> Vec<StandinAsset> {
    let mut v = owned_photos(owner, prefix, n);
    for a in &mut v {
        a.json["updatedAt"] = json!(now_stamp());
    }
    v
}

async fn server(
    ai: &AiStandin,
    im: &ImmichStandin,
    service_key: bool,
    tweak: impl FnOnce(&mut immichvr::Config),
) -> TestServer {
    let url = im.url();
    let s = common::start_with_ai(&ai.url(), move |c| {
        c.immich_url = Some(url);
        c.immich_api_key = service_key.then(|| KEY.parse().unwrap());
        c.sharing_cache_secs = 1;
        tweak(c);
    })
    .await;
    assert_eq!(s.post("/api/settings/models/sync").await.status(), 200);
    s
}

/// Waits until Immich was searched `n` more times (rounds went on).
async fn more_searches(im: &ImmichStandin, n: usize) {
    let asked = im.inner.search_bodies.lock().unwrap().len();
    common::wait_for(20.0, "more rounds", || async {
        (im.inner.search_bodies.lock().unwrap().len() >= asked + n).then_some(())
    })
    .await;
}

/// The `library` events a person's stream brings within `secs`.
async fn library_events(p: &Person, secs: u64) -> Vec<Value> {
    let r = p
        .req(reqwest::Method::GET, "/api/events")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some((name, ev)) = next_event(&mut stream, &mut buf).await {
            if name == "library" {
                out.push(ev);
            }
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_turns_following_on_gets_their_photos_made_in_their_model_only() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(assets()).await;
    let s = server(&ai, &im, true, |c| c.background.immich_sync_secs = 1).await;
    let alice = Person::sign_in(&s.url, "alice@example.org", "alice-password").await;
    let bob = Person::sign_in(&s.url, "bob@example.org", "bob-password").await;

    // Not followed until she asks: no figures, and "sync now" says why.
    assert_eq!(alice.json("/api/library").await["libraries"], json!([]));
    let r = alice.sync("").await;
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "following-off");
    assert!(v["message"].as_str().unwrap().contains("followLibrary"));

    // Bad input: a clear 4xx with its code, nothing changed.
    let r = alice.req(reqwest::Method::PUT, "/api/settings");
    let r = r
        .json(&json!({"followLibrary": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["code"].is_string() && v["message"].is_string(), "{v}");
    let r = alice.sync("?full=maybe").await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "bad-request", "{v}");
    assert_eq!(alice.json("/api/settings").await["followLibrary"], false);

    let saved = alice
        .settings(json!({"defaultDepthModel": "base", "followLibrary": true}))
        .await;
    assert_eq!(saved["followLibrary"], true);
    assert_eq!(
        alice.json("/api/settings").await["followLibrary"],
        true,
        "kept in her own settings"
    );
    let lib = alice
        .wait_library("Alice's photos made", |l| l["ready"] == 2)
        .await;
    assert_eq!(lib["ownerId"], ALICE);
    assert_eq!(lib["model"], "base", "her defaultDepthModel");
    assert_eq!(lib["photos"], 2);
    let map = s.get_json("/api/assets/map").await;
    assert_eq!(depth(&map, A1), json!(["base"]), "{map}");
    assert_eq!(depth(&map, A2), json!(["base"]));

    // Rounds go on (one a second); Bob, who did not turn it on, gets
    // nothing made, and neither sees the other's figures.
    more_searches(&im, 6).await;
    let map = s.get_json("/api/assets/map").await;
    assert!(
        map["map"].get(B1).is_none() && map["map"].get(B2).is_none(),
        "{map}"
    );
    assert_eq!(bob.json("/api/library").await["libraries"], json!([]));
    let mine = alice.json("/api/library").await;
    assert_eq!(owners(&mine), [ALICE], "her own only, not the admin's");
    let all = s.get_json("/api/library").await;
    let mut every = owners(&all);
    every.sort();
    let mut expected = vec![ADMIN, ALICE];
    expected.sort();
    assert_eq!(every, expected, "the operator's token sees every library");

    // The event stream: her library reaches her, no one's reaches Bob.
    let hers = library_events(&alice, 2).await;
    assert!(!hers.is_empty(), "Alice is told of her library");
    assert!(hers.iter().all(|l| l["ownerId"] == ALICE), "{hers:?}");
    let his = library_events(&bob, 2).await;
    assert!(his.is_empty(), "Bob is told of no library: {his:?}");

    // Turned off: a photo she backs up now is not made.
    let saved = alice.settings(json!({"followLibrary": false})).await;
    assert_eq!(saved["followLibrary"], false);
    im.add(backed_up(ALICE, "a2", 1));
    more_searches(&im, 6).await;
    let map = s.get_json("/api/assets/map").await;
    assert!(
        map["map"]
            .get("a2000000-0000-4000-8000-000000000001")
            .is_none(),
        "{map}"
    );
    assert_eq!(depth(&map, A1), json!(["base"]), "what was made stays");
    assert_eq!(alice.json("/api/library").await["libraries"], json!([]));
    assert_eq!(alice.sync("").await.status(), 409);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_photo_followed_by_two_is_made_once_and_kept_while_either_has_it() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(assets()).await;
    // Bob shares his library with Alice: his photos are on her timeline.
    im.inner
        .people
        .partners
        .lock()
        .unwrap()
        .push((BOB.into(), ALICE.into()));
    // No service key: only the people who turn it on are followed.
    let s = server(&ai, &im, false, |c| {
        c.background.immich_sync_secs = 3600;
        c.background.immich_delete_grace_secs = 1;
    })
    .await;
    let alice = Person::sign_in(&s.url, "alice@example.org", "alice-password").await;
    let bob = Person::sign_in(&s.url, "bob@example.org", "bob-password").await;
    bob.settings(json!({"followLibrary": true})).await;
    bob.wait_library("Bob's made", |l| l["ready"] == 2).await;
    alice.settings(json!({"followLibrary": true})).await;
    let lib = alice
        .wait_library("Alice's made, Bob's photos included", |l| l["ready"] == 4)
        .await;
    assert_eq!(lib["photos"], 4);
    assert_eq!(ai.requests(), 4, "Bob's two photos made once, not twice");
    // Each sees their own library's figures only, partners or not.
    let mine = alice.json("/api/library").await["libraries"].clone();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["ownerId"], ALICE);
    let his = bob.json("/api/library").await["libraries"].clone();
    assert_eq!(his.as_array().unwrap().len(), 1);
    assert_eq!(his[0]["ownerId"], BOB);

    // Bob stops sharing: for Alice his photos are gone (a full read
    // notices at once); after the grace period her rows go, and his 3D
    // assets stay: he still has the photos.
    im.inner.people.partners.lock().unwrap().clear();
    let lib = alice.round("?full=true").await;
    assert_eq!(lib["gone"], 2, "{lib}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let lib = alice.round("").await;
    assert_eq!(
        (lib["gone"].clone(), lib["photos"].clone()),
        (json!(0), json!(2))
    );
    let map = bob.json("/api/assets/map").await;
    assert_eq!(depth(&map, B1), json!(["small"]), "{map}");
    let r = bob
        .req(reqwest::Method::GET, &format!("/api/assets/{B1}/files"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Deleted in Bob's library too (through the trash): now it goes.
    im.trash(B1);
    assert_eq!(bob.round("").await["trashed"], 1);
    im.delete(B1);
    assert_eq!(bob.round("").await["gone"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    bob.round("").await;
    let map = s.get_json("/api/assets/map").await;
    assert!(map["map"].get(B1).is_none(), "{map}");
    assert_eq!(depth(&map, B2), json!(["small"]));
    assert_eq!(ai.requests(), 4);

    // Bob signs out of his only session (the key made for him is
    // deleted): his library is no longer followed, what was made stays.
    let r = bob.req(reqwest::Method::POST, "/api/auth/logout");
    assert_eq!(r.send().await.unwrap().status(), 200);
    im.add(backed_up(BOB, "b3", 1));
    let before = alice.json("/api/library").await["libraries"][0]["lastSyncAt"].clone();
    assert_eq!(s.post("/api/library/sync").await.status(), 202);
    alice
        .wait_library("a round", |l| l["lastSyncAt"] != before)
        .await;
    let all = s.get_json("/api/library").await;
    assert_eq!(owners(&all), [ALICE], "Bob's library is no longer shown");
    let map = s.get_json("/api/assets/map").await;
    assert_eq!(depth(&map, B2), json!(["small"]), "made for him, kept");
    assert!(map["map"]
        .get("b3000000-0000-4000-8000-000000000001")
        .is_none());
    assert_eq!(ai.requests(), 4);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_each_persons_cursor_and_makes_nothing_twice() {
    let ai = AiStandin::start(Mode::Ok).await;
    let im = ImmichStandin::start(assets()).await;
    let tmp = tempfile::tempdir().unwrap();
    let launch = || {
        Launch::new(tmp.path())
            .env("AI_SERVICE_URL", ai.url())
            .env("IMMICH_URL", im.url())
            .env("IMMICH_SYNC_SECS", 3600)
            .env("AUTO_START_WORKER", true)
    };
    let b = launch().start().await;
    assert_eq!(b.post("/api/settings/models/sync").await.status(), 200);
    let alice = Person::sign_in(&b.url, "alice@example.org", "alice-password").await;
    alice.settings(json!({"followLibrary": true})).await;
    alice.wait_library("made", |l| l["ready"] == 2).await;
    b.terminate().await;

    im.add(backed_up(ALICE, "a3", 1));
    let before = im.inner.search_bodies.lock().unwrap().len();
    let b = launch().start().await;
    // Her sign-in survived; her library is read at start-up from her cursor.
    let alice = Person {
        base: b.url.clone(),
        cookie: alice.cookie,
    };
    let lib = alice
        .wait_library("the new photo made", |l| l["ready"] == 3)
        .await;
    assert_eq!(lib["photos"], 3);
    let bodies = im.inner.search_bodies.lock().unwrap()[before..].to_vec();
    assert!(!bodies.is_empty());
    assert!(
        bodies.iter().all(|b| b["updatedAfter"].is_string()),
        "read from the cursor, not from the start: {bodies:?}"
    );
    let items = b.get_json("/api/queue/items?limit=100").await;
    assert_eq!(items["items"].as_array().unwrap().len(), 3, "{items}");
    assert_eq!(ai.requests(), 3, "nothing made twice");
    b.terminate().await;
}
