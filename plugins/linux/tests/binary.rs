//! The `spindle-array` program: one JSON request in, one JSON response out.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn requests_round_trip_through_the_program() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let info = ok(
        &cfg,
        json!({"op": "validate", "chap": {"username": "u1", "secret": "secret-secret-1"}}),
    );
    assert_eq!(info["pools"][0]["reflink"], true);
    assert_eq!(info["chap_user"], "u1");
    assert!(!info.to_string().contains("secret-secret-1"));
    let caps = ok(&cfg, json!({"op": "capabilities"}));
    assert_eq!(caps.as_object().unwrap().len(), 16);
    assert_eq!(caps["clone"], "ONLINE");
    assert_eq!(caps["splitclone"], "OFFLINE");
    assert_eq!(caps["splitclone_while_open"], "NO");
    assert_eq!(caps["max_access_entries"], 256);
    let lun = ok(
        &cfg,
        json!({"op": "create", "name": "vm1", "pool": "p0", "size": 8 << 20}),
    );
    let uuid = lun["uuid"].as_str().unwrap().to_string();
    assert_eq!(lun["se_type"], "LUNType");
    assert!(lun["page83_id"].as_str().unwrap().starts_with("36"));
    let path = std::path::PathBuf::from(lun["path"].as_str().unwrap());
    fill(&path, 0, 1 << 20, 7);
    let snap = ok(&cfg, json!({"op": "snapshot", "uuid": uuid, "name": "vm1-s"}));
    let clone = ok(
        &cfg,
        json!({"op": "clone-from-snap", "uuid": uuid, "snap": snap["uuid"], "name": "vm1-c"}),
    );
    assert_eq!(clone["se_type"], "SnapCloneType");
    let listed = ok(&cfg, json!({"op": "list"}));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let only_luns = ok(&cfg, json!({"op": "list", "types": ["LUNType"]}));
    assert_eq!(only_luns.as_array().unwrap().len(), 1);
    assert_eq!(
        ok(&cfg, json!({"op": "snapshots", "uuid": uuid}))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok(
            &cfg,
            json!({"op": "is-restorable", "snap": snap["uuid"], "uuid": uuid})
        ),
        true
    );
    // Split through the program, polling progress.
    let st = ok(&cfg, json!({"op": "split-start", "uuid": clone["uuid"]}));
    assert_eq!(st["progress"], 0);
    let start = Instant::now();
    loop {
        let p = ok(&cfg, json!({"op": "split-progress", "handle": st["handle"]}));
        if p["progress"].is_null() {
            assert_eq!(p["element"]["se_type"], "LUNType");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!has_shared_extents(std::path::Path::new(
        clone["path"].as_str().unwrap()
    )));
    ok(&cfg, json!({"op": "restore", "snap": snap["uuid"], "uuid": uuid}));
    ok(
        &cfg,
        json!({"op": "group-create", "groups": [{"name": "hosts", "entries": ["iqn.1994-05.com.redhat:abc"]}]}),
    );
    let pres = ok(&cfg, json!({"op": "present", "uuid": uuid, "groups": ["hosts"]}));
    assert_eq!(pres["groups"], json!(["hosts"]));
    let plan = ok(&cfg, json!({"op": "export-plan"}));
    assert_eq!(plan["targets"][0]["luns"][0]["scsi_id"], lun["scsi_id"]);
    assert_eq!(
        plan["targets"][0]["initiators"],
        json!(["iqn.1994-05.com.redhat:abc"])
    );
    assert!(!plan.to_string().contains("secret-secret-1"));
    assert_eq!(ok(&cfg, json!({"op": "qos-list"})).as_array().unwrap().len(), 2);
    ok(&cfg, json!({"op": "set-qos", "uuid": uuid, "qos": "writeback"}));
    ok(&cfg, json!({"op": "offline", "uuid": uuid}));
    assert_eq!(ok(&cfg, json!({"op": "status", "uuid": uuid})), "OFFLINE");
    assert_eq!(ok(&cfg, json!({"op": "limits"}))["luns_per_target"], 255);
    let e = err(&cfg, json!({"op": "remove", "uuid": uuid}));
    assert_eq!(e["exception"], "StorageElementBusyEx");
    assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]));
}

#[test]
fn errors_use_the_guides_exceptions() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let cfg = config(&pool);
    ok(&cfg, json!({"op": "validate"}));
    let e = err(
        &cfg,
        json!({"op": "create", "name": "a/b", "pool": "p0", "size": 1}),
    );
    assert_eq!(e["exception"], "ValueFormatEx");
    assert_eq!(e["key"], "name");
    assert!(e["message"].as_str().unwrap().contains("a/b"));
    let e = err(
        &cfg,
        json!({"op": "create", "name": "a", "pool": "p0", "size": 0}),
    );
    assert_eq!(e["key"], "size");
    let e = err(&cfg, json!({"op": "nosuch"}));
    assert_eq!(e["exception"], "ValueFormatEx");
    let e = err(
        &cfg,
        json!({"op": "set-chap", "chap": {"username": "u", "secret": "tiny"}}),
    );
    assert!(!e.to_string().contains("tiny"));
    let e = err(&cfg, json!({"op": "set-chap", "chap": "leaky-secret-text"}));
    assert!(!e.to_string().contains("leaky"), "{e}");
    // Malformed JSON and a bad config.
    let (_, v) = {
        use std::io::Write;
        let mut c = std::process::Command::new(exe())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(b"{not json").unwrap();
        let out = c.wait_with_output().unwrap();
        (
            out.status.success(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };
    assert_eq!(v["error"]["key"], "request");
    let mut bad = cfg.clone();
    bad.pools[0].path = pool.join("missing");
    let (_, v) = request(&bad, json!({"op": "validate"}), &[]);
    assert_eq!(v["error"]["exception"], "InvalidStorageArrayEx");
    // Outside validate, storage that is gone (an unmounted file system) is the operation
    // failing, not a malformed value.
    let (_, v) = request(&bad, json!({"op": "list"}), &[]);
    assert_eq!(v["error"]["exception"], "ListFailedEx", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("missing") && message.contains("is its file system mounted?"),
        "{message}"
    );
    let mut moved = cfg.clone();
    moved.pools[0].name = "other".into();
    let (_, v) = request(&moved, json!({"op": "validate"}), &[]);
    assert_eq!(v["error"]["exception"], "InvalidStorageArrayEx");
    // A configuration that contradicts the array is a bad value.
    let (_, v) = request(&moved, json!({"op": "list"}), &[]);
    assert_eq!(v["error"]["exception"], "ValueFormatEx", "{v}");
    assert_eq!(v["error"]["key"], "config");
}

#[test]
fn a_split_written_to_during_the_copy_is_abandoned_without_loss() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let mut cfg = config(&fs.pool("p0"));
    cfg.split_rate_mib = Some(16);
    let lun = ok(
        &cfg,
        json!({"op": "create", "name": "base", "pool": "p0", "size": 64 << 20}),
    );
    let lp = std::path::PathBuf::from(lun["path"].as_str().unwrap());
    fill(&lp, 0, 32 << 20, 3);
    let clone = ok(&cfg, json!({"op": "clone", "uuid": lun["uuid"], "name": "c"}));
    let cp = std::path::PathBuf::from(clone["path"].as_str().unwrap());
    let st = ok(&cfg, json!({"op": "split-start", "uuid": clone["uuid"]}));
    std::thread::sleep(Duration::from_millis(300));
    // Something writes to the clone behind the array's back.
    fill(&cp, 8 << 20, 4096, 0x55);
    let start = Instant::now();
    let failure = loop {
        let (_, v) = request(&cfg, json!({"op": "split-progress", "handle": st["handle"]}), &[]);
        if let Some(e) = v.get("error") {
            break e.clone();
        }
        assert!(!v["ok"]["progress"].is_null(), "the split finished over a write");
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(failure["exception"], "OperationFailedEx");
    assert!(
        failure["message"].as_str().unwrap().contains("changed"),
        "{failure}"
    );
    assert_eq!(read(&cp, 8 << 20, 4096), vec![0x55; 4096], "the write survived");
    let c = ok(&cfg, json!({"op": "get", "uuid": clone["uuid"]}));
    assert_eq!(c["se_type"], "SnapCloneType");
    assert_eq!(c["state"], "ONLINE");
    assert_eq!(ok(&cfg, json!({"op": "fsck"})), json!([]));
}

/// `--help` says how to run the program, and an unknown command points to it.
#[test]
fn help_is_there_for_people() {
    let out = std::process::Command::new(exe()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("usage:") && text.contains("daemon --socket PATH"),
        "{text}"
    );
    assert!(text.contains("SPINDLE_ARRAY_STATE_HOME"), "{text}");
    let out = std::process::Command::new(exe())
        .args(["daemon", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--stdin-lifeline   stop"));
    let out = std::process::Command::new(exe()).arg("daemon").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--socket PATH is required"));
    let out = std::process::Command::new(exe())
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spindle-array --help"));
}

/// A registration (ss_record uuid) is one array: settings that name another array's state
/// directory are refused while its array exists, before anything is made; adding a pool, a
/// moved state directory, and a registration whose array is gone are fine.
#[test]
fn a_registration_keeps_its_array() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let (a, b) = (fs.pool("a"), fs.pool("b"));
    let reg = uuid::Uuid::new_v4().to_string();
    let with = |r: &str, mut req: serde_json::Value| {
        req["registration"] = json!(r);
        req
    };
    let cfg_a = config(&a);
    ok(&cfg_a, with(&reg, json!({"op": "validate"})));
    ok(
        &cfg_a,
        with(
            &reg,
            json!({"op": "create", "name": "l1", "pool": "p0", "size": 8 << 20}),
        ),
    );
    // pools=b only: another, new array. Refused, and b is left as it was.
    let cfg_b = config(&b);
    for (req, ex) in [
        (json!({"op": "validate"}), "InvalidStorageArrayEx"),
        (json!({"op": "list"}), "ValueFormatEx"),
    ] {
        let e = err(&cfg_b, with(&reg, req));
        assert_eq!(e["exception"], ex, "{e}");
        let m = e["message"].as_str().unwrap();
        assert!(
            m.contains(&reg)
                && m.contains(&a.join(".spindle-array").display().to_string())
                && m.contains("a new array"),
            "{m}"
        );
    }
    assert!(
        listing(&b).is_empty(),
        "a refused request made something: {:?}",
        listing(&b)
    );
    // Another registration may make an array there.
    let other = uuid::Uuid::new_v4().to_string();
    ok(&cfg_b, with(&other, json!({"op": "validate"})));
    // Adding a pool keeps the array.
    let c = fs.pool("c");
    let mut more = cfg_a.clone();
    more.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "p1".into(),
        path: c.clone(),
    });
    let names: Vec<_> = ok(&more, with(&reg, json!({"op": "list"})))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["l1"]);
    // A moved state directory (state=) is the same array, followed.
    let moved = fs.mnt.join("state-moved");
    std::fs::rename(a.join(".spindle-array"), &moved).unwrap();
    let mut cfg_moved = more.clone();
    cfg_moved.state = Some(moved.clone());
    assert_eq!(ok(&cfg_moved, with(&reg, json!({"op": "list"})))[0]["name"], "l1");
    // Back at the old place, the old settings are refused now: they name a new array.
    let e = err(&cfg_a, with(&reg, json!({"op": "list"})));
    assert!(e["message"].as_str().unwrap().contains("a new array"), "{e}");
    // An array that is gone frees its registration.
    std::fs::remove_dir_all(&moved).unwrap();
    let d = fs.pool("d");
    ok(&config(&d), with(&reg, json!({"op": "validate"})));
}

/// A pool whose file system is not mounted is never adopted (the empty directory under its
/// mount point is not the pool): the array is degraded instead — its other pools work, the
/// pool's LUNs stay listed as UNAVAILABLE and refuse what needs their files, and every answer
/// says so — and whole again once it is mounted. Without its state directory's file system,
/// a registration's array is refused, not made anew under the mount point.
#[test]
fn an_unmounted_pool_degrades_the_array_and_is_never_adopted() {
    if !can_mount() {
        return;
    }
    let (first, second) = (TestFs::new(Kind::Xfs, 512), TestFs::new(Kind::Btrfs, 512));
    let mut cfg = config(&first.mnt);
    cfg.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "p1".into(),
        path: second.mnt.clone(),
    });
    let reg = uuid::Uuid::new_v4().to_string();
    let with = |mut req: serde_json::Value| {
        req["registration"] = json!(reg);
        req
    };
    let l1 = ok(
        &cfg,
        with(json!({"op": "create", "name": "l1", "pool": "p1", "size": 8 << 20})),
    );
    fill(
        &second.mnt.join(format!("{}.img", l1["uuid"].as_str().unwrap())),
        0,
        4096,
        0x5a,
    );
    // The second pool's file system away: its mount point is an empty directory on another
    // file system.
    second.unmount();
    let (_, answer) = request(&cfg, with(json!({"op": "list"})), &[]);
    let listed = answer["ok"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{answer}");
    assert_eq!(listed[0]["status"], "UNAVAILABLE", "{answer}");
    let warning = answer["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("degraded") && warning.contains("'p1'"),
        "{answer}"
    );
    for req in [
        json!({"op": "create", "name": "l2", "pool": "p1", "size": 8 << 20}),
        json!({"op": "resize", "uuid": l1["uuid"], "size": 16 << 20}),
        json!({"op": "snapshot", "uuid": l1["uuid"]}),
    ] {
        let e = err(&cfg, with(req));
        let m = e["message"].as_str().unwrap();
        assert!(m.contains("mounted?") && m.contains("come back"), "{m}");
    }
    ok(
        &cfg,
        with(json!({"op": "create", "name": "l0", "pool": "p0", "size": 8 << 20})),
    );
    let info = ok(&cfg, with(json!({"op": "info"})));
    assert!(info["pools"].to_string().contains("UNAVAILABLE"), "{info}");
    assert_eq!(info["status"], "DEGRADED");
    assert_eq!(ok(&cfg, with(json!({"op": "status"}))), "DEGRADED");
    assert!(
        listing(&second.mnt).is_empty(),
        "the mount point was claimed or written"
    );
    second.remount();
    let listed = ok(&cfg, with(json!({"op": "list"})));
    assert!(
        listed.as_array().unwrap().iter().all(|e| e["status"] == "ONLINE"),
        "{listed}"
    );
    assert_eq!(
        read(
            &second.mnt.join(format!("{}.img", l1["uuid"].as_str().unwrap())),
            0,
            4096
        ),
        vec![0x5a; 4096]
    );
    ok(
        &cfg,
        with(json!({"op": "resize", "uuid": l1["uuid"], "size": 16 << 20})),
    );
    // The first pool's (the state directory's) file system away.
    first.unmount();
    for req in [json!({"op": "validate"}), json!({"op": "list"})] {
        let e = err(&cfg, with(req));
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("is not in its state directory"),
            "{e}"
        );
    }
    assert!(
        listing(&first.mnt).is_empty(),
        "a new array was made under the mount point"
    );
    first.remount();
    assert_eq!(ok(&cfg, with(json!({"op": "list"}))).as_array().unwrap().len(), 2);
}

/// A pool the array claimed is never claimed again without its owner file, even when it
/// holds no LUN (so none is missing) and its mount point lies on a file system of its own
/// kind (a data disk's mount point on an XFS root): unmounted, it degrades the array, and
/// nothing is written under the mount point, where a LUN would have vanished under the disk
/// once mounted again (and been rolled back by the next recovery).
#[test]
fn an_empty_pool_is_not_adopted_at_a_mount_point_on_its_own_kind_of_file_system() {
    if !can_mount() {
        return;
    }
    let root = TestFs::new(Kind::Xfs, 512);
    let data = TestFs::new_at(Kind::Xfs, 512, &root.mnt.join("data"));
    let mut cfg = config(&root.pool("p0"));
    cfg.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "p1".into(),
        path: data.mnt.clone(),
    });
    assert_eq!(ok(&cfg, json!({"op": "validate"}))["status"], "ONLINE");
    data.unmount();
    let e = err(
        &cfg,
        json!({"op": "create", "name": "l1", "pool": "p1", "size": 8 << 20}),
    );
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("mounted?") && m.contains("come back"), "{m}");
    let info = ok(&cfg, json!({"op": "info"}));
    assert_eq!(info["status"], "DEGRADED", "{info}");
    assert!(
        listing(&data.mnt).is_empty(),
        "the mount point was claimed or written"
    );
    data.remount();
    let l1 = ok(
        &cfg,
        json!({"op": "create", "name": "l1", "pool": "p1", "size": 8 << 20}),
    );
    assert!(data
        .mnt
        .join(format!("{}.img", l1["uuid"].as_str().unwrap()))
        .exists());
    assert_eq!(ok(&cfg, json!({"op": "info"}))["status"], "ONLINE");
}

/// Two first requests of one registration naming two different new arrays, in parallel: one
/// binds the registration, the other is refused and makes nothing (both used to be answered,
/// the registration bound to whichever answered last, the other array made and orphaned).
#[test]
fn parallel_first_requests_of_a_registration_bind_it_to_one_array() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    for round in 1..=5 {
        let registration = uuid::Uuid::new_v4().to_string();
        let (pa, pb) = (fs.pool(&format!("a{round}")), fs.pool(&format!("b{round}")));
        let (ca, cb) = (config(&pa), config(&pb));
        let ra = json!({"op": "validate", "registration": registration});
        let rb = ra.clone();
        let a = std::thread::spawn(move || request(&ca, ra, &[]).1);
        let b = std::thread::spawn(move || request(&cb, rb, &[]).1);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let answered: Vec<&serde_json::Value> =
            [&a, &b].into_iter().filter(|v| v.get("ok").is_some()).collect();
        assert_eq!(answered.len(), 1, "round {round}: {a} / {b}");
        let (refused, refused_pool) = if a.get("ok").is_some() {
            (&b, &pb)
        } else {
            (&a, &pa)
        };
        assert_eq!(
            refused["error"]["exception"], "InvalidStorageArrayEx",
            "round {round}: {refused}"
        );
        assert!(
            listing(refused_pool).is_empty(),
            "round {round}: the refused request made something in its pool"
        );
        let _ = std::fs::remove_file(registry().dir().join(format!("{registration}.json")));
    }
}

/// A configuration that leaves out a pool the array has does not hide that the pool's file
/// system is not mounted: the pool's elements are still the array's, so the array is
/// degraded as when the pool is in the configuration, and nothing is written at the empty
/// mount point (a create there used to be answered on the root file system).
#[test]
fn a_pool_left_out_of_the_configuration_still_degrades_the_array() {
    if !can_mount() {
        return;
    }
    let root = TestFs::new(Kind::Xfs, 512);
    let data = TestFs::new_at(Kind::Xfs, 512, &root.mnt.join("data"));
    let only_p0 = config(&root.pool("p0"));
    let mut both = only_p0.clone();
    both.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "p1".into(),
        path: data.mnt.clone(),
    });
    assert_eq!(ok(&both, json!({"op": "validate"}))["status"], "ONLINE");
    let l1 = ok(
        &both,
        json!({"op": "create", "name": "l1", "pool": "p1", "size": 8 << 20}),
    );
    let l1_file = data.mnt.join(format!("{}.img", l1["uuid"].as_str().unwrap()));
    data.unmount();
    let info = ok(&only_p0, json!({"op": "info"}));
    assert_eq!(info["status"], "DEGRADED", "{info}");
    let e = err(
        &only_p0,
        json!({"op": "create", "name": "l2", "pool": "p1", "size": 8 << 20}),
    );
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("not in the configuration") && m.contains("mounted?"),
        "{m}"
    );
    let listed = ok(&only_p0, json!({"op": "list"}));
    assert_eq!(listed[0]["status"], "UNAVAILABLE", "{listed}");
    assert!(
        listing(&data.mnt).is_empty(),
        "the mount point was claimed or written"
    );
    // A LUN in the configuration's pool is still made.
    ok(
        &only_p0,
        json!({"op": "create", "name": "l3", "pool": "p0", "size": 8 << 20}),
    );
    data.remount();
    assert!(l1_file.exists());
    assert_eq!(ok(&only_p0, json!({"op": "info"}))["status"], "ONLINE");
    let listed = ok(&only_p0, json!({"op": "list"}));
    let l1_now = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "l1")
        .cloned()
        .unwrap();
    assert_eq!(l1_now["status"], "ONLINE", "{listed}");
}

/// A registration never follows another array made in its state directory while the pool's
/// file system was not mounted (by a request of another registration, or of none).
#[test]
fn a_registration_never_follows_an_array_made_under_its_mount_point() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.mnt);
    let reg = uuid::Uuid::new_v4().to_string();
    let with = |mut req: serde_json::Value| {
        req["registration"] = json!(reg);
        req
    };
    ok(
        &cfg,
        with(json!({"op": "create", "name": "l0", "pool": "p0", "size": 8 << 20})),
    );
    fs.unmount();
    // A request without a registration makes an array in the empty mount point.
    ok(&cfg, json!({"op": "validate"}));
    for req in [
        json!({"op": "list"}),
        json!({"op": "create", "name": "junk", "pool": "p0", "size": 1 << 20}),
    ] {
        let e = err(&cfg, with(req));
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("not this registration's array"),
            "{e}"
        );
    }
    assert!(
        !listing(&fs.mnt).iter().any(|f| f.ends_with(".img")),
        "a LUN was made on the wrong file system: {:?}",
        listing(&fs.mnt)
    );
    fs.remount();
    assert_eq!(ok(&cfg, with(json!({"op": "list"})))[0]["name"], "l0");
}

/// A registration that cannot be an ss_record uuid (a path, control characters, too long
/// for its file) is refused before anything is opened, the key naming it: no state
/// directory, no owner file, no registration file.
#[test]
fn a_registration_that_cannot_be_a_uuid_is_refused_and_writes_nothing() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("a");
    let cfg = config(&pool);
    let registrations = registry();
    let long = "a".repeat(201);
    let escaped = "_".repeat(90);
    for reg in [
        "../x", "..", ".x", "a/b", "a\\b", "x\ny", "x y", "", &long, &escaped,
    ] {
        for op in [json!({"op": "validate"}), json!({"op": "list"})] {
            let mut req = op;
            req["registration"] = json!(reg);
            let e = err(&cfg, req.clone());
            assert_eq!(e["exception"], "ValueFormatEx", "{req}: {e}");
            assert_eq!(e["key"], "registration", "{req}: {e}");
            assert!(e["message"].as_str().unwrap().contains("registration"), "{e}");
        }
        let file = registrations.dir().join(format!(
            "{}.json",
            spindle_plugin_linux::registry::file_name_of(reg.as_bytes())
        ));
        assert!(!file.exists(), "{} was written", file.display());
    }
    assert!(listing(&pool).is_empty(), "{:?}", listing(&pool));
    assert!(
        !pool.join(".spindle-array").exists(),
        "a state directory was made"
    );
}

/// A registration whose file is damaged or unreadable is refused, the message naming the
/// file, where it used to count as unbound: settings naming another array made the
/// registration that new, empty array, and its file was written over for good.
#[test]
fn a_damaged_registration_file_refuses_its_requests() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let (a, b) = (fs.pool("a"), fs.pool("b"));
    let reg = uuid::Uuid::new_v4().to_string();
    let with = |mut req: serde_json::Value| {
        req["registration"] = json!(reg);
        req
    };
    ok(&config(&a), with(json!({"op": "validate"})));
    let file = registry().dir().join(format!("{reg}.json"));
    let bound = std::fs::read(&file).unwrap();
    for damage in ["truncated", "directory"] {
        if damage == "truncated" {
            std::fs::write(&file, &bound[..bound.len() / 2]).unwrap();
        } else {
            std::fs::remove_file(&file).unwrap();
            std::fs::create_dir(&file).unwrap();
        }
        for cfg in [config(&b), config(&a)] {
            let e = err(&cfg, with(json!({"op": "validate"})));
            assert_eq!(e["exception"], "InvalidStorageArrayEx", "{damage}: {e}");
            assert!(
                e["message"].as_str().unwrap().contains(&format!("{reg}.json")),
                "{damage}: {e}"
            );
        }
        assert!(listing(&b).is_empty(), "{damage}: {:?}", listing(&b));
        assert!(
            !b.join(".spindle-array").exists(),
            "{damage}: a new array was made"
        );
        if damage == "directory" {
            std::fs::remove_dir(&file).unwrap();
        }
    }
    // Removed, the next request records the array it reaches.
    ok(&config(&a), with(json!({"op": "list"})));
    assert_eq!(std::fs::read(&file).unwrap(), bound);
    std::fs::remove_file(&file).unwrap();
}

/// `SPINDLE_ARRAY_STATE_HOME` moves what the program keeps for the host (the registrations,
/// a resident program's default served file) out of `/var/lib/spindle-array`; set but empty
/// or relative it is refused, never taken for unset (the state would land in the host's
/// directory, the one it was set to keep apart).
#[test]
fn the_state_home_is_the_one_the_environment_names() {
    if !can_mount() {
        return;
    }
    use spindle_plugin_linux::registry::STATE_HOME_VAR;
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("a");
    let cfg = config(&pool);
    let home = tempfile::tempdir().unwrap();
    let home_text = home.path().to_str().unwrap();
    let file_of = |dir: &std::path::Path, reg: &str| dir.join(format!("registrations/{reg}.json"));

    let reg = uuid::Uuid::new_v4().to_string();
    let (_, v) = request(
        &cfg,
        json!({"op": "validate", "registration": reg}),
        &[(STATE_HOME_VAR, home_text)],
    );
    assert!(v.get("ok").is_some(), "{v}");
    assert!(
        file_of(home.path(), &reg).is_file(),
        "no registration in the home named"
    );
    assert!(!file_of(state_home(), &reg).exists());
    assert!(!file_of(std::path::Path::new("/var/lib/spindle-array"), &reg).exists());

    for bad in ["", "relative/home"] {
        let reg = uuid::Uuid::new_v4().to_string();
        for req in [json!({"op": "list", "registration": reg}), json!({"op": "list"})] {
            let (_, v) = request(&cfg, req.clone(), &[(STATE_HOME_VAR, bad)]);
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(STATE_HOME_VAR), "{bad:?} {req}: {v}");
        }
        assert!(!file_of(std::path::Path::new("/var/lib/spindle-array"), &reg).exists());
        assert!(!file_of(state_home(), &reg).exists());
        // A resident program refuses to start.
        let out = std::process::Command::new(exe())
            .args(["daemon", "--socket"])
            .arg(home.path().join("never.sock"))
            .env(STATE_HOME_VAR, bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(STATE_HOME_VAR),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!home.path().join("never.sock").exists());
    }

    // A resident program without --served remembers its arrays in the home named.
    let socket = home.path().join("array.sock");
    let mut d = std::process::Command::new(exe())
        .args(["daemon", "--stdin-lifeline", "--socket"])
        .arg(&socket)
        .env(STATE_HOME_VAR, home_text)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the daemon never listened"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (_, v) = socket_request(&socket, &cfg, json!({"op": "info"}));
    assert!(v.get("ok").is_some(), "{v}");
    drop(d.stdin.take());
    assert!(d.wait().unwrap().success());
    let served = spindle_plugin_linux::daemon::default_served_file(home.path(), &socket);
    assert!(served.starts_with(home.path()));
    assert!(served.is_file(), "no served file {}", served.display());
}
