//! The repository stands on its own: nothing it holds reaches outside it.

use std::process::Command;

#[test]
fn no_tracked_file_refers_to_anything_beside_the_repository() {
    let root = env!("CARGO_MANIFEST_DIR");
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let Some(out) = listed.ok().filter(|o| o.status.success()) else {
        // A copy without .git (an unpacked source archive): walk nothing.
        eprintln!("SKIPPED: not a git checkout");
        return;
    };
    // Spelled in pieces, so that this file does not name it itself.
    let outside = ["..", "/", "shared"].concat();
    let spec_dir = ["shared", "/", "spec"].concat();
    let mut offenders = Vec::new();
    for name in String::from_utf8_lossy(&out.stdout).split('\0') {
        let path = std::path::Path::new(root).join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // binary files (fixtures, samples) or gone
        };
        if text.contains(&outside) || text.contains(&spec_dir) {
            offenders.push(name.to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "files that refer outside the repository: {offenders:?}"
    );
}
