//! Class variables, validate, capabilities, getInfo on the array, status, names, QoS and the
//! iSCSI-only and optional methods.

use super::*;
use crate::{plugin, CLASS_NAME, PLUGIN_VERSION};
use spindle_api::{
    Abilities, Field, Flag, Info, MaxEntries, Method, OpAbility, PluginMetadata, SeState, StorageType,
};

#[test]
fn metadata_is_legal_and_says_simulated() {
    let p = plugin();
    assert_eq!(p.class_name(), CLASS_NAME);
    assert_eq!(CLASS_NAME, "spindle.sim.SimArray");
    let m = p.metadata();
    let reparsed = PluginMetadata::from_value(&m.to_value()).expect("metadata validates");
    assert_eq!(reparsed, m);
    assert_eq!(m.plugin_version.to_string(), PLUGIN_VERSION);
    assert_eq!(PLUGIN_VERSION, format!("{}-1", env!("CARGO_PKG_VERSION")));
    assert!(m.plugin_desc.to_lowercase().contains("simulated"));
    assert!(m
        .ss_extra_info_help
        .as_deref()
        .is_some_and(|h| h.contains("state_dir=")));
    assert_eq!(m.se_extra_info_help, None);
    assert_eq!(m.storage_types, vec![StorageType::San, StorageType::Iscsi]);
    let a = &m.plugin_ability;
    assert_eq!(a.splitclone_is_sync, Flag::No);
    for f in [
        a.snap_is_sync,
        a.clone_is_sync,
        a.resize_is_sync,
        a.snapclone_is_sync,
    ] {
        assert_eq!(f, Flag::Yes);
    }
    for op in [a.snapshot, a.clone, a.resize, a.splitclone, a.snapclone] {
        assert_eq!(op, OpAbility::Online);
    }
    assert_eq!(a.max_access_entries, MaxEntries::Limited(64));
    assert!(a.any_async());
    assert!(p.implemented_optional().contains(&Method::GetAsyncProgress));
}

#[test]
fn validate_creates_the_array_once() {
    for st in [StorageType::San, StorageType::Iscsi] {
        let fx = Fx::with(st, "");
        let first = fx.state();
        assert_eq!(first.storage_type, st);
        assert_eq!(first.pools.len(), 1);
        assert_eq!(first.pools[0].capacity, 1 << 40, "default capacity is 1 TiB");
        // Validating again keeps the same array.
        fx.p.validate(&fx.host, &fx.ss).expect("validate again");
        assert_eq!(fx.state(), first);
        assert!(fx.host.logs().iter().any(|(_, m)| m.contains("validated")));
    }
}

#[test]
fn validate_refuses_bad_records_with_invalid_storage_array() {
    let fx = Fx::iscsi();
    let file = fx.dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let corrupt = fx.dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).expect("mkdir");
    std::fs::write(corrupt.join(STATE_FILE), b"{not json").expect("write");
    let here = fx.dir.path().join("array").display().to_string();
    let cases = [
        ("iSCSIStorage", String::new(), "state_dir"),
        ("iSCSIStorage", "capacity=1T".to_string(), "state_dir"),
        ("iSCSIStorage", "state_dir=relative/x".to_string(), "absolute"),
        ("iSCSIStorage", "state_dir=/tmp/../etc".to_string(), ".."),
        (
            "iSCSIStorage",
            format!("state_dir={}", file.display()),
            "not a directory",
        ),
        (
            "iSCSIStorage",
            format!("state_dir={}/sub", file.display()),
            "cannot",
        ),
        (
            "iSCSIStorage",
            format!("state_dir={}", corrupt.display()),
            "not a simulated array",
        ),
        (
            "NetworkFileSystem",
            format!("state_dir={here}"),
            "NetworkFileSystem",
        ),
        ("SANStorage", format!("state_dir={here}"), "iSCSIStorage"),
        (
            "iSCSIStorage",
            format!("state_dir={here};capacity=20G"),
            "capacity",
        ),
        ("iSCSIStorage", format!("state_dir={here};pools=a,b"), "pools"),
        ("iSCSIStorage", format!("state_dir={here};bogus=1"), "bogus"),
    ];
    for (st, extra, needle) in cases {
        let ss = ss_record(st, &extra);
        expect_ex(
            fx.p.validate(&fx.host, &ss),
            ExceptionKind::InvalidStorageArrayEx,
            &[needle],
        );
    }
    let mut no_type = fx.ss.clone();
    no_type.storage_type = Field::Absent;
    expect_ex(
        fx.p.validate(&fx.host, &no_type),
        ExceptionKind::InvalidStorageArrayEx,
        &["storage_type"],
    );
    // Settings that agree with the array are fine.
    let ss = ss_record(
        "iSCSIStorage",
        &format!("state_dir={here};capacity=10G;pools=pool0"),
    );
    fx.p.validate(&fx.host, &ss).expect("matching settings validate");
}

#[test]
fn other_methods_never_raise_invalid_storage_array() {
    let fx = Fx::iscsi();
    let here = fx.dir.path().join("array").display().to_string();
    let cases = [
        (
            ss_record("iSCSIStorage", ""),
            ExceptionKind::MissingKeyEx,
            Some("extra_info"),
        ),
        (
            ss_record("iSCSIStorage", "state_dir=rel"),
            ExceptionKind::ValueFormatEx,
            Some("extra_info"),
        ),
        (
            ss_record("Floppy", &format!("state_dir={here}")),
            ExceptionKind::ValueFormatEx,
            Some("storage_type"),
        ),
        (
            ss_record("SANStorage", &format!("state_dir={here}")),
            ExceptionKind::InvalidValueEx,
            None,
        ),
    ];
    for (ss, kind, key) in cases {
        let h = &fx.host;
        let results: Vec<PluginResult<()>> = vec![
            fx.p.get_capabilities(h, &ss).map(drop),
            fx.p.get_info(h, &ss, None).map(drop),
            fx.p.list(h, &ss, &[spindle_api::SeType::Lun]).map(drop),
            fx.p.get_status(h, &ss, None).map(drop),
            fx.p.create(h, &ss, &lun_req("x", GIB), true, None).map(drop),
            fx.p.get_access_groups(h, &ss, None).map(drop),
            fx.p.is_snapable(h, &ss, None).map(drop),
        ];
        for r in results {
            let e = r.expect_err("bad ss_record must fail");
            assert_eq!(e.kind, kind, "{e}");
            assert_eq!(e.key.as_deref(), key, "{e}");
        }
    }
}

#[test]
fn capabilities_are_the_static_abilities() {
    let fx = Fx::san();
    let caps = fx.p.get_capabilities(&fx.host, &fx.ss).expect("getCapabilities");
    assert_eq!(caps, crate::SimArray::abilities());
    assert_eq!(Abilities::from_value(&caps.to_value()), Ok(caps));
}

#[test]
fn get_info_on_the_array_reports_sizes_pools_and_keeps_the_record() {
    let fx = Fx::with(StorageType::Iscsi, ";capacity=10G;pools=fast,bulk");
    let thick = lun_req("thick", GIB);
    fx.p.create(&fx.host, &fx.ss, &thick, false, None).expect("thick");
    let mut thin = lun_req("thin", 3 * GIB);
    thin.vol_group_name = Field::Value("bulk".into());
    fx.p.create(&fx.host, &fx.ss, &thin, true, None).expect("thin");
    let Info::Server(out) = fx.p.get_info(&fx.host, &fx.ss, None).expect("getInfo") else {
        panic!("getInfo without se_record returned an se_record");
    };
    let v = check_update(RecordKind::SsRecord, &obj(fx.ss.to_value()), &obj(out.to_value()));
    assert!(v.is_empty(), "{v:?}");
    assert_eq!(out.status.value().map(String::as_str), Some("ONLINE"));
    assert!(text(&out.storage_desc).contains("simulated"));
    assert_eq!(out.total_sz, Field::Value(20 * GIB));
    assert_eq!(out.used_sz, Field::Value(GIB));
    assert_eq!(out.free_sz, Field::Value(19 * GIB));
    assert_eq!(out.alloc_sz, Field::Value(4 * GIB));
    assert_eq!(out.extra.get("custom_manager_key"), Some(&json!({"kept": true})));
    let groups = out.vol_groups.value().expect("vol_groups");
    let names: Vec<&str> = groups.iter().map(|g| text(&g.vol_name)).collect();
    assert_eq!(names, ["fast", "bulk"]);
    assert_eq!(groups[0].vol_used_sz, Field::Value(GIB));
    assert_eq!(groups[1].vol_used_sz, Field::Value(0));
    assert_eq!(groups[1].vol_alloc_sz, Field::Value(3 * GIB));
    assert!(text(&groups[0].vol_desc).contains("simulated"));
}

#[test]
fn status_storage_names_and_qos() {
    let fx = Fx::iscsi();
    assert_eq!(fx.p.get_status(&fx.host, &fx.ss, None).expect("status"), "ONLINE");
    assert_eq!(
        fx.p.get_storage_names(&fx.host, &fx.ss).expect("names"),
        Vec::<String>::new()
    );
    let levels = fx.p.get_qos_list(&fx.host, &fx.ss).expect("getQoSList");
    let pr: Vec<i64> = levels
        .iter()
        .filter_map(|q| q.priority.value().copied())
        .collect();
    assert_eq!(pr, [0, 1, 2]);
    let values: Vec<&str> = levels.iter().map(|q| text(&q.value)).collect();
    assert_eq!(values, ["high", "normal", "low"]);

    let lun = fx.lun("q1", GIB, true);
    assert_eq!(lun.qos.value().map(String::as_str), Some("normal"));
    fx.p.set_qos(&fx.host, &fx.ss, &lun, "high").expect("setQoS");
    assert_eq!(fx.info(&lun).qos.value().map(String::as_str), Some("high"));
    let before = fx.state_bytes();
    expect_ex(
        fx.p.set_qos(&fx.host, &fx.ss, &lun, "platinum"),
        ExceptionKind::InvalidValueEx,
        &["qos", "platinum"],
    );
    assert_eq!(fx.state_bytes(), before);
    // A QoS asked for at creation is used; an unknown one is refused.
    let r =
        fx.p.create(&fx.host, &fx.ss, &lun_req("q2", GIB), true, Some("low"))
            .expect("create");
    assert_eq!(r.qos.value().map(String::as_str), Some("low"));
    expect_ex(
        fx.p.create(&fx.host, &fx.ss, &lun_req("q3", GIB), true, Some("gold")),
        ExceptionKind::InvalidValueEx,
        &["qos", "gold"],
    );
    let status =
        fx.p.get_status(&fx.host, &fx.ss, Some(&lun))
            .expect("status of lun");
    assert_eq!(status, "ONLINE");
    assert_eq!(fx.info(&lun).state, Field::Value(SeState::Online));
}

#[test]
fn iscsi_only_methods_and_refresh() {
    let fx = Fx::iscsi();
    let out = fx.p.discover(&fx.host, &fx.ss).expect("discover");
    let v = check_update(RecordKind::SsRecord, &obj(fx.ss.to_value()), &obj(out.to_value()));
    assert!(v.is_empty(), "{v:?}");
    let ids = out.storage_id.value().expect("storage_id");
    assert_eq!(ids.len(), 1);
    assert!(
        ids[0].starts_with("iqn.") && ids[0].contains(".invalid."),
        "{}",
        ids[0]
    );
    fx.p.start(&fx.host, &fx.ss).expect("start");
    fx.p.stop(&fx.host, &fx.ss).expect("stop");
    fx.p.refresh(&fx.host, &fx.ss).expect("refresh");
    assert!(fx
        .host
        .logs()
        .iter()
        .any(|(_, m)| m.contains("nothing to rescan")));

    let san = Fx::san();
    expect_ex(
        san.p.discover(&san.host, &san.ss),
        ExceptionKind::NoSuchOperationEx,
        &["iSCSI"],
    );
    expect_ex(
        san.p.start(&san.host, &san.ss),
        ExceptionKind::NoSuchOperationEx,
        &["iSCSI"],
    );
    expect_ex(
        san.p.stop(&san.host, &san.ss),
        ExceptionKind::NoSuchOperationEx,
        &["iSCSI"],
    );
    san.p.refresh(&san.host, &san.ss).expect("refresh on SAN");
}
