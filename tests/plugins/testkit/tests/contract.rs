//! Every contract rule the Violator breaks is caught (strict mode) with the right rule and
//! field; lenient mode repairs what it safely can and reports the rest without failing.

mod common;

use serde_json::{json, Value};
use spindle_api::{ExceptionKind, Method};
use spindle_manager::{CallError, ContractFailure, Rule};
use spindle_testkit::fixture::{args, new_se_record, se_record, ss_record, Harness};
use spindle_testkit::plugins::{violate, VERSION, VIOLATOR};

/// Arguments for `method` on a storage server whose extra_info selects `which`.
fn call_args(which: &str, method: Method) -> serde_json::Map<String, Value> {
    let uuid = format!("ss-{which}");
    let ss = ss_record(&uuid, &format!("violate={which}"));
    match method {
        Method::Create => args([
            ("ss_record", ss),
            ("se_record", new_se_record(&uuid, "vol", 1 << 30)),
        ]),
        Method::Resize => args([
            ("ss_record", ss),
            ("se_record", se_record(&uuid, "a")),
            ("new_size", json!(2_i64 << 30)),
        ]),
        Method::Clone => args([("ss_record", ss), ("se_record", se_record(&uuid, "a"))]),
        Method::GetInfo if which == violate::BAD_RECORD => {
            args([("ss_record", ss), ("se_record", se_record(&uuid, "a"))])
        }
        _ => args([("ss_record", ss)]),
    }
}

async fn breach(h: &Harness, which: &str, method: Method) -> ContractFailure {
    let c = common::contract(h.call(VIOLATOR, method, call_args(which, method)).await);
    assert_eq!(c.plugin.to_string(), format!("{VIOLATOR}@{VERSION}"));
    assert_eq!(c.method, method.name());
    assert_eq!(c.violations.len(), 1, "exactly one rule is broken: {c}");
    c
}

/// Asserts the one violation's rule, field and message.
async fn expect(which: &str, method: Method, rule: Rule, field: Option<&str>, message: &str) {
    let h = common::strict().await;
    let c = breach(&h, which, method).await;
    let v = &c.violations[0];
    assert_eq!(v.rule, rule, "{c}");
    assert_eq!(v.field.as_deref(), field, "{c}");
    assert!(
        v.message.contains(message),
        "expected {message:?} in {:?}",
        v.message
    );
    assert!(
        c.to_string().contains(rule.statement()),
        "the rule is stated: {c}"
    );
}

#[tokio::test]
async fn create_changing_the_name_breaks_the_update_rules() {
    expect(
        violate::UPDATE_RULES,
        Method::Create,
        Rule::UpdateRules,
        Some("se_record.name"),
        "se_record.name may be set by a plug-in only when empty, but was changed from \"vol\" to \"renamed-by-plugin\"",
    )
    .await;
}

#[tokio::test]
async fn get_info_changing_admin_host_breaks_the_update_rules() {
    expect(
        violate::UPDATE_RULES_SS,
        Method::GetInfo,
        Rule::UpdateRules,
        Some("ss_record.admin_host"),
        "ss_record.admin_host may not be changed by a plug-in, but was changed from \"192.0.2.10\" to \"203.0.113.99\"",
    )
    .await;
}

#[tokio::test]
async fn create_without_page83_id_is_caught() {
    expect(
        violate::NO_PAGE83,
        Method::Create,
        Rule::Page83Required,
        Some("page83_id"),
        "create returned an se_record without page83_id",
    )
    .await;
}

#[tokio::test]
async fn list_element_without_page83_id_is_caught_by_index() {
    expect(
        violate::LIST_NO_PAGE83,
        Method::List,
        Rule::Page83Required,
        Some("[1].page83_id"),
        "list returned an se_record without page83_id",
    )
    .await;
}

#[tokio::test]
async fn capabilities_with_an_illegal_value_are_caught() {
    expect(
        violate::CAPS_ILLEGAL,
        Method::GetCapabilities,
        Rule::Capabilities,
        Some("snapshot"),
        "ability key 'snapshot' has the value \"YES\", but it must be one of ONLINE, OFFLINE, UNSUPPORTED",
    )
    .await;
}

#[tokio::test]
async fn capabilities_missing_a_key_are_caught() {
    expect(
        violate::CAPS_MISSING,
        Method::GetCapabilities,
        Rule::Capabilities,
        Some("max_access_entries"),
        "ability key 'max_access_entries' is missing",
    )
    .await;
}

#[tokio::test]
async fn a_validate_only_exception_from_get_info_is_caught() {
    expect(
        violate::VALIDATE_ONLY,
        Method::GetInfo,
        Rule::ValidateOnlyException,
        None,
        "getInfo raised InvalidStorageArrayEx, which only validate may raise (the plug-in raised: InvalidStorageArrayEx: getInfo decided the array is invalid)",
    )
    .await;
}

#[tokio::test]
async fn a_snapshot_in_list_is_caught() {
    expect(
        violate::SNAP_IN_LIST,
        Method::List,
        Rule::SnapshotInList,
        Some("[1].se_type"),
        "list returned a snapshot (SnapType)",
    )
    .await;
}

#[tokio::test]
async fn a_status_that_is_a_number_has_the_wrong_shape() {
    expect(
        violate::WRONG_SHAPE,
        Method::GetStatus,
        Rule::ReturnShape,
        None,
        "must return a status string, not 42",
    )
    .await;
}

#[tokio::test]
async fn a_returned_record_with_a_bad_value_has_the_wrong_shape() {
    expect(
        violate::BAD_RECORD,
        Method::GetInfo,
        Rule::ReturnShape,
        Some("se_record.size"),
        "se_record key 'size' has the value \"big\", which is not an integer",
    )
    .await;
}

#[tokio::test]
async fn async_progress_from_an_operation_declared_sync_is_caught() {
    expect(
        violate::ASYNC_WHEN_SYNC,
        Method::Resize,
        Rule::AsyncWhenSync,
        Some("async_progress"),
        "plugin_ability declares resize_is_sync = YES, but resize returned async_progress",
    )
    .await;
}

#[tokio::test]
async fn an_exception_outside_the_guides_is_caught() {
    expect(
        violate::UNKNOWN_EXCEPTION,
        Method::GetStatus,
        Rule::UnknownException,
        None,
        "raised KeyError, which is not one of the guides' exceptions: KeyError: 'size'",
    )
    .await;
}

#[tokio::test]
async fn the_base_exception_raised_directly_is_caught() {
    expect(
        violate::BASE_EXCEPTION,
        Method::GetStatus,
        Rule::BaseException,
        None,
        "raised the base class IPluginException: something went wrong",
    )
    .await;
}

#[tokio::test]
async fn missing_key_ex_without_a_key_is_caught() {
    expect(
        violate::KEYLESS,
        Method::GetStatus,
        Rule::ExceptionWithoutKey,
        None,
        "raised MissingKeyEx without naming the key",
    )
    .await;
}

#[tokio::test]
async fn async_progress_out_of_range_is_caught() {
    expect(
        violate::PROGRESS_RANGE,
        Method::Clone,
        Rule::AsyncProgressRange,
        Some("async_progress"),
        "async_progress is 150, not -1, 0..100 or None",
    )
    .await;
}

#[tokio::test]
async fn every_violation_is_a_contract_failure_reported_as_operation_failed() {
    let h = common::strict().await;
    let c = breach(&h, violate::WRONG_SHAPE, Method::GetStatus).await;
    let e = CallError::Contract(c).exception();
    assert_eq!(e.kind, ExceptionKind::OperationFailedEx);
    assert!(
        e.message.starts_with(&format!(
            "plug-in {VIOLATOR}@{VERSION} broke the contract in getStatus"
        )),
        "{e}"
    );
}

#[tokio::test]
async fn lenient_mode_restores_fields_the_plugin_may_not_change() {
    let h = common::lenient().await;
    let out = h
        .call(
            VIOLATOR,
            Method::Create,
            call_args(violate::UPDATE_RULES, Method::Create),
        )
        .await
        .expect("lenient mode does not fail the call");
    assert_eq!(out.value["name"], "vol", "the name is put back");
    assert!(out.value["page83_id"].as_str().is_some_and(|p| !p.is_empty()));
    assert_eq!(out.violations.len(), 1, "{:?}", out.violations);
    assert_eq!(out.violations[0].rule, Rule::UpdateRules);
    assert_eq!(out.violations[0].field.as_deref(), Some("se_record.name"));

    let out = h
        .call(
            VIOLATOR,
            Method::GetInfo,
            call_args(violate::UPDATE_RULES_SS, Method::GetInfo),
        )
        .await
        .expect("lenient mode does not fail the call");
    assert_eq!(out.value["admin_host"], "192.0.2.10", "admin_host is put back");
    assert_eq!(out.value["status"], "ONLINE", "allowed changes stay");
    assert_eq!(out.violations[0].field.as_deref(), Some("ss_record.admin_host"));
}

#[tokio::test]
async fn lenient_mode_drops_snapshots_from_list() {
    let h = common::lenient().await;
    let out = h
        .call(
            VIOLATOR,
            Method::List,
            call_args(violate::SNAP_IN_LIST, Method::List),
        )
        .await
        .expect("lenient mode does not fail the call");
    let items = out.value.as_array().expect("a list");
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["se_type"] == "LUNType"), "{items:?}");
    assert_eq!(out.violations.len(), 1);
    assert_eq!(out.violations[0].rule, Rule::SnapshotInList);
}

#[tokio::test]
async fn lenient_mode_passes_a_keyless_exception_on_as_raised() {
    let h = common::lenient().await;
    match h
        .call(
            VIOLATOR,
            Method::GetStatus,
            call_args(violate::KEYLESS, Method::GetStatus),
        )
        .await
    {
        Err(CallError::Raised(e)) => {
            assert_eq!(e.kind, ExceptionKind::MissingKeyEx);
            assert_eq!(e.key, None);
        }
        other => panic!("expected the raised MissingKeyEx, got {other:?}"),
    }
}
