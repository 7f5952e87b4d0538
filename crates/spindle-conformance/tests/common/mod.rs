//! Helpers shared by the kit's integration tests.
#![allow(dead_code)]

use serde_json::{json, Map, Value};
use spindle_api::{Method, StorageArrayPlugin};
use spindle_conformance::{Options, Report};
use spindle_manager::{CallOptions, Manager, ManagerConfig, Mode, PluginEntry};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A strict manager with fast async polling over `builtins` and `roots`.
pub async fn manager(
    builtins: Vec<Arc<dyn StorageArrayPlugin>>,
    roots: Vec<PathBuf>,
    scratch: &Path,
) -> Manager {
    let config = ManagerConfig {
        roots,
        builtins,
        mode: Mode::Strict,
        call_deadline: Duration::from_secs(20),
        discovery_deadline: Duration::from_secs(30),
        async_poll_interval: Duration::from_millis(20),
        async_deadline: Duration::from_secs(60),
        temp_root: Some(scratch.join("manager-tmp")),
        ..ManagerConfig::default()
    };
    match Manager::new(config).await {
        Ok(m) => m,
        Err(e) => panic!("manager: {e}"),
    }
}

/// The plug-in `class`, or a panic listing what was skipped.
pub fn plugin<'m>(m: &'m Manager, class: &str) -> &'m PluginEntry {
    match m.resolve(class) {
        Ok(p) => p,
        Err(e) => panic!("{e}; skipped: {:#?}", m.skipped()),
    }
}

/// An ss_record for the built-in simulated array in `dir`.
pub fn sim_ss(dir: &Path, storage_type: &str) -> Value {
    json!({
        "name": "conformance-sim",
        "uuid": format!("ss-conf-{}", dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")),
        "storage_type": storage_type,
        "access_host": "192.0.2.10",
        "admin_host": "192.0.2.10",
        "admin_user": "admin",
        "admin_passwd": "not-a-real-secret",
        "extra_info": format!("state_dir={};split_ms_per_gib=50", dir.display()),
    })
}

/// Options for `ss` with a fresh prefix, checked.
pub fn options(ss: Value) -> Options {
    let o = Options::new(ss);
    if let Err(e) = o.check() {
        panic!("options: {e}");
    }
    o
}

/// Names (of elements, snapshots, groups) the array still holds that start with `prefix`.
pub async fn remaining(m: &Manager, p: &PluginEntry, ss: &Value, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let call = |method: Method, extra: Vec<(&str, Value)>| {
        let mut args = Map::new();
        args.insert("ss_record".into(), ss.clone());
        for (k, v) in extra {
            args.insert(k.into(), v);
        }
        m.call(p, method, args, CallOptions::default())
    };
    let lists = [
        call(
            Method::List,
            vec![("se_type", json!(["LUNType", "GhostLUNType", "SnapCloneType"]))],
        )
        .await,
        call(Method::GetCurrentSnaps, vec![]).await,
    ];
    for l in lists.into_iter().flatten() {
        for r in l.value.as_array().cloned().unwrap_or_default() {
            if let Some(n) = r.get("name").and_then(Value::as_str) {
                if n.starts_with(prefix) {
                    out.push(n.to_string());
                }
            }
        }
    }
    if let Ok(g) = call(Method::GetAccessGroups, vec![]).await {
        for r in g.value.as_array().cloned().unwrap_or_default() {
            if let Some(n) = r.get("grp_name").and_then(Value::as_str) {
                if n.starts_with(prefix) {
                    out.push(n.to_string());
                }
            }
        }
    }
    out
}

/// Panics with the whole report unless `cond`.
pub fn check_report(report: &Report, cond: bool, what: &str) {
    if !cond {
        panic!("{what}\n{}", report.to_text());
    }
}

/// The failing ids, sorted.
pub fn failing(report: &Report) -> Vec<String> {
    let mut v: Vec<String> = report.failed_ids().into_iter().map(String::from).collect();
    v.sort();
    v
}

/// The simulated array every wrapper in these tests delegates to.
pub const SIM: spindle_plugin_sim::SimArray = spindle_plugin_sim::SimArray;

/// Inside an `impl StorageArrayPlugin`, defines each named method as a plain call to the
/// simulated array, so a test wrapper writes out only the methods it changes.
/// (Generated from the trait's signatures in spindle-api's plugin.rs.)
#[macro_export]
macro_rules! forward_to_sim {
    ($($method:ident),* $(,)?) => { $( forward_to_sim!(@one $method); )* };
    (@one implemented_optional) => {
        fn implemented_optional(&self) -> &'static [::spindle_api::Method] {
            $crate::common::SIM.implemented_optional()
        }
    };
    (@one validate) => {
        fn validate(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.validate(host, ss)
        }
    };
    (@one get_capabilities) => {
        fn get_capabilities(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<::spindle_api::Abilities> {
            $crate::common::SIM.get_capabilities(host, ss)
        }
    };
    (@one get_info) => {
        fn get_info(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<::spindle_api::Info> {
            $crate::common::SIM.get_info(host, ss, se)
        }
    };
    (@one get_storage_names) => {
        fn get_storage_names(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<Vec<String>> {
            $crate::common::SIM.get_storage_names(host, ss)
        }
    };
    (@one get_access_groups) => {
        fn get_access_groups(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<Vec<::spindle_api::AccessGrp>> {
            $crate::common::SIM.get_access_groups(host, ss, se)
        }
    };
    (@one create_access_groups) => {
        fn create_access_groups(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, access_grps: &[::spindle_api::AccessGrp]) -> ::spindle_api::PluginResult<Vec<::spindle_api::AccessGrp>> {
            $crate::common::SIM.create_access_groups(host, ss, access_grps)
        }
    };
    (@one remove_access_groups) => {
        fn remove_access_groups(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, access_grps: &[::spindle_api::AccessGrp]) -> ::spindle_api::PluginResult<Vec<::spindle_api::AccessGrp>> {
            $crate::common::SIM.remove_access_groups(host, ss, access_grps)
        }
    };
    (@one rename_access_group) => {
        fn rename_access_group(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, access_grp_name: &str, new_access_grp_name: &str) -> ::spindle_api::PluginResult<Vec<::spindle_api::AccessGrp>> {
            $crate::common::SIM.rename_access_group(host, ss, access_grp_name, new_access_grp_name)
        }
    };
    (@one add_to_access_group) => {
        fn add_to_access_group(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, access_grp_name: &str, grp_entries: &[String]) -> ::spindle_api::PluginResult<::spindle_api::AccessGrp> {
            $crate::common::SIM.add_to_access_group(host, ss, access_grp_name, grp_entries)
        }
    };
    (@one remove_from_access_group) => {
        fn remove_from_access_group(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, access_grp_name: &str, grp_entries: &[String]) -> ::spindle_api::PluginResult<::spindle_api::AccessGrp> {
            $crate::common::SIM.remove_from_access_group(host, ss, access_grp_name, grp_entries)
        }
    };
    (@one discover) => {
        fn discover(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<::spindle_api::SsRecord> {
            $crate::common::SIM.discover(host, ss)
        }
    };
    (@one start) => {
        fn start(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.start(host, ss)
        }
    };
    (@one stop) => {
        fn stop(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.stop(host, ss)
        }
    };
    (@one refresh) => {
        fn refresh(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.refresh(host, ss)
        }
    };
    (@one list) => {
        fn list(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se_type: &[::spindle_api::SeType]) -> ::spindle_api::PluginResult<Vec<::spindle_api::SeRecord>> {
            $crate::common::SIM.list(host, ss, se_type)
        }
    };
    (@one update_se_records) => {
        fn update_se_records(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se_records: &[::spindle_api::SeRecord], append_allowed: bool) -> ::spindle_api::PluginResult<Vec<::spindle_api::SeRecord>> {
            $crate::common::SIM.update_se_records(host, ss, se_records, append_allowed)
        }
    };
    (@one get_status) => {
        fn get_status(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<String> {
            $crate::common::SIM.get_status(host, ss, se)
        }
    };
    (@one online) => {
        fn online(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.online(host, ss, se)
        }
    };
    (@one offline) => {
        fn offline(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.offline(host, ss, se)
        }
    };
    (@one create) => {
        fn create(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, thin_provision: bool, qos: Option<&str>) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.create(host, ss, se, thin_provision, qos)
        }
    };
    (@one start_present) => {
        fn start_present(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, access_grp_names: &[String]) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.start_present(host, ss, se, access_grp_names)
        }
    };
    (@one stop_present) => {
        fn stop_present(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, access_grp_names: &[String]) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.stop_present(host, ss, se, access_grp_names)
        }
    };
    (@one resize) => {
        fn resize(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, new_size: i64) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.resize(host, ss, se, new_size)
        }
    };
    (@one remove) => {
        fn remove(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.remove(host, ss, se)
        }
    };
    (@one get_clone_limits) => {
        fn get_clone_limits(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<i64> {
            $crate::common::SIM.get_clone_limits(host, ss, se)
        }
    };
    (@one is_cloneable) => {
        fn is_cloneable(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord) -> ::spindle_api::PluginResult<bool> {
            $crate::common::SIM.is_cloneable(host, ss, se)
        }
    };
    (@one clone_element) => {
        fn clone_element(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, dest: Option<&::spindle_api::SeRecord>, qos: Option<&str>) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.clone_element(host, ss, se, dest, qos)
        }
    };
    (@one is_splittable) => {
        fn is_splittable(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord) -> ::spindle_api::PluginResult<bool> {
            $crate::common::SIM.is_splittable(host, ss, se)
        }
    };
    (@one split_clone) => {
        fn split_clone(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord) -> ::spindle_api::PluginResult<Option<::spindle_api::SeRecord>> {
            $crate::common::SIM.split_clone(host, ss, se)
        }
    };
    (@one clone_from_snap) => {
        fn clone_from_snap(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, snap: &::spindle_api::SeRecord, dest: Option<&::spindle_api::SeRecord>, qos: Option<&str>) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.clone_from_snap(host, ss, se, snap, dest, qos)
        }
    };
    (@one get_current_clones) => {
        fn get_current_clones(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<Vec<::spindle_api::SeRecord>> {
            $crate::common::SIM.get_current_clones(host, ss, se)
        }
    };
    (@one get_snap_limits) => {
        fn get_snap_limits(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<i64> {
            $crate::common::SIM.get_snap_limits(host, ss, se)
        }
    };
    (@one is_snapable) => {
        fn is_snapable(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<bool> {
            $crate::common::SIM.is_snapable(host, ss, se)
        }
    };
    (@one create_snap) => {
        fn create_snap(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, snap: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.create_snap(host, ss, se, snap)
        }
    };
    (@one create_multi_snap) => {
        fn create_multi_snap(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se_records: &[::spindle_api::SeRecord], snap: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<::spindle_api::SeRecord> {
            $crate::common::SIM.create_multi_snap(host, ss, se_records, snap)
        }
    };
    (@one is_restorable) => {
        fn is_restorable(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, snap: &::spindle_api::SeRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<bool> {
            $crate::common::SIM.is_restorable(host, ss, snap, se)
        }
    };
    (@one snap_restore) => {
        fn snap_restore(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, snap: &::spindle_api::SeRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.snap_restore(host, ss, snap, se)
        }
    };
    (@one snap_remove) => {
        fn snap_remove(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, snap: &::spindle_api::SeRecord) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.snap_remove(host, ss, snap)
        }
    };
    (@one get_current_snaps) => {
        fn get_current_snaps(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: Option<&::spindle_api::SeRecord>) -> ::spindle_api::PluginResult<Vec<::spindle_api::SeRecord>> {
            $crate::common::SIM.get_current_snaps(host, ss, se)
        }
    };
    (@one get_qos_list) => {
        fn get_qos_list(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord) -> ::spindle_api::PluginResult<Vec<::spindle_api::QosVals>> {
            $crate::common::SIM.get_qos_list(host, ss)
        }
    };
    (@one set_qos) => {
        fn set_qos(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, se: &::spindle_api::SeRecord, qos: &str) -> ::spindle_api::PluginResult<()> {
            $crate::common::SIM.set_qos(host, ss, se, qos)
        }
    };
    (@one get_async_progress) => {
        fn get_async_progress(&self, host: &dyn ::spindle_api::Host, ss: &::spindle_api::SsRecord, some_record: &::serde_json::Value) -> ::spindle_api::PluginResult<::serde_json::Value> {
            $crate::common::SIM.get_async_progress(host, ss, some_record)
        }
    };
}
