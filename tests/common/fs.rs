//! Small real file systems for disk-full tests.

use std::{path::Path, process::Command};

/// A tmpfs of `mib` MiB, unmounted on drop.
pub struct SmallFs {
    pub dir: tempfile::TempDir,
}

impl SmallFs {
    pub fn mount(mib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            let root = Command::new("id")
                .arg("-u")
                .output()
                .map(|o| o.stdout == b"0\n")
                .unwrap_or(false);
            assert!(!root, "running as root but could not mount a tmpfs");
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        Some(SmallFs { dir })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system of `dir` until writing fails; returns the file.
pub fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    for _ in 0..64 {
        let _ = f.write_all(&[0x5a; 512]);
    }
    let _ = f.sync_all();
    path
}
