//! `spindle.linux.LinuxArray` end to end: the strict manager calls the built-in plug-in, which
//! runs the array program on a loop-mounted XFS pool; a real tgtd (private control port,
//! socket directory and portal port on 127.0.0.1) exports the LUNs, and the spindle-iscsi
//! initiator checks what hosts see.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spindle_api::{make_mp_page83_from_raw_page83, ExceptionKind, Method};
use spindle_iscsi::{Chap, Lun, Session};
use std::collections::BTreeMap;

const MIB: i64 = 1 << 20;
const PREFIX: &str = "iqn.2025-01.org.example:array";

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_string()
}

/// LUN number → (page83_id from VPD 0x83's NAA-6 designator, formatted; capacity or None when
/// the unit is offline), as `initiator` sees `target`.
fn seen(
    portal: &str,
    target: &str,
    initiator: &str,
    chap: Option<&Chap>,
) -> BTreeMap<u32, (String, Option<u64>)> {
    let mut sess = Session::login(portal, target, initiator, chap).unwrap();
    let mut out = BTreeMap::new();
    for lun in sess.report_luns().unwrap() {
        let n = lun.number().unwrap();
        if n == 0 {
            continue;
        }
        let id = sess.inquiry_vpd83(lun).unwrap();
        let naa = id.naa_of_type(6).expect("an NAA-6 designator").hex();
        let cap = if sess.test_unit_ready(lun).is_ok() {
            Some(sess.read_capacity16(lun).unwrap().bytes())
        } else {
            None
        };
        out.insert(n, (make_mp_page83_from_raw_page83(&naa).unwrap(), cap));
    }
    sess.logout().unwrap();
    out
}

fn write(portal: &str, target: &str, lun: u16, chap: Option<&Chap>, byte: u8) {
    let mut sess = Session::login(portal, target, INIT_A, chap).unwrap();
    sess.write(Lun::new(lun), 0, &[byte; 4096]).unwrap();
    sess.synchronize_cache(Lun::new(lun)).unwrap();
    sess.logout().unwrap();
}

fn read(portal: &str, target: &str, lun: u16, chap: Option<&Chap>) -> u8 {
    let mut sess = Session::login(portal, target, INIT_A, chap).unwrap();
    let data = sess.read(Lun::new(lun), 0, 8).unwrap();
    sess.logout().unwrap();
    assert!(data.iter().all(|b| *b == data[0]), "mixed data");
    data[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_drives_a_real_array_end_to_end() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 1024);
    let pool = fs.pool("p0");
    let tgt = Tgt::new();
    let portal = tgt.portal();
    let m = Mgr::new().await;
    let ss = ss_record("localhost", &local_extra_info(&pool, &tgt));
    let ta = format!("{PREFIX}:ga");
    let tb = format!("{PREFIX}:gb");

    // The array.
    let caps = m.ok(Method::GetCapabilities, json!({"ss_record": ss})).await;
    assert_eq!(caps["splitclone"], "OFFLINE");
    let info = m.ok(Method::GetInfo, json!({"ss_record": ss})).await;
    let desc = s(&info, "storage_desc");
    assert!(
        desc.contains("tgt 1.") && desc.contains("xfs") && desc.contains("running"),
        "{desc}"
    );
    assert_eq!(info["status"], "ONLINE");
    assert_eq!(info["vol_groups"][0]["vol_name"], "p0");
    assert!(info["total_sz"].as_i64().unwrap() > 0);

    // Groups, LUNs, presentations.
    m.ok(
        Method::CreateAccessGroups,
        json!({"ss_record": ss, "access_grps": [
            {"grp_name": "ga", "grp_entries": [INIT_A]},
            {"grp_name": "gb", "grp_entries": [INIT_B]},
        ]}),
    )
    .await;
    let mut luns = Vec::new();
    for (name, size) in [("l1", 8 * MIB), ("l2", 16 * MIB), ("l3", 4 * MIB)] {
        let se = json!({"se_type": "LUNType", "ss_uuid": ss["uuid"], "name": name, "size": size, "vol_group_name": "p0"});
        luns.push(
            m.ok(Method::Create, json!({"ss_record": ss, "se_record": se}))
                .await,
        );
    }
    let (l1, l2, l3) = (luns[0].clone(), luns[1].clone(), luns[2].clone());
    let ids: std::collections::BTreeSet<String> = luns.iter().map(|l| s(l, "page83_id")).collect();
    assert_eq!(ids.len(), 3, "page83 ids are distinct");
    let present =
        |se: &Value, groups: Value| json!({"ss_record": ss, "se_record": se, "access_grp_names": groups});
    let l1 = m.ok(Method::StartPresent, present(&l1, json!(["ga"]))).await;
    assert_eq!(l1["access_grp_names"], json!(["ga"]));
    let l2 = m.ok(Method::StartPresent, present(&l2, json!(["gb"]))).await;
    let l3 = m
        .ok(Method::StartPresent, present(&l3, json!(["ga", "gb"])))
        .await;

    assert_eq!(visible(&portal, INIT_A, None), vec![(ta.clone(), vec![1, 2])]);
    assert_eq!(visible(&portal, INIT_B, None), vec![(tb.clone(), vec![1, 2])]);
    assert!(
        visible(&portal, OUTSIDER, None).is_empty(),
        "an initiator outside every group sees nothing"
    );
    let p = |v: &Value| s(v, "page83_id");
    let mb = |n: i64| Some((n * MIB) as u64);
    let want_a = BTreeMap::from([(1, (p(&l1), mb(8))), (2, (p(&l3), mb(4)))]);
    let want_b = BTreeMap::from([(1, (p(&l2), mb(16))), (2, (p(&l3), mb(4)))]);
    assert_eq!(seen(&portal, &ta, INIT_A, None), want_a);
    assert_eq!(seen(&portal, &tb, INIT_B, None), want_b);
    let listed = m.ok(Method::List, json!({"ss_record": ss})).await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let groups = m
        .ok(Method::GetAccessGroups, json!({"ss_record": ss, "se_record": l3}))
        .await;
    assert_eq!(groups.as_array().unwrap().len(), 2);
    let found = m.ok(Method::Discover, json!({"ss_record": ss})).await;
    assert_eq!(found["storage_id"], json!([ta, tb]));

    // Resize: READ CAPACITY follows.
    let l2 = m
        .ok(
            Method::Resize,
            json!({"ss_record": ss, "se_record": l2, "new_size": 40 * MIB}),
        )
        .await;
    assert_eq!(l2["size"], 40 * MIB);
    let want_b = BTreeMap::from([(1, (p(&l2), mb(40))), (2, (p(&l3), mb(4)))]);
    assert_eq!(seen(&portal, &tb, INIT_B, None), want_b);

    // Data: a snapshot freezes it, a clone diverges from its parent.
    write(&portal, &ta, 1, None, 0x11);
    let snap = m
        .ok(
            Method::CreateSnap,
            json!({"ss_record": ss, "se_record": l1, "snap_se_record": {"se_type": "SnapType", "ss_uuid": ss["uuid"], "name": "l1-s1"}}),
        )
        .await;
    assert_eq!(snap["name"], "l1-s1");
    write(&portal, &ta, 1, None, 0x22);
    let c1 = m
        .ok(
            Method::Clone,
            json!({"ss_record": ss, "se_record": l1, "dest_se_record": {"se_type": "SnapCloneType", "ss_uuid": ss["uuid"], "name": "c1"}}),
        )
        .await;
    let c1 = m.ok(Method::StartPresent, present(&c1, json!(["ga"]))).await;
    let c2 = m
        .ok(
            Method::CloneFromSnap,
            json!({"ss_record": ss, "se_record": l1, "snap_se_record": snap, "dest_se_record": {"se_type": "SnapCloneType", "ss_uuid": ss["uuid"], "name": "c2"}}),
        )
        .await;
    let c2 = m.ok(Method::StartPresent, present(&c2, json!(["ga"]))).await;
    assert_eq!(
        read(&portal, &ta, 3, None),
        0x22,
        "the clone starts as its parent"
    );
    assert_eq!(
        read(&portal, &ta, 4, None),
        0x11,
        "the clone of the snapshot shows the frozen data"
    );
    write(&portal, &ta, 3, None, 0x33);
    assert_eq!(read(&portal, &ta, 1, None), 0x22, "the parent did not change");
    assert_eq!(read(&portal, &ta, 3, None), 0x33);
    let clones = m.ok(Method::GetCurrentClones, json!({"ss_record": ss})).await;
    assert_eq!(clones.as_array().unwrap().len(), 2);
    let snaps = m
        .ok(Method::GetCurrentSnaps, json!({"ss_record": ss, "se_record": l1}))
        .await;
    assert_eq!(snaps.as_array().unwrap().len(), 1);

    // Restore: refused while presented and online, allowed offline, brings the data back.
    let restore = json!({"ss_record": ss, "snap_se_record": snap, "se_record": l1});
    assert_eq!(m.ok(Method::IsRestorable, restore.clone()).await, false);
    let e = m.raised(Method::SnapRestore, restore.clone()).await;
    assert_eq!(e.kind, ExceptionKind::SnapRestoreNotSafeEx, "{e}");
    m.ok(Method::Offline, json!({"ss_record": ss, "se_record": l1}))
        .await;
    assert_eq!(
        seen(&portal, &ta, INIT_A, None)[&1],
        (p(&l1), None),
        "offline LUN keeps its number"
    );
    assert_eq!(m.ok(Method::IsRestorable, restore.clone()).await, true);
    m.ok(Method::SnapRestore, restore).await;
    m.ok(Method::Online, json!({"ss_record": ss, "se_record": l1}))
        .await;
    assert_eq!(read(&portal, &ta, 1, None), 0x11, "restored");
    assert_eq!(read(&portal, &ta, 3, None), 0x33, "the clone kept its own data");

    // Split: asynchronous, driven by the manager; the clone keeps its data and identity.
    let split = json!({"ss_record": ss, "se_record": c1});
    assert_eq!(
        m.ok(Method::IsSplittable, split.clone()).await,
        false,
        "presented and online"
    );
    m.ok(Method::Offline, split.clone()).await;
    assert_eq!(m.ok(Method::IsSplittable, split.clone()).await, true);
    m.ok(Method::SplitClone, split.clone()).await;
    m.ok(Method::Online, split.clone()).await;
    assert_eq!(
        read(&portal, &ta, 3, None),
        0x33,
        "the split clone's data is intact"
    );
    write(&portal, &ta, 3, None, 0x44);
    assert_eq!(read(&portal, &ta, 3, None), 0x44);
    let after = m
        .ok(Method::GetInfo, json!({"ss_record": ss, "se_record": c1}))
        .await;
    assert_eq!(after["se_type"], "LUNType");
    assert_eq!(after["page83_id"], c1["page83_id"]);
    let clones = m.ok(Method::GetCurrentClones, json!({"ss_record": ss})).await;
    assert_eq!(clones.as_array().unwrap().len(), 1);

    let want_a = BTreeMap::from([
        (1, (p(&l1), mb(8))),
        (2, (p(&l3), mb(4))),
        (3, (p(&c1), mb(8))),
        (4, (p(&c2), mb(8))),
    ]);
    assert_eq!(seen(&portal, &ta, INIT_A, None), want_a);

    // CHAP: the record's chap/username/passwd become the targets' account.
    let mut ss2 = ss.clone();
    ss2["chap"] = json!(true);
    ss2["username"] = json!("array-user");
    ss2["passwd"] = json!("right-secret-123");
    m.ok(Method::Refresh, json!({"ss_record": ss2})).await;
    let right = Chap::new("array-user", "right-secret-123");
    let wrong = Chap::new("array-user", "wrong-secret-999");
    assert!(
        Session::login(&portal, &ta, INIT_A, Some(&wrong)).is_err(),
        "a wrong secret fails"
    );
    assert!(
        Session::login(&portal, &ta, INIT_A, None).is_err(),
        "no CHAP fails"
    );
    assert_eq!(seen(&portal, &ta, INIT_A, Some(&right)), want_a);
    assert_eq!(seen(&portal, &tb, INIT_B, Some(&right)), want_b);

    // kill -9 tgtd: the next call brings every presentation back, same ids and LUN numbers.
    tgt.kill9();
    m.ok(Method::Refresh, json!({"ss_record": ss2})).await;
    assert!(
        Session::login(&portal, &ta, INIT_A, None).is_err(),
        "CHAP is required again"
    );
    assert_eq!(seen(&portal, &ta, INIT_A, Some(&right)), want_a);
    assert_eq!(seen(&portal, &tb, INIT_B, Some(&right)), want_b);
    assert!(visible(&portal, OUTSIDER, Some(&right)).is_empty());
    tgt.kill9();
    m.ok(Method::List, json!({"ss_record": ss2})).await;
    assert_eq!(
        seen(&portal, &ta, INIT_A, Some(&right)),
        want_a,
        "any call restores"
    );

    // A record that says nothing of CHAP (another registration of this array, a conformance
    // run) leaves it required. Other CHAP settings from a registration that never sent the
    // ones in force are refused: its hosts would be locked out. (Fresh uuids: the manager
    // validates each record once before other calls.)
    let fresh = |base: &Value, chap: Option<bool>| {
        let mut r = base.clone();
        r["uuid"] = json!(uuid::Uuid::new_v4().to_string());
        if let Some(c) = chap {
            r["chap"] = json!(c);
        }
        r
    };
    m.ok(Method::GetStatus, json!({"ss_record": fresh(&ss, None)}))
        .await;
    assert!(
        Session::login(&portal, &ta, INIT_A, None).is_err(),
        "a record without chap opened the targets"
    );
    let e = m
        .raised(Method::GetStatus, json!({"ss_record": fresh(&ss, Some(false))}))
        .await;
    assert_eq!(e.kind, ExceptionKind::InvalidStorageArrayEx, "{e}");
    assert!(
        Session::login(&portal, &ta, INIT_A, None).is_err(),
        "another registration turned CHAP off"
    );
    // The registration that set CHAP turns it off, and on again (`server set` validates).
    let again = |r: &Value, chap: bool| {
        let mut r = r.clone();
        r["chap"] = json!(chap);
        r
    };
    m.ok(Method::Validate, json!({"ss_record": again(&ss2, false)}))
        .await;
    assert_eq!(
        seen(&portal, &ta, INIT_A, None),
        want_a,
        "chap False turns it off"
    );
    m.ok(Method::Validate, json!({"ss_record": again(&ss2, true)}))
        .await;
    assert!(
        Session::login(&portal, &ta, INIT_A, None).is_err(),
        "CHAP is back"
    );

    // remove refuses a presented LUN; stopPresent then remove works.
    let e = m
        .raised(Method::Remove, json!({"ss_record": ss2, "se_record": l2}))
        .await;
    assert_eq!(e.kind, ExceptionKind::StorageElementBusyEx, "{e}");
    let l2 = m
        .ok(
            Method::StopPresent,
            json!({"ss_record": ss2, "se_record": l2, "access_grp_names": ["gb"]}),
        )
        .await;
    assert_eq!(l2["access_grp_names"], json!([]));
    m.ok(Method::Remove, json!({"ss_record": ss2, "se_record": l2}))
        .await;
    assert_eq!(visible(&portal, INIT_B, Some(&right)), vec![(tb, vec![2])]);
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_explains_what_is_missing() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let m = Mgr::new().await;
    let no_tgt = ss_record(
        "localhost",
        &format!(
            "pools=p0:{};array_program={}",
            pool.display(),
            program().display()
        ),
    );
    let e = m.raised(Method::Validate, json!({"ss_record": no_tgt})).await;
    assert_eq!(e.kind, ExceptionKind::InvalidStorageArrayEx);
    assert!(e.message.contains("tgt_control"), "{e}");

    let tgt = Tgt::new();
    let mut chap = ss_record("localhost", &local_extra_info(&pool, &tgt));
    chap["chap"] = json!(true);
    chap["username"] = json!("u");
    let e = m.raised(Method::Validate, json!({"ss_record": chap})).await;
    assert_eq!(e.kind, ExceptionKind::InvalidStorageArrayEx);
    assert!(e.message.contains("passwd"), "{e}");
    chap["passwd"] = json!("short");
    let e = m.raised(Method::Validate, json!({"ss_record": chap})).await;
    assert!(
        e.message.contains("passwd") && !e.message.contains("'short'") && !e.message.contains("\"short\""),
        "{e}"
    );

    let mut san = ss_record("localhost", &local_extra_info(&pool, &tgt));
    san["storage_type"] = json!("SANStorage");
    let e = m.raised(Method::Validate, json!({"ss_record": san})).await;
    assert_eq!(e.kind, ExceptionKind::InvalidStorageArrayEx);

    // Where hosts are told to connect must be the portal.
    let port = tgt.portal().rsplit_once(':').unwrap().1.to_string();
    for (key, value, named) in [
        ("access_port", "1", "access_port '1'"),
        ("access_host", "10.9.9.9", "access_host '10.9.9.9'"),
    ] {
        let mut wrong = ss_record("localhost", &local_extra_info(&pool, &tgt));
        wrong[key] = json!(value);
        let e = m.raised(Method::Validate, json!({"ss_record": wrong})).await;
        assert_eq!(e.kind, ExceptionKind::InvalidStorageArrayEx, "{e}");
        assert!(
            e.message.contains(named) && e.message.contains(&tgt.portal()),
            "{e}"
        );
    }
    let mut good = ss_record("localhost", &local_extra_info(&pool, &tgt));
    good["access_port"] = json!(port);
    m.ok(Method::Validate, json!({"ss_record": good})).await;
    good["access_host"] = json!("localhost");
    m.ok(Method::Validate, json!({"ss_record": good})).await;
    let qos = m.ok(Method::GetQosList, json!({"ss_record": good})).await;
    assert!(qos.as_array().unwrap().len() >= 2);
}

/// Records that contradict themselves or the ss_record are refused before anything is done,
/// and the predicates agree with the methods they predict (from a guide audit).
#[tokio::test(flavor = "multi_thread")]
async fn records_name_one_element_and_predicates_agree() {
    if !can_mount() || !have_tgt() {
        return;
    }
    let fs = TestFs::new(Kind::Xfs, 512);
    let pool = fs.pool("p0");
    let tgt = Tgt::new();
    let m = Mgr::new().await;
    let ss = ss_record("localhost", &local_extra_info(&pool, &tgt));
    let lun = |name: &str| json!({"se_type": "LUNType", "ss_uuid": ss["uuid"], "name": name, "size": 4 * MIB, "vol_group_name": "p0"});
    let l1 = m
        .ok(Method::Create, json!({"ss_record": ss, "se_record": lun("l1")}))
        .await;
    let l2 = m
        .ok(Method::Create, json!({"ss_record": ss, "se_record": lun("l2")}))
        .await;
    let snaps = || async {
        m.ok(Method::GetCurrentSnaps, json!({"ss_record": ss}))
            .await
            .as_array()
            .unwrap()
            .len()
    };

    // l1's name with l2's uuid: refused, not served for l2.
    let mut mixed = l2.clone();
    mixed["name"] = json!("l1");
    let e = m
        .raised(Method::GetInfo, json!({"ss_record": ss, "se_record": mixed}))
        .await;
    assert_eq!(e.kind, ExceptionKind::InvalidValueEx, "{e}");
    assert!(e.message.contains("'l1'") && e.message.contains("'l2'"), "{e}");
    let e = m
        .raised(Method::CreateSnap, json!({"ss_record": ss, "se_record": mixed}))
        .await;
    assert_eq!(e.kind, ExceptionKind::InvalidValueEx, "{e}");
    assert_eq!(snaps().await, 0, "a refused createSnap made a snapshot");
    // l1's record with l2's page 83 id: refused too, and l1 stays online.
    let mut mixed = l1.clone();
    mixed["page83_id"] = l2["page83_id"].clone();
    let e = m
        .raised(Method::Offline, json!({"ss_record": ss, "se_record": mixed}))
        .await;
    assert_eq!(e.kind, ExceptionKind::InvalidValueEx, "{e}");
    assert!(e.message.contains("page83_id"), "{e}");
    assert_eq!(
        m.ok(Method::GetStatus, json!({"ss_record": ss, "se_record": l1}))
            .await,
        json!("ONLINE")
    );

    // A record of another storage server.
    let mut foreign = lun("l3");
    foreign["ss_uuid"] = json!("00000000-0000-4000-8000-000000000001");
    // Refused by the manager's input checks, for every plug-in.
    let e = match m
        .call(Method::Create, json!({"ss_record": ss, "se_record": foreign}))
        .await
    {
        Err(spindle_manager::CallError::Rejected(e)) => e,
        other => panic!("create of a foreign record was not rejected: {other:?}"),
    };
    assert_eq!(e.kind, ExceptionKind::InvalidValueEx, "{e}");
    assert!(e.message.contains("ss_uuid"), "{e}");
    let names: Vec<String> = m
        .ok(Method::List, json!({"ss_record": ss}))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(e, "name"))
        .collect();
    assert_eq!(names, ["l1", "l2"]);

    // A bad snapshot name is the snapshot record's `name`.
    let bad = json!({"se_type": "SnapType", "ss_uuid": ss["uuid"], "name": "a/b"});
    let e = m
        .raised(
            Method::CreateSnap,
            json!({"ss_record": ss, "se_record": l1, "snap_se_record": bad}),
        )
        .await;
    assert_eq!(e.kind, ExceptionKind::ValueFormatEx, "{e}");
    assert_eq!(e.key.as_deref(), Some("name"), "{e}");

    // isCloneable and isSnapable of a snapshot say what clone and createSnap do.
    let snap = m
        .ok(Method::CreateSnap, json!({"ss_record": ss, "se_record": l1}))
        .await;
    for (predicate, method) in [
        (Method::IsCloneable, Method::Clone),
        (Method::IsSnapable, Method::CreateSnap),
    ] {
        let said = m.ok(predicate, json!({"ss_record": ss, "se_record": snap})).await;
        assert_eq!(said, json!(false), "{predicate} of a snapshot");
        let done = m.call(method, json!({"ss_record": ss, "se_record": snap})).await;
        assert!(done.is_err(), "{method} of a snapshot worked: {done:?}");
    }
    assert_eq!(
        m.ok(Method::IsCloneable, json!({"ss_record": ss, "se_record": l1}))
            .await,
        json!(true)
    );

    // An access group's unknown keys survive the round trip, a rename too.
    let made = m
        .ok(
            Method::CreateAccessGroups,
            json!({"ss_record": ss, "access_grps": [{"grp_name": "g1", "grp_entries": [INIT_A], "site": "rack-4"}]}),
        )
        .await;
    assert_eq!(made[0]["site"], "rack-4", "{made}");
    let mut with_groups = ss.clone();
    with_groups["access_grps"] = made.clone();
    let renamed = m
        .ok(
            Method::RenameAccessGroup,
            json!({"ss_record": with_groups, "access_grp_name": "g1", "new_access_grp_name": "g2"}),
        )
        .await;
    assert_eq!(renamed[0]["grp_name"], "g2");
    assert_eq!(renamed[0]["site"], "rack-4", "{renamed}");
}
