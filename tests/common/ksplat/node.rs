//! Running the Node verification scripts in `verify/`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn verify_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ksplat/verify")
}

fn works(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// True when node and npm exist and `verify/node_modules` is installed
/// (running `npm ci` from the committed lockfile once if it is missing).
/// False, with a message, only when node or npm is absent.
pub fn ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        // Never a silent skip: these checks are the proof the files load.
        assert!(
            works("node") && works("npm"),
            "node and npm are required for the KSPLAT checks (scripts/test.sh installs them)"
        );
        let dir = verify_dir();
        if !dir.join("node_modules").is_dir() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(&dir)
                .status()
                .expect("spawn npm ci");
            assert!(status.success(), "npm ci failed in {}", dir.display());
        }
        true
    })
}

/// Runs `node verify/<script> <args>` and returns stdout, failing the test on
/// a non-zero exit.
pub fn run<S: AsRef<OsStr>>(script: &str, args: &[S]) -> String {
    let dir = verify_dir();
    let output = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("spawn node");
    assert!(
        output.status.success(),
        "node {script} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// A scratch path under cargo's per-target temp dir.
pub fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}
