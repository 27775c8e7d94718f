//! The operator subcommands that are not the service itself:
//! `config`, `env-template`, `healthcheck` and `backup`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    time::Duration,
};

use redb::{Database, DatabaseError, ReadableDatabase};

use crate::{
    config::{file::Loaded, reference, Config},
    storage::backup,
};

/// `immichvr config [--reference]`.
pub fn config(loaded: &Loaded, markdown_reference: bool) -> String {
    if markdown_reference {
        reference::markdown()
    } else {
        reference::effective(loaded)
    }
}

/// `immichvr env-template`.
pub fn env_template() -> String {
    reference::env_template()
}

/// Where this host reaches the service it would run: a wildcard bind
/// address is reachable on loopback.
pub fn local_base_url(config: &Config) -> String {
    let ip = match config.bind_addr {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{}", config.port),
        IpAddr::V6(v6) => format!("http://[{v6}]:{}", config.port),
    }
}

/// `immichvr healthcheck`: Ok when `/health` answers 200 within `timeout`.
pub async fn healthcheck(config: &Config, timeout: Duration) -> Result<(), String> {
    let url = format!("{}/health", local_base_url(config));
    let client = crate::tls::client_builder()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", e.without_url()))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        let body = resp.text().await.unwrap_or_default();
        Err(format!("{url} answered {status}: {}", body.trim()))
    }
}

/// `immichvr backup PATH`: asks the running service for a backup and moves
/// it to `dest`; with no service answering, reads the database file itself.
pub async fn backup(config: &Config, dest: &Path) -> Result<String, String> {
    if dest.exists() {
        return Err(format!("{} already exists", dest.display()));
    }
    let url = format!("{}/api/admin/backup", local_base_url(config));
    let client = crate::tls::client_builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = client.post(&url);
    if let Some(token) = &config.auth_token {
        req = req.bearer_auth(token.expose());
    }
    match req.send().await {
        Ok(resp) if resp.status() == reqwest::StatusCode::CREATED => {
            let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
            let made = body["path"]
                .as_str()
                .ok_or("the service's answer has no path")?;
            move_file(Path::new(made), dest)?;
            Ok(format!(
                "backup written by the running service to {} ({} bytes, {} rows)",
                dest.display(),
                body["sizeBytes"],
                body["rows"]
            ))
        }
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            Err(format!(
                "the service at {url} answered {status}: {}",
                body.trim()
            ))
        }
        Err(e) if e.is_connect() => offline_backup(config, dest).await,
        Err(e) => Err(format!("{url}: {}", e.without_url())),
    }
}

async fn offline_backup(config: &Config, dest: &Path) -> Result<String, String> {
    let db_path = config.database_path();
    let dest = dest.to_path_buf();
    let url = local_base_url(config);
    tokio::task::spawn_blocking(move || {
        if !db_path.exists() {
            return Err(format!(
                "no database at {} (check DATA_DIR)",
                db_path.display()
            ));
        }
        let db = Database::open(&db_path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => format!(
                "{} is held by a running service that does not answer on {url}; \
                 run the backup with the service's BACKEND_PORT and BIND_ADDR",
                db_path.display()
            ),
            other => format!("cannot open {}: {other}", db_path.display()),
        })?;
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let info = backup::write(&txn, &crate::schema::SCHEMA, &dest).map_err(|e| e.to_string())?;
        Ok(format!(
            "service not running; backup read from {} and written to {} ({} bytes, {} rows)",
            db_path.display(),
            info.path.display(),
            info.size_bytes,
            info.rows
        ))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A rename when both are on one file system, else copy and remove.
fn move_file(from: &Path, to: &Path) -> Result<(), String> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", to.display()))?;
    if let Err(e) = std::fs::remove_file(from) {
        eprintln!(
            "immichvr: the service's copy {} stays in place: {e}",
            from.display()
        );
    }
    Ok(())
}
