//! Test file systems: loop-mounted XFS (reflink=1) and btrfs images and tmpfs, made in a
//! temporary directory and always unmounted and detached by a Drop guard, even on failure.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};
use spindle_plugin_linux::config::{ArrayConfig, PoolConfig};
use spindle_plugin_linux::engine::{Engine, EngineOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The kinds of test file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Xfs,
    Btrfs,
    Tmpfs,
}

/// A mounted test file system.
#[derive(Debug)]
pub struct TestFs {
    pub tmp: tempfile::TempDir,
    pub mnt: PathBuf,
    pub dev: Option<String>,
    pub kind: Kind,
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
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

/// True when the tests can mount file systems (root, tools present).
pub fn can_mount() -> bool {
    let root = run("id", &["-u"]).map(|u| u == "0").unwrap_or(false);
    if !root {
        eprintln!("skipping: these tests need root to mount loop file systems");
    }
    root
}

impl TestFs {
    /// A new file system of `mib` MiB.
    pub fn new(kind: Kind, mib: u64) -> TestFs {
        let tmp = tempfile::Builder::new()
            .prefix("spindle-linux-")
            .tempdir()
            .unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut fs = TestFs {
            mnt: mnt.clone(),
            tmp,
            dev: None,
            kind,
        };
        let m = mnt.to_str().unwrap().to_string();
        match kind {
            Kind::Tmpfs => {
                run(
                    "mount",
                    &["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", &m],
                )
                .unwrap();
                fs.dev = Some(String::new());
            }
            Kind::Xfs | Kind::Btrfs => {
                let img = fs.tmp.path().join("fs.img");
                let f = std::fs::File::create(&img).unwrap();
                f.set_len(mib << 20).unwrap();
                drop(f);
                let dev = run("losetup", &["--find", "--show", img.to_str().unwrap()]).unwrap();
                fs.dev = Some(dev.clone());
                match kind {
                    Kind::Xfs => run("mkfs.xfs", &["-q", "-f", "-m", "reflink=1", &dev]).unwrap(),
                    _ => run("mkfs.btrfs", &["-q", "-f", &dev]).unwrap(),
                };
                run("mount", &[&dev, &m]).unwrap();
            }
        }
        fs
    }

    /// A pool directory `name` (a subvolume on btrfs).
    pub fn pool(&self, name: &str) -> PathBuf {
        let p = self.mnt.join(name);
        if self.kind == Kind::Btrfs {
            run("btrfs", &["subvolume", "create", p.to_str().unwrap()]).unwrap();
        } else {
            std::fs::create_dir(&p).unwrap();
        }
        p
    }
}

impl Drop for TestFs {
    fn drop(&mut self) {
        let m = self.mnt.to_str().unwrap_or("").to_string();
        if self.dev.is_some() {
            // Split workers may still hold files for a moment.
            for _ in 0..50 {
                if run("umount", &[&m]).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = run("umount", &["-l", &m]);
        }
        if let Some(dev) = &self.dev {
            if !dev.is_empty() {
                let _ = run("losetup", &["-d", dev]);
            }
        }
    }
}

/// A one-pool configuration.
pub fn config(pool: &Path) -> ArrayConfig {
    ArrayConfig {
        pools: vec![PoolConfig {
            name: "p0".into(),
            path: pool.to_path_buf(),
        }],
        state: None,
        iqn_prefix: Some("iqn.2025-01.org.example:array".into()),
        split_rate_mib: None,
    }
}

/// The spindle-array binary.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spindle-array"))
}

/// Engine options that run split workers from the built binary.
pub fn opts() -> EngineOptions {
    EngineOptions {
        worker_exe: Some(exe()),
    }
}

/// Opens the engine.
pub fn engine(cfg: &ArrayConfig) -> Engine {
    Engine::open(cfg, opts()).unwrap()
}

/// Runs the binary with one request; returns (exit ok, parsed response or Null).
pub fn request(cfg: &ArrayConfig, req: Value, env: &[(&str, &str)]) -> (bool, Value) {
    let mut body = req;
    body["config"] = serde_json::to_value(cfg).unwrap();
    let mut cmd = Command::new(exe());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    (out.status.success(), v)
}

/// Runs a request that must succeed; returns its `ok` value.
pub fn ok(cfg: &ArrayConfig, req: Value) -> Value {
    let (_, v) = request(cfg, req.clone(), &[]);
    assert!(v.get("ok").is_some(), "request {req} failed: {v}");
    v["ok"].clone()
}

/// Runs a request that must fail; returns its `error` value.
pub fn err(cfg: &ArrayConfig, req: Value) -> Value {
    let (_, v) = request(cfg, req.clone(), &[]);
    assert!(v.get("error").is_some(), "request {req} did not fail: {v}");
    v["error"].clone()
}

/// Writes `byte` over `len` bytes at `off`.
pub fn fill(path: &Path, off: u64, len: usize, byte: u8) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&vec![byte; len], off).unwrap();
    f.sync_all().unwrap();
}

/// Reads `len` bytes at `off`.
pub fn read(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, off).unwrap();
    buf
}

/// Whether any extent of `path` is shared (filefrag's "shared" flag).
pub fn has_shared_extents(path: &Path) -> bool {
    let out = run("filefrag", &["-v", path.to_str().unwrap()]).unwrap();
    out.lines().skip(3).any(|l| l.contains("shared"))
}

/// Sorted names in a directory (ignoring the state directory).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".spindle-array")
        .collect();
    v.sort();
    v
}

/// The tables, minus what reading may legitimately refresh (pool probe results).
pub fn state(e: &Engine) -> Value {
    let mut d = e.dump().unwrap();
    d.as_object_mut().unwrap().remove("pools");
    d
}

/// `json!` re-export for tests.
pub fn j(v: Value) -> Value {
    json!(v)
}
