//! The binary's commands: serving (the default) and the operator
//! subcommands, with the logging set-up they share.

mod models;
mod ops;

use std::{net::SocketAddr, time::Duration};

use tokio_util::sync::CancellationToken;

pub use ops::{backup, config, env_template, healthcheck, local_base_url};

use crate::config::{file::Loaded, Command, Config, LogFormat};

/// Runs the command the command line names.
pub async fn run(loaded: &Loaded) -> Result<(), String> {
    let config = loaded.cli.config.clone();
    match loaded.cli.command.clone().unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Openapi { without_multipart } => crate::app::spec_yaml(config, without_multipart)
            .await
            .map(|yaml| print!("{yaml}"))
            .map_err(|e| e.to_string()),
        Command::Config { reference } => {
            print!("{}", ops::config(loaded, reference));
            Ok(())
        }
        Command::EnvTemplate => {
            print!("{}", ops::env_template());
            Ok(())
        }
        Command::Healthcheck { timeout_secs } => {
            ops::healthcheck(&config, Duration::from_secs(timeout_secs)).await
        }
        Command::Backup { path } => {
            let msg = ops::backup(&config, &path).await?;
            println!("{msg}");
            Ok(())
        }
        Command::Models { action } => models::run(&config, action).await,
    }
}

/// `RUST_LOG` chooses what is logged; `LOG_FORMAT` how. Colours only on a
/// terminal: a journal or a log file gets plain text. A panic is caught
/// where it happens (a request, an item, a damaged page) and answered
/// there; the log gets one line, not a backtrace.
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,poem=warn".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let message = crate::storage::panic_text_of(info.payload());
        tracing::error!(%location, "panic: {message}");
    }));
}

async fn serve(config: Config) -> Result<(), String> {
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
    crate::serve(config, listener, shutdown)
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
