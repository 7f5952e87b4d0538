//! Asynchronous operations that did not finish: the check that first judged one carries the
//! failure (see `Kit::call_failed`); what the operation left on the array is looked for before
//! the removals, tracked like the kit's own and removed, so that later checks judge the
//! plug-in and not the leftovers of its unfinished work.

use crate::kit::{name_of, requested_text, same, Kind, Kit, ObjId};
use serde_json::Value;
use spindle_api::names::shown;
use spindle_api::Method;

impl Kit<'_> {
    /// For each unfinished operation not yet looked at: finds what it left (a snapshot of its
    /// element, an element under the name it was asked for), tracks it, and removes the
    /// snapshots and clones among it right away (they keep their source busy); what cannot be
    /// removed now stays tracked for the cleanup.
    pub(crate) async fn settle_unfinished(&mut self) {
        for op in 0..self.unfinished.len() {
            if self.unfinished[op].settled {
                continue;
            }
            self.unfinished[op].settled = true;
            let u = self.unfinished[op].clone();
            let found = match u.method {
                Method::CreateSnap | Method::CreateMultiSnap => {
                    self.left_snapshots(&u.sources, &u.names).await
                }
                Method::Create | Method::Clone | Method::CloneFromSnap if !u.names.is_empty() => {
                    let kind = if u.method == Method::Create {
                        Kind::Lun
                    } else {
                        Kind::Clone
                    };
                    self.left_elements(&u.names)
                        .await
                        .into_iter()
                        .map(|r| (kind, r))
                        .collect()
                }
                Method::CreateAccessGroups => {
                    for g in &u.names {
                        if !self.stray_groups.contains(g) && !self.groups.contains(g) {
                            self.stray_groups.push(g.clone());
                        }
                    }
                    Vec::new()
                }
                _ => Vec::new(),
            };
            let role = format!("left by the unfinished {}", u.method.name());
            for (kind, rec) in found {
                let name = name_of(&rec);
                let o = self.track(&role, kind, rec);
                self.unfinished[op].left.push(o);
                let asked = requested_text(u.method, &name);
                self.maybe_made.retain(|d| *d != asked);
                if kind != Kind::Lun {
                    self.remove_obj(o).await;
                }
            }
        }
    }

    /// Snapshots of `sources` (that still exist) the kit does not track, under one of `names`
    /// when names were asked for.
    async fn left_snapshots(&mut self, sources: &[Value], names: &[String]) -> Vec<(Kind, Value)> {
        let mut out: Vec<(Kind, Value)> = Vec::new();
        for src in sources {
            if self.objs.iter().any(|o| o.gone && same(&o.rec, src)) {
                continue;
            }
            let Ok(Value::Array(items)) = self
                .call(Method::GetCurrentSnaps, vec![("se_record", src.clone())])
                .await
            else {
                continue;
            };
            for r in items {
                if self.untracked(&r, names) && !out.iter().any(|(_, x)| same(x, &r)) {
                    out.push((Kind::Snap, r));
                }
            }
        }
        out
    }

    /// Elements the kit does not track, named one of `names`.
    async fn left_elements(&mut self, names: &[String]) -> Vec<Value> {
        let all_types = serde_json::json!(["LUNType", "GhostLUNType", "SnapCloneType"]);
        match self.call(Method::List, vec![("se_type", all_types)]).await {
            Ok(Value::Array(items)) => items.into_iter().filter(|r| self.untracked(r, names)).collect(),
            _ => Vec::new(),
        }
    }

    fn untracked(&self, rec: &Value, names: &[String]) -> bool {
        (names.is_empty() || names.contains(&name_of(rec)))
            && !self.objs.iter().any(|o| !o.gone && same(&o.rec, rec))
    }

    /// For the cleanup's report: each unfinished operation and what the kit found it left.
    pub(crate) fn unfinished_summary(&self) -> Vec<String> {
        self.unfinished
            .iter()
            .map(|u| {
                let of = u
                    .charged
                    .as_deref()
                    .map_or_else(String::new, |c| format!(" of {c}"));
                let left: Vec<String> = u.left.iter().map(|&o| self.left_label(o)).collect();
                if left.is_empty() {
                    format!(
                        "the asynchronous {}{of} did not finish, and the array showed nothing it left",
                        u.method.name()
                    )
                } else {
                    format!(
                        "the asynchronous {}{of} did not finish and left {}",
                        u.method.name(),
                        left.join(", ")
                    )
                }
            })
            .collect()
    }

    fn left_label(&self, o: ObjId) -> String {
        let ob = &self.objs[o];
        format!(
            "{} {}{}",
            ob.kind.noun(),
            shown(&name_of(&ob.rec)),
            if ob.gone { " (removed)" } else { "" }
        )
    }
}
