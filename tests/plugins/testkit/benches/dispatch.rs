//! In-process dispatch overhead of one `list()` call returning 1,000 se_records, through
//! `Manager::call` (input checks, the per-server lock, dispatch, contract checks), beside each of
//! its parts measured alone so that the manager's own overhead can be told apart:
//!
//! - `manager_call`     — `Manager::call(list)` on a built-in plug-in (everything);
//! - `dispatch`         — `spindle_api::dispatch` alone (argument decoding, the plug-in, encoding);
//! - `plugin_list`      — the plug-in's `list` alone (cloning 1,000 typed records);
//! - `serialise`        — encoding 1,000 typed records as JSON values (what dispatch adds);
//! - `contract_check`   — `contract::check_return` on the 1,000-element result, as for a
//!   built-in plug-in (`contract_check_untyped`: as for an out-of-process one, whose every
//!   element's shape is checked too);
//! - `wire_encode` / `wire_decode` — the result as JSON text, and a response line parsed back
//!   (what an out-of-process call adds: the child encodes, the host decodes).
//!
//! Run:
//!     cargo bench -p spindle-testkit --bench dispatch
//! Shorter:
//!     cargo bench -p spindle-testkit --bench dispatch -- --warm-up-time 1 --measurement-time 3

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use spindle_api::{
    dispatch, Abilities, AccessGrp, Host, Info, LogLevel, Method, PluginException, PluginMetadata,
    PluginResult, PluginVersion, QosVals, SeRecord, SeType, SsRecord, StorageArrayPlugin, StorageType,
};
use spindle_manager::{contract, CallOptions, Manager, ManagerConfig, Mode};
use spindle_protocol::{Id, Message};
use spindle_testkit::fixture::{ss_args, ss_record};
use spindle_testkit::plugins::page83_for;
use std::path::PathBuf;
use std::sync::Arc;

const ELEMENTS: usize = 1_000;
const SS_UUID: &str = "ss-bench";

/// A built-in plug-in that lists 1,000 LUNs and does nothing else.
struct BenchArray {
    records: Vec<SeRecord>,
    class: &'static str,
}

impl BenchArray {
    fn new() -> Self {
        Self::with(ELEMENTS, "spindle.bench.ListArray")
    }

    fn with(elements: usize, class: &'static str) -> Self {
        let records = (0..elements)
            .map(|i| {
                let name = format!("lun-{i}");
                let v = json!({
                    "se_type": "LUNType",
                    "ss_uuid": SS_UUID,
                    "name": name,
                    "uuid": format!("se-{i:08}"),
                    "page83_id": page83_for(SS_UUID, &name),
                    "size": 1_i64 << 30,
                    "status": "ONLINE",
                    "state": "ONLINE",
                    "access_grp_names": ["hosts"],
                    "vol_group_name": "pool0",
                });
                SeRecord::from_value(&v).unwrap_or_else(|e| panic!("bench record: {e}"))
            })
            .collect();
        BenchArray { records, class }
    }
}

fn nope<T>() -> PluginResult<T> {
    Err(PluginException::no_such_operation("not part of the benchmark"))
}

impl StorageArrayPlugin for BenchArray {
    fn class_name(&self) -> &'static str {
        self.class
    }
    fn metadata(&self) -> PluginMetadata {
        PluginMetadata {
            plugin_name: "bench list array".into(),
            vendor_name: "spindle benchmarks".into(),
            plugin_version: PluginVersion::parse("1.0.0-1").unwrap_or_else(|e| panic!("{e}")),
            plugin_desc: "Lists 1,000 elements.".into(),
            ss_extra_info_help: None,
            se_extra_info_help: None,
            storage_types: vec![StorageType::Iscsi],
            plugin_ability: Abilities::none(),
        }
    }
    fn validate(&self, _: &dyn Host, _: &SsRecord) -> PluginResult<()> {
        Ok(())
    }
    fn get_capabilities(&self, _: &dyn Host, _: &SsRecord) -> PluginResult<Abilities> {
        Ok(Abilities::none())
    }
    fn get_info(&self, _: &dyn Host, ss: &SsRecord, _: Option<&SeRecord>) -> PluginResult<Info> {
        Ok(Info::Server(ss.clone()))
    }
    fn get_storage_names(&self, _: &dyn Host, _: &SsRecord) -> PluginResult<Vec<String>> {
        Ok(Vec::new())
    }
    fn get_access_groups(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: Option<&SeRecord>,
    ) -> PluginResult<Vec<AccessGrp>> {
        Ok(Vec::new())
    }
    fn create_access_groups(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>> {
        nope()
    }
    fn remove_access_groups(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>> {
        nope()
    }
    fn rename_access_group(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &str,
        _: &str,
    ) -> PluginResult<Vec<AccessGrp>> {
        nope()
    }
    fn add_to_access_group(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &str,
        _: &[String],
    ) -> PluginResult<AccessGrp> {
        nope()
    }
    fn remove_from_access_group(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &str,
        _: &[String],
    ) -> PluginResult<AccessGrp> {
        nope()
    }
    fn list(&self, _: &dyn Host, _: &SsRecord, _: &[SeType]) -> PluginResult<Vec<SeRecord>> {
        Ok(self.records.clone())
    }
    fn get_status(&self, _: &dyn Host, _: &SsRecord, _: Option<&SeRecord>) -> PluginResult<String> {
        Ok("ONLINE".into())
    }
    fn online(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord) -> PluginResult<()> {
        nope()
    }
    fn offline(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord) -> PluginResult<()> {
        nope()
    }
    fn create(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &SeRecord,
        _: bool,
        _: Option<&str>,
    ) -> PluginResult<SeRecord> {
        nope()
    }
    fn start_present(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &SeRecord,
        _: &[String],
    ) -> PluginResult<SeRecord> {
        nope()
    }
    fn stop_present(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord, _: &[String]) -> PluginResult<SeRecord> {
        nope()
    }
    fn resize(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord, _: i64) -> PluginResult<SeRecord> {
        nope()
    }
    fn remove(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord) -> PluginResult<()> {
        nope()
    }
    fn get_clone_limits(&self, _: &dyn Host, _: &SsRecord, _: Option<&SeRecord>) -> PluginResult<i64> {
        Ok(0)
    }
    fn is_cloneable(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord) -> PluginResult<bool> {
        Ok(false)
    }
    fn clone_element(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &SeRecord,
        _: Option<&SeRecord>,
        _: Option<&str>,
    ) -> PluginResult<SeRecord> {
        nope()
    }
    fn is_splittable(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord) -> PluginResult<bool> {
        Ok(false)
    }
    fn split_clone(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord) -> PluginResult<Option<SeRecord>> {
        nope()
    }
    fn clone_from_snap(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &SeRecord,
        _: &SeRecord,
        _: Option<&SeRecord>,
        _: Option<&str>,
    ) -> PluginResult<SeRecord> {
        nope()
    }
    fn get_current_clones(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>> {
        Ok(Vec::new())
    }
    fn get_snap_limits(&self, _: &dyn Host, _: &SsRecord, _: Option<&SeRecord>) -> PluginResult<i64> {
        Ok(0)
    }
    fn is_snapable(&self, _: &dyn Host, _: &SsRecord, _: Option<&SeRecord>) -> PluginResult<bool> {
        Ok(false)
    }
    fn create_snap(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &SeRecord,
        _: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        nope()
    }
    fn create_multi_snap(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &[SeRecord],
        _: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        nope()
    }
    fn is_restorable(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &SeRecord,
        _: Option<&SeRecord>,
    ) -> PluginResult<bool> {
        Ok(false)
    }
    fn snap_restore(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: &SeRecord,
        _: Option<&SeRecord>,
    ) -> PluginResult<()> {
        nope()
    }
    fn snap_remove(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord) -> PluginResult<()> {
        nope()
    }
    fn get_current_snaps(
        &self,
        _: &dyn Host,
        _: &SsRecord,
        _: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>> {
        Ok(Vec::new())
    }
    fn get_qos_list(&self, _: &dyn Host, _: &SsRecord) -> PluginResult<Vec<QosVals>> {
        Ok(Vec::new())
    }
    fn set_qos(&self, _: &dyn Host, _: &SsRecord, _: &SeRecord, _: &str) -> PluginResult<()> {
        nope()
    }
}

/// A host that offers nothing (list uses none of it).
struct NullHost;

impl Host for NullHost {
    fn cache_get(&self, _: &str, _: &str) -> PluginResult<Option<String>> {
        Ok(None)
    }
    fn cache_set(&self, _: &str, _: &str, _: Option<&str>, _: Option<u64>) -> PluginResult<()> {
        Ok(())
    }
    fn cache_extend(&self, _: &str, _: &str, _: u64) -> PluginResult<()> {
        Ok(())
    }
    fn cache_clear(&self, _: &str) -> PluginResult<()> {
        Ok(())
    }
    fn log(&self, _: LogLevel, _: &str) {}
    fn temp_file(&self) -> PluginResult<PathBuf> {
        nope()
    }
    fn dev_path_prefix(&self) -> String {
        "/dev/mapper/".into()
    }
}

fn list_args() -> Map<String, Value> {
    ss_args(&ss_record(SS_UUID, ""))
}

/// A runtime and a strict manager hosting `plugin` in process.
fn setup(plugin: &Arc<BenchArray>) -> (tokio::runtime::Runtime, Manager, tempfile::TempDir) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let manager = rt
        .block_on(Manager::new(ManagerConfig {
            builtins: vec![plugin.clone()],
            mode: Mode::Strict,
            temp_root: Some(temp.path().to_path_buf()),
            ..ManagerConfig::default()
        }))
        .unwrap_or_else(|e| panic!("manager: {e}"));
    (rt, manager, temp)
}

fn bench_list(c: &mut Criterion) {
    let plugin = Arc::new(BenchArray::new());
    let (rt, manager, _temp) = setup(&plugin);
    let entry = manager.resolve(plugin.class).unwrap_or_else(|e| panic!("{e}"));
    let args = list_args();

    // Sanity: the manager returns the 1,000 records (and validates once, outside the loop).
    let first = rt
        .block_on(manager.call(entry, Method::List, args.clone(), CallOptions::default()))
        .unwrap_or_else(|e| panic!("list: {e}"));
    assert_eq!(first.value.as_array().map(Vec::len), Some(ELEMENTS));

    let mut g = c.benchmark_group("list_1000_in_process");
    g.sample_size(50);
    g.bench_function("manager_call", |b| {
        b.iter(|| {
            let out = rt
                .block_on(manager.call(entry, Method::List, args.clone(), CallOptions::default()))
                .unwrap_or_else(|e| panic!("list: {e}"));
            black_box(out.value)
        })
    });
    g.bench_function("dispatch", |b| {
        b.iter(|| {
            black_box(
                dispatch(plugin.as_ref(), &NullHost, Method::List, &args).unwrap_or_else(|e| panic!("{e}")),
            )
        })
    });
    let ss = SsRecord::from_value(&args["ss_record"]).unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("plugin_list", |b| {
        b.iter(|| {
            black_box(
                plugin
                    .list(&NullHost, &ss, &[SeType::Lun])
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        })
    });
    g.bench_function("serialise", |b| {
        b.iter(|| black_box(serde_json::to_value(&plugin.records).unwrap_or_else(|e| panic!("{e}"))))
    });
    let metadata = plugin.metadata();
    let mut value = first.value.clone();
    g.bench_function("contract_check", |b| {
        b.iter(|| {
            black_box(contract::check_return(
                Method::List.spec(),
                &metadata,
                &args,
                &mut value,
                true,
                Mode::Strict,
            ))
        })
    });
    // What an out-of-process result costs on top: every element's shape is checked too.
    g.bench_function("contract_check_untyped", |b| {
        b.iter(|| {
            black_box(contract::check_return(
                Method::List.spec(),
                &metadata,
                &args,
                &mut value,
                false,
                Mode::Strict,
            ))
        })
    });
    let line = Message::response(Id::Num(1), json!({"value": first.value})).to_line();
    g.bench_function("wire_encode", |b| {
        b.iter(|| black_box(serde_json::to_string(&first.value).unwrap_or_default()))
    });
    g.bench_function("wire_decode", |b| {
        b.iter(|| black_box(Message::from_line(&line).unwrap_or_else(|e| panic!("{e}"))))
    });
    g.finish();
}

/// The fixed cost of a call, apart from what grows with the result: the same path with a list
/// of one element.
fn bench_fixed(c: &mut Criterion) {
    let plugin = Arc::new(BenchArray::with(1, "spindle.bench.OneArray"));
    let (rt, manager, _temp) = setup(&plugin);
    let entry = manager.resolve(plugin.class).unwrap_or_else(|e| panic!("{e}"));
    let args = list_args();
    rt.block_on(manager.call(entry, Method::List, args.clone(), CallOptions::default()))
        .unwrap_or_else(|e| panic!("list: {e}"));
    let mut g = c.benchmark_group("list_1_in_process");
    g.bench_function("manager_call", |b| {
        b.iter(|| {
            let out = rt
                .block_on(manager.call(entry, Method::List, args.clone(), CallOptions::default()))
                .unwrap_or_else(|e| panic!("list: {e}"));
            black_box(out.value)
        })
    });
    g.bench_function("dispatch", |b| {
        b.iter(|| {
            black_box(
                dispatch(plugin.as_ref(), &NullHost, Method::List, &args).unwrap_or_else(|e| panic!("{e}")),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench_list, bench_fixed);
criterion_main!(benches);
