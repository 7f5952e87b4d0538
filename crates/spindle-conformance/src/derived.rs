//! The checks the manager enforces on every call (return shapes, exceptions, update rules,
//! page83_id, `*_is_sync`), judged per method from the run's call log, and the report.

use crate::catalogue::CheckInfo;
use crate::kit::{derived_ids, reported_check, Kit};
use crate::report::{CheckResult, Report, Verdict};
use spindle_api::{Method, METHODS};
use spindle_manager::Rule;
use std::collections::HashMap;

impl Kit<'_> {
    /// Judges the per-method contract checks from the log.
    pub(crate) fn derive(&mut self) {
        let polls: u32 = self.log.iter().map(|l| l.async_polls).sum();
        for spec in METHODS {
            let m = spec.method;
            let calls: Vec<&crate::kit::Logged> =
                self.log.iter().filter(|l| l.method == m && !l.rejected).collect();
            let mut n = calls.len();
            let refused = calls.iter().filter(|l| !l.ok).count();
            if m == Method::GetAsyncProgress {
                n += polls as usize;
            }
            let mut found: HashMap<String, Vec<String>> = HashMap::new();
            for l in &self.log {
                for (at, v) in &l.violations {
                    if *at != m {
                        continue;
                    }
                    let mut id = reported_check(m, v.rule);
                    if !self.known.contains(&id) {
                        id = format!("{}.returns", m.name());
                    }
                    let text = format!("{v} [rule: {}]", v.rule.statement());
                    let list = found.entry(id).or_default();
                    if !list.contains(&text) {
                        list.push(text);
                    }
                }
            }
            for l in calls.iter().filter(|l| !l.printed.is_empty()) {
                let list = found.entry(format!("{}.returns", spec.name)).or_default();
                for p in &l.printed {
                    let text = format!("{p} [rule: {}]", Rule::StdoutPollution.statement());
                    if !list.contains(&text) {
                        list.push(text);
                    }
                }
            }
            let ids = derived_ids(m);
            let mut sync_note = None;
            if let Some(op) = spec.ability {
                let id = format!("{}.sync", spec.name);
                let flag = op.sync_key();
                if !self.caps.op(op).is_supported() {
                    sync_note = Some(format!("{} is UNSUPPORTED", op.as_str()));
                } else if !self.caps.flag(flag).is_yes() {
                    sync_note = Some(format!(
                        "{} is NO: {} may finish asynchronously",
                        flag.as_str(),
                        spec.name
                    ));
                } else {
                    for l in calls.iter().filter(|l| l.async_polls > 0) {
                        let text = format!(
                            "{} returned async_progress ({} getAsyncProgress polls) although {} is YES",
                            spec.name,
                            l.async_polls,
                            flag.as_str()
                        );
                        found.entry(id.clone()).or_default().push(text);
                    }
                }
            }
            for id in ids {
                if let Some(v) = found.remove(&id) {
                    self.fail(&id, v.join("; "));
                    continue;
                }
                let judged = self
                    .results
                    .get(&id)
                    .is_some_and(|a| !a.pass.is_empty() || !a.fail.is_empty());
                if judged {
                    continue;
                }
                if id.ends_with(".sync") {
                    if let Some(note) = &sync_note {
                        self.skip(&id, note.clone());
                        continue;
                    }
                }
                if n == 0 {
                    let why = if m.has_generic_fallback() && !self.plugin.implements(m) {
                        format!(
                            "{} is not implemented by the plug-in (the manager's generic version applies)",
                            spec.name
                        )
                    } else if m == Method::GetAsyncProgress && !self.plugin.implements(m) {
                        "not implemented: no operation of the plug-in may finish asynchronously".to_string()
                    } else if matches!(m, Method::Start | Method::Stop) {
                        format!("{} logs the host in or out of the array's targets; the kit leaves the host's sessions alone", spec.name)
                    } else if self.log.iter().any(|l| l.method == m) {
                        format!(
                            "{} was called only with parameters the manager refused",
                            spec.name
                        )
                    } else {
                        format!("{} was not called in this run", spec.name)
                    };
                    self.skip(&id, why);
                } else if id.ends_with(".exceptions") {
                    self.pass(
                        &id,
                        format!("{n} call(s), {refused} refused: only the guides' exceptions, each as the guides say"),
                    );
                } else if id.ends_with(".sync") {
                    self.pass(&id, format!("{n} call(s), none asynchronous"));
                } else {
                    self.pass(&id, format!("{n} call(s), none broke this rule"));
                }
            }
            // Anything charged to a check this method does not have goes to its returns check.
            for (_, v) in found {
                self.fail(&format!("{}.returns", spec.name), v.join("; "));
            }
        }
    }

    /// The report, in the catalogue's order, of the checks the options select.
    pub(crate) fn report(&self, catalogue: &[CheckInfo]) -> Report {
        let fallback = self
            .fallback
            .clone()
            .unwrap_or_else(|| "not exercised in this run".to_string());
        let checks = catalogue
            .iter()
            .filter(|c| self.opts.wants(&c.id))
            .map(|c| {
                let (verdict, reason) = match self.results.get(&c.id) {
                    Some(a) if !a.fail.is_empty() => (Verdict::Fail, dedup(&a.fail).join("; ")),
                    Some(a) if !a.pass.is_empty() => {
                        let d = dedup(&a.pass);
                        let more = d.len() - 1;
                        let reason = if more == 0 {
                            d[0].clone()
                        } else {
                            format!("{} (and {more} more observation(s))", d[0])
                        };
                        (Verdict::Pass, reason)
                    }
                    Some(a) if !a.skip.is_empty() => (Verdict::Skip, a.skip[0].clone()),
                    _ => (Verdict::Skip, fallback.clone()),
                };
                CheckResult {
                    id: c.id.clone(),
                    verdict,
                    reason,
                    rule: c.rule.clone(),
                }
            })
            .collect();
        Report {
            plugin: self.plugin.id.to_string(),
            prefix: self.opts.prefix.clone(),
            checks,
            leftovers: self.leftovers.clone(),
        }
    }
}

fn dedup(v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}
