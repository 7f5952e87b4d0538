//! A private `tgtd` per test: started as a plain foreground process on a free control number
//! and a free loopback port, configured with `tgtadm` argument vectors, and torn down by
//! `Drop` (targets deleted with --force, then the system) even when the test fails.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

const TGTD: &str = "/usr/sbin/tgtd";
const TGTADM: &str = "/usr/sbin/tgtadm";
const SOCKET_DIR: &str = "/var/run/tgtd";

static NEXT_CONTROL: AtomicU32 = AtomicU32::new(0);

pub struct Tgtd {
    pub control: u32,
    pub port: u16,
    child: Child,
    tids: Vec<u32>,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn socket_paths(control: u32) -> [PathBuf; 2] {
    [
        Path::new(SOCKET_DIR).join(format!("socket.{control}")),
        Path::new(SOCKET_DIR).join(format!("socket.{control}.lock")),
    ]
}

fn pick_control() -> u32 {
    loop {
        let n = NEXT_CONTROL.fetch_add(1, Ordering::SeqCst);
        // tgtd keeps the control number in a 16-bit signed value.
        let control = 1000 + ((std::process::id() % 3000) * 10 + n) % 31_000;
        if socket_paths(control).iter().all(|p| !p.exists()) {
            return control;
        }
    }
}

impl Tgtd {
    /// Starts a tgtd; panics (loudly, with its log) when it cannot be started.
    pub fn start() -> Tgtd {
        assert!(
            Path::new(TGTD).exists() && Path::new(TGTADM).exists(),
            "tgtd/tgtadm are not installed (Debian package tgt); these tests need a real target"
        );
        let mut dir = tempfile::tempdir().expect("temp dir");
        let mut last_log = String::new();
        for attempt in 0..4 {
            let control = pick_control();
            let port = free_port();
            let log = dir.path().join(format!("tgtd-{attempt}.log"));
            let log_file = File::create(&log).expect("tgtd log file");
            let child = Command::new(TGTD)
                .args(["-f", "-C", &control.to_string(), "--iscsi"])
                .arg(format!("portal=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot spawn {TGTD}: {e}"));
            let mut t = Tgtd {
                control,
                port,
                child,
                tids: Vec::new(),
                dir,
                log,
            };
            if t.wait_ready() {
                return t;
            }
            last_log = std::fs::read_to_string(&t.log).unwrap_or_default();
            t.stop();
            dir = std::mem::replace(&mut t.dir, tempfile::tempdir().expect("temp dir"));
            // Already stopped; skip the second stop in Drop.
            std::mem::forget(t);
        }
        panic!("tgtd could not be started after 4 attempts; last log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let adm_ok = Command::new(TGTADM)
                .args([
                    "-C",
                    &self.control.to_string(),
                    "--op",
                    "show",
                    "--mode",
                    "system",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if adm_ok
                && TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_millis(500))
                    .is_ok()
            {
                return true;
            }
            sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs `tgtadm -C N ARGS...`; panics with its output on failure.
    pub fn adm(&self, args: &[&str]) -> String {
        let out = Command::new(TGTADM)
            .arg("-C")
            .arg(self.control.to_string())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {TGTADM}: {e}"));
        assert!(
            out.status.success(),
            "tgtadm {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn new_target(&mut self, tid: u32, iqn: &str) {
        self.adm(&[
            "--lld",
            "iscsi",
            "--op",
            "new",
            "--mode",
            "target",
            "--tid",
            &tid.to_string(),
            "-T",
            iqn,
        ]);
        self.tids.push(tid);
    }

    pub fn new_lun(&self, tid: u32, lun: u32, backing: &Path) {
        self.adm(&[
            "--lld",
            "iscsi",
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            &tid.to_string(),
            "--lun",
            &lun.to_string(),
            "-b",
            backing.to_str().expect("utf-8 path"),
        ]);
    }

    pub fn lun_params(&self, tid: u32, lun: u32, params: &str) {
        self.adm(&[
            "--lld",
            "iscsi",
            "--op",
            "update",
            "--mode",
            "logicalunit",
            "--tid",
            &tid.to_string(),
            "--lun",
            &lun.to_string(),
            "--params",
            params,
        ]);
    }

    pub fn target_param(&self, tid: u32, name: &str, value: &str) {
        self.adm(&[
            "--lld",
            "iscsi",
            "--op",
            "update",
            "--mode",
            "target",
            "--tid",
            &tid.to_string(),
            "--name",
            name,
            "--value",
            value,
        ]);
    }

    pub fn bind_initiator(&self, tid: u32, iqn: &str) {
        self.adm(&[
            "--lld",
            "iscsi",
            "--op",
            "bind",
            "--mode",
            "target",
            "--tid",
            &tid.to_string(),
            "--initiator-name",
            iqn,
        ]);
    }

    pub fn new_account(&self, user: &str, password: &str) {
        self.adm(&[
            "--lld",
            "iscsi",
            "--op",
            "new",
            "--mode",
            "account",
            "--user",
            user,
            "--password",
            password,
        ]);
    }

    pub fn bind_account(&self, tid: u32, user: &str, outgoing: bool) {
        let tid = tid.to_string();
        let mut args = vec![
            "--lld", "iscsi", "--op", "bind", "--mode", "account", "--tid", &tid, "--user", user,
        ];
        if outgoing {
            args.push("--outgoing");
        }
        self.adm(&args);
    }

    /// Binds an account to discovery sessions (tgtadm without --tid: the global target).
    pub fn bind_account_for_discovery(&self, user: &str) {
        self.adm(&[
            "--lld", "iscsi", "--op", "bind", "--mode", "account", "--user", user,
        ]);
    }

    /// A sparse file of `size` bytes in the test's temp dir.
    pub fn backing_file(&self, name: &str, size: u64) -> PathBuf {
        let path = self.dir.path().join(name);
        let f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .expect("create backing file");
        f.set_len(size).expect("size backing file");
        path
    }

    /// One target `tid` named `iqn` with LUN 1 on a new sparse file, open to `initiator`.
    pub fn simple_target(&mut self, tid: u32, iqn: &str, size: u64, initiator: &str) -> PathBuf {
        let file = self.backing_file(&format!("lun-{tid}-1.img"), size);
        self.new_target(tid, iqn);
        self.new_lun(tid, 1, &file);
        self.bind_initiator(tid, initiator);
        file
    }

    fn stop(&mut self) {
        let control = self.control.to_string();
        for tid in std::mem::take(&mut self.tids) {
            let _ = Command::new(TGTADM)
                .args([
                    "-C", &control, "--op", "delete", "--mode", "target", "--force", "--tid",
                ])
                .arg(tid.to_string())
                .output();
        }
        let _ = Command::new(TGTADM)
            .args(["-C", &control, "--op", "delete", "--mode", "system"])
            .output();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
                _ => {
                    // Our own child, by its handle: tgtd ignores SIGTERM.
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        for p in socket_paths(self.control) {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a libiscsi tool (`iscsi-inq`, `iscsi-ls`, `iscsi-readcapacity16`); stdout as bytes.
pub fn libiscsi(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Each 512-byte block stamped with its LBA and a tag, the rest a counter.
pub fn lba_stamped(lba: u64, blocks: usize, tag: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks * 512);
    for i in 0..blocks {
        let mut block = [0u8; 512];
        block[..8].copy_from_slice(&(lba + i as u64).to_be_bytes());
        block[8] = tag;
        for (j, b) in block.iter_mut().enumerate().skip(9) {
            *b = (j as u8).wrapping_add(tag);
        }
        out.extend_from_slice(&block);
    }
    out
}

/// `len` bytes of the file at `offset`.
pub fn file_bytes(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).expect("open backing file");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).expect("read backing file");
    buf
}
