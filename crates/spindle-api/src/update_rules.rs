//! Checks a record a plug-in returned against the record it was given, by the "Allow update"
//! column of the guides (kept as data in each record's `FIELDS`).

use crate::records::{RecordKind, UpdateRule};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// How a field was wrongly changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The value differs from the one given.
    Changed,
    /// The key was given but is missing from the returned record.
    Dropped,
}

/// One breach of an "Allow update" rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateViolation {
    /// The record kind.
    pub record: RecordKind,
    /// The key.
    pub key: &'static str,
    /// The rule breached.
    pub rule: UpdateRule,
    /// Changed or dropped.
    pub change: ChangeKind,
    /// The value given (absent = `None`).
    pub given: Option<Value>,
    /// The value returned (absent = `None`).
    pub returned: Option<Value>,
    /// The key holds a secret: values are never shown.
    pub secret: bool,
}

impl fmt::Display for UpdateViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| match (v, self.secret) {
            (None, _) => "absent".to_string(),
            (Some(_), true) => "(secret)".to_string(),
            (Some(v), false) => crate::ability::short_json(v),
        };
        let rule = match self.rule {
            UpdateRule::No => "may not be changed by a plug-in",
            UpdateRule::OnlyIfEmpty => "may be set by a plug-in only when empty",
            UpdateRule::Yes => "may be changed",
        };
        match self.change {
            ChangeKind::Changed => write!(
                f,
                "{}.{} {rule}, but was changed from {} to {}",
                self.record.as_str(),
                self.key,
                show(&self.given),
                show(&self.returned)
            ),
            ChangeKind::Dropped => write!(
                f,
                "{}.{} {rule}, but was dropped (given {})",
                self.record.as_str(),
                self.key,
                show(&self.given)
            ),
        }
    }
}

/// Empty in the sense of "Only if empty": absent, null, "", [] or {}.
pub fn is_empty_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// Every breach of the update rules of `kind` in `returned`, compared with `given`.
pub fn check_update(
    kind: RecordKind,
    given: &Map<String, Value>,
    returned: &Map<String, Value>,
) -> Vec<UpdateViolation> {
    let mut out = Vec::new();
    for spec in kind.fields() {
        let g = given.get(spec.key);
        let r = returned.get(spec.key);
        let change = match spec.rule {
            UpdateRule::Yes => None,
            UpdateRule::No => match (g, r) {
                (Some(_), None) => Some(ChangeKind::Dropped),
                // Setting a No key to null where it was absent changes nothing a caller sees.
                (None, Some(Value::Null)) | (None, None) => None,
                (g, r) if g == r => None,
                _ => Some(ChangeKind::Changed),
            },
            UpdateRule::OnlyIfEmpty => {
                if is_empty_value(g) {
                    None
                } else if r.is_none() {
                    Some(ChangeKind::Dropped)
                } else if g == r {
                    None
                } else {
                    Some(ChangeKind::Changed)
                }
            }
        };
        if let Some(change) = change {
            out.push(UpdateViolation {
                record: kind,
                key: spec.key,
                rule: spec.rule,
                change,
                given: g.cloned(),
                returned: r.cloned(),
                secret: spec.secret,
            });
        }
    }
    out
}

/// Undoes every breach in `returned` by restoring the given value (lenient mode).
pub fn repair_update(kind: RecordKind, given: &Map<String, Value>, returned: &mut Map<String, Value>) {
    for v in check_update(kind, given, returned) {
        match given.get(v.key) {
            Some(g) => {
                returned.insert(v.key.to_string(), g.clone());
            }
            None => {
                returned.remove(v.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::SeRecord;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn only_if_empty_allows_filling_an_empty_name() {
        let given = obj(json!({"se_type": "LUNType", "name": ""}));
        let returned = obj(json!({"se_type": "LUNType", "name": "lun1"}));
        assert!(check_update(RecordKind::SeRecord, &given, &returned).is_empty());
    }

    #[test]
    fn secrets_never_show_in_messages() {
        let given = obj(json!({"passwd": "hunter2"}));
        let returned = obj(json!({"passwd": "other"}));
        let v = check_update(RecordKind::SsRecord, &given, &returned);
        assert_eq!(v.len(), 1);
        let msg = v[0].to_string();
        assert!(!msg.contains("hunter2") && !msg.contains("other"), "{msg}");
    }

    fn value_strategy() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            Just(Some(json!(""))),
            "[a-z]{1,4}".prop_map(|s| Some(json!(s))),
            (0i64..5).prop_map(|n| Some(json!(n))),
        ]
    }

    proptest! {
        /// The checker flags exactly the keys whose rule forbids the change made.
        #[test]
        fn flags_exactly_the_forbidden_changes(
            pairs in proptest::collection::vec((value_strategy(), value_strategy()), SeRecord::FIELDS.len())
        ) {
            let mut given = Map::new();
            let mut returned = Map::new();
            for (spec, (g, r)) in SeRecord::FIELDS.iter().zip(&pairs) {
                if let Some(g) = g { given.insert(spec.key.into(), g.clone()); }
                if let Some(r) = r { returned.insert(spec.key.into(), r.clone()); }
            }
            let flagged: Vec<&str> = check_update(RecordKind::SeRecord, &given, &returned)
                .iter().map(|v| v.key).collect();
            for (spec, (g, r)) in SeRecord::FIELDS.iter().zip(&pairs) {
                let forbidden = match spec.rule {
                    UpdateRule::Yes => false,
                    UpdateRule::No => !(g == r || (g.is_none() && r == &Some(Value::Null))),
                    UpdateRule::OnlyIfEmpty => !is_empty_value(g.as_ref()) && g != r,
                };
                prop_assert_eq!(flagged.contains(&spec.key), forbidden, "key {}", spec.key);
            }
        }

        /// Repair leaves nothing to flag and touches only flagged keys.
        #[test]
        fn repair_leaves_no_violation(
            pairs in proptest::collection::vec((value_strategy(), value_strategy()), SeRecord::FIELDS.len())
        ) {
            let mut given = Map::new();
            let mut returned = Map::new();
            for (spec, (g, r)) in SeRecord::FIELDS.iter().zip(&pairs) {
                if let Some(g) = g { given.insert(spec.key.into(), g.clone()); }
                if let Some(r) = r { returned.insert(spec.key.into(), r.clone()); }
            }
            let before = check_update(RecordKind::SeRecord, &given, &returned);
            let mut repaired = returned.clone();
            repair_update(RecordKind::SeRecord, &given, &mut repaired);
            prop_assert!(check_update(RecordKind::SeRecord, &given, &repaired).is_empty());
            for (k, v) in &returned {
                if !before.iter().any(|b| b.key == k) {
                    prop_assert_eq!(repaired.get(k), Some(v));
                }
            }
        }
    }
}
