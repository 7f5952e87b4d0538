//! Storage elements: create, list, getInfo, resize, present, remove, snapshots, clones,
//! splits, restore and QoS — each operation performed the way the array's abilities say.

use crate::groups::Groups;
use crate::kit::{brief, name_of, page83_form, same, CallResult, Failure, Kind, Kit, ObjId, BAD_VALUE, MIB};
use crate::preamble::ability_name;
use serde_json::{json, Value};
use spindle_api::{ExceptionKind, Method, OpAbility, OpKey, ParamKind, StorageType, METHODS};
use spindle_manager::ProgressEvent;

/// Size of the LUNs the kit creates.
pub(crate) const SIZE: i64 = 64 * MIB;
/// What resize grows L1 to.
pub(crate) const GROWN: i64 = 128 * MIB;

/// Everything the element checks need to know about each other.
#[derive(Debug, Default)]
struct Els {
    l1: Option<ObjId>,
    l2: Option<ObjId>,
    s1: Option<ObjId>,
    c1: Option<ObjId>,
    c2: Option<ObjId>,
    split_done: bool,
}

fn as_bool(v: &Value) -> Option<bool> {
    v.as_bool()
}

impl Kit<'_> {
    pub(crate) fn ability(&self, op: OpKey) -> OpAbility {
        self.caps.op(op)
    }

    pub(crate) fn supported(&self, op: OpKey) -> bool {
        self.ability(op).is_supported()
    }

    /// Runs `method` (which an ability governs) on `o` as the ability says, recording
    /// `<method>.online`.
    pub(crate) async fn governed(
        &mut self,
        method: Method,
        o: ObjId,
        params: Vec<(&'static str, Value)>,
        present_to: Option<&str>,
        progress: bool,
    ) -> (CallResult, Vec<ProgressEvent>) {
        let Some(op) = method.spec().ability else {
            return self.do_call(method, params, progress).await;
        };
        let key = op.as_str();
        let online_id = format!("{}.online", method.name());
        let label = self.label(o);
        match self.ability(op) {
            OpAbility::Unsupported => self.do_call(method, params, progress).await,
            OpAbility::Offline => {
                self.skip(
                    &online_id,
                    format!("{key} is OFFLINE: {method} ran with the element offline"),
                );
                let _ = self.call(Method::Offline, vec![("se_record", self.rec(o))]).await;
                let out = self.do_call(method, params, progress).await;
                let _ = self.call(Method::Online, vec![("se_record", self.rec(o))]).await;
                out
            }
            OpAbility::Online => {
                let mut presented_here = None;
                if self.objs[o].presented.is_empty() {
                    if let Some(g) = present_to {
                        let g = g.to_string();
                        if self.present(o, std::slice::from_ref(&g)).await {
                            presented_here = Some(g);
                        }
                    }
                }
                let groups: Vec<String> = self.objs[o].presented.iter().cloned().collect();
                if groups.is_empty() {
                    self.skip(
                        &online_id,
                        "the element could not be presented (access_control is NO or startPresent failed)",
                    );
                    return self.do_call(method, params, progress).await;
                }
                let first = self.do_call(method, params.clone(), progress).await;
                let out = match &first.0 {
                    Ok(_) => {
                        self.pass(
                            &online_id,
                            format!(
                                "{method} of {label} worked while it was presented to {} and online",
                                groups.join(", ")
                            ),
                        );
                        first
                    }
                    Err(f) if Self::is_no_such_operation(f) => {
                        self.skip(&online_id, format!("{method} raised NoSuchOperationEx"));
                        first
                    }
                    Err(f @ Failure::Contract { .. }) => {
                        let f = f.clone();
                        self.call_failed(&online_id, &f, &format!("{method} of {label}"));
                        first
                    }
                    // No second attempt offline: the operation may still go on and may have
                    // made what it was asked for, so another would only collide with it.
                    // The checks that would judge its result are skipped, pointing here.
                    Err(f @ Failure::Unfinished { op, .. }) => {
                        let (f, op) = (f.clone(), *op);
                        self.charge(op, &online_id);
                        self.fail(
                            &online_id,
                            format!(
                                "{key} is ONLINE, but {method} of {label} while it was presented to {} and online failed: {}",
                                groups.join(", "),
                                f.describe()
                            ),
                        );
                        first
                    }
                    Err(f) => {
                        self.fail(
                            &online_id,
                            format!(
                                "{key} is ONLINE, but {method} of {label} while it was presented to {} and online failed: {}",
                                groups.join(", "),
                                f.describe()
                            ),
                        );
                        // Once more, the way an array without online support would need it.
                        self.unpresent(o, &groups).await;
                        let _ = self.call(Method::Offline, vec![("se_record", self.rec(o))]).await;
                        let again = self.do_call(method, params, progress).await;
                        let _ = self.call(Method::Online, vec![("se_record", self.rec(o))]).await;
                        self.present(o, &groups).await;
                        again
                    }
                };
                if let Some(g) = presented_here {
                    self.unpresent(o, &[g]).await;
                }
                out
            }
        }
    }

    async fn do_call(
        &mut self,
        method: Method,
        params: Vec<(&'static str, Value)>,
        progress: bool,
    ) -> (CallResult, Vec<ProgressEvent>) {
        if progress {
            self.call_with_progress(method, params).await
        } else {
            (self.call(method, params).await, Vec::new())
        }
    }

    /// A partial record naming a new element (what create, createSnap and clone are given).
    pub(crate) fn partial(&self, se_type: &str, name: &str) -> Value {
        json!({"se_type": se_type, "ss_uuid": self.ss_uuid, "name": name})
    }

    pub(crate) fn lun_record(&self, name: &str, size: i64) -> Value {
        let mut se = json!({"se_type": "LUNType", "ss_uuid": self.ss_uuid, "name": name, "size": size});
        if let Some(vg) = &self.opts.vol_group {
            se["vol_group_name"] = json!(vg);
        }
        se
    }

    /// Removes (or snapRemoves) something a probe made by mistake, right away.
    /// `isCloneable.snapshot_consistent`: what isCloneable says of snapshot S1, clone does
    /// (snapshots are usually cloned by cloneFromSnap, so an array may say False; one that
    /// says True must then clone it).
    async fn snapshot_cloneable_check(&mut self, els: &Els, custom: bool) {
        const ID: &str = "isCloneable.snapshot_consistent";
        let Some(s1) = els.s1.filter(|&o| !self.objs[o].gone) else {
            self.skip(ID, "the kit has no snapshot S1");
            return;
        };
        match self
            .call(Method::IsCloneable, vec![("se_record", self.rec(s1))])
            .await
        {
            Ok(Value::Bool(false)) => self.pass(ID, "isCloneable(S1) says False"),
            Ok(Value::Bool(true)) => {
                let name = self.name("clone-of-s1");
                let mut params = vec![("se_record", self.rec(s1))];
                if custom {
                    params.push(("dest_se_record", self.partial("SnapCloneType", &name)));
                }
                match self.call(Method::Clone, params).await {
                    Ok(v) => {
                        self.pass(ID, "isCloneable(S1) said True, and clone of S1 worked");
                        self.undo(v, Kind::Clone, "clone-of-s1").await;
                    }
                    Err(f) => self.fail(
                        ID,
                        format!(
                            "isCloneable(S1) said True, yet clone of S1 failed: {}",
                            f.describe()
                        ),
                    ),
                }
            }
            Ok(v) => self.fail(ID, format!("isCloneable returned {}", brief(&v))),
            Err(f) => self.call_failed(ID, &f, "isCloneable(S1)"),
        }
    }

    async fn undo(&mut self, v: Value, kind: Kind, role: &str) {
        if self.objs.iter().any(|o| !o.gone && same(&o.rec, &v)) {
            return; // the plug-in handed back something the kit already has
        }
        let o = self.track(role, kind, v);
        self.drop_obj(o).await;
    }

    /// remove / snapRemove of `o`; true when it worked.
    async fn drop_obj(&mut self, o: ObjId) -> bool {
        let method = if self.objs[o].kind == Kind::Snap {
            (Method::SnapRemove, "snap_se_record")
        } else {
            (Method::Remove, "se_record")
        };
        let ok = self.call(method.0, vec![(method.1, self.rec(o))]).await.is_ok();
        if ok {
            self.mark_gone(o);
        }
        ok
    }

    /// Page 83 form, and uniqueness among the kit's elements.
    fn page83_verdict(&mut self, id: &str, o: ObjId) {
        let label = self.label(o);
        let rec = self.rec(o);
        let Some(p) = rec
            .get("page83_id")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        else {
            self.fail(id, format!("{label} has no page83_id"));
            return;
        };
        if let Err(e) = page83_form(p) {
            self.fail(id, format!("{label}: {e}"));
            return;
        }
        let clash = self.objs.iter().enumerate().find(|(i, other)| {
            *i != o
                && !same(&other.rec, &rec)
                && other.rec.get("page83_id").and_then(Value::as_str) == Some(p)
        });
        match clash {
            Some((i, _)) => {
                let other = self.label(i);
                self.fail(id, format!("{label} has page83_id {p}, the same as {other}"));
            }
            None => self.pass(id, format!("{label}: page83_id {p}")),
        }
    }

    async fn create_lun(&mut self, role: &str, name: &str) -> Option<ObjId> {
        let se = self.lun_record(name, SIZE);
        match self.call(Method::Create, vec![("se_record", se)]).await {
            Ok(rec) => {
                let mut bad = Vec::new();
                if rec.get("se_type").and_then(Value::as_str) != Some("LUNType") {
                    bad.push(format!(
                        "se_type {}",
                        brief(rec.get("se_type").unwrap_or(&Value::Null))
                    ));
                }
                if rec.get("name").and_then(Value::as_str) != Some(name) {
                    bad.push(format!(
                        "name {} instead of {name:?}",
                        brief(rec.get("name").unwrap_or(&Value::Null))
                    ));
                }
                if rec.get("ss_uuid").and_then(Value::as_str) != Some(self.ss_uuid.as_str()) {
                    bad.push(format!(
                        "ss_uuid {}",
                        brief(rec.get("ss_uuid").unwrap_or(&Value::Null))
                    ));
                }
                match rec.get("size").and_then(Value::as_i64) {
                    Some(s) if s >= SIZE => {}
                    other => bad.push(format!("size {other:?}, but {SIZE} bytes were asked for")),
                }
                let o = self.track(role, Kind::Lun, rec.clone());
                self.verdict(
                    "create.returns_element",
                    bad.is_empty(),
                    format!("created {}", self.label(o)),
                    format!("create of {name:?} returned {}", bad.join(", ")),
                );
                self.page83_verdict("create.page83_id", o);
                match self.qos_values.clone() {
                    Some(vals) if !vals.is_empty() => {
                        let q = rec.get("qos").and_then(Value::as_str);
                        self.verdict(
                            "create.qos_filled",
                            q.is_some_and(|q| vals.iter().any(|v| v == q)),
                            format!("{name} has QoS {:?}", q.unwrap_or("")),
                            format!(
                                "create returned qos {}; expected one of {}",
                                brief(rec.get("qos").unwrap_or(&Value::Null)),
                                vals.join(", ")
                            ),
                        );
                    }
                    Some(_) => self.skip("create.qos_filled", "the array offers no QoS values"),
                    None => self.skip(
                        "create.qos_filled",
                        "getQoSList did not answer (see getQoSList.values)",
                    ),
                }
                Some(o)
            }
            Err(f) => {
                self.call_failed("create.returns_element", &f, &format!("create of {name:?}"));
                None
            }
        }
    }

    async fn create_probes(&mut self, l2: Option<ObjId>) {
        match l2 {
            Some(o) => {
                let name = name_of(&self.rec(o));
                if let Some(v) = self
                    .refused_call(
                        "create.duplicate_name_refused",
                        Method::Create,
                        vec![("se_record", self.lun_record(&name, SIZE))],
                        &[],
                        &format!("creating a second element named {name:?}"),
                    )
                    .await
                {
                    self.undo(v, Kind::Lun, "duplicate").await;
                }
            }
            None => self.skip("create.duplicate_name_refused", "no element to copy the name of"),
        }
        let neg = self.name("neg");
        if let Some(v) = self
            .refused_call(
                "create.negative_size_refused",
                Method::Create,
                vec![("se_record", self.lun_record(&neg, -SIZE))],
                BAD_VALUE,
                &format!("create with size {}", -SIZE),
            )
            .await
        {
            self.undo(v, Kind::Lun, "negative").await;
        }
        let zero = self.name("zero");
        if let Some(v) = self
            .refused_call(
                "create.zero_size_refused",
                Method::Create,
                vec![("se_record", self.lun_record(&zero, 0))],
                BAD_VALUE,
                "create with size 0",
            )
            .await
        {
            self.undo(v, Kind::Lun, "zero").await;
        }
        match self.vol_groups.clone() {
            Some(pools) if !pools.is_empty() => {
                let pool = self.name("no-such-pool");
                let mut se = self.lun_record(&self.name("nopool"), SIZE);
                se["vol_group_name"] = json!(pool);
                if let Some(v) = self
                    .refused_call(
                        "create.unknown_pool_refused",
                        Method::Create,
                        vec![("se_record", se)],
                        BAD_VALUE,
                        &format!(
                            "create in vol_group_name {pool:?} (the array has {})",
                            pools.join(", ")
                        ),
                    )
                    .await
                {
                    self.undo(v, Kind::Lun, "no-pool").await;
                }
            }
            _ => self.skip(
                "create.unknown_pool_refused",
                "getInfo reports no vol_groups, so there is no pool to get wrong",
            ),
        }
        let bad = self.name("a/../b");
        if let Some(v) = self
            .refused_call(
                "create.bad_name_refused",
                Method::Create,
                vec![("se_record", self.lun_record(&bad, SIZE))],
                BAD_VALUE,
                &format!("create of an element named {bad:?}"),
            )
            .await
        {
            self.undo(v, Kind::Lun, "bad-name").await;
        }
        self.unusual_name_probes().await;
        let mut se = self.lun_record(&self.name("nosize"), SIZE);
        if let Some(m) = se.as_object_mut() {
            m.remove("size");
        }
        let r = self.call(Method::Create, vec![("se_record", se)]).await;
        if let Some(v) = self.expect_missing_key("create.missing_key", r, "size", "create without size") {
            self.undo(v, Kind::Lun, "no-size").await;
        }
    }

    /// `create.unusual_name_kept_or_refused`: names holding shell metacharacters, control
    /// characters or 300 characters. The guides set no rule on what a name may hold, so an
    /// array may take them; it must then keep the name as given, or else refuse it as the
    /// invalid value it is for that array.
    async fn unusual_name_probes(&mut self) {
        const ID: &str = "create.unusual_name_kept_or_refused";
        const LONG: usize = 300;
        let long_tail = "n".repeat(LONG.saturating_sub(self.opts.prefix.chars().count()));
        let cases = [
            ("a shell command separator", self.name("a;b")),
            ("a command substitution", self.name("$(x)")),
            ("a tab", self.name("a\tb")),
            ("a newline", self.name("a\nb")),
            ("300 characters", self.name(&long_tail)),
        ];
        let mut refused = Vec::new();
        let mut kept = Vec::new();
        let mut bad = Vec::new();
        for (what, name) in cases {
            let shown = spindle_api::names::shown(&name);
            let attempt = format!("create of a name with {what} ({shown})");
            let r = self
                .call(Method::Create, vec![("se_record", self.lun_record(&name, SIZE))])
                .await;
            match r {
                Ok(v) => {
                    match self.name_kept(&v, &name).await {
                        Ok(()) => kept.push(what),
                        Err(why) => bad.push(format!("{attempt}: made the element, but {why}")),
                    }
                    self.undo(v, Kind::Lun, "unusual-name").await;
                }
                Err(f @ Failure::Refused { .. }) => {
                    let stray = match &f {
                        Failure::Refused {
                            stray_key: Some(why), ..
                        } => Some(why.clone()),
                        _ => None,
                    };
                    match (f.kind(), stray) {
                        (_, Some(why)) => bad.push(format!("{attempt}: {}, but {why}", f.describe())),
                        (Some(kind), None) if BAD_VALUE.contains(&kind) => {
                            refused.push(format!("{what} with {kind}"))
                        }
                        _ => bad.push(format!(
                            "{attempt}: expected InvalidValueEx or ValueFormatEx (a name the array cannot hold is an invalid value), or the element under that name; {}",
                            f.describe()
                        )),
                    }
                }
                Err(f) => self.call_failed(ID, &f, &attempt),
            }
        }
        if !bad.is_empty() {
            self.fail(ID, bad.join("; "));
        } else if !refused.is_empty() || !kept.is_empty() {
            let mut said = Vec::new();
            if !refused.is_empty() {
                said.push(format!("refused names with {}", refused.join(", ")));
            }
            if !kept.is_empty() {
                said.push(format!("made and kept names with {}", kept.join(", ")));
            }
            self.pass(ID, said.join("; "));
        }
    }

    /// Whether element record `v`, which create returned for `name`, carries that name and
    /// getInfo reports it under it; why not, if not.
    async fn name_kept(&mut self, v: &Value, name: &str) -> Result<(), String> {
        let returned = v.get("name").and_then(Value::as_str);
        if returned != Some(name) {
            return Err(format!(
                "create returned name {}",
                brief(v.get("name").unwrap_or(&Value::Null))
            ));
        }
        match self.call(Method::GetInfo, vec![("se_record", v.clone())]).await {
            Ok(info) if info.get("name").and_then(Value::as_str) == Some(name) => Ok(()),
            Ok(info) => Err(format!(
                "getInfo of it reports name {}",
                brief(info.get("name").unwrap_or(&Value::Null))
            )),
            Err(f) => Err(format!("getInfo of it failed: {}", f.describe())),
        }
    }

    /// list: what the kit made is there, once, and no snapshot is.
    async fn list_checks(&mut self, filter: &str) {
        match self.call(Method::List, vec![]).await {
            Ok(v) => {
                let items = v.as_array().cloned().unwrap_or_default();
                let mut missing = Vec::new();
                let mut snaps = Vec::new();
                for i in 0..self.objs.len() {
                    let ob = &self.objs[i];
                    if ob.gone {
                        continue;
                    }
                    let found = items.iter().any(|r| same(r, &ob.rec));
                    match ob.kind {
                        Kind::Snap if found => snaps.push(self.label(i)),
                        Kind::Snap => {}
                        _ if !found => missing.push(self.label(i)),
                        _ => {}
                    }
                }
                let n = self
                    .objs
                    .iter()
                    .filter(|o| !o.gone && o.kind != Kind::Snap)
                    .count();
                self.verdict(
                    "list.lists_created",
                    missing.is_empty(),
                    format!("list shows all {n} LUNs and clones the kit has"),
                    format!("list does not show {}", missing.join(", ")),
                );
                let nsnaps = self
                    .objs
                    .iter()
                    .filter(|o| !o.gone && o.kind == Kind::Snap)
                    .count();
                self.verdict(
                    "list.never_snapshots",
                    snaps.is_empty(),
                    format!("no snapshot in list ({nsnaps} snapshot(s) exist)"),
                    format!("list returned the snapshot(s) {}", snaps.join(", ")),
                );
                let mut dups = Vec::new();
                for (i, a) in items.iter().enumerate() {
                    if items[..i].iter().any(|b| same(a, b)) {
                        dups.push(name_of(a));
                    }
                }
                self.verdict(
                    "list.no_duplicates",
                    dups.is_empty(),
                    format!("{} elements, each once", items.len()),
                    format!("list names {} more than once", dups.join(", ")),
                );
                for i in 0..self.objs.len() {
                    if !self.objs[i].gone && self.objs[i].kind != Kind::Snap {
                        if let Some(r) = items.iter().find(|r| same(r, &self.objs[i].rec)) {
                            match r.get("page83_id").and_then(Value::as_str) {
                                Some(p) if !p.is_empty() => match page83_form(p) {
                                    Ok(()) => self.pass(
                                        "list.page83_id",
                                        format!("{} listed with page83_id {p}", self.label(i)),
                                    ),
                                    Err(e) => self.fail("list.page83_id", format!("in list: {e}")),
                                },
                                _ => self.fail(
                                    "list.page83_id",
                                    format!("list shows {} without page83_id", self.label(i)),
                                ),
                            }
                        }
                    }
                }
            }
            Err(f) => self.call_failed("list.lists_created", &f, "list"),
        }
        match self.call(Method::List, vec![("se_type", json!([filter]))]).await {
            Ok(v) => {
                let other: Vec<String> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|r| r.get("se_type").and_then(Value::as_str) != Some(filter))
                            .map(|r| {
                                format!(
                                    "{} ({})",
                                    name_of(r),
                                    brief(r.get("se_type").unwrap_or(&Value::Null))
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.verdict(
                    "list.honours_se_type",
                    other.is_empty(),
                    format!("list([{filter}]) returned only {filter} elements"),
                    format!("list([{filter}]) returned {}", other.join(", ")),
                );
            }
            Err(f) => self.call_failed("list.honours_se_type", &f, &format!("list([{filter}])")),
        }
    }

    /// The `<method>.unsupported` check of every method an UNSUPPORTED ability governs, with
    /// real arguments. `deferred` methods wait for an object the run makes later.
    async fn unsupported_checks(&mut self, els: &Els, only: Option<Method>) {
        for spec in METHODS {
            let Some(op) = spec.ability else { continue };
            if only.is_some_and(|m| m != spec.method) {
                continue;
            }
            let id = format!("{}.unsupported", spec.name);
            let a = self.ability(op);
            if a.is_supported() {
                if only.is_none() {
                    self.skip(&id, format!("{} is {}", op.as_str(), ability_name(a)));
                }
                continue;
            }
            self.skip(
                &format!("{}.online", spec.name),
                format!("{} is UNSUPPORTED", op.as_str()),
            );
            // A clone to split and a snapshot to clone come later, when the run has them.
            let deferred =
                (spec.method == Method::SplitClone && self.supported(OpKey::Clone) && only.is_none())
                    || (spec.method == Method::CloneFromSnap
                        && self.supported(OpKey::Snapshot)
                        && only.is_none());
            if deferred {
                continue;
            }
            let Some(l1) = els.l1 else {
                self.skip(
                    &id,
                    "the kit has no element to try it on (see create.returns_element)",
                );
                continue;
            };
            let mut params: Vec<(&'static str, Value)> = Vec::new();
            for p in spec.params.iter().skip(1) {
                let v = match (p.name, p.kind) {
                    ("se_record", _) if spec.method == Method::SplitClone => self.rec(els.c1.unwrap_or(l1)),
                    ("se_record", _) => self.rec(l1),
                    ("snap_se_record", _) if spec.method == Method::CloneFromSnap => match els.s1 {
                        Some(s) => self.rec(s),
                        None => self.ghost_se("SnapType"),
                    },
                    ("snap_se_record", _) => self.partial("SnapType", &self.name("unsup-snap")),
                    ("dest_se_record", _) => self.partial("SnapCloneType", &self.name("unsup-clone")),
                    (_, ParamKind::SeRecordList) => {
                        let mut l = vec![self.rec(l1)];
                        if let Some(l2) = els.l2 {
                            l.push(self.rec(l2));
                        }
                        json!(l)
                    }
                    (_, ParamKind::Integer) => json!(GROWN),
                    _ => continue,
                };
                params.push((p.name, v));
            }
            let r = self.call(spec.method, params).await;
            match r {
                Err(f) if Self::is_no_such_operation(&f) => self.pass(
                    &id,
                    format!(
                        "{} is UNSUPPORTED and {}: {}",
                        op.as_str(),
                        spec.name,
                        f.describe()
                    ),
                ),
                Ok(v) => {
                    self.fail(
                        &id,
                        format!(
                            "{} is UNSUPPORTED, but {} succeeded (returned {}); it should raise NoSuchOperationEx",
                            op.as_str(),
                            spec.name,
                            brief(&v)
                        ),
                    );
                    let kind = match spec.method {
                        Method::CreateSnap | Method::CreateMultiSnap => Some(Kind::Snap),
                        Method::Clone | Method::CloneFromSnap => Some(Kind::Clone),
                        _ => None,
                    };
                    match kind {
                        Some(kind) if v.is_object() => self.undo(v, kind, "unexpected").await,
                        // A resize that happened anyway: the element's size is the new one now.
                        None if spec.method == Method::Resize && same(&v, &self.rec(l1)) => {
                            self.objs[l1].rec = v;
                        }
                        _ => {}
                    }
                }
                Err(f @ Failure::Contract { .. }) => self.call_failed(&id, &f, spec.name),
                Err(f) => self.fail(
                    &id,
                    format!(
                        "{} is UNSUPPORTED, so {} should raise NoSuchOperationEx; {}",
                        op.as_str(),
                        spec.name,
                        f.describe()
                    ),
                ),
            }
        }
    }

    /// The whole element scenario.
    pub(crate) async fn elements(&mut self, groups: &Groups) {
        let mut els = Els {
            l1: self.create_lun("L1", &self.name("lun1")).await,
            l2: self.create_lun("L2", &self.name("lun2")).await,
            ..Els::default()
        };
        if let (Some(_), Some(b)) = (els.l1, els.l2) {
            // A second page83 verdict now that there are two to compare.
            self.page83_verdict("create.page83_id", b);
        }
        self.create_probes(els.l2).await;
        let (Some(l1), Some(l2)) = (els.l1, els.l2) else {
            self.fallback = Some(
                "not exercised: the kit could not create the two LUNs it works with (see create.returns_element)"
                    .into(),
            );
            return;
        };
        self.list_checks("LUNType").await;
        self.info(l1, false).await;
        match self
            .call(Method::GetStatus, vec![("se_record", self.rec(l1))])
            .await
        {
            Ok(Value::String(s)) if !s.trim().is_empty() => {
                self.pass("getStatus.status_text", format!("L1's status is {s:?}"))
            }
            Ok(v) => self.fail(
                "getStatus.status_text",
                format!("getStatus(L1) returned {}", brief(&v)),
            ),
            Err(f) => self.call_failed("getStatus.status_text", &f, "getStatus(L1)"),
        }
        // The limits (their shape is the manager's to check).
        for method in [Method::GetSnapLimits, Method::GetCloneLimits] {
            let _ = self.call(method, vec![]).await;
            let _ = self.call(method, vec![("se_record", self.rec(l1))]).await;
        }
        self.refused_call(
            "getInfo.unknown_element_refused",
            Method::GetInfo,
            vec![("se_record", self.ghost_se("LUNType"))],
            &[
                ExceptionKind::InvalidValueEx,
                ExceptionKind::MissingKeyEx,
                ExceptionKind::ValueFormatEx,
            ],
            "getInfo of an element the array does not have",
        )
        .await;
        if self.supported(OpKey::Resize) {
            self.refused_call(
                "resize.negative_size_refused",
                Method::Resize,
                vec![("se_record", self.rec(l1)), ("new_size", json!(-GROWN))],
                BAD_VALUE,
                &format!("resize of L1 to {}", -GROWN),
            )
            .await;
        } else {
            self.skip("resize.negative_size_refused", "resize is UNSUPPORTED");
        }
        self.unsupported_checks(&els, None).await;

        // Presentation.
        let g = groups.present_to.clone();
        if let Some(g) = &g {
            self.present(l1, std::slice::from_ref(g)).await;
            self.observe(l1).await;
            self.present_unknown_group(l2).await;
            self.present(l2, std::slice::from_ref(g)).await;
            self.observe(l2).await;
            self.datapath_presented(l1).await;
            self.online_offline(l1).await;
            self.remove_while_presented(l2, g).await;
        } else {
            self.datapath_presented(l1).await;
        }

        // Resize.
        if self.supported(OpKey::Resize) {
            let (r, _) = self
                .governed(
                    Method::Resize,
                    l1,
                    vec![("se_record", self.rec(l1)), ("new_size", json!(GROWN))],
                    g.as_deref(),
                    false,
                )
                .await;
            match r {
                Ok(rec) => {
                    let size = rec.get("size").and_then(Value::as_i64);
                    if size.is_some_and(|s| s >= GROWN) {
                        if same(&rec, &self.rec(l1)) {
                            self.objs[l1].rec = rec.clone();
                        }
                        if let Some(info) = self.info(l1, false).await {
                            let now = info.get("size").and_then(Value::as_i64);
                            self.verdict(
                                "resize.grow",
                                now == size,
                                format!("L1 grew to {} bytes, and getInfo agrees", size.unwrap_or(0)),
                                format!("resize returned size {size:?}, but getInfo then reports {now:?}"),
                            );
                        }
                        self.datapath_capacity(l1, "after resize").await;
                    } else {
                        self.fail(
                            "resize.grow",
                            format!("resize of L1 to {GROWN} bytes returned size {size:?}"),
                        );
                    }
                }
                Err(f) => self.call_failed("resize.grow", &f, "resize of L1"),
            }
        } else {
            self.skip("resize.grow", "resize is UNSUPPORTED");
        }

        self.snapshots(&mut els, g.as_deref()).await;
        self.clones(&mut els, g.as_deref()).await;
        self.multi_snap(&els, g.as_deref()).await;
        self.list_checks("SnapCloneType").await;
        self.qos(l1).await;
        self.optional_methods(l1).await;

        // Stop presenting; dependants refuse removal.
        if let Some(g) = &g {
            for o in [l1, l2] {
                if !self.objs[o].gone && self.objs[o].presented.contains(g) {
                    self.unpresent(o, std::slice::from_ref(g)).await;
                    self.observe(o).await;
                }
            }
            self.datapath_unpresented(l1).await;
        }
        match els.s1 {
            Some(_) => {
                self.busy_verdict(
                    "remove.refused_while_snapshots",
                    l1,
                    "L1, which snapshot S1 depends on",
                )
                .await;
            }
            None => {
                let why = self.no_snapshot("no snapshot");
                self.skip("remove.refused_while_snapshots", why);
            }
        }
        if let Some(s1) = els.s1 {
            if !self.objs[l1].gone {
                self.restore_agreement(s1, l1, "while L1 is not presented").await;
            }
        }
        match els.c1 {
            Some(_) if !self.objs[l2].gone => {
                self.busy_verdict("remove.refused_while_clones", l2, "L2, which clone C1 depends on")
                    .await;
            }
            _ => self.skip(
                "remove.refused_while_clones",
                if self.supported(OpKey::Clone) {
                    "the kit has no clone (see clone.returns_clone)"
                } else {
                    "clone is UNSUPPORTED"
                },
            ),
        }
        self.split(&mut els, g.as_deref()).await;
        self.removals(&els).await;
        self.remove_group_checks(groups.other.clone()).await;
    }

    /// Why the kit has no snapshot S1 ("the kit has {what} ..."): the createSnap that did not
    /// finish, when one did not, else a pointer to createSnap.returns_snapshot.
    fn no_snapshot(&self, what: &str) -> String {
        match self
            .unfinished
            .iter()
            .position(|u| u.method == Method::CreateSnap)
        {
            Some(op) => format!("the kit has {what}: {}", self.spoiled_by(op)),
            None => format!("the kit has {what} (see createSnap.returns_snapshot)"),
        }
    }

    /// A remove of `o` that must raise StorageElementBusyEx; if it removed `o` instead, the
    /// kit knows it is gone.
    async fn busy_verdict(&mut self, id: &str, o: ObjId, what: &str) {
        if self
            .refused_call(
                id,
                Method::Remove,
                vec![("se_record", self.rec(o))],
                &[ExceptionKind::StorageElementBusyEx],
                &format!("remove of {what}"),
            )
            .await
            .is_some()
        {
            self.mark_gone(o);
        }
    }

    async fn online_offline(&mut self, o: ObjId) {
        for (method, id, word) in [
            (Method::Offline, "offline.keeps_presentation", "offline"),
            (Method::Online, "online.keeps_presentation", "online"),
        ] {
            match self.call(method, vec![("se_record", self.rec(o))]).await {
                Ok(_) => {
                    let expected = self.objs[o].presented.clone();
                    match self.presentation_now(o).await {
                        Some(now) => {
                            let ok = now == expected;
                            self.verdict(
                                id,
                                ok,
                                format!(
                                    "after {word} L1 is still presented to {}",
                                    expected.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                                format!(
                                    "after {word} L1's access_grp_names is [{}]; it was presented to [{}]",
                                    now.iter().cloned().collect::<Vec<_>>().join(", "),
                                    expected.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            );
                            if !ok {
                                self.objs[o].presented = now;
                            }
                        }
                        None => self.skip(id, format!("getInfo(L1) after {word} gave no access_grp_names")),
                    }
                }
                Err(f) if Self::is_no_such_operation(&f) => {
                    self.skip(id, format!("{word} raised NoSuchOperationEx"))
                }
                Err(f) => self.call_failed(id, &f, &format!("{word} of L1")),
            }
        }
    }

    async fn remove_while_presented(&mut self, o: ObjId, g: &str) {
        if !self.objs[o].presented.contains(g) {
            self.skip_all(
                &["remove.refused_while_presented", "remove.never_unpresents"],
                "L2 could not be presented (see startPresent.returns_groups)",
            );
            return;
        }
        let removed = self
            .refused_call(
                "remove.refused_while_presented",
                Method::Remove,
                vec![("se_record", self.rec(o))],
                &[ExceptionKind::StorageElementBusyEx],
                &format!("remove of L2 while it is presented to {g}"),
            )
            .await
            .is_some();
        if removed {
            self.mark_gone(o);
            self.skip(
                "remove.never_unpresents",
                "remove removed L2 (see remove.refused_while_presented)",
            );
            return;
        }
        let expected = self.objs[o].presented.clone();
        match self.presentation_now(o).await {
            Some(now) if now.is_superset(&expected) => self.pass(
                "remove.never_unpresents",
                format!("after the refused remove L2 exists and is still presented to {g}"),
            ),
            Some(now) => {
                self.fail(
                    "remove.never_unpresents",
                    format!(
                        "remove of L2 was refused, but it stopped presenting L2 (access_grp_names is now [{}], was [{}])",
                        now.iter().cloned().collect::<Vec<_>>().join(", "),
                        expected.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                self.objs[o].presented = now;
                let back: Vec<String> = expected.into_iter().collect();
                self.present(o, &back).await;
            }
            None => self.fail(
                "remove.never_unpresents",
                "after the refused remove getInfo(L2) no longer describes L2",
            ),
        }
    }

    async fn snapshots(&mut self, els: &mut Els, g: Option<&str>) {
        let ids = [
            "createSnap.returns_snapshot",
            "createSnap.duplicate_name_refused",
            "getCurrentSnaps.lists_snapshot",
            "getCurrentSnaps.only_of_element",
            "isRestorable.agrees_with_snapRestore",
            "snapRemove.removes",
            "snapRemove.twice_refused",
        ];
        let Some(l1) = els.l1 else { return };
        let snapable = self
            .call(Method::IsSnapable, vec![("se_record", self.rec(l1))])
            .await;
        let snapable_array = self.call(Method::IsSnapable, vec![]).await;
        if !self.supported(OpKey::Snapshot) {
            self.skip_all(&ids, "snapshot is UNSUPPORTED");
            let said_true: Vec<&str> = [("isSnapable(L1)", &snapable), ("isSnapable()", &snapable_array)]
                .iter()
                .filter(|(_, r)| matches!(r, Ok(Value::Bool(true))))
                .map(|(w, _)| *w)
                .collect();
            self.verdict(
                "isSnapable.consistent",
                said_true.is_empty(),
                "snapshot is UNSUPPORTED and isSnapable does not say True",
                format!(
                    "snapshot is UNSUPPORTED, but {} said True",
                    said_true.join(" and ")
                ),
            );
            return;
        }
        let custom = self.caps.custom_snap_name.is_yes();
        let s_name = self.name("snap1");
        let mut params = vec![("se_record", self.rec(l1))];
        if custom {
            params.push(("snap_se_record", self.partial("SnapType", &s_name)));
        }
        let (r, _) = self.governed(Method::CreateSnap, l1, params, g, false).await;
        let snap = match r {
            Ok(rec) => rec,
            Err(f) => {
                self.call_failed("createSnap.returns_snapshot", &f, "createSnap of L1");
                if matches!(snapable, Ok(Value::Bool(true))) {
                    self.pass(
                        "isSnapable.consistent",
                        "isSnapable(L1) said True; createSnap did not succeed",
                    );
                }
                let why = self.no_snapshot("no snapshot");
                self.skip_all(&ids[1..], &why);
                return;
            }
        };
        let s1 = self.track("S1", Kind::Snap, snap.clone());
        els.s1 = Some(s1);
        let mut bad = Vec::new();
        if snap.get("se_type").and_then(Value::as_str) != Some("SnapType") {
            bad.push(format!(
                "se_type {}",
                brief(snap.get("se_type").unwrap_or(&Value::Null))
            ));
        }
        if custom && snap.get("name").and_then(Value::as_str) != Some(s_name.as_str()) {
            bad.push(format!(
                "name {} instead of {s_name:?} (custom_snap_name is YES)",
                brief(snap.get("name").unwrap_or(&Value::Null))
            ));
        }
        self.verdict(
            "createSnap.returns_snapshot",
            bad.is_empty(),
            format!("took {}", self.label(s1)),
            format!("createSnap returned {}", bad.join(", ")),
        );
        match snapable {
            Ok(Value::Bool(false)) => self.fail(
                "isSnapable.consistent",
                "isSnapable(L1) said False, yet createSnap of L1 then succeeded",
            ),
            Ok(Value::Bool(true)) => self.pass(
                "isSnapable.consistent",
                "isSnapable(L1) said True, and createSnap worked",
            ),
            _ => {}
        }
        // Listed for the array and for L1, not for L2.
        let all = self.call(Method::GetCurrentSnaps, vec![]).await;
        let of_l1 = self
            .call(Method::GetCurrentSnaps, vec![("se_record", self.rec(l1))])
            .await;
        let of_l2 = match els.l2.filter(|&o| !self.objs[o].gone) {
            Some(l2) => Some(
                self.call(Method::GetCurrentSnaps, vec![("se_record", self.rec(l2))])
                    .await,
            ),
            None => None,
        };
        let contains = |r: &CallResult| -> Option<bool> {
            r.as_ref()
                .ok()
                .map(|v| v.as_array().is_some_and(|a| a.iter().any(|x| same(x, &snap))))
        };
        let unknowable = [&all, &of_l1]
            .iter()
            .any(|r| matches!(r, Err(f) if Self::is_no_such_operation(f)));
        if unknowable {
            self.skip_all(
                &[
                    "getCurrentSnaps.lists_snapshot",
                    "getCurrentSnaps.only_of_element",
                ],
                "getCurrentSnaps raised NoSuchOperationEx: the array cannot list its snapshots",
            );
        } else {
            match (&all, &of_l1) {
                (Err(f), _) | (_, Err(f)) => {
                    let f = f.clone();
                    self.call_failed("getCurrentSnaps.lists_snapshot", &f, "getCurrentSnaps");
                }
                _ => {
                    let (a, b) = (contains(&all) == Some(true), contains(&of_l1) == Some(true));
                    let mut bad = Vec::new();
                    if !a {
                        bad.push("getCurrentSnaps() does not list S1");
                    }
                    if !b {
                        bad.push("getCurrentSnaps(L1) does not list S1");
                    }
                    self.verdict(
                        "getCurrentSnaps.lists_snapshot",
                        bad.is_empty(),
                        "S1 is listed for the array and for L1",
                        bad.join("; "),
                    );
                }
            }
            match of_l2 {
                Some(r @ Ok(_)) => {
                    let listed = contains(&r) == Some(true);
                    self.verdict(
                        "getCurrentSnaps.only_of_element",
                        !listed,
                        "getCurrentSnaps(L2) does not list L1's snapshot",
                        "getCurrentSnaps(L2) lists S1, a snapshot of L1",
                    );
                }
                Some(Err(f)) => {
                    self.call_failed("getCurrentSnaps.only_of_element", &f, "getCurrentSnaps(L2)")
                }
                None => self.skip("getCurrentSnaps.only_of_element", "the kit has no second LUN"),
            }
        }
        if custom {
            if let Some(v) = self
                .refused_call(
                    "createSnap.duplicate_name_refused",
                    Method::CreateSnap,
                    vec![
                        ("se_record", self.rec(l1)),
                        ("snap_se_record", self.partial("SnapType", &s_name)),
                    ],
                    &[],
                    &format!("a second snapshot named {s_name:?}"),
                )
                .await
            {
                self.undo(v, Kind::Snap, "duplicate-snap").await;
            }
            // A name that would leave a directory, in the snapshot's own record: refused, and
            // a ValueFormatEx names `name` (the key of snap_se_record), not a key of its own.
            let bad = self.name("a/../b");
            if let Some(v) = self
                .refused_call(
                    "createSnap.bad_name_refused",
                    Method::CreateSnap,
                    vec![
                        ("se_record", self.rec(l1)),
                        ("snap_se_record", self.partial("SnapType", &bad)),
                    ],
                    BAD_VALUE,
                    &format!("a snapshot named {bad:?}"),
                )
                .await
            {
                self.undo(v, Kind::Snap, "bad-name-snap").await;
            }
        } else {
            self.skip_all(
                &["createSnap.duplicate_name_refused", "createSnap.bad_name_refused"],
                "custom_snap_name is NO: the plug-in names snapshots",
            );
        }
        if self.objs[l1].presented.is_empty() {
            self.restore_agreement(s1, l1, "while L1 is online").await;
        } else {
            self.restore_agreement(s1, l1, "while L1 is presented and online")
                .await;
        }
    }

    /// isRestorable, then snapRestore: they must agree.
    async fn restore_agreement(&mut self, s: ObjId, o: ObjId, when: &str) {
        let id = "isRestorable.agrees_with_snapRestore";
        let params = vec![("snap_se_record", self.rec(s)), ("se_record", self.rec(o))];
        let said = match self.call(Method::IsRestorable, params.clone()).await {
            Ok(v) => match as_bool(&v) {
                Some(b) => b,
                None => {
                    self.fail(id, format!("isRestorable returned {}", brief(&v)));
                    return;
                }
            },
            Err(f) => {
                self.call_failed(id, &f, "isRestorable");
                return;
            }
        };
        let r = self.call(Method::SnapRestore, params).await;
        match (said, r) {
            (true, Ok(_)) => self.pass(
                id,
                format!("{when}: isRestorable said True and snapRestore succeeded"),
            ),
            (false, Ok(_)) => self.fail(
                id,
                format!("{when}: isRestorable said False, but snapRestore went ahead and restored"),
            ),
            (true, Err(f @ Failure::Refused { .. })) => self.fail(
                id,
                format!(
                    "{when}: isRestorable said True, but snapRestore {}",
                    f.describe().replace("the plug-in raised", "raised")
                ),
            ),
            (false, Err(f @ Failure::Refused { .. })) => self.pass(
                id,
                format!(
                    "{when}: isRestorable said False and snapRestore {}",
                    f.describe().replace("the plug-in raised", "raised")
                ),
            ),
            (_, Err(f)) => self.call_failed(id, &f, "snapRestore"),
        }
    }

    async fn clones(&mut self, els: &mut Els, g: Option<&str>) {
        let custom = self.caps.custom_clone_name.is_yes();
        // From the snapshot first (L1 and S1).
        match (els.l1, els.s1, self.supported(OpKey::SnapClone)) {
            (_, _, false) => self.skip("cloneFromSnap.returns_clone", "snapclone is UNSUPPORTED"),
            (Some(l1), Some(s1), true) => {
                let name = self.name("sclone1");
                let mut params = vec![("se_record", self.rec(l1)), ("snap_se_record", self.rec(s1))];
                if custom {
                    params.push(("dest_se_record", self.partial("SnapCloneType", &name)));
                }
                let (r, _) = self.governed(Method::CloneFromSnap, l1, params, g, false).await;
                let size = self
                    .rec(s1)
                    .get("size")
                    .and_then(Value::as_i64)
                    .or_else(|| self.rec(l1).get("size").and_then(Value::as_i64));
                if let Some(c2) = self
                    .clone_verdict(
                        "cloneFromSnap.returns_clone",
                        r,
                        "C2",
                        custom.then_some(name.as_str()),
                        size,
                        "cloneFromSnap of S1",
                    )
                    .await
                {
                    els.c2 = Some(c2);
                    self.page83_verdict("cloneFromSnap.page83_id", c2);
                }
            }
            _ => {
                let why = self.no_snapshot("no snapshot to clone");
                self.skip("cloneFromSnap.returns_clone", why);
            }
        }
        if !self.supported(OpKey::SnapClone) || els.s1.is_none() {
            self.skip("cloneFromSnap.page83_id", "no clone of a snapshot was made");
        }
        if !self.supported(OpKey::SnapClone) && self.supported(OpKey::Snapshot) {
            self.unsupported_checks(els, Some(Method::CloneFromSnap)).await;
        }
        // A clone of L2.
        let ids = [
            "clone.returns_clone",
            "clone.duplicate_name_refused",
            "isCloneable.consistent",
            "getCurrentClones.lists_clone",
            "getCurrentClones.only_of_element",
        ];
        if !self.supported(OpKey::Clone) {
            self.skip_all(&ids[..2], "clone is UNSUPPORTED");
            self.skip_all(&ids[3..], "clone is UNSUPPORTED");
            self.skip("clone.page83_id", "clone is UNSUPPORTED");
            if let Some(l2) = els.l2.filter(|&o| !self.objs[o].gone) {
                match self
                    .call(Method::IsCloneable, vec![("se_record", self.rec(l2))])
                    .await
                {
                    Ok(Value::Bool(b)) => self.verdict(
                        "isCloneable.consistent",
                        !b,
                        "clone is UNSUPPORTED and isCloneable(L2) says False",
                        "clone is UNSUPPORTED, but isCloneable(L2) says True",
                    ),
                    Ok(v) => self.fail(
                        "isCloneable.consistent",
                        format!("isCloneable returned {}", brief(&v)),
                    ),
                    Err(f) => self.call_failed("isCloneable.consistent", &f, "isCloneable(L2)"),
                }
                let _ = self.call(Method::GetCurrentClones, vec![]).await;
            }
            return;
        }
        let Some(l2) = els.l2.filter(|&o| !self.objs[o].gone) else {
            self.skip_all(&ids, "the kit has no LUN L2 to clone");
            return;
        };
        let cloneable = self
            .call(Method::IsCloneable, vec![("se_record", self.rec(l2))])
            .await;
        let name = self.name("clone1");
        let mut params = vec![("se_record", self.rec(l2))];
        if custom {
            params.push(("dest_se_record", self.partial("SnapCloneType", &name)));
        }
        let (r, _) = self.governed(Method::Clone, l2, params, g, false).await;
        let worked = r.is_ok();
        let size = self.rec(l2).get("size").and_then(Value::as_i64);
        let Some(c1) = self
            .clone_verdict(
                "clone.returns_clone",
                r,
                "C1",
                custom.then_some(name.as_str()),
                size,
                "clone of L2",
            )
            .await
        else {
            self.skip_all(&ids[1..], "the kit has no clone (see clone.returns_clone)");
            self.skip("clone.page83_id", "no clone was made");
            return;
        };
        els.c1 = Some(c1);
        self.page83_verdict("clone.page83_id", c1);
        match cloneable {
            Ok(Value::Bool(false)) if worked => self.fail(
                "isCloneable.consistent",
                "isCloneable(L2) said False, yet clone of L2 then succeeded",
            ),
            Ok(Value::Bool(_)) => self.pass(
                "isCloneable.consistent",
                "isCloneable(L2) said True, and clone worked",
            ),
            Ok(v) => self.fail(
                "isCloneable.consistent",
                format!("isCloneable returned {}", brief(&v)),
            ),
            Err(f) => self.call_failed("isCloneable.consistent", &f, "isCloneable(L2)"),
        }
        self.snapshot_cloneable_check(els, custom).await;
        // Listed for the array and for L2, not for L1.
        let clone_rec = self.rec(c1);
        let all = self.call(Method::GetCurrentClones, vec![]).await;
        let of_l2 = self
            .call(Method::GetCurrentClones, vec![("se_record", self.rec(l2))])
            .await;
        let has = |r: &CallResult| {
            r.as_ref().ok().is_some_and(|v| {
                v.as_array()
                    .is_some_and(|a| a.iter().any(|x| same(x, &clone_rec)))
            })
        };
        if [&all, &of_l2]
            .iter()
            .any(|r| matches!(r, Err(f) if Self::is_no_such_operation(f)))
        {
            self.pass(
                "getCurrentClones.lists_clone",
                "getCurrentClones raised NoSuchOperationEx: the array cannot tell its clones",
            );
            self.skip(
                "getCurrentClones.only_of_element",
                "getCurrentClones raised NoSuchOperationEx",
            );
        } else {
            match (&all, &of_l2) {
                (Err(f), _) | (_, Err(f)) => {
                    let f = f.clone();
                    self.call_failed("getCurrentClones.lists_clone", &f, "getCurrentClones");
                }
                _ => {
                    let mut bad = Vec::new();
                    if !has(&all) {
                        bad.push("getCurrentClones() does not list C1");
                    }
                    if !has(&of_l2) {
                        bad.push("getCurrentClones(L2) does not list C1");
                    }
                    self.verdict(
                        "getCurrentClones.lists_clone",
                        bad.is_empty(),
                        "C1 is listed for the array and for L2",
                        bad.join("; "),
                    );
                }
            }
            match els.l1.filter(|&o| !self.objs[o].gone) {
                Some(l1) => {
                    let r = self
                        .call(Method::GetCurrentClones, vec![("se_record", self.rec(l1))])
                        .await;
                    match &r {
                        Ok(_) => self.verdict(
                            "getCurrentClones.only_of_element",
                            !has(&r),
                            "getCurrentClones(L1) does not list L2's clone",
                            "getCurrentClones(L1) lists C1, a clone of L2",
                        ),
                        Err(f) => {
                            let f = f.clone();
                            self.call_failed("getCurrentClones.only_of_element", &f, "getCurrentClones(L1)");
                        }
                    }
                }
                None => self.skip("getCurrentClones.only_of_element", "the kit has no LUN L1"),
            }
        }
        if custom {
            if let Some(v) = self
                .refused_call(
                    "clone.duplicate_name_refused",
                    Method::Clone,
                    vec![
                        ("se_record", self.rec(l2)),
                        ("dest_se_record", self.partial("SnapCloneType", &name)),
                    ],
                    &[],
                    &format!("a second clone named {name:?}"),
                )
                .await
            {
                self.undo(v, Kind::Clone, "duplicate-clone").await;
            }
        } else {
            self.skip(
                "clone.duplicate_name_refused",
                "custom_clone_name is NO: the plug-in names clones",
            );
        }
    }

    /// Judges a clone record; tracks it.
    async fn clone_verdict(
        &mut self,
        id: &str,
        r: CallResult,
        role: &str,
        name: Option<&str>,
        size: Option<i64>,
        doing: &str,
    ) -> Option<ObjId> {
        match r {
            Ok(rec) => {
                let mut bad = Vec::new();
                let t = rec.get("se_type").and_then(Value::as_str);
                if t.is_none_or(|t| t == "SnapType") {
                    bad.push(format!(
                        "se_type {}",
                        brief(rec.get("se_type").unwrap_or(&Value::Null))
                    ));
                }
                if let Some(n) = name {
                    if rec.get("name").and_then(Value::as_str) != Some(n) {
                        bad.push(format!(
                            "name {} instead of {n:?}",
                            brief(rec.get("name").unwrap_or(&Value::Null))
                        ));
                    }
                }
                let got = rec.get("size").and_then(Value::as_i64);
                if let (Some(want), Some(got)) = (size, got) {
                    if got != want {
                        bad.push(format!("size {got}, but its source has {want}"));
                    }
                } else if got.is_none() {
                    bad.push("no size".into());
                }
                let o = self.track(role, Kind::Clone, rec);
                self.verdict(
                    id,
                    bad.is_empty(),
                    format!("made {}", self.label(o)),
                    format!("{doing} returned {}", bad.join(", ")),
                );
                Some(o)
            }
            Err(f) => {
                self.call_failed(id, &f, doing);
                None
            }
        }
    }

    async fn multi_snap(&mut self, els: &Els, g: Option<&str>) {
        let id = "createMultiSnap.works_or_no_such_operation";
        if !self.supported(OpKey::Snapshot) {
            self.skip(id, "snapshot is UNSUPPORTED");
            return;
        }
        let (Some(l1), Some(l2)) = (els.l1, els.l2) else {
            return;
        };
        if self.objs[l2].gone {
            self.skip(id, "the kit has no second LUN");
            return;
        }
        let mut params = vec![("se_records", json!([self.rec(l1), self.rec(l2)]))];
        if self.caps.custom_snap_name.is_yes() {
            params.push(("snap_se_record", self.partial("SnapType", &self.name("msnap1"))));
        }
        let (r, _) = self.governed(Method::CreateMultiSnap, l1, params, g, false).await;
        match r {
            Ok(rec) => {
                let m = self.track("M1", Kind::Snap, rec.clone());
                let mut bad = Vec::new();
                if rec.get("se_type").and_then(Value::as_str) != Some("SnapType") {
                    bad.push(format!(
                        "it returned se_type {}",
                        brief(rec.get("se_type").unwrap_or(&Value::Null))
                    ));
                }
                for (o, who) in [(l1, "L1"), (l2, "L2")] {
                    match self
                        .call(Method::GetCurrentSnaps, vec![("se_record", self.rec(o))])
                        .await
                    {
                        Ok(v) => {
                            if !v.as_array().is_some_and(|a| a.iter().any(|x| same(x, &rec))) {
                                bad.push(format!("getCurrentSnaps({who}) does not list it"));
                            }
                        }
                        Err(f) if Self::is_no_such_operation(&f) => {}
                        Err(f) => bad.push(format!("getCurrentSnaps({who}) failed: {}", f.describe())),
                    }
                }
                self.verdict(
                    id,
                    bad.is_empty(),
                    format!("took {} of L1 and L2", self.label(m)),
                    format!("createMultiSnap of L1 and L2 succeeded, but {}", bad.join("; ")),
                );
                self.drop_obj(m).await;
            }
            Err(f) if Self::is_no_such_operation(&f) => self.pass(
                id,
                format!(
                    "{}: the array cannot snapshot several elements at once",
                    f.describe()
                ),
            ),
            Err(f) => self.call_failed(id, &f, "createMultiSnap of L1 and L2"),
        }
    }

    async fn qos(&mut self, l1: ObjId) {
        match self.qos_values.clone() {
            Some(vals) if !vals.is_empty() => {
                let current = self
                    .rec(l1)
                    .get("qos")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let target = vals
                    .iter()
                    .rev()
                    .find(|v| Some(v.as_str()) != current.as_deref())
                    .or(vals.last())
                    .cloned()
                    .unwrap_or_default();
                let r = self
                    .call(
                        Method::SetQos,
                        vec![("se_record", self.rec(l1)), ("qos", json!(target))],
                    )
                    .await;
                match r {
                    Ok(_) => match self.info(l1, false).await {
                        Some(rec) => {
                            let now = rec.get("qos").and_then(Value::as_str);
                            self.verdict(
                                "setQoS.listed_value",
                                now.is_none_or(|q| q == target),
                                format!("L1's QoS is now {target:?}"),
                                format!("setQoS to {target:?} succeeded, but getInfo reports qos {now:?}"),
                            );
                        }
                        None => self.skip("setQoS.listed_value", "getInfo(L1) failed after setQoS"),
                    },
                    Err(f)
                        if matches!(
                            f.kind(),
                            Some(ExceptionKind::NoSuchOperationEx | ExceptionKind::StorageElementBusyEx)
                        ) =>
                    {
                        self.pass(
                            "setQoS.listed_value",
                            format!("setQoS to {target:?}: {}", f.describe()),
                        )
                    }
                    Err(f) => {
                        self.call_failed("setQoS.listed_value", &f, &format!("setQoS of L1 to {target:?}"))
                    }
                }
            }
            Some(_) => self.skip("setQoS.listed_value", "getQoSList offers no value"),
            None => self.skip("setQoS.listed_value", "getQoSList did not answer"),
        }
        let bogus = self.name("no-such-qos");
        self.refused_call(
            "setQoS.unlisted_value_refused",
            Method::SetQos,
            vec![("se_record", self.rec(l1)), ("qos", json!(bogus))],
            &[
                ExceptionKind::InvalidValueEx,
                ExceptionKind::ValueFormatEx,
                ExceptionKind::NoSuchOperationEx,
            ],
            &format!("setQoS of L1 to {bogus:?}, a value getQoSList did not offer"),
        )
        .await;
    }

    /// updateSERecords, refresh and discover, when the plug-in implements them (the
    /// manager's generic versions work on the host, not on the plug-in).
    async fn optional_methods(&mut self, l1: ObjId) {
        if self.plugin.implements(Method::UpdateSeRecords) {
            let rec = self.rec(l1);
            match self
                .call(
                    Method::UpdateSeRecords,
                    vec![
                        ("se_records", json!([rec.clone()])),
                        ("append_allowed", json!(false)),
                    ],
                )
                .await
            {
                Ok(v) => {
                    let items = v.as_array().cloned().unwrap_or_default();
                    self.verdict(
                        "updateSERecords.keeps_records",
                        items.len() == 1 && same(&items[0], &rec),
                        "updateSERecords([L1]) returned L1's record, completed",
                        format!(
                            "updateSERecords([L1]) with append_allowed False returned {} record(s): {}",
                            items.len(),
                            brief(&v)
                        ),
                    );
                }
                Err(f) => self.call_failed("updateSERecords.keeps_records", &f, "updateSERecords([L1])"),
            }
        } else {
            self.skip(
                "updateSERecords.keeps_records",
                "not implemented by the plug-in: the manager's generic version applies",
            );
        }
        if self.plugin.implements(Method::Refresh) {
            let _ = self.call(Method::Refresh, vec![]).await;
        }
        if self.storage_type != Some(StorageType::Iscsi) {
            self.skip("discover.storage_id", "discover is for iSCSI arrays only");
        } else if !self.plugin.implements(Method::Discover) {
            self.skip(
                "discover.storage_id",
                "not implemented by the plug-in: the manager's generic version applies",
            );
        } else {
            match self.call(Method::Discover, vec![]).await {
                Ok(v) => {
                    let ids: Vec<&str> = v
                        .get("storage_id")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    self.verdict(
                        "discover.storage_id",
                        !ids.is_empty(),
                        format!("targets: {}", ids.join(", ")),
                        format!(
                            "discover returned storage_id {}",
                            brief(v.get("storage_id").unwrap_or(&Value::Null))
                        ),
                    );
                }
                Err(f) => self.call_failed("discover.storage_id", &f, "discover"),
            }
        }
    }

    async fn split(&mut self, els: &mut Els, g: Option<&str>) {
        let ids = ["splitClone.progress", "splitClone.independent"];
        // A plain LUN is never splittable; nothing is when splitting is UNSUPPORTED.
        let mut probe = vec![("L1", els.l1)];
        if !self.supported(OpKey::SplitClone) {
            probe.push(("C1", els.c1));
        }
        for (who, o) in probe {
            let Some(o) = o.filter(|&o| !self.objs[o].gone) else {
                continue;
            };
            match self
                .call(Method::IsSplittable, vec![("se_record", self.rec(o))])
                .await
            {
                Ok(Value::Bool(b)) => self.verdict(
                    "isSplittable.consistent",
                    !b,
                    format!("isSplittable({who}) says False"),
                    if who == "L1" {
                        "isSplittable(L1) says True, but L1 is a LUN, not a clone".to_string()
                    } else {
                        "splitclone is UNSUPPORTED, but isSplittable(C1) says True".to_string()
                    },
                ),
                Ok(v) => self.fail(
                    "isSplittable.consistent",
                    format!("isSplittable returned {}", brief(&v)),
                ),
                Err(f) => self.call_failed("isSplittable.consistent", &f, &format!("isSplittable({who})")),
            }
        }
        if !self.supported(OpKey::SplitClone) {
            self.skip_all(&ids, "splitclone is UNSUPPORTED");
            if self.supported(OpKey::Clone) {
                self.unsupported_checks(els, Some(Method::SplitClone)).await;
            }
            return;
        }
        let Some(c1) = els.c1.filter(|&o| !self.objs[o].gone) else {
            self.skip_all(&ids, "the kit has no clone to split (see clone.returns_clone)");
            return;
        };
        match self
            .call(Method::IsSplittable, vec![("se_record", self.rec(c1))])
            .await
        {
            Ok(Value::Bool(false)) => {
                self.skip_all(&ids, "isSplittable(C1) says False");
                return;
            }
            Ok(_) => {}
            Err(f) => {
                self.call_failed("splitClone.independent", &f, "isSplittable(C1)");
                self.skip("splitClone.progress", "isSplittable(C1) failed");
                return;
            }
        }
        let (r, events) = self
            .governed(Method::SplitClone, c1, vec![("se_record", self.rec(c1))], g, true)
            .await;
        let sync_flag = self.caps.splitclone_is_sync.is_yes();
        match r {
            Ok(_) => {
                els.split_done = true;
                if sync_flag {
                    self.skip(
                        "splitClone.progress",
                        "splitclone_is_sync is YES: the split is synchronous (see splitClone.sync)",
                    );
                } else if events.is_empty() {
                    self.skip(
                        "splitClone.progress",
                        "the split finished at once, with no progress to report",
                    );
                } else {
                    let seen: Vec<String> = events
                        .iter()
                        .map(|e| {
                            e.progress.map_or_else(
                                || "done".to_string(),
                                |p| if p < 0 { "?".into() } else { format!("{p}%") },
                            )
                        })
                        .collect();
                    let finished = events.last().is_some_and(|e| e.progress.is_none());
                    let running = events.iter().any(|e| e.progress.is_some());
                    // A known percentage never goes back: a host waiting on it would see the
                    // work undone (-1, "not known", may come and go).
                    let known: Vec<i64> = events
                        .iter()
                        .filter_map(|e| e.progress)
                        .filter(|&p| p >= 0)
                        .collect();
                    let backwards = known.windows(2).any(|w| w[1] < w[0]);
                    let bad = if backwards {
                        format!("progress went backwards: {}", seen.join(", "))
                    } else {
                        format!("progress events did not run to completion: {}", seen.join(", "))
                    };
                    self.verdict(
                        "splitClone.progress",
                        finished && running && !backwards,
                        format!("progress reported: {}", seen.join(", ")),
                        bad,
                    );
                }
                let of = els.l2.filter(|&o| !self.objs[o].gone);
                if let Some(l2) = of {
                    let clone_rec = self.rec(c1);
                    match self
                        .call(Method::GetCurrentClones, vec![("se_record", self.rec(l2))])
                        .await
                    {
                        Ok(v) => {
                            let listed = v
                                .as_array()
                                .is_some_and(|a| a.iter().any(|x| same(x, &clone_rec)));
                            if listed {
                                self.fail(
                                    "splitClone.independent",
                                    "after splitClone getCurrentClones(L2) still lists C1",
                                );
                            }
                        }
                        Err(f) if Self::is_no_such_operation(&f) => {}
                        Err(f) => self.call_failed(
                            "splitClone.independent",
                            &f,
                            "getCurrentClones(L2) after the split",
                        ),
                    }
                }
                let _ = self.info(c1, false).await;
            }
            Err(f) => {
                self.call_failed("splitClone.independent", &f, "splitClone of C1");
                if sync_flag {
                    self.skip(
                        "splitClone.progress",
                        "splitclone_is_sync is YES (see splitClone.sync)",
                    );
                } else {
                    self.skip("splitClone.progress", "splitClone did not complete");
                }
            }
        }
    }

    async fn removals(&mut self, els: &Els) {
        // What an unfinished operation left would keep its source busy.
        self.settle_unfinished().await;
        let mut removed = Vec::new();
        if let Some(c2) = els.c2.filter(|&o| !self.objs[o].gone) {
            self.remove_one(c2, &mut removed).await;
        }
        if let Some(s1) = els.s1.filter(|&o| !self.objs[o].gone) {
            let rec = self.rec(s1);
            match self
                .call(Method::SnapRemove, vec![("snap_se_record", rec.clone())])
                .await
            {
                Ok(_) => {
                    self.mark_gone(s1);
                    let mut still = Vec::new();
                    let all = self.call(Method::GetCurrentSnaps, vec![]).await;
                    if let Ok(v) = &all {
                        if v.as_array().is_some_and(|a| a.iter().any(|x| same(x, &rec))) {
                            still.push("getCurrentSnaps()");
                        }
                    }
                    if let Some(l1) = els.l1.filter(|&o| !self.objs[o].gone) {
                        if let Ok(v) = self
                            .call(Method::GetCurrentSnaps, vec![("se_record", self.rec(l1))])
                            .await
                        {
                            if v.as_array().is_some_and(|a| a.iter().any(|x| same(x, &rec))) {
                                still.push("getCurrentSnaps(L1)");
                            }
                        }
                    }
                    self.verdict(
                        "snapRemove.removes",
                        still.is_empty(),
                        "S1 removed; getCurrentSnaps no longer lists it",
                        format!(
                            "snapRemove of S1 succeeded, but {} still lists it",
                            still.join(" and ")
                        ),
                    );
                    self.refused_call(
                        "snapRemove.twice_refused",
                        Method::SnapRemove,
                        vec![("snap_se_record", rec)],
                        &[],
                        "snapRemove of S1 a second time",
                    )
                    .await;
                }
                Err(f) => {
                    self.call_failed("snapRemove.removes", &f, "snapRemove of S1");
                    self.skip(
                        "snapRemove.twice_refused",
                        "S1 could not be removed once (see snapRemove.removes)",
                    );
                }
            }
        }
        let l2 = els.l2.filter(|&o| !self.objs[o].gone);
        let c1 = els.c1.filter(|&o| !self.objs[o].gone);
        if els.split_done {
            if let Some(l2) = l2 {
                let r = self.call(Method::Remove, vec![("se_record", self.rec(l2))]).await;
                match r {
                    Ok(_) => {
                        self.mark_gone(l2);
                        removed.push(l2);
                        self.pass(
                            "splitClone.independent",
                            "after the split C1 is no clone of L2 any more, and L2 could be removed before C1",
                        );
                    }
                    Err(f) => self.call_failed(
                        "splitClone.independent",
                        &f,
                        "remove of L2 (C1's former source) after the split",
                    ),
                }
            }
            if let Some(c1) = c1 {
                self.remove_one(c1, &mut removed).await;
            }
        } else {
            if let Some(c1) = c1 {
                self.remove_one(c1, &mut removed).await;
            }
            if let Some(l2) = l2 {
                self.remove_one(l2, &mut removed).await;
            }
        }
        match els.l1.filter(|&o| !self.objs[o].gone) {
            Some(l1) => {
                if self.remove_one(l1, &mut removed).await {
                    self.refused_call(
                        "remove.twice_refused",
                        Method::Remove,
                        vec![("se_record", self.rec(l1))],
                        &[],
                        "remove of L1 a second time",
                    )
                    .await;
                } else {
                    self.skip(
                        "remove.twice_refused",
                        "L1 could not be removed once (see remove.removes)",
                    );
                }
            }
            None => self.skip("remove.twice_refused", "L1 is already gone"),
        }
        if removed.is_empty() {
            return;
        }
        match self.call(Method::List, vec![]).await {
            Ok(v) => {
                let items = v.as_array().cloned().unwrap_or_default();
                let still: Vec<String> = removed
                    .iter()
                    .filter(|&&o| items.iter().any(|x| same(x, &self.objs[o].rec)))
                    .map(|&o| self.label(o))
                    .collect();
                let labels: Vec<String> = removed.iter().map(|&o| self.label(o)).collect();
                self.verdict(
                    "remove.removes",
                    still.is_empty(),
                    format!("removed {}; list no longer shows them", labels.join(", ")),
                    format!("remove succeeded, but list still shows {}", still.join(", ")),
                );
            }
            Err(f) => self.call_failed("remove.removes", &f, "list after the removals"),
        }
    }

    async fn remove_one(&mut self, o: ObjId, removed: &mut Vec<ObjId>) -> bool {
        let label = self.label(o);
        match self.call(Method::Remove, vec![("se_record", self.rec(o))]).await {
            Ok(_) => {
                self.mark_gone(o);
                removed.push(o);
                true
            }
            Err(f) => {
                match self.unfinished_on(o) {
                    // It may still be busy with that operation, or hold what it made.
                    Some(op) if f.kind() == Some(ExceptionKind::StorageElementBusyEx) => {
                        let why = self.spoiled_by(op);
                        self.skip(
                            "remove.removes",
                            format!(
                                "remove of {label} was refused ({}), which is not charged to the plug-in: {why}",
                                f.describe()
                            ),
                        );
                    }
                    _ => self.call_failed("remove.removes", &f, &format!("remove of {label}")),
                }
                false
            }
        }
    }
}
