//! The test stand-ins as a process, for tests that drive the real binary
//! from outside Rust (browser tests, fuzzing, benchmarks).
//!
//! `cargo run --example standins -- --ai-port 5055` serves the AI service
//! stand-in (the same code the Rust tests use, same contract). Its mode is
//! switched with `POST /__control/mode` on the control port (`--control-port`,
//! default AI port + 1) and a body of `ok`, `garbage`, `hang`, `not_loaded`,
//! `no_video`, `status:<code>`, `delay:<ms>`, `serial:<ms>` (one request at
//! a time, like a GPU) or `fail_first:<n>:<code>`. It
//! also serves the current AI service's model and splat routes.
//!
//! `--immich` also serves the Immich stand-in (a library of `--immich-photos`
//! JPEG photos, 30 by default, plus a HEIC photo, two videos and a 50 MiB
//! photo) on a free port, and prints its URL and API key. Its people
//! (`tests/common/immich_users.rs`: admin, Alice, Bob, Carol) sign in with
//! their passwords; `--people` gives Alice and Bob `--people-photos`
//! photos of their own each (2 by default; ids `a1000000-...` and
//! `b0000000-...`). The control port changes them as Immich's own pages
//! would, each with a JSON body naming people by id, name or email:
//!
//! - `POST /__control/key` `{"user", "permissions": [...]}`: a key made by
//!   hand in Immich's settings; answers `{"secret"}`;
//! - `POST /__control/share` and `/__control/unshare` `{"sharer",
//!   "receiver"}`: a partner share;
//! - `POST /__control/revoke` `{"user"}`: the user deletes all their keys;
//! - `GET /__control/keys?user=`: a user's keys, secrets included.

// Shared with the Rust tests, which use more of it than this binary does.
#[allow(dead_code)]
#[path = "../tests/common/ai_models.rs"]
mod ai_models;
#[allow(dead_code)]
#[path = "../tests/common/ai_standin.rs"]
mod ai_standin;
#[allow(dead_code)]
#[path = "../tests/common/immich_standin.rs"]
mod immich_standin;
#[allow(dead_code)]
#[path = "../tests/common/immich_timeline.rs"]
mod immich_timeline;
#[allow(dead_code)]
#[path = "../tests/common/immich_users.rs"]
mod immich_users;

use std::time::Duration;

use ai_standin::{AiStandin, Mode};
use immich_standin::ImmichStandin;
use immich_users::{ACCOUNTS, ALICE, BOB};
use poem::{
    get, handler,
    http::StatusCode,
    listener::TcpListener,
    post,
    web::{Data, Json, Query},
    EndpointExt, Route, Server,
};
use serde_json::{json, Value};

fn parse_mode(s: &str) -> Option<Mode> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    Some(match parts.as_slice() {
        ["ok"] => Mode::Ok,
        ["garbage"] => Mode::Garbage,
        ["hang"] => Mode::Hang,
        ["not_loaded"] => Mode::NotLoaded,
        ["no_video"] => Mode::NoVideo,
        ["status", code] => Mode::Status(code.parse().ok()?),
        ["delay", ms] => Mode::Delay(Duration::from_millis(ms.parse().ok()?)),
        ["serial", ms] => Mode::Serial(Duration::from_millis(ms.parse().ok()?)),
        ["fail_first", n, code] => Mode::FailFirst(n.parse().ok()?, code.parse().ok()?),
        _ => return None,
    })
}

#[handler]
fn set_mode(body: String, ai: Data<&AiStandin>) -> poem::Result<String> {
    let mode = parse_mode(&body).ok_or_else(|| {
        poem::Error::from_string("unknown mode", poem::http::StatusCode::BAD_REQUEST)
    })?;
    ai.set_mode(mode);
    Ok(format!("mode set: {}", body.trim()))
}

type Immich = Option<ImmichStandin>;

fn bad(message: &str) -> poem::Error {
    poem::Error::from_string(message, StatusCode::BAD_REQUEST)
}

/// The stand-in's people, or a 400 when it is not running (`--immich`).
fn people(im: &Immich) -> poem::Result<&immich_users::People> {
    im.as_ref()
        .map(|i| &i.inner.people)
        .ok_or_else(|| bad("the Immich stand-in is not running (--immich)"))
}

/// An account by id, name or email (any case).
fn who(v: &Value, field: &str) -> poem::Result<&'static str> {
    let name = v[field]
        .as_str()
        .ok_or_else(|| bad(&format!("{field} is missing")))?;
    ACCOUNTS
        .iter()
        .find(|a| {
            a.id == name || a.name.eq_ignore_ascii_case(name) || a.email.eq_ignore_ascii_case(name)
        })
        .map(|a| a.id)
        .ok_or_else(|| bad(&format!("no account {name:?}")))
}

#[handler]
fn make_key(body: Json<Value>, im: Data<&Immich>) -> poem::Result<Json<Value>> {
    let user = who(&body, "user")?;
    let perms: Vec<&str> = match body["permissions"].as_array() {
        Some(p) => p.iter().filter_map(|p| p.as_str()).collect(),
        None => vec!["all"],
    };
    let secret = people(&im)?.make_key(user, &perms);
    Ok(Json(json!({ "secret": secret })))
}

#[handler]
fn share(body: Json<Value>, im: Data<&Immich>) -> poem::Result<&'static str> {
    people(&im)?.share(who(&body, "sharer")?, who(&body, "receiver")?);
    Ok("shared")
}

#[handler]
fn unshare(body: Json<Value>, im: Data<&Immich>) -> poem::Result<&'static str> {
    people(&im)?.unshare(who(&body, "sharer")?, who(&body, "receiver")?);
    Ok("unshared")
}

#[handler]
fn revoke(body: Json<Value>, im: Data<&Immich>) -> poem::Result<&'static str> {
    people(&im)?.revoke_keys_of(who(&body, "user")?);
    Ok("revoked")
}

#[handler]
fn keys(
    q: Query<std::collections::HashMap<String, String>>,
    im: Data<&Immich>,
) -> poem::Result<Json<Value>> {
    let user = who(&json!({"user": q.get("user")}), "user")?;
    let list: Vec<Value> = people(&im)?
        .keys_of(user)
        .into_iter()
        .map(|k| json!({"id": k.id, "name": k.name, "secret": k.secret, "permissions": k.permissions}))
        .collect();
    Ok(Json(Value::Array(list)))
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let port: u16 = arg("--ai-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(5055);
    let control: u16 = arg("--control-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(port + 1);
    let mode = arg("--mode")
        .and_then(|m| parse_mode(&m))
        .unwrap_or(Mode::Ok);
    let ai = AiStandin::start_on(&format!("127.0.0.1:{port}"), mode).await;
    println!("ai stand-in: {}", ai.url());
    // Kept (and read by the control routes) until the process ends.
    let immich: Immich = if std::env::args().any(|a| a == "--immich") {
        let photos = arg("--immich-photos")
            .and_then(|n| n.parse().ok())
            .unwrap_or(30);
        let mut assets = immich_standin::library(photos);
        if std::env::args().any(|a| a == "--people") {
            let each = arg("--people-photos")
                .and_then(|n| n.parse().ok())
                .unwrap_or(2);
            assets.extend(immich_standin::owned_photos(ALICE, "a1", each));
            assets.extend(immich_standin::owned_photos(BOB, "b0", each));
        }
        let im = ImmichStandin::start(assets).await;
        println!("immich stand-in: {}", im.url());
        println!("immich key: {}", immich_standin::KEY);
        Some(im)
    } else {
        None
    };
    println!("control: http://127.0.0.1:{control}/__control/mode");
    let app = Route::new()
        .at("/__control/mode", post(set_mode))
        .at("/__control/key", post(make_key))
        .at("/__control/share", post(share))
        .at("/__control/unshare", post(unshare))
        .at("/__control/revoke", post(revoke))
        .at("/__control/keys", get(keys))
        .data(ai)
        .data(immich);
    Server::new(TcpListener::bind(format!("127.0.0.1:{control}")))
        .run(app)
        .await
        .unwrap();
}
