//! The Storage Array plug-in trait and the host facilities a plug-in may use.
//!
//! Methods take `&self` only so that a plug-in can be a trait object; a plug-in keeps no state
//! between calls (the out-of-process host makes that a fact by running each call in a fresh
//! process). Everything a plug-in may remember goes through [`Host`]'s cache.

use crate::ability::Abilities;
use crate::enums::SeType;
use crate::exception::{PluginException, PluginResult};
use crate::metadata::PluginMetadata;
use crate::methods::Method;
use crate::records::{AccessGrp, QosVals, SeRecord, SsRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// Levels of the host's logger (those of Python's `logging`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARNING
    Warning,
    /// ERROR
    Error,
    /// CRITICAL
    Critical,
}

/// Default expiry of a cache entry, in seconds.
pub const DEFAULT_CACHE_EXPIRY_SECS: u64 = 30;

/// What the host offers a plug-in during one call: the cache, the logger and temporary files.
pub trait Host: Send + Sync {
    /// The cached string, or `None` if absent or expired.
    fn cache_get(&self, ss_uuid: &str, key: &str) -> PluginResult<Option<String>>;
    /// Stores `value` (or clears the key when `None`) for `expire_secs` (default 30 s).
    fn cache_set(
        &self,
        ss_uuid: &str,
        key: &str,
        value: Option<&str>,
        expire_secs: Option<u64>,
    ) -> PluginResult<()>;
    /// Adds `extend_secs` to the entry's expiry.
    fn cache_extend(&self, ss_uuid: &str, key: &str, extend_secs: u64) -> PluginResult<()>;
    /// Drops every entry of the storage server.
    fn cache_clear(&self, ss_uuid: &str) -> PluginResult<()>;
    /// Logs `message`, tagged by the host with plug-in, method and call id.
    fn log(&self, level: LogLevel, message: &str);
    /// A new empty temporary file, removed by the host when the call ends.
    fn temp_file(&self) -> PluginResult<PathBuf>;
    /// Prefix of local device paths (depends on whether multipath is on).
    fn dev_path_prefix(&self) -> String;
}

/// What `getInfo` returns: the server or the element it was asked about.
#[derive(Debug, Clone, PartialEq)]
pub enum Info {
    /// The updated ss_record.
    Server(SsRecord),
    /// The updated se_record.
    Element(SeRecord),
}

fn not_implemented(method: Method) -> PluginException {
    PluginException::no_such_operation(format!("{method} is not implemented by this plug-in"))
}

/// A Storage Array plug-in (`IStorageArrayPlugin`).
///
/// Optional methods (`discover`, `start`, `stop`, `refresh`, `updateSERecords`) and
/// `getAsyncProgress` have default bodies; a plug-in that overrides any of them lists it in
/// [`StorageArrayPlugin::implemented_optional`], and the manager supplies its generic
/// behaviour for the rest.
#[allow(missing_docs)]
pub trait StorageArrayPlugin: Send + Sync {
    /// The fully qualified class name, e.g. `spindle.sim.SimArray`.
    fn class_name(&self) -> &'static str;
    /// The class variables.
    fn metadata(&self) -> PluginMetadata;
    /// Which optional methods (and `getAsyncProgress`) this plug-in implements.
    fn implemented_optional(&self) -> &'static [Method] {
        &[]
    }

    fn validate(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()>;
    fn get_capabilities(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Abilities>;
    fn get_info(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<Info>;
    fn get_storage_names(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Vec<String>>;
    fn get_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<AccessGrp>>;
    fn create_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grps: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>>;
    fn remove_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grps: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>>;
    fn rename_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        new_access_grp_name: &str,
    ) -> PluginResult<Vec<AccessGrp>>;
    fn add_to_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        grp_entries: &[String],
    ) -> PluginResult<AccessGrp>;
    fn remove_from_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        grp_entries: &[String],
    ) -> PluginResult<AccessGrp>;
    fn discover(&self, _host: &dyn Host, _ss: &SsRecord) -> PluginResult<SsRecord> {
        Err(not_implemented(Method::Discover))
    }
    fn start(&self, _host: &dyn Host, _ss: &SsRecord) -> PluginResult<()> {
        Err(not_implemented(Method::Start))
    }
    fn stop(&self, _host: &dyn Host, _ss: &SsRecord) -> PluginResult<()> {
        Err(not_implemented(Method::Stop))
    }
    fn refresh(&self, _host: &dyn Host, _ss: &SsRecord) -> PluginResult<()> {
        Err(not_implemented(Method::Refresh))
    }
    fn list(&self, host: &dyn Host, ss: &SsRecord, se_type: &[SeType]) -> PluginResult<Vec<SeRecord>>;
    fn update_se_records(
        &self,
        _host: &dyn Host,
        _ss: &SsRecord,
        _se_records: &[SeRecord],
        _append_allowed: bool,
    ) -> PluginResult<Vec<SeRecord>> {
        Err(not_implemented(Method::UpdateSeRecords))
    }
    fn get_status(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<String>;
    fn online(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()>;
    fn offline(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()>;
    fn create(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        thin_provision: bool,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord>;
    fn start_present(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        access_grp_names: &[String],
    ) -> PluginResult<SeRecord>;
    fn stop_present(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        access_grp_names: &[String],
    ) -> PluginResult<SeRecord>;
    fn resize(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord, new_size: i64) -> PluginResult<SeRecord>;
    fn remove(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()>;
    fn get_clone_limits(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<i64>;
    fn is_cloneable(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<bool>;
    /// `clone` (named so as not to read like `Clone::clone`).
    fn clone_element(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        dest: Option<&SeRecord>,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord>;
    fn is_splittable(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<bool>;
    /// `None` when the split finished; a record with `async_progress` when it runs on.
    fn split_clone(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<Option<SeRecord>>;
    fn clone_from_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        snap: &SeRecord,
        dest: Option<&SeRecord>,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord>;
    fn get_current_clones(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>>;
    fn get_snap_limits(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<i64>;
    fn is_snapable(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<bool>;
    fn create_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        snap: Option<&SeRecord>,
    ) -> PluginResult<SeRecord>;
    fn create_multi_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se_records: &[SeRecord],
        snap: Option<&SeRecord>,
    ) -> PluginResult<SeRecord>;
    fn is_restorable(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        snap: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<bool>;
    fn snap_restore(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        snap: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<()>;
    fn snap_remove(&self, host: &dyn Host, ss: &SsRecord, snap: &SeRecord) -> PluginResult<()>;
    fn get_current_snaps(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>>;
    fn get_qos_list(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Vec<QosVals>>;
    fn set_qos(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord, qos: &str) -> PluginResult<()>;
    /// Required when any operation can be asynchronous.
    fn get_async_progress(
        &self,
        _host: &dyn Host,
        _ss: &SsRecord,
        _some_record: &Value,
    ) -> PluginResult<Value> {
        Err(not_implemented(Method::GetAsyncProgress))
    }
}
