#![forbid(unsafe_code)]

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use immichvr::config::{
    file::{load, LoadError},
    Command, LogFormat,
};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let loaded = match load() {
        Ok(l) => l,
        Err(LoadError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("immichvr: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logs(loaded.cli.config.log_format);
    // A panic is caught where it happens (a request, an item, a damaged
    // page) and answered there; the log gets one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let message = immichvr::storage::panic_text_of(info.payload());
        tracing::error!(%location, "panic: {message}");
    }));
    let config = loaded.cli.config.clone();
    let result = match loaded.cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => run(config).await,
        Command::Openapi => match immichvr::app::spec_yaml(config).await {
            Ok(yaml) => print_out(yaml),
            Err(e) => Err(e.to_string()),
        },
        Command::Config { reference } => print_out(immichvr::cli::config(&loaded, reference)),
        Command::EnvTemplate => print_out(immichvr::cli::env_template()),
        Command::Healthcheck { timeout_secs } => {
            immichvr::cli::healthcheck(&config, Duration::from_secs(timeout_secs)).await
        }
        Command::Backup { path } => immichvr::cli::backup(&config, &path)
            .await
            .and_then(|msg| print_out(format!("{msg}\n"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("immichvr: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn print_out(text: String) -> Result<(), String> {
    print!("{text}");
    Ok(())
}

/// `RUST_LOG` chooses what is logged; `LOG_FORMAT` how.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,poem=warn".into());
    // Colours only on a terminal: a journal or a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(config: immichvr::Config) -> Result<(), String> {
    if std::env::vars().any(|(k, _)| k.starts_with("POSTGRES_")) {
        tracing::info!("POSTGRES_* variables are ignored: storage is embedded (redb)");
    }
    let addr = SocketAddr::new(config.bind_addr, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    immichvr::serve(config, listener, shutdown)
        .await
        .map_err(|e| e.to_string())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
