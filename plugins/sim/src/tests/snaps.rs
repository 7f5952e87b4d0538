//! Snapshots: createSnap, createMultiSnap, limits, getCurrentSnaps, restore rules, snapRemove and
//! cloneFromSnap.

use super::*;
use crate::state::MAX_SNAPS_PER_ELEMENT;
use spindle_api::{Field, SeState, SeType};

#[test]
fn create_snap_named_and_unnamed() {
    let fx = Fx::iscsi();
    let lun = fx.lun("db", 2 * GIB, true);
    let s1 = fx.snap(&lun, Some("db-monday"));
    assert_eq!(s1.se_type, Field::Value(SeType::Snap));
    assert_eq!(text(&s1.name), "db-monday");
    assert_eq!(size_of(&s1), 2 * GIB);
    assert_eq!(text(&s1.vol_group_name), "pool0");
    assert_eq!(s1.state, Field::Value(SeState::Online));
    assert!(!text(&s1.page83_id).is_empty());
    let s2 = fx.snap(&lun, None);
    assert!(text(&s2.name).starts_with("db-snap"), "{}", text(&s2.name));
    // Snapshots reserve no space and are not provisioned space.
    assert_eq!(fx.pool_free(), 10 * GIB);
    assert_eq!(fx.state().pool_alloc("pool0"), 2 * GIB);
    // Names are checked and unique across every kind of element.
    let before = fx.state_bytes();
    for bad in ["db-monday", "db"] {
        expect_ex(
            fx.p.create_snap(&fx.host, &fx.ss, &lun, Some(&snap_req(bad))),
            ExceptionKind::InvalidValueEx,
            &["already"],
        );
    }
    let e = expect_ex(
        fx.p.create_snap(&fx.host, &fx.ss, &lun, Some(&snap_req("x/y"))),
        ExceptionKind::ValueFormatEx,
        &["x/y"],
    );
    assert_eq!(e.key.as_deref(), Some("name"));
    expect_ex(
        fx.p.create_snap(&fx.host, &fx.ss, &s1, None),
        ExceptionKind::InvalidValueEx,
        &["snapshot"],
    );
    assert_eq!(fx.state_bytes(), before);
}

#[test]
fn current_snaps_limits_and_is_snapable() {
    let fx = Fx::iscsi();
    let a = fx.lun("a", GIB, true);
    let b = fx.lun("b", GIB, true);
    fx.snap(&a, Some("a1"));
    fx.snap(&a, Some("a2"));
    fx.snap(&b, Some("b1"));
    let names = |se: Option<&SeRecord>| -> Vec<String> {
        fx.p.get_current_snaps(&fx.host, &fx.ss, se)
            .expect("getCurrentSnaps")
            .iter()
            .map(|r| text(&r.name).to_string())
            .collect()
    };
    assert_eq!(names(None), ["a1", "a2", "b1"]);
    assert_eq!(names(Some(&a)), ["a1", "a2"]);
    assert_eq!(names(Some(&b)), ["b1"]);
    assert_eq!(fx.p.get_snap_limits(&fx.host, &fx.ss, None).expect("limits"), 256);
    assert_eq!(
        fx.p.get_snap_limits(&fx.host, &fx.ss, Some(&a)).expect("limits"),
        256
    );
    assert!(fx.p.is_snapable(&fx.host, &fx.ss, None).expect("isSnapable"));
    assert!(fx.p.is_snapable(&fx.host, &fx.ss, Some(&a)).expect("isSnapable"));

    // Fill a's allowance by writing the state directly (256 calls would only be slow).
    let mut s = fx.state();
    let serial_a = s.elements[0].serial;
    let template = s.elements.iter().find(|e| e.name == "a1").cloned().expect("a1");
    for n in 0..(MAX_SNAPS_PER_ELEMENT - 2) {
        let (serial, page83_id) = s.next_identity().expect("identity");
        let mut e = template.clone();
        e.serial = serial;
        e.page83_id = page83_id;
        e.uuid = uuid::Uuid::new_v4().to_string();
        e.name = format!("filler{n}");
        assert_eq!(e.members[0].serial, serial_a);
        s.elements.push(e);
    }
    fx.put_state(&s);
    assert!(!fx.p.is_snapable(&fx.host, &fx.ss, Some(&a)).expect("isSnapable"));
    assert!(fx.p.is_snapable(&fx.host, &fx.ss, Some(&b)).expect("isSnapable"));
    let before = fx.state_bytes();
    expect_ex(
        fx.p.create_snap(&fx.host, &fx.ss, &a, None),
        ExceptionKind::CreateSnapFailedEx,
        &["256"],
    );
    expect_ex(
        fx.p.create_multi_snap(&fx.host, &fx.ss, &[b.clone(), a.clone()], None),
        ExceptionKind::CreateSnapFailedEx,
        &["limit"],
    );
    assert_eq!(fx.state_bytes(), before);
    assert_eq!(
        names(Some(&b)),
        ["b1"],
        "a refused multi-snap leaves no partial snapshot"
    );
}

#[test]
fn multi_snap_is_one_point_in_time_and_restores_per_member() {
    let fx = Fx::iscsi();
    let a = fx.lun("a", GIB, false);
    let b = fx.lun("b", 2 * GIB, true);
    let req = snap_req("consistent");
    let s =
        fx.p.create_multi_snap(&fx.host, &fx.ss, &[a.clone(), b.clone()], Some(&req))
            .expect("createMultiSnap");
    assert_update_ok(&req, &s);
    assert_eq!(s.se_type, Field::Value(SeType::Snap));
    assert_eq!(size_of(&s), 3 * GIB);
    let st = fx.state();
    let snap = st
        .elements
        .iter()
        .find(|e| e.name == "consistent")
        .expect("snapshot");
    let members: Vec<i64> = snap.members.iter().map(|m| m.size).collect();
    assert_eq!(members, [GIB, 2 * GIB]);
    // Both elements see the one snapshot.
    for se in [&a, &b] {
        let got = fx.p.get_current_snaps(&fx.host, &fx.ss, Some(se)).expect("snaps");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].uuid, s.uuid);
    }
    // Unnamed multi-snaps get a name too.
    let s2 =
        fx.p.create_multi_snap(&fx.host, &fx.ss, &[a.clone(), b.clone()], None)
            .expect("createMultiSnap");
    assert!(text(&s2.name).starts_with("multi-snap"));

    // Grow both, then restore only b from the multi-snap.
    fx.p.resize(&fx.host, &fx.ss, &a, 3 * GIB).expect("grow a");
    fx.p.resize(&fx.host, &fx.ss, &b, 4 * GIB).expect("grow b");
    assert!(fx
        .p
        .is_restorable(&fx.host, &fx.ss, &s, Some(&b))
        .expect("isRestorable"));
    fx.p.snap_restore(&fx.host, &fx.ss, &s, Some(&b))
        .expect("snapRestore b");
    assert_eq!(size_of(&fx.info(&b)), 2 * GIB);
    assert_eq!(size_of(&fx.info(&a)), 3 * GIB, "a member not named is untouched");
    // Restore everything the snapshot covers.
    fx.p.snap_restore(&fx.host, &fx.ss, &s, None)
        .expect("snapRestore all");
    assert_eq!(size_of(&fx.info(&a)), GIB);
    assert_eq!(
        fx.pool_free(),
        9 * GIB,
        "a restored thick LUN reserves its old size again"
    );

    // Bad lists.
    let before = fx.state_bytes();
    let e = expect_ex(
        fx.p.create_multi_snap(&fx.host, &fx.ss, &[], None),
        ExceptionKind::MissingKeyEx,
        &[],
    );
    assert_eq!(e.key.as_deref(), Some("se_records"));
    expect_ex(
        fx.p.create_multi_snap(&fx.host, &fx.ss, &[a.clone(), a.clone()], None),
        ExceptionKind::InvalidValueEx,
        &["twice"],
    );
    expect_ex(
        fx.p.create_multi_snap(&fx.host, &fx.ss, &[a.clone(), s.clone()], None),
        ExceptionKind::InvalidValueEx,
        &["snapshot"],
    );
    let c = lun_req("not-there", GIB);
    expect_ex(
        fx.p.create_multi_snap(&fx.host, &fx.ss, &[a.clone(), c], None),
        ExceptionKind::InvalidValueEx,
        &["not-there"],
    );
    assert_eq!(fx.state_bytes(), before);
}

#[test]
fn restore_reverts_size_and_follows_the_safety_rule() {
    let fx = Fx::iscsi();
    fx.group("hosts", &["iqn.2001-04.com.example:h1"]);
    let lun = fx.lun("l", GIB, false);
    let early_clone = fx.clone_of(&lun, "early-clone");
    let snap = fx.snap(&lun, Some("s"));
    let snap_clone = {
        let dest = clone_req("from-snap");
        fx.p.clone_from_snap(&fx.host, &fx.ss, &lun, &snap, Some(&dest), None)
            .expect("cloneFromSnap")
    };
    fx.snap(&lun, Some("later-snap"));
    fx.p.resize(&fx.host, &fx.ss, &lun, 2 * GIB).expect("grow");
    // Clones made before the snapshot, clones of the snapshot and later snapshots do not block.
    assert!(fx
        .p
        .is_restorable(&fx.host, &fx.ss, &snap, Some(&lun))
        .expect("isRestorable"));
    assert!(fx
        .p
        .is_restorable(&fx.host, &fx.ss, &snap, None)
        .expect("isRestorable"));

    // Presented and online: not safe.
    let lun = fx.present(&lun, &["hosts"]);
    assert!(!fx
        .p
        .is_restorable(&fx.host, &fx.ss, &snap, Some(&lun))
        .expect("isRestorable"));
    let before = fx.state_bytes();
    expect_ex(
        fx.p.snap_restore(&fx.host, &fx.ss, &snap, Some(&lun)),
        ExceptionKind::SnapRestoreNotSafeEx,
        &["presented", "online"],
    );
    assert_eq!(fx.state_bytes(), before);
    // Presented but offline: safe.
    fx.p.offline(&fx.host, &fx.ss, &lun).expect("offline");
    assert!(fx
        .p
        .is_restorable(&fx.host, &fx.ss, &snap, Some(&lun))
        .expect("isRestorable"));
    fx.p.online(&fx.host, &fx.ss, &lun).expect("online");
    let lun =
        fx.p.stop_present(&fx.host, &fx.ss, &lun, &["hosts".into()])
            .expect("stopPresent");

    // A direct clone made after the snapshot shares blocks the roll-back would overwrite.
    let late = fx.clone_of(&lun, "late-clone");
    assert!(!fx
        .p
        .is_restorable(&fx.host, &fx.ss, &snap, Some(&lun))
        .expect("isRestorable"));
    expect_ex(
        fx.p.snap_restore(&fx.host, &fx.ss, &snap, None),
        ExceptionKind::SnapRestoreNotSafeEx,
        &["late-clone"],
    );
    fx.p.remove(&fx.host, &fx.ss, &late).expect("remove late clone");

    fx.p.snap_restore(&fx.host, &fx.ss, &snap, Some(&lun))
        .expect("snapRestore");
    let now = fx.info(&lun);
    assert_eq!(size_of(&now), GIB);
    assert_eq!(now.uuid, lun.uuid, "a restore keeps the element's identity");
    assert_eq!(fx.pool_free(), 9 * GIB);
    // Other elements are untouched.
    assert_eq!(size_of(&fx.info(&early_clone)), GIB);
    assert_eq!(size_of(&fx.info(&snap_clone)), GIB);

    // Not a snapshot / not a member.
    let other = fx.lun("other", GIB, true);
    expect_ex(
        fx.p.is_restorable(&fx.host, &fx.ss, &lun, None),
        ExceptionKind::InvalidValueEx,
        &["snap_se_record", "not a snapshot"],
    );
    expect_ex(
        fx.p.snap_restore(&fx.host, &fx.ss, &snap, Some(&other)),
        ExceptionKind::InvalidValueEx,
        &["not covered"],
    );
}

#[test]
fn restore_of_a_thick_lun_needs_the_space_back() {
    let fx = Fx::iscsi();
    let lun = fx.lun("l", 4 * GIB, false);
    let snap = fx.snap(&lun, None);
    fx.p.resize(&fx.host, &fx.ss, &lun, GIB).expect("shrink");
    fx.lun("filler", 8 * GIB, false);
    assert_eq!(fx.pool_free(), GIB);
    assert!(!fx
        .p
        .is_restorable(&fx.host, &fx.ss, &snap, Some(&lun))
        .expect("isRestorable"));
    expect_ex(
        fx.p.snap_restore(&fx.host, &fx.ss, &snap, Some(&lun)),
        ExceptionKind::OperationPreReqNotMetEx,
        &["pool0", "free"],
    );
    assert_eq!(size_of(&fx.info(&lun)), GIB);
}

#[test]
fn snap_remove_refuses_snapshots_with_clones() {
    let fx = Fx::iscsi();
    let lun = fx.lun("l", GIB, true);
    let snap = fx.snap(&lun, Some("s"));
    let clone =
        fx.p.clone_from_snap(&fx.host, &fx.ss, &lun, &snap, None, None)
            .expect("cloneFromSnap");
    expect_ex(
        fx.p.snap_remove(&fx.host, &fx.ss, &snap),
        ExceptionKind::StorageElementBusyEx,
        &[text(&clone.name)],
    );
    expect_ex(
        fx.p.snap_remove(&fx.host, &fx.ss, &lun),
        ExceptionKind::InvalidValueEx,
        &["not a snapshot"],
    );
    fx.p.remove(&fx.host, &fx.ss, &clone).expect("remove clone");
    fx.p.snap_remove(&fx.host, &fx.ss, &snap).expect("snapRemove");
    assert!(fx
        .p
        .get_current_snaps(&fx.host, &fx.ss, None)
        .expect("snaps")
        .is_empty());
    expect_ex(
        fx.p.snap_remove(&fx.host, &fx.ss, &snap),
        ExceptionKind::InvalidValueEx,
        &["no element"],
    );
}

#[test]
fn clone_from_snap_uses_the_frozen_image() {
    let fx = Fx::iscsi();
    let lun = fx.lun("l", GIB, true);
    let snap = fx.snap(&lun, Some("s"));
    fx.p.resize(&fx.host, &fx.ss, &lun, 3 * GIB).expect("grow");
    let dest = clone_req("from-s");
    let c =
        fx.p.clone_from_snap(&fx.host, &fx.ss, &lun, &snap, Some(&dest), Some("high"))
            .expect("cloneFromSnap");
    assert_update_ok(&dest, &c);
    assert_eq!(c.se_type, Field::Value(SeType::SnapClone));
    assert_eq!(
        size_of(&c),
        GIB,
        "the clone has the snapshot's size, not the LUN's"
    );
    assert_eq!(text(&c.qos), "high");
    assert!(!text(&c.page83_id).is_empty());
    let unnamed =
        fx.p.clone_from_snap(&fx.host, &fx.ss, &lun, &snap, None, None)
            .expect("cloneFromSnap");
    assert!(text(&unnamed.name).starts_with("s-clone"));
    assert_eq!(text(&unnamed.qos), "normal", "a clone inherits its source's QoS");
    let of = |se: Option<&SeRecord>| -> Vec<String> {
        fx.p.get_current_clones(&fx.host, &fx.ss, se)
            .expect("getCurrentClones")
            .iter()
            .map(|r| text(&r.name).to_string())
            .collect()
    };
    assert_eq!(of(Some(&snap)).len(), 2);
    assert_eq!(of(Some(&lun)).len(), 2);
    assert_eq!(of(None).len(), 2);
    // Wrong pairings are refused.
    let other = fx.lun("other", GIB, true);
    let before = fx.state_bytes();
    expect_ex(
        fx.p.clone_from_snap(&fx.host, &fx.ss, &other, &snap, None, None),
        ExceptionKind::InvalidValueEx,
        &["not covered"],
    );
    expect_ex(
        fx.p.clone_from_snap(&fx.host, &fx.ss, &lun, &other, None, None),
        ExceptionKind::InvalidValueEx,
        &["snap_se_record", "not a snapshot"],
    );
    expect_ex(
        fx.p.clone_from_snap(&fx.host, &fx.ss, &lun, &snap, Some(&clone_req("from-s")), None),
        ExceptionKind::InvalidValueEx,
        &["already"],
    );
    assert_eq!(fx.state_bytes(), before);
}
