//! Changing live targets with `Tgtadm` against a real tgtd: removals, initiator-address
//! rules, logical units that differ from their spec (`lun_mismatch`) and are re-created, and
//! recovery after tgtd is killed with SIGKILL.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{INIT_A, INIT_B, MIB, OUTSIDER};
use spindle_tgt::{lun_mismatch, CachePolicy, InitiatorAddress, Iqn, LunSpec, TargetInfo, Tgtadm};

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
fn removed_luns_initiators_accounts_and_targets_are_gone_for_initiators() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let t1 = common::export(
        adm,
        1,
        "rm-1",
        &[INIT_A, INIT_B],
        &[
            (1, inst.lun("1.img", 4 * MIB, 0x51)),
            (2, inst.lun("2.img", 4 * MIB, 0x52)),
        ],
    );
    common::chap(adm, 1, "bob", SECRET);
    let t2 = common::export(
        adm,
        2,
        "rm-2",
        &[INIT_B],
        &[(1, inst.lun("3.img", 4 * MIB, 0x53))],
    );
    let bob = Some(("bob", SECRET));
    assert_eq!(inst.capacity(INIT_B, bob, &t1, 2).expect("capacity"), 4 * MIB);
    assert_eq!(inst.capacity(INIT_B, None, &t2, 1).expect("capacity"), 4 * MIB);
    assert!(inst.capacity(INIT_A, None, &t1, 1).is_err(), "CHAP required");

    // Remove a LUN, an initiator, an account (unbound first) and a whole target.
    adm.delete_lu(1, 2).expect("delete LUN 2");
    adm.unbind_initiator(1, INIT_B).expect("unbind B");
    adm.unbind_account(1, "bob").expect("unbind bob");
    adm.delete_account("bob").expect("delete bob");
    adm.delete_target(2, true).expect("delete target 2");

    let info = common::show(adm, &t1);
    assert_eq!(info.acl_initiators, vec![INIT_A]);
    assert!(info.accounts.is_empty());
    assert_eq!(info.luns.iter().map(|l| l.lun).collect::<Vec<_>>(), vec![0, 1]);
    assert!(adm.accounts().expect("accounts").is_empty());
    assert_eq!(
        adm.targets()
            .expect("show")
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>(),
        vec![t1.clone()]
    );
    let (_, seen) = inst.ls(INIT_B, None);
    assert!(seen.is_empty(), "B still sees {seen:?}");
    assert!(inst.capacity(INIT_B, bob, &t1, 1).is_err());
    let (_, seen) = inst.ls(INIT_A, None);
    assert_eq!(seen[&t1].keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(
        inst.capacity(INIT_A, None, &t1, 1).expect("no CHAP any more"),
        4 * MIB
    );
    assert!(inst.capacity(INIT_A, None, &t1, 2).is_err(), "LUN 2 answered");

    // LUN 0 is tgt's controller and cannot be deleted; the target can.
    assert!(adm.delete_lu(1, 0).is_err());
    adm.delete_target(1, false).expect("delete target 1");
    assert!(adm.targets().expect("show").is_empty());
}

#[test]
fn an_address_rule_opens_a_target_to_everyone_until_unbind_address_removes_it() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let t = common::export(
        adm,
        3,
        "addr",
        &[INIT_A],
        &[(1, inst.lun("a.img", 4 * MIB, 0x61))],
    );
    let (_, seen) = inst.ls(OUTSIDER, None);
    assert!(seen.is_empty(), "outsider saw {seen:?}");

    bind_all(&inst, 3);
    assert_eq!(common::show(adm, &t).acl_addresses, vec!["ALL"]);
    let (out, seen) = inst.ls(OUTSIDER, None);
    assert!(
        seen.contains_key(&t),
        "ALL should have opened the target: {}",
        out.text
    );
    assert_eq!(inst.capacity(OUTSIDER, None, &t, 1).expect("capacity"), 4 * MIB);

    adm.unbind_address(3, &InitiatorAddress::new("ALL").expect("valid"))
        .expect("unbind ALL");
    let info = common::show(adm, &t);
    assert!(info.acl_addresses.is_empty(), "{info:?}");
    assert_eq!(info.acl_initiators, vec![INIT_A]);
    let (_, seen) = inst.ls(OUTSIDER, None);
    assert!(seen.is_empty(), "outsider still sees {seen:?}");
    assert!(inst.capacity(OUTSIDER, None, &t, 1).is_err());
    assert_eq!(inst.capacity(INIT_A, None, &t, 1).expect("capacity"), 4 * MIB);
}

#[test]
fn lun_mismatch_reads_what_differs_in_a_real_unit_and_a_re_created_unit_matches() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let mut spec = inst.lun("d.img", 4 * MIB, 0x62);
    spec.cache = CachePolicy::WriteThrough;
    let t = common::export(adm, 4, "drift", &[INIT_A], &[]);

    // `--op new` alone leaves tgt's default identity and no O_SYNC.
    adm.new_lu(4, 1, &spec.backing, CachePolicy::WriteBack)
        .expect("new LU");
    let lu = common::show_lu(adm, &t, 1);
    assert!(lu.scsi_id.starts_with("IET"), "{lu:?}");
    let why = lun_mismatch(&lu, &spec).expect("a default unit differs");
    for part in [
        "scsi_id",
        "scsi_sn",
        "cache policy WriteBack instead of WriteThrough",
    ] {
        assert!(why.contains(part), "{part} missing from {why:?}");
    }
    assert!(!why.contains("backing file"), "{why}");
    let mut elsewhere = spec.clone();
    elsewhere.backing = inst.backing("other.img", 4 * MIB);
    assert!(lun_mismatch(&lu, &elsewhere)
        .expect("differs")
        .contains("backing file"));

    // Configuring sets the identity, but not the open flags: tgtd fixes them at `--op new`.
    adm.configure_lu(4, 1, &spec).expect("configure");
    let lu = common::show_lu(adm, &t, 1);
    assert_eq!(
        lun_mismatch(&lu, &spec).as_deref(),
        Some("cache policy WriteBack instead of WriteThrough"),
        "{lu:?}"
    );

    // Re-created with the same LUN: it matches, and initiators see the spec's identity.
    adm.delete_lu(4, 1).expect("delete");
    adm.add_lun(4, 1, &spec).expect("add");
    let lu = common::show_lu(adm, &t, 1);
    assert_eq!(lun_mismatch(&lu, &spec), None, "{lu:?}");
    let out = inst.page83(INIT_A, None, &t, 1);
    assert!(common::has_naa6(&out, &spec.scsi_id), "{}", out.text);

    // The online state is not a mismatch: it is set in place.
    adm.set_lu_online(4, 1, false).expect("offline");
    assert_eq!(lun_mismatch(&common::show_lu(adm, &t, 1), &spec), None);
}

/// Builds the two targets of the restart test with fixed tids.
fn build_restart_targets(adm: &Tgtadm, a: &[(u64, LunSpec)], b: &[(u64, LunSpec)]) {
    common::export(adm, 1, "restart-a", &[], a);
    common::chap(adm, 1, "carol", SECRET);
    adm.bind_initiator(1, &Iqn::new(INIT_A).expect("valid"))
        .expect("bind A");
    common::export(adm, 2, "restart-b", &[INIT_B], b);
}

#[test]
fn after_kill_9_a_restart_and_the_same_tgtadm_calls_restore_everything() {
    require_tgtd!();
    let mut inst = common::start();
    let mut lun7 = inst.lun("r7.img", 6 * MIB, 0x77);
    lun7.cache = CachePolicy::WriteThrough;
    let a = vec![(1, inst.lun("r1.img", 4 * MIB, 0x71)), (7, lun7)];
    let mut offline = inst.lun("r9.img", 2 * MIB, 0x79);
    offline.online = false;
    // iscsi-ls (libiscsi 1.19) stops listing a target at its first unit that fails TEST
    // UNIT READY, so the offline unit gets the highest LUN.
    let b = vec![(3, inst.lun("r3.img", 2 * MIB, 0x73)), (9, offline)];
    build_restart_targets(inst.tgtd.tgtadm(), &a, &b);
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
    let adm = inst.tgtd.tgtadm();
    assert!(adm.targets().expect("show").is_empty(), "tgtd remembered targets");
    assert!(
        adm.accounts().expect("accounts").is_empty(),
        "tgtd remembered accounts"
    );
    build_restart_targets(adm, &a, &b);
    assert_eq!(essence(&adm.targets().expect("show")), before);

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
    for (lun, spec) in &a {
        let out = inst.page83(INIT_A, creds, &na, *lun);
        assert!(common::has_naa6(&out, &spec.scsi_id), "LUN {lun}: {}", out.text);
    }
}
