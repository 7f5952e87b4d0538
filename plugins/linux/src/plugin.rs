//! The plug-in `spindle.linux.LinuxArray`: a thin, stateless client of the array program.
//!
//! Every method builds the array's configuration from `ss_record.extra_info`
//! ([`ArrayConfig::from_extra_info`], skipping the plug-in's own [`CLIENT_KEYS`]), sends one
//! request to `spindle-array` (locally or over ssh, see [`crate::client`]) and maps the answer
//! onto the guides' records. Records it returns start from the record it was given, so keys
//! it does not know and fields it may not change survive; `name` and `ss_uuid` are filled
//! only when empty. Elements are addressed by `uuid`; a record without one is looked up by
//! `page83_id` or `name`.

use crate::client::{ClientSettings, Transport};
use crate::config::{ArrayConfig, CLIENT_KEYS, SS_EXTRA_INFO_HELP};
use crate::engine::MAX_ACCESS_ENTRIES;
use crate::model::{ArrayInfo, Element, Group, Limits, QosLevel, SplitStatus};
use crate::names::shown;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use spindle_api::{
    Abilities, AccessGrp, ExceptionKind, Field, Flag, Host, Info, LogLevel, MaxEntries, Method, OpAbility,
    PluginException, PluginMetadata, PluginResult, PluginVersion, QosVals, SeRecord, SeState, SeType,
    SsRecord, StorageArrayPlugin, StorageType,
};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The fully qualified class name.
pub const CLASS_NAME: &str = "spindle.linux.LinuxArray";
/// `plugin_version`: the package version with release 1.
pub const PLUGIN_VERSION: &str = "0.1.0-1";

const PLUGIN_DESC: &str = "Linux software storage array: LUNs are sparse image files in pools on \
XFS (reflink=1) or btrfs, snapshots and clones are reflinks, and tgt exports them over iSCSI (one \
target per access group, CHAP optional). The plug-in drives the array program spindle-array on \
the array host, locally or over ssh with a verified host key.";

/// The Linux array plug-in. Holds nothing: the array keeps its own state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinuxArray;

impl LinuxArray {
    /// What the plug-in can do at best (`getCapabilities` reports what one array can now).
    pub fn abilities() -> Abilities {
        Abilities {
            snapshot: OpAbility::Online,
            custom_snap_name: Flag::Yes,
            snap_is_sync: Flag::Yes,
            clone: OpAbility::Online,
            custom_clone_name: Flag::Yes,
            clone_is_sync: Flag::Yes,
            resize: OpAbility::Online,
            resize_is_sync: Flag::Yes,
            splitclone: OpAbility::Offline,
            splitclone_is_sync: Flag::No,
            splitclone_while_open: Flag::No,
            snapclone: OpAbility::Online,
            snapclone_is_sync: Flag::Yes,
            require_storage_name: Flag::No,
            access_control: Flag::Yes,
            max_access_entries: MaxEntries::Limited(MAX_ACCESS_ENTRIES),
        }
    }

    /// The class variables.
    pub fn plugin_metadata() -> PluginMetadata {
        PluginMetadata {
            plugin_name: "spindle Linux software array".into(),
            vendor_name: "spindle".into(),
            plugin_version: PluginVersion {
                major: 0,
                minor: 1,
                patch: 0,
                release: 1,
            },
            plugin_desc: PLUGIN_DESC.into(),
            ss_extra_info_help: Some(SS_EXTRA_INFO_HELP.into()),
            se_extra_info_help: None,
            storage_types: vec![StorageType::Iscsi],
            plugin_ability: LinuxArray::abilities(),
        }
    }
}

/// An answer of the array program as sent: `ok` (the value) or `error`, and what the export
/// layer reported.
#[derive(Deserialize)]
struct Reply<T> {
    ok: Option<T>,
    error: Option<PluginException>,
    #[serde(default)]
    warnings: Vec<String>,
    export: Option<ExportNote>,
}

/// The part of an answer's export report that is logged.
#[derive(Deserialize)]
struct ExportNote {
    #[serde(default)]
    actions: Vec<String>,
    /// tgtd was not running, and the request started it (pid).
    #[serde(default)]
    started: Option<u32>,
}

impl ExportNote {
    /// How the note of a request `op` is logged. A tgtd that had to be started, or moved (its
    /// sessions end), is news for an administrator; the rest is routine, and so is the start
    /// a validate makes (an array being registered: `server add` on a machine where tgtd is
    /// not running yet).
    fn level(&self, op: &str) -> LogLevel {
        if self.started.is_some() && op != "validate" {
            LogLevel::Warning
        } else {
            LogLevel::Info
        }
    }
}

#[cfg(test)]
mod export_note_tests {
    use super::*;

    #[test]
    fn a_started_tgtd_is_news_except_when_an_array_is_registered() {
        let started = ExportNote {
            actions: vec![],
            started: Some(42),
        };
        assert_eq!(started.level("create"), LogLevel::Warning);
        assert_eq!(started.level("validate"), LogLevel::Info);
        let routine = ExportNote {
            actions: vec!["added LUN 1 to target t".into()],
            started: None,
        };
        assert_eq!(routine.level("present"), LogLevel::Info);
    }
}

/// What an ss_record's `extra_info`, `admin_host` and `admin_user` make: the array's
/// configuration (also as the JSON every request carries) and how to reach the array.
#[derive(Debug)]
struct Target {
    cfg: ArrayConfig,
    cfg_json: String,
    transport: Transport,
}

/// The targets of the last ss_records seen, by (`extra_info`, `admin_host`, `admin_user`).
/// Each is a pure function of its key, so keeping it changes no answer; it spares every call
/// the parsing and checking of the same settings.
type TargetCache = Vec<((String, String, String), Arc<Target>)>;

/// How many targets [`target_of`] keeps.
const TARGETS_KEPT: usize = 16;

/// The [`Target`] of `ss`, parsed once per distinct settings. Settings that do not parse are
/// not kept: each call says again what is wrong with them.
fn target_of(ss: &SsRecord) -> PluginResult<Arc<Target>> {
    static KEPT: Mutex<TargetCache> = Mutex::new(Vec::new());
    let text = |f: &Field<String>| f.value().cloned().unwrap_or_default();
    let key = (text(&ss.extra_info), text(&ss.admin_host), text(&ss.admin_user));
    if let Some((_, t)) = KEPT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(k, _)| *k == key)
    {
        return Ok(Arc::clone(t));
    }
    let extra = ss.extra_info.value().map(String::as_str);
    let cfg = ArrayConfig::from_extra_info(extra, CLIENT_KEYS).map_err(config_error)?;
    let client = ClientSettings::from_extra_info(extra)?;
    let transport = Transport::new(&key.1, &key.2, &client)?;
    let cfg_json =
        serde_json::to_string(&cfg).map_err(|e| PluginException::operation_failed(e.to_string()))?;
    let t = Arc::new(Target {
        cfg,
        cfg_json,
        transport,
    });
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() >= TARGETS_KEPT {
        kept.remove(0);
    }
    kept.push((key, Arc::clone(&t)));
    Ok(t)
}

/// One call: the host, the ss_record, the array's configuration and how to reach it.
struct Call<'a> {
    host: &'a dyn Host,
    ss: &'a SsRecord,
    target: Arc<Target>,
    /// Exception for failures of the call itself (transport, array I/O).
    failure: ExceptionKind,
    /// The names the caller's records give the elements they name by uuid, which the array
    /// checks before serving the request (`expect_names`).
    expected_names: std::cell::RefCell<std::collections::BTreeMap<String, String>>,
    /// The page 83 ids the caller's records give them (`expect_page83`).
    expected_page83: std::cell::RefCell<std::collections::BTreeMap<String, String>>,
}

/// Refuses an `access_host`/`access_port` (where hosts are told to connect) that cannot
/// reach the array's portal: another port, or another address when both are addresses and
/// the portal listens on one only. (A host name may be the portal's address by another name,
/// or reach it through NAT; it is taken as given.)
fn check_access(ss: &SsRecord, portal: std::net::SocketAddr) -> Result<(), String> {
    let given = |f: &Field<String>| f.value().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(port) = given(&ss.access_port) {
        if port.parse::<u16>().ok() != Some(portal.port()) {
            return Err(format!(
                "access_port {} is not the port of the array's portal {portal} (extra_info portal=): hosts would be sent where nothing listens; give access_port {} (server set --access-port), or move the portal to port {} (extra_info portal=)",
                shown(&port),
                portal.port(),
                shown(&port)
            ));
        }
    }
    if let Some(host) = given(&ss.access_host) {
        let addr = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = addr.parse::<std::net::IpAddr>() {
            if !portal.ip().is_unspecified() && ip != portal.ip() {
                return Err(format!(
                    "access_host {} is not the address of the array's portal {portal} (extra_info portal=): hosts would be sent where nothing listens; give access_host {} (server set --access-host), or a portal on that address",
                    shown(&host),
                    portal.ip()
                ));
            }
        }
    }
    Ok(())
}

fn config_error(e: crate::Error) -> PluginException {
    PluginException::value_format("extra_info", e.to_string())
}

impl<'a> Call<'a> {
    fn new(host: &'a dyn Host, ss: &'a SsRecord, failure: ExceptionKind) -> PluginResult<Call<'a>> {
        Ok(Call {
            host,
            ss,
            target: target_of(ss)?,
            failure,
            expected_names: Default::default(),
            expected_page83: Default::default(),
        })
    }

    fn cfg(&self) -> &ArrayConfig {
        &self.target.cfg
    }

    fn ss_uuid(&self) -> &str {
        self.ss.uuid_str()
    }

    /// Sends `op` with `args` for its effect (or its untyped `ok` value), logging the export
    /// layer's warnings.
    fn send(&self, op: &str, args: Value) -> PluginResult<Value> {
        self.get(op, args)
    }

    /// Sends `op` with `args` (an object) and reads the answer's `ok` value as a `T`, logging
    /// the export layer's warnings and actions.
    fn get<T: DeserializeOwned>(&self, op: &str, args: Value) -> PluginResult<T> {
        // The request is written as text around the configuration's JSON, made once.
        let mut body = String::with_capacity(self.target.cfg_json.len() + 256);
        body.push_str("{\"op\":");
        body.push_str(&Value::String(op.into()).to_string());
        if let Value::Object(m) = args {
            for (k, v) in m {
                body.push(',');
                body.push_str(&Value::String(k).to_string());
                body.push(':');
                body.push_str(&v.to_string());
            }
        }
        let expected = self.expected_names.borrow();
        if !expected.is_empty() {
            body.push_str(",\"expect_names\":");
            body.push_str(&serde_json::to_string(&*expected).unwrap_or_else(|_| "{}".into()));
        }
        drop(expected);
        let expected = self.expected_page83.borrow();
        if !expected.is_empty() {
            body.push_str(",\"expect_page83\":");
            body.push_str(&serde_json::to_string(&*expected).unwrap_or_else(|_| "{}".into()));
        }
        drop(expected);
        body.push_str(",\"config\":");
        body.push_str(&self.target.cfg_json);
        if !self.ss_uuid().is_empty() {
            body.push_str(",\"registration\":");
            body.push_str(&Value::String(self.ss_uuid().into()).to_string());
        }
        body.push('}');
        let line = self.target.transport.request(&body, self.failure)?;
        let reply: Reply<T> = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => return Err(self.unreadable(op, &line, &e)),
        };
        if let Some(mut ex) = reply.error {
            // The array's `registration` is the ss_record's uuid.
            if ex.key.as_deref() == Some("registration") {
                ex.key = Some("uuid".into());
            }
            return Err(ex);
        }
        for w in &reply.warnings {
            self.host.log(LogLevel::Warning, w);
        }
        if let Some(note) = reply
            .export
            .filter(|n| !n.actions.is_empty() || n.started.is_some())
        {
            let level = note.level(op);
            // (A move is one of the actions, which say so.)
            let parts: Vec<String> = note
                .started
                .map(|pid| format!("tgtd was not running: started it (pid {pid})"))
                .into_iter()
                .chain(note.actions.iter().cloned())
                .collect();
            self.host
                .log(level, &format!("tgtd brought up to date: {}", parts.join("; ")));
        }
        match reply.ok {
            Some(v) => Ok(v),
            // `"ok": null` (operations that answer nothing) reads as no value.
            None => serde_json::from_value(Value::Null).map_err(|e| self.unreadable(op, &line, &e)),
        }
    }

    /// The exception for an answer to `op` that is not what this plug-in expects.
    fn unreadable(&self, op: &str, line: &str, e: &serde_json::Error) -> PluginException {
        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let message = match v.get("error") {
            Some(err) => format!("the array answered {op} with an unreadable error: {err}"),
            None if v.get("ok").is_some() => {
                format!("the array's answer to {op} is not what this plug-in expects: {e}")
            }
            None => format!("the array's answer to {op} is neither ok nor error: {e}"),
        };
        PluginException::new(self.failure, message)
    }

    /// The uuid of the element `se` designates (looked up by page83_id or name when the
    /// record has no uuid).
    fn uuid_of(&self, se: &SeRecord) -> PluginResult<String> {
        if let Some(u) = se.uuid.value().filter(|u| !u.is_empty()) {
            // A record whose name is another element's is refused by the array, not served
            // for the element its uuid names.
            if let Some(name) = se.name.value().filter(|n| !n.is_empty()) {
                self.expected_names.borrow_mut().insert(u.clone(), name.clone());
            }
            if let Some(id) = se.page83_id.value().filter(|n| !n.is_empty()) {
                self.expected_page83.borrow_mut().insert(u.clone(), id.clone());
            }
            return Ok(u.clone());
        }
        let page83 = se.page83_id.value().filter(|p| !p.is_empty());
        let name = se.name.value().filter(|n| !n.is_empty());
        if page83.is_none() && name.is_none() {
            return Err(PluginException::missing_key(
                "uuid",
                "the se_record carries neither uuid, page83_id nor name",
            ));
        }
        let e: Element = self.get("resolve", json!({"page83_id": page83, "name": name}))?;
        Ok(e.uuid)
    }

    /// `base` brought up to date with `e`.
    fn record(&self, base: Option<&SeRecord>, e: &Element) -> SeRecord {
        let fresh = e.to_se_record(self.ss_uuid());
        let mut r = base.cloned().unwrap_or_default();
        let empty = |f: &Field<String>| f.value().is_none_or(|v| v.is_empty());
        r.se_type = fresh.se_type;
        if empty(&r.ss_uuid) && !self.ss_uuid().is_empty() {
            r.ss_uuid = fresh.ss_uuid;
        }
        if empty(&r.name) {
            r.name = fresh.name;
        }
        r.uuid = fresh.uuid;
        r.page83_id = fresh.page83_id;
        r.id = fresh.id;
        r.vendor = fresh.vendor;
        r.product_id = fresh.product_id;
        r.array_path = fresh.array_path;
        r.size = fresh.size;
        r.status = fresh.status;
        r.vol_group_name = fresh.vol_group_name;
        r.access_grp_names = fresh.access_grp_names;
        r.qos = fresh.qos;
        r.state = fresh.state;
        r.async_handle = Field::Absent;
        r.async_progress = Field::Absent;
        r
    }

    fn records(&self, elements: &[Element]) -> Vec<SeRecord> {
        elements.iter().map(|e| self.record(None, e)).collect()
    }

    fn element(&self, se: &SeRecord) -> PluginResult<Element> {
        let uuid = self.uuid_of(se)?;
        self.get("get", json!({ "uuid": uuid }))
    }

    fn log(&self, message: String) {
        self.host.log(LogLevel::Info, &message);
    }
}

fn requested_name(rec: Option<&SeRecord>) -> Option<String> {
    rec.and_then(|r| r.name.value())
        .filter(|n| !n.is_empty())
        .cloned()
}

fn qos_param(qos: Option<&str>, rec: Option<&SeRecord>) -> Option<String> {
    qos.map(str::to_string)
        .or_else(|| rec.and_then(|r| r.qos.value()).filter(|q| !q.is_empty()).cloned())
}

fn group_name(g: &AccessGrp) -> String {
    g.grp_name.value().cloned().unwrap_or_default()
}

fn groups_of(v: Vec<Group>) -> Vec<AccessGrp> {
    v.iter().map(Group::to_access_grp).collect()
}

/// The array's groups, each with the keys the caller's record of it (in `given`, else in the
/// ss_record's `access_grps`; `renamed`: old → new name) carried that the API does not know:
/// unknown keys survive a round trip.
fn groups_with_extras(
    v: Vec<Group>,
    ss: &SsRecord,
    given: &[AccessGrp],
    renamed: Option<(&str, &str)>,
) -> Vec<AccessGrp> {
    let known = ss.access_grps.value().map(Vec::as_slice).unwrap_or_default();
    v.iter()
        .map(|g| {
            let mut out = g.to_access_grp();
            let name = match renamed {
                Some((old, new)) if g.name == new => old,
                _ => g.name.as_str(),
            };
            if let Some(theirs) = given.iter().chain(known).find(|a| group_name(a) == name) {
                out.extra = theirs.extra.clone();
            }
            out
        })
        .collect()
}

fn name_of(r: &SeRecord) -> String {
    shown(r.name.value().map_or("", String::as_str))
}

/// The local device of an element on this host, if it has one.
fn local_paths(host: &dyn Host, page83_id: &str) -> Vec<String> {
    if page83_id.is_empty() || !page83_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Vec::new();
    }
    let prefix = host.dev_path_prefix();
    let mapper = Path::new("/dev/mapper").join(page83_id);
    let by_id = Path::new("/dev/disk/by-id").join(format!("scsi-{page83_id}"));
    if prefix.starts_with("/dev/mapper") && mapper.exists() {
        vec![format!("{prefix}{page83_id}")]
    } else if by_id.exists() {
        vec![by_id.display().to_string()]
    } else {
        Vec::new()
    }
}

impl StorageArrayPlugin for LinuxArray {
    fn class_name(&self) -> &'static str {
        CLASS_NAME
    }

    fn metadata(&self) -> PluginMetadata {
        LinuxArray::plugin_metadata()
    }

    fn implemented_optional(&self) -> &'static [Method] {
        &[
            Method::Discover,
            Method::Start,
            Method::Stop,
            Method::Refresh,
            Method::UpdateSeRecords,
            Method::GetAsyncProgress,
        ]
    }

    fn validate(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        let refuse = |m: String| PluginException::new(ExceptionKind::InvalidStorageArrayEx, m);
        match ss.storage_type_enum() {
            Some(StorageType::Iscsi) => {}
            _ => {
                return Err(refuse(format!(
                    "storage_type {} is not served: the Linux array is iSCSIStorage",
                    shown(ss.storage_type.value().map_or("", String::as_str))
                )))
            }
        }
        let c = Call::new(host, ss, ExceptionKind::InvalidStorageArrayEx).map_err(|e| refuse(e.message))?;
        let Some(tgt) = c.cfg().tgt.as_ref() else {
            return Err(refuse(
                "extra_info has no tgt_control=N: the Linux array exports its LUNs through the tgtd instance with that control port".into(),
            ));
        };
        check_access(ss, tgt.portal).map_err(refuse)?;
        // A record that says nothing of CHAP (no `chap`, or None) leaves the array's CHAP as it
        // is: a second registration of the array, or a conformance run, must never quietly
        // open targets that require CHAP. Only `chap: False` turns it off.
        let chap = ss.chap.value().copied();
        let args =
            match chap {
                None => json!({}),
                Some(true) => {
                    let user =
                        ss.username.value().filter(|u| !u.is_empty()).ok_or_else(|| {
                            refuse("chap is set but username (the CHAP user) is empty".into())
                        })?;
                    let secret =
                        ss.passwd.value().filter(|p| !p.is_empty()).ok_or_else(|| {
                            refuse("chap is set but passwd (the CHAP secret) is empty".into())
                        })?;
                    json!({"chap": {"username": user, "secret": secret}})
                }
                Some(false) => json!({"clear_chap": true}),
            };
        let info: ArrayInfo = c.get("validate", args).map_err(|e| match e.kind {
            ExceptionKind::InvalidStorageArrayEx
            | ExceptionKind::MissingKeyEx
            | ExceptionKind::ValueFormatEx => e,
            _ => refuse(e.message),
        })?;
        c.log(format!(
            "validated Linux array {} ({} pool(s), CHAP {})",
            info.array_id,
            info.pools.len(),
            match chap {
                None => "left as it is: the record does not set chap",
                Some(true) => "on",
                Some(false) => "off",
            }
        ));
        Ok(())
    }

    fn get_capabilities(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Abilities> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let v = c.send("capabilities", json!({}))?;
        Abilities::from_value(&v).map_err(|e| {
            PluginException::operation_failed(format!("the array's capabilities are unreadable: {e}"))
        })
    }

    fn get_info(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<Info> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        if let Some(se) = se {
            let e = c.element(se)?;
            return Ok(Info::Element(c.record(Some(se), &e)));
        }
        let info: ArrayInfo = c.get("info", json!({}))?;
        let mut out = ss.clone();
        let elsewhere = info.tgt.as_ref().and_then(|t| t.elsewhere());
        let tgt = match &info.tgt {
            Some(t) => format!(
                "exported by tgt {} (tgtd control port {}, portal {}, {})",
                t.version.as_deref().unwrap_or("(version unknown)"),
                t.control_port,
                t.portal,
                match (&elsewhere, t.running) {
                    (Some(other), _) => format!("running, but listening on {other}"),
                    (None, true) => "running".into(),
                    (None, false) => "NOT running".into(),
                }
            ),
            None => "not exported (no tgt_control)".into(),
        };
        let fs: Vec<String> = info
            .pools
            .iter()
            .map(|p| {
                format!(
                    "{} on {} at {} ({})",
                    p.name,
                    p.fs,
                    p.path.display(),
                    if p.reflink { "reflink" } else { "no reflink" }
                )
            })
            .collect();
        out.storage_desc = Field::Value(format!(
            "spindle Linux software array {}; {}; pools: {}; targets {}:<group>",
            info.array_id,
            tgt,
            fs.join(", "),
            info.iqn_prefix
        ));
        let running = info.tgt.as_ref().is_some_and(|t| t.running);
        out.status = Field::Value(match (running, elsewhere) {
            (false, _) => "DEGRADED: tgtd is not running".into(),
            (true, Some(other)) => format!(
                "DEGRADED: tgtd listens on {other}, not on the configured portal {}",
                info.tgt.as_ref().map(|t| t.portal.as_str()).unwrap_or_default()
            ),
            (true, None) => info.status.clone(),
        });
        let n = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        out.total_sz = Field::Value(n(info.total));
        out.used_sz = Field::Value(n(info.used));
        out.free_sz = Field::Value(n(info.free));
        out.alloc_sz = Field::Value(n(info.alloc));
        out.vol_groups = Field::Value(info.pools.iter().map(|p| p.to_vol_group()).collect());
        Ok(Info::Server(out))
    }

    fn get_storage_names(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Vec<String>> {
        Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        Ok(Vec::new())
    }

    fn get_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        Ok(groups_of(c.get("groups", json!({ "uuid": uuid }))?))
    }

    fn create_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grps: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let specs: Vec<Value> = access_grps
            .iter()
            .map(|g| {
                let mut spec = json!({
                    "name": group_name(g),
                    "entries": g.grp_entries.value().cloned().unwrap_or_default(),
                });
                if let Some(m) = g.grp_modes.value() {
                    spec["modes"] = json!(m);
                }
                spec
            })
            .collect();
        let out = groups_with_extras(
            c.get("group-create", json!({ "groups": specs }))?,
            ss,
            access_grps,
            None,
        );
        c.log(format!(
            "created access group(s) {}",
            access_grps.iter().map(group_name).collect::<Vec<_>>().join(", ")
        ));
        Ok(out)
    }

    fn remove_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grps: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let names: Vec<String> = access_grps.iter().map(group_name).collect();
        let out = groups_with_extras(c.get("group-remove", json!({ "names": names }))?, ss, &[], None);
        c.log(format!("removed access group(s) {}", names.join(", ")));
        Ok(out)
    }

    fn rename_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        new_access_grp_name: &str,
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        Ok(groups_with_extras(
            c.get(
                "group-rename",
                json!({"name": access_grp_name, "new_name": new_access_grp_name}),
            )?,
            ss,
            &[],
            Some((access_grp_name, new_access_grp_name)),
        ))
    }

    fn add_to_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        grp_entries: &[String],
    ) -> PluginResult<AccessGrp> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let g: Group = c.get(
            "group-add",
            json!({"name": access_grp_name, "entries": grp_entries}),
        )?;
        Ok(groups_with_extras(vec![g], ss, &[], None).remove(0))
    }

    fn remove_from_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        grp_entries: &[String],
    ) -> PluginResult<AccessGrp> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let g: Group = c.get(
            "group-remove-entries",
            json!({"name": access_grp_name, "entries": grp_entries}),
        )?;
        Ok(groups_with_extras(vec![g], ss, &[], None).remove(0))
    }

    fn discover(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<SsRecord> {
        let c = Call::new(host, ss, ExceptionKind::TargetDiscoveryEx)?;
        let info: ArrayInfo = c.get("info", json!({}))?;
        let mut out = ss.clone();
        out.storage_id = Field::Value(info.targets);
        Ok(out)
    }

    fn start(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        // The array side of a start: tgtd runs and serves every target; each target the
        // record names must be one of them.
        let c = Call::new(host, ss, ExceptionKind::LoginFailedEx)?;
        let report: crate::tgt::SyncReport = c
            .get("export-sync", json!({}))
            .map_err(|e| PluginException::new(ExceptionKind::LoginFailedEx, e.message))?;
        let wanted = ss.storage_id.value().cloned().unwrap_or_default();
        let missing: Vec<&String> = wanted.iter().filter(|t| !report.tids.contains_key(*t)).collect();
        if !missing.is_empty() {
            return Err(PluginException::new(
                ExceptionKind::LoginFailedEx,
                format!(
                    "the array serves no target {}; run discover for the current list",
                    missing.iter().map(|t| shown(t)).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        c.log(format!(
            "tgtd serves {} target(s) at {}",
            report.tids.len(),
            report.portal
        ));
        Ok(())
    }

    fn stop(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::LogoutFailedEx)?;
        c.log("the Linux array plug-in holds no iSCSI sessions or multipath devices on this host; nothing to stop".into());
        Ok(())
    }

    fn refresh(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::RefreshFailedEx)?;
        let report: crate::tgt::SyncReport = c
            .get("export-sync", json!({}))
            .map_err(|e| PluginException::new(ExceptionKind::RefreshFailedEx, e.message))?;
        // The refresh compares tgtd with the array's records: anything it had to correct was
        // changed behind the array's back (or tgtd died), which an administrator must hear of.
        match report.corrections() {
            None => c.log("tgtd serves the array's exports as recorded".into()),
            Some(what) => c.host.log(LogLevel::Warning, &what),
        }
        Ok(())
    }

    fn list(&self, host: &dyn Host, ss: &SsRecord, se_type: &[SeType]) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss, ExceptionKind::ListFailedEx)?;
        let types: Vec<SeType> = se_type.iter().copied().filter(|t| !t.is_snapshot()).collect();
        let v: Vec<Element> = c.get("list", json!({ "types": types }))?;
        Ok(c.records(&v))
    }

    fn update_se_records(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se_records: &[SeRecord],
        append_allowed: bool,
    ) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss, ExceptionKind::ListFailedEx)?;
        let mut all: Vec<Element> = c.get("list", json!({"types": [SeType::Lun, SeType::SnapClone]}))?;
        all.extend(c.get::<Vec<Element>>("snapshots", json!({}))?);
        let find = |r: &SeRecord| -> Option<usize> {
            let uuid = r.uuid.value().filter(|u| !u.is_empty());
            let p83 = r.page83_id.value().filter(|p| !p.is_empty());
            let name = r.name.value().filter(|n| !n.is_empty());
            all.iter().position(|e| {
                if uuid.is_some() || p83.is_some() {
                    uuid == Some(&e.uuid) || p83 == Some(&e.page83_id)
                } else {
                    name == Some(&e.name)
                }
            })
        };
        let mut seen = Vec::new();
        let mut out = Vec::with_capacity(se_records.len());
        for rec in se_records {
            match find(rec) {
                Some(i) => {
                    seen.push(i);
                    let mut r = c.record(Some(rec), &all[i]);
                    r.path = Field::Value(local_paths(host, &all[i].page83_id));
                    out.push(r);
                }
                None => {
                    let mut r = rec.clone();
                    r.state = Field::Value(SeState::Unknown);
                    r.status = Field::Value("not found on the array".into());
                    out.push(r);
                }
            }
        }
        if append_allowed {
            for (i, e) in all.iter().enumerate() {
                if !seen.contains(&i) && e.se_type != SeType::Snap {
                    let mut r = c.record(None, e);
                    r.path = Field::Value(local_paths(host, &e.page83_id));
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    fn get_status(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<String> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        c.get("status", json!({ "uuid": uuid }))
    }

    fn online(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        c.send("online", json!({ "uuid": c.uuid_of(se)? }))?;
        c.log(format!("{} is online", name_of(se)));
        Ok(())
    }

    fn offline(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        c.send("offline", json!({ "uuid": c.uuid_of(se)? }))?;
        c.log(format!("{} is offline", name_of(se)));
        Ok(())
    }

    fn create(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        thin_provision: bool,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        match se.se_type {
            Field::Value(SeType::Lun) => {}
            Field::Value(other) => {
                return Err(PluginException::invalid_value(format!(
                    "se_type {other} cannot be created by create; it makes LUNType elements"
                )))
            }
            _ => {
                return Err(PluginException::missing_key(
                    "se_type",
                    "se_record has no se_type",
                ))
            }
        }
        let name = se.name.value().cloned().unwrap_or_default();
        let size = se
            .size
            .value()
            .copied()
            .ok_or_else(|| PluginException::missing_key("size", "se_record has no size"))?;
        let pool = match se.vol_group_name.value().filter(|p| !p.is_empty()) {
            Some(p) => p.clone(),
            None => c.cfg().pools.first().map(|p| p.name.clone()).unwrap_or_default(),
        };
        let e: Element = c.get(
            "create",
            json!({"name": name, "pool": pool, "size": size, "thin": thin_provision, "qos": qos_param(qos, Some(se))}),
        )?;
        c.log(format!(
            "created {} LUN {} of {} bytes in pool {}",
            if thin_provision { "thin" } else { "thick" },
            shown(&e.name),
            e.size,
            shown(&e.pool)
        ));
        Ok(c.record(Some(se), &e))
    }

    fn start_present(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        access_grp_names: &[String],
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let e: Element = c.get(
            "present",
            json!({"uuid": c.uuid_of(se)?, "groups": access_grp_names}),
        )?;
        c.log(format!(
            "{} is presented to {}",
            shown(&e.name),
            e.groups.join(", ")
        ));
        Ok(c.record(Some(se), &e))
    }

    fn stop_present(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        access_grp_names: &[String],
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let e: Element = c.get(
            "unpresent",
            json!({"uuid": c.uuid_of(se)?, "groups": access_grp_names}),
        )?;
        Ok(c.record(Some(se), &e))
    }

    fn resize(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord, new_size: i64) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let e: Element = c.get("resize", json!({"uuid": c.uuid_of(se)?, "size": new_size}))?;
        c.log(format!("resized {} to {} bytes", shown(&e.name), e.size));
        Ok(c.record(Some(se), &e))
    }

    fn remove(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        c.send("remove", json!({ "uuid": c.uuid_of(se)? }))?;
        c.log(format!("removed {}", name_of(se)));
        Ok(())
    }

    fn get_clone_limits(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<i64> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        Ok(c.get::<Limits>("limits", json!({ "uuid": uuid }))?.clones)
    }

    fn is_cloneable(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<bool> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        c.get("is-cloneable", json!({ "uuid": c.uuid_of(se)? }))
    }

    fn clone_element(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        dest: Option<&SeRecord>,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::CloneFailedEx)?;
        let e: Element = c.get(
            "clone",
            json!({"uuid": c.uuid_of(se)?, "name": requested_name(dest), "qos": qos_param(qos, dest)}),
        )?;
        c.log(format!("cloned {} into {}", name_of(se), shown(&e.name)));
        Ok(c.record(dest, &e))
    }

    fn is_splittable(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<bool> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        c.get("is-splittable", json!({ "uuid": c.uuid_of(se)? }))
    }

    fn split_clone(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<Option<SeRecord>> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let st: SplitStatus = c.get("split-start", json!({ "uuid": c.uuid_of(se)? }))?;
        let mut r = c.record(Some(se), &st.element);
        match st.progress {
            None => Ok(None),
            Some(p) => {
                r.async_progress = Field::Value(p);
                r.async_handle = Field::Value(st.handle);
                c.log(format!("split of {} started", shown(&st.element.name)));
                Ok(Some(r))
            }
        }
    }

    fn clone_from_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        snap: &SeRecord,
        dest: Option<&SeRecord>,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::CloneFailedEx)?;
        let e: Element = c.get(
            "clone-from-snap",
            json!({
                "uuid": c.uuid_of(se)?,
                "snap": c.uuid_of(snap)?,
                "name": requested_name(dest),
                "qos": qos_param(qos, dest),
            }),
        )?;
        c.log(format!(
            "cloned snapshot {} into {}",
            name_of(snap),
            shown(&e.name)
        ));
        Ok(c.record(dest, &e))
    }

    fn get_current_clones(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss, ExceptionKind::ListFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        let v: Vec<Element> = c.get("clones", json!({ "uuid": uuid }))?;
        Ok(c.records(&v))
    }

    fn get_snap_limits(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<i64> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        Ok(c.get::<Limits>("limits", json!({ "uuid": uuid }))?.snapshots)
    }

    fn is_snapable(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<bool> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        c.get("is-snapable", json!({ "uuid": uuid }))
    }

    fn create_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        snap: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::CreateSnapFailedEx)?;
        let e: Element = c.get(
            "snapshot",
            json!({"uuid": c.uuid_of(se)?, "name": requested_name(snap)}),
        )?;
        c.log(format!("took snapshot {} of {}", shown(&e.name), name_of(se)));
        Ok(c.record(snap, &e))
    }

    fn create_multi_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se_records: &[SeRecord],
        snap: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss, ExceptionKind::CreateSnapFailedEx)?;
        if se_records.is_empty() {
            return Err(PluginException::missing_key(
                "se_records",
                "se_records is empty; name the elements to snapshot",
            ));
        }
        let uuids = se_records
            .iter()
            .map(|r| c.uuid_of(r))
            .collect::<PluginResult<Vec<_>>>()?;
        let e: Element = if uuids.len() == 1 {
            c.get(
                "snapshot",
                json!({"uuid": uuids[0], "name": requested_name(snap)}),
            )?
        } else {
            c.get(
                "multi-snapshot",
                json!({"uuids": uuids, "name": requested_name(snap)}),
            )?
        };
        c.log(format!(
            "took snapshot {} of {} element(s)",
            shown(&e.name),
            se_records.len()
        ));
        Ok(c.record(snap, &e))
    }

    fn is_restorable(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        snap: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<bool> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        c.get("is-restorable", json!({"snap": c.uuid_of(snap)?, "uuid": uuid}))
    }

    fn snap_restore(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        snap: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        c.send("restore", json!({"snap": c.uuid_of(snap)?, "uuid": uuid}))?;
        c.log(format!("restored from snapshot {}", name_of(snap)));
        Ok(())
    }

    fn snap_remove(&self, host: &dyn Host, ss: &SsRecord, snap: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        c.send("snap-remove", json!({ "snap": c.uuid_of(snap)? }))?;
        c.log(format!("removed snapshot {}", name_of(snap)));
        Ok(())
    }

    fn get_current_snaps(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss, ExceptionKind::ListSnapFailedEx)?;
        let uuid = match se {
            Some(se) => Some(c.uuid_of(se)?),
            None => None,
        };
        let v: Vec<Element> = c.get("snapshots", json!({ "uuid": uuid }))?;
        Ok(c.records(&v))
    }

    fn get_qos_list(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Vec<QosVals>> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let v: Vec<QosLevel> = c.get("qos-list", json!({}))?;
        Ok(v.iter().map(QosLevel::to_qos_vals).collect())
    }

    fn set_qos(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord, qos: &str) -> PluginResult<()> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        c.send("set-qos", json!({"uuid": c.uuid_of(se)?, "qos": qos}))?;
        c.log(format!("QoS of {} set to {}", name_of(se), shown(qos)));
        Ok(())
    }

    fn get_async_progress(&self, host: &dyn Host, ss: &SsRecord, some_record: &Value) -> PluginResult<Value> {
        let c = Call::new(host, ss, ExceptionKind::OperationFailedEx)?;
        let rec = SeRecord::from_value(some_record).map_err(|e| {
            PluginException::value_format(e.key().unwrap_or("some_record"), format!("some_record: {e}"))
        })?;
        let handle = rec
            .async_handle
            .value()
            .filter(|h| !h.is_empty())
            .cloned()
            .ok_or_else(|| {
                PluginException::missing_key(
                    "async_handle",
                    "some_record has no async_handle; only splitClone is asynchronous on this array",
                )
            })?;
        let st: SplitStatus = c.get("split-progress", json!({ "handle": handle }))?;
        let mut r = c.record(Some(&rec), &st.element);
        r.async_handle = Field::Value(handle);
        r.async_progress = match st.progress {
            Some(p) => Field::Value(p),
            None => Field::Null,
        };
        if st.progress.is_none() {
            c.log(format!("split of {} finished", shown(&st.element.name)));
        }
        Ok(r.to_value())
    }
}
