#![forbid(unsafe_code)]

use std::process::ExitCode;

use immichvr::config::file::{load, LoadError};

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
    immichvr::cli::init_logs(loaded.cli.config.log_format);
    match immichvr::cli::run(&loaded).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("immichvr: {msg}");
            ExitCode::FAILURE
        }
    }
}
