//! Turns a call by name with keyword arguments (the plug-in protocol's form) into a call of the
//! typed trait, and its result back into JSON. The parameter list comes from the method table.

use crate::enums::SeType;
use crate::exception::{PluginException, PluginResult};
use crate::methods::{Method, MethodSpec, ParamDefault, ParamKind};
use crate::plugin::{Host, Info, StorageArrayPlugin};
use crate::records::{AccessGrp, RecordError, SeRecord, SsRecord};
use serde::Serialize;
use serde_json::{Map, Value};

/// Keyword arguments of one call, checked against the method's row of the table.
#[derive(Debug)]
pub struct Args<'a> {
    spec: &'static MethodSpec,
    map: &'a Map<String, Value>,
}

fn record_error(param: &str, e: RecordError) -> PluginException {
    match e.key() {
        Some(k) => PluginException::value_format(k, format!("parameter {param}: {e}")),
        None => PluginException::value_format(param, format!("parameter {param}: {e}")),
    }
}

impl<'a> Args<'a> {
    /// Checks that every required parameter is present and no unknown one is.
    pub fn new(method: Method, map: &'a Map<String, Value>) -> PluginResult<Self> {
        let spec = method.spec();
        if let Some(k) = map.keys().find(|k| spec.param(k).is_none()) {
            let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            return Err(PluginException::value_format(
                k.as_str(),
                format!(
                    "{} takes no parameter '{k}'; its parameters are {}",
                    spec.name,
                    known.join(", ")
                ),
            ));
        }
        for p in spec.params.iter().filter(|p| !p.optional()) {
            if map.get(p.name).is_none_or(Value::is_null) {
                return Err(PluginException::missing_key(
                    p.name,
                    format!("{} requires the parameter '{}'", spec.name, p.name),
                ));
            }
        }
        Ok(Args { spec, map })
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn wrong(&self, name: &str, v: &Value, what: &str) -> PluginException {
        PluginException::value_format(
            name,
            format!(
                "{} parameter '{name}' must be {what}, not {}",
                self.spec.name,
                crate::ability::short_json(v)
            ),
        )
    }

    /// The ss_record.
    pub fn ss(&self) -> PluginResult<SsRecord> {
        let v = self.get("ss_record").unwrap_or(&Value::Null);
        SsRecord::from_value(v).map_err(|e| record_error("ss_record", e))
    }

    /// An se_record parameter, `None` when optional and absent.
    pub fn se(&self, name: &str) -> PluginResult<Option<SeRecord>> {
        self.get(name)
            .map(|v| SeRecord::from_value(v).map_err(|e| record_error(name, e)))
            .transpose()
    }

    /// A required se_record parameter.
    pub fn se_req(&self, name: &str) -> PluginResult<SeRecord> {
        self.se(name)?
            .ok_or_else(|| PluginException::missing_key(name, format!("{name} is required")))
    }

    /// A list of se_records.
    pub fn se_list(&self, name: &str) -> PluginResult<Vec<SeRecord>> {
        let v = self.get(name).unwrap_or(&Value::Null);
        let arr = v
            .as_array()
            .ok_or_else(|| self.wrong(name, v, "a list of se_records"))?;
        arr.iter()
            .map(|e| SeRecord::from_value(e).map_err(|err| record_error(name, err)))
            .collect()
    }

    /// A list of access_grp dicts.
    pub fn access_grps(&self, name: &str) -> PluginResult<Vec<AccessGrp>> {
        let v = self.get(name).unwrap_or(&Value::Null);
        let arr = v
            .as_array()
            .ok_or_else(|| self.wrong(name, v, "a list of access_grp dicts"))?;
        arr.iter()
            .map(|e| AccessGrp::from_value(e).map_err(|err| record_error(name, err)))
            .collect()
    }

    /// A string.
    pub fn string(&self, name: &str) -> PluginResult<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(name, v, "a string")),
        }
    }

    /// A required string.
    pub fn string_req(&self, name: &str) -> PluginResult<String> {
        self.string(name)?
            .ok_or_else(|| PluginException::missing_key(name, format!("{name} is required")))
    }

    /// A list of strings.
    pub fn strings(&self, name: &str) -> PluginResult<Vec<String>> {
        let v = self.get(name).unwrap_or(&Value::Null);
        v.as_array()
            .and_then(|a| {
                a.iter()
                    .map(|e| e.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| self.wrong(name, v, "a list of strings"))
    }

    /// A boolean, with its default.
    pub fn boolean(&self, name: &str) -> PluginResult<bool> {
        match self.get(name) {
            None => Ok(matches!(
                self.spec.param(name).and_then(|p| p.default),
                Some(ParamDefault::True)
            )),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.wrong(name, v, "True or False")),
        }
    }

    /// An integer.
    pub fn integer(&self, name: &str) -> PluginResult<i64> {
        let v = self.get(name).unwrap_or(&Value::Null);
        v.as_i64().ok_or_else(|| self.wrong(name, v, "an integer"))
    }

    /// A list of se_type values, with its default.
    pub fn se_types(&self, name: &str) -> PluginResult<Vec<SeType>> {
        match self.get(name) {
            None => Ok(vec![SeType::Lun, SeType::SnapClone]),
            Some(v) => {
                let items: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    single @ Value::String(_) => vec![single],
                    _ => return Err(self.wrong(name, v, "a list of se_type values")),
                };
                items
                    .into_iter()
                    .map(|e| {
                        e.as_str().and_then(SeType::parse).ok_or_else(|| {
                            self.wrong(name, e, "one of LUNType, GhostLUNType, SnapType, SnapCloneType")
                        })
                    })
                    .collect()
            }
        }
    }

    /// Any record (a dictionary).
    pub fn record(&self, name: &str) -> PluginResult<Value> {
        let v = self.get(name).unwrap_or(&Value::Null);
        if v.is_object() {
            Ok(v.clone())
        } else {
            Err(self.wrong(name, v, "a record (a dictionary)"))
        }
    }
}

fn to_json<T: Serialize>(v: T) -> PluginResult<Value> {
    serde_json::to_value(v)
        .map_err(|e| PluginException::operation_failed(format!("result not encodable: {e}")))
}

/// Decodes `args` for `method`, calls `plugin`, and encodes the result as the guides' dict form.
pub fn dispatch(
    plugin: &dyn StorageArrayPlugin,
    host: &dyn Host,
    method: Method,
    args: &Map<String, Value>,
) -> PluginResult<Value> {
    let a = Args::new(method, args)?;
    let ss = a.ss()?;
    let h = host;
    let p = plugin;
    // Each arm reads the parameters its row of the table names.
    match method {
        Method::Validate => p.validate(h, &ss).map(|()| Value::Null),
        Method::GetCapabilities => to_json(p.get_capabilities(h, &ss)?),
        Method::GetInfo => match p.get_info(h, &ss, a.se("se_record")?.as_ref())? {
            Info::Server(r) => to_json(r),
            Info::Element(r) => to_json(r),
        },
        Method::GetStorageNames => to_json(p.get_storage_names(h, &ss)?),
        Method::GetAccessGroups => to_json(p.get_access_groups(h, &ss, a.se("se_record")?.as_ref())?),
        Method::CreateAccessGroups => {
            to_json(p.create_access_groups(h, &ss, &a.access_grps("access_grps")?)?)
        }
        Method::RemoveAccessGroups => {
            to_json(p.remove_access_groups(h, &ss, &a.access_grps("access_grps")?)?)
        }
        Method::RenameAccessGroup => to_json(p.rename_access_group(
            h,
            &ss,
            &a.string_req("access_grp_name")?,
            &a.string_req("new_access_grp_name")?,
        )?),
        Method::AddToAccessGroup => to_json(p.add_to_access_group(
            h,
            &ss,
            &a.string_req("access_grp_name")?,
            &a.strings("grp_entries")?,
        )?),
        Method::RemoveFromAccessGroup => to_json(p.remove_from_access_group(
            h,
            &ss,
            &a.string_req("access_grp_name")?,
            &a.strings("grp_entries")?,
        )?),
        Method::Discover => to_json(p.discover(h, &ss)?),
        Method::Start => p.start(h, &ss).map(|()| Value::Null),
        Method::Stop => p.stop(h, &ss).map(|()| Value::Null),
        Method::Refresh => p.refresh(h, &ss).map(|()| Value::Null),
        Method::List => to_json(p.list(h, &ss, &a.se_types("se_type")?)?),
        Method::UpdateSeRecords => {
            to_json(p.update_se_records(h, &ss, &a.se_list("se_records")?, a.boolean("append_allowed")?)?)
        }
        Method::GetStatus => to_json(p.get_status(h, &ss, a.se("se_record")?.as_ref())?),
        Method::Online => p.online(h, &ss, &a.se_req("se_record")?).map(|()| Value::Null),
        Method::Offline => p.offline(h, &ss, &a.se_req("se_record")?).map(|()| Value::Null),
        Method::Create => to_json(p.create(
            h,
            &ss,
            &a.se_req("se_record")?,
            a.boolean("thin_provision")?,
            a.string("qos")?.as_deref(),
        )?),
        Method::StartPresent => {
            to_json(p.start_present(h, &ss, &a.se_req("se_record")?, &a.strings("access_grp_names")?)?)
        }
        Method::StopPresent => {
            to_json(p.stop_present(h, &ss, &a.se_req("se_record")?, &a.strings("access_grp_names")?)?)
        }
        Method::Resize => to_json(p.resize(h, &ss, &a.se_req("se_record")?, a.integer("new_size")?)?),
        Method::Remove => p.remove(h, &ss, &a.se_req("se_record")?).map(|()| Value::Null),
        Method::GetCloneLimits => to_json(p.get_clone_limits(h, &ss, a.se("se_record")?.as_ref())?),
        Method::IsCloneable => to_json(p.is_cloneable(h, &ss, &a.se_req("se_record")?)?),
        Method::Clone => to_json(p.clone_element(
            h,
            &ss,
            &a.se_req("se_record")?,
            a.se("dest_se_record")?.as_ref(),
            a.string("qos")?.as_deref(),
        )?),
        Method::IsSplittable => to_json(p.is_splittable(h, &ss, &a.se_req("se_record")?)?),
        Method::SplitClone => to_json(p.split_clone(h, &ss, &a.se_req("se_record")?)?),
        Method::CloneFromSnap => to_json(p.clone_from_snap(
            h,
            &ss,
            &a.se_req("se_record")?,
            &a.se_req("snap_se_record")?,
            a.se("dest_se_record")?.as_ref(),
            a.string("qos")?.as_deref(),
        )?),
        Method::GetCurrentClones => to_json(p.get_current_clones(h, &ss, a.se("se_record")?.as_ref())?),
        Method::GetSnapLimits => to_json(p.get_snap_limits(h, &ss, a.se("se_record")?.as_ref())?),
        Method::IsSnapable => to_json(p.is_snapable(h, &ss, a.se("se_record")?.as_ref())?),
        Method::CreateSnap => {
            to_json(p.create_snap(h, &ss, &a.se_req("se_record")?, a.se("snap_se_record")?.as_ref())?)
        }
        Method::CreateMultiSnap => to_json(p.create_multi_snap(
            h,
            &ss,
            &a.se_list("se_records")?,
            a.se("snap_se_record")?.as_ref(),
        )?),
        Method::IsRestorable => {
            to_json(p.is_restorable(h, &ss, &a.se_req("snap_se_record")?, a.se("se_record")?.as_ref())?)
        }
        Method::SnapRestore => p
            .snap_restore(h, &ss, &a.se_req("snap_se_record")?, a.se("se_record")?.as_ref())
            .map(|()| Value::Null),
        Method::SnapRemove => p
            .snap_remove(h, &ss, &a.se_req("snap_se_record")?)
            .map(|()| Value::Null),
        Method::GetCurrentSnaps => to_json(p.get_current_snaps(h, &ss, a.se("se_record")?.as_ref())?),
        Method::GetQosList => to_json(p.get_qos_list(h, &ss)?),
        Method::SetQos => p
            .set_qos(h, &ss, &a.se_req("se_record")?, &a.string_req("qos")?)
            .map(|()| Value::Null),
        Method::GetAsyncProgress => p.get_async_progress(h, &ss, &a.record("some_record")?),
    }
}

/// Which parameter kinds carry records that must pass the manager's shape checks.
pub fn is_record_param(kind: ParamKind) -> bool {
    matches!(
        kind,
        ParamKind::SsRecord | ParamKind::SeRecord | ParamKind::SeRecordList | ParamKind::AccessGrpList
    )
}
