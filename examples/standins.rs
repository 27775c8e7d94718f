//! Stand-ins for the services around the backend, for the browser tests and
//! for trying the admin page by hand:
//!
//! ```text
//! cargo run --example standins -- --ai-port 0 --control-port 0
//! ```
//!
//! Prints `AI_URL=...` and `CONTROL_URL=...` lines (port 0 picks a free
//! one), then serves until killed. `POST {CONTROL_URL}/__control/mode` with
//! `{"mode":"ok"}`, `{"mode":"status","status":422}`, `{"mode":"delay","ms":500}`,
//! `{"mode":"hang"}` or `{"mode":"not_loaded"}` switches the AI stand-in.

#[path = "../tests/common/ai_standin.rs"]
#[allow(dead_code)]
mod ai_standin;

use std::{io::Write, time::Duration};

use ai_standin::{AiStandin, Mode};
use poem::{
    handler, listener::TcpAcceptor, post, web::Data, web::Json, EndpointExt, Response, Route,
    Server,
};

fn flag(name: &str) -> Option<u16> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).and_then(|v| v.parse().ok())
}

#[derive(serde::Deserialize)]
struct ModeBody {
    mode: String,
    status: Option<u16>,
    ms: Option<u64>,
}

#[handler]
fn set_mode(ai: Data<&AiStandin>, body: Json<ModeBody>) -> Response {
    let mode = match body.mode.as_str() {
        "ok" => Mode::Ok,
        "status" => Mode::Status(body.status.unwrap_or(500)),
        "delay" => Mode::Delay(Duration::from_millis(body.ms.unwrap_or(500))),
        "hang" => Mode::Hang,
        "not_loaded" => Mode::NotLoaded,
        "garbage" => Mode::Garbage,
        other => {
            return Response::builder()
                .status(poem::http::StatusCode::BAD_REQUEST)
                .body(format!("unknown mode {other}"))
        }
    };
    ai.set_mode(mode);
    Response::builder().body("ok")
}

#[tokio::main]
async fn main() {
    let mut ai = AiStandin::start(Mode::Ok).await;
    // The stand-in starts on a free port; a fixed one means moving it there.
    if let Some(port) = flag("--ai-port").filter(|p| *p != 0) {
        ai.down().await;
        ai.addr.set_port(port);
        ai.up().await;
    }
    let control_port = flag("--control-port").unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", control_port))
        .await
        .expect("bind the control port");
    let control = format!("http://{}", listener.local_addr().unwrap());
    let app = Route::new()
        .at("/__control/mode", post(set_mode))
        .data(ai.clone());
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "AI_URL={}", ai.url()).unwrap();
        writeln!(out, "CONTROL_URL={control}").unwrap();
        writeln!(out, "READY").unwrap();
        out.flush().unwrap();
    }
    Server::new_with_acceptor(TcpAcceptor::from_tokio(listener).unwrap())
        .run(app)
        .await
        .unwrap();
}
