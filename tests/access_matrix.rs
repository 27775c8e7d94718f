//! Who may call what: every operation of the served spec, asked by five
//! callers (nobody, Alice, Bob, Immich's admin signed in, the operator's
//! bearer token), each against Bob's private things (his Immich photo,
//! its depth map, his upload, his queue item, his session). The route list
//! comes from the spec itself, so a route added later is in the matrix
//! (as a personal route unless it is named open or operator's).
//!
//! Classes: *open* (anyone), *operator* (Immich admins and the token; 401
//! for nobody, 403 `operator-only` for people), *personal* (401 for
//! nobody; a person who may not see Bob's thing gets 403/404 or an answer
//! with none of Bob's ids in it; Bob gets his thing; the token everything).

mod common;

use common::{anonymous, jpeg, Api, TestServer, TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

const A1: &str = "a1000000-0000-4000-8000-000000000001";
const B1: &str = "b0000000-0000-4000-8000-000000000001";
const B2: &str = "b0000000-0000-4000-8000-000000000002";
/// An id of nothing, for what the operators may do but must not do to Bob.
const NOTHING: &str = "f0000000-0000-4000-8000-00000000000f";

/// Anyone: liveness and signing in (`GET /`, the service's name, is the
/// sign-in page for a browser and a 401 for a script).
const OPEN: &[&str] = &[
    "GET /health",
    "GET /api/health",
    "GET /api/auth/status",
    "POST /api/auth/login",
];

/// Running the service: Immich admins and the token only.
const OPERATOR: &[&str] = &[
    "GET /api/db/info",
    "POST /api/admin/backup",
    "POST /api/queue/retry-failed",
    "GET /api/queue/worker/status",
    "POST /api/queue/worker/start",
    "POST /api/queue/worker/stop",
    "POST /api/immich/assets/{assetId}/enqueue",
    "POST /api/immich/import",
    "GET /api/immich/import",
    "POST /api/settings/models/sync",
    "POST /api/settings/models/{key}/load",
    "POST /api/settings/models/{key}/unload",
    "POST /api/settings/models/{key}/download",
    "DELETE /api/settings/models/{key}",
];

/// Operations that change or end something of Bob's: asked by Bob last,
/// and by the operators of nothing.
const DESTRUCTIVE: &[&str] = &[
    "DELETE /api/media/{id}",
    "DELETE /api/assets/{id}/files/{fileId}",
    "POST /api/queue/items/{id}/cancel",
    "POST /api/queue/items/{id}/retry",
    "DELETE /api/auth/sessions/{id}",
    "POST /api/auth/logout",
];

struct Bobs {
    upload: String,
    media: String,
    item: String,
    file: String,
    session: String,
}

impl Bobs {
    /// What must never reach anyone but Bob (and the token).
    fn secrets(&self) -> Vec<&str> {
        vec![
            B1,
            B2,
            &self.upload,
            &self.media,
            &self.item,
            &self.file,
            &self.session,
            "bob-private.jpg",
        ]
    }

    /// The operation's path with Bob's things in it.
    fn path(&self, op: &str) -> String {
        let (_, template) = op.split_once(' ').unwrap();
        let id =
            if template.starts_with("/api/media/") || template.starts_with("/api/queue/enqueue/") {
                self.upload.as_str()
            } else if template.starts_with("/api/queue/items/") {
                &self.item
            } else if template.starts_with("/api/auth/sessions/") {
                &self.session
            } else if template.starts_with("/api/settings/models/") {
                "base"
            } else {
                B1
            };
        template
            .replace("{id}", id)
            .replace("{mediaItemId}", id)
            .replace("{assetId}", B1)
            .replace("{fileId}", &self.file)
            .replace("{key}", id)
            .replace("{bucket}", "2025-03-01")
    }
}

/// The operation's path with ids of nothing (for operators' destructive calls).
fn nothing_path(op: &str) -> String {
    let (_, template) = op.split_once(' ').unwrap();
    let mut out = String::new();
    for seg in template.split('/').skip(1) {
        out.push('/');
        if seg.starts_with('{') {
            out.push_str(if seg == "{key}" { "base" } else { NOTHING });
        } else {
            out.push_str(seg);
        }
    }
    out
}

/// A body each operation takes (the shape it validates, so a refusal is
/// about who asks, not what).
fn body(op: &str) -> Option<Value> {
    Some(match op {
        "POST /api/assets/{id}/generate" => json!({"type": "depth", "modelKey": "small"}),
        "POST /api/assets/{id}/convert" => json!({"modelKey": "sharp"}),
        "POST /api/immich/search" => json!({"query": "x", "size": 5}),
        "PUT /api/settings" => json!({"autoGenerateOnEnter": true}),
        // A right one: wrong ones would soon be throttled (tested in people.rs).
        "POST /api/auth/login" => {
            json!({"email": "alice@example.org", "password": "alice-password"})
        }
        "POST /api/immich/import" => json!({"limit": 1}),
        _ if op.starts_with("POST ") || op.starts_with("PUT ") => json!({}),
        _ => return None,
    })
}

#[derive(Clone)]
enum Who {
    Nobody,
    Cookie(&'static str, String),
    Token,
}

impl Who {
    fn name(&self) -> &'static str {
        match self {
            Who::Nobody => "nobody",
            Who::Cookie(n, _) => n,
            Who::Token => "token",
        }
    }
}

struct Answer {
    status: u16,
    code: String,
    text: String,
}

async fn ask(s: &TestServer, who: &Who, op: &str, path: &str) -> Answer {
    let (m, _) = op.split_once(' ').unwrap();
    let mut r = anonymous().request(Method::from_bytes(m.as_bytes()).unwrap(), s.at(path));
    match who {
        Who::Nobody => {}
        Who::Cookie(_, c) => r = r.header("cookie", c),
        Who::Token => r = r.bearer_auth(TOKEN),
    }
    if let Some(b) = body(op) {
        r = r.json(&b);
    }
    // The event stream answers its headers and then stays open.
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), r.send())
        .await
        .unwrap_or_else(|_| panic!("{} {op}: no answer", who.name()))
        .unwrap();
    let status = resp.status().as_u16();
    let text = if path == "/api/events" && status == 200 {
        String::new()
    } else {
        tokio::time::timeout(std::time::Duration::from_secs(10), resp.text())
            .await
            .unwrap_or_else(|_| panic!("{} {op}: body never ends", who.name()))
            .unwrap_or_default()
    };
    let code = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    Answer { status, code, text }
}

async fn sign_in(s: &TestServer, email: &str, password: &str) -> String {
    common::sign_in_with(&s.url, json!({"email": email, "password": password})).await
}

/// Every operation of the served spec, as `METHOD /path/{param}`.
async fn operations(s: &TestServer) -> Vec<String> {
    let spec = s.get_json("/api/openapi.json").await;
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&m.as_str()) {
                ops.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    ops.sort();
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_caller_as_its_class_says() {
    let common::Household { ai: _ai, im, s } = common::household((2, 1, 2), |_| {}).await;

    let alice = sign_in(&s, "alice@example.org", "alice-password").await;
    let bob = sign_in(&s, "bob@example.org", "bob-password").await;
    let admin = sign_in(&s, "admin@example.org", "admin-password").await;

    // Bob's things: a depth map of his Immich photo, an upload of his own.
    let gen = |cookie: &str, id: &str| {
        anonymous()
            .post(s.at(&format!("/api/assets/{id}/generate")))
            .header("cookie", cookie.to_string())
            .json(&json!({"type": "depth", "modelKey": "small"}))
            .send()
    };
    assert_eq!(gen(&bob, B1).await.unwrap().status(), 200);
    assert_eq!(gen(&alice, A1).await.unwrap().status(), 200);
    let part = reqwest::multipart::Part::bytes(jpeg(40, 30, 9)).file_name("bob-private.jpg");
    let up = common::json(
        anonymous()
            .post(s.at("/api/media/upload"))
            .header("cookie", &bob)
            .multipart(reqwest::multipart::Form::new().part("media", part))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let upload = up["mediaItemId"]
        .as_str()
        .expect("Bob's upload")
        .to_string();
    let bob_json = |path: String| {
        let bob = bob.clone();
        let url = s.at(&path);
        async move {
            anonymous()
                .get(url)
                .header("cookie", bob)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let files = bob_json(format!("/api/assets/{B1}/files")).await;
    let items = bob_json("/api/queue/items".into()).await;
    let item = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["media_item_id"].as_str() != Some(&upload))
        .expect("Bob's generate item");
    let bobs = Bobs {
        media: item["media_item_id"].as_str().unwrap().to_string(),
        item: item["id"].as_str().unwrap().to_string(),
        file: files["files"][0]["id"].as_str().unwrap().to_string(),
        session: bob_json("/api/auth/sessions".into()).await["sessions"][0]["id"]
            .as_str()
            .unwrap()
            .to_string(),
        upload,
    };

    let ops = operations(&s).await;
    assert!(ops.len() > 50, "{ops:?}");
    for op in OPEN.iter().chain(OPERATOR) {
        assert!(ops.iter().any(|o| o == op), "{op} is not in the spec");
    }

    let callers = [
        Who::Nobody,
        Who::Cookie("alice", alice.clone()),
        Who::Cookie("admin", admin.clone()),
        Who::Token,
        Who::Cookie("bob", bob.clone()),
    ];
    let mut wrong = Vec::new();
    let mut asked = 0;
    for who in &callers {
        for op in &ops {
            let destructive = DESTRUCTIVE.contains(&op.as_str());
            let operators_only = OPERATOR.contains(&op.as_str());
            let open = OPEN.contains(&op.as_str());
            let path = match who {
                // Signing out ends the asker's own session: Bob's, at the end.
                Who::Cookie(..) | Who::Token if op == "POST /api/auth/logout" => continue,
                Who::Token | Who::Cookie("admin", _) if destructive => nothing_path(op),
                Who::Cookie("bob", _) if destructive => continue,
                // The worker is stopped by the operator's own stop, last.
                Who::Token | Who::Cookie("admin", _) if op == "POST /api/queue/worker/stop" => {
                    continue
                }
                _ => bobs.path(op),
            };
            let a = ask(&s, who, op, &path).await;
            asked += 1;
            let denied = a.status == 401 || a.status == 403;
            let leaks: Vec<&str> = bobs
                .secrets()
                .into_iter()
                .filter(|x| a.text.contains(x) && !path.contains(x))
                .collect();
            let fine = match (who, open, operators_only) {
                (_, true, _) => {
                    a.status < 500 && !(a.status == 401 && op != "POST /api/auth/login")
                }
                (Who::Nobody, false, _) => a.status == 401 && a.code == "unauthorized",
                (Who::Cookie("alice" | "bob", _), _, true) => {
                    a.status == 403 && a.code == "operator-only"
                }
                // Immich's admin and the token.
                (_, _, true) => !denied && a.status < 500,
                (Who::Token, _, false) => !denied && a.status < 500,
                // Bob is let through to his own things (what each
                // answers him is the domain tests' business).
                (Who::Cookie("bob", _), _, false) => !denied && a.status < 500,
                // ... nor change or end them (Bob's own calls at the end
                // find them all there).
                (_, _, false) if destructive => [403, 404].contains(&a.status) && leaks.is_empty(),
                // Alice and Immich's admin may not see Bob's private things.
                (_, _, false) => {
                    leaks.is_empty()
                        && a.code != "operator-only"
                        && (a.status < 300
                            || [400, 403, 404, 415].contains(&a.status)
                            || (a.status == 409 && op.contains("/convert"))
                            // A person's "sync now" reads their own library
                            // only, and theirs is not followed here.
                            || (a.status == 409 && a.code == "following-off"))
                }
            };
            if !fine {
                wrong.push(format!(
                    "{} {op} ({path}): {} {} leaks {leaks:?}: {}",
                    who.name(),
                    a.status,
                    a.code,
                    a.text.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    // Bob ends his own things last; his session from another sign-in of
    // his (ending the one he asks with is signing out).
    let bob2 = Who::Cookie("bob", sign_in(&s, "bob@example.org", "bob-password").await);
    for op in DESTRUCTIVE {
        let a = ask(&s, &bob2, op, &bobs.path(op)).await;
        // Cancel and retry of a finished item: his to ask, nothing to do.
        let nothing_to_do = a.status == 409 && a.code == "invalid-state";
        if a.status >= 300 && !nothing_to_do {
            wrong.push(format!("bob {op}: {} {}", a.status, a.text));
        }
    }
    let stop = ask(
        &s,
        &Who::Token,
        "POST /api/queue/worker/stop",
        "/api/queue/worker/stop",
    )
    .await;
    assert_eq!(stop.status, 200);
    println!("{asked} answers checked over {} operations", ops.len());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    s.stop().await;
    drop(im);
}
