//! `refusals.change_nothing`: a call the kit expects to be refused must leave the array as it
//! was. The guides' exceptions report bad input or a state that forbids the call; a plug-in
//! that raises one after acting halfway (a file made, a group renamed, an element unpresented)
//! leaves the caller believing nothing happened while the array changed.

use crate::kit::{entries_of, name_of, presented_names, CallResult, Failure, Kit};
use serde_json::Value;
use spindle_api::{ExceptionKind, Method};
use std::collections::BTreeSet;

/// The check this module judges.
pub(crate) const CHANGE_NOTHING: &str = "refusals.change_nothing";

/// What a refused call must not change of the run's part of the array, one line per object:
/// each element's type, name, size and groups, each snapshot's name, each access group's
/// name and entries. Statuses and free space are left out: the array may change them itself.
pub(crate) type Seen = BTreeSet<String>;

fn text(rec: &Value, key: &str) -> String {
    match rec.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl Kit<'_> {
    /// Makes a call the kit expects to be refused and judges it under `id` as
    /// [`Kit::expect_refused`] does; when it is refused, also judges
    /// [`CHANGE_NOTHING`] by comparing what the array showed before and after.
    pub(crate) async fn refused_call(
        &mut self,
        id: &str,
        method: Method,
        params: Vec<(&str, Value)>,
        kinds: &[ExceptionKind],
        attempt: &str,
    ) -> Option<Value> {
        let before = self.seen_for_refusal().await;
        let r: CallResult = self.call(method, params).await;
        let refused = matches!(r, Err(Failure::Refused { .. }));
        let made = self.expect_refused(id, r, kinds, attempt);
        if let (true, Some(before)) = (refused, before) {
            if let Some(after) = self.seen_for_refusal().await {
                self.judge_unchanged(&before, &after, attempt);
            }
        }
        made
    }

    /// The run's part of the array as [`Seen`], or `None` when the check is not selected or a
    /// listing did not answer (nothing can then be compared).
    async fn seen_for_refusal(&mut self) -> Option<Seen> {
        if !self.opts.wants(CHANGE_NOTHING) {
            return None;
        }
        // Refusals often follow one another: the listing after one is the listing before the
        // next, as long as no call came between.
        if let Some((at, seen)) = &self.refusal_view {
            if *at == self.log.len() {
                return Some(seen.clone());
            }
        }
        let (elements, snaps, groups, unverified) = self.ours_on_array().await;
        if !unverified.is_empty() {
            self.skip(
                CHANGE_NOTHING,
                format!("could not list the array to compare: {}", unverified.join("; ")),
            );
            return None;
        }
        let mut seen = Seen::new();
        for e in &elements {
            let groups: Vec<String> = presented_names(e).unwrap_or_default().into_iter().collect();
            seen.insert(format!(
                "{} {:?} of size {} presented to [{}]",
                text(e, "se_type"),
                name_of(e),
                text(e, "size"),
                groups.join(", ")
            ));
        }
        for s in &snaps {
            seen.insert(format!("snapshot {:?}", name_of(s)));
        }
        for g in &groups {
            let entries: Vec<String> = entries_of(g).into_iter().collect();
            seen.insert(format!(
                "access group {:?} holding [{}]",
                text(g, "grp_name"),
                entries.join(", ")
            ));
        }
        self.refusal_view = Some((self.log.len(), seen.clone()));
        Some(seen)
    }

    fn judge_unchanged(&mut self, before: &Seen, after: &Seen, attempt: &str) {
        let gone: Vec<&String> = before.difference(after).collect();
        let new: Vec<&String> = after.difference(before).collect();
        if gone.is_empty() && new.is_empty() {
            self.pass(
                CHANGE_NOTHING,
                format!("{attempt} was refused and the array shows what it showed before"),
            );
            return;
        }
        let mut changes = Vec::new();
        if !gone.is_empty() {
            changes.push(format!(
                "before: {}",
                gone.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
            ));
        }
        if !new.is_empty() {
            changes.push(format!(
                "after: {}",
                new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
            ));
        }
        self.fail(
            CHANGE_NOTHING,
            format!(
                "{attempt} was refused, but the array changed ({})",
                changes.join("; ")
            ),
        );
    }
}
