//! Removing everything the run created, in dependency order, and looking for what is left.

use crate::kit::{brief, entries_of, name_of, presented_names, same, CallResult, Failure, Kind, Kit, ObjId};
use serde_json::{json, Value};
use spindle_api::names::shown;
use spindle_api::{ExceptionKind, Method};
use std::collections::BTreeSet;
use std::time::Duration;

impl Kit<'_> {
    fn is_ours(&self, rec: &Value) -> bool {
        name_of(rec).starts_with(&self.opts.prefix) || self.objs.iter().any(|o| same(&o.rec, rec))
    }

    fn group_is_ours(&self, g: &Value) -> bool {
        let name = g.get("grp_name").and_then(Value::as_str).unwrap_or("");
        name.starts_with(&self.opts.prefix) || entries_of(g).iter().any(|e| e.contains(&self.run_hex))
    }

    /// Stops presenting `o` to every group it is presented to.
    pub(crate) async fn unpresent_all(&mut self, o: ObjId) {
        let mut groups: BTreeSet<String> = self.objs[o].presented.clone();
        if let Ok(rec) = self.call(Method::GetInfo, vec![("se_record", self.rec(o))]).await {
            groups.extend(presented_names(&rec).unwrap_or_default());
        }
        if groups.is_empty() {
            return;
        }
        let list: Vec<String> = groups.into_iter().collect();
        let r = self
            .call(
                Method::StopPresent,
                vec![("se_record", self.rec(o)), ("access_grp_names", json!(list))],
            )
            .await;
        if r.is_err() {
            // One group at a time, so that one unknown name does not keep the others.
            for g in &list {
                let _ = self
                    .call(
                        Method::StopPresent,
                        vec![("se_record", self.rec(o)), ("access_grp_names", json!([g]))],
                    )
                    .await;
            }
        }
        self.objs[o].presented.clear();
    }

    pub(crate) async fn remove_obj(&mut self, o: ObjId) -> bool {
        let (method, param) = if self.objs[o].kind == Kind::Snap {
            (Method::SnapRemove, "snap_se_record")
        } else {
            (Method::Remove, "se_record")
        };
        let ok = self.call(method, vec![(param, self.rec(o))]).await.is_ok();
        if ok {
            self.mark_gone(o);
        }
        ok
    }

    async fn remove_group(&mut self, g: &str) -> bool {
        let r = self
            .call(
                Method::RemoveAccessGroups,
                vec![("access_grps", json!([{"grp_name": g, "grp_entries": []}]))],
            )
            .await;
        if let Ok(v) = &r {
            if v.is_array() {
                if let Some(m) = self.ss.as_object_mut() {
                    m.insert("access_grps".into(), v.clone());
                }
            }
        }
        r.is_ok()
    }

    /// Unpresents, then removes clones, snapshots, LUNs and groups; then sweeps the array for
    /// anything with the run's prefix and records what is left.
    pub(crate) async fn cleanup(&mut self) {
        // What an unfinished asynchronous operation left is removed with the rest.
        self.settle_unfinished().await;
        let made = self.objs.len() + self.groups.len();
        for o in 0..self.objs.len() {
            if !self.objs[o].gone && self.objs[o].kind != Kind::Snap {
                self.unpresent_all(o).await;
            }
        }
        for round in 0..2 {
            let mut failed = false;
            for kind in [Kind::Clone, Kind::Snap, Kind::Lun] {
                for o in (0..self.objs.len()).rev() {
                    if !self.objs[o].gone && self.objs[o].kind == kind && !self.remove_obj(o).await {
                        failed = true;
                    }
                }
            }
            if !failed {
                break;
            }
            if round == 0 {
                // Something may still be busy (a split finishing); give it a moment.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        let groups: Vec<String> = self.groups.clone();
        for g in groups {
            if self.remove_group(&g).await {
                self.groups.retain(|x| *x != g);
            }
        }
        let strays: Vec<String> = std::mem::take(&mut self.stray_groups);
        for g in strays {
            let _ = self.remove_group(&g).await;
        }
        self.sweep().await;
        let (left, unverified) = self.left_behind().await;
        self.leftovers = left;
        let id = "cleanup.nothing_left";
        if !unverified.is_empty() {
            // What the array shows cannot be trusted: report what the kit made and could not
            // confirm removed instead of claiming nothing is left.
            let mut unconfirmed: Vec<String> = self
                .objs
                .iter()
                .filter(|o| !o.gone)
                .map(|o| format!("{} {} ({})", o.kind.noun(), o.role, shown(&name_of(&o.rec))))
                .collect();
            unconfirmed.extend(self.groups.iter().map(|g| format!("access group {}", shown(g))));
            unconfirmed.extend(self.maybe_made.iter().cloned());
            for u in &unconfirmed {
                if !self.leftovers.contains(u) {
                    self.leftovers.push(u.clone());
                }
            }
            let tail = if self.leftovers.is_empty() {
                "; every object the run made was removed by a call that succeeded, but the array's listing could not confirm it".to_string()
            } else {
                format!("; not confirmed removed: {}", self.leftovers.join("; "))
            };
            self.fail(id, format!("could not verify: {}{tail}", unverified.join("; ")));
        } else if self.leftovers.is_empty() {
            let unfinished = self.unfinished_summary();
            let tail = if unfinished.is_empty() {
                String::new()
            } else {
                format!(" ({})", unfinished.join("; "))
            };
            self.pass(
                id,
                format!(
                    "removed everything the run made ({made} elements and groups); nothing named {}* remains{tail}",
                    self.opts.prefix
                ),
            );
        } else {
            self.fail(id, format!("left behind: {}", self.leftovers.join("; ")));
        }
    }

    /// Everything on the array that looks like the run's: by prefix, tracked identity, or an
    /// access-group entry of this run; and, for each listing that did not give a list, why
    /// (what it shows then cannot be trusted).
    pub(crate) async fn ours_on_array(&mut self) -> (Vec<Value>, Vec<Value>, Vec<Value>, Vec<String>) {
        let mut unverified = Vec::new();
        let mut elements = Vec::new();
        let all_types = json!(["LUNType", "GhostLUNType", "SnapCloneType"]);
        let r = self.call(Method::List, vec![("se_type", all_types)]).await;
        for r in listed(Method::List, r, &mut unverified) {
            if self.is_ours(&r) && !elements.iter().any(|x| same(x, &r)) {
                elements.push(r);
            }
        }
        let mut snaps = Vec::new();
        let r = self.call(Method::GetCurrentSnaps, vec![]).await;
        for r in listed(Method::GetCurrentSnaps, r, &mut unverified) {
            if self.is_ours(&r) && !snaps.iter().any(|x| same(x, &r)) {
                snaps.push(r);
            }
        }
        let mut groups = Vec::new();
        if self.caps.access_control.is_yes() {
            let r = self.call(Method::GetAccessGroups, vec![]).await;
            groups = listed(Method::GetAccessGroups, r, &mut unverified)
                .into_iter()
                .filter(|g| self.group_is_ours(g))
                .collect();
        }
        (elements, snaps, groups, unverified)
    }

    /// A second pass over what the array still shows.
    async fn sweep(&mut self) {
        let (elements, snaps, groups, _) = self.ours_on_array().await;
        for rec in &elements {
            if let Some(names) = presented_names(rec).filter(|n| !n.is_empty()) {
                let list: Vec<String> = names.into_iter().collect();
                let _ = self
                    .call(
                        Method::StopPresent,
                        vec![("se_record", rec.clone()), ("access_grp_names", json!(list))],
                    )
                    .await;
            }
        }
        let (clones, luns): (Vec<&Value>, Vec<&Value>) = elements
            .iter()
            .partition(|r| r.get("se_type").and_then(Value::as_str) == Some("SnapCloneType"));
        for rec in clones {
            let _ = self.call(Method::Remove, vec![("se_record", rec.clone())]).await;
        }
        for rec in &snaps {
            let _ = self
                .call(Method::SnapRemove, vec![("snap_se_record", rec.clone())])
                .await;
        }
        for rec in luns {
            let _ = self.call(Method::Remove, vec![("se_record", rec.clone())]).await;
        }
        for g in &groups {
            let name = g
                .get("grp_name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !name.is_empty() {
                let _ = self.remove_group(&name).await;
            }
        }
    }

    /// What the array still shows of the run's, and why a listing could not be trusted.
    async fn left_behind(&mut self) -> (Vec<String>, Vec<String>) {
        let (elements, snaps, groups, unverified) = self.ours_on_array().await;
        let describe = |what: &str, r: &Value| {
            let id = ["uuid", "page83_id", "id"]
                .iter()
                .find_map(|k| {
                    r.get(*k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(|s| format!(" ({k} {s})"))
                })
                .unwrap_or_default();
            format!("{what} {:?}{id}", name_of(r))
        };
        let mut out: Vec<String> = elements.iter().map(|r| describe("element", r)).collect();
        out.extend(snaps.iter().map(|r| describe("snapshot", r)));
        out.extend(groups.iter().map(|g| {
            format!(
                "access group {:?}",
                g.get("grp_name").and_then(Value::as_str).unwrap_or("(unnamed)")
            )
        }));
        (out, unverified)
    }
}

/// The records a listing returned; when it returned no list, why, in `unverified`. A refusal
/// with NoSuchOperationEx (the array has no such thing) is an empty list.
fn listed(method: Method, r: CallResult, unverified: &mut Vec<String>) -> Vec<Value> {
    match r {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            unverified.push(format!(
                "{} broke the contract (returned {}, not a list)",
                method.name(),
                brief(&other)
            ));
            Vec::new()
        }
        Err(Failure::Refused { exc, .. }) if exc.kind == ExceptionKind::NoSuchOperationEx => Vec::new(),
        Err(f @ Failure::Contract { .. }) => {
            unverified.push(format!("{} broke the contract ({})", method.name(), f.describe()));
            Vec::new()
        }
        Err(f) => {
            unverified.push(format!("{}: {}", method.name(), f.describe()));
            Vec::new()
        }
    }
}
