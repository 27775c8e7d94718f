//! The binary as a person runs it: `--help`, bad directories.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_immichvr"))
}

#[test]
fn help_lists_every_option_with_env_and_default() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for env in [
        "BACKEND_PORT",
        "BIND_ADDR",
        "DATA_DIR",
        "UPLOAD_DIR",
        "DEPTH_MAPS_DIR",
        "MAX_UPLOAD_BYTES",
        "AI_SERVICE_URL",
        "AI_MODEL_NAME",
        "AI_MODEL_VERSION",
        "AUTO_START_WORKER",
        "IMMICH_URL",
        "IMMICH_API_KEY",
    ] {
        assert!(
            help.contains(&format!("env: {env}")) || help.contains(&format!("env: {env}=")),
            "--help lacks {env}"
        );
    }
    for default in [
        "[default: 3000]",
        "[default: ./data]",
        "[default: 0.0.0.0]",
        "[default: 104857600]",
    ] {
        assert!(help.contains(default), "--help lacks {default}");
    }
}

#[test]
fn unwritable_data_dir_stops_with_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = bin()
        .args(["--port", "0", "--data-dir"])
        .arg(&file)
        .env("AUTO_START_WORKER", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("immichvr:"))
        .expect("an error line");
    assert!(line.contains("not-a-dir"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn secrets_stay_out_of_help_output() {
    let out = bin()
        .arg("--help")
        .env("IMMICH_API_KEY", "sekrit-key-123")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sekrit-key-123"));
}
