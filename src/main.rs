#![forbid(unsafe_code)]

use std::{net::SocketAddr, process::ExitCode};

use clap::Parser;
use immichvr::config::{Cli, Command};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,poem=warn".into()),
        )
        .init();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => run(cli.config).await,
        Command::Openapi => match immichvr::app::spec_yaml(cli.config).await {
            Ok(yaml) => {
                print!("{yaml}");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("immichvr: {msg}");
            ExitCode::FAILURE
        }
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
