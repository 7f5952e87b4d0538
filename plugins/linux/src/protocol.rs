//! The array-side program's wire format: one JSON request on standard input, one JSON
//! response on standard output, so `spindle-array` behaves the same run locally or as
//! `ssh host spindle-array`. The resident program ([`crate::daemon`]) takes the same request
//! on a connection to its socket (the client ends its half of the connection after the
//! request) and writes the same answer back.
//!
//! Request: `{"config": ArrayConfig, "op": NAME, ...arguments}`. Response:
//! `{"ok": VALUE}` or `{"error": {"exception": NAME, "message": TEXT, "key": KEY?}}`, with the
//! guides' exception names. Operations and arguments (`uuid`s are element uuids):
//!
//! | op | arguments | ok |
//! |---|---|---|
//! | `validate` | `chap`? `{username, secret}` | ArrayInfo (errors: InvalidStorageArrayEx) |
//! | `info` | | ArrayInfo |
//! | `capabilities` | | the 16-key ability dict |
//! | `status` | `uuid`? | string |
//! | `limits` | `uuid`? | Limits |
//! | `list` | `types`? (default `["LUNType", "SnapCloneType"]`) | list of Element |
//! | `get` | `uuid` | Element |
//! | `create` | `name`, `pool`, `size`, `thin`? (true), `qos`? | Element |
//! | `resize` | `uuid`, `size` | Element |
//! | `remove` | `uuid` | null |
//! | `snapshot` | `uuid`, `name`? | Element |
//! | `multi-snapshot` | `uuids`, `name`? | Element |
//! | `snapshots` | `uuid`? | list of Element |
//! | `snap-remove` | `snap` | null |
//! | `clone` | `uuid`, `name`?, `qos`? | Element |
//! | `clone-from-snap` | `uuid`, `snap`, `name`?, `qos`? | Element |
//! | `clones` | `uuid`? | list of Element |
//! | `is-cloneable` / `is-splittable` | `uuid` | bool |
//! | `is-snapable` | `uuid`? | bool |
//! | `split-start` | `uuid` | SplitStatus (`progress` 0) |
//! | `split-progress` | `handle` | SplitStatus (`progress` null when done) |
//! | `is-restorable` | `snap`, `uuid`? | bool |
//! | `restore` | `snap`, `uuid`? | null |
//! | `groups` | `uuid`? | list of Group |
//! | `group-create` | `groups`: list of `{name, entries, modes?}` | list of Group |
//! | `group-remove` | `names` | list of Group |
//! | `group-rename` | `name`, `new_name` | list of Group |
//! | `group-add` / `group-remove-entries` | `name`, `entries` | Group |
//! | `present` / `unpresent` | `uuid`, `groups` | Element |
//! | `online` / `offline` | `uuid` | null |
//! | `qos-list` | | list of QosLevel |
//! | `set-qos` | `uuid`, `qos` | null |
//! | `set-chap` | `chap`: {username, secret} or null | null |
//! | `export-plan` | | ExportPlan |
//! | `export-sync` | | SyncReport (tgtd started if needed and fully reconciled) |
//! | `resolve` | `page83_id`?, `name`? | Element (for records without uuid) |
//! | `fsck` | | list of problem (empty when consistent) |
//!
//! `validate` also takes `clear_chap: true`, which removes the CHAP account.
//!
//! A request that cannot be parsed is answered with `ValueFormatEx` (key `request`).
//!
//! # Exports
//! When the configuration names a tgtd instance (`tgt`), every request ends by making tgtd
//! serve the export plan (see [`crate::tgt`]): requests that change exports or backing files
//! (`present`, `unpresent`, the `group-*` operations, `online`, `offline`, `set-qos`,
//! `set-chap`, `resize`, `restore`, `remove`, `split-start`, a `split-progress` that finds the
//! split finished, `validate`, `export-sync`) reconcile fully; every other request starts tgtd
//! if it is not running and reconciles only when tgtd or the plan changed since the last
//! reconciliation. A successful answer then carries `"export"`: the SyncReport. When tgtd
//! cannot be brought to the plan, requests whose point is the export (`validate`, `present`,
//! `unpresent`, group operations, `online`, `offline`, `set-qos`, `set-chap`, `resize`,
//! `restore`, `export-sync`) fail with `OperationFailedEx` (`InvalidStorageArrayEx` from
//! `validate`) saying what was recorded and what failed; the others succeed and carry the
//! failures in `"warnings"`.

use crate::config::ArrayConfig;
use crate::engine::{Engine, EngineOptions};
use crate::error::Error;
use crate::model::{ChapAccount, GroupSpec};
use crate::registry::Registry;
use crate::tgt::{self, SyncMode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use spindle_api::{ExceptionKind, PluginException, SeType};
use std::collections::BTreeMap;

fn default_types() -> Vec<SeType> {
    vec![SeType::Lun, SeType::SnapClone]
}

fn yes() -> bool {
    true
}

/// One request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
#[allow(missing_docs)]
pub enum Request {
    Validate {
        #[serde(default)]
        chap: Option<ChapAccount>,
        #[serde(default)]
        clear_chap: bool,
    },
    Info {},
    Capabilities {},
    Status {
        #[serde(default)]
        uuid: Option<String>,
    },
    Limits {
        #[serde(default)]
        uuid: Option<String>,
    },
    List {
        #[serde(default = "default_types")]
        types: Vec<SeType>,
    },
    Get {
        uuid: String,
    },
    Create {
        name: String,
        pool: String,
        size: i64,
        #[serde(default = "yes")]
        thin: bool,
        #[serde(default)]
        qos: Option<String>,
    },
    Resize {
        uuid: String,
        size: i64,
    },
    Remove {
        uuid: String,
    },
    Snapshot {
        uuid: String,
        #[serde(default)]
        name: Option<String>,
    },
    MultiSnapshot {
        uuids: Vec<String>,
        #[serde(default)]
        name: Option<String>,
    },
    Snapshots {
        #[serde(default)]
        uuid: Option<String>,
    },
    SnapRemove {
        snap: String,
    },
    Clone {
        uuid: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        qos: Option<String>,
    },
    CloneFromSnap {
        uuid: String,
        snap: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        qos: Option<String>,
    },
    Clones {
        #[serde(default)]
        uuid: Option<String>,
    },
    IsCloneable {
        uuid: String,
    },
    IsSplittable {
        uuid: String,
    },
    IsSnapable {
        #[serde(default)]
        uuid: Option<String>,
    },
    SplitStart {
        uuid: String,
    },
    SplitProgress {
        handle: String,
    },
    IsRestorable {
        snap: String,
        #[serde(default)]
        uuid: Option<String>,
    },
    Restore {
        snap: String,
        #[serde(default)]
        uuid: Option<String>,
    },
    Groups {
        #[serde(default)]
        uuid: Option<String>,
    },
    GroupCreate {
        groups: Vec<GroupSpec>,
    },
    GroupRemove {
        names: Vec<String>,
    },
    GroupRename {
        name: String,
        new_name: String,
    },
    GroupAdd {
        name: String,
        entries: Vec<String>,
    },
    GroupRemoveEntries {
        name: String,
        entries: Vec<String>,
    },
    Present {
        uuid: String,
        groups: Vec<String>,
    },
    Unpresent {
        uuid: String,
        groups: Vec<String>,
    },
    Online {
        uuid: String,
    },
    Offline {
        uuid: String,
    },
    QosList {},
    SetQos {
        uuid: String,
        qos: String,
    },
    SetChap {
        chap: Option<ChapAccount>,
    },
    ExportPlan {},
    ExportSync {},
    Resolve {
        #[serde(default)]
        page83_id: Option<String>,
        #[serde(default)]
        name: Option<String>,
    },
    Fsck {},
}

impl Request {
    /// The exception kind for failures of the operation itself.
    pub fn failure_kind(&self) -> ExceptionKind {
        match self {
            Request::Snapshot { .. } | Request::MultiSnapshot { .. } => ExceptionKind::CreateSnapFailedEx,
            Request::Clone { .. } | Request::CloneFromSnap { .. } => ExceptionKind::CloneFailedEx,
            Request::List { .. } | Request::Clones { .. } => ExceptionKind::ListFailedEx,
            Request::Snapshots { .. } => ExceptionKind::ListSnapFailedEx,
            _ => ExceptionKind::OperationFailedEx,
        }
    }

    /// How the export layer is brought up to date after this request, and whether a failure
    /// there fails the request.
    fn export_effect(&self) -> (SyncMode, bool) {
        match self {
            Request::Validate { .. }
            | Request::Present { .. }
            | Request::Unpresent { .. }
            | Request::GroupCreate { .. }
            | Request::GroupRemove { .. }
            | Request::GroupRename { .. }
            | Request::GroupAdd { .. }
            | Request::GroupRemoveEntries { .. }
            | Request::Online { .. }
            | Request::Offline { .. }
            | Request::SetQos { .. }
            | Request::SetChap { .. }
            | Request::Resize { .. }
            | Request::Restore { .. }
            | Request::ExportSync {} => (SyncMode::Full, true),
            Request::Remove { .. } | Request::SplitStart { .. } => (SyncMode::Full, false),
            _ => (SyncMode::Check, false),
        }
    }
}

/// A whole request: the configuration and the operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The array's configuration.
    pub config: ArrayConfig,
    /// Which registration of the array sends the request (the ss_record's uuid), when the
    /// caller has one: a registration is one array ([`Registry`]), and one array has one
    /// export configuration: a registration whose settings differ from the one in force, set
    /// by another registration, is refused ([`tgt::check_registration`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    /// The names the caller's element records give the elements they name by uuid: a request
    /// whose record names one element by uuid and another by name is refused
    /// ([`Engine::check_identities`]), never served for whichever the uuid names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect_names: BTreeMap<String, String>,
    /// The page 83 ids those records give them, checked the same way.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect_page83: BTreeMap<String, String>,
    /// The operation.
    #[serde(flatten)]
    pub request: Request,
}

/// The response to print.
pub fn ok(value: Value) -> Value {
    // Moved in, not through `json!`, which serializes an interpolated value into a new one: a
    // deep copy that was a fifth of the program's time for a list of 10,000 elements.
    let mut answer = serde_json::Map::with_capacity(1);
    answer.insert("ok".into(), value);
    Value::Object(answer)
}

/// The error response to print.
pub fn error(e: &PluginException) -> Value {
    json!({ "error": e })
}

/// `answer` as the line to write: JSON and a newline, in one buffer for one write. Not through
/// `Display` (`to_string`, `{answer}`), which goes through the formatter a token at a time: a
/// list of 10,000 elements took 70-120 ms that way, 15 ms this way.
pub fn answer_line(answer: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(answer).unwrap_or_else(|e| {
        let failed = PluginException::operation_failed(format!("cannot encode the answer: {e}"));
        serde_json::to_vec(&error(&failed)).unwrap_or_default()
    });
    bytes.push(b'\n');
    bytes
}

fn to_value<T: Serialize>(v: T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Failed(format!("cannot encode the answer: {e}")))
}

/// Parses one request (text); a request that cannot be parsed gets its error response.
pub fn parse(text: &str) -> Result<Envelope, Value> {
    // Straight into the envelope; only a request that does not parse so goes through a
    // `Value`, whose checks make the error's message (the missing key, a withheld secret).
    if let Ok(env) = serde_json::from_str::<Envelope>(text) {
        return Ok(env);
    }
    let raw: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(error(&PluginException::value_format(
                "request",
                format!("the request is not JSON: {e}"),
            )))
        }
    };
    if raw.get("config").is_none() {
        return Err(error(&PluginException::missing_key(
            "config",
            "the request has no config",
        )));
    }
    if raw.get("op").is_none() {
        return Err(error(&PluginException::missing_key(
            "op",
            "the request has no op",
        )));
    }
    // serde's messages can quote values: withhold them when the request carries a secret.
    let secret = raw.get("chap").is_some_and(|c| !c.is_null());
    serde_json::from_value(raw).map_err(|e| {
        let detail = if secret {
            "details withheld: the request carries a CHAP secret".to_string()
        } else {
            e.to_string()
        };
        error(&PluginException::value_format(
            "request",
            format!("the request is malformed: {detail}"),
        ))
    })
}

/// Parses and serves one request (text), returning the response.
pub fn handle_text(text: &str, opts: EngineOptions) -> Value {
    match parse(text) {
        Ok(env) => handle(&env, opts),
        Err(answer) => answer,
    }
}

/// The exception an engine error becomes in the answer to `env`.
pub fn exception(env: &Envelope, e: &Error) -> PluginException {
    let mut ex = e.to_exception(env.request.failure_kind());
    if matches!(env.request, Request::Validate { .. })
        && matches!(
            e,
            Error::InvalidArray(_) | Error::Unavailable(_) | Error::Io { .. } | Error::Db { .. }
        )
    {
        ex = PluginException::new(ExceptionKind::InvalidStorageArrayEx, ex.message);
    }
    ex
}

/// Serves one parsed request with an engine opened for it (the one-shot program).
pub fn handle(env: &Envelope, opts: EngineOptions) -> Value {
    // Decided once, before anything else: a refused SPINDLE_ARRAY_STATE_HOME refuses every
    // request, not only those naming a registration, so the mistake shows at the first one.
    let opts = match opts.resolved() {
        Ok(o) => o,
        Err(e) => return error(&exception(env, &e)),
    };
    let _first_binding = match check_registration(env, &opts) {
        Ok(guard) => guard,
        Err(e) => return error(&exception(env, &e)),
    };
    let made = NewArray::before_open(env);
    match Engine::open(&env.config, opts) {
        Ok(mut engine) => {
            let answer = handle_with(env, &mut engine, SyncMode::Check);
            made.discard_if_refused(engine, &answer);
            answer
        }
        Err(e) => error(&exception(env, &e)),
    }
}

/// Whether the request may make a new array (no state yet), so that a refused validate
/// leaves nothing of it behind: no owner file in its pools, no state directory under a
/// mount point. A `server add` refused for its export settings used to leave both.
#[derive(Debug, Clone, Copy)]
pub struct NewArray {
    /// The array had no state before the request.
    new: bool,
    /// Nor a state directory.
    no_state_dir: bool,
    /// The request is a validate.
    validate: bool,
}

impl NewArray {
    /// What there is of `env`'s array before it is opened.
    pub fn before_open(env: &Envelope) -> NewArray {
        let state = env.config.state_dir().ok();
        NewArray {
            new: state.as_ref().is_some_and(|s| !s.join("array.db").exists()),
            no_state_dir: state.as_ref().is_some_and(|s| !s.exists()),
            validate: matches!(env.request, Request::Validate { .. }),
        }
    }

    /// Whether the request found no array there and made one by opening it.
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// Removes the array `engine` opened when the request made it and was a refused
    /// validate ([`Engine::discard_new`]); best effort. Whether it tried.
    pub fn discard_if_refused(self, engine: Engine, answer: &Value) -> bool {
        // Only a validate: it is what registers an array (server add), and any other first
        // request of an array goes on to use it.
        if self.new && self.validate && answer.get("error").is_some() {
            let _ = engine.discard_new(self.no_state_dir);
            return true;
        }
        false
    }
}

/// Serves one parsed request with an engine that is open and current for `env.config`
/// ([`Engine::open`], or [`Engine::resume`] in the resident program), then brings tgtd to the
/// export plan as the module documentation says. The caller has checked the request's
/// registration ([`check_registration`]) before opening the engine.
///
/// `check` is the sync of a request that changes no export: [`SyncMode::Check`], which asks
/// tgtd whether it still listens (a one-shot run, or an engine the resident program has only
/// just opened), or [`SyncMode::Recorded`], which leaves that question to the resident
/// program's watch ([`crate::daemon`]) that has the engine.
pub fn handle_with(env: &Envelope, engine: &mut Engine, check: SyncMode) -> Value {
    let mut answer = handle_for_registration(env, engine, check);
    // A degraded array says so with every answer: an administrator hears of it from any
    // call, not only from getInfo.
    if answer.get("ok").is_some() && !engine.unavailable_pools().is_empty() {
        let note = format!(
            "the array is degraded: {}",
            engine
                .unavailable_pools()
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        match answer.get_mut("warnings").and_then(Value::as_array_mut) {
            Some(w) => w.push(Value::String(note)),
            None => answer["warnings"] = json!([note]),
        }
    }
    answer
}

/// [`handle_with`] but for the note of a degraded array: checks the request's registration
/// against the open array, serves it, and records what the registration sent.
fn handle_for_registration(env: &Envelope, engine: &mut Engine, check: SyncMode) -> Value {
    let Some(registration) = env.registration.as_deref() else {
        return handle_registered(env, engine, check);
    };
    let registry = match Registry::of(engine.options()) {
        Ok(r) => r,
        Err(e) => return error(&exception(env, &e)),
    };
    let seen = match registry.check_opened(registration, engine) {
        Ok(seen) => seen,
        Err(e) => return error(&exception(env, &e)),
    };
    let answer = handle_registered(env, engine, check);
    // Before the answer, even in the resident program: the client's next request, which
    // another worker may serve, must find what this one sent.
    // Best effort: a registration not recorded only means that a request of other settings
    // is not refused yet. A refused request binds nothing: the registration may have been
    // refused for settings its administrator then corrects.
    if answer.get("ok").is_some() {
        let _ = registry.note(registration, engine, seen.as_ref());
    }
    if env.config.tgt.is_some() {
        let _ = tgt::note_registration(engine, registration);
    }
    answer
}

/// Whether the request's registration may send its configuration: it names the array the
/// registration is ([`Registry::check`]), with the export settings in force
/// ([`tgt::check_registration`]); checked before the array is opened, since opening it with
/// a configuration makes a new array, or registers that configuration's new pools. For a
/// registration bound to no array yet, the answer holds the lock of first bindings
/// ([`Registry::check`]): keep it until the request is answered. The
/// registrations are the ones of `opts`' state home ([`Registry::of`]).
pub fn check_registration(env: &Envelope, opts: &EngineOptions) -> Result<Option<std::fs::File>, Error> {
    let Some(registration) = &env.registration else {
        return Ok(None);
    };
    crate::registry::check_id(registration)?;
    let first = Registry::of(opts)?.check(registration, &env.config)?;
    if env.config.tgt.is_some() {
        tgt::check_registration(&env.config, registration)?;
    }
    Ok(first)
}

/// [`handle_with`] once the request's registration may send its configuration.
fn handle_registered(env: &Envelope, engine: &mut Engine, check: SyncMode) -> Value {
    let exception = |e: &Error| exception(env, e);
    // A change of CHAP that tgtd cannot be brought to is put back ([`serve_and_export`]):
    // refused, it must change nothing, or the next sync would apply it behind the caller's
    // back. Only a real change: every validate carries the registration's CHAP settings.
    let asked: Option<Option<&ChapAccount>> = match &env.request {
        Request::SetChap { chap } => Some(chap.as_ref()),
        Request::Validate { chap: Some(c), .. } => Some(Some(c)),
        Request::Validate { clear_chap: true, .. } => Some(None),
        _ => None,
    };
    // From reading the account in force to recording who sent the new one, under the CHAP
    // lock ([`Engine::chap_lock`]): checked and changed apart, a rotation and another
    // registration's re-send of the old settings both passed, and the old one stayed.
    let _chap_guard = match (asked, &env.registration) {
        (Some(_), Some(_)) => match engine.chap_lock() {
            Ok(g) => Some(g),
            Err(e) => return error(&exception(&e)),
        },
        _ => None,
    };
    let chap_before = match asked {
        None => None,
        Some(asked) => match engine.chap_account() {
            Ok(before) if before.as_ref() != asked => Some(before),
            Ok(_) => None,
            Err(e) => return error(&exception(&e)),
        },
    };
    // Whether or not this configuration exports through tgtd: the CHAP account is the
    // array's, and any later request that does brings tgtd to it.
    let registration = env.registration.as_deref();
    if let (Some(registration), Some(before), Some(asked)) = (registration, &chap_before, asked) {
        if let Err(e) = tgt::check_chap_change(engine, registration, before.as_ref(), asked) {
            return error(&exception(&e));
        }
    }
    if let Err(e) = engine.check_identities(&env.expect_names, &env.expect_page83) {
        return error(&exception(&e));
    }
    let answer = serve_and_export(env, engine, chap_before.clone(), check);
    if let (Some(registration), Some(_), Some(_)) = (registration, asked, answer.get("ok")) {
        // Best effort, as for the configuration: unrecorded, a later change by another
        // registration is not refused yet.
        let _ = tgt::note_chap(engine, registration, chap_before.is_some());
    }
    answer
}

/// [`handle_registered`] once a change of CHAP it asks for is allowed: serves the request,
/// then brings tgtd to the export plan.
fn serve_and_export(
    env: &Envelope,
    engine: &mut Engine,
    chap_before: Option<Option<ChapAccount>>,
    check: SyncMode,
) -> Value {
    let validate = matches!(env.request, Request::Validate { .. });
    let exception = |e: &Error| exception(env, e);
    let served = serve(engine, env);
    let Some(settings) = &env.config.tgt else {
        return match served {
            Ok((v, _)) => ok(v),
            Err(e) => error(&exception(&e)),
        };
    };
    let (value, finished_split) = match served {
        Ok(v) => v,
        Err(e) => {
            // The request changed nothing, but it still brings back a tgtd that died.
            let _ = tgt::sync(engine, settings, check);
            return error(&exception(&e));
        }
    };
    let (mut mode, strict) = env.request.export_effect();
    if finished_split {
        mode = SyncMode::Full;
    } else if mode == SyncMode::Check {
        mode = check;
    }
    let synced = tgt::sync(engine, settings, mode);
    let failure = match &synced {
        Ok(r) if r.is_clean() => None,
        Ok(r) => Some(r.failures.join("; ")),
        Err(e) => Some(e.to_string()),
    };
    match failure {
        Some(why) if strict => {
            let what = match env.request {
                Request::ExportSync {} => "tgtd could not be brought to the array's export state",
                Request::Validate { .. } => {
                    "the array's storage is usable, but tgtd could not be brought to its export state"
                }
                _ if chap_before.is_some() => "tgtd could not be brought to the new CHAP settings",
                _ => "the change was recorded, but tgtd could not be brought to it",
            };
            let mut message = format!(
                "{what} (control port {}, portal {}): {why}",
                settings.control_port, settings.portal
            );
            if let Some(before) = chap_before {
                // Put back in the state only: the next sync (any request, the resident
                // program's watch) brings tgtd to it.
                message.push_str(match engine.set_chap(before.as_ref()) {
                    Ok(()) => "; the CHAP settings were put back as they were",
                    Err(_) => {
                        "; the new CHAP settings could not be put back: check the array with server refresh"
                    }
                });
            }
            let kind = if validate {
                ExceptionKind::InvalidStorageArrayEx
            } else {
                ExceptionKind::OperationFailedEx
            };
            error(&PluginException::new(kind, message))
        }
        failure => {
            let value = match (&env.request, &synced, value) {
                (Request::ExportSync {}, Ok(report), _) => {
                    serde_json::to_value(report).unwrap_or(Value::Null)
                }
                (Request::Validate { .. } | Request::Info {}, _, mut info) => {
                    if let Ok(status) = tgt::status(settings) {
                        info["tgt"] = serde_json::to_value(status).unwrap_or(Value::Null);
                    }
                    info
                }
                (_, _, value) => value,
            };
            let mut answer = ok(value);
            if let Ok(report) = synced {
                answer["export"] = serde_json::to_value(report).unwrap_or(Value::Null);
            }
            if let Some(why) = failure {
                answer["warnings"] = json!([format!(
                    "tgtd (control port {}) is not serving the array's export state: {why}",
                    settings.control_port
                )]);
            }
            answer
        }
    }
}

/// Serves the request; also says whether it found a split finished (the backing file of a
/// presented clone may have been replaced).
fn serve(e: &mut Engine, env: &Envelope) -> Result<(Value, bool), Error> {
    let n = Value::Null;
    let mut finished_split = false;
    let value = match &env.request {
        Request::Validate { chap, clear_chap } => {
            let mut info = e.validate(chap.as_ref())?;
            if *clear_chap {
                e.set_chap(None)?;
                info.chap_user = None;
            }
            to_value(info)?
        }
        // The tgt part is added after the request's export sync.
        Request::Info {} => to_value(e.info()?)?,
        Request::Capabilities {} => e.capabilities()?.to_value(),
        Request::Status { uuid } => to_value(e.status(uuid.as_deref())?)?,
        Request::Limits { uuid } => {
            if let Some(u) = uuid {
                e.get(u)?;
            }
            to_value(e.limits())?
        }
        Request::List { types } => to_value(e.list(types)?)?,
        Request::Get { uuid } => to_value(e.get(uuid)?)?,
        Request::Create {
            name,
            pool,
            size,
            thin,
            qos,
        } => to_value(e.create(name, pool, *size, *thin, qos.as_deref())?)?,
        Request::Resize { uuid, size } => to_value(e.resize(uuid, *size)?)?,
        Request::Remove { uuid } => {
            e.remove(uuid)?;
            n
        }
        Request::Snapshot { uuid, name } => to_value(e.snapshot(uuid, name.as_deref())?)?,
        Request::MultiSnapshot { uuids, name } => to_value(e.multi_snapshot(uuids, name.as_deref())?)?,
        Request::Snapshots { uuid } => to_value(e.snapshots(uuid.as_deref())?)?,
        Request::SnapRemove { snap } => {
            e.snap_remove(snap)?;
            n
        }
        Request::Clone { uuid, name, qos } => {
            to_value(e.clone_element(uuid, name.as_deref(), qos.as_deref())?)?
        }
        Request::CloneFromSnap {
            uuid,
            snap,
            name,
            qos,
        } => to_value(e.clone_from_snap(uuid, snap, name.as_deref(), qos.as_deref())?)?,
        Request::Clones { uuid } => to_value(e.clones(uuid.as_deref())?)?,
        Request::IsCloneable { uuid } => Value::Bool(e.is_cloneable(uuid)?),
        Request::IsSplittable { uuid } => Value::Bool(e.is_splittable(uuid)?),
        Request::IsSnapable { uuid } => Value::Bool(e.is_snapable(uuid.as_deref())?),
        Request::SplitStart { uuid } => to_value(e.split_start(uuid)?)?,
        Request::SplitProgress { handle } => {
            let st = e.split_progress(handle)?;
            finished_split = st.progress.is_none();
            to_value(st)?
        }
        Request::IsRestorable { snap, uuid } => Value::Bool(e.is_restorable(snap, uuid.as_deref())?),
        Request::Restore { snap, uuid } => {
            e.restore(snap, uuid.as_deref())?;
            n
        }
        Request::Groups { uuid } => to_value(e.groups(uuid.as_deref())?)?,
        Request::GroupCreate { groups } => to_value(e.create_groups(groups)?)?,
        Request::GroupRemove { names } => to_value(e.remove_groups(names)?)?,
        Request::GroupRename { name, new_name } => to_value(e.rename_group(name, new_name)?)?,
        Request::GroupAdd { name, entries } => to_value(e.add_to_group(name, entries)?)?,
        Request::GroupRemoveEntries { name, entries } => to_value(e.remove_from_group(name, entries)?)?,
        Request::Present { uuid, groups } => to_value(e.present(uuid, groups)?)?,
        Request::Unpresent { uuid, groups } => to_value(e.unpresent(uuid, groups)?)?,
        Request::Online { uuid } => {
            e.set_online(uuid, true)?;
            n
        }
        Request::Offline { uuid } => {
            e.set_online(uuid, false)?;
            n
        }
        Request::QosList {} => to_value(e.qos_list()?)?,
        Request::SetQos { uuid, qos } => {
            e.set_qos(uuid, qos)?;
            n
        }
        Request::SetChap { chap } => {
            e.set_chap(chap.as_ref())?;
            n
        }
        Request::ExportPlan {} => to_value(e.export_plan()?)?,
        Request::ExportSync {} => {
            if env.config.tgt.is_none() {
                return Err(Error::InvalidArray(
                    "config names no tgtd instance (tgt_control); there is nothing to export through".into(),
                ));
            }
            // The sync itself runs after every request; its report is the answer.
            n
        }
        Request::Resolve { page83_id, name } => to_value(e.resolve(page83_id.as_deref(), name.as_deref())?)?,
        Request::Fsck {} => to_value(e.check_consistency()?)?,
    };
    Ok((value, finished_split))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_answer_line_is_the_json_and_one_newline() {
        let answer = ok(json!([{"name": "a\nb \u{e9}", "size": 1}]));
        let line = answer_line(&answer);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(
            line.iter().filter(|&&b| b == b'\n').count(),
            1,
            "a newline in a value is escaped"
        );
        let back: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, answer);
        assert_eq!(
            line[..line.len() - 1],
            *answer.to_string().as_bytes(),
            "the same text as before"
        );
    }
}
