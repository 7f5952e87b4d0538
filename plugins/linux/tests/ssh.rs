//! The plug-in reaching the array over ssh: a private sshd on 127.0.0.1 (generated host key,
//! root login by key only, authorized keys and pid file in a temporary directory), a generated
//! client key and a known_hosts file; the array program runs on the "remote" side and starts
//! tgtd there.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_api::{ExceptionKind, Method};
use spindle_manager::CallError;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "spindle-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen");
}

fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    // "type base64 comment" → "type base64"
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// A private sshd. Dropping it kills it.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("spindle-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::write(
            d.join("authorized_keys"),
            format!("{}\n", public_key(&d.join("client_key"))),
        )
        .unwrap();
        // sshd insists on its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                 PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nLogLevel VERBOSE\n",
                hk = d.join("host_key").display(),
                pid = d.join("sshd.pid").display(),
                ak = d.join("authorized_keys").display(),
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let log = std::fs::File::create(d.join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd { dir, port, child };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            last = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
        }
        panic!("sshd did not start: {last}");
    }

    fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file holding `key` for this sshd's address.
    fn known_hosts(&self, name: &str, key: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("[127.0.0.1]:{} {key}\n", self.port)).unwrap();
        path
    }

    fn host_key(&self) -> String {
        public_key(&self.dir.path().join("host_key"))
    }

    /// Where the plug-in keeps its shared connections' sockets for this sshd.
    fn control_dir(&self) -> PathBuf {
        self.dir.path().join("mux")
    }

    fn extra_info(&self, known_hosts: &Path) -> String {
        format!(
            "ssh_key={};ssh_port={};known_hosts={};ssh_control_dir={}",
            self.client_key().display(),
            self.port,
            known_hosts.display(),
            self.control_dir().display()
        )
    }

    /// How many times a client authenticated (one per ssh connection; sessions over a shared
    /// connection do not authenticate again).
    fn logins(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("sshd.log"))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }
}

/// Control sockets in `dir`.
fn sockets(dir: &Path) -> usize {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_socket()))
            })
            .count()
        })
        .unwrap_or(0)
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Shared connections would outlive the test by their idle time (their sshd session
        // processes outlive the listener).
        for entry in std::fs::read_dir(self.control_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = Command::new("ssh")
                .arg("-o")
                .arg(format!("ControlPath={}", entry.path().display()))
                .args(["-O", "exit", "spindle-test"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_sshd() -> bool {
    let ok = Path::new(SSHD).exists();
    if !ok {
        eprintln!("skipping: {SSHD} is absent (Debian package openssh-server)");
    }
    ok
}

/// A remote array: an XFS pool `p0`, its tgtd and a private sshd; returns them with the
/// `extra_info` that reaches the array through that sshd, its host key trusted.
fn remote_array() -> (TestFs, Tgt, Sshd, String) {
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let tgt = Tgt::new();
    let sshd = Sshd::start();
    let kh = sshd.known_hosts("known_hosts", &sshd.host_key());
    let extra = format!("{};{}", local_extra_info(&pool, &tgt), sshd.extra_info(&kh));
    (fs, tgt, sshd, extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn create_present_list_remove_over_ssh() {
    if !can_mount() || !have_tgt() || !have_sshd() {
        return;
    }
    let (_fs, tgt, sshd, extra) = remote_array();
    let ss = ss_record("127.0.0.1", &extra);
    let m = Mgr::new().await;

    let info = m.ok(Method::GetInfo, json!({"ss_record": ss})).await;
    assert!(
        info["storage_desc"].as_str().unwrap().contains("running"),
        "{info}"
    );
    m.ok(
        Method::CreateAccessGroups,
        json!({"ss_record": ss, "access_grps": [{"grp_name": "ga", "grp_entries": [INIT_A]}]}),
    )
    .await;
    let se = json!({"se_type": "LUNType", "ss_uuid": ss["uuid"], "name": "over-ssh", "size": 8 << 20});
    let lun = m
        .ok(Method::Create, json!({"ss_record": ss, "se_record": se}))
        .await;
    assert!(lun["page83_id"].as_str().unwrap().starts_with("36"));
    let lun = m
        .ok(
            Method::StartPresent,
            json!({"ss_record": ss, "se_record": lun, "access_grp_names": ["ga"]}),
        )
        .await;
    assert_eq!(lun["access_grp_names"], json!(["ga"]));
    // tgtd, started by the array program inside the ssh session, outlived it.
    assert!(tgt.pid().is_some());
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])]
    );
    let listed = m.ok(Method::List, json!({"ss_record": ss})).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["over-ssh"]);
    assert_eq!(listed[0]["page83_id"], lun["page83_id"]);
    let lun = m
        .ok(
            Method::StopPresent,
            json!({"ss_record": ss, "se_record": lun, "access_grp_names": ["ga"]}),
        )
        .await;
    m.ok(Method::Remove, json!({"ss_record": ss, "se_record": lun}))
        .await;
    let listed: Value = m.ok(Method::List, json!({"ss_record": ss})).await;
    assert_eq!(listed, json!([]));
    assert_eq!(
        visible(&tgt.portal(), INIT_A, None),
        vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![])]
    );
    // Every request rode on one shared, authenticated connection.
    assert_eq!(sshd.logins(), 1);
    assert_eq!(sockets(&sshd.control_dir()), 1);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(sshd.control_dir()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
}

/// With `ssh_mux=no` every request opens (and authenticates) its own connection; so does
/// every request when the control directory is open to others, which the plug-in refuses to
/// use: anyone who can reach a control socket runs commands on the array without a key.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_private_control_directory_or_with_ssh_mux_no_each_request_logs_in() {
    if !can_mount() || !have_tgt() || !have_sshd() {
        return;
    }
    let (_fs, _tgt, sshd, base) = remote_array();
    let open = sshd.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let m = Mgr::new().await;
    let cases = [
        (format!("{base};ssh_mux=no"), sshd.control_dir()),
        (
            base.replace(
                &sshd.control_dir().display().to_string(),
                &open.display().to_string(),
            ),
            open.clone(),
        ),
    ];
    for (extra, dir) in cases {
        let before = sshd.logins();
        let ss = ss_record("127.0.0.1", &extra);
        for _ in 0..3 {
            m.ok(Method::GetStatus, json!({"ss_record": ss})).await;
        }
        // validate, then three getStatus.
        assert_eq!(sshd.logins() - before, 4, "{extra}");
        assert_eq!(sockets(&dir), 0, "{extra}");
    }
}

/// Whether the process `pid` has an array database (`array.db`) open.
fn holds_array_db(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.ends_with("array.db")))
}

/// With `array_socket=`, ssh runs `spindle-array --socket PATH` on the array's host, which
/// hands the request to the resident program there (whose engine then stays open), and serves
/// it itself once that program is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_resident_program_on_the_arrays_host_serves_requests_over_ssh() {
    if !can_mount() || !have_tgt() || !have_sshd() {
        return;
    }
    let (_fs, _tgt, _sshd, base) = remote_array();
    let mut d = Daemon::start(&[]);
    let pid = d.child.id();
    let ss = ss_record(
        "127.0.0.1",
        &format!("{base};array_socket={}", d.socket.display()),
    );
    let m = Mgr::new().await;
    assert!(!holds_array_db(pid));
    let se = json!({"se_type": "LUNType", "ss_uuid": ss["uuid"], "name": "resident", "size": 8 << 20});
    let lun = m
        .ok(Method::Create, json!({"ss_record": ss, "se_record": se}))
        .await;
    assert!(holds_array_db(pid), "the resident program never served the array");
    // Errors come back as the array's exceptions, through the resident program too.
    let e = m
        .raised(Method::Create, json!({"ss_record": ss, "se_record": se}))
        .await;
    assert_eq!(e.kind, ExceptionKind::InvalidValueEx, "{e:?}");
    assert!(e.message.contains("resident"), "{e:?}");
    drop(d.child.stdin.take());
    assert!(d.wait_exit().success());
    let listed = m.ok(Method::List, json!({"ss_record": ss})).await;
    assert_eq!(listed[0]["page83_id"], lun["page83_id"], "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_key_that_does_not_match_fails_clearly_without_prompting() {
    if !can_mount() || !have_tgt() || !have_sshd() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let tgt = Tgt::new();
    let sshd = Sshd::start();
    let other = sshd.dir.path().join("other_key");
    keygen(&other);
    let m = Mgr::new().await;
    for (file, key) in [
        ("wrong_known_hosts", public_key(&other)),
        ("empty_known_hosts", String::new()),
    ] {
        let kh = if key.is_empty() {
            let p = sshd.dir.path().join(file);
            std::fs::write(&p, "").unwrap();
            p
        } else {
            sshd.known_hosts(file, &key)
        };
        let extra = format!("{};{}", local_extra_info(&pool, &tgt), sshd.extra_info(&kh));
        let ss = ss_record("127.0.0.1", &extra);
        let started = Instant::now();
        let e = match m.call(Method::Validate, json!({"ss_record": ss})).await {
            Err(CallError::Raised(e)) => e,
            other => panic!("{file}: validate should raise, got {other:?}"),
        };
        assert!(started.elapsed() < Duration::from_secs(30), "no hang");
        eprintln!("{file}: {e}");
        assert_eq!(e.kind, ExceptionKind::InvalidStorageArrayEx, "{e}");
        assert!(
            e.message.contains("host key could not be verified")
                && e.message.contains(&kh.display().to_string()),
            "{file}: {e}"
        );
        // Any other method fails the same way (the manager validates first).
        let e = m.call(Method::List, json!({"ss_record": ss})).await.unwrap_err();
        assert!(e.to_string().contains("host key"), "{e}");
    }
    assert!(tgt.pid().is_none(), "the array was never contacted");
}
