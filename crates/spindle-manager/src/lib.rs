//! The plug-in manager: finds plug-ins, hosts them (in process, or in a fresh child process per
//! call), gives them the cache, the logger and temporary files, enforces the guides' contract
//! on every call, and drives asynchronous operations to completion.
//!
//! Invariants kept here:
//! - a plug-in is never given an ss_record that has not passed its `validate`;
//! - a caller never sees `async_handle` / `async_progress`: asynchronous operations are driven
//!   to completion (with progress events) before a call returns;
//! - calls that change a storage server are serialised per storage server (by uuid); read-only
//!   calls run concurrently;
//! - bad input is refused before it reaches a plug-in, with the guides' exception naming the
//!   parameter or key;
//! - every contract violation names the plug-in, the method, the field and the rule.

pub mod cache;
pub mod contract;
pub mod discovery;
pub mod error;
pub mod generic;
pub mod process;
pub mod python;
pub mod services;

pub use cache::{Cache, CacheStats};
pub use contract::Mode;
pub use discovery::{Discovered, Hosting, ModuleRuntime, Origin, PluginEntry, PythonSetup, Skipped};
pub use error::{CallError, ContractFailure, ManagerError, Rule, Violation};

use process::{Fault, Raised};
use serde::Serialize;
use serde_json::{Map, Value};
use services::{CallServices, CallTag};
use spindle_api::{
    dispatch, Args, ExceptionKind, Method, MethodSpec, ParamKind, PluginException, PluginId, PluginVersion,
    RecordKind, Requirement, SsRecord, StorageArrayPlugin, StorageType, UpdateRule,
};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, RwLock};

/// The log target of the warnings a plug-in's side reports during a call (e.g. it printed to
/// standard output). They are also returned in [`CallOutcome::warnings`], so a program that
/// shows those itself may turn this target off.
pub const WARNING_TARGET: &str = "spindle::plugin_warning";

/// How the manager runs.
#[derive(Clone)]
pub struct ManagerConfig {
    /// Plug-in roots, searched in order.
    pub roots: Vec<PathBuf>,
    /// Plug-ins compiled into the program.
    pub builtins: Vec<Arc<dyn StorageArrayPlugin>>,
    /// Strict (fail on any violation) or lenient (log and repair).
    pub mode: Mode,
    /// Longest a single plug-in call may take before its process is killed.
    pub call_deadline: Duration,
    /// Longest a module may take to describe itself.
    pub discovery_deadline: Duration,
    /// Pause between getAsyncProgress calls.
    pub async_poll_interval: Duration,
    /// Longest the manager drives one asynchronous operation (from the call that started it
    /// to the getAsyncProgress that reports it done); past it the call fails with
    /// OperationFailedEx naming the method and the last progress.
    pub async_deadline: Duration,
    /// Longest an asynchronous operation may go without its progress changing; past it the
    /// call fails the same way (a plug-in whose getAsyncProgress keeps answering 50).
    pub async_stall: Duration,
    /// How to run Python modules; `None` uses `SPINDLE_PYTHON` (or `python3`) and the Python
    /// package built into spindle.
    pub python: Option<PythonSetup>,
    /// `IPlugin.dev_path_prefix`.
    pub dev_path_prefix: String,
    /// Where per-call temporary directories go; `None` uses a fresh directory under the
    /// system's temporary directory.
    pub temp_root: Option<PathBuf>,
}

impl std::fmt::Debug for ManagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerConfig")
            .field("roots", &self.roots)
            .field(
                "builtins",
                &self.builtins.iter().map(|b| b.class_name()).collect::<Vec<_>>(),
            )
            .field("mode", &self.mode)
            .field("call_deadline", &self.call_deadline)
            .field("async_deadline", &self.async_deadline)
            .field("async_stall", &self.async_stall)
            .finish_non_exhaustive()
    }
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            roots: Vec::new(),
            builtins: Vec::new(),
            mode: Mode::Strict,
            call_deadline: Duration::from_secs(300),
            discovery_deadline: Duration::from_secs(30),
            async_poll_interval: Duration::from_secs(1),
            async_deadline: Duration::from_secs(24 * 3600),
            async_stall: Duration::from_secs(600),
            python: None,
            dev_path_prefix: "/dev/mapper/".into(),
            temp_root: None,
        }
    }
}

/// Progress of an asynchronous operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgressEvent {
    /// The call that started the operation.
    pub call_id: String,
    /// `class@version`.
    pub plugin: String,
    /// The method that started it.
    pub method: &'static str,
    /// -1 (unknown), 0..100, or `None` when done.
    pub progress: Option<i64>,
}

/// Per-call options.
#[derive(Debug, Default)]
pub struct CallOptions {
    /// Receives progress events of an asynchronous operation.
    pub progress: Option<mpsc::UnboundedSender<ProgressEvent>>,
    /// Use this call id (e.g. one that came with an HTTP request) instead of a fresh one.
    pub call_id: Option<String>,
    /// Return an asynchronous operation's first record as the plug-in gave it (with
    /// `async_progress` and `async_handle`) instead of polling it to the end. The caller then
    /// drives it with `getAsyncProgress` itself — how a server keeps a job alive across its
    /// own restart. The record is checked for shape but its async fields are left in place.
    pub detach_async: bool,
}

/// A successful call.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutcome {
    /// What the method returned (asynchronous fields removed).
    pub value: Value,
    /// The call id used in the logs.
    pub call_id: String,
    /// Contract warnings (e.g. a Python plug-in printed to stdout).
    pub warnings: Vec<String>,
    /// What the plug-in's side reported it printed to standard output during the call (its
    /// runner kept it off the protocol channel); each is among `warnings` too. The guides
    /// forbid it: the conformance kit fails the method for it.
    pub printed: Vec<String>,
    /// Violations repaired or tolerated in lenient mode.
    pub violations: Vec<Violation>,
    /// How many getAsyncProgress calls the operation took.
    pub async_polls: u32,
}

/// The plug-in manager.
pub struct Manager {
    config: ManagerConfig,
    found: Discovered,
    cache: Arc<Cache>,
    locks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
    validated: Mutex<HashSet<(PluginId, u64)>>,
    temp_root: PathBuf,
    _temp_guard: Option<tempfile::TempDir>,
    progress: broadcast::Sender<ProgressEvent>,
    calls: AtomicU64,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field(
                "plugins",
                &self
                    .found
                    .plugins
                    .iter()
                    .map(|p| p.id.to_string())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn fingerprint(ss: &Value) -> u64 {
    // Validation holds for the fields a plug-in may not change; status and sizes come and go.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Some(map) = ss.as_object() {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            let volatile = RecordKind::SsRecord
                .field(k)
                .is_some_and(|f| f.rule == UpdateRule::Yes);
            if !volatile {
                k.hash(&mut h);
                map[k].to_string().hash(&mut h);
            }
        }
    }
    h.finish()
}

fn failed(message: String) -> CallError {
    CallError::Failed(PluginException::operation_failed(message))
}

impl Manager {
    /// Discovers plug-ins and builds a manager.
    pub async fn new(config: ManagerConfig) -> Result<Manager, ManagerError> {
        let (temp_root, guard) = match &config.temp_root {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(|source| ManagerError::TempDir {
                    path: p.clone(),
                    source,
                })?;
                (p.clone(), None)
            }
            None => {
                let base = std::env::temp_dir();
                let dir = tempfile::Builder::new()
                    .prefix("spindle-")
                    .tempdir_in(&base)
                    .map_err(|source| ManagerError::TempDir { path: base, source })?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let python = python::LazyPython::new(config.python.clone(), &temp_root);
        let found = discovery::discover(
            &config.builtins,
            &config.roots,
            &python,
            config.discovery_deadline,
        )
        .await;
        let (progress, _) = broadcast::channel(256);
        Ok(Manager {
            config,
            found,
            cache: Arc::new(Cache::new()),
            locks: Mutex::new(HashMap::new()),
            validated: Mutex::new(HashSet::new()),
            temp_root,
            _temp_guard: guard,
            progress,
            calls: AtomicU64::new(0),
        })
    }

    /// Every usable plug-in.
    pub fn plugins(&self) -> &[PluginEntry] {
        &self.found.plugins
    }

    /// Modules and classes that were skipped, with the reasons.
    pub fn skipped(&self) -> &[Skipped] {
        &self.found.skipped
    }

    /// Problems discovery worked around (each once), e.g. a vendor package's `__init__.py`
    /// that is not Python 3.
    pub fn notes(&self) -> &[String] {
        &self.found.notes
    }

    /// The shared cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// Progress events of every asynchronous operation.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.progress.subscribe()
    }

    /// Number of plug-in invocations so far (including getAsyncProgress and implicit validates).
    pub fn invocations(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Finds a plug-in by `class` or `class@version`.
    pub fn resolve(&self, reference: &str) -> Result<&PluginEntry, ManagerError> {
        let (class, version) = PluginId::parse_ref(reference).map_err(|e| ManagerError::BadReference {
            reference: reference.to_string(),
            reason: e.to_string(),
        })?;
        let matches: Vec<&PluginEntry> = self
            .found
            .plugins
            .iter()
            .filter(|p| {
                p.id.class == class
                    && version
                        .as_ref()
                        .is_none_or(|v: &PluginVersion| *v == p.id.version)
            })
            .collect();
        match matches.as_slice() {
            [] => {
                let reasons: Vec<String> = self
                    .found
                    .skipped
                    .iter()
                    .filter(|s| s.concerns(&class))
                    .map(|s| s.reason.clone())
                    .collect();
                if reasons.is_empty() {
                    Err(ManagerError::UnknownPlugin(reference.to_string()))
                } else {
                    Err(ManagerError::NotLoaded {
                        reference: reference.to_string(),
                        reason: reasons.join("\n"),
                    })
                }
            }
            [one] => Ok(one),
            many => Err(ManagerError::AmbiguousPlugin {
                class,
                versions: many
                    .iter()
                    .map(|p| p.id.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    fn lock_for(&self, ss_uuid: &str) -> Arc<RwLock<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(ss_uuid.to_string()).or_default())
    }

    /// Calls `method` of `plugin` with keyword `args`, under every check of the contract.
    pub async fn call(
        &self,
        plugin: &PluginEntry,
        method: Method,
        args: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<CallOutcome, CallError> {
        let spec = method.spec();
        let call_id = opts
            .call_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let ss = check_input(spec, &args)?;
        if spec.requirement == Requirement::OptionalIscsiOnly
            && ss.storage_type_enum() != Some(StorageType::Iscsi)
        {
            return Err(CallError::Rejected(PluginException::no_such_operation(format!(
                "{} applies to iSCSI arrays only; this ss_record's storage_type is {}",
                spec.name,
                ss.storage_type.value().map(String::as_str).unwrap_or("unset")
            ))));
        }
        let ss_value = args.get("ss_record").cloned().unwrap_or(Value::Null);
        let key = (plugin.id.clone(), fingerprint(&ss_value));
        let mut warnings = Vec::new();
        let mut printed = Vec::new();
        let mut tolerated = Vec::new();
        if method != Method::Validate && !self.is_validated(&key) {
            let mut vargs = Map::new();
            vargs.insert("ss_record".into(), ss_value.clone());
            let checked = self
                .invoke_checked(plugin, Method::Validate.spec(), &vargs, &call_id, ss.uuid_str())
                .await?;
            warnings.extend(checked.warnings);
            printed.extend(checked.printed);
            self.validated
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone());
        }
        let checked = self
            .invoke_checked(plugin, spec, &args, &call_id, ss.uuid_str())
            .await?;
        if method == Method::Validate {
            self.validated
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key);
        }
        warnings.extend(checked.warnings);
        printed.extend(checked.printed);
        tolerated.extend(checked.tolerated);
        let mut value = checked.value;
        let mut polls = 0;
        let is_async =
            method != Method::GetAsyncProgress && value.get("async_progress").is_some_and(|p| !p.is_null());
        if is_async && !opts.detach_async {
            let driven = self
                .drive_async(plugin, spec, &args, value, &call_id, ss.uuid_str(), &opts)
                .await?;
            value = driven.value;
            polls = driven.polls;
            warnings.extend(driven.warnings);
            printed.extend(driven.printed);
        }
        Ok(CallOutcome {
            value,
            call_id,
            warnings,
            printed,
            violations: tolerated,
            async_polls: polls,
        })
    }

    fn is_validated(&self, key: &(PluginId, u64)) -> bool {
        self.validated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    #[allow(clippy::too_many_arguments)]
    async fn drive_async(
        &self,
        plugin: &PluginEntry,
        spec: &'static MethodSpec,
        args: &Map<String, Value>,
        mut record: Value,
        call_id: &str,
        ss_uuid: &str,
        opts: &CallOptions,
    ) -> Result<Driven, CallError> {
        let label = plugin.id.to_string();
        let emit = |progress: Option<i64>| {
            let ev = ProgressEvent {
                call_id: call_id.to_string(),
                plugin: label.clone(),
                method: spec.name,
                progress,
            };
            if let Some(tx) = &opts.progress {
                let _ = tx.send(ev.clone());
            }
            let _ = self.progress.send(ev);
        };
        if !plugin.implements(Method::GetAsyncProgress) {
            return Err(CallError::Contract(ContractFailure {
                plugin: plugin.id.clone(),
                method: spec.name,
                violations: vec![Violation {
                    rule: Rule::AsyncWhenSync,
                    field: Some("async_progress".into()),
                    message: "returned async_progress but does not implement getAsyncProgress".into(),
                }],
            }));
        }
        let started = Instant::now();
        let mut polls = 0u32;
        let mut warnings = Vec::new();
        let mut printed = Vec::new();
        let ss_value = args.get("ss_record").cloned().unwrap_or(Value::Null);
        let (deadline, stall) = (self.config.async_deadline, self.config.async_stall);
        let mut last: Option<Value> = None;
        let mut unchanged_since = Instant::now();
        loop {
            let raw = record.get("async_progress").cloned().unwrap_or(Value::Null);
            let progress = raw.as_i64();
            emit(progress);
            if last.as_ref() != Some(&raw) {
                last = Some(raw.clone());
                unchanged_since = Instant::now();
            }
            let shown = progress_text(&raw);
            if started.elapsed() >= deadline {
                return Err(failed(format!(
                    "plug-in {} did not finish the asynchronous {} within the limit of {} s (async deadline); its last progress was {shown} after {polls} getAsyncProgress poll(s). spindle stopped waiting; the operation may still be running on the array",
                    plugin.id,
                    spec.name,
                    secs(deadline)
                )));
            }
            if unchanged_since.elapsed() >= stall {
                return Err(failed(format!(
                    "plug-in {} did not finish the asynchronous {}: its progress stayed at {shown} for {} s, the limit for an operation making no progress (async stall limit; {polls} getAsyncProgress poll(s)). spindle stopped waiting; the operation may still be running on the array",
                    plugin.id,
                    spec.name,
                    secs(stall)
                )));
            }
            let wait = self
                .config
                .async_poll_interval
                .min(deadline.saturating_sub(started.elapsed()))
                .min(stall.saturating_sub(unchanged_since.elapsed()));
            tokio::time::sleep(wait).await;
            let mut pargs = Map::new();
            pargs.insert("ss_record".into(), ss_value.clone());
            pargs.insert("some_record".into(), record.clone());
            polls += 1;
            let checked = self
                .invoke_checked(plugin, Method::GetAsyncProgress.spec(), &pargs, call_id, ss_uuid)
                .await?;
            warnings.extend(checked.warnings);
            printed.extend(checked.printed);
            record = checked.value;
            match record.get("async_progress") {
                Some(Value::Null) => break,
                Some(_) => continue,
                None => {
                    let v = Violation {
                        rule: Rule::ReturnShape,
                        field: Some("async_progress".into()),
                        message: "getAsyncProgress returned a record without async_progress; it must be None when done".into(),
                    };
                    if self.config.mode == Mode::Strict {
                        return Err(CallError::Contract(ContractFailure {
                            plugin: plugin.id.clone(),
                            method: Method::GetAsyncProgress.name(),
                            violations: vec![v],
                        }));
                    }
                    tracing::warn!(plugin = %plugin.id, call_id, "{v}; treating the operation as finished");
                    break;
                }
            }
        }
        emit(None);
        if let Value::Object(m) = &mut record {
            m.remove("async_progress");
            m.remove("async_handle");
        }
        // A method that returns nothing returns nothing once its operation is done; a record
        // must still satisfy what the original call promised (page83_id, update rules). Its
        // shape was checked on every poll.
        let value = if spec.returns == spindle_api::ReturnKind::Nothing {
            Value::Null
        } else {
            let mut final_value = record;
            let violations = contract::check_return(
                spec,
                &plugin.metadata,
                args,
                &mut final_value,
                true,
                self.config.mode,
            );
            self.judge(plugin, spec, violations)?;
            final_value
        };
        Ok(Driven {
            value,
            polls,
            warnings,
            printed,
        })
    }

    fn judge(
        &self,
        plugin: &PluginEntry,
        spec: &MethodSpec,
        violations: Vec<Violation>,
    ) -> Result<Vec<Violation>, CallError> {
        if violations.is_empty() {
            return Ok(violations);
        }
        match self.config.mode {
            Mode::Strict => Err(CallError::Contract(ContractFailure {
                plugin: plugin.id.clone(),
                method: spec.name,
                violations,
            })),
            Mode::Lenient => {
                for v in &violations {
                    tracing::warn!(plugin = %plugin.id, method = spec.name, "contract violation tolerated: {v} [rule: {}]", v.rule.statement());
                }
                Ok(violations)
            }
        }
    }

    async fn invoke_checked(
        &self,
        plugin: &PluginEntry,
        spec: &'static MethodSpec,
        args: &Map<String, Value>,
        call_id: &str,
        ss_uuid: &str,
    ) -> Result<Checked, CallError> {
        let lock = self.lock_for(ss_uuid);
        let _read;
        let _write;
        if spec.mutates {
            _write = lock.write().await;
        } else {
            _read = lock.read().await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let tag = CallTag {
            plugin: plugin.id.to_string(),
            method: spec.name,
            call_id: call_id.to_string(),
        };
        let services = CallServices::new(
            Arc::clone(&self.cache),
            tag,
            &self.temp_root,
            &self.config.dev_path_prefix,
        );
        let started = Instant::now();
        let raw = self.invoke(plugin, spec, args, &services).await;
        services.finish();
        let warnings = services.take_warnings();
        let printed = services.take_printed();
        tracing::debug!(plugin = %plugin.id, method = spec.name, call_id, elapsed_us = started.elapsed().as_micros() as u64, "plug-in call");
        let (outcome, typed) = raw?;
        match outcome {
            Ok(mut value) => {
                let violations =
                    contract::check_return(spec, &plugin.metadata, args, &mut value, typed, self.config.mode);
                let tolerated = self.judge(plugin, spec, violations)?;
                Ok(Checked {
                    value,
                    warnings,
                    printed,
                    tolerated,
                })
            }
            Err(raised) => {
                let (exception, violations) = contract::check_raised(spec, raised);
                if !violations.is_empty() && self.config.mode == Mode::Strict {
                    let mut vs = violations;
                    if let Some(first) = vs.first_mut() {
                        first
                            .message
                            .push_str(&format!(" (the plug-in raised: {exception})"));
                    }
                    return Err(CallError::Contract(ContractFailure {
                        plugin: plugin.id.clone(),
                        method: spec.name,
                        violations: vs,
                    }));
                }
                self.judge(plugin, spec, violations)?;
                Err(CallError::Raised(exception))
            }
        }
    }

    /// One invocation: generic fallback, in process, or in a child. The flag says whether the
    /// value came from the typed trait.
    async fn invoke(
        &self,
        plugin: &PluginEntry,
        spec: &'static MethodSpec,
        args: &Map<String, Value>,
        services: &CallServices,
    ) -> Result<(Result<Value, Raised>, bool), CallError> {
        let raised = |e: PluginException| Raised {
            name: e.kind.as_str().to_string(),
            message: e.message,
            key: e.key,
            traceback: None,
        };
        if spec.method.has_generic_fallback() && !plugin.implements(spec.method) {
            let r = generic::run(spec.method, args, &self.config.dev_path_prefix).await;
            return Ok((r.map_err(raised), true));
        }
        match &plugin.hosting {
            Hosting::InProcess(p) => {
                let run = || dispatch(p.as_ref(), services, spec.method, args);
                // A built-in plug-in may block on I/O; keep it off the async workers' backs.
                let r = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                    Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
                    _ => run(),
                };
                Ok((r.map_err(raised), true))
            }
            Hosting::OutOfProcess(launcher) => {
                let params = spindle_protocol::CallParams {
                    class: plugin.id.class.clone(),
                    method: spec.name.to_string(),
                    args: args.clone(),
                    call_id: services.tag().call_id.clone(),
                    dev_path_prefix: self.config.dev_path_prefix.clone(),
                };
                let label = plugin.id.to_string();
                match process::call(launcher, &label, params, services, self.config.call_deadline).await {
                    Ok(outcome) => Ok((outcome, false)),
                    Err(fault) => Err(self.fault(plugin, spec, fault)),
                }
            }
        }
    }

    fn fault(&self, plugin: &PluginEntry, spec: &MethodSpec, fault: Fault) -> CallError {
        let id = &plugin.id;
        let m = spec.name;
        let tail = |t: &str| {
            if t.is_empty() {
                "(stderr was empty)".to_string()
            } else {
                format!("last lines of its stderr:\n{t}")
            }
        };
        match fault {
            Fault::Spawn(e) => failed(format!("cannot start plug-in {id} for {m}: {e}")),
            Fault::Crash { status, stderr_tail } => failed(format!(
                "plug-in {id} crashed in {m} ({status}); {}",
                tail(&stderr_tail)
            )),
            Fault::Deadline { after, stderr_tail } => failed(format!(
                "plug-in {id} did not answer {m} within {} s and was killed; {}",
                after.as_secs_f64(),
                tail(&stderr_tail)
            )),
            Fault::Protocol(e) => failed(format!("plug-in {id} broke the protocol in {m}: {e}")),
            Fault::Pollution(line) => CallError::Contract(ContractFailure {
                plugin: id.clone(),
                method: spec.name,
                violations: vec![Violation {
                    rule: Rule::StdoutPollution,
                    field: None,
                    message: format!("wrote to stdout: {line:?}"),
                }],
            }),
        }
    }
}

struct Checked {
    value: Value,
    warnings: Vec<String>,
    printed: Vec<String>,
    tolerated: Vec<Violation>,
}

/// An asynchronous operation driven to its end.
struct Driven {
    value: Value,
    polls: u32,
    warnings: Vec<String>,
    printed: Vec<String>,
}

/// A duration in whole seconds (or fractions below 10 s), for messages.
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 || s.fract() == 0.0 {
        format!("{}", s.round() as u64)
    } else {
        format!("{s:.1}")
    }
}

/// An `async_progress` value as a message shows it.
fn progress_text(v: &Value) -> String {
    match v.as_i64() {
        Some(-1) => "-1 (percentage unknown)".to_string(),
        Some(p) => p.to_string(),
        None if v.is_null() => "none".to_string(),
        None => v.to_string(),
    }
}

/// Refuses bad input before any plug-in sees it; returns the parsed ss_record.
fn check_input(spec: &'static MethodSpec, args: &Map<String, Value>) -> Result<SsRecord, CallError> {
    let reject = CallError::Rejected;
    let a = Args::new(spec.method, args).map_err(reject)?;
    let ss = a.ss().map_err(reject)?;
    // The uuid keys the cache, the validation memo and the per-server lock; the guides have the
    // manager assign it when the record is created.
    if ss.uuid.value().is_none_or(|u| u.trim().is_empty()) {
        return Err(reject(PluginException::missing_key(
            "uuid",
            "the ss_record has no uuid; every storage server record carries the uuid assigned when it was created",
        )));
    }
    for p in spec.params {
        let Some(v) = args.get(p.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let r = match p.kind {
            ParamKind::SeRecord => a
                .se(p.name)
                .and_then(|se| se.map_or(Ok(()), |se| same_server(p.name, &se, &ss))),
            ParamKind::SeRecordList => a
                .se_list(p.name)
                .and_then(|l| l.iter().try_for_each(|se| same_server(p.name, se, &ss))),
            ParamKind::AccessGrpList => a.access_grps(p.name).map(drop),
            ParamKind::Name | ParamKind::Qos => a.string(p.name).map(drop),
            ParamKind::NameList => a.strings(p.name).map(drop),
            ParamKind::Integer => a.integer(p.name).map(drop),
            ParamKind::Boolean => a.boolean(p.name).map(drop),
            ParamKind::SeTypeList => a.se_types(p.name).map(drop),
            ParamKind::AnyRecord => a.record(p.name).map(drop),
            ParamKind::SsRecord => Ok(()),
        };
        r.map_err(reject)?;
        let _ = v;
    }
    Ok(ss)
}

/// Refuses an element record (`param`) of another storage server: its `ss_uuid`, when set,
/// is the ss_record's uuid. The plug-in would otherwise act on this array for a record that
/// says it belongs to another, and hand back a record tied to the wrong server.
fn same_server(param: &str, se: &spindle_api::SeRecord, ss: &SsRecord) -> Result<(), PluginException> {
    match (se.ss_uuid.value().filter(|u| !u.is_empty()), ss.uuid.value()) {
        (Some(theirs), Some(ours)) if theirs != ours => Err(PluginException::new(
            ExceptionKind::InvalidValueEx,
            format!(
                "{param} ss_uuid {theirs:?} is not this storage server's uuid {ours:?}: the element record belongs to another storage server record"
            ),
        )),
        _ => Ok(()),
    }
}

/// Maps an exception kind to itself; kept for callers that build errors by name.
pub fn exception_kind(name: &str) -> Option<ExceptionKind> {
    ExceptionKind::parse(name)
}
