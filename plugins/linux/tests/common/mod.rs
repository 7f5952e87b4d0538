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

/// Runs `cmd` with `args`; its trimmed standard output, or why it failed.
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
fn skip_or_fail(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI must run the storage tests for real, but {why}");
    }
    eprintln!("skipping: {why}");
}

/// True when the tests can mount file systems (root, tools present).
pub fn can_mount() -> bool {
    let root = run("id", &["-u"]).map(|u| u == "0").unwrap_or(false);
    if !root {
        skip_or_fail("these tests need root to mount loop file systems");
    }
    root
}

impl TestFs {
    /// A new file system of `mib` MiB.
    pub fn new(kind: Kind, mib: u64) -> TestFs {
        TestFs::make(kind, mib, None)
    }

    /// A new file system of `mib` MiB mounted at `mnt`, a new directory this makes: inside
    /// another test file system, its mount point lies on a file system of that kind (as a
    /// data disk's mount point on an XFS or btrfs root file system does). Drop it before
    /// the one it is mounted in.
    pub fn new_at(kind: Kind, mib: u64, mnt: &Path) -> TestFs {
        TestFs::make(kind, mib, Some(mnt))
    }

    fn make(kind: Kind, mib: u64, at: Option<&Path>) -> TestFs {
        let tmp = tempfile::Builder::new()
            .prefix("spindle-linux-")
            .tempdir()
            .unwrap();
        let mnt = at.map_or_else(|| tmp.path().join("mnt"), Path::to_path_buf);
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

    /// Unmounts the file system, leaving its mount point an empty directory (as at boot,
    /// before it is mounted).
    pub fn unmount(&self) {
        run("umount", &[self.mnt.to_str().unwrap()]).unwrap();
    }

    /// Detaches the file system at once while programs (tgtd) still hold files on it
    /// (`umount -l`), as a disk that went away would leave it.
    pub fn unmount_lazily(&self) {
        run("umount", &["-l", self.mnt.to_str().unwrap()]).unwrap();
    }

    /// Mounts the file system again after [`TestFs::unmount`].
    pub fn remount(&self) {
        let dev = self
            .dev
            .as_deref()
            .filter(|d| !d.is_empty())
            .expect("a loop device");
        run("mount", &[dev, self.mnt.to_str().unwrap()]).unwrap();
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
        tgt: None,
    }
}

/// The spindle-array binary.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spindle-array"))
}

/// This test run's private host state home and the array program that uses it.
struct TestHome {
    home: PathBuf,
    program: PathBuf,
}

fn test_home() -> &'static TestHome {
    static HOME: std::sync::OnceLock<TestHome> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        // One per test process: the array program run as root would otherwise keep the
        // tests' registrations in the host's /var/lib/spindle-array, next to (and checked
        // like) the real array's. A short path, no longer than that one: messages cut a path
        // after 78 characters, and the tests look for the registration's file name in them.
        // Kept after the run (a static is never dropped) for a failed test to be looked at.
        let home = tempfile::Builder::new()
            .prefix("sa-home-")
            .tempdir()
            .unwrap()
            .keep();
        // The plug-in runs the program named by `array_program=` with the test process's
        // environment, which a test must not change (set_var races the other test threads),
        // and over ssh with the far side's: a script that sets the variable reaches both.
        let program = home.join("spindle-array");
        spindle_plugin_linux::registry::write_launcher(&program, &exe(), &home).unwrap();
        TestHome { home, program }
    })
}

/// The host state home of this test run (`SPINDLE_ARRAY_STATE_HOME` of every program the
/// tests start): its registrations never mix with the host's.
pub fn state_home() -> &'static Path {
    &test_home().home
}

/// The array program for `array_program=` and supervisors: the built binary, run with this
/// test run's state home.
pub fn program() -> PathBuf {
    test_home().program.clone()
}

/// The registrations of this test run.
pub fn registry() -> spindle_plugin_linux::registry::Registry {
    spindle_plugin_linux::registry::Registry::of(&opts()).unwrap()
}

/// Engine options that run split workers from the built binary, with this run's state home.
pub fn opts() -> EngineOptions {
    EngineOptions {
        worker_exe: Some(exe()),
        state_home: Some(state_home().to_path_buf()),
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
        .stderr(Stdio::piped())
        .env(spindle_plugin_linux::registry::STATE_HOME_VAR, state_home());
    // After the state home: a test may set another one.
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

// ----- a private tgtd per test ---------------------------------------------------------------

use spindle_plugin_linux::config::TgtSettings;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};

pub const TGTD: &str = "/usr/sbin/tgtd";
pub const INIT_A: &str = "iqn.2025-01.org.example:host-a";
pub const INIT_B: &str = "iqn.2025-01.org.example:host-b";
pub const OUTSIDER: &str = "iqn.2025-01.org.example:outsider";

/// True when tgt is installed (tests that need it skip loudly otherwise).
pub fn have_tgt() -> bool {
    let ok = Path::new(TGTD).exists();
    if !ok {
        skip_or_fail(&format!("{TGTD} is absent (Debian package tgt)"));
    }
    ok
}

static NEXT_CONTROL: AtomicU16 = AtomicU16::new(0);

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// The tgtd instance of one test: its own control port, portal port and socket directory.
/// The array starts it; dropping this shuts it down (and kills it if it does not go).
#[derive(Debug)]
pub struct Tgt {
    pub dir: tempfile::TempDir,
    pub control: u16,
    pub port: u16,
}

impl Tgt {
    pub fn new() -> Tgt {
        let dir = tempfile::Builder::new().prefix("spt-").tempdir().unwrap();
        let n = NEXT_CONTROL.fetch_add(1, Ordering::SeqCst);
        // SPINDLE_TEST_TGT=CONTROL_FIRST-CONTROL_LAST:PORT_FIRST-PORT_LAST keeps the tests'
        // tgtd instances and portals in those ranges (run them one at a time then).
        if let Some((control, port)) = std::env::var("SPINDLE_TEST_TGT").ok().and_then(|r| {
            let range = |s: &str| -> Option<(u16, u16)> {
                let (a, b) = s.split_once('-')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            };
            let (c, p) = r.split_once(':')?;
            let ((c0, c1), (p0, p1)) = (range(c)?, range(p)?);
            Some((c0 + n % (c1 - c0 + 1), p0 + n % (p1 - p0 + 1)))
        }) {
            return Tgt { dir, control, port };
        }
        let control = 2000 + ((std::process::id() % 500) as u16) * 20 + n % 20;
        Tgt {
            dir,
            control,
            port: free_port(),
        }
    }

    pub fn socket_base(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    pub fn settings(&self) -> TgtSettings {
        TgtSettings {
            control_port: self.control,
            portal: SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)),
            socket: Some(self.socket_base()),
        }
    }

    /// The `extra_info` settings naming this instance.
    pub fn extra_info(&self) -> String {
        format!(
            "tgt_control={};portal=127.0.0.1:{};tgt_socket={}",
            self.control,
            self.port,
            self.socket_base().display()
        )
    }

    pub fn portal(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn adm(&self) -> spindle_tgt::Tgtadm {
        spindle_tgt::Tgtadm::new(self.control)
            .unwrap()
            .with_ipc_socket_base(self.socket_base())
    }

    /// The live tgtd of this instance, found in /proc by its arguments and environment.
    pub fn pid(&self) -> Option<u32> {
        let want_env = format!("TGT_IPC_SOCKET={}", self.socket_base().display());
        let control = self.control.to_string();
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.first().is_some_and(|a| a.ends_with("tgtd")) {
                continue;
            }
            if !args.windows(2).any(|w| w[0] == "-C" && w[1] == control) {
                continue;
            }
            let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
            if env.split(|b| *b == 0).any(|v| v == want_env.as_bytes()) {
                return Some(pid);
            }
        }
        None
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill9(&self) {
        let pid = self.pid().expect("tgtd runs");
        run("kill", &["-9", &pid.to_string()]).unwrap();
        for _ in 0..200 {
            if self.pid().is_none() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("tgtd {pid} survived SIGKILL");
    }
}

impl Drop for Tgt {
    fn drop(&mut self) {
        let _ = self.adm().shutdown_daemon();
        for _ in 0..100 {
            if self.pid().is_none() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Some(pid) = self.pid() {
            let _ = run("kill", &["-9", &pid.to_string()]);
        }
    }
}

/// A one-pool configuration served by `tgt`.
pub fn tgt_config(pool: &Path, tgt: &Tgt) -> ArrayConfig {
    let mut c = config(pool);
    c.tgt = Some(tgt.settings());
    c
}

/// Which LUNs (without LUN 0) each target shows `initiator`: discovery (tgt serves discovery
/// without CHAP), then a login to each target (with CHAP when given) and REPORT LUNS.
pub fn visible(portal: &str, initiator: &str, chap: Option<&spindle_iscsi::Chap>) -> Vec<(String, Vec<u32>)> {
    try_visible(portal, initiator, chap).unwrap_or_else(|e| panic!("{e}"))
}

/// [`visible`], or what failed (for polling a tgtd that is coming back).
pub fn try_visible(
    portal: &str,
    initiator: &str,
    chap: Option<&spindle_iscsi::Chap>,
) -> Result<Vec<(String, Vec<u32>)>, String> {
    let targets = spindle_iscsi::Discovery::send_targets(portal, initiator, None)
        .map_err(|e| format!("discovery at {portal} as {initiator}: {e}"))?;
    let mut out = Vec::new();
    for t in targets {
        let mut s = spindle_iscsi::Session::login(portal, &t.name, initiator, chap)
            .map_err(|e| format!("login to {} as {initiator}: {e}", t.name))?;
        let mut luns: Vec<u32> = s
            .report_luns()
            .map_err(|e| format!("REPORT LUNS of {}: {e}", t.name))?
            .iter()
            .filter_map(|l| l.number())
            .filter(|n| *n != 0)
            .collect();
        s.logout().map_err(|e| format!("logout from {}: {e}", t.name))?;
        luns.sort();
        out.push((t.name, luns));
    }
    out.sort();
    Ok(out)
}

// ----- the plug-in through the manager --------------------------------------------------------

use spindle_api::{Method, PluginException};
use spindle_manager::{CallError, CallOptions, Manager, ManagerConfig, Mode};

/// A strict manager with the built-in Linux plug-in.
pub struct Mgr {
    pub m: Manager,
}

impl Mgr {
    pub async fn new() -> Mgr {
        let config = ManagerConfig {
            builtins: vec![std::sync::Arc::new(spindle_plugin_linux::LinuxArray)],
            mode: Mode::Strict,
            async_poll_interval: std::time::Duration::from_millis(50),
            ..ManagerConfig::default()
        };
        Mgr {
            m: Manager::new(config).await.unwrap(),
        }
    }

    pub async fn call(&self, method: Method, args: Value) -> Result<Value, CallError> {
        let entry = self.m.resolve(spindle_plugin_linux::CLASS_NAME).unwrap();
        let args = args.as_object().cloned().unwrap();
        self.m
            .call(entry, method, args, CallOptions::default())
            .await
            .map(|o| o.value)
    }

    /// A call that must succeed.
    pub async fn ok(&self, method: Method, args: Value) -> Value {
        match self.call(method, args).await {
            Ok(v) => v,
            Err(e) => panic!("{method} failed: {e}"),
        }
    }

    /// A call that must raise; returns the exception.
    pub async fn raised(&self, method: Method, args: Value) -> PluginException {
        match self.call(method, args).await {
            Ok(v) => panic!("{method} succeeded: {v}"),
            Err(CallError::Raised(e)) => e,
            Err(e) => panic!("{method} did not raise but: {e}"),
        }
    }
}

/// An iSCSI ss_record for the Linux plug-in.
pub fn ss_record(admin_host: &str, extra_info: &str) -> Value {
    json!({
        "name": "linux-array",
        "uuid": uuid::Uuid::new_v4().to_string(),
        "storage_type": "iSCSIStorage",
        "access_host": "127.0.0.1",
        "admin_host": admin_host,
        "admin_user": "root",
        "admin_passwd": "",
        "extra_info": extra_info,
    })
}

/// `extra_info` for a one-pool array served by `tgt`, run locally from the built program
/// (with this run's state home; over ssh to 127.0.0.1 too, the same path there).
pub fn local_extra_info(pool: &Path, tgt: &Tgt) -> String {
    format!(
        "pools=p0:{};iqn_prefix=iqn.2025-01.org.example:array;{};array_program={}",
        pool.display(),
        tgt.extra_info(),
        program().display()
    )
}

// ----- the resident array program ------------------------------------------------------------

/// How a test reaches the array: one run of the program per request, or the socket of a
/// resident program.
#[derive(Debug, Clone)]
pub enum Via {
    Program,
    Socket(PathBuf),
}

/// Sends one request over a resident program's socket; returns (answered, parsed answer or
/// Null). A program that dies on the request closes the connection unanswered.
pub fn socket_request(socket: &Path, cfg: &ArrayConfig, req: Value) -> (bool, Value) {
    use std::io::Read;
    let mut body = req;
    body["config"] = serde_json::to_value(cfg).unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.write_all(body.to_string().as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    (!v.is_null(), v)
}

/// [`request`] or [`socket_request`] (the environment only applies to a program run).
pub fn request_via(via: &Via, cfg: &ArrayConfig, req: Value, env: &[(&str, &str)]) -> (bool, Value) {
    match via {
        Via::Program => request(cfg, req, env),
        Via::Socket(s) => {
            assert!(
                env.is_empty(),
                "the environment of a resident program is set at its start"
            );
            socket_request(s, cfg, req)
        }
    }
}

/// [`ok`] through `via`.
pub fn ok_via(via: &Via, cfg: &ArrayConfig, req: Value) -> Value {
    let (_, v) = request_via(via, cfg, req.clone(), &[]);
    assert!(v.get("ok").is_some(), "request {req} failed: {v}");
    v["ok"].clone()
}

/// A resident array program run by the test (`spindle-array daemon --stdin-lifeline`), in a
/// private socket directory; stopped (through its standard input) when dropped. Declare it
/// after the [`TestFs`] it serves, so that it stops before the file system is unmounted.
pub struct Daemon {
    pub child: std::process::Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts one with `env` and waits until its socket answers.
    pub fn start(env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::Builder::new().prefix("spindle-d-").tempdir().unwrap();
        let socket = dir.path().join("array.sock");
        Daemon::start_at(dir, socket, env)
    }

    /// Starts one on `socket` (in `dir`).
    pub fn start_at(dir: tempfile::TempDir, socket: PathBuf, env: &[(&str, &str)]) -> Daemon {
        let child = Daemon::spawn(dir.path(), &socket, env);
        let d = Daemon { child, socket, dir };
        d.wait_ready();
        d
    }

    /// Runs the program on `socket`, remembering its arrays in `dir/served.json`, its
    /// standard error appended to `dir/daemon.log`.
    fn spawn(dir: &Path, socket: &Path, env: &[(&str, &str)]) -> std::process::Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .unwrap();
        let mut cmd = Command::new(exe());
        cmd.args(["daemon", "--socket"])
            .arg(socket)
            .arg("--served")
            .arg(dir.join("served.json"))
            .arg("--stdin-lifeline")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .env(spindle_plugin_linux::registry::STATE_HOME_VAR, state_home());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    /// Stops the program (as when dropped), runs `meanwhile`, and starts a new one on the
    /// same socket and served file, as after a reboot.
    pub fn restart_after(&mut self, meanwhile: impl FnOnce()) {
        self.stop();
        meanwhile();
        self.child = Daemon::spawn(self.dir.path(), &self.socket, &[]);
        self.wait_ready();
    }

    /// Closes its standard input and waits for it to exit (killed after 30 s).
    fn stop(&mut self) {
        drop(self.child.stdin.take());
        let start = std::time::Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) {
            if start.elapsed() > std::time::Duration::from_secs(30) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Waits until the socket accepts connections.
    pub fn wait_ready(&self) {
        let start = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "the resident program never listened on {}",
                self.socket.display()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    pub fn via(&self) -> Via {
        Via::Socket(self.socket.clone())
    }

    /// Waits for the program to exit (at most 10 s); its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "the resident program did not exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
