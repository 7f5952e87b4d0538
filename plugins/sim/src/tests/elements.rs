//! LUNs: create, getInfo, list, resize, online/offline, remove, identity and bad input.

use super::*;
use spindle_api::{Field, SeState, SeType, StorageType};
use std::collections::HashSet;

#[test]
fn create_returns_a_complete_record_built_on_the_given_one() {
    let fx = Fx::iscsi();
    let req = lun_req("vm-disk.1", 5 * MIB + 1);
    let r = fx.p.create(&fx.host, &fx.ss, &req, true, None).expect("create");
    assert_update_ok(&req, &r);
    assert_eq!(r.se_type, Field::Value(SeType::Lun));
    assert_eq!(text(&r.name), "vm-disk.1");
    assert_eq!(text(&r.ss_uuid), SS_UUID);
    assert_eq!(size_of(&r), 6 * MIB, "sizes are rounded up to whole MiB");
    assert_eq!(text(&r.vol_group_name), "pool0");
    assert_eq!(text(&r.qos), "normal");
    assert_eq!(r.state, Field::Value(SeState::Online));
    assert_eq!(text(&r.status), "ONLINE");
    assert_eq!(r.access_grp_names, Field::Value(vec![]));
    assert_eq!(text(&r.vendor), "SPINDLE");
    assert_eq!(text(&r.array_path), "pool0/vm-disk.1");
    assert!(uuid::Uuid::parse_str(text(&r.uuid)).is_ok());
    let p83 = text(&r.page83_id);
    assert!(p83.starts_with("36") && p83.len() == 33, "{p83}");
    // The formatter accepts its own output unchanged.
    assert_eq!(
        spindle_api::make_mp_page83_from_raw_page83(p83).as_deref(),
        Ok(p83)
    );
    // What the caller gave and the plug-in does not own survives.
    assert_eq!(text(&r.extra_info), "given-and-kept");
    assert_eq!(r.extra.get("manager_private"), Some(&json!([1, 2, 3])));
    assert_eq!(r.async_progress, Field::Absent);
    // An empty ss_uuid is filled in from the ss_record.
    let mut req = lun_req("no-ss-uuid", GIB);
    req.ss_uuid = Field::Value(String::new());
    let r = fx.p.create(&fx.host, &fx.ss, &req, true, None).expect("create");
    assert_update_ok(&req, &r);
    assert_eq!(text(&r.ss_uuid), SS_UUID);
    assert!(fx.host.logs().iter().any(|(_, m)| m.contains("created thin LUN")));
}

#[test]
fn thin_and_thick_are_accounted_and_space_is_enforced() {
    let fx = Fx::iscsi(); // 10 GiB pool
    fx.lun("thick", 4 * GIB, false);
    assert_eq!(fx.pool_free(), 6 * GIB);
    fx.lun("thin", 5 * GIB, true);
    assert_eq!(fx.pool_free(), 6 * GIB, "a thin LUN reserves nothing");
    let s = fx.state();
    assert_eq!(s.pool_alloc("pool0"), 9 * GIB);
    // Beyond free space fails for thick and thin alike, and changes nothing.
    let before = fx.state_bytes();
    for thin in [false, true] {
        expect_ex(
            fx.p.create(&fx.host, &fx.ss, &lun_req("big", 6 * GIB + 1), thin, None),
            ExceptionKind::InvalidValueEx,
            &["size", "pool0", "free"],
        );
    }
    assert_eq!(fx.state_bytes(), before);
    fx.lun("exact", 6 * GIB, false);
    assert_eq!(fx.pool_free(), 0);
    // Thin over-subscription through many LUNs is possible up to free space each.
    let fx = Fx::iscsi();
    for i in 0..3 {
        fx.lun(&format!("t{i}"), 10 * GIB, true);
    }
    assert_eq!(fx.state().pool_alloc("pool0"), 30 * GIB);
}

#[test]
fn create_refuses_bad_input_naming_key_and_value_and_changes_nothing() {
    let fx = Fx::iscsi();
    fx.lun("taken", GIB, true);
    let before = fx.state_bytes();
    let long = "n".repeat(65);
    for bad in [
        "a/b",
        "..",
        "x..y",
        "tab\there",
        "bell\u{7}",
        "semi;colon",
        "$(reboot)",
        "`id`",
        "a|b",
        long.as_str(),
    ] {
        let e = expect_ex(
            fx.p.create(&fx.host, &fx.ss, &lun_req(bad, GIB), true, None),
            ExceptionKind::ValueFormatEx,
            &["name"],
        );
        assert_eq!(e.key.as_deref(), Some("name"));
        let shown_value: String = spindle_api::names::shown(bad).chars().take(40).collect();
        assert!(
            e.message.contains(&shown_value),
            "{} lacks {shown_value}",
            e.message
        );
    }
    for size in [0, -1, i64::MIN] {
        expect_ex(
            fx.p.create(&fx.host, &fx.ss, &lun_req("z", size), true, None),
            ExceptionKind::InvalidValueEx,
            &["size", &size.to_string()],
        );
    }
    expect_ex(
        fx.p.create(&fx.host, &fx.ss, &lun_req("huge", i64::MAX), true, None),
        ExceptionKind::InvalidValueEx,
        &["size"],
    );
    let mut r = lun_req("nosize", GIB);
    r.size = Field::Absent;
    let e = expect_ex(
        fx.p.create(&fx.host, &fx.ss, &r, true, None),
        ExceptionKind::MissingKeyEx,
        &[],
    );
    assert_eq!(e.key.as_deref(), Some("size"));
    let mut r = lun_req("", GIB);
    r.name = Field::Absent;
    let e = expect_ex(
        fx.p.create(&fx.host, &fx.ss, &r, true, None),
        ExceptionKind::MissingKeyEx,
        &[],
    );
    assert_eq!(e.key.as_deref(), Some("name"));
    let mut r = lun_req("notype", GIB);
    r.se_type = Field::Absent;
    let e = expect_ex(
        fx.p.create(&fx.host, &fx.ss, &r, true, None),
        ExceptionKind::MissingKeyEx,
        &[],
    );
    assert_eq!(e.key.as_deref(), Some("se_type"));
    let mut r = lun_req("snaptype", GIB);
    r.se_type = Field::Value(SeType::Snap);
    expect_ex(
        fx.p.create(&fx.host, &fx.ss, &r, true, None),
        ExceptionKind::InvalidValueEx,
        &["SnapType"],
    );
    let mut r = lun_req("nopool", GIB);
    r.vol_group_name = Field::Value("atlantis".into());
    expect_ex(
        fx.p.create(&fx.host, &fx.ss, &r, true, None),
        ExceptionKind::InvalidValueEx,
        &["vol_group_name", "atlantis"],
    );
    expect_ex(
        fx.p.create(&fx.host, &fx.ss, &lun_req("taken", GIB), true, None),
        ExceptionKind::InvalidValueEx,
        &["name", "taken", "already"],
    );
    assert_eq!(fx.state_bytes(), before, "a refused create changed the array");
}

#[test]
fn page83_ids_and_uuids_are_never_reused() {
    let fx = Fx::san();
    let mut p83 = HashSet::new();
    let mut uuids = HashSet::new();
    for round in 0..5 {
        let r = fx.lun("same-name", GIB, true);
        assert!(
            p83.insert(text(&r.page83_id).to_string()),
            "page83 reused in round {round}"
        );
        assert!(
            uuids.insert(text(&r.uuid).to_string()),
            "uuid reused in round {round}"
        );
        let clone = fx.clone_of(&r, "its-clone");
        let snap = fx.snap(&r, Some("its-snap"));
        for x in [&clone, &snap] {
            assert!(p83.insert(text(&x.page83_id).to_string()));
            assert!(uuids.insert(text(&x.uuid).to_string()));
        }
        fx.p.remove(&fx.host, &fx.ss, &clone).expect("remove clone");
        fx.p.snap_remove(&fx.host, &fx.ss, &snap).expect("snapRemove");
        fx.p.remove(&fx.host, &fx.ss, &r).expect("remove");
    }
    assert_eq!(p83.len(), 15);
    // The counter lives in the state file and only grows.
    assert_eq!(fx.state().next_serial, 16);
    // All ids of one array share the array's NAA prefix; another array's differ.
    let prefixes: HashSet<&str> = p83.iter().map(|p| &p[..17]).collect();
    assert_eq!(prefixes.len(), 1);
    let other = Fx::san();
    let o = other.lun("same-name", GIB, true);
    assert!(!p83.contains(text(&o.page83_id)));
    assert!(!prefixes.contains(&text(&o.page83_id)[..17]));
}

#[test]
fn stale_and_mismatched_records_are_refused() {
    let fx = Fx::iscsi();
    let r = fx.lun("gone", GIB, true);
    fx.p.remove(&fx.host, &fx.ss, &r).expect("remove");
    // A new element with the same name is not reachable through the old record.
    fx.lun("gone", GIB, true);
    expect_ex(
        fx.p.remove(&fx.host, &fx.ss, &r),
        ExceptionKind::InvalidValueEx,
        &["uuid", "no element"],
    );
    expect_ex(
        fx.p.get_info(&fx.host, &fx.ss, Some(&r)),
        ExceptionKind::InvalidValueEx,
        &["se_record"],
    );
    // Lookup by name alone, and by page83_id alone, work.
    let by_name = SeRecord {
        name: Field::Value("gone".into()),
        ..Default::default()
    };
    let found = fx.info(&by_name);
    let by_p83 = SeRecord {
        page83_id: found.page83_id.clone(),
        ..Default::default()
    };
    assert_eq!(fx.info(&by_p83).uuid, found.uuid);
    // A name that contradicts the uuid is refused.
    let mut wrong = found.clone();
    wrong.name = Field::Value("other".into());
    expect_ex(
        fx.p.get_info(&fx.host, &fx.ss, Some(&wrong)),
        ExceptionKind::InvalidValueEx,
        &["other"],
    );
    // A record with no identity at all.
    let e = expect_ex(
        fx.p.get_status(&fx.host, &fx.ss, Some(&SeRecord::default())),
        ExceptionKind::MissingKeyEx,
        &[],
    );
    assert_eq!(e.key.as_deref(), Some("uuid"));
}

#[test]
fn list_honours_se_type_and_never_returns_snapshots() {
    let fx = Fx::iscsi();
    let a = fx.lun("a", GIB, true);
    let _b = fx.lun("b", GIB, false);
    let c = fx.clone_of(&a, "a-clone");
    fx.snap(&a, Some("a-snap"));
    let names = |types: &[SeType]| -> Vec<String> {
        fx.p.list(&fx.host, &fx.ss, types)
            .expect("list")
            .iter()
            .map(|r| {
                assert!(!text(&r.page83_id).is_empty());
                assert_eq!(text(&r.ss_uuid), SS_UUID);
                text(&r.name).to_string()
            })
            .collect()
    };
    assert_eq!(names(&[SeType::Lun, SeType::SnapClone]), ["a", "b", "a-clone"]);
    assert_eq!(names(&[SeType::Lun]), ["a", "b"]);
    assert_eq!(names(&[SeType::SnapClone]), ["a-clone"]);
    assert!(names(&[SeType::Snap]).is_empty());
    assert!(names(&[SeType::GhostLun]).is_empty());
    assert!(names(&[]).is_empty());
    assert_eq!(text(&fx.info(&c).name), "a-clone");
}

#[test]
fn resize_grows_and_shrinks_within_the_pool() {
    let fx = Fx::iscsi();
    let thick = fx.lun("thick", 2 * GIB, false);
    let r = fx.p.resize(&fx.host, &fx.ss, &thick, 3 * GIB + 5).expect("grow");
    assert_update_ok(&thick, &r);
    assert_eq!(size_of(&r), 3 * GIB + MIB, "the actual, rounded size comes back");
    assert_eq!(fx.pool_free(), 7 * GIB - MIB);
    let r = fx.p.resize(&fx.host, &fx.ss, &r, GIB).expect("shrink");
    assert_eq!(size_of(&r), GIB);
    assert_eq!(fx.pool_free(), 9 * GIB);
    let thin = fx.lun("thin", GIB, true);
    let r = fx.p.resize(&fx.host, &fx.ss, &thin, 9 * GIB).expect("thin grow");
    assert_eq!(size_of(&r), 9 * GIB);
    assert_eq!(fx.pool_free(), 9 * GIB);
    let snap = fx.snap(&thin, None);
    let before = fx.state_bytes();
    expect_ex(
        fx.p.resize(&fx.host, &fx.ss, &thick, 11 * GIB),
        ExceptionKind::InvalidValueEx,
        &["new_size", "free"],
    );
    for bad in [0, -GIB] {
        expect_ex(
            fx.p.resize(&fx.host, &fx.ss, &thick, bad),
            ExceptionKind::InvalidValueEx,
            &["new_size"],
        );
    }
    expect_ex(
        fx.p.resize(&fx.host, &fx.ss, &snap, 2 * GIB),
        ExceptionKind::InvalidValueEx,
        &["snapshot"],
    );
    assert_eq!(fx.state_bytes(), before, "a refused resize changed the array");
    // The snapshot keeps the size it froze.
    assert_eq!(size_of(&fx.info(&snap)), 9 * GIB);
}

#[test]
fn online_and_offline_keep_presentation() {
    let fx = Fx::iscsi();
    fx.group("hosts", &["iqn.1994-05.com.redhat:h1"]);
    let lun = fx.lun("l", GIB, true);
    let lun = fx.present(&lun, &["hosts"]);
    fx.p.offline(&fx.host, &fx.ss, &lun).expect("offline");
    let r = fx.info(&lun);
    assert_eq!(r.state, Field::Value(SeState::Offline));
    assert_eq!(text(&r.status), "OFFLINE");
    assert_eq!(
        fx.p.get_status(&fx.host, &fx.ss, Some(&lun)).expect("status"),
        "OFFLINE"
    );
    assert_eq!(r.access_grp_names, Field::Value(vec!["hosts".to_string()]));
    fx.p.offline(&fx.host, &fx.ss, &lun)
        .expect("offline twice is fine");
    fx.p.online(&fx.host, &fx.ss, &lun).expect("online");
    let r = fx.info(&lun);
    assert_eq!(r.state, Field::Value(SeState::Online));
    assert_eq!(r.access_grp_names, Field::Value(vec!["hosts".to_string()]));
    let snap = fx.snap(&lun, None);
    expect_ex(
        fx.p.offline(&fx.host, &fx.ss, &snap),
        ExceptionKind::InvalidValueEx,
        &["snapshot"],
    );
    expect_ex(
        fx.p.online(&fx.host, &fx.ss, &snap),
        ExceptionKind::InvalidValueEx,
        &["snapshot"],
    );
}

#[test]
fn remove_refuses_busy_elements_and_never_unpresents() {
    let fx = Fx::iscsi();
    fx.group("g", &[]);
    let lun = fx.lun("l", GIB, false);
    let lun = fx.present(&lun, &["g"]);
    let before = fx.state_bytes();
    expect_ex(
        fx.p.remove(&fx.host, &fx.ss, &lun),
        ExceptionKind::StorageElementBusyEx,
        &["presented", "g"],
    );
    assert_eq!(fx.state_bytes(), before);
    assert_eq!(
        fx.info(&lun).access_grp_names,
        Field::Value(vec!["g".to_string()])
    );
    let lun =
        fx.p.stop_present(&fx.host, &fx.ss, &lun, &["g".into()])
            .expect("stopPresent");

    let snap = fx.snap(&lun, Some("s1"));
    expect_ex(
        fx.p.remove(&fx.host, &fx.ss, &lun),
        ExceptionKind::StorageElementBusyEx,
        &["snapshots", "s1"],
    );
    expect_ex(
        fx.p.remove(&fx.host, &fx.ss, &snap),
        ExceptionKind::InvalidValueEx,
        &["snapRemove"],
    );
    fx.p.snap_remove(&fx.host, &fx.ss, &snap).expect("snapRemove");

    let clone = fx.clone_of(&lun, "c1");
    expect_ex(
        fx.p.remove(&fx.host, &fx.ss, &lun),
        ExceptionKind::StorageElementBusyEx,
        &["clones", "c1"],
    );
    fx.p.remove(&fx.host, &fx.ss, &clone).expect("remove clone");
    fx.p.remove(&fx.host, &fx.ss, &lun).expect("remove");
    assert_eq!(
        fx.pool_free(),
        10 * GIB,
        "a removed thick LUN gives its space back"
    );
    assert!(fx.state().elements.is_empty());
}

#[test]
fn get_info_status_and_update_se_records_on_elements() {
    let fx = Fx::with(StorageType::San, ";capacity=10G");
    let a = fx.lun("a", GIB, true);
    let b = fx.lun("b", GIB, true);
    fx.p.resize(&fx.host, &fx.ss, &a, 2 * GIB).expect("resize");
    // getInfo reports the current record, built on the one given.
    let r = fx.info(&a);
    assert_eq!(size_of(&r), 2 * GIB);
    assert_eq!(text(&r.extra_info), "given-and-kept");
    // updateSERecords completes known records, marks unknown ones, appends on request.
    let mut ghost = lun_req("ghost", GIB);
    ghost.uuid = Field::Value("00000000-0000-0000-0000-000000000000".into());
    let given = vec![a.clone(), ghost.clone()];
    let out =
        fx.p.update_se_records(&fx.host, &fx.ss, &given, false)
            .expect("updateSERecords");
    assert_eq!(out.len(), 2);
    for (g, r) in given.iter().zip(&out) {
        assert_update_ok(g, r);
    }
    assert_eq!(size_of(&out[0]), 2 * GIB);
    assert_eq!(
        out[0].path,
        Field::Value(vec![]),
        "a simulated element has no local device"
    );
    assert_eq!(out[1].state, Field::Value(SeState::Unknown));
    let out =
        fx.p.update_se_records(&fx.host, &fx.ss, std::slice::from_ref(&a), true)
            .expect("append");
    let names: Vec<&str> = out.iter().map(|r| text(&r.name)).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(text(&out[1].uuid), text(&b.uuid));
}
