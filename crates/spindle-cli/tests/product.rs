//! The administrator's path, end to end, as the README tells it: a real `spindle serve` process
//! with its embedded default (a local Linux array on a loop-mounted XFS pool, exported by a
//! real tgtd), driven only through the `spindle` CLI over HTTP, and checked from the host side
//! with spindle's own iSCSI initiator: the LUN is seen by exactly the initiators it is presented
//! to, with the size and page 83 id the records show, and holds what was written, across
//! snapshot, clone, restore, split (through a restart of spindle) and resize.
//!
//! Needs root (loop mounts, tgtd). Under `CI=true` it fails rather than skips when it cannot run.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use spindle_iscsi::{Chap, Discovery, Lun, Session};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HOST_A: &str = "iqn.2026-11.org.example:host-a";
const OUTSIDER: &str = "iqn.2026-11.org.example:outsider";
const MIB: u64 = 1 << 20;

fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let tgt = Path::new("/usr/sbin/tgtd").exists() && Path::new("/usr/sbin/mkfs.xfs").exists();
    if root && tgt {
        return true;
    }
    let why = if root {
        "tgt or xfsprogs is not installed"
    } else {
        "it needs root"
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI must run the product test for real, but {why}");
    }
    eprintln!("skipping: {why}");
    false
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `spindle serve` with its embedded array, and everything needed to stop it cleanly.
struct Server {
    data: tempfile::TempDir,
    portal_port: u16,
    control: u16,
    child: Option<Child>,
    url: String,
}

impl Server {
    fn new() -> Server {
        let data = tempfile::Builder::new()
            .prefix("spindle-product-")
            .tempdir()
            .unwrap();
        Server {
            data,
            portal_port: free_port(),
            control: 3000 + (std::process::id() % 1000) as u16,
            child: None,
            url: String::new(),
        }
    }

    fn dir(&self) -> &Path {
        self.data.path()
    }

    /// The host state home of this server's array programs.
    fn state_home(&self) -> std::path::PathBuf {
        self.dir().join("array-state-home")
    }

    fn portal(&self) -> String {
        format!("127.0.0.1:{}", self.portal_port)
    }

    fn start(&mut self) {
        let listen = self.dir().join("listen");
        let _ = std::fs::remove_file(&listen);
        let log = std::fs::File::create(self.dir().join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["--log-level", "info", "serve", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(self.dir())
            .args(["--pool-size", "1G", "--refresh-interval", "0", "--no-install"])
            .args(["--portal", &self.portal()])
            .args(["--tgt-control", &self.control.to_string()])
            // A throttled split lasts long enough to restart spindle in the middle of it.
            .args(["--split-rate-mib", "16"])
            // The array programs spindle runs keep the registrations here, not in the host's
            // /var/lib/spindle-array (the same directory across restarts, as the host's is).
            .env("SPINDLE_ARRAY_STATE_HOME", self.state_home())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&listen) {
                self.url = format!("http://{}", addr.trim());
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("spindle serve exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "spindle serve did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as an administrator's service manager would.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("spindle serve ignored SIGTERM: {}", self.log());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("serve.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_input(args, "")
    }

    /// A command given `input` on its standard input (how the CLI takes secrets).
    fn cli_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["--url", &self.url])
            .arg("--token-file")
            .arg(self.dir().join("token"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// A command that must succeed; its `--output json` answer.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "spindle {args:?} failed ({}): {}{}\n--- server log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        if out.stdout.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "spindle {args:?} printed no JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        // The embedded tgtd outlives spindle by design; a test must not leave it behind.
        if let Ok(adm) = spindle_tgt::Tgtadm::new(self.control) {
            let _ = adm.shutdown_daemon();
            for _ in 0..100 {
                if adm.remove_stale_socket() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let pool = self.dir().join("embedded/pool");
        for _ in 0..50 {
            let ok = Command::new("umount").arg(&pool).stderr(Stdio::null()).status();
            if ok.is_ok_and(|s| s.success()) || !is_mounted(&pool) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The live tgtd serving control port `control`, found in /proc by its arguments.
fn tgtd_pid(control: u16) -> Option<i32> {
    let control = control.to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_tgtd = args.first().is_some_and(|a| a.ends_with(b"tgtd"));
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"-C" && w[1] == control.as_bytes());
        (is_tgtd && ours).then_some(pid)
    })
}

fn is_mounted(p: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = p.to_string_lossy();
    text.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

/// What `initiator` sees through every target the portal offers it: LUN number → (page 83 id
/// in the records' format, capacity).
fn seen(portal: &str, initiator: &str) -> Vec<(String, u32, String, u64)> {
    let mut out = Vec::new();
    for t in Discovery::send_targets(portal, initiator, None).unwrap() {
        let Ok(mut sess) = Session::login(portal, &t.name, initiator, None) else {
            continue;
        };
        for lun in sess.report_luns().unwrap() {
            let n = lun.number().unwrap();
            if n == 0 {
                continue;
            }
            let id = sess.inquiry_vpd83(lun).unwrap();
            let naa = id.naa_of_type(6).expect("an NAA-6 designator").hex();
            let cap = sess.read_capacity16(lun).unwrap().bytes();
            out.push((
                t.name.clone(),
                n,
                spindle_api::make_mp_page83_from_raw_page83(&naa).unwrap(),
                cap,
            ));
        }
        sess.logout().unwrap();
    }
    out.sort();
    out
}

/// The (target, LUN) under which `initiator` sees the element with `page83`.
fn find(portal: &str, initiator: &str, page83: &str) -> (String, u16) {
    seen(portal, initiator)
        .into_iter()
        .find(|(_, _, id, _)| id == page83)
        .map(|(t, n, _, _)| (t, n as u16))
        .unwrap_or_else(|| panic!("{initiator} does not see {page83}: {:?}", seen(portal, initiator)))
}

fn write(portal: &str, at: &(String, u16), lba: u64, data: &[u8]) {
    let mut sess = Session::login(portal, &at.0, HOST_A, None).unwrap();
    sess.write(Lun::new(at.1), lba, data).unwrap();
    sess.synchronize_cache(Lun::new(at.1)).unwrap();
    sess.logout().unwrap();
}

fn read_byte(portal: &str, at: &(String, u16)) -> u8 {
    let mut sess = Session::login(portal, &at.0, HOST_A, None).unwrap();
    let data = sess.read(Lun::new(at.1), 0, 8).unwrap();
    sess.logout().unwrap();
    assert!(
        data.iter().all(|b| *b == data[0]),
        "mixed data in the first blocks"
    );
    data[0]
}

#[test]
fn administrator_lifecycle_over_http_with_the_embedded_linux_array() {
    if !can_run() {
        return;
    }
    let mut srv = Server::new();
    srv.start();
    let portal = srv.portal();

    // A wrong token is refused with its own exit code.
    let wrong = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["--url", &srv.url, "--token", "0000", "server", "list"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(6), "{wrong:?}");

    // The embedded array is served by a resident array program on a private socket.
    let socket = srv.dir().join("embedded/array.sock");
    let mode = std::fs::metadata(&socket)
        .unwrap_or_else(|e| panic!("no resident array program socket {}: {e}", socket.display()));
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // Register the embedded array; it reports its pool.
    let server = srv.json(&["server", "add", "local", "--embedded"]);
    assert_eq!(server["name"], "local");
    assert_eq!(server["vol_groups"][0]["vol_name"], "default", "{server}");
    assert!(server.get("admin_passwd").is_none() && server.get("passwd").is_none());
    // Its registration was kept in the private state home spindle serve was given.
    let registrations: Vec<_> = std::fs::read_dir(srv.state_home().join("registrations"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        registrations
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".json")),
        "no registration in {}: {registrations:?}",
        srv.state_home().display()
    );

    // A LUN, a group, a presentation: the initiator sees exactly that, with the right id and size.
    let lun = srv.json(&["lun", "create", "vm1", "--size", "64M"]);
    assert_eq!(lun["size"], 64 * MIB, "{lun}");
    // A thin LUN larger than its whole pool is made (thin LUNs take blocks as they are
    // written), and the administrator is told.
    let huge = srv.cli(&["lun", "create", "huge", "--size", "1P"]);
    let said = String::from_utf8_lossy(&huge.stderr);
    assert!(huge.status.success(), "{said}");
    assert!(
        said.contains("note: thin LUN 'huge' (1.0 PiB) is larger than its whole pool"),
        "{said}"
    );
    assert!(srv.cli(&["lun", "remove", "huge"]).status.success());
    let page83 = s(&lun, "page83_id");
    srv.json(&["group", "create", "hosts", HOST_A]);
    let presented = srv.json(&["present", "vm1", "hosts"]);
    assert_eq!(
        presented["access_grp_names"],
        serde_json::json!(["hosts"]),
        "{presented}"
    );
    let at = find(&portal, HOST_A, &page83);
    assert_eq!(seen(&portal, HOST_A).len(), 1);
    assert_eq!(seen(&portal, HOST_A)[0].3, 64 * MIB);
    assert!(seen(&portal, OUTSIDER).is_empty(), "an outsider sees LUNs");

    // tgtd killed with SIGKILL: nobody calls spindle, yet its supervision of the embedded array
    // brings tgtd back with the target, the ACL and the LUN's identity within seconds.
    let pid = tgtd_pid(srv.control).expect("the embedded tgtd runs");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("a pid"),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let back = tgtd_pid(srv.control).is_some_and(|p| p != pid)
            && Discovery::send_targets(&portal, HOST_A, None).is_ok_and(|t| !t.is_empty());
        if back {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tgtd was not brought back: {}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        find(&portal, HOST_A, &page83),
        at,
        "the LUN came back under another number"
    );
    assert!(seen(&portal, OUTSIDER).is_empty(), "the ACL did not come back");

    // Data through iSCSI, a snapshot, then new data.
    write(&portal, &at, 0, &vec![0xA1; 64 * 1024]);
    let snap = srv.json(&["snap", "create", "vm1", "snap1"]);
    assert_eq!(snap["kind"], "snapshot", "{snap}");
    write(&portal, &at, 0, &vec![0xB2; 64 * 1024]);
    let snaps = srv.json(&["snap", "list", "--lun", "vm1"]);
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps}");

    // A clone of the snapshot holds the old data; presented, the host reads it.
    let c1 = srv.json(&["clone", "from-snap", "snap1", "c1"]);
    srv.json(&["present", "c1", "hosts"]);
    let c1_at = find(&portal, HOST_A, &s(&c1, "page83_id"));
    assert_eq!(read_byte(&portal, &c1_at), 0xA1);
    assert_eq!(read_byte(&portal, &at), 0xB2);

    // Restore brings vm1 back to the snapshot (unpresented first: a presented LUN's restore
    // is refused by the array, and the refusal is reported as the guide's exception).
    let refused = srv.cli(&["snap", "restore", "snap1", "--lun", "vm1"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SnapRestoreNotSafeEx"),
        "{refused:?}"
    );
    srv.json(&["unpresent", "vm1", "hosts"]);
    srv.json(&["snap", "restore", "snap1", "--lun", "vm1"]);
    srv.json(&["present", "vm1", "hosts"]);
    let at = find(&portal, HOST_A, &page83);
    assert_eq!(read_byte(&portal, &at), 0xA1);

    // A clone of vm1 with enough data that a throttled split takes seconds; spindle is
    // restarted in the middle of it, and the job is picked up and finishes.
    let c2 = srv.json(&["clone", "create", "vm1", "c2"]);
    srv.json(&["present", "c2", "hosts"]);
    let c2_at = find(&portal, HOST_A, &s(&c2, "page83_id"));
    let chunk = vec![0xC3; MIB as usize];
    for i in 0..48u64 {
        write(&portal, &c2_at, i * 2048, &chunk);
    }
    // The array refuses to split a clone hosts are using (its data would be rewritten under
    // them): unpresented first.
    srv.json(&["unpresent", "c2", "hosts"]);
    let job = srv.json(&["clone", "split", "c2", "--no-wait"]);
    let job_id = s(
        if job.get("job").is_some() {
            &job["job"]
        } else {
            &job
        },
        "id",
    );
    std::thread::sleep(Duration::from_millis(700));
    let running = srv.json(&["job", "list", "--running"]);
    assert!(
        running
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job_id.as_str()),
        "the split is not running any more when spindle is stopped: {running}"
    );
    srv.stop();
    assert!(
        !socket.exists(),
        "the resident array program outlived spindle serve"
    );
    // It comes back with another portal: the registration follows, tgtd moves there with
    // every target and LUN, and the old portal closes.
    let old_portal = portal.clone();
    srv.portal_port = free_port();
    srv.start();
    let portal = srv.portal();
    let local = srv.json(&["server", "show", "local"]);
    assert!(
        local["extra_info"]
            .as_str()
            .unwrap()
            .contains(&format!("portal={portal}")),
        "{local}"
    );
    assert!(
        srv.log().contains(&format!(
            "storage server local follows the embedded array's new settings: portal {old_portal} → {portal}"
        )),
        "{}",
        srv.log()
    );
    let audit = srv.json(&["audit", "--limit", "20"]);
    let change = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["who"] == "spindle serve")
        .unwrap_or_else(|| panic!("the followed settings are not audited: {audit}"));
    assert_eq!(
        (change["action"].as_str(), change["server"].as_str()),
        (Some("server.update"), Some("local"))
    );
    assert!(
        change["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("portal {old_portal} → {portal}"))),
        "the audit entry does not say what changed: {change}"
    );
    assert_eq!(find(&portal, HOST_A, &page83), at);
    assert!(
        Discovery::send_targets(&old_portal, HOST_A, None).is_err(),
        "the old portal still answers"
    );
    // A change made inside tgtd behind spindle's back (the ACL entry removed with tgtadm) is
    // repaired by a refresh of the server.
    let adm = spindle_tgt::Tgtadm::new(srv.control).unwrap();
    let target = adm.target_by_name(&at.0).unwrap().unwrap();
    adm.unbind_initiator(target.tid, HOST_A).unwrap();
    assert!(seen(&portal, HOST_A).is_empty(), "the ACL entry was not removed");
    srv.json(&["server", "refresh", "local"]);
    assert_eq!(find(&portal, HOST_A, &page83), at);
    assert!(
        srv.log()
            .contains("did not serve the array's exports as recorded; corrected:"),
        "the repair was not logged: {}",
        srv.log()
    );
    // Another tgtd instance on the same portal: the old instance (which holds the portal)
    // is left and stops; the new one serves the same target and LUN.
    srv.stop();
    let old_control = srv.control;
    srv.control += 1;
    srv.start();
    assert_eq!(find(&portal, HOST_A, &page83), at);
    assert!(
        spindle_tgt::Tgtadm::new(old_control).unwrap().system().is_err(),
        "the old tgtd still runs"
    );
    assert!(srv
        .log()
        .contains(&format!("tgt_control {old_control} → {}", srv.control)));
    let watched = srv.cli(&["job", "watch", &job_id]);
    assert!(watched.status.success(), "job watch: {watched:?}\n{}", srv.log());
    let jobs = srv.json(&["job", "list"]);
    let finished = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == job_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("job {job_id} not listed: {jobs}"));
    assert_eq!(finished["state"], "succeeded", "{finished}");
    srv.json(&["present", "c2", "hosts"]);
    let c2_at = find(&portal, HOST_A, &s(&c2, "page83_id"));
    assert_eq!(read_byte(&portal, &c2_at), 0xC3);

    // Resize is what the initiator's READ CAPACITY reports.
    let grown = srv.json(&["lun", "resize", "vm1", "128M"]);
    assert_eq!(grown["size"], 128 * MIB);
    let sizes: Vec<u64> = seen(&portal, HOST_A)
        .into_iter()
        .filter(|(_, _, id, _)| *id == page83)
        .map(|(_, _, _, cap)| cap)
        .collect();
    assert_eq!(sizes, [128 * MIB]);

    // Many administrators at once on one array: concurrent creates all succeed, each LUN with
    // its own page 83 id; concurrent removes leave nothing behind.
    let names: Vec<String> = (0..12).map(|i| format!("par-{i}")).collect();
    let spawn_all = |verb: &[&str], extra: &[&str]| -> Vec<Child> {
        names
            .iter()
            .map(|n| {
                Command::new(env!("CARGO_BIN_EXE_spindle"))
                    .args(["--url", &srv.url, "--output", "json"])
                    .arg("--token-file")
                    .arg(srv.dir().join("token"))
                    .args(verb)
                    .arg(n)
                    .args(extra)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect()
    };
    let created: Vec<Value> = spawn_all(&["lun", "create"], &["--size", "16M"])
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "concurrent create: {out:?}");
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    let ids: std::collections::BTreeSet<String> = created.iter().map(|v| s(v, "page83_id")).collect();
    assert_eq!(
        ids.len(),
        names.len(),
        "page 83 ids are not distinct: {created:?}"
    );
    assert!(!ids.contains(&page83));
    for c in spawn_all(&["lun", "remove"], &[]) {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "concurrent remove: {out:?}");
    }

    // Unknown names are the array's refusal with the name in the message; nothing changed.
    let unknown = srv.cli(&["lun", "show", "no-such-lun"]);
    assert_eq!(unknown.status.code(), Some(1), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-lun"));

    // A presented LUN cannot be removed; unpresented, everything goes away.
    let busy = srv.cli(&["lun", "remove", "vm1"]);
    assert_eq!(busy.status.code(), Some(1), "{busy:?}");
    for lun in ["vm1", "c1", "c2"] {
        srv.json(&["unpresent", lun, "hosts"]);
    }
    assert!(seen(&portal, HOST_A).is_empty());
    srv.json(&["lun", "remove", "c1"]);
    srv.json(&["snap", "remove", "snap1"]);
    srv.json(&["lun", "remove", "c2"]);
    srv.json(&["lun", "remove", "vm1"]);
    srv.json(&["group", "remove", "hosts"]);
    assert_eq!(srv.json(&["lun", "list"]), serde_json::json!([]));

    // Every mutation is in the audit log.
    let audit = srv.json(&["audit", "--limit", "500"]);
    let actions: Vec<String> = audit.as_array().unwrap().iter().map(|e| s(e, "action")).collect();
    for a in [
        "server.add",
        "lun.create",
        "lun.present",
        "snapshot.create",
        "clone.split",
        "lun.resize",
        "lun.remove",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "no {a} in the audit log: {actions:?}"
        );
    }
    srv.json(&["server", "remove", "local"]);

    // CHAP on the embedded array's data path: registered with it, hosts must log in with it.
    let secret = "embedded-Chap-Secret-77";
    let added = srv.cli_with_input(
        &[
            "--output",
            "json",
            "server",
            "add",
            "local",
            "--embedded",
            "--chap",
            "--username",
            "vmhosts",
            "--password-stdin",
        ],
        &format!("{secret}\n"),
    );
    assert!(added.status.success(), "{added:?}");
    srv.json(&["lun", "create", "guarded", "--size", "16M"]);
    srv.json(&["group", "create", "hosts", HOST_A]);
    srv.json(&["present", "guarded", "hosts"]);
    assert!(seen(&portal, HOST_A).is_empty(), "a host logged in without CHAP");
    let target = Discovery::send_targets(&portal, HOST_A, None).unwrap()[0]
        .name
        .clone();
    let wrong = Chap::new("vmhosts", "not-the-Secret-77");
    assert!(Session::login(&portal, &target, HOST_A, Some(&wrong)).is_err());
    let right = Chap::new("vmhosts", secret);
    let mut sess = Session::login(&portal, &target, HOST_A, Some(&right)).unwrap();
    assert_eq!(sess.report_luns().unwrap().len(), 2, "LUN 0 and the guarded LUN");
    sess.logout().unwrap();
    let shown = srv.cli(&["--output", "json", "server", "show", "local"]);
    for text in [&added.stdout, &added.stderr, &shown.stdout] {
        assert!(!String::from_utf8_lossy(text).contains(secret));
    }
    // The secret rotated: the old one no longer logs in, the new one does.
    let rotated = "rotated-Chap-Secret-88";
    let set = srv.cli_with_input(
        &[
            "--output",
            "json",
            "server",
            "set",
            "local",
            "--chap",
            "--username",
            "vmhosts",
            "--password-stdin",
        ],
        &format!("{rotated}\n"),
    );
    assert!(set.status.success(), "{set:?}");
    assert!(!String::from_utf8_lossy(&set.stdout).contains(rotated));
    assert!(Session::login(&portal, &target, HOST_A, Some(&right)).is_err());
    let sess = Session::login(&portal, &target, HOST_A, Some(&Chap::new("vmhosts", rotated))).unwrap();
    sess.logout().unwrap();
    // The embedded array's location is spindle serve's flags: server set refuses it, naming
    // the setting and saying where it is changed, and changes nothing.
    let before = srv.json(&["server", "show", "local"]);
    let bad = srv.cli(&[
        "server",
        "set",
        "local",
        "--extra-info",
        "pools=default:/nonexistent;tgt_control=7",
    ]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("key extra_info") && said.contains("spindle serve's flags"),
        "{bad:?}"
    );
    assert_eq!(
        srv.json(&["server", "show", "local"])["extra_info"],
        before["extra_info"]
    );
    // CHAP off: hosts log in without it again.
    srv.json(&["server", "set", "local", "--no-chap"]);
    assert_eq!(
        seen(&portal, HOST_A).len(),
        1,
        "no CHAP: the LUN is seen without it"
    );
    assert!(
        !srv.log().contains(secret) && !srv.log().contains(rotated),
        "a CHAP secret is in the server's log"
    );
    srv.json(&["unpresent", "guarded", "hosts"]);
    srv.json(&["lun", "remove", "guarded"]);
}
