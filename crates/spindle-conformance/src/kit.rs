//! The kit's working state: every call goes through the manager and is logged, verdicts
//! accumulate per check, and every object created is tracked until it is removed.

use crate::catalogue::CheckInfo;
use crate::options::Options;
use serde_json::{json, Map, Value};
use spindle_api::{
    make_mp_page83_from_raw_page83, Abilities, ExceptionKind, Method, ParamKind, PluginException, RecordKind,
    StorageType,
};
use spindle_manager::{CallError, CallOptions, Manager, PluginEntry, ProgressEvent, Rule, Violation};
use std::collections::{BTreeSet, HashMap, HashSet};
use tokio::sync::mpsc;

/// 1 MiB.
pub(crate) const MIB: i64 = 1 << 20;

/// Why a call did not return a value, as the kit reports it.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// Refused with one of the guides' exceptions, by the manager (before the plug-in ran) or
    /// by the plug-in.
    Refused {
        /// True when the manager refused it.
        by_manager: bool,
        /// The exception.
        exc: PluginException,
        /// Why the MissingKeyEx / ValueFormatEx the plug-in raised names nothing the call was
        /// given (see [`stray_key`]); `None` when its key names an input.
        stray_key: Option<String>,
    },
    /// The plug-in broke the contract; charged to check `check`.
    Contract {
        /// The check the breach is reported under.
        check: String,
        /// What the manager said.
        text: String,
    },
    /// The call could not complete (crash, deadline, unstartable plug-in).
    Failed(PluginException),
    /// The plug-in started an asynchronous operation that did not finish: the manager stopped
    /// waiting (its async deadline or stall limit) or a getAsyncProgress poll could not
    /// complete. The operation may still go on, and what it was asked to make may exist.
    Unfinished {
        /// What the manager said.
        exc: PluginException,
        /// Index in [`Kit::unfinished`].
        op: usize,
    },
}

impl Failure {
    /// The exception kind of a refusal.
    pub(crate) fn kind(&self) -> Option<ExceptionKind> {
        match self {
            Failure::Refused { exc, .. } => Some(exc.kind),
            _ => None,
        }
    }

    /// The key a MissingKeyEx / ValueFormatEx named.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Failure::Refused { exc, .. } => exc.key.as_deref(),
            _ => None,
        }
    }

    /// Which layer refused, and with what.
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::Refused {
                by_manager: true,
                exc,
                ..
            } => format!("refused by the manager with {exc}"),
            Failure::Refused {
                by_manager: false,
                exc,
                ..
            } => format!("the plug-in raised {exc}"),
            Failure::Contract { text, .. } => format!("the call broke the contract: {text}"),
            Failure::Failed(e) | Failure::Unfinished { exc: e, .. } => {
                format!("the call could not complete: {}", e.message)
            }
        }
    }

    /// "the manager" or "the plug-in".
    pub(crate) fn layer(&self) -> &'static str {
        match self {
            Failure::Refused { by_manager: true, .. } => "the manager",
            _ => "the plug-in",
        }
    }
}

/// What a call returned.
pub(crate) type CallResult = Result<Value, Failure>;

/// Verdicts gathered for one check.
#[derive(Debug, Default, Clone)]
pub(crate) struct Acc {
    pub pass: Vec<String>,
    pub fail: Vec<String>,
    pub skip: Vec<String>,
}

/// One call of the run, for the checks the manager enforces.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    /// The method the kit called.
    pub method: Method,
    /// It returned a value.
    pub ok: bool,
    /// The manager refused it before the plug-in ran.
    pub rejected: bool,
    /// getAsyncProgress polls it took.
    pub async_polls: u32,
    /// What the manager reported the plug-in printed to standard output during the call.
    pub printed: Vec<String>,
    /// Breaches, each with the method it was found in (a validate or getAsyncProgress the
    /// manager made on the way counts for those methods).
    pub violations: Vec<(Method, Violation)>,
}

/// What an object the kit created is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A LUN.
    Lun,
    /// A snapshot.
    Snap,
    /// A clone (of an element or of a snapshot).
    Clone,
}

impl Kind {
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Lun => "LUN",
            Kind::Snap => "snapshot",
            Kind::Clone => "clone",
        }
    }
}

/// An element the kit created.
#[derive(Debug, Clone)]
pub(crate) struct Obj {
    /// What the kit calls it in messages (`L1`, `S1`, ...).
    pub role: String,
    /// Its kind.
    pub kind: Kind,
    /// Its latest record.
    pub rec: Value,
    /// The groups the kit believes it is presented to.
    pub presented: BTreeSet<String>,
    /// Removed.
    pub gone: bool,
}

/// Index of an [`Obj`].
pub(crate) type ObjId = usize;

/// An asynchronous operation that did not finish (see [`Failure::Unfinished`]).
#[derive(Debug, Clone)]
pub(crate) struct Unfinished {
    /// The method that started it.
    pub method: Method,
    /// The check charged with it: the first that judged the call. Later checks whose call
    /// it was, or whose preconditions it spoiled, are skipped with a pointer to it.
    pub charged: Option<String>,
    /// The elements it worked on (se_record, se_records).
    pub sources: Vec<Value>,
    /// The names it was asked to make.
    pub names: Vec<String>,
    /// What the kit later found it had left on the array (tracked like the kit's own).
    pub left: Vec<ObjId>,
    /// The kit has looked for what it left.
    pub settled: bool,
}

/// A run of the kit.
pub(crate) struct Kit<'a> {
    pub manager: &'a Manager,
    pub plugin: &'a PluginEntry,
    pub opts: &'a Options,
    /// The storage-server record as the run keeps it (access_grps follows the access-group
    /// calls' return values, as a manager keeps it).
    pub ss: Value,
    pub ss_uuid: String,
    pub storage_type: Option<StorageType>,
    /// What the array can do now (getCapabilities), or what the class declares.
    pub caps: Abilities,
    pub results: HashMap<String, Acc>,
    pub known: HashSet<String>,
    pub log: Vec<Logged>,
    pub objs: Vec<Obj>,
    /// Access groups the kit created that exist.
    pub groups: Vec<String>,
    /// Names the array may hold because a refusal the kit expected did not come.
    pub stray_groups: Vec<String>,
    /// 6 hex digits of this run, for access-group entries.
    pub run_hex: String,
    pub entries_made: u32,
    /// Names of the array's volume groups, if getInfo told them.
    pub vol_groups: Option<Vec<String>>,
    /// The array's QoS values.
    pub qos_values: Option<Vec<String>>,
    pub leftovers: Vec<String>,
    /// What a creating call that broke the contract or could not complete asked for (it may
    /// exist on the array although the kit could not track it), described for the report.
    pub maybe_made: Vec<String>,
    /// The asynchronous operations that did not finish, in the order they were started.
    pub unfinished: Vec<Unfinished>,
    /// The reason given to checks nothing judged (set when the run stops early).
    pub fallback: Option<String>,
    /// The LUN the data path found L1 as.
    pub dp_lun: Option<crate::datapath::LunRef>,
    /// The last listing `refusals.change_nothing` took, with the length of `log` right after
    /// it: while no call followed, it is still what the array shows.
    pub refusal_view: Option<(usize, crate::refusals::Seen)>,
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// True if two records designate the same element: the first identifying key both carry
/// (uuid, page83_id, id, name) is equal.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    for key in ["uuid", "page83_id", "id", "name"] {
        if let (Some(x), Some(y)) = (text(a, key), text(b, key)) {
            return x.eq_ignore_ascii_case(y);
        }
    }
    false
}

/// The record's name, for messages.
pub(crate) fn name_of(v: &Value) -> String {
    text(v, "name").map_or_else(|| "(unnamed)".to_string(), str::to_string)
}

/// A value quoted for a message, cut short.
pub(crate) fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        let cut: String = s.chars().take(157).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// The group names in a list of access_grp dicts.
pub(crate) fn group_names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| text(g, "grp_name").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The entries of group `name` in a list of access_grp dicts (lower case).
pub(crate) fn group_entries(list: &Value, name: &str) -> Option<BTreeSet<String>> {
    list.as_array()?
        .iter()
        .find(|g| text(g, "grp_name") == Some(name))
        .map(entries_of)
}

/// The entries of one access_grp dict (lower case).
pub(crate) fn entries_of(group: &Value) -> BTreeSet<String> {
    group
        .get("grp_entries")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// An element record's access_grp_names.
pub(crate) fn presented_names(rec: &Value) -> Option<BTreeSet<String>> {
    rec.get("access_grp_names")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// Whether `id` is in the form multipath uses (what makeMPPage83FromRawPage83 produces).
pub(crate) fn page83_form(id: &str) -> Result<(), String> {
    if let Some(rest) = id.strip_prefix(['1', '8']) {
        if !rest.is_empty()
            && rest.chars().all(|c| c.is_ascii_graphic())
            && !rest.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Ok(());
        }
    }
    match make_mp_page83_from_raw_page83(id) {
        Ok(f) if f == id.to_ascii_lowercase() => Ok(()),
        Ok(f) => Err(format!(
            "page83_id {id:?} is a raw id, not the multipath form ({f:?}); format it with makeMPPage83FromRawPage83"
        )),
        Err(e) => Err(format!("page83_id {id:?} is not in the multipath form: {e}")),
    }
}

/// Where the manager's breach of `rule` in `method` is reported.
pub(crate) fn contract_check(method: Method, rule: Rule) -> String {
    let m = method.name();
    match rule {
        Rule::UpdateRules => format!("{m}.update_rules"),
        Rule::Page83Required => format!("{m}.page83_id"),
        Rule::Capabilities => "getCapabilities.legal".to_string(),
        Rule::SnapshotInList => "list.never_snapshots".to_string(),
        Rule::AsyncWhenSync if method.spec().ability.is_some() => format!("{m}.sync"),
        Rule::ValidateOnlyException
        | Rule::UnknownException
        | Rule::BaseException
        | Rule::ExceptionWithoutKey => format!("{m}.exceptions"),
        _ => format!("{m}.returns"),
    }
}

/// The checks the log judges for `method` (see `derive`): returns, exceptions, and
/// update_rules, page83_id and sync where they apply.
pub(crate) fn derived_ids(method: Method) -> Vec<String> {
    let spec = method.spec();
    let mut ids = vec![
        format!("{}.returns", spec.name),
        format!("{}.exceptions", spec.name),
    ];
    if spec.update_base.is_some() || method == Method::GetInfo {
        ids.push(format!("{}.update_rules", spec.name));
    }
    if spec.page83_required {
        ids.push(format!("{}.page83_id", spec.name));
    }
    if spec.ability.is_some() {
        ids.push(format!("{}.sync", spec.name));
    }
    ids
}

/// The check a breach of `rule` in `method` is reported under by `derive`: its own check
/// when the log judges it, else the method's returns check.
pub(crate) fn reported_check(method: Method, rule: Rule) -> String {
    let id = contract_check(method, rule);
    if derived_ids(method).contains(&id) {
        id
    } else {
        format!("{}.returns", method.name())
    }
}

impl<'a> Kit<'a> {
    pub(crate) fn new(
        manager: &'a Manager,
        plugin: &'a PluginEntry,
        opts: &'a Options,
        catalogue: &[CheckInfo],
    ) -> Self {
        let ss = opts.ss_record.clone();
        let ss_uuid = text(&ss, "uuid").unwrap_or_default().to_string();
        let storage_type = text(&ss, "storage_type").and_then(StorageType::parse);
        let run_hex = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
        Kit {
            manager,
            plugin,
            opts,
            ss,
            ss_uuid,
            storage_type,
            caps: plugin.metadata.plugin_ability.clone(),
            results: HashMap::new(),
            known: catalogue.iter().map(|c| c.id.clone()).collect(),
            log: Vec::new(),
            objs: Vec::new(),
            groups: Vec::new(),
            stray_groups: Vec::new(),
            run_hex,
            entries_made: 0,
            vol_groups: None,
            qos_values: None,
            leftovers: Vec::new(),
            maybe_made: Vec::new(),
            unfinished: Vec::new(),
            fallback: None,
            dp_lun: None,
            refusal_view: None,
        }
    }

    // ---- verdicts -------------------------------------------------------------------------

    fn acc(&mut self, id: &str) -> &mut Acc {
        debug_assert!(self.known.contains(id), "check {id} is not in the catalogue");
        self.results.entry(id.to_string()).or_default()
    }

    pub(crate) fn pass(&mut self, id: &str, reason: impl Into<String>) {
        let r = reason.into();
        self.acc(id).pass.push(r);
    }

    pub(crate) fn fail(&mut self, id: &str, reason: impl Into<String>) {
        let r = reason.into();
        self.acc(id).fail.push(r);
    }

    pub(crate) fn skip(&mut self, id: &str, reason: impl Into<String>) {
        let r = reason.into();
        self.acc(id).skip.push(r);
    }

    pub(crate) fn skip_all(&mut self, ids: &[&str], reason: &str) {
        for id in ids {
            self.skip(id, reason);
        }
    }

    /// A verdict on `ok`: pass with `good`, or fail with `bad`.
    pub(crate) fn verdict(&mut self, id: &str, ok: bool, good: impl Into<String>, bad: impl Into<String>) {
        if ok {
            self.pass(id, good);
        } else {
            self.fail(id, bad);
        }
    }

    /// The call `doing` failed: a contract breach is already charged to its own check, so this
    /// check is skipped with a pointer; anything else fails it.
    pub(crate) fn call_failed(&mut self, id: &str, f: &Failure, doing: &str) {
        match f {
            // A breach charged to this very check is its own failure, not a pointer to itself.
            Failure::Contract { check, .. } if check == id => {
                self.fail(id, format!("{doing} failed: {}", f.describe()))
            }
            Failure::Contract { check, .. } => self.skip(
                id,
                format!("{doing} broke the contract, so this could not be judged (see {check})"),
            ),
            Failure::Unfinished { op, .. } => match self.charge(*op, id) {
                Some(_) => {
                    let why = self.spoiled_by(*op);
                    self.skip(id, format!("{doing} could not be judged: {why}"));
                }
                None => self.fail(id, format!("{doing} failed: {}", f.describe())),
            },
            _ => self.fail(id, format!("{doing} failed: {}", f.describe())),
        }
    }

    /// Charges unfinished operation `op` to check `id` unless another check already carries
    /// it; returns that other check.
    pub(crate) fn charge(&mut self, op: usize, id: &str) -> Option<String> {
        match &self.unfinished[op].charged {
            Some(first) if first != id => Some(first.clone()),
            Some(_) => None,
            None => {
                self.unfinished[op].charged = Some(id.to_string());
                None
            }
        }
    }

    /// Why a check is not charged to the plug-in when unfinished operation `op` spoiled it:
    /// "the asynchronous createSnap of createSnap.online did not finish (see that check); its
    /// snapshot 'conf-1-snap1' may still exist".
    pub(crate) fn spoiled_by(&self, op: usize) -> String {
        let u = &self.unfinished[op];
        let of = u
            .charged
            .as_deref()
            .map_or_else(String::new, |c| format!(" of {c}"));
        let see = if u.charged.is_some() {
            " (see that check)"
        } else {
            ""
        };
        let noun = made_noun(u.method);
        let what = match (noun, u.names.as_slice()) {
            ("", _) => "it may still be running on the array".to_string(),
            (noun, []) => format!("the {noun} it was making may still exist"),
            (noun, names) => {
                let shown: Vec<String> = names.iter().map(|n| spindle_api::names::shown(n)).collect();
                format!("its {noun} {} may still exist", shown.join(", "))
            }
        };
        format!(
            "the asynchronous {}{of} did not finish{see}; {what}",
            u.method.name()
        )
    }

    /// The unfinished operation that worked on element `o`, if any.
    pub(crate) fn unfinished_on(&self, o: ObjId) -> Option<usize> {
        let rec = &self.objs[o].rec;
        self.unfinished
            .iter()
            .position(|u| u.sources.iter().any(|s| same(s, rec)))
    }

    /// Judges a call that should have been refused. `kinds` empty means any of the guides'
    /// exceptions will do; a MissingKeyEx or ValueFormatEx must also name an input of the call
    /// (see [`stray_key`]). Returns the value when the call succeeded instead (the caller
    /// undoes whatever it made).
    pub(crate) fn expect_refused(
        &mut self,
        id: &str,
        r: CallResult,
        kinds: &[ExceptionKind],
        attempt: &str,
    ) -> Option<Value> {
        match r {
            Ok(v) => {
                let wanted = if kinds.is_empty() {
                    "to be refused".to_string()
                } else {
                    format!("to be refused with {}", kind_list(kinds))
                };
                self.fail(
                    id,
                    format!(
                        "expected {attempt} {wanted}, but it succeeded (returned {})",
                        brief(&v)
                    ),
                );
                Some(v)
            }
            Err(f @ Failure::Refused { .. }) => {
                let kind = f.kind().unwrap_or(ExceptionKind::OperationFailedEx);
                // A refusal that points the caller at a key it never passed is not the refusal
                // the rule asks for: the guides have the key name the bad or missing input.
                let stray = match &f {
                    Failure::Refused {
                        stray_key: Some(why), ..
                    } => format!(", but {why}"),
                    _ => String::new(),
                };
                if !kinds.is_empty() && !kinds.contains(&kind) {
                    self.fail(
                        id,
                        format!(
                            "expected {attempt} to be refused with {}; {}{stray}",
                            kind_list(kinds),
                            f.describe()
                        ),
                    );
                } else if stray.is_empty() {
                    self.pass(id, format!("{attempt}: {}", f.describe()));
                } else {
                    self.fail(id, format!("{attempt}: {}{stray}", f.describe()));
                }
                None
            }
            Err(f) => {
                self.call_failed(id, &f, attempt);
                None
            }
        }
    }

    /// Judges a call that should raise MissingKeyEx naming `key`.
    pub(crate) fn expect_missing_key(
        &mut self,
        id: &str,
        r: CallResult,
        key: &str,
        attempt: &str,
    ) -> Option<Value> {
        match r {
            Err(f @ Failure::Refused { .. }) if f.kind() == Some(ExceptionKind::MissingKeyEx) => {
                if f.key() == Some(key) {
                    self.pass(id, format!("{attempt}: {}", f.describe()));
                } else {
                    self.fail(
                        id,
                        format!(
                            "expected {attempt} to raise MissingKeyEx naming {key}; {} (key: {})",
                            f.describe(),
                            f.key().unwrap_or("none")
                        ),
                    );
                }
                None
            }
            other => self.expect_refused(id, other, &[ExceptionKind::MissingKeyEx], attempt),
        }
    }

    // ---- calls ----------------------------------------------------------------------------

    pub(crate) fn args(&self, params: Vec<(&str, Value)>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("ss_record".into(), self.ss.clone());
        for (k, v) in params {
            m.insert(k.to_string(), v);
        }
        m
    }

    /// Calls `method` with the run's ss_record and `params`.
    pub(crate) async fn call(&mut self, method: Method, params: Vec<(&str, Value)>) -> CallResult {
        let args = self.args(params);
        self.call_raw(method, args, None).await.0
    }

    /// Calls `method` and collects the progress events of an asynchronous operation.
    pub(crate) async fn call_with_progress(
        &mut self,
        method: Method,
        params: Vec<(&str, Value)>,
    ) -> (CallResult, Vec<ProgressEvent>) {
        let args = self.args(params);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (r, _) = self.call_raw(method, args, Some(tx)).await;
        let mut events = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            events.push(ev);
        }
        (r, events)
    }

    /// Calls `method` with exactly `args`.
    pub(crate) async fn call_raw(
        &mut self,
        method: Method,
        args: Map<String, Value>,
        progress: Option<mpsc::UnboundedSender<ProgressEvent>>,
    ) -> (CallResult, u32) {
        // Progress events are always collected: one means the call started an asynchronous
        // operation, so a call that then could not complete left it unfinished.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let opts = CallOptions {
            progress: Some(tx),
            call_id: None,
            ..Default::default()
        };
        // What the call asked for (what a creating call may have made), and what the plug-in
        // was given, to judge the key of a refusal against.
        let args_copy = args.clone();
        let sources: Vec<Value> = args
            .get("se_records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .chain(args.get("se_record").cloned())
            .filter(Value::is_object)
            .collect();
        let out = self.manager.call(self.plugin, method, args, opts).await;
        let mut went_async = false;
        while let Ok(ev) = rx.try_recv() {
            went_async = true;
            if let Some(fwd) = &progress {
                let _ = fwd.send(ev);
            }
        }
        let mut entry = Logged {
            method,
            ok: out.is_ok(),
            rejected: matches!(out, Err(CallError::Rejected(_))),
            async_polls: 0,
            printed: Vec::new(),
            violations: Vec::new(),
        };
        let r = match out {
            Ok(o) => {
                entry.async_polls = o.async_polls;
                entry.printed = o.printed;
                entry.violations = o.violations.into_iter().map(|v| (method, v)).collect();
                Ok(o.value)
            }
            // The manager's own refusals name the parameter it checked; only the plug-in's
            // keys are judged.
            Err(CallError::Rejected(exc)) => Err(Failure::Refused {
                by_manager: true,
                exc,
                stray_key: None,
            }),
            Err(CallError::Raised(exc)) => Err(Failure::Refused {
                by_manager: false,
                stray_key: stray_key(method, &args_copy, &exc, &self.objs),
                exc,
            }),
            Err(CallError::Failed(exc)) if went_async => {
                self.unfinished.push(Unfinished {
                    method,
                    charged: None,
                    sources,
                    names: requested_names(method, &args_copy),
                    left: Vec::new(),
                    settled: false,
                });
                Err(Failure::Unfinished {
                    exc,
                    op: self.unfinished.len() - 1,
                })
            }
            Err(CallError::Failed(e)) => Err(Failure::Failed(e)),
            Err(CallError::Contract(cf)) => {
                let at = Method::parse(cf.method).unwrap_or(method);
                // Where derive reports the breach, so that a skip can point at it.
                let check = cf
                    .violations
                    .first()
                    .map(|v| reported_check(at, v.rule))
                    .filter(|c| self.known.contains(c))
                    .unwrap_or_else(|| format!("{}.returns", at.name()));
                entry.violations = cf.violations.iter().cloned().map(|v| (at, v)).collect();
                Err(Failure::Contract {
                    check,
                    text: cf.to_string(),
                })
            }
        };
        if matches!(
            r,
            Err(Failure::Contract { .. } | Failure::Failed(_) | Failure::Unfinished { .. })
        ) {
            for d in requested(method, &args_copy) {
                if !self.maybe_made.contains(&d) {
                    self.maybe_made.push(d);
                }
            }
        }
        let polls = entry.async_polls;
        self.log.push(entry);
        (r, polls)
    }

    // ---- objects --------------------------------------------------------------------------

    /// `prefix` + `what`.
    pub(crate) fn name(&self, what: &str) -> String {
        format!("{}{what}", self.opts.prefix)
    }

    /// A fresh access-group entry of the array's kind (initiator name or WWN).
    pub(crate) fn entry(&mut self) -> String {
        self.entries_made += 1;
        let n = self.entries_made;
        match self.storage_type {
            Some(StorageType::San) => format!("0x2100{}{n:06x}", self.run_hex),
            _ => format!("iqn.2024-01.org.spindle.conformance:r{}-e{n}", self.run_hex),
        }
    }

    /// Tracks an element (or returns the one already tracked that the record designates).
    pub(crate) fn track(&mut self, role: &str, kind: Kind, rec: Value) -> ObjId {
        if let Some(i) = self.objs.iter().position(|o| !o.gone && same(&o.rec, &rec)) {
            return i;
        }
        let presented = presented_names(&rec).unwrap_or_default();
        self.objs.push(Obj {
            role: role.to_string(),
            kind,
            rec,
            presented,
            gone: false,
        });
        self.objs.len() - 1
    }

    /// Records that `o` no longer exists.
    pub(crate) fn mark_gone(&mut self, o: ObjId) {
        self.objs[o].gone = true;
        self.objs[o].presented.clear();
    }

    pub(crate) fn rec(&self, o: ObjId) -> Value {
        self.objs[o].rec.clone()
    }

    pub(crate) fn label(&self, o: ObjId) -> String {
        let ob = &self.objs[o];
        format!("{} {} ({})", ob.kind.noun(), ob.role, name_of(&ob.rec))
    }

    /// A record that designates nothing on the array.
    pub(crate) fn ghost_se(&self, se_type: &str) -> Value {
        json!({
            "se_type": se_type,
            "ss_uuid": self.ss_uuid,
            "name": self.name("ghost"),
            "uuid": format!("00000000-0000-4000-8000-0000{}00", self.run_hex),
            "id": self.name("ghost"),
            "page83_id": format!("36000000000000000000000000{}", self.run_hex),
        })
    }

    /// Runs a blocking data-path operation off the async workers' backs.
    pub(crate) fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
            _ => f(),
        }
    }
}

/// What a creating method makes ("" for the others).
pub(crate) fn made_noun(method: Method) -> &'static str {
    match method {
        Method::Create => "element",
        Method::Clone | Method::CloneFromSnap => "clone",
        Method::CreateSnap | Method::CreateMultiSnap => "snapshot",
        Method::CreateAccessGroups => "access group",
        _ => "",
    }
}

/// The names a creating call asked for.
fn requested_names(method: Method, args: &Map<String, Value>) -> Vec<String> {
    let name_in = |param: &str| args.get(param).and_then(|r| text(r, "name")).map(str::to_string);
    match method {
        Method::Create => name_in("se_record").into_iter().collect(),
        Method::Clone | Method::CloneFromSnap => name_in("dest_se_record").into_iter().collect(),
        Method::CreateSnap | Method::CreateMultiSnap => name_in("snap_se_record").into_iter().collect(),
        Method::CreateAccessGroups => group_names(args.get("access_grps").unwrap_or(&Value::Null)),
        _ => Vec::new(),
    }
}

/// What a creating call asked for, described for the report ("snapshot 'conf-1-snap1' (asked
/// of createSnap, which did not return it)").
pub(crate) fn requested_text(method: Method, name: &str) -> String {
    format!(
        "{} {} (asked of {}, which did not return it)",
        made_noun(method),
        spindle_api::names::shown(name),
        method.name()
    )
}

/// What a creating call asked for, described for the report.
fn requested(method: Method, args: &Map<String, Value>) -> Vec<String> {
    requested_names(method, args)
        .iter()
        .map(|n| requested_text(method, n))
        .collect()
}

/// "A", "A or B", "A, B or C".
pub(crate) fn kind_list(kinds: &[ExceptionKind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    match names.as_slice() {
        [] => "an exception".to_string(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Why the key of `exc`, a MissingKeyEx or ValueFormatEx the plug-in raised when called with
/// `args`, names nothing the call was given; `None` when it names an input (or the exception
/// takes no key, or has none: the manager charges that to `<method>.exceptions`).
///
/// The guides have these exceptions carry the key whose value is invalid or missing, so a
/// caller can point at what to fix: a parameter of the method or a key of a record it passed
/// (`name` of `snap_se_record`, `grp_name` of an `access_grps` entry). A key of the plug-in's
/// own making (`snap_name` for the snapshot record's `name`) points at nothing. A MissingKeyEx
/// names a key that is absent, so for it any key the guides define for a record parameter's
/// kind also counts, and any key the plug-in's own element records carry (`made`: a plug-in
/// may need a key it put in the records it returned).
pub(crate) fn stray_key(
    method: Method,
    args: &Map<String, Value>,
    exc: &PluginException,
    made: &[Obj],
) -> Option<String> {
    if !exc.kind.takes_key() {
        return None;
    }
    let key = exc.key.as_deref().filter(|k| !k.is_empty())?;
    let spec = method.spec();
    let mut records = Vec::new();
    for (param, value) in args {
        let items: Vec<&Value> = match value {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        let keys: Vec<&String> = items
            .iter()
            .filter_map(|v| v.as_object())
            .flat_map(|m| m.keys())
            .collect();
        if !keys.is_empty() {
            records.push(param.as_str());
        }
        if keys.iter().any(|k| k.as_str() == key) {
            return None;
        }
    }
    if spec.params.iter().any(|p| p.name == key) {
        return None;
    }
    if exc.kind == ExceptionKind::MissingKeyEx {
        let defined = spec
            .params
            .iter()
            .filter_map(|p| record_kind(p.kind))
            .any(|kind| kind.field(key).is_some());
        let carried = made
            .iter()
            .any(|o| o.rec.as_object().is_some_and(|m| m.contains_key(key)));
        if defined || carried {
            return None;
        }
    }
    let params: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
    Some(format!(
        "its key {} names nothing the call was given: neither a parameter of {} ({}) nor a key of the records it was given ({})",
        spindle_api::names::shown(key),
        spec.name,
        params.join(", "),
        records.join(", ")
    ))
}

/// The kind of record a parameter of `kind` holds (each item's, for a list).
fn record_kind(kind: ParamKind) -> Option<RecordKind> {
    match kind {
        ParamKind::SsRecord => Some(RecordKind::SsRecord),
        ParamKind::SeRecord | ParamKind::SeRecordList | ParamKind::AnyRecord => Some(RecordKind::SeRecord),
        ParamKind::AccessGrpList => Some(RecordKind::AccessGrp),
        _ => None,
    }
}

/// The exceptions a bad value is refused with.
pub(crate) const BAD_VALUE: &[ExceptionKind] = &[ExceptionKind::InvalidValueEx, ExceptionKind::ValueFormatEx];
