//! Access groups (create, list, entries, rename, limits, remove) and presentation (start, stop,
//! and what getAccessGroups(se) and the element's access_grp_names say about it).

use crate::kit::{brief, group_entries, group_names, presented_names, same, Failure, Kit, ObjId, BAD_VALUE};
use serde_json::{json, Value};
use spindle_api::{MaxEntries, Method, StorageType};
use std::collections::BTreeSet;

/// The groups the rest of the run uses.
#[derive(Debug, Default, Clone)]
pub(crate) struct Groups {
    /// Elements are presented to this group (it holds the data path's initiator, if any).
    pub present_to: Option<String>,
    /// A group no element is presented to.
    pub other: Option<String>,
}

/// Every check about access groups and presentation, for skipping them together.
pub(crate) const GROUP_CHECKS: &[&str] = &[
    "getAccessGroups.lists_created",
    "getAccessGroups.of_element",
    "getInfo.access_grp_names",
    "createAccessGroups.returns_created",
    "createAccessGroups.duplicate_refused",
    "createAccessGroups.missing_key",
    "removeAccessGroups.removes",
    "removeAccessGroups.twice_refused",
    "renameAccessGroup.renames",
    "renameAccessGroup.unknown_group_refused",
    "addToAccessGroup.adds",
    "addToAccessGroup.max_access_entries",
    "addToAccessGroup.unknown_group_refused",
    "removeFromAccessGroup.removes",
    "removeFromAccessGroup.unknown_group_refused",
    "startPresent.returns_groups",
    "startPresent.unknown_group_refused",
    "stopPresent.returns_groups",
    "online.keeps_presentation",
    "offline.keeps_presentation",
    "remove.refused_while_presented",
    "remove.never_unpresents",
];

fn set_text(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "no group".to_string()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn grp(name: &str, entries: &[String]) -> Value {
    json!({"grp_name": name, "grp_entries": entries})
}

impl Kit<'_> {
    /// Keeps the ss_record's access_grps as an access-group call returned it.
    fn adopt(&mut self, returned: &Value) {
        if returned.is_array() {
            if let Some(m) = self.ss.as_object_mut() {
                m.insert("access_grps".into(), returned.clone());
            }
        }
    }

    /// The data path's initiator, when the run has one and the array is iSCSI.
    pub(crate) fn initiator(&self) -> Option<String> {
        if self.storage_type == Some(StorageType::Iscsi) {
            self.opts.data_path.as_ref().map(|d| d.initiator.clone())
        } else {
            None
        }
    }

    async fn create_group(&mut self, name: &str, entries: &[String]) -> Result<Value, Failure> {
        let r = self
            .call(
                Method::CreateAccessGroups,
                vec![("access_grps", json!([grp(name, entries)]))],
            )
            .await;
        match &r {
            Ok(v) => {
                self.adopt(v);
                self.groups.push(name.to_string());
            }
            // It may exist all the same; the clean-up looks for it by name.
            Err(_) => self.stray_groups.push(name.to_string()),
        }
        r
    }

    async fn listed_groups(&mut self, id: &str, doing: &str) -> Option<Value> {
        match self.call(Method::GetAccessGroups, vec![]).await {
            Ok(v) => Some(v),
            Err(f) => {
                self.call_failed(id, &f, doing);
                None
            }
        }
    }

    /// Creates, lists, edits and renames groups; checks the limit and bad names.
    pub(crate) async fn access_groups(&mut self) -> Groups {
        if !self.caps.access_control.is_yes() {
            self.skip_all(
                GROUP_CHECKS,
                "access_control is NO: the array has no access control",
            );
            return Groups::default();
        }
        let g1 = self.name("grp1");
        let mut entries: Vec<String> = self.initiator().into_iter().collect();
        let e1 = self.entry();
        entries.push(e1.clone());
        let want: BTreeSet<String> = entries.iter().map(|e| e.to_ascii_lowercase()).collect();
        match self.create_group(&g1, &entries).await {
            Ok(v) => match group_entries(&v, &g1) {
                Some(got) if got.is_superset(&want) => self.pass(
                    "createAccessGroups.returns_created",
                    format!(
                        "the returned access_grps holds {g1} with its {} entries",
                        want.len()
                    ),
                ),
                Some(got) => self.fail(
                    "createAccessGroups.returns_created",
                    format!(
                        "the returned {g1} holds {}; expected {}",
                        set_text(&got),
                        set_text(&want)
                    ),
                ),
                None => self.fail(
                    "createAccessGroups.returns_created",
                    format!(
                        "the returned access_grps does not hold {g1} (it names: {})",
                        group_names(&v).join(", ")
                    ),
                ),
            },
            Err(f) => {
                self.call_failed("createAccessGroups.returns_created", &f, "createAccessGroups");
                let skipped: Vec<&str> = GROUP_CHECKS
                    .iter()
                    .copied()
                    .filter(|c| *c != "createAccessGroups.returns_created")
                    .collect();
                self.skip_all(
                    &skipped,
                    "no access group could be created (see createAccessGroups.returns_created)",
                );
                return Groups::default();
            }
        }
        if let Some(v) = self
            .listed_groups("getAccessGroups.lists_created", "getAccessGroups")
            .await
        {
            match group_entries(&v, &g1) {
                Some(got) if got.is_superset(&want) => self.pass(
                    "getAccessGroups.lists_created",
                    format!("getAccessGroups lists {g1} with its entries"),
                ),
                Some(got) => self.fail(
                    "getAccessGroups.lists_created",
                    format!(
                        "getAccessGroups lists {g1} with {}; expected {}",
                        set_text(&got),
                        set_text(&want)
                    ),
                ),
                None => self.fail(
                    "getAccessGroups.lists_created",
                    format!("getAccessGroups does not list the new group {g1}"),
                ),
            }
        }
        // The same name again.
        let again = vec![self.entry()];
        if let Some(v) = self
            .refused_call(
                "createAccessGroups.duplicate_refused",
                Method::CreateAccessGroups,
                vec![("access_grps", json!([grp(&g1, &again)]))],
                &[],
                &format!("creating a second group named {g1}"),
            )
            .await
        {
            self.adopt(&v);
        }
        // No name.
        let nameless = self.entry();
        let r = self
            .call(
                Method::CreateAccessGroups,
                vec![("access_grps", json!([{"grp_entries": [nameless]}]))],
            )
            .await;
        if let Some(v) = self.expect_missing_key(
            "createAccessGroups.missing_key",
            r,
            "grp_name",
            "creating a group without grp_name",
        ) {
            self.adopt(&v);
        }
        self.entries_add_remove(&g1, &want).await;
        let present_to = self.rename(&g1).await;
        self.unknown_group_probes().await;
        let g3 = self.name("grp3");
        let e3 = vec![self.entry()];
        let other = match self.create_group(&g3, &e3).await {
            Ok(v) if group_entries(&v, &g3).is_some() => Some(g3),
            Ok(v) => {
                self.fail(
                    "createAccessGroups.returns_created",
                    format!(
                        "the returned access_grps does not hold {g3} (it names: {})",
                        group_names(&v).join(", ")
                    ),
                );
                Some(g3)
            }
            Err(f) => {
                self.call_failed("createAccessGroups.returns_created", &f, "createAccessGroups");
                None
            }
        };
        self.max_entries().await;
        Groups {
            present_to: Some(present_to),
            other,
        }
    }

    async fn entries_add_remove(&mut self, g1: &str, want: &BTreeSet<String>) {
        let e2 = self.entry();
        let e2l = e2.to_ascii_lowercase();
        let r = self
            .call(
                Method::AddToAccessGroup,
                vec![("access_grp_name", json!(g1)), ("grp_entries", json!([e2]))],
            )
            .await;
        match r {
            Ok(v) => {
                let got = crate::kit::entries_of(&v);
                if !got.contains(&e2l) || !got.is_superset(want) {
                    self.fail(
                        "addToAccessGroup.adds",
                        format!(
                            "addToAccessGroup returned {}; expected the entries {} and {e2}",
                            brief(&v),
                            set_text(want)
                        ),
                    );
                } else if let Some(list) = self
                    .listed_groups("addToAccessGroup.adds", "getAccessGroups")
                    .await
                {
                    let kept = group_entries(&list, g1).unwrap_or_default();
                    self.verdict(
                        "addToAccessGroup.adds",
                        kept.contains(&e2l),
                        format!("{e2} added to {g1}, and getAccessGroups shows it"),
                        format!(
                            "addToAccessGroup returned {e2} in {g1}, but getAccessGroups shows {}",
                            set_text(&kept)
                        ),
                    );
                }
            }
            Err(f) => self.call_failed("addToAccessGroup.adds", &f, "addToAccessGroup"),
        }
        let r = self
            .call(
                Method::RemoveFromAccessGroup,
                vec![("access_grp_name", json!(g1)), ("grp_entries", json!([e2]))],
            )
            .await;
        match r {
            Ok(v) => {
                let got = crate::kit::entries_of(&v);
                if got.contains(&e2l) || !got.is_superset(want) {
                    self.fail(
                        "removeFromAccessGroup.removes",
                        format!(
                            "removeFromAccessGroup returned {}; expected {} without {e2}",
                            brief(&v),
                            set_text(want)
                        ),
                    );
                } else if let Some(list) = self
                    .listed_groups("removeFromAccessGroup.removes", "getAccessGroups")
                    .await
                {
                    let kept = group_entries(&list, g1).unwrap_or_default();
                    self.verdict(
                        "removeFromAccessGroup.removes",
                        !kept.contains(&e2l) && kept.is_superset(want),
                        format!("{e2} removed from {g1}, and getAccessGroups agrees"),
                        format!(
                            "after removeFromAccessGroup getAccessGroups shows {g1} with {}",
                            set_text(&kept)
                        ),
                    );
                }
            }
            Err(f) => self.call_failed("removeFromAccessGroup.removes", &f, "removeFromAccessGroup"),
        }
    }

    /// Renames g1; returns the name the group has afterwards.
    async fn rename(&mut self, g1: &str) -> String {
        let g1r = self.name("grp1-renamed");
        let r = self
            .call(
                Method::RenameAccessGroup,
                vec![
                    ("access_grp_name", json!(g1)),
                    ("new_access_grp_name", json!(g1r)),
                ],
            )
            .await;
        match r {
            Ok(v) => {
                self.adopt(&v);
                for g in &mut self.groups {
                    if g == g1 {
                        *g = g1r.clone();
                    }
                }
                let names = group_names(&v);
                if !names.contains(&g1r) || names.iter().any(|n| n == g1) {
                    self.fail(
                        "renameAccessGroup.renames",
                        format!(
                            "the returned access_grps names {}; expected {g1r} instead of {g1}",
                            names.join(", ")
                        ),
                    );
                } else if let Some(list) = self
                    .listed_groups("renameAccessGroup.renames", "getAccessGroups")
                    .await
                {
                    let listed = group_names(&list);
                    self.verdict(
                        "renameAccessGroup.renames",
                        listed.contains(&g1r) && !listed.iter().any(|n| n == g1),
                        format!("{g1} is now {g1r}, in the returned list and on the array"),
                        format!("after the rename getAccessGroups lists {}", listed.join(", ")),
                    );
                }
                g1r
            }
            Err(f) => {
                self.call_failed("renameAccessGroup.renames", &f, "renameAccessGroup");
                self.stray_groups.push(g1r);
                g1.to_string()
            }
        }
    }

    async fn unknown_group_probes(&mut self) {
        let ghost = self.name("no-such-grp");
        let e = self.entry();
        if self
            .refused_call(
                "addToAccessGroup.unknown_group_refused",
                Method::AddToAccessGroup,
                vec![("access_grp_name", json!(ghost)), ("grp_entries", json!([e]))],
                BAD_VALUE,
                &format!("adding an entry to {ghost}, which does not exist"),
            )
            .await
            .is_some()
        {
            self.stray_groups.push(ghost.clone());
        }
        self.refused_call(
            "removeFromAccessGroup.unknown_group_refused",
            Method::RemoveFromAccessGroup,
            vec![("access_grp_name", json!(ghost)), ("grp_entries", json!([e]))],
            BAD_VALUE,
            &format!("removing an entry from {ghost}, which does not exist"),
        )
        .await;
        let ghost2 = self.name("no-such-grp2");
        if let Some(v) = self
            .refused_call(
                "renameAccessGroup.unknown_group_refused",
                Method::RenameAccessGroup,
                vec![
                    ("access_grp_name", json!(ghost)),
                    ("new_access_grp_name", json!(ghost2)),
                ],
                BAD_VALUE,
                &format!("renaming {ghost}, which does not exist"),
            )
            .await
        {
            self.adopt(&v);
            self.stray_groups.push(ghost2);
        }
    }

    async fn max_entries(&mut self) {
        let id = "addToAccessGroup.max_access_entries";
        let n = match self.caps.max_access_entries {
            MaxEntries::Unlimited => {
                self.skip(
                    id,
                    "max_access_entries is -1: a group may hold any number of entries",
                );
                return;
            }
            MaxEntries::Limited(n) if n > 512 => {
                self.skip(
                    id,
                    format!("max_access_entries is {n}: too many entries to fill a group with"),
                );
                return;
            }
            MaxEntries::Limited(n) => n,
        };
        let g2 = self.name("grp-full");
        let entries: Vec<String> = (0..n).map(|_| self.entry()).collect();
        if let Err(f) = self.create_group(&g2, &entries).await {
            match f {
                Failure::Contract { .. } => self.call_failed(id, &f, "createAccessGroups"),
                _ => self.fail(
                    id,
                    format!(
                        "a group with exactly max_access_entries = {n} entries was refused: {}",
                        f.describe()
                    ),
                ),
            }
            return;
        }
        let extra = self.entry();
        let r = self
            .call(
                Method::AddToAccessGroup,
                vec![("access_grp_name", json!(g2)), ("grp_entries", json!([extra]))],
            )
            .await;
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        match r {
            Ok(v) => problems.push(format!(
                "adding entry {} to {g2}, which already holds max_access_entries = {n}, succeeded (returned {})",
                n + 1,
                brief(&v)
            )),
            Err(f @ Failure::Refused { .. }) => notes.push(format!("a {}th entry: {}", n + 1, f.describe())),
            Err(f) => {
                self.call_failed(id, &f, "addToAccessGroup beyond the limit");
                return;
            }
        }
        let g4 = self.name("grp-over");
        let over: Vec<String> = (0..=n).map(|_| self.entry()).collect();
        let r = self
            .call(
                Method::CreateAccessGroups,
                vec![("access_grps", json!([grp(&g4, &over)]))],
            )
            .await;
        match r {
            Ok(v) => {
                self.adopt(&v);
                self.groups.push(g4.clone());
                problems.push(format!(
                    "creating {g4} with {} entries (max_access_entries is {n}) succeeded",
                    n + 1
                ));
            }
            Err(f @ Failure::Refused { .. }) => {
                notes.push(format!("a new group of {} entries: {}", n + 1, f.describe()))
            }
            Err(f) => {
                self.stray_groups.push(g4);
                self.call_failed(id, &f, "createAccessGroups over the limit");
                return;
            }
        }
        self.verdict(
            id,
            problems.is_empty(),
            format!("a group of {n} entries was accepted; {}", notes.join("; ")),
            problems.join("; "),
        );
    }

    /// removeAccessGroups of `g`, then again.
    pub(crate) async fn remove_group_checks(&mut self, g: Option<String>) {
        let Some(g) = g else {
            self.skip_all(
                &["removeAccessGroups.removes", "removeAccessGroups.twice_refused"],
                "the kit has no spare group to remove (see createAccessGroups.returns_created)",
            );
            return;
        };
        let arg = json!([{"grp_name": g, "grp_entries": []}]);
        match self
            .call(Method::RemoveAccessGroups, vec![("access_grps", arg.clone())])
            .await
        {
            Ok(v) => {
                self.adopt(&v);
                self.groups.retain(|x| *x != g);
                let returned = group_names(&v);
                if returned.contains(&g) {
                    self.fail(
                        "removeAccessGroups.removes",
                        format!("the returned access_grps still holds {g}"),
                    );
                } else if let Some(list) = self
                    .listed_groups("removeAccessGroups.removes", "getAccessGroups")
                    .await
                {
                    let listed = group_names(&list);
                    self.verdict(
                        "removeAccessGroups.removes",
                        !listed.contains(&g),
                        format!("{g} is gone from the returned list and from the array"),
                        format!("removeAccessGroups succeeded, but getAccessGroups still lists {g}"),
                    );
                }
                if let Some(v) = self
                    .refused_call(
                        "removeAccessGroups.twice_refused",
                        Method::RemoveAccessGroups,
                        vec![("access_grps", arg)],
                        &[],
                        &format!("removing {g} a second time"),
                    )
                    .await
                {
                    self.adopt(&v);
                }
            }
            Err(f) => {
                self.call_failed("removeAccessGroups.removes", &f, "removeAccessGroups");
                self.skip(
                    "removeAccessGroups.twice_refused",
                    "the group could not be removed once (see removeAccessGroups.removes)",
                );
            }
        }
    }

    // ---- presentation ---------------------------------------------------------------------

    /// startPresent of `o` to `groups`; true when it worked.
    pub(crate) async fn present(&mut self, o: ObjId, groups: &[String]) -> bool {
        let r = self
            .call(
                Method::StartPresent,
                vec![("se_record", self.rec(o)), ("access_grp_names", json!(groups))],
            )
            .await;
        let label = self.label(o);
        match r {
            Ok(rec) => {
                self.objs[o].presented.extend(groups.iter().cloned());
                let names = presented_names(&rec).unwrap_or_default();
                let missing: Vec<&String> = groups.iter().filter(|g| !names.contains(*g)).collect();
                self.verdict(
                    "startPresent.returns_groups",
                    missing.is_empty(),
                    format!("{label} presented; its record names {}", set_text(&names)),
                    format!(
                        "startPresent of {label} to {} returned access_grp_names {}",
                        groups.join(", "),
                        set_text(&names)
                    ),
                );
                if same(&rec, &self.objs[o].rec) {
                    self.objs[o].rec = rec;
                }
                true
            }
            Err(f) => {
                self.call_failed(
                    "startPresent.returns_groups",
                    &f,
                    &format!("startPresent of {label}"),
                );
                false
            }
        }
    }

    /// stopPresent of `o` from `groups`; true when it worked.
    pub(crate) async fn unpresent(&mut self, o: ObjId, groups: &[String]) -> bool {
        let r = self
            .call(
                Method::StopPresent,
                vec![("se_record", self.rec(o)), ("access_grp_names", json!(groups))],
            )
            .await;
        let label = self.label(o);
        match r {
            Ok(rec) => {
                for g in groups {
                    self.objs[o].presented.remove(g);
                }
                let names = presented_names(&rec).unwrap_or_default();
                let still: Vec<&String> = groups.iter().filter(|g| names.contains(*g)).collect();
                self.verdict(
                    "stopPresent.returns_groups",
                    still.is_empty(),
                    format!("{label} no longer presented to {}", groups.join(", ")),
                    format!(
                        "stopPresent of {label} from {} returned access_grp_names {}",
                        groups.join(", "),
                        set_text(&names)
                    ),
                );
                if same(&rec, &self.objs[o].rec) {
                    self.objs[o].rec = rec;
                }
                true
            }
            Err(f) => {
                self.call_failed(
                    "stopPresent.returns_groups",
                    &f,
                    &format!("stopPresent of {label}"),
                );
                false
            }
        }
    }

    /// What getAccessGroups(se) and getInfo(se) say about `o`, against what the kit did.
    pub(crate) async fn observe(&mut self, o: ObjId) {
        let label = self.label(o);
        let expected = self.objs[o].presented.clone();
        if self.caps.access_control.is_yes() {
            match self
                .call(Method::GetAccessGroups, vec![("se_record", self.rec(o))])
                .await
            {
                Ok(v) => {
                    let got: BTreeSet<String> = group_names(&v).into_iter().collect();
                    self.verdict(
                        "getAccessGroups.of_element",
                        got == expected,
                        format!("getAccessGroups({label}) lists {}", set_text(&got)),
                        format!(
                            "getAccessGroups({label}) lists {}, but {label} is presented to {}",
                            set_text(&got),
                            set_text(&expected)
                        ),
                    );
                }
                Err(f) => self.call_failed(
                    "getAccessGroups.of_element",
                    &f,
                    &format!("getAccessGroups({label})"),
                ),
            }
        }
        self.info(o, true).await;
    }

    /// getInfo(se) of `o`: checks identity, name and size, and (when `presentation`)
    /// access_grp_names; keeps the returned record.
    pub(crate) async fn info(&mut self, o: ObjId, presentation: bool) -> Option<Value> {
        let label = self.label(o);
        let before = self.rec(o);
        match self
            .call(Method::GetInfo, vec![("se_record", before.clone())])
            .await
        {
            Ok(rec) => {
                let mut bad = Vec::new();
                if !same(&rec, &before) {
                    bad.push(format!("it describes another element: {}", brief(&rec)));
                }
                let (n0, n1) = (before.get("name"), rec.get("name"));
                if n0.is_some() && n0 != n1 {
                    bad.push(format!(
                        "name {} became {}",
                        brief(n0.unwrap_or(&Value::Null)),
                        brief(n1.unwrap_or(&Value::Null))
                    ));
                }
                let (s0, s1) = (
                    before.get("size").and_then(Value::as_i64),
                    rec.get("size").and_then(Value::as_i64),
                );
                if let (Some(a), Some(b)) = (s0, s1) {
                    if a != b {
                        bad.push(format!("size {b}, but the element's size is {a}"));
                    }
                } else if s1.is_none() {
                    bad.push("no size".to_string());
                }
                self.verdict(
                    "getInfo.se_record",
                    bad.is_empty(),
                    format!("getInfo({label}) describes it, size {}", s1.unwrap_or(0)),
                    format!("getInfo({label}): {}", bad.join("; ")),
                );
                if presentation && self.caps.access_control.is_yes() {
                    let expected = self.objs[o].presented.clone();
                    match presented_names(&rec) {
                        Some(got) => self.verdict(
                            "getInfo.access_grp_names",
                            got == expected,
                            format!("{label}'s access_grp_names lists {}", set_text(&got)),
                            format!(
                                "{label}'s access_grp_names lists {}, but it is presented to {}",
                                set_text(&got),
                                set_text(&expected)
                            ),
                        ),
                        None => self.fail(
                            "getInfo.access_grp_names",
                            format!("getInfo({label}) returned no access_grp_names list"),
                        ),
                    }
                }
                if bad.is_empty() {
                    self.objs[o].rec = rec.clone();
                }
                Some(rec)
            }
            Err(f) => {
                self.call_failed("getInfo.se_record", &f, &format!("getInfo({label})"));
                None
            }
        }
    }

    /// The groups `o` is presented to now, per getInfo (no verdict recorded).
    pub(crate) async fn presentation_now(&mut self, o: ObjId) -> Option<BTreeSet<String>> {
        let r = self.call(Method::GetInfo, vec![("se_record", self.rec(o))]).await;
        r.ok().and_then(|rec| presented_names(&rec))
    }

    /// startPresent to a group that does not exist must be refused.
    pub(crate) async fn present_unknown_group(&mut self, o: ObjId) {
        let ghost = self.name("no-such-grp");
        let label = self.label(o);
        if let Some(v) = self
            .refused_call(
                "startPresent.unknown_group_refused",
                Method::StartPresent,
                vec![("se_record", self.rec(o)), ("access_grp_names", json!([ghost]))],
                BAD_VALUE,
                &format!("presenting {label} to {ghost}, which does not exist"),
            )
            .await
        {
            // Believe the array about what the element is presented to now.
            if let Some(names) = presented_names(&v) {
                self.objs[o].presented = names;
            }
            self.stray_groups.push(ghost);
        }
    }
}
