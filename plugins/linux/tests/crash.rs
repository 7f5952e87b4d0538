//! Crash safety: for every operation and every step name, run `spindle-array` with
//! `SPINDLE_ARRAY_CRASH_AT=<step>` (it aborts there), then run another request and check
//! that recovery left the array consistent: no pending intents, no orphan files, every listed
//! element has its file at the right size, nothing that existed before is lost, and the
//! operation either happened completely or not at all.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_plugin_linux::config::ArrayConfig;
use spindle_plugin_linux::crash::{CRASH_ENV, STEPS};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn all_uuids(via: &Via, cfg: &ArrayConfig) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = ok_via(via, cfg, json!({"op": "list"}))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_string())
        .collect();
    s.extend(
        ok_via(via, cfg, json!({"op": "snapshots"}))
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["uuid"].as_str().unwrap().to_string()),
    );
    s
}

fn steps(op: &str) -> &'static [&'static str] {
    STEPS.iter().find(|(o, _)| *o == op).unwrap().1
}

/// Sets up what `op` needs (fresh elements per run) and returns the request to crash.
fn setup(via: &Via, cfg: &ArrayConfig, op: &str, n: usize) -> Value {
    let lun = ok_via(
        via,
        cfg,
        json!({"op": "create", "name": format!("{op}-{n}"), "pool": "p0", "size": 4 << 20}),
    );
    fill(std::path::Path::new(lun["path"].as_str().unwrap()), 0, 1 << 20, 9);
    let u = lun["uuid"].clone();
    match op {
        "create" => {
            json!({"op": "create", "name": format!("{op}-{n}-new"), "pool": "p0", "size": 3 << 20, "thin": false})
        }
        "resize" => json!({"op": "resize", "uuid": u, "size": 12 << 20}),
        "remove" => json!({"op": "remove", "uuid": u}),
        "snapshot" => json!({"op": "snapshot", "uuid": u}),
        "multisnap" => {
            let b = ok_via(
                via,
                cfg,
                json!({"op": "create", "name": format!("{op}-{n}-b"), "pool": "p0", "size": 2 << 20}),
            );
            json!({"op": "multi-snapshot", "uuids": [u, b["uuid"]]})
        }
        "snapremove" => {
            let s = ok_via(via, cfg, json!({"op": "snapshot", "uuid": u}));
            json!({"op": "snap-remove", "snap": s["uuid"]})
        }
        "clone" => json!({"op": "clone", "uuid": u}),
        "snapclone" => {
            let s = ok_via(via, cfg, json!({"op": "snapshot", "uuid": u}));
            json!({"op": "clone-from-snap", "uuid": u, "snap": s["uuid"]})
        }
        "restore" => {
            let s = ok_via(via, cfg, json!({"op": "snapshot", "uuid": u}));
            fill(
                std::path::Path::new(lun["path"].as_str().unwrap()),
                0,
                1 << 20,
                10,
            );
            json!({"op": "restore", "snap": s["uuid"], "uuid": u})
        }
        "split" => {
            let c = ok_via(via, cfg, json!({"op": "clone", "uuid": u}));
            json!({"op": "split-start", "uuid": c["uuid"]})
        }
        other => panic!("no setup for {other}"),
    }
}

fn check_after(
    via: &Via,
    cfg: &ArrayConfig,
    step: &str,
    before: &BTreeSet<String>,
    req: &Value,
    out: &Value,
) {
    // A split's worker may still run (or have crashed): wait until it is settled.
    if let Some(h) = out["ok"]["handle"].as_str() {
        let start = Instant::now();
        loop {
            let (_, v) = request_via(via, cfg, json!({"op": "split-progress", "handle": h}), &[]);
            if v.get("error").is_some() || v["ok"]["progress"].is_null() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{step}: split never settled"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // After `split.spawned` the request is gone but its worker runs on: wait for it.
    let start = Instant::now();
    let problems = loop {
        let p = ok_via(via, cfg, json!({"op": "fsck"}));
        let waiting = p
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap_or("").contains("(split,"));
        if !waiting || start.elapsed() > Duration::from_secs(60) {
            break p;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(problems, json!([]), "{step}: inconsistent after recovery");
    let after = all_uuids(via, cfg);
    let lost: Vec<_> = before.difference(&after).collect();
    match req["op"].as_str().unwrap() {
        "remove" | "snap-remove" => {
            let target = req["uuid"].as_str().or(req["snap"].as_str()).unwrap();
            assert!(lost.iter().all(|u| *u == target), "{step}: lost {lost:?}");
        }
        _ => assert!(lost.is_empty(), "{step}: lost {lost:?}"),
    }
    let new: Vec<_> = after.difference(before).collect();
    assert!(new.len() <= 1, "{step}: {new:?}");
    // Before `prepared` the operation is rolled back; from `prepared` on, rolled forward. An
    // operation that adds elements rolls forward as soon as its new files are complete and
    // marked so (`partial`), because its answer may already have been given.
    let adds = matches!(
        req["op"].as_str().unwrap(),
        "create" | "snapshot" | "multi-snapshot" | "clone" | "clone-from-snap"
    );
    let forward = [".prepared", ".renamed", ".applied", "split.spawned"]
        .iter()
        .any(|s| step.ends_with(s))
        || (adds && step.ends_with(".partial"));
    match req["op"].as_str().unwrap() {
        "create" | "snapshot" | "multi-snapshot" | "clone" | "clone-from-snap" => {
            assert_eq!(new.len(), usize::from(forward), "{step}: new elements {new:?}")
        }
        "remove" | "snap-remove" => assert_eq!(lost.len(), usize::from(forward), "{step}"),
        "split-start" => {
            let e = ok_via(via, cfg, json!({"op": "get", "uuid": req["uuid"]}));
            let want = if forward { "LUNType" } else { "SnapCloneType" };
            assert_eq!(e["se_type"], want, "{step}");
        }
        "resize" => {
            let e = ok_via(via, cfg, json!({"op": "get", "uuid": req["uuid"]}));
            assert_eq!(e["size"], if forward { 12 << 20 } else { 4 << 20 }, "{step}");
        }
        "restore" => {
            let e = ok_via(via, cfg, json!({"op": "get", "uuid": req["uuid"]}));
            let byte = read(std::path::Path::new(e["path"].as_str().unwrap()), 0, 1)[0];
            assert_eq!(byte, if forward { 9 } else { 10 }, "{step}");
        }
        _ => {}
    }
    if req["op"] == "resize" {
        let e = ok_via(via, cfg, json!({"op": "get", "uuid": req["uuid"]}));
        assert!(e["size"] == 4 << 20 || e["size"] == 12 << 20, "{step}: {e}");
    }
}

/// Whose death is tested and who recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// A one-shot run dies; the next one-shot run recovers.
    OneShot,
    /// A one-shot run dies while a resident program serves the array; the resident program's
    /// next request recovers ([`spindle_plugin_linux::Engine::resume`]).
    OneShotBesideResident,
    /// The resident program dies on the request; a one-shot run recovers.
    Resident,
}

fn crash_all(cfg: &ArrayConfig, ops: &[&str], mode: Crash) {
    let healthy = (mode == Crash::OneShotBesideResident).then(|| Daemon::start(&[]));
    let via = healthy.as_ref().map(Daemon::via).unwrap_or(Via::Program);
    let mut n = 0;
    for op in ops {
        for step in steps(op) {
            n += 1;
            let req = setup(&via, cfg, op, n);
            let before = all_uuids(&via, cfg);
            // The resident program answers an insert once its files are durable, and makes
            // its commit (step `prepared`) after the answer.
            let after_answer = mode == Crash::Resident
                && matches!(*op, "create" | "snapshot" | "clone" | "snapclone")
                && step.ends_with(".prepared");
            let (success, out) = if mode == Crash::Resident {
                let mut d = Daemon::start(&[(CRASH_ENV, step)]);
                let (answered, out) = socket_request(&d.socket, cfg, req.clone());
                if !answered || after_answer {
                    assert!(!d.wait_exit().success(), "{step}: the program did not abort");
                }
                (out.get("ok").is_some(), out)
            } else {
                let (success, out) = request(cfg, req.clone(), &[(CRASH_ENV, step)]);
                (success, out)
            };
            // Request-side steps abort the program; worker-side split steps abort the worker.
            let worker_side = matches!(*step, "split.copied" | "split.prepared" | "split.renamed");
            assert_eq!(
                success,
                worker_side || after_answer,
                "{step}: the program did not stop at the step ({out})"
            );
            check_after(&via, cfg, step, &before, &req, &out);
        }
    }
}

const ALL_ON_XFS: &[&str] = &[
    "create",
    "resize",
    "remove",
    "snapshot",
    "snapremove",
    "clone",
    "snapclone",
    "restore",
    "split",
];

#[test]
fn every_step_of_every_operation_recovers_on_xfs() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    crash_all(&cfg, ALL_ON_XFS, Crash::OneShot);
}

#[test]
fn every_step_recovers_when_the_resident_program_dies() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    crash_all(&cfg, ALL_ON_XFS, Crash::Resident);
}

#[test]
fn a_resident_program_recovers_what_a_dead_one_shot_run_left() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    crash_all(&cfg, ALL_ON_XFS, Crash::OneShotBesideResident);
}

#[test]
fn every_step_of_multi_snapshot_recovers_on_btrfs() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Btrfs, 512);
    let cfg = config(&fs.pool("p0"));
    crash_all(&cfg, &["multisnap"], Crash::OneShot);
}

#[test]
fn orphans_are_removed_and_foreign_files_kept() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let cfg = config(&pool);
    ok(
        &cfg,
        json!({"op": "create", "name": "keep", "pool": "p0", "size": 1 << 20}),
    );
    let orphan = pool.join("0e0f6a2c-1d3b-4d59-9a53-2f0c1b7e8d90.img");
    let partial = pool.join(".0e0f6a2c-1d3b-4d59-9a53-2f0c1b7e8d91.partial");
    let foreign = pool.join("notes.txt");
    let foreign_img = pool.join("disk.img");
    for p in [&orphan, &partial, &foreign, &foreign_img] {
        std::fs::write(p, b"x").unwrap();
    }
    assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]));
    assert!(!orphan.exists() && !partial.exists());
    assert!(foreign.exists() && foreign_img.exists());
}

/// What a power cut during or after an operation that adds elements can leave: runs `op`
/// (set up as [`setup`] does) and stops the program after its one commit and its flushes,
/// before it clears its in-flight marker, then applies `lose` to the database, as a power cut
/// would have left it. Returns the elements before, the operation's plan and its (first) new
/// file.
fn stopped_after_its_commit(
    cfg: &ArrayConfig,
    op: &str,
    n: usize,
    lose: impl FnOnce(&rusqlite::Connection),
) -> (BTreeSet<String>, Value, std::path::PathBuf) {
    let req = setup(&Via::Program, cfg, op, n);
    let before = all_uuids(&Via::Program, cfg);
    let step = format!("{op}.prepared");
    let (success, out) = request(cfg, req, &[(CRASH_ENV, step.as_str())]);
    assert!(!success, "{step}: {out}");
    let conn = rusqlite::Connection::open(cfg.state_dir().unwrap().join("array.db")).unwrap();
    let plan: String = conn
        .query_row("SELECT plan FROM intents", [], |r| r.get(0))
        .unwrap();
    lose(&conn);
    drop(conn);
    let plan: Value = serde_json::from_str(&plan).unwrap();
    let dest = std::path::PathBuf::from(plan["moves"][0]["dest"].as_str().unwrap());
    assert!(dest.exists(), "{step}: {}", dest.display());
    (before, plan, dest)
}

/// The one commit of an operation that adds elements (its intent, step `applied`, and its new
/// rows) found on disk while its new files are not (a disk that reorders or loses writes: the
/// commit is made only after the files' flush). Simulated by stopping the program after that
/// commit. New files complete and marked: the operation stands. A file without its mark:
/// rolled back, its rows deleted and the file removed.
#[test]
fn a_commit_ahead_of_its_files_is_checked_against_their_marks() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let cfg = config(&pool);
    let mut n = 0;
    for (op, unmark) in [
        ("create", false),
        ("snapshot", false),
        ("clone", false),
        ("snapclone", false),
        ("create", true),
        ("snapshot", true),
        ("clone", true),
    ] {
        n += 1;
        let step = format!("{op}.prepared");
        let (before, plan, dest) = stopped_after_its_commit(&cfg, op, 100 + n, |conn| {
            let steps: Vec<String> = conn
                .prepare("SELECT step FROM intents")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(steps, ["applied"], "{step}: one applied intent");
        });
        let uuid = plan["elements"][0]["uuid"].as_str().unwrap().to_string();
        if unmark {
            rustix::fs::removexattr(&dest, spindle_plugin_linux::fsops::COMPLETE_XATTR).unwrap();
        }
        let after = all_uuids(&Via::Program, &cfg);
        assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]), "{step}");
        let new: Vec<_> = after.difference(&before).collect();
        if unmark {
            assert!(new.is_empty(), "{step} unmarked: {new:?}");
            assert!(!dest.exists(), "{step}: the unmarked file stayed");
        } else {
            assert_eq!(new, [&uuid], "{step}: the operation did not stand");
            assert!(dest.exists());
        }
    }
}

/// A power cut can lose every commit of an operation that adds elements after its answer was
/// given: its intent, the serial it took and its rows were committed together without a
/// flush. Simulated by stopping the program after that commit, then deleting the intent and
/// the rows and putting the serial counter back. Each new file carries the intent itself, which rolls the
/// operation forward: the element comes back with its uuid and page 83 id, and the serial
/// stays used up. A file without its mark, or whose intent does not fit the array (here: it
/// names the element after one that exists), is removed instead.
#[test]
fn an_operation_whose_every_commit_was_lost_is_recovered_from_its_files() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let cfg = config(&pool);
    let db = pool.join(".spindle-array/array.db");
    let next_serial = || -> i64 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'next_serial'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let mut n = 0;
    for (op, damage) in [
        ("create", ""),
        ("snapshot", ""),
        ("clone", ""),
        ("snapclone", ""),
        ("create", "unmark"),
        ("clone", "unmark"),
        ("create", "name taken"),
    ] {
        n += 1;
        let step = format!("{op}.prepared");
        let (before, plan, dest) = stopped_after_its_commit(&cfg, op, 200 + n, |conn| {
            // The counter goes back to the serial the operation took.
            let back = conn
                .execute(
                    "UPDATE meta SET value = (SELECT CAST(json_extract(plan, '$.elements[0].serial') AS TEXT) FROM intents) WHERE key = 'next_serial'",
                    [],
                )
                .unwrap();
            assert_eq!(back, 1, "{step}");
            let rows = conn
                .execute(
                    "DELETE FROM elements WHERE uuid IN (SELECT json_extract(e.value, '$.uuid') FROM intents, json_each(json_extract(intents.plan, '$.elements')) AS e)",
                    [],
                )
                .unwrap();
            assert_eq!(rows, 1, "{step}: the commit held the new row");
            conn.execute(
                "DELETE FROM members WHERE snap IN (SELECT json_extract(e.value, '$.uuid') FROM intents, json_each(json_extract(intents.plan, '$.elements')) AS e)",
                [],
            )
            .unwrap();
            assert_eq!(conn.execute("DELETE FROM intents", []).unwrap(), 1, "{step}");
        });
        let element = &plan["elements"][0];
        let uuid = element["uuid"].as_str().unwrap().to_string();
        match damage {
            "unmark" => {
                rustix::fs::removexattr(&dest, spindle_plugin_linux::fsops::COMPLETE_XATTR).unwrap();
            }
            "name taken" => {
                // The carried intent now names the element after the LUN made by `setup`.
                let key = spindle_plugin_linux::fsops::RECORD_XATTR;
                let mut buf = vec![0u8; 4096];
                let len = rustix::fs::getxattr(&dest, key, &mut buf[..]).unwrap();
                let mut record: Value = serde_json::from_slice(&buf[..len]).unwrap();
                record["plan"]["elements"][0]["name"] = json!(format!("{op}-{}", 200 + n));
                let text = record.to_string();
                rustix::fs::setxattr(&dest, key, text.as_bytes(), rustix::fs::XattrFlags::empty()).unwrap();
            }
            _ => {}
        }
        let after = all_uuids(&Via::Program, &cfg);
        assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]), "{step} {damage}");
        if damage.is_empty() {
            assert_eq!(
                after.difference(&before).cloned().collect::<Vec<_>>(),
                vec![uuid.clone()],
                "{step}: the operation was not rolled forward from its file"
            );
            let got = ok(&cfg, json!({"op": "get", "uuid": uuid}));
            let serial = element["serial"].as_i64().unwrap();
            assert!(next_serial() > serial, "{step}: serial {serial} handed out again");
            let fresh = ok(
                &cfg,
                json!({"op": "create", "name": format!("after-{n}"), "pool": "p0", "size": 1 << 20}),
            );
            assert_ne!(got["page83_id"], fresh["page83_id"], "{step}: page 83 id reused");
            assert!(dest.exists());
        } else {
            assert!(!after.contains(&uuid), "{step} {damage}: adopted");
            assert!(!dest.exists(), "{step} {damage}: the file stayed");
        }
    }
}

/// An insert whose program died after its commit, in a pool whose disk then went away and
/// lost its new file (a disk that loses what it was told to keep), waits for that pool: the requests of the other
/// pools meanwhile, an insert there included, do not take its intent for a finished one, so
/// once the pool is back the operation is rolled back, never listed without its file.
#[test]
fn an_insert_cut_short_in_a_pool_that_went_away_waits_for_it() {
    if !can_mount() {
        return;
    }
    let (first, second) = (TestFs::new(Kind::Xfs, 512), TestFs::new(Kind::Xfs, 512));
    let mut cfg = config(&first.pool("p0"));
    cfg.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "p1".into(),
        path: second.mnt.clone(),
    });
    ok(&cfg, json!({"op": "validate"}));
    let (success, _) = request(
        &cfg,
        json!({"op": "create", "name": "cut", "pool": "p1", "size": 8 << 20}),
        &[(CRASH_ENV, "create.prepared")],
    );
    assert!(!success);
    let files: Vec<String> = listing(&second.mnt)
        .into_iter()
        .filter(|n| n.ends_with(".img"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // The disk lost the file when it went away.
    std::fs::remove_file(second.mnt.join(&files[0])).unwrap();
    second.unmount();
    ok(&cfg, json!({"op": "list"}));
    ok(
        &cfg,
        json!({"op": "create", "name": "other", "pool": "p0", "size": 8 << 20}),
    );
    second.remount();
    let names: Vec<Value> = ok(&cfg, json!({"op": "list"}))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("other")],
        "the cut-short create was kept without its file"
    );
    assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]));
}
