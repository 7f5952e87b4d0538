//! Contract enforcement: what every call's outcome is checked against. Each check names the
//! rule of the guides it enforces (see [`Rule`]).

use crate::error::{Rule, Violation};
use crate::process::Raised;
use serde_json::{Map, Value};
use spindle_api::{
    check_update, repair_update, Abilities, ExceptionKind, Method, MethodSpec, PluginException,
    PluginMetadata, RecordKind, ReturnKind, SeType,
};

/// What to do about a violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Fail the call (the default in tests and the conformance kit).
    #[default]
    Strict,
    /// Log, and repair what can safely be repaired.
    Lenient,
}

fn v(rule: Rule, field: Option<&str>, message: String) -> Violation {
    Violation {
        rule,
        field: field.map(String::from),
        message,
    }
}

/// Checks a raised exception; returns the exception to report and any violations.
pub fn check_raised(spec: &MethodSpec, raised: Raised) -> (PluginException, Vec<Violation>) {
    let mut out = Vec::new();
    let Some(kind) = ExceptionKind::parse(&raised.name) else {
        let msg = format!(
            "raised {}, which is not one of the guides' exceptions: {}",
            raised.name, raised.message
        );
        out.push(v(Rule::UnknownException, None, msg.clone()));
        let mut e = PluginException::operation_failed(msg);
        if let Some(tb) = raised.traceback {
            e.message.push_str(&format!("\n{tb}"));
        }
        return (e, out);
    };
    if kind == ExceptionKind::IPluginException {
        out.push(v(
            Rule::BaseException,
            None,
            format!("raised the base class IPluginException: {}", raised.message),
        ));
    }
    if kind.is_validate_only() && spec.method != Method::Validate {
        out.push(v(
            Rule::ValidateOnlyException,
            None,
            format!("{} raised {kind}, which only validate may raise", spec.name),
        ));
    }
    if kind.takes_key() && raised.key.as_deref().is_none_or(str::is_empty) {
        out.push(v(
            Rule::ExceptionWithoutKey,
            None,
            format!("raised {kind} without naming the key"),
        ));
    }
    let e = PluginException {
        kind,
        message: raised.message,
        key: raised.key,
    };
    (e, out)
}

fn shape(kind: RecordKind, field: &str, value: &Value, out: &mut Vec<Violation>) {
    if let Err(e) = kind.check_shape(value) {
        let f = e
            .key()
            .map(|k| format!("{field}.{k}"))
            .unwrap_or_else(|| field.to_string());
        out.push(v(Rule::ReturnShape, Some(&f), e.to_string()));
    }
}

fn list_shape(kind: RecordKind, value: &Value, out: &mut Vec<Violation>) {
    match value.as_array() {
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                shape(kind, &format!("[{i}]"), item, out);
            }
        }
        None => out.push(v(
            Rule::ReturnShape,
            None,
            format!("must return a list of {}, not {}", kind.as_str(), brief(value)),
        )),
    }
}

fn brief(value: &Value) -> String {
    let s = value.to_string();
    if s.len() > 80 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(77).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// The record kind of a record passed to getAsyncProgress.
fn kind_of_record(record: &Value) -> RecordKind {
    if record.get("se_type").is_some() {
        RecordKind::SeRecord
    } else if record.get("fr_type").is_some() {
        RecordKind::FileRecord
    } else if record.get("storage_type").is_some() {
        RecordKind::SsRecord
    } else {
        RecordKind::SeRecord
    }
}

/// Checks what a method returned. `typed` means the value came from the typed Rust trait, so
/// its shape is guaranteed and not checked again. In lenient mode repairs what is safe.
pub fn check_return(
    spec: &MethodSpec,
    metadata: &PluginMetadata,
    args: &Map<String, Value>,
    value: &mut Value,
    typed: bool,
    mode: Mode,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let is_async = value.get("async_progress").is_some_and(|p| !p.is_null()) && value.is_object();

    // Shape.
    if !typed {
        match spec.returns {
            ReturnKind::Nothing => {
                let started_async = spec.may_be_async() && is_async;
                if !value.is_null() && !started_async {
                    out.push(v(
                        Rule::ReturnShape,
                        None,
                        format!("returns nothing, but returned {}", brief(value)),
                    ));
                }
            }
            ReturnKind::SsRecord => shape(RecordKind::SsRecord, "ss_record", value, &mut out),
            ReturnKind::SsOrSeRecord => {
                if args.get("se_record").is_some_and(|s| !s.is_null()) {
                    shape(RecordKind::SeRecord, "se_record", value, &mut out)
                } else {
                    shape(RecordKind::SsRecord, "ss_record", value, &mut out)
                }
            }
            ReturnKind::NameList => {
                if !value.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    out.push(v(
                        Rule::ReturnShape,
                        None,
                        format!("must return a list of strings, not {}", brief(value)),
                    ));
                }
            }
            ReturnKind::AccessGrpList => list_shape(RecordKind::AccessGrp, value, &mut out),
            ReturnKind::AccessGrp => shape(RecordKind::AccessGrp, "access_grp", value, &mut out),
            ReturnKind::SeRecordList => list_shape(RecordKind::SeRecord, value, &mut out),
            ReturnKind::SeRecord => shape(RecordKind::SeRecord, "se_record", value, &mut out),
            ReturnKind::Status => {
                if !value.is_string() {
                    out.push(v(
                        Rule::ReturnShape,
                        None,
                        format!("must return a status string, not {}", brief(value)),
                    ));
                }
            }
            ReturnKind::Limit => {
                if value.as_i64().is_none_or(|n| n < -1) {
                    out.push(v(
                        Rule::ReturnShape,
                        None,
                        format!("must return a count or -1 (unlimited), not {}", brief(value)),
                    ));
                }
            }
            ReturnKind::Boolean => {
                if !value.is_boolean() {
                    out.push(v(
                        Rule::ReturnShape,
                        None,
                        format!("must return True or False, not {}", brief(value)),
                    ));
                }
            }
            ReturnKind::Abilities => {
                if let Err(e) = Abilities::from_value(value) {
                    out.push(v(Rule::Capabilities, e.key(), e.to_string()));
                }
            }
            ReturnKind::QosList => list_shape(RecordKind::QosVals, value, &mut out),
            ReturnKind::SameRecord => {
                let given = args.get("some_record").unwrap_or(&Value::Null);
                shape(kind_of_record(given), "some_record", value, &mut out);
            }
        }
        if !out.is_empty() {
            // Further checks would only repeat the same mistake in other words.
            return out;
        }
    }

    // page83_id where the guide requires it; no snapshots from list.
    if spec.page83_required {
        let missing = |r: &Value| {
            r.get("page83_id")
                .is_none_or(|p| p.as_str().is_none_or(str::is_empty))
        };
        match &*value {
            Value::Array(items) => {
                for (i, r) in items.iter().enumerate() {
                    if missing(r) {
                        out.push(v(
                            Rule::Page83Required,
                            Some(&format!("[{i}].page83_id")),
                            format!("{} returned an se_record without page83_id", spec.name),
                        ));
                    }
                }
            }
            // An asynchronous create/clone reports page83_id when it completes.
            r if !is_async && missing(r) => out.push(v(
                Rule::Page83Required,
                Some("page83_id"),
                format!("{} returned an se_record without page83_id", spec.name),
            )),
            _ => {}
        }
    }
    if spec.method == Method::List {
        if let Value::Array(items) = value {
            let snap = SeType::Snap.as_str();
            let before_violations = out.len();
            for (i, r) in items.iter().enumerate() {
                if r.get("se_type").and_then(Value::as_str) == Some(snap) {
                    out.push(v(
                        Rule::SnapshotInList,
                        Some(&format!("[{i}].se_type")),
                        "list returned a snapshot (SnapType)".into(),
                    ));
                }
            }
            if mode == Mode::Lenient && out.len() > before_violations {
                items.retain(|r| r.get("se_type").and_then(Value::as_str) != Some(snap));
            }
        }
    }

    // Asynchronous progress.
    if let Some(p) = value.get("async_progress") {
        if !p.is_null() && !p.as_i64().is_some_and(|n| (-1..=100).contains(&n)) {
            out.push(v(
                Rule::AsyncProgressRange,
                Some("async_progress"),
                format!("async_progress is {}, not -1, 0..100 or None", brief(p)),
            ));
        }
    }
    if is_async && spec.method != Method::GetAsyncProgress {
        if !spec.may_be_async() {
            out.push(v(
                Rule::AsyncWhenSync,
                Some("async_progress"),
                format!(
                    "{} cannot be asynchronous, but returned async_progress",
                    spec.name
                ),
            ));
        } else if let Some(flag) = spec.sync_flag() {
            if metadata.plugin_ability.flag(flag).is_yes() {
                out.push(v(
                    Rule::AsyncWhenSync,
                    Some("async_progress"),
                    format!(
                        "plugin_ability declares {} = YES, but {} returned async_progress",
                        flag.as_str(),
                        spec.name
                    ),
                ));
            }
        }
    }

    // "Allow update".
    let base = match spec.method {
        Method::GetInfo => Some(if args.get("se_record").is_some_and(|s| !s.is_null()) {
            ("se_record", RecordKind::SeRecord)
        } else {
            ("ss_record", RecordKind::SsRecord)
        }),
        Method::GetAsyncProgress => {
            let given = args.get("some_record").unwrap_or(&Value::Null);
            Some(("some_record", kind_of_record(given)))
        }
        Method::Discover => Some(("ss_record", RecordKind::SsRecord)),
        _ => spec.update_base.map(|b| (b, RecordKind::SeRecord)),
    };
    if let Some((param, kind)) = base {
        match (args.get(param), value) {
            (Some(Value::Array(given)), Value::Array(returned)) => {
                for (i, (g, r)) in given.iter().zip(returned.iter_mut()).enumerate() {
                    update_check(kind, &format!("{param}[{i}]"), g, r, mode, &mut out);
                }
            }
            (Some(g @ Value::Object(_)), r @ Value::Object(_)) => {
                update_check(kind, param, g, r, mode, &mut out)
            }
            _ => {}
        }
    }
    out
}

fn update_check(
    kind: RecordKind,
    param: &str,
    given: &Value,
    returned: &mut Value,
    mode: Mode,
    out: &mut Vec<Violation>,
) {
    let (Some(g), Some(r)) = (given.as_object(), returned.as_object_mut()) else {
        return;
    };
    for bad in check_update(kind, g, r) {
        out.push(v(
            Rule::UpdateRules,
            Some(&format!("{param}.{}", bad.key)),
            bad.to_string(),
        ));
    }
    if mode == Mode::Lenient {
        repair_update(kind, g, r);
    }
}
