//! What both benches need: a loop-mounted XFS image with reflink, removed on drop, and a
//! helper that runs a tool and insists it succeeded.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One GiB.
pub const GIB: u64 = 1 << 30;

/// Runs `cmd` with `args`; panics with its stderr unless it succeeds; returns its stdout.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A loop-mounted XFS (reflink=1); tgtd (if any) must be gone before this drops.
pub struct Mount {
    _tmp: tempfile::TempDir,
    pub mnt: PathBuf,
    dev: String,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let m = self.mnt.to_str().unwrap_or("");
        for _ in 0..50 {
            if Command::new("umount")
                .arg(m)
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A fresh `gib` GiB XFS with reflink, loop-mounted in a temporary directory.
pub fn xfs(gib: u64) -> Mount {
    let tmp = tempfile::Builder::new()
        .prefix("spindle-bench-")
        .tempdir()
        .unwrap();
    let img = tmp.path().join("fs.img");
    std::fs::File::create(&img).unwrap().set_len(gib * GIB).unwrap();
    let dev = sh("losetup", &["--find", "--show", img.to_str().unwrap()]);
    sh("mkfs.xfs", &["-q", "-f", "-m", "reflink=1", &dev]);
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    sh("mount", &[&dev, mnt.to_str().unwrap()]);
    Mount { _tmp: tmp, mnt, dev }
}
