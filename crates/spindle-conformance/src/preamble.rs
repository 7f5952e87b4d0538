//! The first steps: the class variables, validate, getCapabilities, and what the array says
//! about itself (getInfo, getStatus, getStorageNames, getQoSList).

use crate::kit::{brief, Failure, Kit};
use serde_json::Value;
use spindle_api::{
    Abilities, ExceptionKind, Flag, FlagKey, MaxEntries, Method, OpAbility, OpKey, PluginVersion,
    Requirement, StorageType, METHODS,
};
use std::collections::HashSet;

pub(crate) const OPS: [OpKey; 5] = [
    OpKey::Snapshot,
    OpKey::Clone,
    OpKey::Resize,
    OpKey::SplitClone,
    OpKey::SnapClone,
];

fn op_name(a: OpAbility) -> &'static str {
    match a {
        OpAbility::Online => "ONLINE",
        OpAbility::Offline => "OFFLINE",
        OpAbility::Unsupported => "UNSUPPORTED",
    }
}

pub(crate) fn ability_name(a: OpAbility) -> &'static str {
    op_name(a)
}

fn flag_name(f: Flag) -> &'static str {
    if f.is_yes() {
        "YES"
    } else {
        "NO"
    }
}

fn rank(a: OpAbility) -> u8 {
    match a {
        OpAbility::Unsupported => 0,
        OpAbility::Offline => 1,
        OpAbility::Online => 2,
    }
}

fn max_name(m: MaxEntries) -> String {
    m.as_i64().to_string()
}

/// Where an array's abilities go beyond what the class declares.
pub(crate) fn disagreements(declared: &Abilities, array: &Abilities) -> Vec<String> {
    let mut out = Vec::new();
    for op in OPS {
        let (d, a) = (declared.op(op), array.op(op));
        if rank(a) > rank(d) {
            out.push(format!(
                "{} is {} for the array but {} in plugin_ability",
                op.as_str(),
                op_name(a),
                op_name(d)
            ));
        }
        let sync = op.sync_key();
        if declared.flag(sync).is_yes() && !array.flag(sync).is_yes() && a.is_supported() {
            out.push(format!(
                "plugin_ability promises {} = YES, but the array reports NO",
                sync.as_str()
            ));
        }
    }
    for flag in [
        FlagKey::CustomSnapName,
        FlagKey::CustomCloneName,
        FlagKey::SplitcloneWhileOpen,
        FlagKey::AccessControl,
    ] {
        if array.flag(flag).is_yes() && !declared.flag(flag).is_yes() {
            out.push(format!(
                "{} is YES for the array but NO in plugin_ability",
                flag.as_str()
            ));
        }
    }
    match (declared.max_access_entries, array.max_access_entries) {
        (MaxEntries::Limited(d), MaxEntries::Unlimited) => out.push(format!(
            "max_access_entries is -1 (unlimited) for the array but {d} in plugin_ability"
        )),
        (MaxEntries::Limited(d), MaxEntries::Limited(a)) if a > d => out.push(format!(
            "max_access_entries is {a} for the array but {d} in plugin_ability"
        )),
        _ => {}
    }
    out
}

fn summary(a: &Abilities) -> String {
    let ops: Vec<String> = OPS
        .iter()
        .map(|&op| format!("{} {}", op.as_str(), op_name(a.op(op))))
        .collect();
    format!(
        "{}; access_control {}; max_access_entries {}",
        ops.join(", "),
        flag_name(a.access_control),
        max_name(a.max_access_entries)
    )
}

impl Kit<'_> {
    /// The class variables, as discovery recorded them.
    pub(crate) fn declarations(&mut self) {
        let md = self.plugin.metadata.clone();
        let mut bad = Vec::new();
        for (k, v) in [
            ("plugin_name", &md.plugin_name),
            ("vendor_name", &md.vendor_name),
            ("plugin_desc", &md.plugin_desc),
        ] {
            if v.trim().is_empty() {
                bad.push(format!("{k} is empty"));
            }
        }
        for (k, v) in [
            ("ss_extra_info_help", &md.ss_extra_info_help),
            ("se_extra_info_help", &md.se_extra_info_help),
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                bad.push(format!("{k} is set but blank"));
            }
        }
        self.verdict(
            "declarations.class_variables",
            bad.is_empty(),
            format!(
                "plugin_name {:?}, vendor_name {:?}, plugin_desc set, extra_info help: {}",
                md.plugin_name,
                md.vendor_name,
                match (&md.ss_extra_info_help, &md.se_extra_info_help) {
                    (Some(_), Some(_)) => "ss and se",
                    (Some(_), None) => "ss only",
                    (None, Some(_)) => "se only",
                    (None, None) => "none",
                }
            ),
            bad.join("; "),
        );
        let v = md.plugin_version.to_string();
        let parsed = PluginVersion::parse(&v);
        self.verdict(
            "declarations.plugin_version",
            parsed.as_ref().is_ok_and(|p| *p == md.plugin_version),
            format!("{v} is Major.Minor.Patch-Release"),
            format!("plugin_version {v:?} is not of the form Major.Minor.Patch-Release"),
        );
        let mut seen = HashSet::new();
        let repeated: Vec<&str> = md
            .storage_types
            .iter()
            .filter(|t| !seen.insert(**t))
            .map(|t| t.as_str())
            .collect();
        let types: Vec<&str> = md.storage_types.iter().map(|t| t.as_str()).collect();
        self.verdict(
            "declarations.storage_types",
            !md.storage_types.is_empty() && repeated.is_empty(),
            format!("storage_types = [{}]", types.join(", ")),
            if md.storage_types.is_empty() {
                "storage_types is empty".to_string()
            } else {
                format!("storage_types names {} more than once", repeated.join(", "))
            },
        );
        let legal = Abilities::from_value(&md.plugin_ability.to_value());
        match legal {
            Ok(_) => self.pass("declarations.plugin_ability", summary(&md.plugin_ability)),
            Err(e) => self.fail("declarations.plugin_ability", e.to_string()),
        }
        let any_async = md.plugin_ability.any_async();
        let missing: Vec<&str> = METHODS
            .iter()
            .filter(|m| match m.requirement {
                Requirement::Required => true,
                Requirement::RequiredIfAsync => any_async,
                _ => false,
            })
            .filter(|m| !self.plugin.implements(m.method))
            .map(|m| m.name)
            .collect();
        let required = METHODS
            .iter()
            .filter(|m| m.requirement == Requirement::Required)
            .count();
        self.verdict(
            "declarations.required_methods",
            missing.is_empty(),
            format!(
                "all {required} required methods are implemented{}",
                if any_async {
                    ", and getAsyncProgress (some operation may be asynchronous)"
                } else {
                    ""
                }
            ),
            format!("required methods not implemented: {}", missing.join(", ")),
        );
    }

    /// validate; false when the record is refused (nothing else can run then).
    pub(crate) async fn validate(&mut self) -> bool {
        let r = self.call(Method::Validate, vec![]).await;
        let ok = match r {
            Ok(_) => {
                self.pass("validate.accepts_record", "validate accepted the kit's ss_record");
                true
            }
            Err(f) => {
                self.call_failed(
                    "validate.accepts_record",
                    &f,
                    "validate of the ss_record given with --ss-record",
                );
                false
            }
        };
        let served = &self.plugin.metadata.storage_types;
        let other = match self.storage_type {
            Some(StorageType::San) => StorageType::Iscsi,
            _ => StorageType::San,
        };
        if served.contains(&other) {
            self.skip(
                "validate.refuses_unserved_storage_type",
                "the plug-in serves both SANStorage and iSCSIStorage",
            );
        } else {
            let mut ss = self.ss.clone();
            ss["storage_type"] = Value::String(other.as_str().to_string());
            let mut args = self.args(vec![]);
            args.insert("ss_record".into(), ss);
            let (r, _) = self.call_raw(Method::Validate, args, None).await;
            self.expect_refused(
                "validate.refuses_unserved_storage_type",
                r,
                &[],
                &format!("validate of a record with storage_type {other}"),
            );
        }
        ok
    }

    /// getCapabilities: legal, and no more than the class declares. Sets `caps`.
    pub(crate) async fn capabilities(&mut self) {
        let declared = self.plugin.metadata.plugin_ability.clone();
        match self.call(Method::GetCapabilities, vec![]).await {
            Ok(v) => match Abilities::from_value(&v) {
                Ok(a) => {
                    self.pass("getCapabilities.legal", summary(&a));
                    let d = disagreements(&declared, &a);
                    self.verdict(
                        "getCapabilities.agrees_with_plugin_ability",
                        d.is_empty(),
                        "the array's abilities are within plugin_ability",
                        d.join("; "),
                    );
                    self.caps = a;
                }
                Err(e) => {
                    self.fail("getCapabilities.legal", format!("{e} (returned {})", brief(&v)));
                    self.skip(
                        "getCapabilities.agrees_with_plugin_ability",
                        "getCapabilities returned no legal ability dict; the kit follows plugin_ability",
                    );
                }
            },
            Err(f) => {
                self.call_failed("getCapabilities.legal", &f, "getCapabilities");
                self.skip(
                    "getCapabilities.agrees_with_plugin_ability",
                    "getCapabilities returned nothing; the kit follows plugin_ability",
                );
            }
        }
    }

    /// getInfo, getStatus, getStorageNames and getQoSList about the array.
    pub(crate) async fn array_info(&mut self) {
        match self.call(Method::GetInfo, vec![]).await {
            Ok(v) => {
                let mut missing = Vec::new();
                for k in ["status", "storage_desc"] {
                    if v.get(k)
                        .and_then(Value::as_str)
                        .is_none_or(|s| s.trim().is_empty())
                    {
                        missing.push(k);
                    }
                }
                self.verdict(
                    "getInfo.ss_record",
                    missing.is_empty(),
                    format!(
                        "status {}, storage_desc {}",
                        brief(v.get("status").unwrap_or(&Value::Null)),
                        brief(v.get("storage_desc").unwrap_or(&Value::Null))
                    ),
                    format!("getInfo returned the ss_record without {}", missing.join(" and ")),
                );
                self.vol_groups = v.get("vol_groups").and_then(Value::as_array).map(|a| {
                    a.iter()
                        .filter_map(|g| g.get("vol_name").and_then(Value::as_str).map(str::to_string))
                        .collect()
                });
            }
            Err(f) => self.call_failed("getInfo.ss_record", &f, "getInfo of the array"),
        }
        match self.call(Method::GetStatus, vec![]).await {
            Ok(Value::String(s)) if !s.trim().is_empty() => {
                self.pass("getStatus.status_text", format!("the array's status is {s:?}"))
            }
            Ok(v) => self.fail(
                "getStatus.status_text",
                format!("getStatus of the array returned {}", brief(&v)),
            ),
            Err(f) => self.call_failed("getStatus.status_text", &f, "getStatus of the array"),
        }
        match self.call(Method::GetStorageNames, vec![]).await {
            Ok(v) => {
                let n = v.as_array().map_or(0, Vec::len);
                if self.caps.require_storage_name.is_yes() && n == 0 {
                    self.fail(
                        "getStorageNames.list",
                        "require_storage_name is YES, but getStorageNames offers no name",
                    );
                } else {
                    self.pass("getStorageNames.list", format!("{n} storage name(s)"));
                }
            }
            Err(f) => self.call_failed("getStorageNames.list", &f, "getStorageNames"),
        }
        match self.call(Method::GetQosList, vec![]).await {
            Ok(v) => {
                let items = v.as_array().cloned().unwrap_or_default();
                let mut values = Vec::new();
                let mut bad = Vec::new();
                for q in &items {
                    let val = q.get("value").and_then(Value::as_str).unwrap_or("");
                    if values.iter().any(|x: &String| x == val) {
                        bad.push(format!("value {val:?} is offered twice"));
                    }
                    if q.get("priority").and_then(Value::as_i64).is_some_and(|p| p < 0) {
                        bad.push(format!("value {val:?} has a negative priority"));
                    }
                    values.push(val.to_string());
                }
                self.verdict(
                    "getQoSList.values",
                    bad.is_empty(),
                    if values.is_empty() {
                        "the array offers no QoS values".to_string()
                    } else {
                        format!("QoS values: {}", values.join(", "))
                    },
                    bad.join("; "),
                );
                self.qos_values = Some(values);
            }
            Err(f) => {
                if f.kind() == Some(ExceptionKind::NoSuchOperationEx) {
                    self.pass(
                        "getQoSList.values",
                        "raised NoSuchOperationEx: the array has no QoS",
                    );
                    self.qos_values = Some(Vec::new());
                } else {
                    self.call_failed("getQoSList.values", &f, "getQoSList");
                }
            }
        }
    }

    /// Whether `f` is the guides' way of saying an operation is not available.
    pub(crate) fn is_no_such_operation(f: &Failure) -> bool {
        f.kind() == Some(ExceptionKind::NoSuchOperationEx)
    }
}
