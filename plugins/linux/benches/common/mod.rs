//! What both benches need: a loop-mounted XFS image with reflink, removed on drop, a helper
//! that runs a tool and insists it succeeded, the array program, timing and a settled file
//! system before each measurement.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One MiB.
pub const MIB: u64 = 1 << 20;
/// One GiB.
pub const GIB: u64 = 1 << 30;
/// One TiB, the size of the benchmarked LUNs.
pub const TIB: i64 = 1 << 40;

/// The median of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// How long `f` takes, and what it gives.
pub fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

/// `d` in milliseconds, for the tables.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Lets the file system finish what removals left for later, so that every measured
/// operation starts from a quiet file system and none pays for an earlier one's clean-up: XFS
/// frees a removed reflinked file's extents in the background (`syncfs` waits for that), and
/// after the log force it writes the changed refcount btree blocks back in the background
/// (xfsaild); a FICLONE issued 1 to 5 ms after such a log force waits for that writeback and
/// takes about 1.5 times as long (measured on a 2-core VM: 8.5-9 ms instead of 5.6-6 ms), so an
/// operation started at once after `syncfs` and one started a millisecond later would not be
/// compared fairly. Hence the pause.
pub fn settle(dir: &Path) {
    let d = std::fs::File::open(dir).unwrap();
    rustix::fs::syncfs(&d).unwrap();
    // `SPINDLE_BENCH_SETTLE_MS` shortens the pause to see what an idle machine adds: with 0,
    // the next operation starts while the CPUs are still awake (and the FICLONE caveat above
    // applies).
    let ms = std::env::var("SPINDLE_BENCH_SETTLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    std::thread::sleep(Duration::from_millis(ms));
}

/// The release `spindle-array` beside the bench binary (target/release/deps/bench-xxxx ->
/// target/release/spindle-array), built first if it is missing.
pub fn array_exe() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let exe = me.parent().and_then(Path::parent).unwrap().join("spindle-array");
    if !exe.exists() {
        let _ = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "-p",
                "spindle-plugin-linux",
                "--bin",
                "spindle-array",
            ])
            .status();
    }
    exe
}

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

/// Gives the array programs this bench runs (and its in-process engines) a state home of
/// their own, unless one is set already: run as root they would otherwise keep the bench's
/// registrations in the host's /var/lib/spindle-array, beside the real array's. Call it first
/// thing in `main`, while the process has one thread (setting the environment races others).
pub fn private_state_home() -> Option<tempfile::TempDir> {
    let var = spindle_plugin_linux::registry::STATE_HOME_VAR;
    if std::env::var_os(var).is_some() {
        return None;
    }
    let home = tempfile::Builder::new()
        .prefix("spindle-bench-home-")
        .tempdir()
        .unwrap();
    std::env::set_var(var, home.path());
    Some(home)
}
