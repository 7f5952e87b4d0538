//! Access groups and presentation.

use super::*;
use spindle_api::{AccessGrp, Field, StorageType};

fn grp(name: &str, entries: &[&str]) -> AccessGrp {
    AccessGrp::from_value(&json!({"grp_name": name, "grp_entries": entries})).expect("access_grp")
}

fn names(groups: &[AccessGrp]) -> Vec<String> {
    groups.iter().map(|g| text(&g.grp_name).to_string()).collect()
}

fn entries(g: &AccessGrp) -> Vec<String> {
    g.grp_entries.value().cloned().unwrap_or_default()
}

#[test]
fn iscsi_groups_lifecycle() {
    let fx = Fx::iscsi();
    let h = &fx.host;
    let mut with_modes = grp(
        "web",
        &["iqn.1994-05.com.redhat:web1", "IQN.1994-05.COM.REDHAT:WEB1"],
    );
    with_modes.grp_modes = Field::Value(vec!["rw".into()]);
    let out =
        fx.p.create_access_groups(h, &fx.ss, &[with_modes, grp("db", &["eui.02004567a425678d"])])
            .expect("createAccessGroups");
    assert_eq!(names(&out), ["web", "db"]);
    assert_eq!(
        entries(&out[0]),
        ["iqn.1994-05.com.redhat:web1"],
        "entries are normalised and deduplicated"
    );
    assert_eq!(out[0].grp_modes, Field::Value(vec!["rw".to_string()]));
    assert_eq!(entries(&out[1]), ["eui.02004567A425678D"]);
    assert_eq!(
        names(&fx.p.get_access_groups(h, &fx.ss, None).expect("get")),
        ["web", "db"]
    );

    let g =
        fx.p.add_to_access_group(
            h,
            &fx.ss,
            "web",
            &[
                "naa.52004567BA64678D".into(),
                "iqn.1994-05.com.redhat:web1".into(),
            ],
        )
        .expect("addToAccessGroup");
    assert_eq!(
        entries(&g),
        ["iqn.1994-05.com.redhat:web1", "naa.52004567BA64678D"]
    );
    let g =
        fx.p.remove_from_access_group(h, &fx.ss, "web", &["IQN.1994-05.com.redhat:web1".into()])
            .expect("removeFromAccessGroup");
    assert_eq!(entries(&g), ["naa.52004567BA64678D"]);

    let out =
        fx.p.rename_access_group(h, &fx.ss, "web", "frontend")
            .expect("rename");
    assert_eq!(names(&out), ["frontend", "db"]);
    let out =
        fx.p.rename_access_group(h, &fx.ss, "db", "db")
            .expect("rename to itself");
    assert_eq!(names(&out), ["frontend", "db"]);
    let out =
        fx.p.remove_access_groups(h, &fx.ss, &[grp("db", &[])])
            .expect("remove");
    assert_eq!(names(&out), ["frontend"]);
    // The ss_record's access_grps is the caller's to update from the return values.
    assert_eq!(fx.ss.access_grps, Field::Value(vec![]));
}

#[test]
fn san_groups_take_wwns_only() {
    let fx = Fx::san();
    let out =
        fx.p.create_access_groups(&fx.host, &fx.ss, &[grp("fc", &["0x500A0981891B8DC5"])])
            .expect("create");
    assert_eq!(entries(&out[0]), ["0x500a0981891b8dc5"]);
    let before = fx.state_bytes();
    let e = expect_ex(
        fx.p.add_to_access_group(&fx.host, &fx.ss, "fc", &["iqn.1994-05.com.redhat:h".into()]),
        ExceptionKind::ValueFormatEx,
        &["grp_entries", "iqn.1994-05.com.redhat:h", "WWN"],
    );
    assert_eq!(e.key.as_deref(), Some("grp_entries"));
    expect_ex(
        fx.p.create_access_groups(&fx.host, &fx.ss, &[grp("fc2", &["500a0981891b8dc5"])]),
        ExceptionKind::ValueFormatEx,
        &["500a0981891b8dc5"],
    );
    assert_eq!(fx.state_bytes(), before);
}

#[test]
fn group_errors_name_the_value_and_change_nothing() {
    let fx = Fx::iscsi();
    let h = &fx.host;
    fx.group("g", &["iqn.2001-04.com.example:a"]);
    let before = fx.state_bytes();
    let e = expect_ex(
        fx.p.create_access_groups(h, &fx.ss, &[grp("ok", &[]), grp("bad/name", &[])]),
        ExceptionKind::ValueFormatEx,
        &["bad/name"],
    );
    assert_eq!(e.key.as_deref(), Some("grp_name"));
    let e = expect_ex(
        fx.p.create_access_groups(h, &fx.ss, &[AccessGrp::default()]),
        ExceptionKind::MissingKeyEx,
        &[],
    );
    assert_eq!(e.key.as_deref(), Some("grp_name"));
    expect_ex(
        fx.p.create_access_groups(h, &fx.ss, &[grp("new", &[]), grp("g", &[])]),
        ExceptionKind::InvalidValueEx,
        &["'g'", "already"],
    );
    expect_ex(
        fx.p.create_access_groups(h, &fx.ss, &[grp("x", &[]), grp("x", &[])]),
        ExceptionKind::InvalidValueEx,
        &["twice"],
    );
    expect_ex(
        fx.p.create_access_groups(h, &fx.ss, &[grp("y", &["iqn.1994-13.com.example:x"])]),
        ExceptionKind::ValueFormatEx,
        &["iqn.1994-13.com.example:x"],
    );
    expect_ex(
        fx.p.remove_access_groups(h, &fx.ss, &[grp("nope", &[])]),
        ExceptionKind::InvalidValueEx,
        &["nope"],
    );
    expect_ex(
        fx.p.rename_access_group(h, &fx.ss, "nope", "x"),
        ExceptionKind::InvalidValueEx,
        &["access_grp_name", "nope"],
    );
    let e = expect_ex(
        fx.p.rename_access_group(h, &fx.ss, "g", "a;b"),
        ExceptionKind::ValueFormatEx,
        &["a;b"],
    );
    assert_eq!(e.key.as_deref(), Some("new_access_grp_name"));
    assert_eq!(fx.state_bytes(), before);
    fx.group("h", &[]);
    let before = fx.state_bytes();
    expect_ex(
        fx.p.rename_access_group(h, &fx.ss, "g", "h"),
        ExceptionKind::InvalidValueEx,
        &["'h'", "already"],
    );
    expect_ex(
        fx.p.add_to_access_group(h, &fx.ss, "nope", &[]),
        ExceptionKind::InvalidValueEx,
        &["nope"],
    );
    expect_ex(
        fx.p.remove_from_access_group(h, &fx.ss, "g", &["iqn.2001-04.com.example:zzz".into()]),
        ExceptionKind::InvalidValueEx,
        &["iqn.2001-04.com.example:zzz", "not in"],
    );
    let e = expect_ex(
        fx.p.add_to_access_group(h, &fx.ss, "", &[]),
        ExceptionKind::MissingKeyEx,
        &[],
    );
    assert_eq!(e.key.as_deref(), Some("access_grp_name"));
    assert_eq!(fx.state_bytes(), before);
}

#[test]
fn max_access_entries_is_enforced() {
    let fx = Fx::iscsi();
    let many: Vec<String> = (0..65)
        .map(|i| format!("iqn.2001-04.com.example:host{i}"))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    expect_ex(
        fx.p.create_access_groups(&fx.host, &fx.ss, &[grp("big", &refs)]),
        ExceptionKind::InvalidValueEx,
        &["65", "max_access_entries", "64"],
    );
    fx.group("big", &refs[..64]);
    expect_ex(
        fx.p.add_to_access_group(&fx.host, &fx.ss, "big", &many[64..]),
        ExceptionKind::InvalidValueEx,
        &["65", "64"],
    );
    // Adding entries already there does not count twice.
    let g =
        fx.p.add_to_access_group(&fx.host, &fx.ss, "big", &many[..3])
            .expect("idempotent add");
    assert_eq!(entries(&g).len(), 64);
}

#[test]
fn presentation_follows_groups() {
    let fx = Fx::with(StorageType::Iscsi, ";capacity=10G");
    fx.group("a", &["iqn.2001-04.com.example:a"]);
    fx.group("b", &["iqn.2001-04.com.example:b"]);
    fx.group("c", &[]);
    let lun = fx.lun("l", GIB, true);
    let other = fx.lun("other", GIB, true);
    let r = fx.present(&lun, &["a", "b"]);
    assert_eq!(
        r.access_grp_names,
        Field::Value(vec!["a".to_string(), "b".to_string()])
    );
    let r = fx.present(&r, &["b"]);
    assert_eq!(
        r.access_grp_names,
        Field::Value(vec!["a".to_string(), "b".to_string()])
    );
    // getAccessGroups(se) gives only the groups the element is presented to.
    let got = fx.p.get_access_groups(&fx.host, &fx.ss, Some(&lun)).expect("get");
    assert_eq!(names(&got), ["a", "b"]);
    assert_eq!(entries(&got[0]), ["iqn.2001-04.com.example:a"]);
    assert!(fx
        .p
        .get_access_groups(&fx.host, &fx.ss, Some(&other))
        .expect("get")
        .is_empty());
    // A presented-to group cannot go; renaming it follows through.
    expect_ex(
        fx.p.remove_access_groups(&fx.host, &fx.ss, &[grp("a", &[])]),
        ExceptionKind::StorageElementBusyEx,
        &["'a'", "l"],
    );
    fx.p.rename_access_group(&fx.host, &fx.ss, "a", "alpha")
        .expect("rename");
    assert_eq!(
        fx.info(&lun).access_grp_names,
        Field::Value(vec!["alpha".to_string(), "b".to_string()])
    );
    let before = fx.state_bytes();
    expect_ex(
        fx.p.start_present(&fx.host, &fx.ss, &lun, &["a".into()]),
        ExceptionKind::InvalidValueEx,
        &["access_grp_names", "'a'"],
    );
    expect_ex(
        fx.p.stop_present(&fx.host, &fx.ss, &lun, &["zzz".into()]),
        ExceptionKind::InvalidValueEx,
        &["zzz"],
    );
    assert_eq!(fx.state_bytes(), before);
    let snap = fx.snap(&lun, None);
    let before_snap = fx.state_bytes();
    expect_ex(
        fx.p.start_present(&fx.host, &fx.ss, &snap, &["c".into()]),
        ExceptionKind::InvalidValueEx,
        &["snapshot"],
    );
    assert_eq!(fx.state_bytes(), before_snap);
    // stopPresent of a group the element is not presented to is a no-op.
    let r =
        fx.p.stop_present(&fx.host, &fx.ss, &lun, &["c".into(), "alpha".into()])
            .expect("stopPresent");
    assert_update_ok(&lun, &r);
    assert_eq!(r.access_grp_names, Field::Value(vec!["b".to_string()]));
    fx.p.remove_access_groups(&fx.host, &fx.ss, &[grp("alpha", &[])])
        .expect("unpresented group can go");
}
