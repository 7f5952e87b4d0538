//! What initiators see of a reconciled export: ACLs, LUNs, page 0x83/0x80 identity, exact
//! sizes (also after a resize), online state.

#[macro_use]
mod common;

use std::collections::BTreeMap;

use common::{INIT_A, INIT_B, MIB, OUTSIDER};
use spindle_tgt::{reconcile, Action, ProductId, VendorId};

#[test]
fn acl_decides_who_sees_which_luns() {
    require_tgtd!();
    let inst = common::start();
    let mut t1_lun2 = inst.lun("t1-2.img", 12 * MIB, 2);
    t1_lun2.vendor_id = VendorId::new("ACME").expect("valid");
    t1_lun2.product_id = ProductId::new("SPARSE-LUN").expect("valid");
    let want = common::desired(vec![
        (
            "t1",
            common::target(
                &[INIT_A],
                vec![(1, inst.lun("t1-1.img", 8 * MIB, 1)), (2, t1_lun2)],
            ),
        ),
        (
            "t2",
            common::target(&[INIT_B], vec![(5, inst.lun("t2-5.img", 4 * MIB, 3))]),
        ),
    ]);
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert!(report.is_clean(), "{report}");
    let t1 = common::name("t1").to_string();
    let t2 = common::name("t2").to_string();

    // Each initiator in an ACL sees exactly its target and exactly the desired LUNs.
    let (out, seen) = inst.ls(INIT_A, None);
    assert!(out.ok, "{}", out.text);
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec![&t1], "{}", out.text);
    assert_eq!(
        seen[&t1].keys().copied().collect::<Vec<_>>(),
        vec![1, 2],
        "{}",
        out.text
    );
    let (out, seen) = inst.ls(INIT_B, None);
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec![&t2], "{}", out.text);
    assert_eq!(
        seen[&t2].keys().copied().collect::<Vec<_>>(),
        vec![5],
        "{}",
        out.text
    );

    // An initiator outside every ACL sees nothing and cannot log in.
    let (out, seen) = inst.ls(OUTSIDER, None);
    assert!(seen.is_empty(), "outsider saw {seen:?}: {}", out.text);
    let err = inst
        .capacity(OUTSIDER, None, &t1, 1)
        .expect_err("outsider must not log in");
    assert!(
        err.text.contains("Login Failed") || err.text.contains("not found"),
        "{}",
        err.text
    );
    // Nor may A reach B's target.
    assert!(inst.capacity(INIT_A, None, &t2, 5).is_err());

    // Exact sizes.
    assert_eq!(inst.capacity(INIT_A, None, &t1, 1).expect("capacity"), 8 * MIB);
    assert_eq!(inst.capacity(INIT_A, None, &t1, 2).expect("capacity"), 12 * MIB);
    assert_eq!(inst.capacity(INIT_B, None, &t2, 5).expect("capacity"), 4 * MIB);

    // INQUIRY vendor/product (tgtadm does not show them; the initiator does).
    let inq = inst.inquiry(INIT_A, &t1, 2);
    assert!(inq.text.contains("Vendor:ACME"), "{}", inq.text);
    assert!(inq.text.contains("Product:SPARSE-LUN"), "{}", inq.text);
    let inq = inst.inquiry(INIT_A, &t1, 1);
    assert!(inq.text.contains("Vendor:SPINDLE"), "{}", inq.text);
}

#[test]
fn page83_carries_the_scsi_id_as_naa6_and_page80_the_serial() {
    require_tgtd!();
    let inst = common::start();
    let specs: BTreeMap<u64, _> = [
        (1, inst.lun("a.img", 4 * MIB, 0x11)),
        (2, inst.lun("b.img", 4 * MIB, 0x0a)),
        (3, inst.lun("c.img", 4 * MIB, 0xfe)),
    ]
    .into_iter()
    .collect();
    let want = common::desired(vec![(
        "ids",
        common::target(&[INIT_A], specs.clone().into_iter().collect()),
    )]);
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert!(report.is_clean(), "{report}");
    let t = common::name("ids").to_string();
    for (lun, spec) in &specs {
        let out = inst.page83(INIT_A, None, &t, *lun);
        assert!(out.ok, "{}", out.text);
        assert!(
            common::has_naa6(&out, &spec.scsi_id),
            "LUN {lun}: NAA-6 designator {} missing from:\n{}",
            spec.scsi_id,
            out.text
        );
        assert!(
            out.text.contains(&format!("Designator:[{}]", spec.scsi_id)),
            "LUN {lun}: T10 designator missing: {}",
            out.text
        );
        let out = inst.page80(INIT_A, &t, *lun);
        assert!(out.ok, "{}", out.text);
        let serial = out
            .text
            .lines()
            .find_map(|l| l.strip_prefix("Unit Serial Number:["))
            .map(|s| s.trim_end_matches(']').trim().to_string());
        assert_eq!(serial.as_deref(), Some(spec.scsi_sn.as_str()), "{}", out.text);
    }
    // tgtadm shows the same identity.
    let info = inst
        .tgtd
        .tgtadm()
        .target_by_name(&t)
        .expect("show")
        .expect("target");
    for (lun, spec) in &specs {
        let lu = info.lun(*lun).expect("lun");
        assert_eq!(lu.scsi_id, spec.scsi_id.as_str());
        assert_eq!(lu.scsi_sn, spec.scsi_sn.as_str());
        assert_eq!(lu.backing_path.as_deref(), Some(spec.backing.as_str()));
    }
}

#[test]
fn a_resize_becomes_visible_with_the_same_identity() {
    require_tgtd!();
    let inst = common::start();
    let spec = inst.lun("grow.img", 8 * MIB, 0x21);
    let mut want = common::desired(vec![("grow", common::target(&[INIT_A], vec![(3, spec.clone())]))]);
    assert!(reconcile(inst.tgtd.tgtadm(), &want)
        .expect("reconcile")
        .is_clean());
    let t = common::name("grow").to_string();
    assert_eq!(inst.capacity(INIT_A, None, &t, 3).expect("capacity"), 8 * MIB);

    // Grow the sparse file: tgt does not notice by itself.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(common::path_of(&spec.backing))
        .expect("open");
    f.set_len(24 * MIB).expect("grow");
    assert_eq!(
        inst.capacity(INIT_A, None, &t, 3).expect("capacity"),
        8 * MIB,
        "tgt noticed by itself?"
    );

    // Reconcile sees tgt's size figure is stale and reopens the file.
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert_eq!(
        report.actions,
        vec![Action::RefreshSize {
            tid: report.tids[&t],
            lun: 3
        }],
        "{report}"
    );
    assert_eq!(inst.capacity(INIT_A, None, &t, 3).expect("capacity"), 24 * MIB);
    let out = inst.page83(INIT_A, None, &t, 3);
    assert!(
        common::has_naa6(&out, &spec.scsi_id),
        "identity changed: {}",
        out.text
    );
    assert!(reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile").is_noop());

    // A change below tgt's MB resolution is invisible to reconcile: the explicit call works.
    f.set_len(24 * MIB + 64 * 1024).expect("grow a little");
    assert!(reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile").is_noop());
    let tid = inst
        .tgtd
        .tgtadm()
        .target_by_name(&t)
        .expect("show")
        .expect("target")
        .tid;
    inst.tgtd
        .tgtadm()
        .refresh_lu_size(tid, 3, &spec.backing, true)
        .expect("refresh");
    assert_eq!(
        inst.capacity(INIT_A, None, &t, 3).expect("capacity"),
        24 * MIB + 64 * 1024
    );

    // An offline unit stays offline across a refresh.
    want.targets
        .values_mut()
        .for_each(|t| t.luns.values_mut().for_each(|l| l.online = false));
    assert!(reconcile(inst.tgtd.tgtadm(), &want)
        .expect("reconcile")
        .is_clean());
    f.set_len(40 * MIB).expect("grow");
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert_eq!(
        report.actions,
        vec![Action::RefreshSize { tid, lun: 3 }],
        "{report}"
    );
    let lu = inst
        .tgtd
        .tgtadm()
        .target_by_name(&t)
        .expect("show")
        .expect("target")
        .lun(3)
        .expect("lun 3")
        .clone();
    assert!(!lu.online);
    assert_eq!(lu.size_mb, spindle_tgt::tgt_size_mb(40 * MIB));
}

#[test]
fn offline_luns_keep_their_number_and_come_back() {
    require_tgtd!();
    let inst = common::start();
    let mut want = common::desired(vec![(
        "onoff",
        common::target(
            &[INIT_A],
            vec![
                (1, inst.lun("1.img", 4 * MIB, 0x31)),
                (2, inst.lun("2.img", 6 * MIB, 0x32)),
            ],
        ),
    )]);
    assert!(reconcile(inst.tgtd.tgtadm(), &want)
        .expect("reconcile")
        .is_clean());
    let t = common::name("onoff").to_string();

    let lun2 = want
        .targets
        .values_mut()
        .flat_map(|t| t.luns.get_mut(&2))
        .next()
        .expect("lun 2");
    lun2.online = false;
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    let tid = report.tids[&t];
    assert_eq!(
        report.actions,
        vec![Action::SetOnline {
            tid,
            lun: 2,
            online: false
        }],
        "{report}"
    );
    let (out, seen) = inst.ls(INIT_A, None);
    assert_eq!(
        seen[&t].keys().copied().collect::<Vec<_>>(),
        vec![1],
        "{}",
        out.text
    );
    let err = inst
        .capacity(INIT_A, None, &t, 2)
        .expect_err("offline LUN answered");
    assert!(err.text.contains("NOT READY"), "{}", err.text);
    assert!(reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile").is_noop());

    let lun2 = want
        .targets
        .values_mut()
        .flat_map(|t| t.luns.get_mut(&2))
        .next()
        .expect("lun 2");
    lun2.online = true;
    let report = reconcile(inst.tgtd.tgtadm(), &want).expect("reconcile");
    assert_eq!(
        report.actions,
        vec![Action::SetOnline {
            tid,
            lun: 2,
            online: true
        }],
        "{report}"
    );
    let (_, seen) = inst.ls(INIT_A, None);
    assert_eq!(seen[&t].keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(inst.capacity(INIT_A, None, &t, 2).expect("capacity"), 6 * MIB);
}
