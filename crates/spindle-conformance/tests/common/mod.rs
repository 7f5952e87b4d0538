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
