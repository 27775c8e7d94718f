//! Our KSPLAT in the loader the VR app uses: `@sparkjsdev/spark` 0.1.10's
//! `SplatMesh` in headless Chromium (Debian's, driven by playwright-core),
//! with the app's cross-origin isolation headers. The PLY loads with all
//! its splats, the KSPLAT with exactly the ones the writer kept, and a
//! truncated KSPLAT fails loudly.
//!
//! Spark 0.1.10 ignores `fileType` when given a URL and guesses from the
//! bytes, which a KSPLAT does not announce: the check hands it the bytes
//! with the type (`fileBytes` + `fileType`), see docs/vr-app.md.

mod common;

use std::{path::Path, process::Command};

use common::ksplat::{ml_sharp_ply, synthetic_gaussians};
use immichvr::assets::ksplat::{convert, Options};

fn spark_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ksplat/spark")
}

fn check(file: &Path, kind: &str) -> (bool, serde_json::Value) {
    let dir = spark_dir();
    if !dir.join("node_modules").is_dir() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&dir)
            .status()
            .expect("npm")
            .success();
        assert!(ok, "npm ci in {}", dir.display());
    }
    let out = Command::new("node")
        .arg(dir.join("spark-check.mjs"))
        .arg(file)
        .arg(kind)
        .current_dir(&dir)
        .output()
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().last().unwrap_or("{}");
    let v = serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.success(), v)
}

#[test]
fn our_ksplat_loads_in_the_apps_loader() {
    let tmp = tempfile::tempdir().unwrap();
    let gaussians = synthetic_gaussians(20_000, 7);
    let ply = ml_sharp_ply(&gaussians);
    let ksplat = convert(&ply, &Options::default()).unwrap();
    let written = u32::from_le_bytes(ksplat[16..20].try_into().unwrap()) as u64;
    assert!(written > 0 && written < 20_000, "{written}");
    let (p, k) = (
        tmp.path().join("scene.ply"),
        tmp.path().join("scene.ksplat"),
    );
    std::fs::write(&p, &ply).unwrap();
    std::fs::write(&k, &ksplat).unwrap();

    let (ok, v) = check(&p, "ply");
    assert!(ok, "{v}");
    assert_eq!(v["numSplats"], 20_000);
    let (ok, v) = check(&k, "ksplat");
    assert!(ok, "{v}");
    assert_eq!(
        v["numSplats"], written,
        "Spark read every splat the writer wrote"
    );

    let cut = tmp.path().join("cut.ksplat");
    std::fs::write(&cut, &ksplat[..ksplat.len() / 2]).unwrap();
    let (ok, v) = check(&cut, "ksplat");
    assert!(!ok, "a truncated file must fail: {v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
}
