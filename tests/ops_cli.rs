//! The operator's side of the binary: config file precedence, unknown keys,
//! redaction, the generated reference, healthcheck, backup, request logs.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
    time::Duration,
};

use common::*;

/// The binary with an empty environment, so the machine's variables and
/// files cannot leak into what a test checks.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_immichvr"));
    c.env_clear();
    c
}

fn run(c: &mut Command) -> (Output, String, String) {
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
}

#[test]
fn precedence_is_defaults_then_file_then_environment_then_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "c.toml",
        "backend_port = 4100\nai_concurrency = 3\nvideo_fps = 2\nai_service_url = [\"http://gpu1:5000\", \"http://gpu2:5000\"]\n",
    );
    let (out, stdout, stderr) = run(bin()
        .arg("--config")
        .arg(&file)
        .args(["--video-fps", "5", "config"])
        .env("AI_CONCURRENCY", "4")
        .env("VIDEO_FPS", "4"));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(line(&stdout, "backend_port"), "backend_port = 4100  # file");
    assert_eq!(
        line(&stdout, "ai_concurrency"),
        "ai_concurrency = 4  # environment"
    );
    assert_eq!(line(&stdout, "video_fps"), "video_fps = 5  # flag");
    assert_eq!(
        line(&stdout, "video_max_frames"),
        "video_max_frames = 30  # default"
    );
    assert_eq!(
        line(&stdout, "ai_service_url"),
        "ai_service_url = \"http://gpu1:5000,http://gpu2:5000\"  # file"
    );
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "c.toml", "data_dir = \"/srv/vr\"\n");
    let (out, stdout, _) = run(bin().arg("config").env("IMMICHVR_CONFIG", &file));
    assert!(out.status.success());
    assert_eq!(line(&stdout, "data_dir"), "data_dir = \"/srv/vr\"  # file");
    assert!(stdout.contains(&format!("# config file: {}", file.display())));
}

#[test]
fn unknown_keys_bad_values_and_missing_files_are_errors_that_say_which() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "backend_port = 1\nbackend_prot = 2\n",
            "unknown key `backend_prot`",
        ),
        ("BACKEND_PORT = 1\n", "unknown key `BACKEND_PORT`"),
        ("config_file = \"x\"\n", "unknown key `config_file`"),
        (
            "backend_port = \"many\"\n",
            "`backend_port`: invalid value 'many'",
        ),
        ("auto_start_worker = \"perhaps\"\n", "`auto_start_worker`"),
        ("log_format = \"xml\"\n", "`log_format`"),
        ("data_dir = { a = 1 }\n", "`data_dir`: expected a string"),
        ("backend_port = \n", "not valid TOML"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let file = write(tmp.path(), &format!("{i}.toml"), text);
        for sub in ["config", "serve"] {
            let (out, _, stderr) = run(bin().arg("--config").arg(&file).arg(sub));
            assert_eq!(out.status.code(), Some(1), "{text}");
            assert!(stderr.contains(want), "{text}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    let (out, _, stderr) = run(bin().args(["--config", "/nonexistent/immichvr.toml", "config"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("cannot read the config file /nonexistent/immichvr.toml"));
}

#[test]
fn secrets_are_redacted_from_config_output_wherever_they_come_from() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "c.toml", "auth_token = \"file-token-777\"\n");
    let (out, stdout, stderr) = run(bin()
        .arg("--config")
        .arg(&file)
        .arg("config")
        .env("IMMICH_API_KEY", "env-key-888"));
    assert!(out.status.success(), "{stderr}");
    for secret in ["file-token-777", "env-key-888"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    assert_eq!(
        line(&stdout, "auth_token"),
        "auth_token = \"<redacted>\"  # file"
    );
    assert_eq!(
        line(&stdout, "immich_api_key"),
        "immich_api_key = \"<redacted>\"  # environment"
    );
}

#[test]
fn operators_doc_holds_exactly_the_generated_reference() {
    let (out, reference, _) = run(bin().args(["config", "--reference"]));
    assert!(out.status.success());
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operators.md")).unwrap();
    let start = "<!-- reference:start (generated by `immichvr config --reference`) -->\n";
    let end = "<!-- reference:end -->";
    let from = doc.find(start).expect("start marker") + start.len();
    let to = doc.find(end).expect("end marker");
    assert_eq!(
        &doc[from..to],
        reference,
        "docs/operators.md is stale: paste `immichvr config --reference` between the markers"
    );
}

#[test]
fn help_env_template_and_reference_list_the_same_options() {
    let (_, help, _) = run(bin().arg("--help"));
    let (_, reference, _) = run(bin().args(["config", "--reference"]));
    let (_, template, _) = run(bin().arg("env-template"));
    let envs: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .map(|s| s.split(['=', ']']).next().unwrap())
        .filter(|e| *e != "IMMICHVR_CONFIG")
        .collect();
    assert!(envs.len() >= 20, "{envs:?}");
    for env in &envs {
        assert!(
            reference.contains(&format!("| `{env}` | `{}` |", env.to_lowercase())),
            "{env}"
        );
        assert!(template.contains(&format!("\n#{env}=")), "{env}");
    }
    assert_eq!(reference.lines().count(), envs.len() + 2);
    let commented = template
        .lines()
        .filter(|l| {
            l.starts_with('#') && l.contains('=') && l[1..2].chars().all(|c| c.is_ascii_uppercase())
        })
        .count();
    assert_eq!(commented, envs.len(), "{template}");
}

fn port_of(s: &TestServer) -> String {
    s.url.rsplit(':').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_zero_only_for_a_healthy_service() {
    let s = TestServer::start().await;
    let (out, _, stderr) = run(bin().args(["--port", &port_of(&s), "healthcheck"]));
    assert!(out.status.success(), "{stderr}");
    let (out, _, stderr) = run(bin()
        .args(["--bind-addr", "127.0.0.1", "healthcheck"])
        .env("BACKEND_PORT", port_of(&s)));
    assert!(out.status.success(), "{stderr}");
    s.stop().await;

    let closed = free_port().to_string();
    let (out, _, stderr) =
        run(bin().args(["--port", &closed, "healthcheck", "--timeout-secs", "2"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("127.0.0.1:{closed}/health")),
        "{stderr}"
    );

    // Something answers, but not healthy.
    let sick = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = sick.local_addr().unwrap().port().to_string();
    let app = poem::Route::new().at(
        "/health",
        poem::endpoint::make_sync(|_| {
            poem::Response::builder()
                .status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                .body("{\"status\":\"unhealthy\"}")
        }),
    );
    let server = tokio::spawn(
        poem::Server::new_with_acceptor(poem::listener::TcpAcceptor::from_tokio(sick).unwrap())
            .run(app),
    );
    let out = tokio::task::spawn_blocking(move || {
        run(bin().args(["--port", &port, "healthcheck", "--timeout-secs", "2"]))
    })
    .await
    .unwrap();
    assert_eq!(out.0.status.code(), Some(1));
    assert!(out.2.contains("503"), "{}", out.2);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_cli_goes_through_the_running_service_then_reads_the_file_itself() {
    let (mut c, tmp) = test_config();
    c.auth_token = Some("cli-token".parse().unwrap());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let auth = |r: reqwest::RequestBuilder| r.bearer_auth("cli-token");
    let part = reqwest::multipart::Part::bytes(png(16, 16, 3)).file_name("x.png");
    let r = auth(client().post(s.at("/api/media/upload")))
        .multipart(reqwest::multipart::Form::new().part("media", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let out_dir = tempfile::tempdir().unwrap();
    let dest = out_dir.path().join("live.redb");
    let port = port_of(&s);
    let data = s.data_dir.clone();
    let cli = move |token: &str, dest: &Path| {
        run(bin()
            .args(["--port", &port, "backup"])
            .arg(dest)
            .env("DATA_DIR", &data)
            .env("AUTH_TOKEN", token))
    };
    let (out, stdout, stderr) = {
        let (cli, dest) = (cli.clone(), dest.clone());
        tokio::task::spawn_blocking(move || cli("cli-token", &dest))
            .await
            .unwrap()
    };
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("running service"), "{stdout}");
    assert!(redb::Database::open(&dest).is_ok());
    // The service's copy was moved, not left behind.
    assert_eq!(
        std::fs::read_dir(s.data_dir.join("backups"))
            .unwrap()
            .count(),
        0
    );

    let (out, _, stderr) = {
        let (cli, dest) = (cli.clone(), out_dir.path().join("denied.redb"));
        tokio::task::spawn_blocking(move || cli("wrong", &dest))
            .await
            .unwrap()
    };
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("cli-token"));

    let (out, _, stderr) = {
        let (cli, dest) = (cli.clone(), dest.clone());
        tokio::task::spawn_blocking(move || cli("cli-token", &dest))
            .await
            .unwrap()
    };
    assert_eq!(out.status.code(), Some(1), "an existing target is refused");
    assert!(stderr.contains("already exists"));

    // Keeps the data directory: stop() hands back its owner.
    let _data = s.stop().await;
    let offline = out_dir.path().join("offline.redb");
    let (out, stdout, stderr) = cli("cli-token", &offline);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("service not running"), "{stdout}");
    let db = redb::Database::open(&offline).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    assert_eq!(immichvr::queue::query::stats(&txn).unwrap().queued, 1);
}

#[test]
fn backup_cli_without_a_database_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _, stderr) = run(bin()
        .args(["--port", &free_port().to_string(), "--data-dir"])
        .arg(tmp.path().join("none"))
        .arg("backup")
        .arg(tmp.path().join("b.redb")));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("no database at"), "{stderr}");
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_without_query_strings() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = bin()
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(tmp.path())
        .env("LOG_FORMAT", "json")
        .env("AUTO_START_WORKER", "false")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = client();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{url}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up);
    let r = http
        .get(format!("{url}/api/media/not-a-uuid?token=query-secret-42"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let _ = child.kill();
    let lines: Vec<serde_json::Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every line is JSON"))
        .collect();
    child.wait().unwrap();
    let requests: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "immichvr::access")
        .collect();
    let bad = requests
        .iter()
        .find(|l| l["path"] == "/api/media/not-a-uuid")
        .expect("a line for the request");
    assert_eq!(bad["method"], "GET");
    assert_eq!(bad["status"], 400);
    assert!(bad["duration_ms"].as_f64().is_some());
    assert_eq!(
        requests
            .iter()
            .filter(|l| l["path"] == "/api/media/not-a-uuid")
            .count(),
        1
    );
    let all = lines.iter().map(|l| l.to_string()).collect::<String>();
    assert!(!all.contains("query-secret-42"));
}

/// The harness tells its binary's port from one another process holds: a
/// port taken by a parallel test between picking and binding is not
/// mistaken for the binary answering (the binary is started again).
#[tokio::test]
async fn the_test_harness_knows_whose_port_answers() {
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = other.local_addr().unwrap().port();
    assert!(bin::listens(std::process::id(), taken));
    let tmp = tempfile::tempdir().unwrap();
    let b = bin::Launch::new(&tmp.path().join("data")).start().await;
    assert!(bin::listens(b.pid(), b.port));
    assert!(
        !bin::listens(b.pid(), taken),
        "the other's socket is not its"
    );
    assert!(!bin::listens(std::process::id(), b.port));
    b.terminate().await;
}
