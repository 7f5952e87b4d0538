//! Removing everything the run created, in dependency order, and looking for what is left.

use crate::kit::{entries_of, name_of, presented_names, same, Kind, Kit, ObjId};
use serde_json::{json, Value};
use spindle_api::Method;
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
        self.leftovers = self.left_behind().await;
        let id = "cleanup.nothing_left";
        if self.leftovers.is_empty() {
            self.pass(
                id,
                format!(
                    "removed everything the run made ({made} elements and groups); nothing named {}* remains",
                    self.opts.prefix
                ),
            );
        } else {
            self.fail(id, format!("left behind: {}", self.leftovers.join("; ")));
        }
    }

    /// Everything on the array that looks like the run's: by prefix, tracked identity, or an
    /// access-group entry of this run.
    async fn ours_on_array(&mut self) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
        let mut elements = Vec::new();
        let all_types = json!(["LUNType", "GhostLUNType", "SnapCloneType"]);
        if let Ok(Value::Array(items)) = self.call(Method::List, vec![("se_type", all_types)]).await {
            for r in items {
                if self.is_ours(&r) && !elements.iter().any(|x| same(x, &r)) {
                    elements.push(r);
                }
            }
        }
        let mut snaps = Vec::new();
        if let Ok(Value::Array(items)) = self.call(Method::GetCurrentSnaps, vec![]).await {
            for r in items {
                if self.is_ours(&r) && !snaps.iter().any(|x| same(x, &r)) {
                    snaps.push(r);
                }
            }
        }
        let mut groups = Vec::new();
        if self.caps.access_control.is_yes() {
            if let Ok(Value::Array(items)) = self.call(Method::GetAccessGroups, vec![]).await {
                groups = items.into_iter().filter(|g| self.group_is_ours(g)).collect();
            }
        }
        (elements, snaps, groups)
    }

    /// A second pass over what the array still shows.
    async fn sweep(&mut self) {
        let (elements, snaps, groups) = self.ours_on_array().await;
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

    async fn left_behind(&mut self) -> Vec<String> {
        let (elements, snaps, groups) = self.ours_on_array().await;
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
        out
    }
}
