//! Records, abilities, metadata and exceptions as plug-ins and managers exchange them.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use spindle_api::*;

/// A value of the right type for a known key.
fn value_for(kind: RecordKind, key: &str) -> BoxedStrategy<Value> {
    let probe = |v: Value| kind.check_shape(&json!({ key: v })).is_ok();
    let candidates: Vec<Value> = vec![
        json!("text"),
        json!(42),
        json!(true),
        json!(["a", "b"]),
        json!([{"grp_name": "g", "grp_entries": ["iqn.2026-11.org.example:h1"]}]),
        json!([{"vol_name": "p", "vol_total_sz": 1, "vol_used_sz": 0, "vol_free_sz": 1}]),
        json!("LUNType"),
        json!("ONLINE"),
        json!("FileType"),
        json!("MOUNTED"),
    ];
    let fitting: Vec<Value> = candidates.into_iter().filter(|v| probe(v.clone())).collect();
    let mut options = vec![Just(Value::Null).boxed()];
    for v in fitting {
        options.push(Just(v).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}

fn record_strategy(kind: RecordKind) -> BoxedStrategy<Value> {
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = kind
        .fields()
        .iter()
        .map(|f| {
            let key = f.key.to_string();
            proptest::option::of(value_for(kind, f.key).prop_map(move |v| (key.clone(), v))).boxed()
        })
        .collect();
    let extras = proptest::collection::btree_map(
        "x_[a-z]{1,6}",
        prop_oneof![
            Just(json!(1)),
            Just(json!("v")),
            Just(json!({"nested": [1, null]}))
        ],
        0..4,
    );
    (fields, extras)
        .prop_map(|(fields, extras)| {
            let mut m = Map::new();
            for (k, v) in fields.into_iter().flatten() {
                m.insert(k, v);
            }
            for (k, v) in extras {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

macro_rules! round_trip {
    ($name:ident, $ty:ty) => {
        proptest! {
            #[test]
            fn $name(input in record_strategy(<$ty>::KIND)) {
                let parsed = <$ty>::from_value(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(parsed.to_value(), input);
            }
        }
    };
}

round_trip!(ss_record_round_trips, SsRecord);
round_trip!(se_record_round_trips, SeRecord);
round_trip!(fs_record_round_trips, FsRecord);
round_trip!(file_record_round_trips, FileRecord);
round_trip!(mount_record_round_trips, MountRecord);
round_trip!(access_grp_round_trips, AccessGrp);
round_trip!(vol_group_round_trips, VolGroup);
round_trip!(qos_vals_round_trips, QosVals);
round_trip!(backing_device_round_trips, BackingDevice);

#[test]
fn absent_null_and_value_stay_apart() {
    let absent = SeRecord::from_value(&json!({"se_type": "LUNType"})).expect("parses");
    let null = SeRecord::from_value(&json!({"se_type": "LUNType", "async_progress": null})).expect("parses");
    let running = SeRecord::from_value(&json!({"se_type": "LUNType", "async_progress": -1})).expect("parses");
    assert_eq!(absent.async_progress, Field::Absent);
    assert_eq!(null.async_progress, Field::Null);
    assert_eq!(running.async_progress, Field::Value(-1));
    assert!(absent.to_value().get("async_progress").is_none());
    assert_eq!(null.to_value()["async_progress"], Value::Null);
}

#[test]
fn a_wrongly_typed_key_is_named() {
    let e = SeRecord::from_value(&json!({"se_type": "LUNType", "size": "10G"})).expect_err("refused");
    assert_eq!(e.key(), Some("size"));
    assert!(
        e.to_string().contains("\"10G\"") && e.to_string().contains("integer"),
        "{e}"
    );
    let e = SeRecord::from_value(&json!({"se_type": "Disk"})).expect_err("refused");
    assert_eq!(e.key(), Some("se_type"));
    assert!(e.to_string().contains("LUNType"), "{e}");
    assert!(SsRecord::from_value(&json!([1])).is_err());
}

#[test]
fn secrets_are_redacted_in_debug_and_redacted_copies() {
    let ss = SsRecord::from_value(&json!({"passwd": "chap-secret", "admin_passwd": "root-pw", "name": "a"}))
        .expect("parses");
    let dbg = format!("{ss:?}");
    assert!(!dbg.contains("chap-secret") && !dbg.contains("root-pw"), "{dbg}");
    assert_eq!(ss.redacted().passwd, Field::Value(REDACTED.to_string()));
    let nested = redact_value(&json!({"ss_record": {"passwd": "x"}, "list": [{"admin_passwd": "y"}]}));
    assert_eq!(
        nested,
        json!({"ss_record": {"passwd": REDACTED}, "list": [{"admin_passwd": REDACTED}]})
    );
}

fn full_abilities() -> Value {
    Abilities::none().to_value()
}

#[test]
fn abilities_need_all_sixteen_legal_keys() {
    let ok = full_abilities();
    assert_eq!(ok.as_object().map(Map::len), Some(16));
    assert!(Abilities::from_value(&ok).is_ok());

    let mut yes_on_op = ok.clone();
    yes_on_op["snapshot"] = json!("YES");
    let e = Abilities::from_value(&yes_on_op).expect_err("YES is not an operation ability");
    assert_eq!(e.key(), Some("snapshot"));

    let mut online_on_flag = ok.clone();
    online_on_flag["snap_is_sync"] = json!("ONLINE");
    assert_eq!(
        Abilities::from_value(&online_on_flag).expect_err("refused").key(),
        Some("snap_is_sync")
    );

    let mut invalid = ok.clone();
    invalid["clone"] = json!("INVALID");
    assert_eq!(
        Abilities::from_value(&invalid).expect_err("refused").key(),
        Some("clone")
    );

    let mut missing = ok.clone();
    missing.as_object_mut().map(|m| m.remove("access_control"));
    assert_eq!(
        Abilities::from_value(&missing).expect_err("refused"),
        AbilityError::Missing("access_control")
    );

    let mut unknown = ok.clone();
    unknown["dedup"] = json!("YES");
    assert_eq!(
        Abilities::from_value(&unknown).expect_err("refused").key(),
        Some("dedup")
    );
    let far = Abilities::from_value(&unknown).expect_err("refused").to_string();
    assert!(!far.contains("did you mean"), "no near miss: {far}");

    let mut typo = ok.clone();
    typo.as_object_mut().map(|m| m.remove("snap_is_sync"));
    typo["snap_is_synch"] = json!("YES");
    let e = Abilities::from_value(&typo).expect_err("refused");
    assert_eq!(e.key(), Some("snap_is_synch"));
    assert_eq!(
        e.to_string(),
        "ability key 'snap_is_synch' is not one of the 16 keys the guides define (did you mean 'snap_is_sync'?)"
    );

    for (n, good) in [(-1, true), (0, true), (64, true), (-2, false)] {
        let mut m = ok.clone();
        m["max_access_entries"] = json!(n);
        assert_eq!(Abilities::from_value(&m).is_ok(), good, "max_access_entries {n}");
    }
    let mut m = ok;
    m["max_access_entries"] = json!(-1);
    assert_eq!(
        Abilities::from_value(&m).expect("ok").max_access_entries,
        MaxEntries::Unlimited
    );
}

#[test]
fn any_async_follows_the_sync_flags_of_supported_operations() {
    let mut a = Abilities::none();
    assert!(!a.any_async());
    a.splitclone_is_sync = Flag::No;
    assert!(!a.any_async(), "an unsupported operation cannot be asynchronous");
    a.splitclone = OpAbility::Online;
    assert!(a.any_async());
}

fn metadata_json() -> Value {
    json!({
        "plugin_name": "Example", "vendor_name": "Example Inc", "plugin_version": "1.0.1-1",
        "plugin_desc": "an example", "storage_types": ["iSCSIStorage"], "plugin_ability": full_abilities(),
    })
}

#[test]
fn plugin_versions_follow_major_minor_patch_release() {
    for good in ["1.0.1-1", "0.0.0-0", "10.20.30-40"] {
        assert!(PluginVersion::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "1.0.1",
        "1.0-1",
        "1.0.1-",
        "v1.0.1-1",
        "1.0.1-1a",
        "1..1-1",
        "1.0.1.1-1",
        "",
        "1.0.1-1-2",
    ] {
        assert!(
            matches!(PluginVersion::parse(bad), Err(MetadataError::Version(_))),
            "{bad}"
        );
    }
    assert!(PluginVersion::parse("1.2.3-4").expect("ok") < PluginVersion::parse("1.10.0-1").expect("ok"));
}

#[test]
fn metadata_is_validated_variable_by_variable() {
    assert!(PluginMetadata::from_value(&metadata_json()).is_ok());
    let cases: Vec<(&str, Value, &str)> = vec![
        ("plugin_version", json!("1.0"), "Major.Minor.Patch-Release"),
        ("storage_types", json!([]), "storage_types is empty"),
        (
            "storage_types",
            json!(["NFS"]),
            "neither SANStorage nor iSCSIStorage",
        ),
        ("storage_types", json!(["SANStorage", "SANStorage"]), "twice"),
        ("plugin_name", json!(""), "plugin_name"),
        ("vendor_name", Value::Null, "vendor_name"),
        ("ss_extra_info_help", json!(3), "ss_extra_info_help"),
    ];
    for (key, value, needle) in cases {
        let mut m = metadata_json();
        m[key] = value;
        let e = PluginMetadata::from_value(&m).expect_err(key).to_string();
        assert!(e.contains(needle), "{key}: {e}");
    }
    let mut m = metadata_json();
    m["plugin_ability"]["resize"] = json!("YES");
    assert!(PluginMetadata::from_value(&m)
        .expect_err("refused")
        .to_string()
        .contains("resize"));
}

#[test]
fn the_exception_set_is_closed_and_keys_travel() {
    assert_eq!(ExceptionKind::ALL.len(), 24, "base + 23");
    for k in ExceptionKind::ALL {
        assert_eq!(ExceptionKind::parse(k.as_str()), Some(*k));
    }
    assert_eq!(ExceptionKind::parse("KeyError"), None);
    let e = PluginException::missing_key("size", "size is required");
    let v = serde_json::to_value(&e).expect("serialises");
    assert_eq!(
        v,
        json!({"exception": "MissingKeyEx", "message": "size is required", "key": "size"})
    );
    assert_eq!(e.to_string(), "MissingKeyEx: size is required (key: size)");
}

#[test]
fn update_rules_are_data_for_every_known_key() {
    let rule = |kind: RecordKind, key: &str| kind.field(key).map(|f| f.rule);
    assert_eq!(rule(RecordKind::SsRecord, "access_grps"), Some(UpdateRule::No));
    assert_eq!(rule(RecordKind::SsRecord, "name"), Some(UpdateRule::OnlyIfEmpty));
    assert_eq!(rule(RecordKind::SsRecord, "status"), Some(UpdateRule::Yes));
    assert_eq!(
        rule(RecordKind::SeRecord, "ss_uuid"),
        Some(UpdateRule::OnlyIfEmpty)
    );
    assert_eq!(rule(RecordKind::SeRecord, "extra_info"), Some(UpdateRule::No));
    assert_eq!(rule(RecordKind::FsRecord, "backing_device"), Some(UpdateRule::No));
    assert_eq!(SsRecord::FIELDS.len(), 24);
    assert_eq!(SeRecord::FIELDS.len(), 19);
}

#[test]
fn dispatch_refuses_unknown_and_missing_parameters_by_name() {
    let mut args = Map::new();
    args.insert("ss_record".into(), json!({}));
    args.insert("sizes".into(), json!(1));
    let e = Args::new(Method::Resize, &args).expect_err("refused");
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::ValueFormatEx, Some("sizes"))
    );
    args.remove("sizes");
    let e = Args::new(Method::Resize, &args).expect_err("refused");
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::MissingKeyEx, Some("se_record"))
    );
}
