//! Shared harness: a real tgtd per test (own control port, own portal port on 127.0.0.1,
//! own socket directory), sparse backing files in a temporary directory, and the libiscsi
//! command-line tools as the initiator. Every tool runs from an argument vector.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use spindle_tgt::{
    BackingPath, CachePolicy, Iqn, LunInfo, LunSpec, ScsiId, ScsiSn, Secret, SecretChannel, TargetInfo,
    TgtError, Tgtadm, Tgtd, TgtdConfig, UserName,
};
use tempfile::TempDir;

pub const TGTD: &str = "/usr/sbin/tgtd";
pub const PREFIX: &str = "iqn.2024-01.io.spindle.test:";
pub const INIT_A: &str = "iqn.2024-01.io.spindle.host:a";
pub const INIT_B: &str = "iqn.2024-01.io.spindle.host:b";
pub const OUTSIDER: &str = "iqn.2024-01.io.elsewhere:intruder";
pub const MIB: u64 = 1 << 20;

/// Skips the calling test, loudly, when tgt is not installed. Writes straight to the
/// process's stderr, which libtest does not capture, so the skip shows in every run.
macro_rules! require_tgtd {
    () => {
        if !std::path::Path::new(common::TGTD).exists() {
            // In CI a missing tgt is a failure: the suite must never pass without testing.
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI must run the tgt tests for real, but {} is absent",
                    common::TGTD
                );
            }
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {}:{}: {} is absent (install the Debian packages `tgt` and `libiscsi-bin`)",
                file!(),
                line!(),
                common::TGTD
            );
            return;
        }
    };
}

/// A running test instance. Field order matters: tgtd stops (Drop) before the directory goes.
pub struct Instance {
    pub tgtd: Tgtd,
    pub dir: TempDir,
    pub port: u16,
}

static NEXT_CONTROL_PORT: AtomicU16 = AtomicU16::new(0);

fn control_port() -> u16 {
    // Instances also get their own socket directory, so these only need to differ per test
    // process; spread them by pid anyway to keep `ps` readable.
    let n = NEXT_CONTROL_PORT.fetch_add(1, Ordering::SeqCst);
    1000 + ((std::process::id() % 1000) as u16) * 20 + n % 20
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

pub fn config(dir: &Path, port: u16, channel: SecretChannel) -> TgtdConfig {
    let mut c = TgtdConfig::new(control_port(), SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    c.ipc_socket_base = Some(dir.join("sock"));
    c.log_file = Some(dir.join("tgtd.log"));
    c.io_threads = Some(2);
    c.secret_channel = channel;
    c
}

pub fn start() -> Instance {
    start_with(SecretChannel::ManagementSocket)
}

pub fn start_with(channel: SecretChannel) -> Instance {
    let dir = tempfile::Builder::new()
        .prefix("spindle-tgt-")
        .tempdir()
        .expect("temporary directory");
    let mut last = None;
    for _ in 0..5 {
        let port = free_port();
        match Tgtd::start(config(dir.path(), port, channel)) {
            Ok(tgtd) => return Instance { tgtd, dir, port },
            // Someone took the port between our probe and tgtd's bind: try another.
            Err(e @ TgtError::PortalUnavailable { .. }) => last = Some(e),
            Err(e) => panic!("starting tgtd: {e}"),
        }
    }
    panic!("starting tgtd: {last:?}");
}

impl Instance {
    pub fn portal(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A sparse backing file of `size` bytes.
    pub fn backing(&self, name: &str, size: u64) -> BackingPath {
        let path = self.dir.path().join(name);
        let f = std::fs::File::create(&path).expect("create backing file");
        f.set_len(size).expect("size backing file");
        BackingPath::new(path.to_str().expect("utf-8 path")).expect("valid backing path")
    }

    pub fn lun(&self, name: &str, size: u64, n: u8) -> LunSpec {
        LunSpec {
            backing: self.backing(name, size),
            scsi_id: scsi_id(n),
            scsi_sn: ScsiSn::new(format!("SPNDL{n:04}")).expect("valid sn"),
            vendor_id: Default::default(),
            product_id: Default::default(),
            online: true,
            cache: CachePolicy::WriteBack,
            thin_provisioning: false,
        }
    }

    pub fn url(&self, creds: Option<(&str, &str)>, target: &str, lun: u64) -> String {
        let auth = creds.map(|(u, s)| format!("{u}%{s}@")).unwrap_or_default();
        format!("iscsi://{auth}{}/{target}/{lun}", self.portal())
    }

    pub fn discovery_url(&self, creds: Option<(&str, &str)>) -> String {
        let auth = creds.map(|(u, s)| format!("{u}%{s}@")).unwrap_or_default();
        format!("iscsi://{auth}{}", self.portal())
    }

    /// `iscsi-ls -s -i INITIATOR URL`, parsed: target name → (LUN → size text) of the
    /// direct-access units.
    pub fn ls(
        &self,
        initiator: &str,
        creds: Option<(&str, &str)>,
    ) -> (Out, BTreeMap<String, BTreeMap<u64, String>>) {
        let out = run("iscsi-ls", &["-s", "-i", initiator, &self.discovery_url(creds)]);
        let mut seen: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
        let mut current = None;
        for line in out.text.lines() {
            if let Some(rest) = line.strip_prefix("Target:") {
                let name = rest.split_whitespace().next().unwrap_or("").to_string();
                seen.entry(name.clone()).or_default();
                current = Some(name);
            } else if let Some(rest) = line.strip_prefix("Lun:") {
                let mut parts = rest.split_whitespace();
                let lun: u64 = parts.next().and_then(|l| l.parse().ok()).expect("LUN number");
                let kind = parts.collect::<Vec<_>>().join(" ");
                if kind.contains("DIRECT_ACCESS") {
                    if let Some(t) = &current {
                        seen.entry(t.clone()).or_default().insert(lun, kind);
                    }
                }
            }
        }
        (out, seen)
    }

    /// The LUNs of `target` that `initiator` sees without CHAP ([`Self::ls`]); panics, with
    /// what iscsi-ls printed, when it does not see the target.
    pub fn luns(&self, initiator: &str, target: &str) -> Vec<u64> {
        let (out, seen) = self.ls(initiator, None);
        match seen.get(target) {
            Some(luns) => luns.keys().copied().collect(),
            None => panic!("{initiator} does not see {target}: {}", out.text),
        }
    }

    /// Exact size via `iscsi-readcapacity16`.
    pub fn capacity(
        &self,
        initiator: &str,
        creds: Option<(&str, &str)>,
        target: &str,
        lun: u64,
    ) -> Result<u64, Out> {
        let out = run(
            "iscsi-readcapacity16",
            &["-i", initiator, &self.url(creds, target, lun)],
        );
        let size = out
            .text
            .lines()
            .find_map(|l| l.strip_prefix("Total size:"))
            .and_then(|s| s.trim().parse().ok());
        match (out.ok, size) {
            (true, Some(size)) => Ok(size),
            _ => Err(out),
        }
    }

    /// `iscsi-inq -e 1 -c 131`: raw page 0x83 printout.
    pub fn page83(&self, initiator: &str, creds: Option<(&str, &str)>, target: &str, lun: u64) -> Out {
        run(
            "iscsi-inq",
            &[
                "-e",
                "1",
                "-c",
                "131",
                "-i",
                initiator,
                &self.url(creds, target, lun),
            ],
        )
    }

    /// `iscsi-inq -e 1 -c 128`: page 0x80 printout.
    pub fn page80(&self, initiator: &str, target: &str, lun: u64) -> Out {
        run(
            "iscsi-inq",
            &[
                "-e",
                "1",
                "-c",
                "128",
                "-i",
                initiator,
                &self.url(None, target, lun),
            ],
        )
    }

    /// Standard INQUIRY printout.
    pub fn inquiry(&self, initiator: &str, target: &str, lun: u64) -> Out {
        run("iscsi-inq", &["-i", initiator, &self.url(None, target, lun)])
    }
}

/// A scsi_id none of whose bytes is 0 (iscsi-inq prints binary designators with `%s`).
pub fn scsi_id(n: u8) -> ScsiId {
    assert!(n != 0);
    ScsiId::new(format!("600140{n:02x}{}", "a5".repeat(12))).expect("valid scsi_id")
}

pub fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Whether iscsi-inq's page 0x83 printout holds `id` as an NAA designator, byte for byte,
/// with NAA type 6 (IEEE registered extended).
pub fn has_naa6(out: &Out, id: &ScsiId) -> bool {
    let bytes = hex_bytes(id.as_str());
    assert_eq!(bytes[0] >> 4, 6);
    let mut needle = b"Designator Type:(3) NAA\nDesignator:[".to_vec();
    needle.extend_from_slice(&bytes);
    needle.extend_from_slice(b"]\n");
    out.stdout.windows(needle.len()).any(|w| w == needle.as_slice())
}

/// Builds target `PREFIX` + `suffix` with id `tid` the way a caller should: create it, add
/// its logical units (`add_lun` configures each at once), and bind its initiators last, so
/// nobody can log in to a half-built target. Returns the target's name.
pub fn export(adm: &Tgtadm, tid: u32, suffix: &str, initiators: &[&str], luns: &[(u64, LunSpec)]) -> String {
    let name = name(suffix);
    adm.new_target(tid, &name).expect("new target");
    for (lun, spec) in luns {
        adm.add_lun(tid, *lun, spec).expect("add LUN");
    }
    for initiator in initiators {
        adm.bind_initiator(tid, &Iqn::new(*initiator).expect("valid IQN"))
            .expect("bind initiator");
    }
    name.to_string()
}

/// Creates CHAP account `user` with `secret` and binds it to target `tid` (which from then on
/// requires CHAP at login).
pub fn chap(adm: &Tgtadm, tid: u32, user: &str, secret: &str) {
    let user = UserName::new(user).expect("valid user");
    adm.new_account(&user, &Secret::new(secret).expect("valid secret"))
        .expect("new account");
    adm.bind_account(tid, &user).expect("bind account");
}

/// tgtadm's listing of target `name`.
pub fn show(adm: &Tgtadm, name: &str) -> TargetInfo {
    adm.target_by_name(name).expect("show").expect("target listed")
}

/// tgtadm's listing of logical unit `lun` of target `name`.
pub fn show_lu(adm: &Tgtadm, name: &str, lun: u64) -> LunInfo {
    show(adm, name).lun(lun).expect("logical unit listed").clone()
}

pub fn name(suffix: &str) -> Iqn {
    Iqn::new(format!("{PREFIX}{suffix}")).expect("valid IQN")
}

/// What a tool did.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: Vec<u8>,
    /// stdout and stderr, lossily decoded.
    pub text: String,
}

/// Runs a tool with a 20 s limit.
pub fn run(program: &str, args: &[&str]) -> Out {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (install libiscsi-bin): {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = t1.join().expect("stdout reader");
    let stderr = t2.join().expect("stderr reader");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    Out {
        ok: status.is_some_and(|s| s.success()),
        stdout,
        text,
    }
}

/// The tgtd log, for assertion messages.
pub fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tgtd.log")).unwrap_or_default()
}

pub fn path_of(b: &BackingPath) -> PathBuf {
    b.as_path().to_path_buf()
}
