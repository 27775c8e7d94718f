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
//! photo) on a free port, and prints its URL and API key.

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
use poem::{handler, listener::TcpListener, post, web::Data, EndpointExt, Route, Server};

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
    // Kept alive until the process ends: dropping it does not stop it, but
    // the binding says so.
    let _immich = if std::env::args().any(|a| a == "--immich") {
        let photos = arg("--immich-photos")
            .and_then(|n| n.parse().ok())
            .unwrap_or(30);
        let im = immich_standin::ImmichStandin::start(immich_standin::library(photos)).await;
        println!("immich stand-in: {}", im.url());
        println!("immich key: {}", immich_standin::KEY);
        Some(im)
    } else {
        None
    };
    println!("control: http://127.0.0.1:{control}/__control/mode");
    let app = Route::new().at("/__control/mode", post(set_mode)).data(ai);
    Server::new(TcpListener::bind(format!("127.0.0.1:{control}")))
        .run(app)
        .await
        .unwrap();
}
