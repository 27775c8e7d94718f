//! Sign-ins survive the real binary stopping, and nothing secret leaks.
//! Alice signs in with "remember this device", Bob without; the binary
//! is stopped with SIGTERM, then with kill -9, and started again on the
//! same data each time: both cookies still work, the Immich keys made for
//! them still exist in Immich and no new one is made, and Alice's map
//! still shows her files. The database file, and a backup of it, are
//! readable by their owner only (they hold the keys). Neither the log
//! (at debug level) nor any answer ever carries a password, an Immich key
//! or a session cookie.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path, sync::atomic::Ordering};

use common::{
    ai_standin::{AiStandin, Mode},
    bin::{Binary, Launch},
    immich_standin::{library, owned_photos, ImmichStandin, KEY},
    immich_users::{ALICE, BOB},
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const A1: &str = "a1000000-0000-4000-8000-000000000001";
const B1: &str = "b0000000-0000-4000-8000-000000000001";
const PASSWORDS: [&str; 2] = ["alice-password", "bob-password"];

fn launch(data: &Path, ai: &AiStandin, im: &ImmichStandin) -> Launch {
    Launch::new(data)
        .env("AI_SERVICE_URL", ai.url())
        .env("IMMICH_URL", im.url())
        .env("IMMICH_API_KEY", KEY)
        .env("RUST_LOG", "debug")
        // Keys are asked of Immich every second: a restart must not make
        // the check think a key is gone.
        .env("KEY_CHECK_SECS", "1")
}

/// Every answer's status line, headers and body, for the leak check;
/// `Set-Cookie` of a sign-in is where the cookie belongs and is left out.
#[derive(Default)]
struct Answers(Vec<String>);

impl Answers {
    async fn keep(&mut self, r: reqwest::Response, sign_in: bool) -> (u16, Value, Option<String>) {
        let status = r.status().as_u16();
        let mut cookie = None;
        let mut text = format!("{status}\n");
        for (k, v) in r.headers() {
            let v = v.to_str().unwrap_or_default().to_string();
            if sign_in && k == "set-cookie" {
                cookie = Some(v.clone());
                continue;
            }
            text.push_str(&format!("{k}: {v}\n"));
        }
        let body = r.bytes().await.unwrap();
        text.push_str(&String::from_utf8_lossy(&body));
        self.0.push(text);
        (
            status,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            cookie,
        )
    }

    async fn get(&mut self, b: &Binary, path: &str, cookie: &str) -> (u16, Value) {
        let r = common::anonymous()
            .get(b.at(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let (s, v, _) = self.keep(r, false).await;
        (s, v)
    }

    async fn sign_in(&mut self, b: &Binary, email: &str, password: &str, remember: bool) -> String {
        let r = common::anonymous()
            .post(b.at("/api/auth/login"))
            .json(&json!({"email": email, "password": password, "remember": remember}))
            .send()
            .await
            .unwrap();
        let (status, body, cookie) = self.keep(r, true).await;
        assert_eq!(status, 200, "{body}");
        let cookie = cookie.expect("a session cookie");
        let max_age = if remember { 30 * 24 * 3600 } else { 12 * 3600 };
        assert!(cookie.contains(&format!("Max-Age={max_age}")), "{cookie}");
        cookie.split(';').next().unwrap().to_string()
    }
}

fn map_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v["map"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// What each person sees with their cookie: who they are, their sessions,
/// their map, and the bytes of their first file.
async fn check(b: &Binary, a: &mut Answers, alice: &str, bob: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (name, cookie, id, photo, remembered) in [
        ("alice", alice, ALICE, A1, true),
        ("bob", bob, BOB, B1, false),
    ] {
        let (s, st) = a.get(b, "/api/auth/status", cookie).await;
        assert_eq!(s, 200);
        assert_eq!(st["authenticated"], true, "{name}: {st}");
        assert_eq!(st["user"]["id"], id, "{name}");
        assert_eq!(st["role"], "user");
        let (_, sessions) = a.get(b, "/api/auth/sessions", cookie).await;
        let list = sessions["sessions"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{name}: {sessions}");
        assert_eq!(list[0]["current"], true);
        assert_eq!(list[0]["remember"], remembered, "{name}");
        let (s, map) = a.get(b, "/api/assets/map", cookie).await;
        assert_eq!(s, 200);
        assert_eq!(map_ids(&map), [photo], "{name}'s map");
        let (_, files) = a
            .get(b, &format!("/api/assets/{photo}/files"), cookie)
            .await;
        let fid = files["files"][0]["id"].as_str().unwrap().to_string();
        let r = common::anonymous()
            .get(b.at(&format!("/api/assets/{photo}/files/{fid}/download")))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}'s file");
        let sha = hex::encode(Sha256::digest(r.bytes().await.unwrap()));
        // Browsing Immich works with the key kept for them.
        let (s, _) = a.get(b, "/api/immich/timeline", cookie).await;
        assert_eq!(s, 200, "{name}'s timeline");
        out.insert(name.into(), json!({"map": map, "file": fid, "sha256": sha}));
    }
    Value::Object(out)
}

/// The keys Immich holds for each of them: (id, secret).
fn keys(im: &ImmichStandin) -> Vec<(String, String)> {
    [ALICE, BOB]
        .iter()
        .flat_map(|u| im.inner.people.keys_of(u))
        .map(|k| (k.id, k.secret))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_and_keys_survive_sigterm_and_kill_nine_and_nothing_leaks() {
    let ai = AiStandin::start(Mode::Ok).await;
    let mut assets = library(2);
    assets.extend(owned_photos(ALICE, "a1", 2));
    assets.extend(owned_photos(BOB, "b0", 2));
    let im = ImmichStandin::start(assets).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut a = Answers::default();
    let mut logs = Vec::new();

    let b = launch(&data, &ai, &im).start().await;
    let r = common::client()
        .post(b.at("/api/settings/models/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let alice = a
        .sign_in(&b, "alice@example.org", "alice-password", true)
        .await;
    let bob = a
        .sign_in(&b, "bob@example.org", "bob-password", false)
        .await;
    for (cookie, photo) in [(&alice, A1), (&bob, B1)] {
        let r = common::anonymous()
            .post(b.at(&format!("/api/assets/{photo}/generate")))
            .header("cookie", cookie.as_str())
            .json(&json!({"type": "depth", "modelKey": "small"}))
            .send()
            .await
            .unwrap();
        let (s, _, _) = a.keep(r, false).await;
        assert_eq!(s, 200, "{photo}");
    }
    let before = check(&b, &mut a, &alice, &bob).await;
    let made = keys(&im);
    assert_eq!(made.len(), 2, "one key each: {made:?}");
    let logins = im.inner.people.logins.load(Ordering::SeqCst);

    // The database holds the keys: its owner's only, and so is a backup.
    assert_eq!(mode(&data.join("immichvr.redb")), 0o600);
    let r = common::client()
        .post(b.at("/api/admin/backup"))
        .send()
        .await
        .unwrap();
    let (s, backup, _) = a.keep(r, false).await;
    assert_eq!(s, 201, "{backup}");
    let backup = std::path::PathBuf::from(backup["path"].as_str().unwrap());
    assert_eq!(mode(&backup), 0o600, "{}", backup.display());

    logs.push(b.terminate().await);
    // `stop`: how the previous run ended.
    for stop in ["SIGTERM", "kill -9"] {
        // A few rounds of the key check, which must find every key there.
        let b = launch(&data, &ai, &im).start().await;
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let after = check(&b, &mut a, &alice, &bob).await;
        assert_eq!(after, before, "after {stop}");
        assert_eq!(keys(&im), made, "after {stop}: the same keys, none made");
        assert_eq!(
            im.inner.people.logins.load(Ordering::SeqCst),
            logins,
            "after {stop}: nobody signed in to Immich again"
        );
        assert_eq!(im.inner.people.live_sessions(), 0, "no Immich session kept");
        assert_eq!(mode(&data.join("immichvr.redb")), 0o600, "after {stop}");
        // The next run starts after the other way of stopping.
        if stop == "SIGTERM" {
            logs.push(b.kill());
        } else {
            logs.push(b.terminate().await);
        }
    }

    // No secret anywhere: the log at debug level, every answer, and (for
    // the cookies, of which only a hash is stored) the database file.
    let mut secrets: Vec<(String, String)> = PASSWORDS
        .iter()
        .map(|p| ("a password".to_string(), p.to_string()))
        .collect();
    for (_, secret) in &made {
        secrets.push(("an Immich key".into(), secret.clone()));
    }
    for c in [&alice, &bob] {
        let value = c.split_once('=').unwrap().1.to_string();
        assert!(value.len() >= 32, "{c}");
        secrets.push(("a session cookie".into(), value));
    }
    assert!(
        logs.iter().all(|l| l.contains("DEBUG")),
        "logged at debug level"
    );
    for (what, secret) in &secrets {
        for (i, log) in logs.iter().enumerate() {
            assert!(
                !log.contains(secret.as_str()),
                "{what} in the log of run {i}"
            );
        }
        for text in &a.0 {
            assert!(
                !text.contains(secret.as_str()),
                "{what} in an answer: {text}"
            );
        }
    }
    let db = std::fs::read(data.join("immichvr.redb")).unwrap();
    let db = String::from_utf8_lossy(&db);
    for (what, secret) in &secrets {
        if what != "an Immich key" {
            assert!(!db.contains(secret.as_str()), "{what} in the database file");
        }
    }
}
