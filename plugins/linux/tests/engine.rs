//! The engine through its library API, on loop-mounted XFS and btrfs and on tmpfs.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use spindle_api::{ExceptionKind, OpAbility, SeType};
use spindle_plugin_linux::engine::{Engine, EngineOptions, MAX_ACCESS_ENTRIES};
use spindle_plugin_linux::model::{ChapAccount, GroupSpec};
use spindle_plugin_linux::Error;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const MIB: i64 = 1 << 20;

type Case = (
    Box<dyn Fn(&mut Engine) -> Result<(), Error>>,
    &'static str,
    ExceptionKind,
);

fn kind(e: &Error) -> ExceptionKind {
    e.to_exception(ExceptionKind::OperationFailedEx).kind
}

#[test]
fn create_list_resize_remove_and_thick_allocation() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let mut e = engine(&cfg);
    let a = e.create("lun-a", "p0", 10 * MIB + 1, true, None).unwrap();
    assert_eq!(a.size, 11 << 20, "rounded up to whole MiB");
    assert_eq!(a.se_type, SeType::Lun);
    assert_eq!(a.qos, "writethrough");
    let path = a.path.clone().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 11 << 20);
    assert!(
        spindle_plugin_linux::fsops::allocated(&path).unwrap() < 1 << 20,
        "thin is sparse"
    );
    let t = e
        .create("lun-thick", "p0", 64 * MIB, false, Some("writeback"))
        .unwrap();
    let tp = t.path.clone().unwrap();
    assert!(
        spindle_plugin_linux::fsops::allocated(&tp).unwrap() >= 64 << 20,
        "thick is allocated"
    );
    let listed = e.list(&[SeType::Lun, SeType::SnapClone]).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|x| x.page83_id == format!("3{}", x.scsi_id) && x.scsi_id.len() == 32));
    assert!(listed.iter().all(|x| x.scsi_id.starts_with('6')));
    // Grow thick: allocated; shrink.
    let t2 = e.resize(&t.uuid, 96 * MIB).unwrap();
    assert_eq!(t2.size, 96 << 20);
    assert!(spindle_plugin_linux::fsops::allocated(&tp).unwrap() >= 96 << 20);
    let a2 = e.resize(&a.uuid, 2 * MIB).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 << 20);
    assert_eq!(a2.size, 2 << 20);
    // Thick beyond free space is refused; thin is not bounded by free space.
    let err = e.create("too-big", "p0", 4 << 30, false, None).unwrap_err();
    assert_eq!(kind(&err), ExceptionKind::InvalidValueEx);
    e.create("thin-big", "p0", 1 << 40, true, None).unwrap();
    e.remove(&a.uuid).unwrap();
    assert!(!path.exists());
    assert_eq!(e.list(&[SeType::Lun]).unwrap().len(), 2);
    assert!(e.check_consistency().unwrap().is_empty());
}

#[test]
fn snapshots_freeze_clones_diverge_and_restore() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let mut e = engine(&cfg);
    let lun = e.create("data", "p0", 16 * MIB, true, None).unwrap();
    let lp = lun.path.clone().unwrap();
    fill(&lp, 0, 1 << 20, 0xA1);
    let snap = e.snapshot(&lun.uuid, Some("data-s1")).unwrap();
    assert_eq!(snap.se_type, SeType::Snap);
    assert!(snap.read_only);
    let sp = snap.members[0].path.clone();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sp).unwrap().permissions()) & 0o777,
        0o400
    );
    fill(&lp, 0, 1 << 20, 0xB2);
    assert_eq!(read(&sp, 0, 4096), vec![0xA1; 4096], "the snapshot is frozen");
    assert_eq!(read(&lp, 0, 4096), vec![0xB2; 4096]);
    // Not listed; listed by getCurrentSnaps.
    assert!(e
        .list(&[SeType::Lun, SeType::SnapClone])
        .unwrap()
        .iter()
        .all(|x| x.uuid != snap.uuid));
    assert_eq!(e.snapshots(Some(&lun.uuid)).unwrap().len(), 1);
    // Clone diverges from its source.
    let c = e.clone_element(&lun.uuid, Some("data-c1"), None).unwrap();
    assert_eq!(c.se_type, SeType::SnapClone);
    let cp = c.path.clone().unwrap();
    assert_eq!(read(&cp, 0, 4096), vec![0xB2; 4096]);
    fill(&cp, 0, 4096, 0xC3);
    assert_eq!(read(&lp, 0, 4096), vec![0xB2; 4096]);
    // Clone from snapshot has the frozen data.
    let cs = e.clone_from_snap(&lun.uuid, &snap.uuid, None, None).unwrap();
    assert_eq!(read(cs.path.as_ref().unwrap(), 0, 4096), vec![0xA1; 4096]);
    assert_eq!(e.clones(Some(&lun.uuid)).unwrap().len(), 2);
    // Dependents block removal, and the refusal names them.
    let busy_naming = |refused: Error, what: String| {
        assert_eq!(kind(&refused), ExceptionKind::StorageElementBusyEx);
        assert!(refused.to_string().contains(&what), "{refused}");
    };
    busy_naming(
        e.remove(&lun.uuid).unwrap_err(),
        format!("has 1 snapshot '{}'", snap.name),
    );
    busy_naming(
        e.snap_remove(&snap.uuid).unwrap_err(),
        format!("has 1 unsplit clone '{}'", cs.name),
    );
    // Restore: clones and the later data of other elements do not block it.
    e.resize(&lun.uuid, 32 * MIB).unwrap();
    assert!(e.is_restorable(&snap.uuid, Some(&lun.uuid)).unwrap());
    e.restore(&snap.uuid, Some(&lun.uuid)).unwrap();
    assert_eq!(read(&lp, 0, 4096), vec![0xA1; 4096]);
    let after = e.get(&lun.uuid).unwrap();
    assert_eq!(after.size, 16 << 20, "back to the snapshot's size");
    assert_eq!(after.backing_generation, 1);
    assert_eq!(read(&cp, 0, 4096), vec![0xC3; 4096], "the clone is untouched");
    // Presented + online: not safe, and isRestorable says so first.
    e.create_groups(&[GroupSpec {
        name: "hosts".into(),
        entries: vec!["iqn.2001-04.com.example:h1".into()],
        modes: None,
    }])
    .unwrap();
    e.present(&lun.uuid, &["hosts".into()]).unwrap();
    assert!(!e.is_restorable(&snap.uuid, Some(&lun.uuid)).unwrap());
    assert_eq!(
        kind(&e.restore(&snap.uuid, Some(&lun.uuid)).unwrap_err()),
        ExceptionKind::SnapRestoreNotSafeEx
    );
    e.set_online(&lun.uuid, false).unwrap();
    assert!(e.is_restorable(&snap.uuid, Some(&lun.uuid)).unwrap());
    // The snapshot is not of the clone.
    assert!(!e.is_restorable(&snap.uuid, Some(&c.uuid)).unwrap());
    assert!(e.check_consistency().unwrap().is_empty());
}

#[test]
fn page83_ids_unique_and_never_reused() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let mut seen = BTreeSet::new();
    for round in 0..3 {
        let mut e = engine(&cfg);
        for i in 0..5 {
            let x = e.create(&format!("r{round}-{i}"), "p0", MIB, true, None).unwrap();
            assert!(seen.insert(x.page83_id.clone()), "reused {}", x.page83_id);
            if i % 2 == 0 {
                e.remove(&x.uuid).unwrap();
            }
        }
        // A failed operation burns no id that is reused either.
        let _ = e.create("bad/name", "p0", MIB, true, None);
        drop(e);
    }
    let e = engine(&cfg);
    let ids: Vec<_> = e
        .list(&[SeType::Lun])
        .unwrap()
        .into_iter()
        .map(|x| x.scsi_id)
        .collect();
    let prefixes: BTreeSet<_> = ids.iter().map(|s| s[..16].to_string()).collect();
    assert_eq!(prefixes.len(), 1, "one company and vendor id per array");
}

#[test]
fn bad_input_changes_nothing() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let cfg = config(&pool);
    let mut e = engine(&cfg);
    let lun = e.create("ok", "p0", 4 * MIB, true, None).unwrap();
    e.create_groups(&[GroupSpec {
        name: "g".into(),
        entries: vec![],
        modes: None,
    }])
    .unwrap();
    let before = (state(&e), listing(&pool));
    let long = "x".repeat(65);
    let cases: Vec<Case> = vec![
        (
            Box::new(|e| e.create("a/b", "p0", MIB, true, None).map(drop)),
            "name",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| e.create("..", "p0", MIB, true, None).map(drop)),
            "name",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| e.create("a;rm -rf", "p0", MIB, true, None).map(drop)),
            "name",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| e.create("a\nb", "p0", MIB, true, None).map(drop)),
            "name",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(move |e| e.create(&long, "p0", MIB, true, None).map(drop)),
            "name",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| e.create("", "p0", MIB, true, None).map(drop)),
            "name",
            ExceptionKind::MissingKeyEx,
        ),
        (
            Box::new(|e| e.create("z", "p0", 0, true, None).map(drop)),
            "size",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| e.create("z", "p0", -5, true, None).map(drop)),
            "size",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| e.create("z", "p0", 1 << 40, false, None).map(drop)),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| e.create("z", "nopool", MIB, true, None).map(drop)),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| e.create("z", "p0", MIB, true, Some("gold")).map(drop)),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| e.create("ok", "p0", MIB, true, None).map(drop)),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| e.resize("0e0f6a2c-1d3b-4d59-9a53-2f0c1b7e8d90", MIB).map(drop)),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| e.remove("../../etc/passwd")),
            "uuid",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| {
                e.create_groups(&[GroupSpec {
                    name: "h".into(),
                    entries: vec!["not-an-iqn".into()],
                    modes: None,
                }])
                .map(drop)
            }),
            "grp_entries",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| {
                e.create_groups(&[GroupSpec {
                    name: "G".into(),
                    entries: vec![],
                    modes: None,
                }])
                .map(drop)
            }),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| {
                e.create_groups(&[GroupSpec {
                    name: "a b".into(),
                    entries: vec![],
                    modes: None,
                }])
                .map(drop)
            }),
            "grp_name",
            ExceptionKind::ValueFormatEx,
        ),
        // tgt refuses '_' in a target name, and RFC 3720 in any iqn. name: refused up front
        // (a stored one kept tgtd from serving the array's other targets).
        (
            Box::new(|e| {
                e.create_groups(&[GroupSpec {
                    name: "Hosts_A".into(),
                    entries: vec![],
                    modes: None,
                }])
                .map(drop)
            }),
            "grp_name",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| {
                e.add_to_group("g", &["iqn.2026-11.org.example:host_x".into()])
                    .map(drop)
            }),
            "grp_entries",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| {
                e.add_to_group("g", &["iqn.2001-04.com.example:ok".into(), "iqn.bad".into()])
                    .map(drop)
            }),
            "grp_entries",
            ExceptionKind::ValueFormatEx,
        ),
        (
            Box::new(|e| e.add_to_group("missing", &[]).map(drop)),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| {
                e.present("0e0f6a2c-1d3b-4d59-9a53-2f0c1b7e8d90", &["g".into()])
                    .map(drop)
            }),
            "",
            ExceptionKind::InvalidValueEx,
        ),
        (
            Box::new(|e| {
                e.set_chap(Some(&ChapAccount {
                    username: "u".into(),
                    secret: "short".into(),
                }))
            }),
            "passwd",
            ExceptionKind::ValueFormatEx,
        ),
    ];
    let lun_uuid = lun.uuid.clone();
    let more: Vec<Case> = vec![(
        Box::new(move |e| e.present(&lun_uuid, &["g".into(), "nope".into()]).map(drop)),
        "",
        ExceptionKind::InvalidValueEx,
    )];
    for (i, (f, key, k)) in cases.into_iter().chain(more).enumerate() {
        let err = f(&mut e).expect_err(&format!("case {i}"));
        let ex = err.to_exception(ExceptionKind::OperationFailedEx);
        assert_eq!(ex.kind, k, "case {i}: {err}");
        if !key.is_empty() {
            assert_eq!(ex.key.as_deref(), Some(key), "case {i}: {err}");
        }
        assert!(!ex.message.contains("short"), "a secret leaked: {}", ex.message);
        assert_eq!(
            (state(&e), listing(&pool)),
            before,
            "case {i} changed something: {err}"
        );
    }
}

#[test]
fn groups_presentations_and_export_plan() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let cfg = config(&fs.pool("p0"));
    let mut e = engine(&cfg);
    let a = e.create("a", "p0", MIB, true, None).unwrap();
    let b = e.create("b", "p0", MIB, true, Some("writeback")).unwrap();
    e.create_groups(&[
        GroupSpec {
            name: "Web".into(),
            entries: vec!["IQN.2001-04.COM.Example:H1".into()],
            modes: None,
        },
        GroupSpec {
            name: "db".into(),
            entries: vec![],
            modes: None,
        },
    ])
    .unwrap();
    e.add_to_group(
        "web",
        &[
            "iqn.2001-04.com.example:h2".into(),
            "iqn.2001-04.com.example:h1".into(),
        ],
    )
    .unwrap();
    let g = e
        .remove_from_group("web", &["iqn.2001-04.com.example:h2".into()])
        .unwrap();
    assert_eq!(g.entries, vec!["iqn.2001-04.com.example:h1".to_string()]);
    assert_eq!(
        e.present(&a.uuid, &["Web".into()]).unwrap().groups,
        vec!["Web".to_string()]
    );
    e.present(&b.uuid, &["Web".into(), "db".into()]).unwrap();
    e.present(&b.uuid, &["Web".into()]).unwrap(); // idempotent
    e.set_chap(Some(&ChapAccount {
        username: "spindle".into(),
        secret: "verysecret123".into(),
    }))
    .unwrap();
    let plan = e.export_plan().unwrap();
    let web = plan.targets.iter().find(|t| t.group == "Web").unwrap();
    assert_eq!(web.iqn, "iqn.2025-01.org.example:array:web");
    assert_eq!(web.luns.iter().map(|l| l.lun).collect::<Vec<_>>(), vec![1, 2]);
    assert!(web.luns.iter().any(|l| l.write_cache && l.element == b.uuid));
    assert!(web
        .luns
        .iter()
        .all(|l| l.vendor == "SPINDLE" && l.product == "LINUX-ARRAY"));
    let chap = plan.chap.clone().unwrap();
    assert_eq!(chap.read_secret().unwrap(), "verysecret123");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&chap.secret_file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(!serde_json::to_string(&plan).unwrap().contains("verysecret123"));
    assert!(!format!(
        "{:?}",
        ChapAccount {
            username: "u".into(),
            secret: "verysecret123".into()
        }
    )
    .contains("verysecret"));
    // LUN numbers are stable and not reused while presented.
    e.unpresent(&a.uuid, &["Web".into()]).unwrap();
    let plan = e.export_plan().unwrap();
    let web = plan.targets.iter().find(|t| t.group == "Web").unwrap();
    assert_eq!(web.luns.iter().map(|l| l.lun).collect::<Vec<_>>(), vec![2]);
    // Presented elements and groups in use cannot be removed.
    assert_eq!(
        kind(&e.remove(&b.uuid).unwrap_err()),
        ExceptionKind::StorageElementBusyEx
    );
    let busy = e.remove_groups(&["db".into()]).unwrap_err();
    assert_eq!(kind(&busy), ExceptionKind::StorageElementBusyEx);
    assert!(
        busy.to_string().contains("presented to it: 'b'"),
        "the message names what is presented: {busy}"
    );
    // A renamed group keeps its target's IQN (its hosts keep their LUNs), and no new group
    // can take that name's target.
    let target_of = |e: &Engine, g: &str| {
        let plan = e.export_plan().unwrap();
        plan.targets.iter().find(|t| t.group == g).map(|t| t.iqn.clone())
    };
    let db_target = target_of(&e, "db").unwrap();
    assert!(db_target.ends_with(":db"), "{db_target}");
    e.rename_group("db", "db2").unwrap();
    assert_eq!(e.groups(Some(&b.uuid)).unwrap().len(), 2);
    assert_eq!(target_of(&e, "db2"), Some(db_target.clone()));
    let shown = e.groups(None).unwrap();
    assert_eq!(
        shown.iter().find(|g| g.name == "db2").map(|g| g.target.clone()),
        Some(db_target.clone())
    );
    let err = e
        .create_groups(&[GroupSpec {
            name: "DB".into(),
            entries: vec![],
            modes: None,
        }])
        .unwrap_err();
    assert_eq!(kind(&err), ExceptionKind::InvalidValueEx);
    assert!(
        err.to_string()
            .contains("still exports its iSCSI target under that name"),
        "{err}"
    );
    // Nor can a rename; renaming a group back to its target's name is fine.
    let err = e.rename_group("web", "DB").unwrap_err();
    assert_eq!(kind(&err), ExceptionKind::InvalidValueEx);
    assert!(
        err.to_string().contains("still exports its iSCSI target"),
        "{err}"
    );
    e.rename_group("db2", "db").unwrap();
    assert_eq!(target_of(&e, "db"), Some(db_target.clone()));
    let too_many: Vec<String> = (0..=MAX_ACCESS_ENTRIES)
        .map(|i| format!("iqn.2001-04.com.example:n{i}"))
        .collect();
    assert_eq!(
        kind(&e.add_to_group("web", &too_many).unwrap_err()),
        ExceptionKind::InvalidValueEx
    );
}

#[test]
fn split_copies_everything_and_reports_progress() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let mut cfg = config(&fs.pool("p0"));
    cfg.split_rate_mib = Some(64);
    let mut e = engine(&cfg);
    let lun = e.create("base", "p0", 256 * MIB, true, None).unwrap();
    let lp = lun.path.clone().unwrap();
    for i in 0..48u64 {
        fill(&lp, i * (4 << 20), 1 << 20, (i as u8) | 1);
    }
    let c = e.clone_element(&lun.uuid, Some("base-c"), None).unwrap();
    let cp = c.path.clone().unwrap();
    assert!(has_shared_extents(&cp));
    fill(&cp, 1 << 20, 4096, 0xEE);
    // Presented and online: refused.
    e.create_groups(&[GroupSpec {
        name: "g".into(),
        entries: vec![],
        modes: None,
    }])
    .unwrap();
    e.present(&c.uuid, &["g".into()]).unwrap();
    assert!(!e.is_splittable(&c.uuid).unwrap());
    assert_eq!(
        kind(&e.split_start(&c.uuid).unwrap_err()),
        ExceptionKind::StorageElementBusyEx
    );
    e.set_online(&c.uuid, false).unwrap();
    assert!(e.is_splittable(&c.uuid).unwrap());
    let st = e.split_start(&c.uuid).unwrap();
    assert_eq!(st.progress, Some(0));
    assert_eq!(st.element.status, "SPLITTING");
    // While it runs the clone is busy.
    assert_eq!(
        kind(&e.set_online(&c.uuid, true).unwrap_err()),
        ExceptionKind::StorageElementBusyEx
    );
    assert_eq!(
        kind(&e.snapshot(&c.uuid, None).unwrap_err()),
        ExceptionKind::StorageElementBusyEx
    );
    let mut seen = Vec::new();
    let start = Instant::now();
    loop {
        let p = e.split_progress(&st.handle).unwrap();
        match p.progress {
            Some(x) => seen.push(x),
            None => break,
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "split did not finish: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.iter().any(|&x| x > 0 && x < 100),
        "no intermediate progress: {seen:?}"
    );
    let after = e.get(&c.uuid).unwrap();
    assert_eq!(after.se_type, SeType::Lun);
    assert_eq!(after.parent, None);
    assert_eq!(after.backing_generation, 1);
    assert!(!has_shared_extents(&cp), "the split left shared extents");
    assert_eq!(read(&cp, 1 << 20, 4096), vec![0xEE; 4096]);
    for i in 0..48u64 {
        let want = (i as u8) | 1;
        assert_eq!(read(&cp, i * (4 << 20), 4096), vec![want; 4096]);
    }
    assert!(
        spindle_plugin_linux::fsops::allocated(&cp).unwrap() < 100 << 20,
        "holes stayed holes"
    );
    assert!(e.clones(Some(&lun.uuid)).unwrap().is_empty());
    e.remove(&lun.uuid).unwrap();
    assert!(e.check_consistency().unwrap().is_empty());
}

#[test]
fn non_reflink_pool_reports_clones_unsupported() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Tmpfs, 64);
    let cfg = config(&fs.pool("p0"));
    let mut e = engine(&cfg);
    let caps = e.capabilities().unwrap();
    assert_eq!(caps.clone, OpAbility::Unsupported);
    assert_eq!(caps.snapshot, OpAbility::Unsupported);
    assert_eq!(caps.snapclone, OpAbility::Unsupported);
    assert_eq!(caps.splitclone, OpAbility::Unsupported);
    let info = e.info().unwrap();
    assert!(
        info.pools[0].desc.contains("UNSUPPORTED"),
        "{}",
        info.pools[0].desc
    );
    let lun = e.create("l", "p0", MIB, true, None).unwrap();
    let before = listing(&fs.mnt.join("p0"));
    assert_eq!(
        kind(&e.clone_element(&lun.uuid, None, None).unwrap_err()),
        ExceptionKind::NoSuchOperationEx
    );
    assert_eq!(
        kind(&e.snapshot(&lun.uuid, None).unwrap_err()),
        ExceptionKind::NoSuchOperationEx
    );
    assert!(!e.is_cloneable(&lun.uuid).unwrap());
    assert_eq!(listing(&fs.mnt.join("p0")), before);
}

#[test]
fn multi_snapshot_is_atomic_on_btrfs_and_refused_on_xfs() {
    if !can_mount() {
        return;
    }
    let xfs = TestFs::new(Kind::Xfs, 512);
    let xcfg = config(&xfs.pool("p0"));
    let mut x = engine(&xcfg);
    let a = x.create("a", "p0", MIB, true, None).unwrap();
    let b = x.create("b", "p0", MIB, true, None).unwrap();
    let err = x
        .multi_snapshot(&[a.uuid.clone(), b.uuid.clone()], None)
        .unwrap_err();
    assert_eq!(kind(&err), ExceptionKind::NoSuchOperationEx);
    assert!(x.snapshots(None).unwrap().is_empty());

    let bt = TestFs::new(Kind::Btrfs, 512);
    let bcfg = config(&bt.pool("p0"));
    let mut e = engine(&bcfg);
    assert!(e.info().unwrap().pools[0].subvolume);
    let a = e.create("a", "p0", MIB, true, None).unwrap();
    let b = e.create("b", "p0", MIB, true, None).unwrap();
    let (ap, bp) = (a.path.clone().unwrap(), b.path.clone().unwrap());
    // A writer bumps a counter in a, then in b, each write durable before the next; at any
    // instant a == b or a == b + 1. A point-in-time snapshot must keep that.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let (wa, wb) = (ap.clone(), bp.clone());
    let writer = std::thread::spawn(move || {
        use std::os::unix::fs::FileExt;
        let fa = std::fs::OpenOptions::new().write(true).open(&wa).unwrap();
        let fb = std::fs::OpenOptions::new().write(true).open(&wb).unwrap();
        let mut n = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            n += 1;
            fa.write_all_at(&n.to_le_bytes(), 0).unwrap();
            fa.sync_data().unwrap();
            fb.write_all_at(&n.to_le_bytes(), 0).unwrap();
            fb.sync_data().unwrap();
        }
        n
    });
    std::thread::sleep(Duration::from_millis(200));
    let snap = e
        .multi_snapshot(&[a.uuid.clone(), b.uuid.clone()], Some("both"))
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let last = writer.join().unwrap();
    assert_eq!(snap.members.len(), 2);
    let img = |el: &str| {
        let m = snap.members.iter().find(|m| m.element == el).unwrap();
        u64::from_le_bytes(read(&m.path, 0, 8).try_into().unwrap())
    };
    let (sa, sb) = (img(&a.uuid), img(&b.uuid));
    assert!(
        sa == sb || sa == sb + 1,
        "not one point in time: a={sa} b={sb} (writer reached {last})"
    );
    assert!(sb > 0);
    // The images are frozen and the subvolume snapshot is gone.
    fill(&ap, 0, 8, 0);
    assert_eq!(img(&a.uuid), sa);
    assert!(listing(&bt.mnt.join("p0"))
        .iter()
        .all(|n| !n.starts_with(".spindle-msnap")));
    // Restore one member only.
    e.restore(&snap.uuid, Some(&a.uuid)).unwrap();
    assert_eq!(u64::from_le_bytes(read(&ap, 0, 8).try_into().unwrap()), sa);
    let cl = e.clone_from_snap(&b.uuid, &snap.uuid, None, None).unwrap();
    assert_eq!(
        u64::from_le_bytes(read(cl.path.as_ref().unwrap(), 0, 8).try_into().unwrap()),
        sb
    );
    assert!(e.check_consistency().unwrap().is_empty());
    drop(e);
    let _ = Engine::open(&bcfg, EngineOptions::default()).unwrap();
}

/// Pools that share a file system share its space: the array's totals count it once (two
/// btrfs subvolumes, or two directories of one XFS), and add a pool on another file system.
#[test]
fn pools_on_one_file_system_are_counted_once() {
    if !can_mount() {
        return;
    }
    let bt = TestFs::new(Kind::Btrfs, 512);
    let xfs = TestFs::new(Kind::Xfs, 512);
    let mut cfg = config(&bt.pool("a"));
    cfg.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "b".into(),
        path: bt.pool("b"),
    });
    let mut e = engine(&cfg);
    let one = e.info().unwrap();
    assert_eq!(one.pools.len(), 2);
    assert_eq!(one.total, one.pools[0].total, "{one:?}");
    assert_eq!(one.free, one.pools[0].free);
    cfg.pools.push(spindle_plugin_linux::config::PoolConfig {
        name: "x".into(),
        path: xfs.pool("x"),
    });
    drop(e);
    let mut e = engine(&cfg);
    let two = e.info().unwrap();
    assert_eq!(two.total, two.pools[0].total + two.pools[2].total, "{two:?}");
}

/// A size refused as too large is quoted as it was given (not as rounded up to whole MiB).
#[test]
fn a_refused_size_is_quoted_as_given() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let mut e = engine(&config(&fs.pool("p0")));
    let m = e
        .create("huge", "p0", i64::MAX, true, None)
        .unwrap_err()
        .to_string();
    assert!(m.contains(&format!("size {}", i64::MAX)), "{m}");
    let lun = e.create("small", "p0", MIB, true, None).unwrap();
    let m = e.resize(&lun.uuid, i64::MAX).unwrap_err().to_string();
    assert!(m.contains(&format!("new_size {}", i64::MAX)), "{m}");
}

/// A pool directory belongs to one array: a second array (another state directory) given it
/// is refused before it touches a file, whether the pool names its owner or, from before
/// pools were claimed, only holds the first array's images; the first array keeps
/// everything.
#[test]
fn a_pool_belongs_to_one_array() {
    if !can_mount() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let cfg = config(&pool);
    let mut a = engine(&cfg);
    let lun = a.create("keep", "p0", 8 * MIB, true, None).unwrap();
    fill(lun.path.as_ref().unwrap(), 0, 4096, 0x5a);
    a.snapshot(&lun.uuid, Some("keep-s")).unwrap();
    a.clone_element(&lun.uuid, Some("keep-c"), None).unwrap();
    let before = listing(&pool);
    let state_b = tempfile::tempdir().unwrap();
    let other = |cfg: &spindle_plugin_linux::config::ArrayConfig| {
        let mut b = cfg.clone();
        b.state = Some(state_b.path().join("state"));
        Engine::open(&b, opts())
    };
    let owner = pool.join(spindle_plugin_linux::engine::POOL_OWNER_FILE);
    assert_eq!(
        std::fs::read_to_string(&owner).unwrap().trim(),
        a.array_id(),
        "the pool names its array"
    );
    let err = other(&cfg).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArray(_)) && err.to_string().contains("belongs to another array"),
        "{err}"
    );
    assert_eq!(listing(&pool), before, "a refused array touched the pool");
    // Refused, it makes nothing: no state directory, no claim on a free pool it was given too.
    assert!(
        !state_b.path().join("state").exists(),
        "a refused array made its state"
    );
    let free = fs.pool("q0");
    let mut both = cfg.clone();
    both.pools.insert(
        0,
        spindle_plugin_linux::config::PoolConfig {
            name: "q0".into(),
            path: free.clone(),
        },
    );
    assert!(other(&both).is_err());
    assert!(listing(&free).is_empty(), "a refused array claimed a free pool");
    // A pool claimed by nobody yet (made before pools were claimed) that holds images the
    // new array did not make is refused too.
    std::fs::remove_file(&owner).unwrap();
    let err = other(&cfg).unwrap_err();
    assert!(
        err.to_string().contains("image file(s) this array did not make"),
        "{err}"
    );
    let unowned: Vec<String> = before
        .iter()
        .filter(|n| n.as_str() != spindle_plugin_linux::engine::POOL_OWNER_FILE)
        .cloned()
        .collect();
    assert_eq!(listing(&pool), unowned, "a refused array touched the pool");
    // The first array does not claim it again while its database says it claimed it once
    // (the directory could be the pool's mount point): it is degraded, the pool untouched.
    drop(a);
    let a = engine(&cfg);
    assert!(
        a.unavailable_pools().contains_key("p0"),
        "the pool was claimed again"
    );
    assert_eq!(listing(&pool), unowned, "a degraded array touched the pool");
    // Made before pools were claimed, the array has no such record: it claims its registered
    // pool again and has everything.
    drop(a);
    rusqlite::Connection::open(cfg.state_dir().unwrap().join("array.db"))
        .unwrap()
        .execute("DELETE FROM meta WHERE key LIKE 'claimed_pool:%'", [])
        .unwrap();
    let a = engine(&cfg);
    assert_eq!(std::fs::read_to_string(&owner).unwrap().trim(), a.array_id());
    assert_eq!(a.list(&[SeType::Lun, SeType::SnapClone]).unwrap().len(), 2);
    assert_eq!(a.snapshots(None).unwrap().len(), 1);
    assert_eq!(read(lun.path.as_ref().unwrap(), 0, 4096), vec![0x5a; 4096]);
    assert!(a.check_consistency().unwrap().is_empty());
}
