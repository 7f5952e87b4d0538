//! Clones: clone, isCloneable, limits, getCurrentClones, and the asynchronous split.

use super::*;
use crate::state::MAX_CLONES_PER_ELEMENT;
use spindle_api::{Field, SeState, SeType, StorageType};
use std::thread::sleep;

#[test]
fn clone_named_unnamed_and_refused() {
    let fx = Fx::with(StorageType::Iscsi, ";capacity=10G;pools=p1,p2");
    let lun = fx.lun("base", 2 * GIB, false);
    let c = fx.clone_of(&lun, "base-copy");
    assert_eq!(c.se_type, Field::Value(SeType::SnapClone));
    assert_eq!(size_of(&c), 2 * GIB);
    assert_eq!(text(&c.vol_group_name), "p1");
    assert_ne!(c.page83_id, lun.page83_id);
    assert_eq!(
        fx.state().pool_used("p1"),
        2 * GIB,
        "an unsplit clone reserves nothing"
    );
    let unnamed =
        fx.p.clone_element(&fx.host, &fx.ss, &lun, None, None)
            .expect("clone without dest");
    assert!(text(&unnamed.name).starts_with("base-clone"));
    assert_eq!(text(&unnamed.ss_uuid), SS_UUID);
    // A clone of a clone.
    let cc = fx.clone_of(&c, "copy-of-copy");
    assert_eq!(size_of(&cc), 2 * GIB);

    let before = fx.state_bytes();
    let mut elsewhere = clone_req("elsewhere");
    elsewhere.vol_group_name = Field::Value("p2".into());
    expect_ex(
        fx.p.clone_element(&fx.host, &fx.ss, &lun, Some(&elsewhere), None),
        ExceptionKind::InvalidValueEx,
        &["vol_group_name", "p2"],
    );
    assert_eq!(fx.state_bytes(), before);
    let snap = fx.snap(&lun, None);
    let before_snap_clone = fx.state_bytes();
    expect_ex(
        fx.p.clone_element(&fx.host, &fx.ss, &snap, None, None),
        ExceptionKind::InvalidValueEx,
        &["cloneFromSnap"],
    );
    expect_ex(
        fx.p.clone_element(&fx.host, &fx.ss, &lun, Some(&clone_req("base")), None),
        ExceptionKind::InvalidValueEx,
        &["already"],
    );
    expect_ex(
        fx.p.clone_element(&fx.host, &fx.ss, &lun, Some(&clone_req("bad name")), None),
        ExceptionKind::ValueFormatEx,
        &["bad name"],
    );
    expect_ex(
        fx.p.clone_element(&fx.host, &fx.ss, &lun, None, Some("turbo")),
        ExceptionKind::InvalidValueEx,
        &["turbo"],
    );
    assert_eq!(fx.state_bytes(), before_snap_clone);
}

#[test]
fn clone_limits_and_current_clones() {
    let fx = Fx::iscsi();
    let a = fx.lun("a", GIB, true);
    let b = fx.lun("b", GIB, true);
    fx.clone_of(&a, "a1");
    fx.clone_of(&b, "b1");
    assert_eq!(
        fx.p.get_clone_limits(&fx.host, &fx.ss, None).expect("limits"),
        256
    );
    assert_eq!(
        fx.p.get_clone_limits(&fx.host, &fx.ss, Some(&a)).expect("limits"),
        256
    );
    assert!(fx.p.is_cloneable(&fx.host, &fx.ss, &a).expect("isCloneable"));
    let names = |se: Option<&SeRecord>| -> Vec<String> {
        fx.p.get_current_clones(&fx.host, &fx.ss, se)
            .expect("getCurrentClones")
            .iter()
            .map(|r| text(&r.name).to_string())
            .collect()
    };
    assert_eq!(names(None), ["a1", "b1"]);
    assert_eq!(names(Some(&a)), ["a1"]);
    let snap = fx.snap(&a, None);
    assert!(!fx.p.is_cloneable(&fx.host, &fx.ss, &snap).expect("isCloneable"));

    let mut s = fx.state();
    let template = s.elements.iter().find(|e| e.name == "a1").cloned().expect("a1");
    for n in 0..(MAX_CLONES_PER_ELEMENT - 1) {
        let (serial, page83_id) = s.next_identity().expect("identity");
        let mut e = template.clone();
        e.serial = serial;
        e.page83_id = page83_id;
        e.uuid = uuid::Uuid::new_v4().to_string();
        e.name = format!("filler{n}");
        s.elements.push(e);
    }
    fx.put_state(&s);
    assert!(!fx.p.is_cloneable(&fx.host, &fx.ss, &a).expect("isCloneable"));
    let before = fx.state_bytes();
    expect_ex(
        fx.p.clone_element(&fx.host, &fx.ss, &a, None, None),
        ExceptionKind::CloneFailedEx,
        &["256"],
    );
    expect_ex(
        fx.p.clone_from_snap(&fx.host, &fx.ss, &a, &snap, None, None),
        ExceptionKind::CloneFailedEx,
        &["limit"],
    );
    assert_eq!(fx.state_bytes(), before);
    assert!(fx.p.is_cloneable(&fx.host, &fx.ss, &b).expect("isCloneable"));
}

/// Polls getAsyncProgress until done, checking every answer; returns (answers, final record).
fn poll_split(fx: &Fx, started: &SeRecord) -> (Vec<Option<i64>>, SeRecord) {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut rec = started.clone();
    loop {
        let v =
            fx.p.get_async_progress(&fx.host, &fx.ss, &rec.to_value())
                .expect("getAsyncProgress");
        let next = SeRecord::from_value(&v).expect("a record comes back");
        assert_update_ok(&rec, &next);
        assert_eq!(next.async_handle, started.async_handle, "the handle is kept");
        let p = match next.async_progress {
            Field::Value(p) => Some(p),
            Field::Null => None,
            Field::Absent => panic!("async_progress missing from getAsyncProgress"),
        };
        seen.push(p);
        if p.is_none() {
            return (seen, next);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "split never finished: {seen:?}"
        );
        rec = next;
        sleep(std::time::Duration::from_millis(60));
    }
}

#[test]
fn split_is_asynchronous_and_completes_by_wall_time() {
    // 1.5 s for the 1 GiB clone: long enough to be seen under way even on a loaded machine.
    let fx = Fx::with(StorageType::Iscsi, ";capacity=10G;split_ms_per_gib=1500");
    let lun = fx.lun("origin", GIB, true);
    let clone = fx.clone_of(&lun, "child");
    assert!(fx
        .p
        .is_splittable(&fx.host, &fx.ss, &clone)
        .expect("isSplittable"));
    assert!(!fx.p.is_splittable(&fx.host, &fx.ss, &lun).expect("isSplittable"));
    let started =
        fx.p.split_clone(&fx.host, &fx.ss, &clone)
            .expect("splitClone")
            .expect("the split runs asynchronously");
    assert_update_ok(&clone, &started);
    assert_eq!(started.async_progress, Field::Value(0));
    assert!(text(&started.async_handle).starts_with("sim-split:"));
    assert_eq!(started.state, Field::Value(SeState::BusyCopy));
    assert!(text(&started.status).starts_with("SPLITTING"));
    // While it runs: busy for what would disturb it.
    assert!(!fx
        .p
        .is_splittable(&fx.host, &fx.ss, &clone)
        .expect("isSplittable"));
    expect_ex(
        fx.p.split_clone(&fx.host, &fx.ss, &clone),
        ExceptionKind::StorageElementBusyEx,
        &["already"],
    );
    expect_ex(
        fx.p.remove(&fx.host, &fx.ss, &clone),
        ExceptionKind::StorageElementBusyEx,
        &["split"],
    );
    expect_ex(
        fx.p.remove(&fx.host, &fx.ss, &lun),
        ExceptionKind::StorageElementBusyEx,
        &["child"],
    );
    expect_ex(
        fx.p.resize(&fx.host, &fx.ss, &clone, 2 * GIB),
        ExceptionKind::StorageElementBusyEx,
        &["split"],
    );

    let (seen, done) = poll_split(&fx, &started);
    assert!(seen.len() >= 2, "progress was never seen under way: {seen:?}");
    let numbers: Vec<i64> = seen.iter().flatten().copied().collect();
    assert!(
        numbers.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {numbers:?}"
    );
    assert!(numbers.iter().all(|p| (0..100).contains(p)));
    // The finished record is what a synchronous split would have left: an ordinary LUN.
    assert_eq!(done.se_type, Field::Value(SeType::Lun));
    assert_eq!(done.state, Field::Value(SeState::Online));
    assert_eq!(done.uuid, clone.uuid);
    assert_eq!(done.page83_id, clone.page83_id);
    // Asking again after completion keeps answering "done".
    let again =
        fx.p.get_async_progress(&fx.host, &fx.ss, &started.to_value())
            .expect("getAsyncProgress after completion");
    assert_eq!(again.get("async_progress"), Some(&Value::Null));
    // The origin is free again; the split clone is no clone any more.
    assert!(fx
        .p
        .get_current_clones(&fx.host, &fx.ss, Some(&lun))
        .expect("clones")
        .is_empty());
    assert!(fx
        .p
        .get_current_clones(&fx.host, &fx.ss, None)
        .expect("clones")
        .is_empty());
    assert!(!fx.p.is_splittable(&fx.host, &fx.ss, &done).expect("isSplittable"));
    fx.p.remove(&fx.host, &fx.ss, &lun)
        .expect("origin removable after the split");
    let listed = fx.p.list(&fx.host, &fx.ss, &[SeType::Lun]).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(text(&listed[0].name), "child");
}

#[test]
fn split_of_a_thick_origin_reserves_the_copy() {
    let fx = Fx::with(StorageType::San, ";capacity=10G;split_ms_per_gib=0");
    let lun = fx.lun("thick", 4 * GIB, false);
    let c = fx.clone_of(&lun, "c");
    let c2 = fx.clone_of(&lun, "c2");
    assert_eq!(fx.pool_free(), 6 * GIB);
    // split_ms_per_gib=0: the split finishes within the call.
    assert_eq!(fx.p.split_clone(&fx.host, &fx.ss, &c).expect("splitClone"), None);
    let r = fx.info(&c);
    assert_eq!(r.se_type, Field::Value(SeType::Lun));
    assert_eq!(fx.pool_free(), 2 * GIB, "the split copy of a thick LUN is thick");
    // No room for another thick copy.
    assert!(!fx.p.is_splittable(&fx.host, &fx.ss, &c2).expect("isSplittable"));
    let before = fx.state_bytes();
    expect_ex(
        fx.p.split_clone(&fx.host, &fx.ss, &c2),
        ExceptionKind::OperationPreReqNotMetEx,
        &["free"],
    );
    assert_eq!(fx.state_bytes(), before);
    expect_ex(
        fx.p.split_clone(&fx.host, &fx.ss, &lun),
        ExceptionKind::InvalidValueEx,
        &["not a clone"],
    );
}

#[test]
fn get_async_progress_refuses_what_it_did_not_issue() {
    let fx = Fx::iscsi();
    let lun = fx.lun("l", GIB, true);
    let mut bogus = lun.clone();
    bogus.async_handle = Field::Value("someone-else:42".into());
    bogus.async_progress = Field::Value(5);
    let e = expect_ex(
        fx.p.get_async_progress(&fx.host, &fx.ss, &bogus.to_value()),
        ExceptionKind::ValueFormatEx,
        &["someone-else:42"],
    );
    assert_eq!(e.key.as_deref(), Some("async_handle"));
    bogus.async_handle = Field::Value("sim-split:0000".into());
    expect_ex(
        fx.p.get_async_progress(&fx.host, &fx.ss, &bogus.to_value()),
        ExceptionKind::InvalidValueEx,
        &["no split"],
    );
    // Without a handle the element itself must have a split.
    expect_ex(
        fx.p.get_async_progress(&fx.host, &fx.ss, &lun.to_value()),
        ExceptionKind::InvalidValueEx,
        &["no asynchronous operation"],
    );
    expect_ex(
        fx.p.get_async_progress(&fx.host, &fx.ss, &json!({"size": "big"})),
        ExceptionKind::ValueFormatEx,
        &["size"],
    );
    // A handle paired with another element's name is refused.
    let clone = fx.clone_of(&lun, "c");
    let started =
        fx.p.split_clone(&fx.host, &fx.ss, &clone)
            .expect("splitClone")
            .expect("async");
    let mut mixed = started.clone();
    mixed.name = Field::Value("l".into());
    expect_ex(
        fx.p.get_async_progress(&fx.host, &fx.ss, &mixed.to_value()),
        ExceptionKind::InvalidValueEx,
        &["does not match"],
    );
    // Without the handle, the record's own identity finds the split.
    let mut no_handle = started.clone();
    no_handle.async_handle = Field::Absent;
    let v =
        fx.p.get_async_progress(&fx.host, &fx.ss, &no_handle.to_value())
            .expect("by identity");
    assert_eq!(v.get("async_handle"), started.to_value().get("async_handle"));
}
