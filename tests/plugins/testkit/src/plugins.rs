//! The classes of the test plug-in program, built on `spindle_sdk::serve_raw` so that they can
//! return what the typed API could not express.
//!
//! # Class sets (`--set NAME` in the module's manifest)
//! | set | classes |
//! |---|---|
//! | `default` | [`GOOD`], [`CRASHY`], [`HANGS`], [`POLLUTER`], [`ASYNC`], [`VIOLATOR`] |
//! | `extra` | [`EXTRA`] (behaves like Good) |
//! | `mixed-versions` | [`VERSION_A`] at 1.0.0-1 and [`VERSION_B`] at 2.0.0-1 (a broken module) |
//! | `bad-version` | [`BAD_VERSION`] with `plugin_version` "1.0" |
//! | `crash-at-hello` | none: writes [`HELLO_CRASH_MARKER`] to stderr and exits with status 4 |
//!
//! # `ss_record.extra_info`
//! `key=value` settings separated by `;`:
//! - `elements=N` — `list` returns N LUNs (default 3), each with a `page83_id`;
//! - `reject=1` — `validate` raises InvalidStorageArrayEx;
//! - `delay_ms=N` — every method but `validate` sleeps N ms;
//! - `trace=/abs/file` — every method but `validate` appends `METHOD ENTER_NS EXIT_NS` to the file;
//! - `barrier=/abs/dir;parties=N[;barrier_timeout_ms=T]` — every method but `validate` waits
//!   until N calls have arrived in the directory, and raises OperationFailedEx after T ms
//!   (default 2500) if they do not: a test of concurrency that cannot pass by luck;
//! - `violate=NAME` — selects one of [`violate`]'s contract breaches (Violator only).
//!
//! # Cache keys (per storage server uuid)
//! [`VALIDATE_CALLS`] counts `validate` calls; [`STATUS_CALLS`] counts `getStatus` calls
//! (`refresh` clears it by setting it to None, `stop` clears the whole server).

use serde_json::{json, Map, Value};
use spindle_api::{
    ExceptionKind, Host, LogLevel, PluginException, PluginKind, PluginResult, Requirement, METHODS,
};
use spindle_protocol::ClassDescriptor;
use spindle_sdk::{serve_raw, RawPlugin};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A correct iSCSI Storage Array plug-in.
pub const GOOD: &str = "spindle.test.Good";
/// Exits with status 3 in `getStatus` (after taking a temporary file), aborts (SIGABRT) in
/// `getInfo`.
pub const CRASHY: &str = "spindle.test.Crashy";
/// Sleeps forever in `getStatus` (after taking a temporary file).
pub const HANGS: &str = "spindle.test.Hangs";
/// Prints [`POLLUTION_LINE`] to stdout in `getStatus`.
pub const POLLUTER: &str = "spindle.test.Polluter";
/// `splitClone` and `clone` are asynchronous.
pub const ASYNC: &str = "spindle.test.Async";
/// Breaks one contract rule per `violate=` setting.
pub const VIOLATOR: &str = "spindle.test.Violator";
/// The class of the `extra` set.
pub const EXTRA: &str = "spindle.test.Extra";
/// First class of the `mixed-versions` set.
pub const VERSION_A: &str = "spindle.test.VersionA";
/// Second class of the `mixed-versions` set, at another version.
pub const VERSION_B: &str = "spindle.test.VersionB";
/// The class of the `bad-version` set.
pub const BAD_VERSION: &str = "spindle.test.BadVersion";

/// Every class of the `default` set.
pub const DEFAULT_CLASSES: [&str; 6] = [GOOD, CRASHY, HANGS, POLLUTER, ASYNC, VIOLATOR];

/// `plugin_version` of every well-formed class.
pub const VERSION: &str = "1.0.0-1";
/// `plugin_version` of [`VERSION_B`].
pub const OTHER_VERSION: &str = "2.0.0-1";
/// The malformed `plugin_version` of [`BAD_VERSION`].
pub const MALFORMED_VERSION: &str = "1.0";

/// Crashy writes this to stderr before it exits or aborts.
pub const CRASH_MARKER: &str = "CRASHY-MARKER";
/// Hangs writes this (and `pid=N`) to stderr before it sleeps.
pub const HANG_MARKER: &str = "HANGS-MARKER";
/// What Polluter prints to stdout.
pub const POLLUTION_LINE: &str = "POLLUTER-MARKER: debugging output on stdout";
/// The `crash-at-hello` set writes this to stderr before it exits.
pub const HELLO_CRASH_MARKER: &str = "HELLO-CRASH-MARKER";
/// Crashy and Hangs write this and the path of the temporary file they took to stderr.
pub const TEMP_FILE_MARKER: &str = "TEMP-FILE=";
/// Exit status of Crashy's `getStatus`.
pub const CRASH_STATUS: i32 = 3;
/// Exit status of the `crash-at-hello` set.
pub const HELLO_CRASH_STATUS: i32 = 4;
/// Every class logs this (through `host.log`) at the start of each call.
pub const LOG_PREFIX: &str = "testplugin:";

/// Cache key counting `validate` calls.
pub const VALIDATE_CALLS: &str = "validate_calls";
/// Cache key counting `getStatus` calls.
pub const STATUS_CALLS: &str = "status_calls";
/// How long the counters live in the cache, in seconds.
pub const COUNTER_EXPIRY_SECS: u64 = 600;

/// `violate=` values of the Violator: one broken rule each.
pub mod violate {
    /// `create` changes the se_record's `name` (only if empty).
    pub const UPDATE_RULES: &str = "update_rules";
    /// `getInfo` changes the ss_record's `admin_host` (no update).
    pub const UPDATE_RULES_SS: &str = "update_rules_ss";
    /// `create` returns no `page83_id`.
    pub const NO_PAGE83: &str = "no_page83";
    /// `list` returns element `[1]` without `page83_id`.
    pub const LIST_NO_PAGE83: &str = "list_no_page83";
    /// `getCapabilities` says `snapshot` = YES.
    pub const CAPS_ILLEGAL: &str = "capabilities_illegal";
    /// `getCapabilities` leaves out `max_access_entries`.
    pub const CAPS_MISSING: &str = "capabilities_missing";
    /// `getInfo` raises InvalidStorageArrayEx.
    pub const VALIDATE_ONLY: &str = "validate_only";
    /// `list` returns a SnapType element at `[1]`.
    pub const SNAP_IN_LIST: &str = "snap_in_list";
    /// `getStatus` returns the number 42.
    pub const WRONG_SHAPE: &str = "wrong_shape";
    /// `getInfo(se_record)` returns the element with `size` = "big".
    pub const BAD_RECORD: &str = "bad_record";
    /// `resize` returns `async_progress` although `resize_is_sync` is YES.
    pub const ASYNC_WHEN_SYNC: &str = "async_when_sync";
    /// `getStatus` raises `KeyError`.
    pub const UNKNOWN_EXCEPTION: &str = "unknown_exception";
    /// `getStatus` raises `IPluginException` itself.
    pub const BASE_EXCEPTION: &str = "base_exception";
    /// `getStatus` raises MissingKeyEx without a key.
    pub const KEYLESS: &str = "missing_key_without_key";
    /// `clone` returns `async_progress` 150.
    pub const PROGRESS_RANGE: &str = "progress_range";
}

/// Prefix of a message the Violator reports under the name `KeyError`.
const KEY_ERROR_PREFIX: &str = "KeyError: ";

const SS_EXTRA_INFO_HELP: &str = "Test settings as key=value pairs separated by ';': \
elements=N (list returns N LUNs), reject=1 (validate refuses the array), delay_ms=N, \
trace=/abs/file, barrier=/abs/dir with parties=N and barrier_timeout_ms=T, violate=NAME.";

/// How a class behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Correct in every method.
    Good,
    /// Crashes in `getStatus` (exit 3) and `getInfo` (abort).
    Crashy,
    /// Never answers `getStatus`.
    Hangs,
    /// Prints to stdout in `getStatus`.
    Polluter,
    /// `splitClone` and `clone` run asynchronously.
    Async,
    /// Breaks the rule named by `violate=`.
    Violator,
}

/// One class of the program.
#[derive(Debug, Clone)]
pub struct TestPlugin {
    class: &'static str,
    version: &'static str,
    behaviour: Behaviour,
}

impl TestPlugin {
    /// A class named `class` at `version` behaving as `behaviour`.
    pub fn new(class: &'static str, version: &'static str, behaviour: Behaviour) -> Self {
        TestPlugin {
            class,
            version,
            behaviour,
        }
    }

    /// The ability dict (static: the same for `plugin_ability` and `getCapabilities`).
    pub fn abilities(&self) -> Map<String, Value> {
        let asynchronous = self.behaviour == Behaviour::Async;
        let yes_no = |b: bool| if b { "YES" } else { "NO" };
        let v = json!({
            "snapshot": "ONLINE",
            "custom_snap_name": "YES",
            "snap_is_sync": "YES",
            "clone": "ONLINE",
            "custom_clone_name": "YES",
            "clone_is_sync": yes_no(!matches!(self.behaviour, Behaviour::Async | Behaviour::Violator)),
            "resize": "ONLINE",
            "resize_is_sync": "YES",
            "splitclone": "ONLINE",
            "splitclone_is_sync": yes_no(!asynchronous),
            "splitclone_while_open": "NO",
            "snapclone": "ONLINE",
            "snapclone_is_sync": "YES",
            "require_storage_name": "NO",
            "access_control": "YES",
            "max_access_entries": -1,
        });
        obj(&v)
    }

    fn metadata(&self) -> Value {
        json!({
            "plugin_name": format!("spindle test plug-in ({:?})", self.behaviour),
            "vendor_name": "spindle tests",
            "plugin_version": self.version,
            "plugin_desc": "A plug-in for spindle's own tests; it manages no storage.",
            "ss_extra_info_help": SS_EXTRA_INFO_HELP,
            "se_extra_info_help": Value::Null,
            "storage_types": ["iSCSIStorage"],
            "plugin_ability": Value::Object(self.abilities()),
        })
    }

    fn implemented(&self) -> Vec<String> {
        let mut out: Vec<String> = METHODS
            .iter()
            .filter(|m| m.requirement == Requirement::Required)
            .map(|m| m.name.to_string())
            .collect();
        out.push("refresh".into());
        out.push("stop".into());
        if matches!(self.behaviour, Behaviour::Async | Behaviour::Violator) {
            out.push("getAsyncProgress".into());
        }
        out
    }
}

impl RawPlugin for TestPlugin {
    fn descriptor(&self) -> ClassDescriptor {
        ClassDescriptor {
            class: self.class.to_string(),
            kind: PluginKind::StorageArray,
            metadata: self.metadata(),
            implemented: self.implemented(),
            source: std::env::current_exe().ok().map(|p| p.display().to_string()),
        }
    }

    fn call(&self, host: &dyn Host, method: &str, args: &Map<String, Value>) -> PluginResult<Value> {
        let ss = record(args, "ss_record")?;
        let call = Call {
            host,
            method,
            args,
            uuid: str_of(&ss, "uuid"),
            opts: Opts::parse(&str_of(&ss, "extra_info")),
            ss,
        };
        host.log(
            LogLevel::Info,
            &format!(
                "{LOG_PREFIX} {} {method} on storage server {}",
                self.class, call.uuid
            ),
        );
        if method == "validate" {
            return self.run(&call);
        }
        let enter = now_ns();
        barrier(&call.opts)?;
        if let Some(ms) = call.opts.num("delay_ms") {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let result = self.run(&call);
        if let Some(file) = call.opts.get("trace") {
            trace(file, method, enter, now_ns())?;
        }
        result
    }

    fn raw_exception_name(&self, e: &PluginException) -> Option<String> {
        (self.behaviour == Behaviour::Violator && e.message.starts_with(KEY_ERROR_PREFIX))
            .then(|| "KeyError".to_string())
    }
}

/// One call's inputs.
struct Call<'a> {
    host: &'a dyn Host,
    method: &'a str,
    args: &'a Map<String, Value>,
    ss: Map<String, Value>,
    uuid: String,
    opts: Opts,
}

impl Call<'_> {
    fn rec(&self, name: &str) -> PluginResult<Map<String, Value>> {
        record(self.args, name)
    }

    fn opt_rec(&self, name: &str) -> Option<Map<String, Value>> {
        self.args.get(name).and_then(Value::as_object).cloned()
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.args
            .get(name)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default()
    }

    fn string(&self, name: &str) -> Option<String> {
        self.args.get(name).and_then(Value::as_str).map(String::from)
    }

    /// Adds one to a counter in the cache and returns the new count.
    fn bump(&self, key: &str) -> PluginResult<u64> {
        let n = self.count(key)? + 1;
        self.host
            .cache_set(&self.uuid, key, Some(&n.to_string()), Some(COUNTER_EXPIRY_SECS))?;
        Ok(n)
    }

    fn count(&self, key: &str) -> PluginResult<u64> {
        Ok(self
            .host
            .cache_get(&self.uuid, key)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }
}

/// `extra_info` settings.
#[derive(Debug, Default, Clone)]
struct Opts(BTreeMap<String, String>);

impl Opts {
    fn parse(s: &str) -> Self {
        Opts(
            s.split(';')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    fn num(&self, k: &str) -> Option<u64> {
        self.get(k).and_then(|v| v.parse().ok())
    }
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn str_of(m: &Map<String, Value>, k: &str) -> String {
    m.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn record(args: &Map<String, Value>, name: &str) -> PluginResult<Map<String, Value>> {
    args.get(name)
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| PluginException::missing_key(name, format!("the parameter {name} is required")))
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn io_failed(what: &str, e: std::io::Error) -> PluginException {
    PluginException::operation_failed(format!("{what}: {e}"))
}

fn trace(file: &str, method: &str, enter: u128, exit: u128) -> PluginResult<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| io_failed(file, e))?;
    // One write per line: O_APPEND keeps lines of concurrent processes whole.
    f.write_all(format!("{method} {enter} {exit}\n").as_bytes())
        .map_err(|e| io_failed(file, e))
}

fn barrier(opts: &Opts) -> PluginResult<()> {
    let Some(dir) = opts.get("barrier") else {
        return Ok(());
    };
    let parties = opts.num("parties").unwrap_or(2) as usize;
    let timeout = Duration::from_millis(opts.num("barrier_timeout_ms").unwrap_or(2500));
    std::fs::create_dir_all(dir).map_err(|e| io_failed(dir, e))?;
    let me = Path::new(dir).join(format!("arrived-{}", std::process::id()));
    std::fs::write(&me, b"").map_err(|e| io_failed(dir, e))?;
    let started = Instant::now();
    loop {
        let arrived = std::fs::read_dir(dir).map_err(|e| io_failed(dir, e))?.count();
        if arrived >= parties {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(PluginException::operation_failed(format!(
                "barrier {dir}: only {arrived} of {parties} calls arrived within {} ms; the calls did not run concurrently",
                timeout.as_millis()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A stable 64-bit FNV-1a hash, for ids derived from names.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A page 83 id in the form `makeMPPage83FromRawPage83` gives an NAA-6 designator.
pub fn page83_for(ss_uuid: &str, name: &str) -> String {
    format!(
        "36001405{:016x}{:08x}",
        fnv(&format!("{ss_uuid}/{name}")),
        fnv(name) as u32
    )
}

fn element(ss_uuid: &str, name: &str, se_type: &str, size: i64) -> Map<String, Value> {
    obj(&json!({
        "se_type": se_type,
        "ss_uuid": ss_uuid,
        "name": name,
        "uuid": format!("se-{:016x}", fnv(&format!("{ss_uuid}/{name}"))),
        "page83_id": page83_for(ss_uuid, name),
        "size": size,
        "status": "ONLINE",
        "state": "ONLINE",
        "access_grp_names": [],
    }))
}

fn int_of(m: &Map<String, Value>, k: &str) -> i64 {
    m.get(k).and_then(Value::as_i64).unwrap_or(0)
}

fn access_grps(ss: &Map<String, Value>) -> Vec<Value> {
    ss.get("access_grps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn grp_name(g: &Value) -> &str {
    g.get("grp_name").and_then(Value::as_str).unwrap_or_default()
}

impl TestPlugin {
    fn run(&self, c: &Call) -> PluginResult<Value> {
        let special = match self.behaviour {
            Behaviour::Good => None,
            Behaviour::Crashy => crashy(c),
            Behaviour::Hangs => hangs(c),
            Behaviour::Polluter => polluter(c),
            Behaviour::Async => asynchronous(c),
            Behaviour::Violator => self.violator(c),
        };
        match special {
            Some(r) => r,
            None => self.good(c),
        }
    }

    /// The correct behaviour of every method.
    fn good(&self, c: &Call) -> PluginResult<Value> {
        let ss_uuid = c.uuid.as_str();
        match c.method {
            "validate" => {
                c.bump(VALIDATE_CALLS)?;
                if str_of(&c.ss, "storage_type") != "iSCSIStorage" {
                    return Err(PluginException::new(
                        ExceptionKind::InvalidStorageArrayEx,
                        "this plug-in serves iSCSIStorage only",
                    ));
                }
                if c.opts.get("reject").is_some() {
                    return Err(PluginException::new(
                        ExceptionKind::InvalidStorageArrayEx,
                        "extra_info asks validate to refuse this array (reject=1)",
                    ));
                }
                Ok(Value::Null)
            }
            "getCapabilities" => Ok(Value::Object(self.abilities())),
            "getInfo" => match c.opt_rec("se_record") {
                Some(mut se) => {
                    se.insert("status".into(), json!("ONLINE"));
                    se.insert("state".into(), json!("ONLINE"));
                    Ok(Value::Object(se))
                }
                None => {
                    let mut ss = c.ss.clone();
                    ss.insert("status".into(), json!("ONLINE"));
                    ss.insert(
                        "storage_desc".into(),
                        json!("spindle test array (stores nothing)"),
                    );
                    ss.insert("total_sz".into(), json!(1_i64 << 40));
                    ss.insert("used_sz".into(), json!(0));
                    ss.insert("free_sz".into(), json!(1_i64 << 40));
                    Ok(Value::Object(ss))
                }
            },
            "getStorageNames" => {
                let path = c.host.temp_file()?;
                let text = format!("written by {} during getStorageNames", self.class);
                std::fs::write(&path, &text).map_err(|e| io_failed("writing the temporary file", e))?;
                let back =
                    std::fs::read_to_string(&path).map_err(|e| io_failed("reading the temporary file", e))?;
                if back != text {
                    return Err(PluginException::operation_failed(
                        "the temporary file lost what was written",
                    ));
                }
                Ok(json!([path.display().to_string()]))
            }
            "getAccessGroups" => Ok(Value::Array(access_grps(&c.ss))),
            "createAccessGroups" => {
                let mut grps = access_grps(&c.ss);
                for g in c
                    .args
                    .get("access_grps")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    if !grps.iter().any(|e| grp_name(e) == grp_name(&g)) {
                        grps.push(g);
                    }
                }
                Ok(Value::Array(grps))
            }
            "removeAccessGroups" => {
                let gone: Vec<Value> = c
                    .args
                    .get("access_grps")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let mut grps = access_grps(&c.ss);
                grps.retain(|g| !gone.iter().any(|x| grp_name(x) == grp_name(g)));
                Ok(Value::Array(grps))
            }
            "renameAccessGroup" => {
                let from = c.string("access_grp_name").unwrap_or_default();
                let to = c.string("new_access_grp_name").unwrap_or_default();
                let mut grps = access_grps(&c.ss);
                for g in &mut grps {
                    if grp_name(g) == from {
                        g["grp_name"] = json!(to);
                    }
                }
                Ok(Value::Array(grps))
            }
            "addToAccessGroup" | "removeFromAccessGroup" => {
                let name = c.string("access_grp_name").unwrap_or_default();
                let entries = c.strings("grp_entries");
                let grps = access_grps(&c.ss);
                let mut current: Vec<String> = grps
                    .iter()
                    .find(|g| grp_name(g) == name)
                    .and_then(|g| g.get("grp_entries"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                if c.method == "addToAccessGroup" {
                    current.extend(
                        entries
                            .into_iter()
                            .filter(|e| !current.contains(e))
                            .collect::<Vec<_>>(),
                    );
                } else {
                    current.retain(|e| !entries.contains(e));
                }
                Ok(json!({"grp_name": name, "grp_entries": current}))
            }
            "refresh" => {
                c.host.cache_set(ss_uuid, STATUS_CALLS, None, None)?;
                Ok(Value::Null)
            }
            "stop" => {
                c.host.cache_clear(ss_uuid)?;
                Ok(Value::Null)
            }
            "list" => {
                let n = c.opts.num("elements").unwrap_or(3);
                Ok(Value::Array(
                    (0..n)
                        .map(|i| Value::Object(element(ss_uuid, &format!("lun-{i}"), "LUNType", 1 << 30)))
                        .collect(),
                ))
            }
            "getStatus" => match c.opt_rec("se_record") {
                Some(se) => Ok(json!(se
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("ONLINE"))),
                None => {
                    let calls = c.bump(STATUS_CALLS)?;
                    let validated = c.count(VALIDATE_CALLS)?;
                    Ok(json!(format!("ONLINE calls={calls} validated={validated}")))
                }
            },
            "online" | "offline" | "remove" | "snapRestore" | "snapRemove" | "setQoS" | "splitClone" => {
                Ok(Value::Null)
            }
            "create" => {
                let se = c.rec("se_record")?;
                Ok(Value::Object(created(c, &se)))
            }
            "startPresent" | "stopPresent" => {
                let mut se = c.rec("se_record")?;
                let given = c.strings("access_grp_names");
                let mut names: Vec<String> = se
                    .get("access_grp_names")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                if c.method == "startPresent" {
                    names.extend(
                        given
                            .into_iter()
                            .filter(|g| !names.contains(g))
                            .collect::<Vec<_>>(),
                    );
                } else {
                    names.retain(|n| !given.contains(n));
                }
                se.insert("access_grp_names".into(), json!(names));
                Ok(Value::Object(se))
            }
            "resize" => {
                let new_size = c.args.get("new_size").and_then(Value::as_i64).unwrap_or(0);
                if new_size <= 0 {
                    return Err(PluginException::value_format(
                        "new_size",
                        format!("new_size must be a positive number of bytes, not {new_size}"),
                    ));
                }
                let mut se = c.rec("se_record")?;
                se.insert("size".into(), json!(new_size));
                Ok(Value::Object(se))
            }
            "getCloneLimits" | "getSnapLimits" => Ok(json!(-1)),
            "isCloneable" | "isSplittable" | "isSnapable" | "isRestorable" => Ok(json!(true)),
            "clone" => Ok(Value::Object(cloned(c, "se_record")?)),
            "cloneFromSnap" => Ok(Value::Object(cloned(c, "snap_se_record")?)),
            "getCurrentClones" | "getCurrentSnaps" => Ok(json!([])),
            "createSnap" | "createMultiSnap" => {
                let base = match c.method {
                    "createSnap" => c.rec("se_record")?,
                    _ => c
                        .args
                        .get("se_records")
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .map(obj)
                        .unwrap_or_default(),
                };
                let given = c.opt_rec("snap_se_record").unwrap_or_default();
                let name = match str_of(&given, "name") {
                    n if n.is_empty() => format!("{}-snap", str_of(&base, "name")),
                    n => n,
                };
                let mut snap = element(ss_uuid, &name, "SnapType", int_of(&base, "size"));
                for (k, v) in given {
                    if !v.is_null() && !snap.contains_key(&k) {
                        snap.insert(k, v);
                    }
                }
                Ok(Value::Object(snap))
            }
            "getQoSList" => Ok(json!([
                {"priority": 0, "value": "gold", "description": "fastest"},
                {"priority": 1, "value": "bronze"},
            ])),
            other => Err(PluginException::no_such_operation(format!(
                "{} has no method {other}",
                self.class
            ))),
        }
    }

    fn violator(&self, c: &Call) -> Option<PluginResult<Value>> {
        use violate::*;
        let which = c.opts.get("violate")?;
        let out = match (which, c.method) {
            (UPDATE_RULES, "create") => {
                let se = c.rec("se_record").ok()?;
                let mut r = created(c, &se);
                r.insert("name".into(), json!("renamed-by-plugin"));
                Ok(Value::Object(r))
            }
            (UPDATE_RULES_SS, "getInfo") if c.opt_rec("se_record").is_none() => {
                let mut ss = c.ss.clone();
                ss.insert("status".into(), json!("ONLINE"));
                ss.insert("admin_host".into(), json!("203.0.113.99"));
                Ok(Value::Object(ss))
            }
            (NO_PAGE83, "create") => {
                let se = c.rec("se_record").ok()?;
                let mut r = created(c, &se);
                r.remove("page83_id");
                Ok(Value::Object(r))
            }
            (LIST_NO_PAGE83 | SNAP_IN_LIST, "list") => {
                let mut items: Vec<Value> = (0..3)
                    .map(|i| Value::Object(element(&c.uuid, &format!("lun-{i}"), "LUNType", 1 << 30)))
                    .collect();
                if which == LIST_NO_PAGE83 {
                    if let Some(m) = items[1].as_object_mut() {
                        m.remove("page83_id");
                    }
                } else {
                    items[1]["se_type"] = json!("SnapType");
                }
                Ok(Value::Array(items))
            }
            (CAPS_ILLEGAL, "getCapabilities") => {
                let mut caps = self.abilities();
                caps.insert("snapshot".into(), json!("YES"));
                Ok(Value::Object(caps))
            }
            (CAPS_MISSING, "getCapabilities") => {
                let mut caps = self.abilities();
                caps.remove("max_access_entries");
                Ok(Value::Object(caps))
            }
            (VALIDATE_ONLY, "getInfo") => Err(PluginException::new(
                ExceptionKind::InvalidStorageArrayEx,
                "getInfo decided the array is invalid",
            )),
            (WRONG_SHAPE, "getStatus") => Ok(json!(42)),
            (BAD_RECORD, "getInfo") => {
                let mut se = c.opt_rec("se_record")?;
                se.insert("size".into(), json!("big"));
                Ok(Value::Object(se))
            }
            (ASYNC_WHEN_SYNC, "resize") => {
                let mut se = c.rec("se_record").ok()?;
                se.insert(
                    "size".into(),
                    c.args.get("new_size").cloned().unwrap_or(Value::Null),
                );
                se.insert("async_progress".into(), json!(10));
                se.insert("async_handle".into(), json!("resize:1"));
                Ok(Value::Object(se))
            }
            (UNKNOWN_EXCEPTION, "getStatus") => Err(PluginException::operation_failed(format!(
                "{KEY_ERROR_PREFIX}'size'"
            ))),
            (BASE_EXCEPTION, "getStatus") => Err(PluginException::new(
                ExceptionKind::IPluginException,
                "something went wrong",
            )),
            (KEYLESS, "getStatus") => Err(PluginException {
                kind: ExceptionKind::MissingKeyEx,
                message: "a key is missing".into(),
                key: None,
            }),
            (PROGRESS_RANGE, "clone") => {
                let mut r = cloned(c, "se_record").ok()?;
                r.insert("async_progress".into(), json!(150));
                r.insert("async_handle".into(), json!("clone:0"));
                Ok(Value::Object(r))
            }
            _ => return None,
        };
        Some(out)
    }
}

/// What `create` returns for `se`: the input completed.
fn created(c: &Call, se: &Map<String, Value>) -> Map<String, Value> {
    let name = str_of(se, "name");
    let mut r = se.clone();
    let base = element(&c.uuid, &name, "LUNType", int_of(se, "size"));
    for k in ["uuid", "page83_id", "status", "state", "access_grp_names"] {
        if let Some(v) = base.get(k) {
            r.insert(k.into(), v.clone());
        }
    }
    if let Some(q) = c.string("qos") {
        r.insert("qos".into(), json!(q));
    }
    r
}

/// What `clone` / `cloneFromSnap` returns: a new element from `source`, named after
/// `dest_se_record` when one is given.
fn cloned(c: &Call, source: &str) -> PluginResult<Map<String, Value>> {
    let src = c.rec(source)?;
    let dest = c.opt_rec("dest_se_record").unwrap_or_default();
    let name = match str_of(&dest, "name") {
        n if n.is_empty() => format!("{}-clone", str_of(&src, "name")),
        n => n,
    };
    let mut r = dest.clone();
    for (k, v) in element(&c.uuid, &name, "LUNType", int_of(&src, "size")) {
        // Keep what the caller put in dest_se_record (its name, ss_uuid) as it was.
        if dest.get(&k).is_none_or(|d| d.is_null() || d == "") {
            r.insert(k, v);
        }
    }
    Ok(r)
}

/// Takes a temporary file and writes to it, so that a test can see it removed after a fault.
/// Its path goes to stderr as `TEMP_FILE_MARKER` + path.
fn leave_temp_file(c: &Call) {
    match c.host.temp_file() {
        Ok(path) => {
            let _ = std::fs::write(&path, "left behind by a failing call");
            eprintln!("{TEMP_FILE_MARKER}{}", path.display());
        }
        Err(e) => eprintln!("no temporary file: {e}"),
    }
}

fn crashy(c: &Call) -> Option<PluginResult<Value>> {
    match c.method {
        "getStatus" => {
            leave_temp_file(c);
            eprintln!("{CRASH_MARKER}: giving up in getStatus with exit status {CRASH_STATUS}");
            std::process::exit(CRASH_STATUS);
        }
        "getInfo" => {
            eprintln!("{CRASH_MARKER}: aborting in getInfo");
            std::process::abort();
        }
        _ => None,
    }
}

fn hangs(c: &Call) -> Option<PluginResult<Value>> {
    if c.method != "getStatus" {
        return None;
    }
    leave_temp_file(c);
    eprintln!(
        "{HANG_MARKER}: pid={} sleeping forever in getStatus",
        std::process::id()
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn polluter(c: &Call) -> Option<PluginResult<Value>> {
    if c.method != "getStatus" {
        return None;
    }
    println!("{POLLUTION_LINE}");
    Some(Ok(json!("ONLINE")))
}

/// Handle prefix of an asynchronous split; progress lives in the cache under `progress:HANDLE`.
const SPLIT_HANDLE: &str = "split:";
/// Handle prefix of an asynchronous clone; progress lives in the handle itself: `clone:STEP`.
const CLONE_HANDLE: &str = "clone:";
/// Progress added by each getAsyncProgress of a split.
pub const SPLIT_STEP: i64 = 25;

fn asynchronous(c: &Call) -> Option<PluginResult<Value>> {
    let out = match c.method {
        "splitClone" => c.rec("se_record").and_then(|mut se| {
            let handle = format!("{SPLIT_HANDLE}{}", str_of(&se, "uuid"));
            c.host.cache_set(
                &c.uuid,
                &format!("progress:{handle}"),
                Some("0"),
                Some(COUNTER_EXPIRY_SECS),
            )?;
            se.insert("async_progress".into(), json!(0));
            se.insert("async_handle".into(), json!(handle));
            Ok(Value::Object(se))
        }),
        "clone" => cloned(c, "se_record").map(|mut r| {
            // page83_id is known only when the copy is done.
            r.remove("page83_id");
            r.insert("async_progress".into(), json!(-1));
            r.insert("async_handle".into(), json!(format!("{CLONE_HANDLE}0")));
            Value::Object(r)
        }),
        "getAsyncProgress" => progress(c),
        _ => return None,
    };
    Some(out)
}

fn progress(c: &Call) -> PluginResult<Value> {
    let mut r = c.rec("some_record")?;
    let handle = str_of(&r, "async_handle");
    if handle.starts_with(SPLIT_HANDLE) {
        let key = format!("progress:{handle}");
        let done: i64 = c
            .host
            .cache_get(&c.uuid, &key)?
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                PluginException::operation_failed(format!("no progress is recorded for {handle}"))
            })?;
        if done >= 100 {
            c.host.cache_set(&c.uuid, &key, None, None)?;
            r.insert("async_progress".into(), Value::Null);
        } else {
            let next = (done + SPLIT_STEP).min(100);
            c.host
                .cache_set(&c.uuid, &key, Some(&next.to_string()), Some(COUNTER_EXPIRY_SECS))?;
            r.insert("async_progress".into(), json!(next));
        }
        Ok(Value::Object(r))
    } else if let Some(step) = handle
        .strip_prefix(CLONE_HANDLE)
        .and_then(|s| s.parse::<u32>().ok())
    {
        if step == 0 {
            r.insert("async_progress".into(), json!(50));
            r.insert("async_handle".into(), json!(format!("{CLONE_HANDLE}1")));
        } else {
            let name = str_of(&r, "name");
            r.insert("page83_id".into(), json!(page83_for(&c.uuid, &name)));
            r.insert("async_progress".into(), Value::Null);
        }
        Ok(Value::Object(r))
    } else {
        Err(PluginException::value_format(
            "async_handle",
            format!("'{handle}' is not a handle this plug-in gave out"),
        ))
    }
}

fn classes(set: &str) -> Option<Vec<Box<dyn RawPlugin>>> {
    let p = |class, version, b| Box::new(TestPlugin::new(class, version, b)) as Box<dyn RawPlugin>;
    Some(match set {
        "default" => vec![
            p(GOOD, VERSION, Behaviour::Good),
            p(CRASHY, VERSION, Behaviour::Crashy),
            p(HANGS, VERSION, Behaviour::Hangs),
            p(POLLUTER, VERSION, Behaviour::Polluter),
            p(ASYNC, VERSION, Behaviour::Async),
            p(VIOLATOR, VERSION, Behaviour::Violator),
        ],
        "extra" => vec![p(EXTRA, VERSION, Behaviour::Good)],
        "mixed-versions" => vec![
            p(VERSION_A, VERSION, Behaviour::Good),
            p(VERSION_B, OTHER_VERSION, Behaviour::Good),
        ],
        "bad-version" => vec![p(BAD_VERSION, MALFORMED_VERSION, Behaviour::Good)],
        _ => return None,
    })
}

/// The program's entry point: `spindle-testplugin [--set NAME]`.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let set = args
        .iter()
        .position(|a| a == "--set")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or("default");
    if set == "crash-at-hello" {
        eprintln!("{HELLO_CRASH_MARKER}: this module cannot start");
        std::process::exit(HELLO_CRASH_STATUS);
    }
    match classes(set) {
        Some(plugins) => serve_raw(plugins),
        None => {
            eprintln!("spindle-testplugin: unknown --set {set}; known: default, extra, mixed-versions, bad-version, crash-at-hello");
            ExitCode::from(64)
        }
    }
}
