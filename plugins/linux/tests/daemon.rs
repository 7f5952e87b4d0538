//! The resident array program (`spindle-array daemon`): it serves the same array as one-shot
//! runs, at the same time, with the same answers; many requests at once; its socket is
//! private and its own; it stops gracefully when its standard input closes; the supervisor
//! restarts it; and the plug-in uses it when `array_socket` names it, falling back to one-shot
//! runs when nothing listens there. Crashes at every step are in `tests/crash.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_api::Method;
use spindle_plugin_linux::config::ArrayConfig;
use spindle_plugin_linux::daemon::Resident;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn resident_and_one_shot_runs_serve_one_array_alike() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let d = Daemon::start(&[]);
    let via = d.via();
    let a = ok_via(
        &via,
        &cfg,
        json!({"op": "create", "name": "a", "pool": "p0", "size": 8 << 20}),
    );
    let b = ok(
        &cfg,
        json!({"op": "create", "name": "b", "pool": "p0", "size": 8 << 20}),
    );
    fill(std::path::Path::new(a["path"].as_str().unwrap()), 0, 1 << 20, 7);
    let s = ok(&cfg, json!({"op": "snapshot", "uuid": a["uuid"]}));
    let c = ok_via(
        &via,
        &cfg,
        json!({"op": "clone-from-snap", "uuid": a["uuid"], "snap": s["uuid"]}),
    );
    assert_eq!(
        read(std::path::Path::new(c["path"].as_str().unwrap()), 0, 1),
        vec![7]
    );
    // Both see every element, with the same records.
    for op in ["list", "snapshots", "clones"] {
        assert_eq!(
            ok_via(&via, &cfg, json!({"op": op})),
            ok(&cfg, json!({"op": op})),
            "{op}"
        );
    }
    assert_eq!(
        names(&ok_via(&via, &cfg, json!({"op": "list"}))),
        BTreeSet::from([
            "a".to_string(),
            "b".to_string(),
            c["name"].as_str().unwrap().to_string()
        ])
    );
    // Serials are taken from one counter whoever serves the request.
    let ids: BTreeSet<_> = [&a, &b, &s, &c]
        .iter()
        .map(|e| e["page83_id"].clone().to_string())
        .collect();
    assert_eq!(ids.len(), 4);
    // A refusal is the same exception either way, and changes nothing.
    let bad = json!({"op": "create", "name": "../x", "pool": "p0", "size": 1 << 20});
    let (_, one) = request(&cfg, bad.clone(), &[]);
    let (_, res) = socket_request(&d.socket, &cfg, bad);
    assert_eq!(one, res);
    assert_eq!(res["error"]["exception"], "ValueFormatEx", "{res}");
    // Garbage on the socket is answered, not fatal.
    let mut sock = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    use std::io::{Read, Write};
    sock.write_all(b"{not json").unwrap();
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let mut text = String::new();
    sock.read_to_string(&mut text).unwrap();
    let v: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["error"]["exception"], "ValueFormatEx", "{v}");
    ok_via(&via, &cfg, json!({"op": "remove", "uuid": c["uuid"]}));
    ok_via(&via, &cfg, json!({"op": "snap-remove", "snap": s["uuid"]}));
    ok(&cfg, json!({"op": "remove", "uuid": b["uuid"]}));
    assert_eq!(ok_via(&via, &cfg, json!({"op": "fsck"})), json!([]));
    assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]));
}

#[test]
fn many_requests_at_once() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let d = Daemon::start(&[]);
    let ids: Vec<Vec<String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|t| {
                let (cfg, via) = (&cfg, d.via());
                sc.spawn(move || {
                    let mut ids = Vec::new();
                    for i in 0..4 {
                        let l = ok_via(
                            &via,
                            cfg,
                            json!({"op": "create", "name": format!("t{t}-{i}"), "pool": "p0", "size": 1 << 20}),
                        );
                        let s = ok_via(&via, cfg, json!({"op": "snapshot", "uuid": l["uuid"]}));
                        ok_via(&via, cfg, json!({"op": "list"}));
                        ids.push(l["page83_id"].as_str().unwrap().to_string());
                        ids.push(s["page83_id"].as_str().unwrap().to_string());
                        ok_via(&via, cfg, json!({"op": "snap-remove", "snap": s["uuid"]}));
                        if i % 2 == 0 {
                            ok_via(&via, cfg, json!({"op": "remove", "uuid": l["uuid"]}));
                        }
                    }
                    ids
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<String> = ids.into_iter().flatten().collect();
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "page 83 ids were handed out twice");
    assert_eq!(ok(&cfg, json!({"op": "list"})).as_array().unwrap().len(), 16);
    assert_eq!(ok_via(&d.via(), &cfg, json!({"op": "fsck"})), json!([]));
}

/// The resident program answers an insert once its files are durable and commits it after
/// the answer, holding the array's lock until then: every request after the answer, served
/// by any of its engines or by a one-shot run, finds the new element, and the page 83 ids
/// handed out stay distinct.
#[test]
fn an_answered_insert_is_found_by_every_later_request() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let d = Daemon::start(&[]);
    let mut ids = BTreeSet::new();
    for i in 0..30 {
        let l = ok_via(
            &d.via(),
            &cfg,
            json!({"op": "create", "name": format!("n{i}"), "pool": "p0", "size": 1 << 20}),
        );
        let s = ok_via(&d.via(), &cfg, json!({"op": "snapshot", "uuid": l["uuid"]}));
        for e in [&l, &s] {
            let got = ok_via(&d.via(), &cfg, json!({"op": "get", "uuid": e["uuid"]}));
            assert_eq!(got["page83_id"], e["page83_id"], "{i}: {got}");
            assert!(
                ids.insert(e["page83_id"].as_str().unwrap().to_string()),
                "{i}: {e}"
            );
        }
        if i % 10 == 0 {
            let got = ok(&cfg, json!({"op": "get", "uuid": s["uuid"]}));
            assert_eq!(got["page83_id"], s["page83_id"], "{i}: {got}");
        }
    }
    assert_eq!(ok(&cfg, json!({"op": "list"})).as_array().unwrap().len(), 30);
    assert_eq!(ok_via(&d.via(), &cfg, json!({"op": "fsck"})), json!([]));
}

#[test]
fn the_socket_is_private_single_and_never_replaces_a_file() {
    if !can_mount() {
        return;
    }
    let mut d = Daemon::start(&[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    // A second program on the same socket refuses to start and leaves the first serving.
    let out = std::process::Command::new(exe())
        .args(["daemon", "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already serves"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::os::unix::net::UnixStream::connect(&d.socket).is_ok());
    // Killed, it leaves a stale socket, which the next program replaces.
    d.child.kill().unwrap();
    d.wait_exit();
    assert!(d.socket.exists());
    let dir = tempfile::Builder::new().prefix("spindle-d-").tempdir().unwrap();
    let socket = d.socket.clone();
    let again = Daemon::start_at(dir, socket.clone(), &[]);
    assert!(std::os::unix::net::UnixStream::connect(&again.socket).is_ok());
    drop(again);
    // A path that is not a socket is never removed.
    let plain = d.dir.path().join("plain");
    std::fs::write(&plain, b"keep").unwrap();
    let out = std::process::Command::new(exe())
        .args(["daemon", "--socket"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read(&plain).unwrap(), b"keep");
    // Relative paths and unknown arguments are usage errors.
    for args in [vec!["daemon", "--socket", "rel.sock"], vec!["daemon", "--bogus"]] {
        let st = std::process::Command::new(exe()).args(&args).output().unwrap();
        assert_eq!(st.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn closing_standard_input_stops_it_after_the_request_in_flight() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let mut d = Daemon::start(&[]);
    ok_via(
        &d.via(),
        &cfg,
        json!({"op": "create", "name": "a", "pool": "p0", "size": 1 << 20}),
    );
    drop(d.child.stdin.take());
    let st = d.wait_exit();
    assert!(st.success(), "{st}");
    assert!(!d.socket.exists(), "the socket outlived the program");
    assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]));
}

#[test]
fn the_supervisor_restarts_a_killed_program() {
    let dir = tempfile::Builder::new().prefix("spindle-d-").tempdir().unwrap();
    let socket = dir.path().join("array.sock");
    let mut r = Resident::start(&program(), &socket, &dir.path().join("served.json")).unwrap();
    assert!(r.wait_ready(Duration::from_secs(5)));
    let first = r.pid().unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(first as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let start = Instant::now();
    loop {
        if r.pid().is_some_and(|p| p != first) && std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not restarted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = r.pid().unwrap();
    r.stop();
    assert!(r.pid().is_none());
    assert!(!socket.exists());
    // It was stopped, not killed: /proc no longer has it.
    assert!(!PathBuf::from(format!("/proc/{second}")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_uses_the_socket_and_runs_the_program_when_nothing_listens() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let tgt = Tgt::new();
    let m = Mgr::new().await;
    let d = Daemon::start(&[]);
    let pools = format!("pools=p0:{};{}", pool.display(), tgt.extra_info());
    // No program to run: only the socket can answer.
    let socket_only = ss_record(
        "localhost",
        &format!(
            "{pools};array_program=/nonexistent/spindle-array;array_socket={}",
            d.socket.display()
        ),
    );
    m.ok(Method::Validate, json!({"ss_record": socket_only})).await;
    let status = m.ok(Method::GetStatus, json!({"ss_record": socket_only})).await;
    assert_eq!(status, "ONLINE");
    // Nothing listening: the program runs once per request.
    let nobody = d.dir.path().join("nobody.sock");
    let fallback = ss_record(
        "localhost",
        &format!(
            "{pools};array_program={};array_socket={}",
            program().display(),
            nobody.display()
        ),
    );
    m.ok(Method::Validate, json!({"ss_record": fallback})).await;
    let none = ss_record(
        "localhost",
        &format!(
            "{pools};array_program=/nonexistent/spindle-array;array_socket={}",
            nobody.display()
        ),
    );
    let e = m.raised(Method::Validate, json!({"ss_record": none})).await;
    assert!(e.message.contains("/nonexistent/spindle-array"), "{e:?}");
    // array_socket is a checked path.
    for bad in [
        "array_socket=rel.sock",
        "array_socket=/a/../b",
        "array_socket=/a b",
    ] {
        let ss = ss_record("localhost", &format!("{pools};{bad}"));
        let e = m.raised(Method::Validate, json!({"ss_record": ss})).await;
        assert!(e.message.contains("array_socket"), "{bad}: {e:?}");
    }
}

#[test]
fn an_array_made_afresh_is_not_served_from_the_old_database() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let cfg = config(&pool);
    let d = Daemon::start(&[]);
    let via = d.via();
    ok_via(
        &via,
        &cfg,
        json!({"op": "create", "name": "old", "pool": "p0", "size": 1 << 20}),
    );
    let old_id = ok_via(&via, &cfg, json!({"op": "info"}))["array_id"].clone();
    // The administrator wipes the array and starts again in the same directory.
    for e in std::fs::read_dir(&pool).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    // A one-shot run makes the new array first; the resident program must then serve it.
    let new_id = ok(&cfg, json!({"op": "info"}))["array_id"].clone();
    assert_ne!(old_id, new_id);
    assert_eq!(
        ok_via(&via, &cfg, json!({"op": "info"}))["array_id"],
        new_id,
        "the old array's identity was served"
    );
    assert_eq!(ok_via(&via, &cfg, json!({"op": "list"})), json!([]));
}

/// Through `via`: group `ga` of [`INIT_A`], a 4 MiB LUN `name` presented to it, seen by
/// `INIT_A` on `tgt`'s portal as LUN 1. Returns the LUN's record and what `INIT_A` sees.
fn export_one_lun(via: &Via, cfg: &ArrayConfig, tgt: &Tgt, name: &str) -> (Value, Vec<(String, Vec<u32>)>) {
    ok_via(
        via,
        cfg,
        json!({"op": "group-create", "groups": [{"name": "ga", "entries": [INIT_A]}]}),
    );
    let lun = ok_via(
        via,
        cfg,
        json!({"op": "create", "name": name, "pool": "p0", "size": 4 << 20, "thin": true}),
    );
    ok_via(
        via,
        cfg,
        json!({"op": "present", "uuid": lun["uuid"], "groups": ["ga"]}),
    );
    let want = vec![("iqn.2025-01.org.example:array:ga".to_string(), vec![1])];
    assert_eq!(visible(&tgt.portal(), INIT_A, None), want);
    (lun, want)
}

/// An array on a file system of its own with one LUN (`lun`) presented to group `ga`, which
/// `INIT_A` sees (`want`), served by a resident program and a tgtd of their own: where the
/// watch tests start. Fields drop in order: the program first, the file system last.
struct ServedLun {
    d: Daemon,
    cfg: ArrayConfig,
    tgt: Tgt,
    lun: Value,
    want: Vec<(String, Vec<u32>)>,
    _fs: TestFs,
}

fn served_lun(name: &str) -> ServedLun {
    let fs = TestFs::new(Kind::Xfs, 512);
    let tgt = Tgt::new();
    let cfg = tgt_config(&fs.pool("p0"), &tgt);
    let d = Daemon::start(&[]);
    let (lun, want) = export_one_lun(&d.via(), &cfg, &tgt, name);
    ServedLun {
        d,
        cfg,
        tgt,
        lun,
        want,
        _fs: fs,
    }
}

/// Waits (at most 20 s) until `INIT_A` sees `want` on `tgt`'s portal; connections made while
/// a restarted tgtd is still being configured may fail, so it polls.
fn wait_export(tgt: &Tgt, want: &[(String, Vec<u32>)]) {
    wait_export_on(&tgt.portal(), want);
}

/// [`wait_export`] on `portal`.
fn wait_export_on(portal: &str, want: &[(String, Vec<u32>)]) {
    let start = Instant::now();
    while try_visible(portal, INIT_A, None).as_deref() != Ok(want) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the export was not restored"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The resident program watches tgtd for the arrays it serves: a tgtd killed with SIGKILL is
/// back, with the array's target, ACL and LUN, while nobody makes a request.
#[test]
fn a_killed_tgtd_comes_back_with_no_request() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let s = served_lun("watched");
    let before = s.tgt.pid();
    s.tgt.kill9();
    let start = Instant::now();
    while s.tgt.pid().is_none() || s.tgt.pid() == before {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tgtd was not restarted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Restarted; the target and its LUN follow within the same check.
    wait_export(&s.tgt, &s.want);
    assert!(visible(&s.tgt.portal(), INIT_B, None).is_empty());
    // And it says so (once the watch that restored it has finished; the export is visible a
    // moment before).
    let said = |log: &str| log.contains("not running: started again") && log.contains("corrected:");
    let start = Instant::now();
    let mut log = String::new();
    while !said(&log) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        log = std::fs::read_to_string(s.d.dir.path().join("daemon.log")).unwrap_or_default();
    }
    assert!(said(&log), "{log}");
}

/// Sends SIGCONT to a stopped tgtd when dropped, so that a failing test leaves none stopped.
struct Continue(u32);

impl Drop for Continue {
    fn drop(&mut self) {
        let _ = run("kill", &["-CONT", &self.0.to_string()]);
    }
}

/// A tgtd that listens but does not answer (stopped with SIGSTOP) holds up none of the
/// array's requests that leave its exports alone: the watch asks it with no lock and no engine
/// held. Were it asked under the array's lock, each request would wait for the question's
/// 5 s timeout. The pool's first snapshot (which records what its file system can do) is among
/// them. A change of exports fails saying tgtd does not answer, with no second tgtd started,
/// and is applied once tgtd runs again.
#[test]
fn a_stopped_tgtd_holds_up_no_request_that_leaves_exports_alone() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let s = served_lun("kept");
    let pid = s.tgt.pid().unwrap();
    run("kill", &["-STOP", &pid.to_string()]).unwrap();
    let stopped = Continue(pid);
    // Past one watch interval: the watch is now waiting for the stopped tgtd.
    std::thread::sleep(Duration::from_secs(3));
    let start = Instant::now();
    for i in 0..3 {
        let l = ok_via(
            &s.d.via(),
            &s.cfg,
            json!({"op": "create", "name": format!("while-stopped-{i}"), "pool": "p0", "size": 1 << 20}),
        );
        ok_via(&s.d.via(), &s.cfg, json!({"op": "snapshot", "uuid": l["uuid"]}));
        ok_via(&s.d.via(), &s.cfg, json!({"op": "get", "uuid": s.lun["uuid"]}));
    }
    assert_eq!(
        ok_via(&s.d.via(), &s.cfg, json!({"op": "list"}))
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        ok_via(&s.d.via(), &s.cfg, json!({"op": "snapshots"}))
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "requests waited for the stopped tgtd ({:?})",
        start.elapsed()
    );
    // A change of exports needs tgtd: it fails once the question whether tgtd answers gives
    // up (5 s, not tgtadm's 30 s), saying so, and is applied when tgtd answers again. No
    // other tgtd is started meanwhile.
    let l = &ok_via(&s.d.via(), &s.cfg, json!({"op": "list"}))[1];
    let asked = Instant::now();
    let (_, refused) = request_via(
        &s.d.via(),
        &s.cfg,
        json!({"op": "present", "uuid": l["uuid"], "groups": ["ga"]}),
        &[],
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not answer"), "{refused}");
    // Not a timing assertion on the machine's speed: the refusal comes from a 5 s question,
    // where tgtadm's own timeout is 30 s.
    assert!(asked.elapsed() < Duration::from_secs(25), "{:?}", asked.elapsed());
    assert_eq!(s.tgt.pid(), Some(pid), "another tgtd was started");
    drop(stopped);
    let want: Vec<_> = s.want.iter().map(|(t, _)| (t.clone(), vec![1, 2])).collect();
    wait_export(&s.tgt, &want);
}

/// After a reboot (the resident program stopped, tgtd gone), a resident program started anew
/// serves the arrays it remembers, tgtd included, before any request; a remembered array
/// whose state was removed meanwhile is not made again.
#[test]
fn a_restarted_program_serves_its_arrays_again_with_no_request() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let tgt = Tgt::new();
    let (p0, p1) = (fs.pool("p0"), fs.pool("p1"));
    let cfg = tgt_config(&p0, &tgt);
    let removed = config(&p1);
    let mut d = Daemon::start(&[]);
    let via = d.via();
    let (lun, want) = export_one_lun(&via, &cfg, &tgt, "kept");
    ok_via(&via, &removed, json!({"op": "list"}));

    // Both arrays are remembered, in a private file.
    let served = d.dir.path().join("served.json");
    assert_eq!(
        std::fs::metadata(&served).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&served).unwrap();
    for pool in [&p0, &p1] {
        assert!(text.contains(pool.to_str().unwrap()), "{pool:?} not in {text}");
    }

    let removed_state = p1.join(".spindle-array");
    d.restart_after(|| {
        tgt.kill9();
        std::fs::remove_dir_all(&removed_state).unwrap();
    });
    wait_export(&tgt, &want);
    assert!(visible(&tgt.portal(), INIT_B, None).is_empty());
    // The LUN is the same one: its page 83 id and size, as the array lists it.
    let listed = ok_via(&via, &cfg, json!({"op": "list"}));
    assert_eq!(listed[0]["page83_id"], lun["page83_id"]);
    // Tried at every watch, never made again.
    std::thread::sleep(spindle_plugin_linux::daemon::TGTD_WATCH_INTERVAL * 2);
    assert!(!removed_state.exists());
}

/// A new portal given by a run the resident program does not serve (a one-shot run, while the
/// program holds the array under the old portal) moves tgtd there, and it is the portal kept:
/// the program's watch does not move tgtd back but follows the change, and after everything
/// restarts it restores the new portal, and says what it serves.
#[test]
fn a_portal_changed_by_any_run_is_the_one_kept() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let mut s = served_lun("kept");
    let new_portal = format!("127.0.0.1:{}", free_port());
    let mut moved = s.cfg.clone();
    moved.tgt.as_mut().unwrap().portal = new_portal.parse().unwrap();
    let report = ok(&moved, json!({"op": "export-sync"}));
    assert!(report["actions"].to_string().contains("moved tgtd"), "{report}");
    wait_export_on(&new_portal, &s.want);

    // The program's watch leaves tgtd on the new portal, and follows the change.
    let served = s.d.dir.path().join("served.json");
    let start = Instant::now();
    while !std::fs::read_to_string(&served).unwrap().contains(&new_portal) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the served file never followed the change"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(spindle_plugin_linux::daemon::TGTD_WATCH_INTERVAL * 2);
    assert_eq!(s.tgt.adm().portals().unwrap(), vec![new_portal.clone()]);

    // After a restart of everything, the new portal is the one restored.
    s.d.restart_after(|| s.tgt.kill9());
    wait_export_on(&new_portal, &s.want);
    assert_eq!(s.tgt.adm().portals().unwrap(), vec![new_portal.clone()]);
    let listed = ok_via(&s.d.via(), &moved, json!({"op": "list"}));
    assert_eq!(listed[0]["page83_id"], s.lun["page83_id"]);
    let log = std::fs::read_to_string(s.d.dir.path().join("daemon.log")).unwrap();
    assert!(
        log.contains(&format!("portal {new_portal}, 1 target(s), tgtd started")),
        "{log}"
    );
}

/// The resident program keeps watching an array whose pool went away (degraded): a tgtd
/// killed then is back with the other pools' LUNs, and once the pool is mounted again its
/// LUNs are served again, with their LUN numbers, while nobody makes a request. Its engine
/// used to be dropped at the first watch after the pool went away, and the array left
/// unwatched until the next request.
#[test]
fn a_degraded_array_stays_watched_and_its_pool_comes_back_with_no_request() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let other = TestFs::new(Kind::Xfs, 512);
    let tgt = Tgt::new();
    let mut cfg = tgt_config(&fs.pool("p0"), &tgt);
    cfg.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "p1".into(),
        path: other.mnt.clone(),
    });
    let d = Daemon::start(&[]);
    let via = d.via();
    let (_, want) = export_one_lun(&via, &cfg, &tgt, "l1");
    let l2 = ok_via(
        &via,
        &cfg,
        json!({"op": "create", "name": "l2", "pool": "p1", "size": 4 << 20}),
    );
    ok_via(
        &via,
        &cfg,
        json!({"op": "present", "uuid": l2["uuid"], "groups": ["ga"]}),
    );
    let target = want[0].0.clone();
    let both = vec![(target.clone(), vec![1, 2])];
    assert_eq!(visible(&tgt.portal(), INIT_A, None), both);

    other.unmount_lazily();
    // The watch takes the pool's LUN out of the export.
    wait_export(&tgt, &want);
    let before = tgt.pid();
    tgt.kill9();
    let start = Instant::now();
    while tgt.pid().is_none() || tgt.pid() == before {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tgtd was not restarted for the degraded array"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_export(&tgt, &want);
    other.remount();
    wait_export(&tgt, &both);
    drop(d);
}
