//! Normal calls through the manager to an out-of-process plug-in: results, exceptions, the
//! cache, temporary files, validation before use, and input refused before the plug-in.

mod common;

use serde_json::{json, Value};
use spindle_api::{ExceptionKind, Method};
use spindle_manager::CallError;
use spindle_testkit::fixture::{args, new_se_record, se_record, ss_args, ss_record};
use spindle_testkit::plugins::{GOOD, STATUS_CALLS, VALIDATE_CALLS};

#[tokio::test]
async fn normal_calls_return_what_the_plugin_returned() {
    let h = common::strict().await;
    let ss = ss_record("ss-normal", "elements=5");

    let info = h
        .call(GOOD, Method::GetInfo, ss_args(&ss))
        .await
        .expect("getInfo");
    assert_eq!(info.value["status"], "ONLINE");
    assert_eq!(info.value["storage_desc"], "spindle test array (stores nothing)");
    assert_eq!(info.value["uuid"], "ss-normal", "uuid must come back unchanged");
    assert_eq!(info.value["extra_info"], "elements=5");
    assert!(info.violations.is_empty() && info.warnings.is_empty(), "{info:?}");
    assert_eq!(info.async_polls, 0);

    let caps = h
        .call(GOOD, Method::GetCapabilities, ss_args(&ss))
        .await
        .expect("getCapabilities");
    assert_eq!(caps.value, h.plugin(GOOD).metadata.plugin_ability.to_value());

    let list = h.call(GOOD, Method::List, ss_args(&ss)).await.expect("list");
    let items = list.value.as_array().expect("list returns a list");
    assert_eq!(items.len(), 5, "extra_info asked for 5 elements");
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["name"], format!("lun-{i}"));
        assert!(
            item["page83_id"]
                .as_str()
                .is_some_and(|p| p.starts_with("36001405")),
            "{item}"
        );
        assert_eq!(item["ss_uuid"], "ss-normal");
    }

    let created = h
        .call(
            GOOD,
            Method::Create,
            args([
                ("ss_record", ss.clone()),
                ("se_record", new_se_record("ss-normal", "vol1", 4 << 30)),
                ("qos", json!("gold")),
            ]),
        )
        .await
        .expect("create");
    assert_eq!(created.value["name"], "vol1");
    assert_eq!(created.value["size"], 4_i64 << 30);
    assert_eq!(created.value["qos"], "gold");
    assert!(created.value["page83_id"].as_str().is_some_and(|p| !p.is_empty()));

    let resized = h
        .call(
            GOOD,
            Method::Resize,
            args([
                ("ss_record", ss.clone()),
                ("se_record", created.value.clone()),
                ("new_size", json!(8_i64 << 30)),
            ]),
        )
        .await
        .expect("resize");
    assert_eq!(resized.value["size"], 8_i64 << 30);
    assert_eq!(resized.value["page83_id"], created.value["page83_id"]);

    let presented = h
        .call(
            GOOD,
            Method::StartPresent,
            args([
                ("ss_record", ss.clone()),
                ("se_record", created.value.clone()),
                ("access_grp_names", json!(["hosts"])),
            ]),
        )
        .await
        .expect("startPresent");
    assert_eq!(presented.value["access_grp_names"], json!(["hosts"]));

    let nothing = h
        .call(
            GOOD,
            Method::Online,
            args([
                ("ss_record", ss.clone()),
                ("se_record", se_record("ss-normal", "a")),
            ]),
        )
        .await
        .expect("online");
    assert_eq!(nothing.value, Value::Null);

    let cloneable = h
        .call(
            GOOD,
            Method::IsCloneable,
            args([
                ("ss_record", ss.clone()),
                ("se_record", se_record("ss-normal", "a")),
            ]),
        )
        .await
        .expect("isCloneable");
    assert_eq!(cloneable.value, json!(true));

    let qos = h
        .call(GOOD, Method::GetQosList, ss_args(&ss))
        .await
        .expect("getQoSList");
    assert_eq!(qos.value[0]["value"], "gold");
    assert_eq!(qos.value[1]["priority"], 1);
}

#[tokio::test]
async fn exceptions_travel_with_their_kind_message_and_key() {
    let h = common::strict().await;
    let ss = ss_record("ss-raise", "");
    let r = h
        .call(
            GOOD,
            Method::Resize,
            args([
                ("ss_record", ss),
                ("se_record", se_record("ss-raise", "a")),
                ("new_size", json!(0)),
            ]),
        )
        .await;
    match r {
        Err(CallError::Raised(e)) => {
            assert_eq!(e.kind, ExceptionKind::ValueFormatEx);
            assert_eq!(e.key.as_deref(), Some("new_size"));
            assert_eq!(e.message, "new_size must be a positive number of bytes, not 0");
        }
        other => panic!("expected ValueFormatEx(new_size), got {other:?}"),
    }
}

#[tokio::test]
async fn the_cache_persists_across_calls_to_one_server_and_is_separate_per_server() {
    let h = common::strict().await;
    let a = ss_record("ss-cache-a", "");
    let b = ss_record("ss-cache-b", "");
    let status = |o: Result<spindle_manager::CallOutcome, CallError>| o.expect("getStatus").value;

    // Every call is a new process: only the host's cache can carry the count.
    assert_eq!(
        status(h.call(GOOD, Method::GetStatus, ss_args(&a)).await),
        "ONLINE calls=1 validated=1"
    );
    assert_eq!(
        status(h.call(GOOD, Method::GetStatus, ss_args(&a)).await),
        "ONLINE calls=2 validated=1"
    );
    assert_eq!(
        status(h.call(GOOD, Method::GetStatus, ss_args(&a)).await),
        "ONLINE calls=3 validated=1"
    );
    assert_eq!(
        status(h.call(GOOD, Method::GetStatus, ss_args(&b)).await),
        "ONLINE calls=1 validated=1",
        "another storage server has its own cache"
    );
    assert_eq!(
        h.manager.cache().get("ss-cache-a", STATUS_CALLS).as_deref(),
        Some("3")
    );
    assert_eq!(
        h.manager.cache().get("ss-cache-b", STATUS_CALLS).as_deref(),
        Some("1")
    );

    // refresh sets the key to None: that key alone is cleared.
    h.call(GOOD, Method::Refresh, ss_args(&a)).await.expect("refresh");
    assert_eq!(h.manager.cache().get("ss-cache-a", STATUS_CALLS), None);
    assert_eq!(
        h.manager.cache().get("ss-cache-a", VALIDATE_CALLS).as_deref(),
        Some("1")
    );
    assert_eq!(
        status(h.call(GOOD, Method::GetStatus, ss_args(&a)).await),
        "ONLINE calls=1 validated=1"
    );

    // stop clears the whole storage server, and only that one.
    h.call(GOOD, Method::Stop, ss_args(&a)).await.expect("stop");
    assert_eq!(h.manager.cache().get("ss-cache-a", STATUS_CALLS), None);
    assert_eq!(h.manager.cache().get("ss-cache-a", VALIDATE_CALLS), None);
    assert_eq!(
        h.manager.cache().get("ss-cache-b", STATUS_CALLS).as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn temporary_files_are_removed_when_the_call_ends() {
    let h = common::strict().await;
    let ss = ss_record("ss-temp", "");
    let out = h
        .call(GOOD, Method::GetStorageNames, ss_args(&ss))
        .await
        .expect("getStorageNames");
    let path = std::path::PathBuf::from(
        out.value[0]
            .as_str()
            .expect("the plug-in returns the temporary file's path"),
    );
    assert!(
        path.starts_with(h.root.temp_root()),
        "{} is not under the manager's temporary directory {}",
        path.display(),
        h.root.temp_root().display()
    );
    assert!(!path.exists(), "{} outlived the call", path.display());
    let call_dir = path.parent().expect("the file is in a per-call directory");
    assert!(
        !call_dir.exists(),
        "the per-call directory {} outlived the call",
        call_dir.display()
    );
    // A second call gets a fresh file.
    let again = h
        .call(GOOD, Method::GetStorageNames, ss_args(&ss))
        .await
        .expect("getStorageNames");
    assert_ne!(again.value[0], out.value[0]);
}

#[tokio::test]
async fn a_plugin_is_validated_once_before_its_first_other_call() {
    let h = common::strict().await;
    let ss = ss_record("ss-validate", "");
    let validations = || h.manager.cache().get("ss-validate", VALIDATE_CALLS);
    assert_eq!(validations(), None);

    // getStatus reports the validate count it saw: 1, so validate ran first.
    let first = h
        .call(GOOD, Method::GetStatus, ss_args(&ss))
        .await
        .expect("getStatus");
    assert_eq!(first.value, "ONLINE calls=1 validated=1");
    h.call(GOOD, Method::GetInfo, ss_args(&ss))
        .await
        .expect("getInfo");
    h.call(GOOD, Method::List, ss_args(&ss)).await.expect("list");
    assert_eq!(
        validations().as_deref(),
        Some("1"),
        "one validation serves later calls"
    );

    // A field a plug-in may change (status) does not call for validation again ...
    let mut changed_status = ss.clone();
    changed_status["status"] = json!("ONLINE");
    h.call(GOOD, Method::GetStatus, ss_args(&changed_status))
        .await
        .expect("getStatus");
    assert_eq!(validations().as_deref(), Some("1"));

    // ... but a different admin_host is a different array as far as validate knows.
    let mut moved = ss.clone();
    moved["admin_host"] = json!("192.0.2.77");
    let after = h
        .call(GOOD, Method::GetStatus, ss_args(&moved))
        .await
        .expect("getStatus");
    assert_eq!(after.value, "ONLINE calls=3 validated=2");

    // An explicit validate runs whenever asked.
    h.call(GOOD, Method::Validate, ss_args(&ss))
        .await
        .expect("validate");
    assert_eq!(validations().as_deref(), Some("3"));
}

#[tokio::test]
async fn a_refusing_validate_stops_the_call_before_the_method_runs() {
    let h = common::strict().await;
    let ss = ss_record("ss-reject", "reject=1");
    match h.call(GOOD, Method::GetStatus, ss_args(&ss)).await {
        Err(CallError::Raised(e)) => {
            assert_eq!(e.kind, ExceptionKind::InvalidStorageArrayEx);
            assert!(e.message.contains("reject=1"), "{e}");
        }
        other => panic!("expected InvalidStorageArrayEx from validate, got {other:?}"),
    }
    assert_eq!(
        h.manager.cache().get("ss-reject", VALIDATE_CALLS).as_deref(),
        Some("1")
    );
    assert_eq!(
        h.manager.cache().get("ss-reject", STATUS_CALLS),
        None,
        "getStatus must not have run"
    );
    // Not remembered as validated: the next call validates again.
    let _ = h.call(GOOD, Method::GetStatus, ss_args(&ss)).await;
    assert_eq!(
        h.manager.cache().get("ss-reject", VALIDATE_CALLS).as_deref(),
        Some("2")
    );
}

fn rejected(r: Result<spindle_manager::CallOutcome, CallError>) -> spindle_api::PluginException {
    match r {
        Err(CallError::Rejected(e)) => e,
        other => panic!("expected the manager to refuse the input, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_ss_record_is_refused_before_the_plugin() {
    let h = common::strict().await;
    let e = rejected(h.call(GOOD, Method::GetStatus, serde_json::Map::new()).await);
    assert_eq!(e.kind, ExceptionKind::MissingKeyEx);
    assert_eq!(e.key.as_deref(), Some("ss_record"));
    assert_eq!(e.message, "getStatus requires the parameter 'ss_record'");

    let e = rejected(
        h.call(GOOD, Method::GetStatus, args([("ss_record", Value::Null)]))
            .await,
    );
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::MissingKeyEx, Some("ss_record"))
    );

    let e = rejected(
        h.call(GOOD, Method::Online, ss_args(&ss_record("ss-in", "")))
            .await,
    );
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::MissingKeyEx, Some("se_record"))
    );
    assert_eq!(
        h.manager.invocations(),
        0,
        "no plug-in process may have been started"
    );
}

#[tokio::test]
async fn malformed_values_are_refused_naming_the_key() {
    let h = common::strict().await;
    let ss = ss_record("ss-bad-input", "");

    let mut se = se_record("ss-bad-input", "a");
    se["size"] = json!("big");
    let e = rejected(
        h.call(
            GOOD,
            Method::Online,
            args([("ss_record", ss.clone()), ("se_record", se)]),
        )
        .await,
    );
    assert_eq!(e.kind, ExceptionKind::ValueFormatEx);
    assert_eq!(e.key.as_deref(), Some("size"));
    assert!(
        e.message.contains("'size'") && e.message.contains("\"big\""),
        "{e}"
    );

    let e = rejected(
        h.call(
            GOOD,
            Method::Resize,
            args([
                ("ss_record", ss.clone()),
                ("se_record", se_record("ss-bad-input", "a")),
                ("new_size", json!("10G")),
            ]),
        )
        .await,
    );
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::ValueFormatEx, Some("new_size"))
    );

    let e = rejected(
        h.call(
            GOOD,
            Method::GetStatus,
            args([("ss_record", ss.clone()), ("bogus", json!(1))]),
        )
        .await,
    );
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::ValueFormatEx, Some("bogus"))
    );

    let mut bad_ss = ss.clone();
    bad_ss["chap"] = json!("yes");
    let e = rejected(h.call(GOOD, Method::GetStatus, ss_args(&bad_ss)).await);
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::ValueFormatEx, Some("chap"))
    );

    let e = rejected(
        h.call(
            GOOD,
            Method::List,
            args([("ss_record", ss), ("se_type", json!(["DiskType"]))]),
        )
        .await,
    );
    assert_eq!(
        (e.kind, e.key.as_deref()),
        (ExceptionKind::ValueFormatEx, Some("se_type"))
    );

    assert_eq!(
        h.manager.invocations(),
        0,
        "no plug-in process may have been started"
    );
    assert_eq!(h.manager.cache().get("ss-bad-input", VALIDATE_CALLS), None);
}

#[tokio::test]
async fn iscsi_only_methods_are_refused_for_san_arrays() {
    let h = common::strict().await;
    let mut ss = ss_record("ss-san", "");
    ss["storage_type"] = json!("SANStorage");
    let e = rejected(h.call(GOOD, Method::Stop, ss_args(&ss)).await);
    assert_eq!(e.kind, ExceptionKind::NoSuchOperationEx);
    assert!(e.message.contains("iSCSI arrays only"), "{e}");
    assert_eq!(h.manager.invocations(), 0);
}
