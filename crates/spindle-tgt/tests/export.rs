//! What initiators see of an export built with `Tgtadm`: ACLs, LUNs, page 0x83/0x80
//! identity, exact sizes (also after a resize), online state.

#[macro_use]
mod common;

use common::{INIT_A, INIT_B, MIB, OUTSIDER};
use spindle_tgt::{tgt_size_mb, ProductId, VendorId};

#[test]
fn acl_decides_who_sees_which_luns() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let mut t1_lun2 = inst.lun("t1-2.img", 12 * MIB, 2);
    t1_lun2.vendor_id = VendorId::new("ACME").expect("valid");
    t1_lun2.product_id = ProductId::new("SPARSE-LUN").expect("valid");
    let t1 = common::export(
        adm,
        1,
        "t1",
        &[INIT_A],
        &[(1, inst.lun("t1-1.img", 8 * MIB, 1)), (2, t1_lun2)],
    );
    let t2 = common::export(adm, 2, "t2", &[INIT_B], &[(5, inst.lun("t2-5.img", 4 * MIB, 3))]);

    // Each initiator in an ACL sees exactly its target and exactly its LUNs.
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
fn a_target_without_acl_entries_is_invisible_until_an_initiator_is_bound() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let t = common::export(adm, 4, "closed", &[], &[(1, inst.lun("closed.img", 4 * MIB, 4))]);
    for initiator in [INIT_A, OUTSIDER] {
        let (out, seen) = inst.ls(initiator, None);
        assert!(seen.is_empty(), "{initiator} saw {seen:?}: {}", out.text);
        assert!(inst.capacity(initiator, None, &t, 1).is_err());
    }

    adm.bind_initiator(4, &spindle_tgt::Iqn::new(INIT_A).expect("valid"))
        .expect("bind");
    assert_eq!(inst.luns(INIT_A, &t), vec![1]);
    assert_eq!(inst.capacity(INIT_A, None, &t, 1).expect("capacity"), 4 * MIB);
    let (_, seen) = inst.ls(OUTSIDER, None);
    assert!(seen.is_empty(), "outsider saw {seen:?}");
}

#[test]
fn page83_carries_the_scsi_id_as_naa6_and_page80_the_serial() {
    require_tgtd!();
    let inst = common::start();
    let specs = [
        (1, inst.lun("a.img", 4 * MIB, 0x11)),
        (2, inst.lun("b.img", 4 * MIB, 0x0a)),
        (3, inst.lun("c.img", 4 * MIB, 0xfe)),
    ];
    let t = common::export(inst.tgtd.tgtadm(), 1, "ids", &[INIT_A], &specs);
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
    let info = common::show(inst.tgtd.tgtadm(), &t);
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
    let adm = inst.tgtd.tgtadm();
    let spec = inst.lun("grow.img", 8 * MIB, 0x21);
    let tid = 2;
    let t = common::export(adm, tid, "grow", &[INIT_A], &[(3, spec.clone())]);
    assert_eq!(inst.capacity(INIT_A, None, &t, 3).expect("capacity"), 8 * MIB);
    assert_eq!(common::show_lu(adm, &t, 3).size_mb, tgt_size_mb(8 * MIB));

    // Grow the sparse file: tgt does not notice by itself, and its size figure goes stale.
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
    assert_eq!(common::show_lu(adm, &t, 3).size_mb, tgt_size_mb(8 * MIB));

    // Reopening the file makes the new size visible; identity and state are kept.
    adm.refresh_lu_size(tid, 3, &spec.backing, true).expect("refresh");
    assert_eq!(inst.capacity(INIT_A, None, &t, 3).expect("capacity"), 24 * MIB);
    let lu = common::show_lu(adm, &t, 3);
    assert_eq!(lu.size_mb, tgt_size_mb(24 * MIB));
    assert!(lu.online);
    assert_eq!(spindle_tgt::lun_mismatch(&lu, &spec), None, "{lu:?}");
    let out = inst.page83(INIT_A, None, &t, 3);
    assert!(
        common::has_naa6(&out, &spec.scsi_id),
        "identity changed: {}",
        out.text
    );

    // A change below tgt's MB resolution does not show in tgtadm's size figure, but a
    // refresh still makes the exact size visible.
    f.set_len(24 * MIB + 64 * 1024).expect("grow a little");
    assert_eq!(
        common::show_lu(adm, &t, 3).size_mb,
        tgt_size_mb(24 * MIB + 64 * 1024)
    );
    assert_eq!(inst.capacity(INIT_A, None, &t, 3).expect("capacity"), 24 * MIB);
    adm.refresh_lu_size(tid, 3, &spec.backing, true).expect("refresh");
    assert_eq!(
        inst.capacity(INIT_A, None, &t, 3).expect("capacity"),
        24 * MIB + 64 * 1024
    );

    // An offline unit stays offline across a refresh.
    adm.set_lu_online(tid, 3, false).expect("offline");
    f.set_len(40 * MIB).expect("grow");
    adm.refresh_lu_size(tid, 3, &spec.backing, false)
        .expect("refresh");
    let lu = common::show_lu(adm, &t, 3);
    assert!(!lu.online);
    assert_eq!(lu.size_mb, tgt_size_mb(40 * MIB));
    let err = inst
        .capacity(INIT_A, None, &t, 3)
        .expect_err("offline LUN answered");
    assert!(err.text.contains("NOT READY"), "{}", err.text);
}

#[test]
fn offline_luns_keep_their_number_and_come_back() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let tid = 3;
    let t = common::export(
        adm,
        tid,
        "onoff",
        &[INIT_A],
        &[
            (1, inst.lun("1.img", 4 * MIB, 0x31)),
            (2, inst.lun("2.img", 6 * MIB, 0x32)),
        ],
    );

    adm.set_lu_online(tid, 2, false).expect("offline");
    assert!(!common::show_lu(adm, &t, 2).online);
    assert!(common::show_lu(adm, &t, 1).online);
    assert_eq!(inst.luns(INIT_A, &t), vec![1]);
    let err = inst
        .capacity(INIT_A, None, &t, 2)
        .expect_err("offline LUN answered");
    assert!(err.text.contains("NOT READY"), "{}", err.text);

    adm.set_lu_online(tid, 2, true).expect("online");
    assert!(common::show_lu(adm, &t, 2).online);
    assert_eq!(inst.luns(INIT_A, &t), vec![1, 2]);
    assert_eq!(inst.capacity(INIT_A, None, &t, 2).expect("capacity"), 6 * MIB);
}

#[test]
fn thin_provisioning_is_set_at_creation_and_switched_in_place() {
    require_tgtd!();
    let inst = common::start();
    let adm = inst.tgtd.tgtadm();
    let mut thin = inst.lun("thin.img", 8 * MIB, 6);
    thin.thin_provisioning = true;
    let thick = inst.lun("thick.img", 8 * MIB, 7);
    let t = common::export(adm, 6, "thin", &[INIT_A], &[(1, thin), (2, thick.clone())]);
    assert!(common::show_lu(adm, &t, 1).thin_provisioning);
    assert!(!common::show_lu(adm, &t, 2).thin_provisioning);
    let lbpme = |lun: u64| {
        let out = common::run("iscsi-readcapacity16", &["-i", INIT_A, &inst.url(None, &t, lun)]);
        assert!(out.ok, "{}", out.text);
        out.text.contains("LBPME:1")
    };
    assert!(lbpme(1));
    assert!(!lbpme(2));
    let tid = common::show(adm, &t).tid;
    adm.set_thin_provisioning(tid, 2, true).expect("switch on");
    adm.set_thin_provisioning(tid, 1, false).expect("switch off");
    assert!(lbpme(2));
    assert!(!lbpme(1));
    // Switching kept everything else: the unit is still the one it was.
    assert_eq!(
        spindle_tgt::lun_mismatch(&common::show_lu(adm, &t, 2), &thick),
        None
    );
}
