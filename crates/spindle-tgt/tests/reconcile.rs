//! Reconciliation against a real tgtd: idempotence, removals, drift, foreign targets, and
//! recovery after tgtd is killed with SIGKILL.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{INIT_A, INIT_B, MIB, OUTSIDER};
use spindle_tgt::{
    reconcile, Action, CachePolicy, InitiatorAddress, Iqn, LunSpec, Secret, TargetInfo, UserName,
};

const SECRET: &str = "restart-secret-1";

/// What must survive a restart: per target, tid, ACL, accounts and per LUN the identity.
fn essence(targets: &[TargetInfo]) -> BTreeMap<String, String> {
    targets
        .iter()
        .map(|t| {
            let mut acl = t.acl_initiators.clone();
            acl.sort();
            let mut accounts = t.accounts.clone();
            accounts.sort();
            let luns: Vec<String> = t
                .luns
                .iter()
                .map(|l| {
                    format!(
                        "{}:{}:{}:{}:{}:{}:{}:{}:{}",
                        l.lun,
                        l.device_type,
                        l.scsi_id,
                        l.scsi_sn,
                        l.size_mb,
                        l.online,
                        l.backing_path.as_deref().unwrap_or("-"),
                        l.oflag_sync,
                        l.oflag_direct
                    )
                })
                .collect();
            (
                t.name.clone(),
                format!(
                    "tid={} acl={acl:?} addresses={:?} accounts={accounts:?} luns={luns:?}",
                    t.tid, t.acl_addresses
                ),
            )
        })
        .collect()
}

/// Opens a target to every initiator (`-I ALL`), which spindle-tgt itself never does.
fn bind_all(inst: &common::Instance, tid: u32) {
    let all = InitiatorAddress::new("ALL").expect("valid");
    let status = Command::new("/usr/sbin/tgtadm")
        .env("TGT_IPC_SOCKET", inst.dir.path().join("sock"))
        .args([
            "-C",
            &inst.tgtd.tgtadm().control_port().to_string(),
            "--lld",
            "iscsi",
        ])
        .args(["--op", "bind", "--mode", "target", "--tid", &tid.to_string()])
        .args(["--initiator-address", all.as_str()])
        .status()
        .expect("tgtadm");
    assert!(status.success());
}

#[test]
fn reconcile_is_idempotent_and_removes_what_is_not_desired() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let mut t1 = common::target(
        &[INIT_A, INIT_B],
        vec![
            (1, inst.lun("1.img", 4 * MIB, 0x51)),
            (2, inst.lun("2.img", 4 * MIB, 0x52)),
        ],
    );
    t1.accounts.insert(
        UserName::new("bob").expect("valid"),
        Secret::new(SECRET).expect("valid"),
    );
    let t2 = common::target(&[INIT_B], vec![(1, inst.lun("3.img", 4 * MIB, 0x53))]);
    let mut want = common::desired(vec![("idem-1", t1), ("idem-2", t2)]);

    let first = reconcile(adm, &want).expect("reconcile");
    assert!(first.is_clean(), "{first}");
    // 2 targets, 1 account, 1 binding, 3 LUNs, 3 ACL entries.
    assert_eq!(first.actions.len(), 2 + 1 + 1 + 3 + 3, "{first}");
    // The ACL comes last on a new target: nobody can log in to a half-built one.
    let n1 = common::name("idem-1").to_string();
    let tid1 = first.tids[&n1];
    let last_for_t1 = first
        .actions
        .iter()
        .rposition(|a| matches!(a, Action::AddLun { tid, .. } if *tid == tid1))
        .expect("LUNs added");
    let first_bind = first
        .actions
        .iter()
        .position(|a| matches!(a, Action::BindInitiator { tid, .. } if *tid == tid1))
        .expect("ACL bound");
    assert!(last_for_t1 < first_bind, "{first}");
    let before = adm.targets().expect("show");

    let second = reconcile(adm, &want).expect("reconcile");
    assert!(second.is_noop(), "second reconcile did something:\n{second}");
    assert_eq!(second.tids, first.tids);
    assert_eq!(essence(&adm.targets().expect("show")), essence(&before));

    // Remove a LUN, an initiator, an account and a whole target.
    let t1 = want.targets.get_mut(&common::name("idem-1")).expect("t1");
    t1.luns.remove(&2);
    t1.initiators.remove(&Iqn::new(INIT_B).expect("valid"));
    t1.accounts.clear();
    want.targets.remove(&common::name("idem-2"));
    let third = reconcile(adm, &want).expect("reconcile");
    assert!(third.is_clean(), "{third}");
    let tid2 = first.tids[&common::name("idem-2").to_string()];
    for expected in [
        Action::DeleteTarget {
            tid: tid2,
            name: common::name("idem-2").to_string(),
        },
        Action::DeleteAccount { user: "bob".into() },
        Action::UnbindInitiator {
            tid: tid1,
            initiator: INIT_B.into(),
        },
        Action::DeleteLun { tid: tid1, lun: 2 },
    ] {
        assert!(third.actions.contains(&expected), "missing {expected}:\n{third}");
    }
    assert_eq!(third.actions.len(), 4, "{third}");
    let (_, seen) = inst.ls(INIT_B, None);
    assert!(seen.is_empty(), "B still sees {seen:?}");
    let (_, seen) = inst.ls(INIT_A, None);
    assert_eq!(seen[&n1].keys().copied().collect::<Vec<_>>(), vec![1]);
    assert!(reconcile(adm, &want).expect("reconcile").is_noop());

    // An empty desired state removes every owned target.
    want.targets.clear();
    let last = reconcile(adm, &want).expect("reconcile");
    assert_eq!(
        last.actions,
        vec![Action::DeleteTarget { tid: tid1, name: n1 }],
        "{last}"
    );
    assert!(adm.targets().expect("show").is_empty());
}

#[test]
fn drift_is_repaired_and_foreign_targets_are_left_alone() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();

    // A target spindle does not own, open to everyone, with its own account.
    let foreign = Iqn::new("iqn.2024-01.org.other:foreign").expect("valid");
    adm.new_target(50, &foreign).expect("foreign target");
    let foreign_lun = inst.lun("foreign.img", 2 * MIB, 0x60);
    adm.add_lun(50, 1, &foreign_lun).expect("foreign LUN");
    adm.new_account(
        &UserName::new("foreignuser").expect("valid"),
        &Secret::new("foreign-secret-1").expect("valid"),
    )
    .expect("foreign account");
    adm.bind_account(50, &UserName::new("foreignuser").expect("valid"))
        .expect("bind");
    bind_all(&inst, 50);
    let foreign_now = || {
        let mut t = adm
            .target_by_name(foreign.as_str())
            .expect("show")
            .expect("foreign");
        t.sessions.clear();
        t
    };
    let foreign_before = foreign_now();

    let mut t = common::target(
        &[INIT_A],
        vec![
            (1, inst.lun("d1.img", 4 * MIB, 0x61)),
            (2, inst.lun("d2.img", 4 * MIB, 0x62)),
        ],
    );
    t.luns.get_mut(&2).expect("lun 2").cache = CachePolicy::WriteThrough;
    let want = common::desired(vec![("drift", t)]);
    let first = reconcile(adm, &want).expect("reconcile");
    assert!(first.is_clean(), "{first}");
    assert_eq!(first.foreign_targets, vec![foreign.to_string()]);
    let name = common::name("drift").to_string();
    let tid = first.tids[&name];
    assert_ne!(tid, 50);
    let before = adm.targets().expect("show");

    // Someone meddles with spindle's target.
    bind_all(&inst, tid);
    adm.bind_initiator(tid, &Iqn::new(OUTSIDER).expect("valid"))
        .expect("stray ACL");
    adm.unbind_initiator(tid, INIT_A).expect("drop ACL");
    adm.delete_lu(tid, 1).expect("drop LUN 1");
    let stray = inst.lun("stray.img", 2 * MIB, 0x63);
    adm.add_lun(tid, 9, &stray).expect("stray LUN");
    adm.set_lu_online(tid, 2, false).expect("offline");
    adm.delete_lu(tid, 2).expect("drop LUN 2");
    let mut wrong = want.targets.values().next().expect("t").luns[&2].clone();
    wrong.cache = CachePolicy::WriteBack; // created without O_SYNC
    adm.add_lun(tid, 2, &wrong)
        .expect("LUN 2 with the wrong cache policy");
    let (_, seen) = inst.ls(OUTSIDER, None);
    assert!(
        seen.contains_key(&name),
        "ALL should have opened the target: {seen:?}"
    );

    let fix = reconcile(adm, &want).expect("reconcile");
    assert!(fix.is_clean(), "{fix}");
    for expected in [
        Action::UnbindAddress {
            tid,
            address: "ALL".into(),
        },
        Action::UnbindInitiator {
            tid,
            initiator: OUTSIDER.into(),
        },
        Action::DeleteLun { tid, lun: 9 },
        Action::AddLun { tid, lun: 1 },
        Action::BindInitiator {
            tid,
            initiator: INIT_A.into(),
        },
    ] {
        assert!(fix.actions.contains(&expected), "missing {expected}:\n{fix}");
    }
    assert!(
        fix.actions.iter().any(
            |a| matches!(a, Action::RecreateLun { lun: 2, reason, .. } if reason.contains("cache policy"))
        ),
        "{fix}"
    );
    assert_eq!(fix.actions.len(), 6, "{fix}");
    assert_eq!(essence(&adm.targets().expect("show")), essence(&before));
    let (_, seen) = inst.ls(OUTSIDER, None);
    assert!(
        !seen.contains_key(&name),
        "outsider still sees spindle's target: {seen:?}"
    );
    assert!(
        seen.contains_key(foreign.as_str()),
        "the foreign target is open to all, as its owner left it"
    );
    assert!(reconcile(adm, &want).expect("reconcile").is_noop());

    // Foreign target and account untouched.
    assert_eq!(foreign_now(), foreign_before);
    assert!(adm
        .accounts()
        .expect("accounts")
        .contains(&"foreignuser".to_string()));

    // Wanting an account that a foreign target uses: tgt's accounts are global, so its
    // secret cannot be reset without changing the foreign target's — refused and reported.
    let mut greedy = want.clone();
    greedy.targets.values_mut().for_each(|t| {
        t.accounts.insert(
            UserName::new("foreignuser").expect("valid"),
            Secret::new(SECRET).expect("valid"),
        );
    });
    let report = reconcile(adm, &greedy).expect("reconcile");
    assert_eq!(report.failures.len(), 1, "{report}");
    assert!(report.actions.is_empty(), "{report}");
    assert!(report.failures[0].error.contains("outside"), "{report}");
    assert!(!report.failures[0].error.contains(SECRET), "{report}");
    assert_eq!(foreign_now(), foreign_before);
}

#[test]
fn after_kill_9_a_restart_and_reconcile_restore_everything() {
    require_tgtd!();
    let mut inst = common::start();
    let mut a = common::target(
        &[INIT_A],
        vec![
            (1, inst.lun("r1.img", 4 * MIB, 0x71)),
            (7, inst.lun("r7.img", 6 * MIB, 0x77)),
        ],
    );
    a.accounts.insert(
        UserName::new("carol").expect("valid"),
        Secret::new(SECRET).expect("valid"),
    );
    let lun7: &mut LunSpec = a.luns.get_mut(&7).expect("lun 7");
    lun7.cache = CachePolicy::WriteThrough;
    let mut offline = inst.lun("r9.img", 2 * MIB, 0x79);
    offline.online = false;
    // iscsi-ls (libiscsi 1.19) stops listing a target at its first unit that fails TEST
    // UNIT READY, so the offline unit gets the highest LUN.
    let b = common::target(
        &[INIT_B],
        vec![(3, inst.lun("r3.img", 2 * MIB, 0x73)), (9, offline)],
    );
    let mut want = common::desired(vec![("restart-b", b), ("restart-a", a)]);
    let first = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert!(first.is_clean(), "{first}");
    want.pin_tids(&first.tids);
    let before = essence(&inst.tgtd.tgtadm().targets().expect("show"));
    let na = common::name("restart-a").to_string();
    let nb = common::name("restart-b").to_string();
    let creds = Some(("carol", SECRET));
    let page83_before = inst.page83(INIT_A, creds, &na, 7).stdout;

    // Crash: SIGKILL, exactly as `kill -9` would.
    let pid = inst.tgtd.pid().expect("pid");
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(!inst.tgtd.is_alive());
    assert!(inst
        .tgtd
        .tgtadm()
        .targets()
        .expect_err("dead tgtd answered")
        .is_not_running());
    assert!(inst.capacity(INIT_A, creds, &na, 1).is_err());

    assert!(
        inst.tgtd.ensure_running().expect("restart"),
        "ensure_running did not restart"
    );
    assert!(
        inst.tgtd.tgtadm().targets().expect("show").is_empty(),
        "tgtd remembered something"
    );
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.tids, first.tids);
    assert_eq!(essence(&inst.tgtd.tgtadm().targets().expect("show")), before);
    assert!(reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile").is_noop());

    // What initiators see is back: LUN numbers, ACLs, CHAP, identity, sizes, online state.
    let (out, seen) = inst.ls(INIT_A, creds);
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec![&na], "{}", out.text);
    assert_eq!(seen[&na].keys().copied().collect::<Vec<_>>(), vec![1, 7]);
    let (out, seen) = inst.ls(INIT_B, None);
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec![&nb], "{}", out.text);
    assert_eq!(
        seen[&nb].keys().copied().collect::<Vec<_>>(),
        vec![3],
        "offline LUN 9 listed: {}",
        out.text
    );
    let offline = inst
        .capacity(INIT_B, None, &nb, 9)
        .expect_err("offline LUN answered");
    assert!(offline.text.contains("NOT READY"), "{}", offline.text);
    assert_eq!(inst.capacity(INIT_B, None, &nb, 3).expect("capacity"), 2 * MIB);
    let (_, seen) = inst.ls(OUTSIDER, None);
    assert!(seen.is_empty());
    let wrong = inst
        .capacity(INIT_A, Some(("carol", "not-the-secret")), &na, 1)
        .expect_err("wrong secret");
    assert!(wrong.text.contains("Authentication failure"), "{}", wrong.text);
    assert_eq!(inst.capacity(INIT_A, creds, &na, 7).expect("capacity"), 6 * MIB);
    let page83_after = inst.page83(INIT_A, creds, &na, 7).stdout;
    assert_eq!(
        page83_after, page83_before,
        "page 0x83 changed (NAA-6 and the tid-derived NAA-3 included)"
    );
    for (lun, spec) in &want.targets[&common::name("restart-a")].luns {
        let out = inst.page83(INIT_A, creds, &na, *lun);
        assert!(common::has_naa6(&out, &spec.scsi_id), "LUN {lun}: {}", out.text);
    }
}

#[test]
fn tids_are_deterministic_and_pins_are_honoured() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let mut want = common::desired(vec![
        ("z", common::target(&[], vec![])),
        ("a", common::target(&[], vec![])),
        ("m", common::target(&[], vec![])),
    ]);
    want.targets.get_mut(&common::name("z")).expect("z").tid = Some(1);
    let report = reconcile(adm, &want).expect("reconcile");
    let tids: Vec<u32> = ["a", "m", "z"]
        .iter()
        .map(|s| report.tids[&common::name(s).to_string()])
        .collect();
    // z pinned to 1; the others, in name order, take the smallest free ids around it.
    assert_eq!(tids, vec![2, 3, 1], "{report}");
    let err = {
        let mut bad = want.clone();
        bad.targets.get_mut(&common::name("a")).expect("a").tid = Some(1);
        reconcile(adm, &bad).expect_err("two pins on one tid")
    };
    assert!(err.to_string().contains("both pin tid 1"), "{err}");
}
