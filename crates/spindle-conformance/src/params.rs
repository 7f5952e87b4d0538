//! Missing and malformed parameters, for every parameter of every method of the method table.
//!
//! Each call carries harmless values for the other parameters (records that designate nothing
//! on the array, group names that do not exist), so that a refusal can only be about the
//! parameter under test, and a layer that lets the call through changes nothing the kit did not
//! make. The manager refuses these before the plug-in runs; the report says which layer did.

use crate::kit::{brief, Failure, Kit};
use serde_json::{json, Value};
use spindle_api::{ExceptionKind, Method, ParamKind, ParamSpec, METHODS};

impl Kit<'_> {
    /// A well-formed value of `kind` that designates nothing the kit or anyone else has.
    fn harmless(&self, kind: ParamKind) -> Value {
        let grp = self.name("ghost-grp");
        match kind {
            ParamKind::SsRecord => self.ss.clone(),
            ParamKind::SeRecord | ParamKind::AnyRecord => self.ghost_se("LUNType"),
            ParamKind::SeRecordList => json!([self.ghost_se("LUNType")]),
            ParamKind::AccessGrpList => json!([{"grp_name": grp, "grp_entries": []}]),
            ParamKind::Name => json!(grp),
            ParamKind::NameList => json!([grp]),
            ParamKind::Integer => json!(64 * crate::kit::MIB),
            ParamKind::Boolean => json!(false),
            ParamKind::SeTypeList => json!(["LUNType"]),
            ParamKind::Qos => json!(self.name("ghost-qos")),
        }
    }

    /// A value of the wrong kind for `kind`.
    fn malformed(kind: ParamKind) -> Value {
        match kind {
            ParamKind::SsRecord
            | ParamKind::SeRecord
            | ParamKind::AnyRecord
            | ParamKind::SeRecordList
            | ParamKind::AccessGrpList
            | ParamKind::NameList
            | ParamKind::SeTypeList => json!(42),
            ParamKind::Name | ParamKind::Qos => json!(["not", "a", "string"]),
            ParamKind::Integer => json!("sixty-four"),
            ParamKind::Boolean => json!("yes"),
        }
    }

    fn full_args(&self, params: &[ParamSpec]) -> serde_json::Map<String, Value> {
        params
            .iter()
            .map(|p| (p.name.to_string(), self.harmless(p.kind)))
            .collect()
    }

    /// The `missing_parameters` and `malformed_parameters` checks of every method.
    pub(crate) async fn parameter_checks(&mut self) {
        for spec in METHODS {
            let missing_id = format!("{}.missing_parameters", spec.name);
            let malformed_id = format!("{}.malformed_parameters", spec.name);
            if self.opts.wants(&missing_id) {
                self.missing(spec.method, spec.params, &missing_id).await;
            }
            if self.opts.wants(&malformed_id) {
                self.malformed_params(spec.method, spec.params, &malformed_id)
                    .await;
            }
        }
    }

    async fn missing(&mut self, method: Method, params: &'static [ParamSpec], id: &str) {
        let mut layers = Vec::new();
        let mut bad = Vec::new();
        for p in params.iter().filter(|p| !p.optional()) {
            let mut args = self.full_args(params);
            args.remove(p.name);
            let (r, _) = self.call_raw(method, args, None).await;
            match r {
                Err(f @ Failure::Refused { .. })
                    if f.kind() == Some(ExceptionKind::MissingKeyEx) && f.key() == Some(p.name) =>
                {
                    layers.push((p.name, format!("{} with MissingKeyEx", f.layer())));
                }
                Err(f @ Failure::Contract { .. }) => {
                    self.call_failed(id, &f, &format!("{method} without {}", p.name));
                    return;
                }
                Err(f) => bad.push(format!(
                    "without {}: expected MissingKeyEx naming {}; {}{}",
                    p.name,
                    p.name,
                    f.describe(),
                    f.key().map(|k| format!(" (key {k})")).unwrap_or_default()
                )),
                Ok(v) => bad.push(format!(
                    "without {}: expected MissingKeyEx naming it, but the call succeeded and returned {}",
                    p.name,
                    brief(&v)
                )),
            }
        }
        if bad.is_empty() {
            self.pass(id, summarise(&layers));
        } else {
            self.fail(id, bad.join("; "));
        }
    }

    async fn malformed_params(&mut self, method: Method, params: &'static [ParamSpec], id: &str) {
        let mut layers = Vec::new();
        let mut bad = Vec::new();
        for p in params {
            let mut args = self.full_args(params);
            args.insert(p.name.to_string(), Self::malformed(p.kind));
            let (r, _) = self.call_raw(method, args, None).await;
            match r {
                Err(f @ Failure::Refused { .. })
                    if (f.kind() == Some(ExceptionKind::ValueFormatEx) && f.key() == Some(p.name))
                        || f.kind() == Some(ExceptionKind::InvalidValueEx) =>
                {
                    let kind = f.kind().map_or("", |k| k.as_str());
                    layers.push((p.name, format!("{} with {kind}", f.layer())));
                }
                Err(f @ Failure::Contract { .. }) => {
                    self.call_failed(id, &f, &format!("{method} with a malformed {}", p.name));
                    return;
                }
                Err(f) => bad.push(format!(
                    "{} = {}: expected ValueFormatEx naming {} (or InvalidValueEx); {}{}",
                    p.name,
                    Self::malformed(p.kind),
                    p.name,
                    f.describe(),
                    f.key().map(|k| format!(" (key {k})")).unwrap_or_default()
                )),
                Ok(v) => bad.push(format!(
                    "{} = {}: expected a refusal, but the call succeeded and returned {}",
                    p.name,
                    Self::malformed(p.kind),
                    brief(&v)
                )),
            }
        }
        if bad.is_empty() {
            self.pass(id, summarise(&layers));
        } else {
            self.fail(id, bad.join("; "));
        }
    }
}

/// "refused by the manager with MissingKeyEx naming each of: a, b".
fn summarise(layers: &[(&str, String)]) -> String {
    let mut by: Vec<(&str, Vec<&str>)> = Vec::new();
    for (p, l) in layers {
        match by.iter_mut().find(|(label, _)| label == l) {
            Some((_, ps)) => ps.push(p),
            None => by.push((l.as_str(), vec![p])),
        }
    }
    by.iter()
        .map(|(l, ps)| format!("refused by {l} naming each of: {}", ps.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}
