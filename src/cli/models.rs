//! `immichvr models list | download KEY | depth PHOTO`: the built-in depth
//! engine's models from the command line.

use std::{io::Write, path::Path, sync::Arc, time::Duration};

use crate::{
    config::{Config, ModelsCommand},
    engine::{files, Engine},
};

use super::ops::local_base_url;

pub async fn run(config: &Config, action: ModelsCommand) -> Result<(), String> {
    match action {
        ModelsCommand::List => {
            list(config);
            Ok(())
        }
        ModelsCommand::Download { key } => download(config, &key).await,
        ModelsCommand::Depth {
            photo,
            out,
            model,
            runs,
            json,
        } => depth(config, &photo, out.as_deref(), &model, runs, json).await,
    }
}

fn list(config: &Config) {
    let engine = Engine::new(config, None);
    for &(key, repo, name, params, memory, license) in files::MODELS {
        let place = match engine.store().find(key) {
            Some(f) => f.weights.display().to_string(),
            None => "not downloaded".into(),
        };
        println!("{key:<6} {name:<6} {params:>5} {memory:>7}  {license:<13} {repo}  {place}");
    }
}

fn say_progress(done: u64, total: Option<u64>) {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    match total {
        Some(t) if t > 0 => eprint!(
            "\r{:.1} / {:.1} MiB ({}%)   ",
            mib(done),
            mib(t),
            done * 100 / t
        ),
        _ => eprint!("\r{:.1} MiB   ", mib(done)),
    }
    let _ = std::io::stderr().flush();
}

/// Through the running service when it answers (its catalogue and the
/// Models page follow, and its files keep its owner), else here.
async fn download(config: &Config, key: &str) -> Result<(), String> {
    if files::repo(key).is_none() {
        return Err(format!("unknown model {key}: small, base or large"));
    }
    if let Some(license) = files::license(key).filter(|l| l.contains("NC")) {
        eprintln!("note: {key} is licensed {license}: non-commercial use only");
    }
    let base = local_base_url(config);
    let client = crate::tls::client_builder()
        .timeout(Duration::from_secs(
            config.vr.ai_download_timeout_secs.max(60),
        ))
        .build()
        .map_err(|e| e.to_string())?;
    let auth = |r: reqwest::RequestBuilder| match &config.auth_token {
        Some(t) => r.bearer_auth(t.expose()),
        None => r,
    };
    let url = format!("{base}/api/settings/models/{key}/download");
    let asked = auth(client.post(&url)).send();
    tokio::pin!(asked);
    let watch = || async {
        let r = auth(client.get(format!("{base}/api/settings/models")))
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        v["models"]
            .as_array()?
            .iter()
            .find(|m| m["key"] == key)?
            .get("download_progress")?
            .as_u64()
    };
    let resp = loop {
        tokio::select! {
            r = &mut asked => break r,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Some(p) = watch().await {
                    eprint!("\rdownloading {key} through the service at {base}: {p}%   ");
                }
            }
        }
    };
    match resp {
        Ok(r) if r.status().is_success() => {
            eprintln!();
            println!("{key} downloaded by the service at {base}");
            Ok(())
        }
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            Err(format!(
                "the service at {base} answered {status}: {}",
                body.trim()
            ))
        }
        Err(e) if e.is_connect() => {
            let engine = Engine::new(config, None);
            eprintln!(
                "service not running; downloading {key} into {}",
                engine.store().downloads.display()
            );
            let path = engine
                .download(key, Some(&say_progress))
                .await
                .map_err(|e| e.to_string())?;
            eprintln!();
            println!("{key} downloaded: {}", path.display());
            Ok(())
        }
        Err(e) => Err(format!("{url}: {}", e.without_url())),
    }
}

async fn depth(
    config: &Config,
    photo: &Path,
    out: Option<&Path>,
    model: &str,
    runs: usize,
    json: bool,
) -> Result<(), String> {
    let bytes =
        bytes::Bytes::from(std::fs::read(photo).map_err(|e| format!("{}: {e}", photo.display()))?);
    let engine: Arc<Engine> = Engine::new(config, None);
    let t0 = std::time::Instant::now();
    engine.load(model).await.map_err(|e| e.to_string())?;
    let load = t0.elapsed().as_secs_f64();
    if !json {
        println!(
            "{model} loaded in {load:.2} s ({} threads)",
            engine.threads()
        );
    }
    let mut last = None;
    for run in 0..runs.max(1) {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t0 = std::time::Instant::now();
        let d = engine
            .depth(bytes.clone(), model, stop)
            .await
            .map_err(|e| e.to_string())?;
        let total = t0.elapsed().as_secs_f64();
        let t = d.timings;
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "impl": "immichvr", "run": run, "threads": engine.threads(), "model": model,
                    "width": d.width, "height": d.height, "load_s": load, "photo_s": total,
                    "decode_s": t.decode, "resize_s": t.resize, "model_s": t.model,
                    "post_s": t.post, "png_s": t.png,
                })
            );
        } else {
            println!(
                "{}x{} in {total:.2} s (decode {:.2}, resize {:.2}, model {:.2}, resize back {:.2}, PNG {:.2})",
                d.width, d.height, t.decode, t.resize, t.model, t.post, t.png
            );
        }
        last = Some(d);
    }
    if let (Some(out), Some(d)) = (out, last) {
        std::fs::write(out, &d.png).map_err(|e| format!("{}: {e}", out.display()))?;
        if !json {
            println!("depth map written to {}", out.display());
        }
    }
    Ok(())
}
