//! Tests of the simulated array through the plug-in trait, with a small in-memory host.

mod basics;
mod clones;
mod concurrency;
mod dispatch;
mod elements;
mod groups;
mod snaps;

use crate::state::State;
use crate::store::STATE_FILE;
use crate::SimArray;
use serde_json::{json, Map, Value};
use spindle_api::{
    check_update, ExceptionKind, Host, LogLevel, PluginException, PluginResult, RecordKind, SeRecord,
    SsRecord, StorageArrayPlugin, StorageType,
};
use std::collections::HashMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A host for tests: an in-memory cache, a log collector and temporary files in a temp dir.
#[derive(Debug)]
pub struct TestHost {
    cache: Mutex<HashMap<(String, String), (String, Instant)>>,
    logs: Mutex<Vec<(LogLevel, String)>>,
    tmp: TempDir,
}

impl TestHost {
    pub fn new() -> Self {
        TestHost {
            cache: Mutex::new(HashMap::new()),
            logs: Mutex::new(Vec::new()),
            tmp: TempDir::new().expect("temp dir for the test host"),
        }
    }

    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn poisoned() -> PluginException {
    PluginException::operation_failed("test host lock poisoned")
}

impl Host for TestHost {
    fn cache_get(&self, ss_uuid: &str, key: &str) -> PluginResult<Option<String>> {
        let cache = self.cache.lock().map_err(|_| poisoned())?;
        Ok(cache
            .get(&(ss_uuid.to_string(), key.to_string()))
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(v, _)| v.clone()))
    }

    fn cache_set(
        &self,
        ss_uuid: &str,
        key: &str,
        value: Option<&str>,
        expire_secs: Option<u64>,
    ) -> PluginResult<()> {
        let mut cache = self.cache.lock().map_err(|_| poisoned())?;
        let k = (ss_uuid.to_string(), key.to_string());
        match value {
            None => {
                cache.remove(&k);
            }
            Some(v) => {
                let exp = Instant::now()
                    + Duration::from_secs(expire_secs.unwrap_or(spindle_api::DEFAULT_CACHE_EXPIRY_SECS));
                cache.insert(k, (v.to_string(), exp));
            }
        }
        Ok(())
    }

    fn cache_extend(&self, ss_uuid: &str, key: &str, extend_secs: u64) -> PluginResult<()> {
        let mut cache = self.cache.lock().map_err(|_| poisoned())?;
        if let Some((_, exp)) = cache.get_mut(&(ss_uuid.to_string(), key.to_string())) {
            *exp += Duration::from_secs(extend_secs);
        }
        Ok(())
    }

    fn cache_clear(&self, ss_uuid: &str) -> PluginResult<()> {
        let mut cache = self.cache.lock().map_err(|_| poisoned())?;
        cache.retain(|(s, _), _| s != ss_uuid);
        Ok(())
    }

    fn log(&self, level: LogLevel, message: &str) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push((level, message.to_string()));
        }
    }

    fn temp_file(&self) -> PluginResult<PathBuf> {
        tempfile::NamedTempFile::new_in(self.tmp.path())
            .and_then(|f| f.into_temp_path().keep().map_err(|e| e.error))
            .map_err(|e| PluginException::operation_failed(format!("temp file: {e}")))
    }

    fn dev_path_prefix(&self) -> String {
        "/dev/mapper/".into()
    }
}

/// One simulated array in a temp dir, with a host and an ss_record for it.
pub struct Fx {
    pub p: SimArray,
    pub host: TestHost,
    pub dir: TempDir,
    pub ss: SsRecord,
}

pub const SS_UUID: &str = "0004fb00000100001234567890abcdef";

pub fn ss_record(storage_type: &str, extra_info: &str) -> SsRecord {
    SsRecord::from_value(&json!({
        "name": "sim-array-1",
        "uuid": SS_UUID,
        "storage_type": storage_type,
        "admin_host": "localhost",
        "admin_user": "admin",
        "admin_passwd": "not-a-real-password",
        "status": "",
        "storage_desc": "",
        "access_grps": [],
        "extra_info": extra_info,
        "custom_manager_key": {"kept": true}
    }))
    .expect("valid ss_record")
}

impl Fx {
    /// An array of `storage_type` with `settings` appended to its state_dir.
    pub fn with(storage_type: StorageType, settings: &str) -> Fx {
        let dir = TempDir::new().expect("temp dir");
        let extra = format!("state_dir={}{settings}", dir.path().join("array").display());
        let ss = ss_record(storage_type.as_str(), &extra);
        let fx = Fx {
            p: SimArray,
            host: TestHost::new(),
            dir,
            ss,
        };
        fx.p.validate(&fx.host, &fx.ss).expect("validate");
        fx
    }

    /// An iSCSI array of one 10 GiB pool, splits at 300 ms per GiB.
    pub fn iscsi() -> Fx {
        Fx::with(StorageType::Iscsi, ";capacity=10G;split_ms_per_gib=300")
    }

    /// A SAN array of one 10 GiB pool.
    pub fn san() -> Fx {
        Fx::with(StorageType::San, ";capacity=10G;split_ms_per_gib=300")
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("array").join(STATE_FILE)
    }

    pub fn state_bytes(&self) -> Vec<u8> {
        std::fs::read(self.state_path()).expect("state file")
    }

    pub fn state(&self) -> State {
        State::from_json(&self.state_bytes()).expect("state parses")
    }

    /// Rewrites the state file (tests that need states that take long to build).
    pub fn put_state(&self, s: &State) {
        std::fs::write(self.state_path(), s.to_json().expect("encodable")).expect("state written");
    }

    /// Creates a LUN, checking the update rules on the result.
    pub fn lun(&self, name: &str, size: i64, thin: bool) -> SeRecord {
        let req = lun_req(name, size);
        let r = self
            .p
            .create(&self.host, &self.ss, &req, thin, None)
            .expect("create");
        assert_update_ok(&req, &r);
        r
    }

    pub fn group(&self, name: &str, entries: &[&str]) {
        let g = spindle_api::AccessGrp::from_value(&json!({"grp_name": name, "grp_entries": entries}))
            .expect("access_grp");
        self.p
            .create_access_groups(&self.host, &self.ss, &[g])
            .expect("create access group");
    }

    pub fn present(&self, se: &SeRecord, groups: &[&str]) -> SeRecord {
        let names: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let r = self
            .p
            .start_present(&self.host, &self.ss, se, &names)
            .expect("startPresent");
        assert_update_ok(se, &r);
        r
    }

    pub fn snap(&self, se: &SeRecord, name: Option<&str>) -> SeRecord {
        let req = name.map(snap_req);
        let r = self
            .p
            .create_snap(&self.host, &self.ss, se, req.as_ref())
            .expect("createSnap");
        if let Some(req) = &req {
            assert_update_ok(req, &r);
        }
        r
    }

    pub fn clone_of(&self, se: &SeRecord, name: &str) -> SeRecord {
        let dest = clone_req(name);
        let r = self
            .p
            .clone_element(&self.host, &self.ss, se, Some(&dest), None)
            .expect("clone");
        assert_update_ok(&dest, &r);
        r
    }

    /// Refreshes a record from the array.
    pub fn info(&self, se: &SeRecord) -> SeRecord {
        match self.p.get_info(&self.host, &self.ss, Some(se)).expect("getInfo") {
            spindle_api::Info::Element(r) => {
                assert_update_ok(se, &r);
                r
            }
            spindle_api::Info::Server(_) => panic!("getInfo with an se_record returned an ss_record"),
        }
    }

    pub fn pool_free(&self) -> i64 {
        let s = self.state();
        s.pool_free(&s.pools[0].name)
    }
}

pub fn lun_req(name: &str, size: i64) -> SeRecord {
    SeRecord::from_value(&json!({
        "se_type": "LUNType",
        "ss_uuid": SS_UUID,
        "name": name,
        "size": size,
        "extra_info": "given-and-kept",
        "manager_private": [1, 2, 3]
    }))
    .expect("se_record")
}

pub fn snap_req(name: &str) -> SeRecord {
    SeRecord::from_value(&json!({"se_type": "SnapType", "ss_uuid": SS_UUID, "name": name}))
        .expect("se_record")
}

pub fn clone_req(name: &str) -> SeRecord {
    SeRecord::from_value(&json!({"se_type": "SnapCloneType", "ss_uuid": SS_UUID, "name": name}))
        .expect("se_record")
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not a dict: {other}"),
    }
}

/// The returned record breaks no "Allow update" rule of the record it was built from.
pub fn assert_update_ok(given: &SeRecord, returned: &SeRecord) {
    let v = check_update(
        RecordKind::SeRecord,
        &obj(given.to_value()),
        &obj(returned.to_value()),
    );
    assert!(v.is_empty(), "update rules broken: {v:?}");
}

pub const GIB: i64 = 1 << 30;
pub const MIB: i64 = 1 << 20;

/// The call failed with `kind`, and the message holds every needle.
#[track_caller]
pub fn expect_ex<T: Debug>(r: PluginResult<T>, kind: ExceptionKind, needles: &[&str]) -> PluginException {
    let e = r.expect_err("the call should have failed");
    assert_eq!(e.kind, kind, "{e}");
    for n in needles {
        assert!(e.message.contains(n), "message {:?} lacks {n:?}", e.message);
    }
    e
}

pub fn text(f: &spindle_api::Field<String>) -> &str {
    f.value().map(String::as_str).unwrap_or("")
}

pub fn size_of(r: &SeRecord) -> i64 {
    r.size.value().copied().unwrap_or(-1)
}

#[test]
fn test_host_cache_and_temp_files_work() {
    let h = TestHost::new();
    h.cache_set("ss", "k", Some("v"), None).expect("set");
    assert_eq!(h.cache_get("ss", "k").expect("get").as_deref(), Some("v"));
    h.cache_extend("ss", "k", 5).expect("extend");
    h.cache_set("ss", "gone", Some("v"), Some(0)).expect("set");
    assert_eq!(h.cache_get("ss", "gone").expect("get"), None);
    h.cache_clear("ss").expect("clear");
    assert_eq!(h.cache_get("ss", "k").expect("get"), None);
    let t = h.temp_file().expect("temp file");
    assert!(t.exists());
    h.log(LogLevel::Debug, "hello");
    assert_eq!(h.logs().len(), 1);
    assert_eq!(h.dev_path_prefix(), "/dev/mapper/");
}
