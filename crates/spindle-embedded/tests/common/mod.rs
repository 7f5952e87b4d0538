//! Test data directories (on a file system that cannot reflink, or on a loop-mounted XFS with
//! reflink), always cleaned up by Drop guards, even on failure.
#![allow(dead_code, clippy::unwrap_used)]

use spindle_embedded::{release, EmbeddedArray, EmbeddedConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// In CI (`CI=true`) a storage test that cannot run is a failure, not a skip: a missing
/// component must never make the suite pass without testing anything.
pub fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI must run the embedded-array tests for real, but {why}");
    }
    eprintln!("skipping: {why}");
}

/// True when the tests can mount file systems (root).
pub fn can_mount() -> bool {
    let root = run("id", &["-u"]).map(|u| u == "0").unwrap_or(false);
    if !root {
        skip_or_fail("these tests need root to mount loop file systems");
    }
    root
}

/// True when tgt and xfsprogs are installed (the tests do not install them).
pub fn have_tools() -> bool {
    let missing: Vec<&str> = ["/usr/sbin/tgtd", "/usr/sbin/tgtadm", "/usr/sbin/mkfs.xfs"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        skip_or_fail(&format!(
            "{} absent (Debian packages tgt, xfsprogs)",
            missing.join(", ")
        ));
    }
    missing.is_empty()
}

/// The spindle-array program built beside the test binaries (`target/debug/spindle-array`),
/// which `cargo test --workspace --all-targets` (scripts/test.sh) builds, run through a script
/// that gives it this test run's own host state home ([`state_home`]).
pub fn array_program() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("spindle-array"))
        .filter(|p| p.is_file());
    match p {
        Some(built) => Some(private_program(&built)),
        None => {
            skip_or_fail(
                "target/debug/spindle-array is not built; run `cargo build -p spindle-plugin-linux --bins` first",
            );
            None
        }
    }
}

/// The directory `SPINDLE_ARRAY_STATE_HOME` names for the array programs of this test run.
pub fn state_home() -> &'static Path {
    &test_home().0
}

/// (state home, directory of the script), made once per test process.
fn test_home() -> &'static (PathBuf, PathBuf) {
    static HOME: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        // Under cargo's scratch directory for tests, kept for a failed test to be looked at
        // (`cargo clean` removes it): run as root, the program would otherwise keep the tests'
        // registrations in the host's /var/lib/spindle-array, checked like the real array's.
        let dir = tempfile::Builder::new()
            .prefix("spindle-array-home-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let home = dir.join("state");
        std::fs::create_dir(&home).unwrap();
        (home, dir)
    })
}

/// A script running `built` with this test run's state home. The plug-in and the resident
/// program's supervisor run the program with this process's environment, which a test must
/// not change (`set_var` races the other test threads).
fn private_program(built: &Path) -> PathBuf {
    static PROGRAM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let program = test_home().1.join("spindle-array");
            spindle_plugin_linux::registry::write_launcher(&program, built, state_home()).unwrap();
            program
        })
        .clone()
}

/// The mount at `path` (fstype, source), from /proc/self/mountinfo, counting all of them.
pub fn mounts_at(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_str().unwrap();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (left.split(' ').nth(4)? == want).then(|| right.split(' ').next().unwrap().to_string())
        })
        .collect()
}

/// A data directory for one test. With `tmpfs`, it lies on a small tmpfs mounted in the
/// temporary directory. Whatever `prepare` made is released when the guard drops.
#[derive(Debug)]
pub struct DataDir {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    tmpfs: Option<PathBuf>,
    xfs: Option<(PathBuf, String)>,
    pub prepared: Vec<EmbeddedArray>,
}

impl DataDir {
    fn base() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("spindle-embedded-")
            .tempdir()
            .unwrap()
    }

    /// A data directory on a file system that cannot reflink: a directory under /tmp when /tmp
    /// cannot, else on a 1 GiB tmpfs.
    pub fn without_reflink() -> DataDir {
        let tmp = Self::base();
        let mut d = DataDir {
            data: tmp.path().join("data"),
            tmp,
            tmpfs: None,
            xfs: None,
            prepared: Vec::new(),
        };
        if spindle_embedded::reflink_capable(d.tmp.path()).unwrap() {
            let m = d.tmp.path().join("tmpfs");
            std::fs::create_dir(&m).unwrap();
            run(
                "mount",
                &["-t", "tmpfs", "-o", "size=1g", "tmpfs", m.to_str().unwrap()],
            )
            .unwrap();
            d.data = m.join("data");
            d.tmpfs = Some(m);
        }
        assert!(!is_reflink_fs(&d));
        d
    }

    /// A data directory on a freshly made, loop-mounted XFS with reflink.
    pub fn on_reflink_xfs() -> DataDir {
        let tmp = Self::base();
        let img = tmp.path().join("fs.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(512 << 20).unwrap();
        drop(f);
        let dev = run("losetup", &["--find", "--show", img.to_str().unwrap()]).unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut d = DataDir {
            data: mnt.join("data"),
            tmp,
            tmpfs: None,
            xfs: Some((mnt.clone(), dev.clone())),
            prepared: Vec::new(),
        };
        run("mkfs.xfs", &["-q", "-f", "-m", "reflink=1", &dev]).unwrap();
        run("mount", &[&dev, mnt.to_str().unwrap()]).unwrap();
        std::fs::create_dir(&d.data).unwrap();
        d.data = std::fs::canonicalize(&d.data).unwrap();
        d
    }

    /// A configuration for this directory: a 512 MiB pool, tgtd control port `control` on
    /// 127.0.0.1:`port`, nothing installed.
    pub fn config(&self, port: u16, control: u16, program: PathBuf) -> EmbeddedConfig {
        EmbeddedConfig {
            data_dir: self.data.clone(),
            pool_size: 512 << 20,
            portal: format!("127.0.0.1:{port}"),
            tgt_control: control,
            install: false,
            array_program: Some(program),
        }
    }

    /// `prepare`, remembering the result for cleanup.
    pub fn prepare(&mut self, cfg: &EmbeddedConfig) -> EmbeddedArray {
        let a = spindle_embedded::prepare(cfg).unwrap_or_else(|e| panic!("prepare: {e}"));
        self.prepared.push(a.clone());
        a
    }
}

fn is_reflink_fs(d: &DataDir) -> bool {
    let probe = d.data.parent().unwrap();
    spindle_embedded::reflink_capable(probe).unwrap()
}

impl Drop for DataDir {
    fn drop(&mut self) {
        for a in self.prepared.iter().rev() {
            if let Err(e) = release(a) {
                eprintln!("cleanup: {e}");
            }
            if !mounts_at(&a.pool_dir).is_empty() && a.image.is_some() {
                let _ = run("umount", &["-l", a.pool_dir.to_str().unwrap_or("")]);
            }
        }
        if let Some(m) = &self.tmpfs {
            let _ = run("umount", &["-l", m.to_str().unwrap_or("")]);
        }
        if let Some((mnt, dev)) = &self.xfs {
            let m = mnt.to_str().unwrap_or("");
            for _ in 0..50 {
                if run("umount", &[m]).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = run("umount", &["-l", m]);
            let _ = run("losetup", &["-d", dev]);
        }
    }
}
