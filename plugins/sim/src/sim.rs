//! The plug-in: every method of the Storage Array API over the simulated array.

use crate::config::{Config, SS_EXTRA_INFO_HELP};
use crate::names::{check_name, normalize_entry, shown};
use crate::state::{
    Element, Group, Origin, SnapMember, SplitJob, State, DEFAULT_QOS, EXTENT, MAX_ACCESS_ENTRIES,
    MAX_CLONES_PER_ELEMENT, MAX_SNAPS_PER_ELEMENT, MAX_SPLIT_MS, QOS_LEVELS, SPLIT_HANDLE_PREFIX,
    STATUS_ONLINE,
};
use crate::store::{with_array, Phase};
use crate::CLASS_NAME;
use serde_json::Value;
use spindle_api::{
    Abilities, AccessGrp, ExceptionKind, Field, Flag, Host, Info, LogLevel, MaxEntries, Method, OpAbility,
    PluginException, PluginMetadata, PluginResult, PluginVersion, QosVals, SeRecord, SeType, SsRecord,
    StorageArrayPlugin, StorageType,
};

/// The simulated storage array plug-in. Holds nothing: the array lives in its state file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimArray;

const PLUGIN_DESC: &str = "Simulated storage array built into spindle: LUNs, snapshots, clones, \
splits, resizing, access groups and QoS over an array kept in a JSON state file. It stores no \
data and presents no real devices; use it for development, tests and demonstrations.";

const GIB: u64 = 1 << 30;

impl SimArray {
    /// What the simulated array can do (also what `getCapabilities` returns).
    pub fn abilities() -> Abilities {
        Abilities {
            snapshot: OpAbility::Online,
            custom_snap_name: Flag::Yes,
            snap_is_sync: Flag::Yes,
            clone: OpAbility::Online,
            custom_clone_name: Flag::Yes,
            clone_is_sync: Flag::Yes,
            resize: OpAbility::Online,
            resize_is_sync: Flag::Yes,
            splitclone: OpAbility::Online,
            splitclone_is_sync: Flag::No,
            splitclone_while_open: Flag::Yes,
            snapclone: OpAbility::Online,
            snapclone_is_sync: Flag::Yes,
            require_storage_name: Flag::No,
            access_control: Flag::Yes,
            max_access_entries: MaxEntries::Limited(MAX_ACCESS_ENTRIES),
        }
    }

    /// The class variables.
    pub fn plugin_metadata() -> PluginMetadata {
        PluginMetadata {
            plugin_name: "spindle simulated storage array".into(),
            vendor_name: "spindle".into(),
            // PLUGIN_VERSION, built without a fallible parse.
            plugin_version: PluginVersion {
                major: 0,
                minor: 1,
                patch: 0,
                release: 1,
            },
            plugin_desc: PLUGIN_DESC.into(),
            ss_extra_info_help: Some(SS_EXTRA_INFO_HELP.into()),
            se_extra_info_help: None,
            storage_types: vec![StorageType::San, StorageType::Iscsi],
            plugin_ability: SimArray::abilities(),
        }
    }
}

/// One call's context: the host, the ss_record and what its extra_info says.
struct Call<'a> {
    host: &'a dyn Host,
    ss: &'a SsRecord,
    cfg: Config,
    storage_type: StorageType,
}

impl<'a> Call<'a> {
    fn new(host: &'a dyn Host, ss: &'a SsRecord) -> PluginResult<Self> {
        let storage_type = match ss.storage_type.value() {
            None => {
                return Err(PluginException::missing_key(
                    "storage_type",
                    "ss_record has no storage_type",
                ))
            }
            Some(s) => StorageType::parse(s).ok_or_else(|| {
                PluginException::value_format(
                    "storage_type",
                    format!("storage_type {} is neither SANStorage nor iSCSIStorage", shown(s)),
                )
            })?,
        };
        let cfg = Config::parse(ss.extra_info.value().map(String::as_str)).map_err(|e| {
            if e.missing {
                PluginException::missing_key("extra_info", e.message)
            } else {
                PluginException::value_format("extra_info", e.message)
            }
        })?;
        Ok(Call {
            host,
            ss,
            cfg,
            storage_type,
        })
    }

    fn run<R>(&self, f: impl FnOnce(&mut State, u64) -> PluginResult<R>) -> PluginResult<R> {
        with_array(&self.cfg, self.storage_type, Phase::Call, f)
    }

    fn ss_uuid(&self) -> &str {
        self.ss.uuid_str()
    }

    fn log(&self, message: String) {
        self.host.log(LogLevel::Info, &message);
    }

    fn iscsi_only(&self, method: Method) -> PluginResult<()> {
        if self.storage_type == StorageType::Iscsi {
            Ok(())
        } else {
            Err(PluginException::no_such_operation(format!(
                "{method} applies to iSCSIStorage arrays only"
            )))
        }
    }
}

fn busy(message: String) -> PluginException {
    PluginException::busy(message)
}

fn invalid(message: String) -> PluginException {
    PluginException::invalid_value(message)
}

/// Rounds a requested size up to whole extents, refusing sizes that are not positive.
fn rounded_size(key: &str, size: i64) -> PluginResult<i64> {
    if size <= 0 {
        return Err(invalid(format!("{key} {size} is not a positive number of bytes")));
    }
    size.checked_add(EXTENT - 1)
        .map(|s| s / EXTENT * EXTENT)
        .ok_or_else(|| invalid(format!("{key} {size} is too large")))
}

/// Checks a QoS value against the array's levels.
fn checked_qos(key: &str, qos: &str) -> PluginResult<String> {
    if QOS_LEVELS.iter().any(|(_, v, _)| *v == qos) {
        Ok(qos.to_string())
    } else {
        let values: Vec<&str> = QOS_LEVELS.iter().map(|(_, v, _)| *v).collect();
        Err(invalid(format!(
            "{key} {} is not one of the simulated array's QoS values ({})",
            shown(qos),
            values.join(", ")
        )))
    }
}

/// The QoS for a new element: the parameter, else the record's `qos`, else `fallback`.
fn qos_for(param: Option<&str>, rec: Option<&SeRecord>, fallback: &str) -> PluginResult<String> {
    if let Some(q) = param {
        return checked_qos("qos", q);
    }
    match rec.and_then(|r| r.qos.value()).filter(|q| !q.is_empty()) {
        Some(q) => checked_qos("qos", q),
        None => Ok(fallback.to_string()),
    }
}

/// The name a (partial) record asks for, checked; `None` when it asks for none.
/// What both kinds of clone demand of their origin: the clone stays in the origin's pool, and
/// the origin has room for one more dependent clone.
fn clone_preconditions(state: &State, origin: &Element, dest: Option<&SeRecord>) -> PluginResult<()> {
    if let Some(p) = dest
        .and_then(|d| d.vol_group_name.value())
        .filter(|p| !p.is_empty())
    {
        if *p != origin.pool {
            return Err(invalid(format!(
                "vol_group_name {} differs from the pool of {}, {}; a thin clone lives beside its origin",
                shown(p),
                origin.label(),
                shown(&origin.pool)
            )));
        }
    }
    let clones = i64::try_from(state.clones_for(origin.serial).count()).unwrap_or(i64::MAX);
    if clones >= MAX_CLONES_PER_ELEMENT {
        return Err(PluginException::new(
            ExceptionKind::CloneFailedEx,
            format!("{} already has {clones} clones, the limit", origin.label()),
        ));
    }
    Ok(())
}

fn requested_name(rec: Option<&SeRecord>) -> PluginResult<Option<String>> {
    match rec.and_then(|r| r.name.value()).filter(|n| !n.is_empty()) {
        Some(n) => {
            check_name("name", n)?;
            Ok(Some(n.clone()))
        }
        None => Ok(None),
    }
}

/// Normalises entries for the storage type and drops repeats.
fn normalized_entries(st: StorageType, entries: &[String]) -> PluginResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        let n = normalize_entry(st, e)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn required_group_name(key: &str, name: &str) -> PluginResult<()> {
    if name.is_empty() {
        Err(PluginException::missing_key(key, format!("{key} is empty")))
    } else {
        Ok(())
    }
}

fn unknown_group(key: &str, name: &str) -> PluginException {
    invalid(format!(
        "{key} {} names no access group of the simulated array",
        shown(name)
    ))
}

/// Refuses snapshots where only LUNs and clones make sense.
fn not_snap(e: &Element, param: &str, what: &str) -> PluginResult<()> {
    if e.is_snap() {
        Err(invalid(format!(
            "{param} {} is a read-only snapshot; {what}",
            shown(&e.name)
        )))
    } else {
        Ok(())
    }
}

fn split_duration_ms(ms_per_gib: u64, size: i64) -> u64 {
    if ms_per_gib == 0 {
        return 0;
    }
    let gib = u64::try_from(size).unwrap_or(0).div_ceil(GIB).max(1);
    gib.saturating_mul(ms_per_gib).min(MAX_SPLIT_MS)
}

fn new_element(
    (serial, page83_id): (u64, String),
    name: String,
    se_type: SeType,
    pool: String,
    size: i64,
    qos: String,
    now: u64,
) -> Element {
    Element {
        serial,
        uuid: uuid::Uuid::new_v4().to_string(),
        page83_id,
        name,
        se_type,
        pool,
        size,
        thin: true,
        reserved: 0,
        online: true,
        qos,
        presented_to: Vec::new(),
        created_ms: now,
        origin: None,
        split_thick: false,
        split: None,
        members: Vec::new(),
    }
}

/// What a restore would do and what stands in its way.
struct RestorePlan {
    /// (element index, size to go back to).
    targets: Vec<(usize, i64)>,
    /// Why it would affect more than the element(s): SnapRestoreNotSafeEx.
    not_safe: Vec<String>,
    /// Missing pool space: OperationPreReqNotMetEx.
    shortages: Vec<String>,
}

fn plan_restore(state: &State, snap: &SeRecord, se: Option<&SeRecord>) -> PluginResult<RestorePlan> {
    let si = state.find(snap, "snap_se_record")?;
    let s = &state.elements[si];
    if !s.is_snap() {
        return Err(invalid(format!(
            "snap_se_record {} is not a snapshot but a {}",
            shown(&s.name),
            s.se_type
        )));
    }
    let members: Vec<&SnapMember> = match se {
        Some(se) => {
            let ei = state.find(se, "se_record")?;
            let serial = state.elements[ei].serial;
            let m: Vec<&SnapMember> = s.members.iter().filter(|m| m.serial == serial).collect();
            if m.is_empty() {
                return Err(invalid(format!(
                    "se_record {} is not covered by snapshot {}",
                    shown(&state.elements[ei].name),
                    shown(&s.name)
                )));
            }
            m
        }
        None => s.members.iter().collect(),
    };
    let mut plan = RestorePlan {
        targets: Vec::new(),
        not_safe: Vec::new(),
        shortages: Vec::new(),
    };
    let mut growth = Vec::new();
    for m in members {
        let ei = state.index_of_serial(m.serial).ok_or_else(|| {
            PluginException::operation_failed(format!(
                "the state of the simulated array is inconsistent: snapshot {} covers element serial {} which no longer exists",
                shown(&s.name),
                m.serial
            ))
        })?;
        let e = &state.elements[ei];
        if e.online && !e.presented_to.is_empty() {
            plan.not_safe.push(format!(
                "{} is online and presented to {}; take it offline or stop presenting it first",
                e.label(),
                e.presented_to.join(", ")
            ));
        }
        if e.splitting() {
            plan.not_safe
                .push(format!("{} is being split from its origin", e.label()));
        }
        for c in state.direct_clones_of(e.serial).filter(|c| c.serial > s.serial) {
            plan.not_safe.push(format!(
                "{} was made from {} after snapshot {} and shares blocks the roll-back would overwrite",
                c.label(),
                e.label(),
                shown(&s.name)
            ));
        }
        if !e.thin {
            growth.push((ei, m.size));
        }
        plan.targets.push((ei, m.size));
    }
    plan.shortages = state.shortages(&growth);
    Ok(plan)
}

impl StorageArrayPlugin for SimArray {
    fn class_name(&self) -> &'static str {
        CLASS_NAME
    }

    fn metadata(&self) -> PluginMetadata {
        SimArray::plugin_metadata()
    }

    fn implemented_optional(&self) -> &'static [Method] {
        &[
            Method::Discover,
            Method::Start,
            Method::Stop,
            Method::Refresh,
            Method::UpdateSeRecords,
            Method::GetAsyncProgress,
        ]
    }

    fn validate(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        let refuse = |m: String| PluginException::new(ExceptionKind::InvalidStorageArrayEx, m);
        let st = match ss.storage_type.value() {
            None => {
                return Err(refuse(
                    "storage_type is missing; the simulated array serves SANStorage and iSCSIStorage".into(),
                ))
            }
            Some(s) => StorageType::parse(s).ok_or_else(|| {
                refuse(format!(
                    "storage_type {} is not served by the simulated array; use SANStorage or iSCSIStorage",
                    shown(s)
                ))
            })?,
        };
        let cfg = Config::parse(ss.extra_info.value().map(String::as_str)).map_err(|e| refuse(e.message))?;
        let desc = with_array(&cfg, st, Phase::Validate, |state, _| {
            if let Some(cap) = cfg.capacity {
                if let Some(p) = state.pools.iter().find(|p| p.capacity != cap) {
                    return Err(refuse(format!(
                        "extra_info capacity {cap} contradicts the simulated array in {}, whose pool {} holds {} bytes",
                        cfg.state_dir.display(),
                        shown(&p.name),
                        p.capacity
                    )));
                }
            }
            if let Some(pools) = &cfg.pools {
                let have: Vec<&str> = state.pools.iter().map(|p| p.name.as_str()).collect();
                if pools.iter().map(String::as_str).ne(have.iter().copied()) {
                    return Err(refuse(format!(
                        "extra_info pools {} contradicts the simulated array in {}, whose pools are {}",
                        pools.join(","),
                        cfg.state_dir.display(),
                        have.join(",")
                    )));
                }
            }
            Ok(format!(
                "simulated array {} in {}",
                state.array_id,
                cfg.state_dir.display()
            ))
        })?;
        host.log(LogLevel::Info, &format!("validated {desc}"));
        Ok(())
    }

    fn get_capabilities(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Abilities> {
        let c = Call::new(host, ss)?;
        c.run(|_, _| Ok(SimArray::abilities()))
    }

    fn get_info(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<Info> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| match se {
            Some(se) => {
                let i = state.find(se, "se_record")?;
                Ok(Info::Element(state.record_at(i, Some(se), c.ss_uuid(), now)))
            }
            None => {
                let mut out = ss.clone();
                let (total, used, alloc) = state.totals();
                let elements = state.elements.iter().filter(|e| !e.is_snap()).count();
                let snaps = state.elements.len() - elements;
                out.status = Field::Value(STATUS_ONLINE.into());
                out.storage_desc = Field::Value(format!(
                    "spindle simulated storage array {} ({}, {} pool(s), {} LUN(s) and clone(s), {} snapshot(s); state in {}). Simulated: it stores no data and presents no real devices.",
                    state.array_id,
                    state.storage_type,
                    state.pools.len(),
                    elements,
                    snaps,
                    c.cfg.state_dir.display()
                ));
                out.total_sz = Field::Value(total);
                out.used_sz = Field::Value(used);
                out.free_sz = Field::Value(total.saturating_sub(used).max(0));
                out.alloc_sz = Field::Value(alloc);
                out.vol_groups = Field::Value(state.vol_groups());
                Ok(Info::Server(out))
            }
        })
    }

    fn get_storage_names(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Vec<String>> {
        Call::new(host, ss)?;
        Ok(Vec::new())
    }

    fn get_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss)?;
        c.run(|state, _| match se {
            None => Ok(state.access_grps()),
            Some(se) => {
                let i = state.find(se, "se_record")?;
                Ok(state.elements[i]
                    .presented_to
                    .iter()
                    .filter_map(|n| state.group_index(n))
                    .map(|g| State::access_grp(&state.access_groups[g]))
                    .collect())
            }
        })
    }

    fn create_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grps: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss)?;
        let mut new: Vec<Group> = Vec::new();
        for g in access_grps {
            let name = g.grp_name.value().map(String::as_str).unwrap_or("");
            check_name("grp_name", name)?;
            if new.iter().any(|n| n.name == name) {
                return Err(invalid(format!(
                    "access_grps names the group {} twice",
                    shown(name)
                )));
            }
            let given = g.grp_entries.value().map(Vec::as_slice).unwrap_or(&[]);
            let entries = normalized_entries(c.storage_type, given)?;
            if !MaxEntries::Limited(MAX_ACCESS_ENTRIES).allows(entries.len()) {
                return Err(invalid(format!(
                    "grp_entries of {} holds {} entries; max_access_entries is {MAX_ACCESS_ENTRIES}",
                    shown(name),
                    entries.len()
                )));
            }
            new.push(Group {
                name: name.to_string(),
                entries,
                modes: g.grp_modes.value().cloned(),
            });
        }
        let out = c.run(|state, _| {
            if let Some(g) = new.iter().find(|g| state.group_index(&g.name).is_some()) {
                return Err(invalid(format!(
                    "grp_name {} already exists on the simulated array",
                    shown(&g.name)
                )));
            }
            state.access_groups.extend(new.iter().cloned());
            Ok(state.access_grps())
        })?;
        for g in &new {
            c.log(format!("created access group {}", shown(&g.name)));
        }
        Ok(out)
    }

    fn remove_access_groups(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grps: &[AccessGrp],
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss)?;
        let mut names: Vec<&str> = Vec::new();
        for g in access_grps {
            let name = g.grp_name.value().map(String::as_str).unwrap_or("");
            required_group_name("grp_name", name)?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let out = c.run(|state, _| {
            for name in &names {
                if state.group_index(name).is_none() {
                    return Err(unknown_group("grp_name", name));
                }
                let users: Vec<&str> = state
                    .elements
                    .iter()
                    .filter(|e| e.presented_to.iter().any(|p| p == name))
                    .map(|e| e.name.as_str())
                    .collect();
                if !users.is_empty() {
                    return Err(busy(format!(
                        "access group {} still has {} presented to it; stop presenting first",
                        shown(name),
                        users.join(", ")
                    )));
                }
            }
            state.access_groups.retain(|g| !names.contains(&g.name.as_str()));
            Ok(state.access_grps())
        })?;
        c.log(format!("removed access group(s) {}", names.join(", ")));
        Ok(out)
    }

    fn rename_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        new_access_grp_name: &str,
    ) -> PluginResult<Vec<AccessGrp>> {
        let c = Call::new(host, ss)?;
        required_group_name("access_grp_name", access_grp_name)?;
        check_name("new_access_grp_name", new_access_grp_name)?;
        let out = c.run(|state, _| {
            let gi = state
                .group_index(access_grp_name)
                .ok_or_else(|| unknown_group("access_grp_name", access_grp_name))?;
            if access_grp_name == new_access_grp_name {
                return Ok(state.access_grps());
            }
            if state.group_index(new_access_grp_name).is_some() {
                return Err(invalid(format!(
                    "new_access_grp_name {} already exists on the simulated array",
                    shown(new_access_grp_name)
                )));
            }
            state.access_groups[gi].name = new_access_grp_name.to_string();
            for e in &mut state.elements {
                for p in &mut e.presented_to {
                    if p == access_grp_name {
                        *p = new_access_grp_name.to_string();
                    }
                }
            }
            Ok(state.access_grps())
        })?;
        c.log(format!(
            "renamed access group {} to {}",
            shown(access_grp_name),
            shown(new_access_grp_name)
        ));
        Ok(out)
    }

    fn add_to_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        grp_entries: &[String],
    ) -> PluginResult<AccessGrp> {
        let c = Call::new(host, ss)?;
        required_group_name("access_grp_name", access_grp_name)?;
        let adding = normalized_entries(c.storage_type, grp_entries)?;
        c.run(|state, _| {
            let gi = state
                .group_index(access_grp_name)
                .ok_or_else(|| unknown_group("access_grp_name", access_grp_name))?;
            let g = &mut state.access_groups[gi];
            let mut merged = g.entries.clone();
            merged.extend(adding.iter().filter(|a| !g.entries.contains(a)).cloned());
            if !MaxEntries::Limited(MAX_ACCESS_ENTRIES).allows(merged.len()) {
                return Err(invalid(format!(
                    "grp_entries: access group {} would hold {} entries; max_access_entries is {MAX_ACCESS_ENTRIES}",
                    shown(access_grp_name),
                    merged.len()
                )));
            }
            g.entries = merged;
            Ok(State::access_grp(g))
        })
    }

    fn remove_from_access_group(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        access_grp_name: &str,
        grp_entries: &[String],
    ) -> PluginResult<AccessGrp> {
        let c = Call::new(host, ss)?;
        required_group_name("access_grp_name", access_grp_name)?;
        let removing = normalized_entries(c.storage_type, grp_entries)?;
        c.run(|state, _| {
            let gi = state
                .group_index(access_grp_name)
                .ok_or_else(|| unknown_group("access_grp_name", access_grp_name))?;
            let g = &mut state.access_groups[gi];
            if let Some(missing) = removing.iter().find(|r| !g.entries.contains(r)) {
                return Err(invalid(format!(
                    "grp_entries value {} is not in access group {}",
                    shown(missing),
                    shown(access_grp_name)
                )));
            }
            g.entries.retain(|e| !removing.contains(e));
            Ok(State::access_grp(g))
        })
    }

    fn discover(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<SsRecord> {
        let c = Call::new(host, ss)?;
        c.iscsi_only(Method::Discover)?;
        c.run(|state, _| {
            let mut out = ss.clone();
            out.storage_id = Field::Value(vec![state.target_name()]);
            Ok(out)
        })
    }

    fn start(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        c.iscsi_only(Method::Start)?;
        c.run(|_, _| Ok(()))?;
        c.log("simulated array: there is no iSCSI target to log in to; nothing to start".into());
        Ok(())
    }

    fn stop(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        c.iscsi_only(Method::Stop)?;
        c.run(|_, _| Ok(()))?;
        c.log("simulated array: no iSCSI session or multipath device exists; nothing to stop".into());
        Ok(())
    }

    fn refresh(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        c.run(|_, _| Ok(()))?;
        c.log("simulated array: it presents no SCSI devices; nothing to rescan".into());
        Ok(())
    }

    fn list(&self, host: &dyn Host, ss: &SsRecord, se_type: &[SeType]) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| {
            Ok((0..state.elements.len())
                .filter(|&i| {
                    let t = state.elements[i].se_type;
                    !t.is_snapshot() && se_type.contains(&t)
                })
                .map(|i| state.record_at(i, None, c.ss_uuid(), now))
                .collect())
        })
    }

    fn update_se_records(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se_records: &[SeRecord],
        append_allowed: bool,
    ) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| {
            let mut seen = Vec::new();
            let mut out = Vec::with_capacity(se_records.len());
            for rec in se_records {
                match state.find(rec, "se_records") {
                    Ok(i) => {
                        seen.push(i);
                        let mut r = state.record_at(i, Some(rec), c.ss_uuid(), now);
                        // No local device exists for a simulated element.
                        r.path = Field::Value(Vec::new());
                        out.push(r);
                    }
                    Err(_) => {
                        let mut r = rec.clone();
                        r.state = Field::Value(spindle_api::SeState::Unknown);
                        r.status = Field::Value("not found on the simulated array".into());
                        out.push(r);
                    }
                }
            }
            if append_allowed {
                for i in 0..state.elements.len() {
                    if !seen.contains(&i) && !state.elements[i].is_snap() {
                        let mut r = state.record_at(i, None, c.ss_uuid(), now);
                        r.path = Field::Value(Vec::new());
                        out.push(r);
                    }
                }
            }
            Ok(out)
        })
    }

    fn get_status(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<String> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| match se {
            None => Ok(STATUS_ONLINE.to_string()),
            Some(se) => {
                let i = state.find(se, "se_record")?;
                Ok(State::status(&state.elements[i], now).0)
            }
        })
    }

    fn online(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        let name = c.run(|state, _| {
            let i = state.find(se, "se_record")?;
            not_snap(&state.elements[i], "se_record", "snapshots are always online")?;
            state.elements[i].online = true;
            Ok(state.elements[i].name.clone())
        })?;
        c.log(format!("{} is online", shown(&name)));
        Ok(())
    }

    fn offline(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        let name = c.run(|state, _| {
            let i = state.find(se, "se_record")?;
            not_snap(&state.elements[i], "se_record", "snapshots are always online")?;
            state.elements[i].online = false;
            Ok(state.elements[i].name.clone())
        })?;
        c.log(format!("{} is offline", shown(&name)));
        Ok(())
    }

    fn create(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        thin_provision: bool,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss)?;
        match se.se_type {
            Field::Value(SeType::Lun) => {}
            Field::Value(other) => {
                return Err(invalid(format!(
                    "se_type {other} cannot be created by create; it makes LUNType elements (snapshots and clones have their own methods)"
                )))
            }
            Field::Absent | Field::Null => {
                return Err(PluginException::missing_key("se_type", "se_record has no se_type"))
            }
        }
        let name = se.name.value().map(String::as_str).unwrap_or("");
        check_name("name", name)?;
        let size = match se.size {
            Field::Value(s) => rounded_size("size", s)?,
            _ => return Err(PluginException::missing_key("size", "se_record has no size")),
        };
        let qos = qos_for(qos, Some(se), DEFAULT_QOS)?;
        let pool_asked = se.vol_group_name.value().filter(|p| !p.is_empty()).cloned();
        let rec = c.run(|state, now| {
            let pool =
                match &pool_asked {
                    Some(p) => state.pool(p).map(|p| p.name.clone()).ok_or_else(|| {
                        invalid(format!(
                            "vol_group_name {} names no pool of the simulated array",
                            shown(p)
                        ))
                    })?,
                    None => state.pools.first().map(|p| p.name.clone()).ok_or_else(|| {
                        PluginException::operation_failed("the simulated array has no pool")
                    })?,
                };
            state.check_unique(name)?;
            let free = state.pool_free(&pool);
            if size > free {
                return Err(invalid(format!(
                    "size {size} does not fit in pool {}: {free} bytes free",
                    shown(&pool)
                )));
            }
            let (serial, page83) = state.next_identity()?;
            let mut e = new_element(
                (serial, page83),
                name.to_string(),
                SeType::Lun,
                pool,
                size,
                qos,
                now,
            );
            e.thin = thin_provision;
            e.reserved = if thin_provision { 0 } else { size };
            state.elements.push(e);
            Ok(state.record_at(state.elements.len() - 1, Some(se), c.ss_uuid(), now))
        })?;
        c.log(format!(
            "created {} LUN {} of {size} bytes",
            if thin_provision { "thin" } else { "thick" },
            shown(name)
        ));
        Ok(rec)
    }

    fn start_present(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        access_grp_names: &[String],
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| {
            let i = state.find(se, "se_record")?;
            not_snap(&state.elements[i], "se_record", "clone it to present its image")?;
            for g in access_grp_names {
                if state.group_index(g).is_none() {
                    return Err(unknown_group("access_grp_names", g));
                }
            }
            let e = &mut state.elements[i];
            for g in access_grp_names {
                if !e.presented_to.contains(g) {
                    e.presented_to.push(g.clone());
                }
            }
            Ok(state.record_at(i, Some(se), c.ss_uuid(), now))
        })
    }

    fn stop_present(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        access_grp_names: &[String],
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| {
            let i = state.find(se, "se_record")?;
            for g in access_grp_names {
                if state.group_index(g).is_none() {
                    return Err(unknown_group("access_grp_names", g));
                }
            }
            state.elements[i]
                .presented_to
                .retain(|p| !access_grp_names.contains(p));
            Ok(state.record_at(i, Some(se), c.ss_uuid(), now))
        })
    }

    fn resize(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord, new_size: i64) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss)?;
        let size = rounded_size("new_size", new_size)?;
        let rec = c.run(|state, now| {
            let i = state.find(se, "se_record")?;
            let e = &state.elements[i];
            not_snap(e, "se_record", "snapshots cannot be resized")?;
            if e.splitting() {
                return Err(busy(format!(
                    "{} is being split; resize it when the split is done",
                    e.label()
                )));
            }
            let delta = size - e.size;
            let free = state.pool_free(&e.pool);
            if delta > free {
                return Err(invalid(format!(
                    "new_size {new_size} needs {delta} more bytes in pool {}, which has {free} free",
                    shown(&e.pool)
                )));
            }
            let e = &mut state.elements[i];
            e.size = size;
            if !e.thin {
                e.reserved = size;
            }
            Ok(state.record_at(i, Some(se), c.ss_uuid(), now))
        })?;
        c.log(format!(
            "resized {} to {size} bytes",
            shown(rec.name.value().map_or("", String::as_str))
        ));
        Ok(rec)
    }

    fn remove(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        let label = c.run(|state, _| {
            let i = state.find(se, "se_record")?;
            let e = &state.elements[i];
            not_snap(e, "se_record", "snapRemove removes snapshots")?;
            if !e.presented_to.is_empty() {
                return Err(busy(format!(
                    "{} is still presented to {}; stop presenting it first",
                    e.label(),
                    e.presented_to.join(", ")
                )));
            }
            if e.splitting() {
                return Err(busy(format!("{} is being split", e.label())));
            }
            let snaps: Vec<&str> = state.snaps_of(e.serial).map(|s| s.name.as_str()).collect();
            if !snaps.is_empty() {
                return Err(busy(format!(
                    "{} has snapshots {}; remove them first",
                    e.label(),
                    snaps.join(", ")
                )));
            }
            let clones: Vec<&str> = state
                .direct_clones_of(e.serial)
                .map(|s| s.name.as_str())
                .collect();
            if !clones.is_empty() {
                return Err(busy(format!(
                    "{} shares blocks with clones {}; split or remove them first",
                    e.label(),
                    clones.join(", ")
                )));
            }
            let label = e.label();
            state.elements.remove(i);
            Ok(label)
        })?;
        c.log(format!("removed {label}"));
        Ok(())
    }

    fn get_clone_limits(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<i64> {
        let c = Call::new(host, ss)?;
        c.run(|state, _| {
            if let Some(se) = se {
                state.find(se, "se_record")?;
            }
            Ok(MAX_CLONES_PER_ELEMENT)
        })
    }

    fn is_cloneable(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<bool> {
        let c = Call::new(host, ss)?;
        c.run(|state, _| {
            let i = state.find(se, "se_record")?;
            let e = &state.elements[i];
            let clones = i64::try_from(state.clones_for(e.serial).count()).unwrap_or(i64::MAX);
            Ok(!e.is_snap() && clones < MAX_CLONES_PER_ELEMENT)
        })
    }

    fn clone_element(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        dest: Option<&SeRecord>,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss)?;
        let asked = requested_name(dest)?;
        let rec = c.run(|state, now| {
            let oi = state.find(se, "se_record")?;
            let o = &state.elements[oi];
            not_snap(o, "se_record", "cloneFromSnap clones snapshots")?;
            clone_preconditions(state, o, dest)?;
            let qos = qos_for(qos, dest, &o.qos)?;
            let (origin_serial, pool, size, thick, base) =
                (o.serial, o.pool.clone(), o.size, o.copies_thick(), o.name.clone());
            let (serial, page83) = state.next_identity()?;
            let name = match &asked {
                Some(n) => {
                    state.check_unique(n)?;
                    n.clone()
                }
                None => state.generated_name(&base, "clone", serial),
            };
            let mut e = new_element((serial, page83), name, SeType::SnapClone, pool, size, qos, now);
            e.origin = Some(Origin {
                serial: origin_serial,
                member: None,
            });
            e.split_thick = thick;
            state.elements.push(e);
            Ok(state.record_at(state.elements.len() - 1, dest, c.ss_uuid(), now))
        })?;
        c.log(format!(
            "cloned {}",
            shown(rec.name.value().map_or("", String::as_str))
        ));
        Ok(rec)
    }

    fn is_splittable(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<bool> {
        let c = Call::new(host, ss)?;
        c.run(|state, _| {
            let i = state.find(se, "se_record")?;
            let e = &state.elements[i];
            let room = !e.split_thick || e.size <= state.pool_free(&e.pool);
            Ok(e.se_type == SeType::SnapClone && !e.splitting() && room)
        })
    }

    fn split_clone(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord) -> PluginResult<Option<SeRecord>> {
        let c = Call::new(host, ss)?;
        let per_gib = c.cfg.split_ms_per_gib;
        let out = c.run(|state, now| {
            let i = state.find(se, "se_record")?;
            let e = &state.elements[i];
            if e.se_type != SeType::SnapClone {
                return Err(invalid(format!(
                    "se_record {} is a {}, not a clone; only clones can be split",
                    shown(&e.name),
                    e.se_type
                )));
            }
            if e.splitting() {
                return Err(busy(format!("{} is already being split", e.label())));
            }
            if e.split_thick {
                let free = state.pool_free(&e.pool);
                if e.size > free {
                    return Err(PluginException::new(
                        ExceptionKind::OperationPreReqNotMetEx,
                        format!(
                            "splitting {} copies {} thick bytes but pool {} has {free} free",
                            e.label(),
                            e.size,
                            shown(&e.pool)
                        ),
                    ));
                }
            }
            let duration_ms = split_duration_ms(per_gib, e.size);
            let e = &mut state.elements[i];
            if e.split_thick {
                e.thin = false;
                e.reserved = e.size;
            }
            if duration_ms == 0 {
                e.se_type = SeType::Lun;
                e.origin = None;
                return Ok(None);
            }
            let job = SplitJob {
                id: uuid::Uuid::new_v4().to_string(),
                started_ms: now,
                duration_ms,
                done: false,
            };
            let handle = format!("{SPLIT_HANDLE_PREFIX}{}", job.id);
            e.split = Some(job);
            let mut r = state.record_at(i, Some(se), c.ss_uuid(), now);
            r.async_progress = Field::Value(0);
            r.async_handle = Field::Value(handle);
            Ok(Some(r))
        })?;
        c.log(match &out {
            Some(r) => format!(
                "split of {} started",
                shown(r.name.value().map_or("", String::as_str))
            ),
            None => "split finished at once".to_string(),
        });
        Ok(out)
    }

    fn clone_from_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        snap: &SeRecord,
        dest: Option<&SeRecord>,
        qos: Option<&str>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss)?;
        let asked = requested_name(dest)?;
        let rec = c.run(|state, now| {
            let si = state.find(snap, "snap_se_record")?;
            let ei = state.find(se, "se_record")?;
            let (s, e) = (&state.elements[si], &state.elements[ei]);
            if !s.is_snap() {
                return Err(invalid(format!(
                    "snap_se_record {} is a {}, not a snapshot",
                    shown(&s.name),
                    s.se_type
                )));
            }
            let member = s.members.iter().find(|m| m.serial == e.serial).ok_or_else(|| {
                invalid(format!(
                    "se_record {} is not covered by snapshot {}",
                    shown(&e.name),
                    shown(&s.name)
                ))
            })?;
            clone_preconditions(state, e, dest)?;
            let qos = qos_for(qos, dest, &e.qos)?;
            let (snap_serial, member_serial, pool, size, thick, base) = (
                s.serial,
                e.serial,
                e.pool.clone(),
                member.size,
                e.copies_thick(),
                s.name.clone(),
            );
            let (serial, page83) = state.next_identity()?;
            let name = match &asked {
                Some(n) => {
                    state.check_unique(n)?;
                    n.clone()
                }
                None => state.generated_name(&base, "clone", serial),
            };
            let mut c_el = new_element((serial, page83), name, SeType::SnapClone, pool, size, qos, now);
            c_el.origin = Some(Origin {
                serial: snap_serial,
                member: Some(member_serial),
            });
            c_el.split_thick = thick;
            state.elements.push(c_el);
            Ok(state.record_at(state.elements.len() - 1, dest, c.ss_uuid(), now))
        })?;
        c.log(format!(
            "cloned snapshot into {}",
            shown(rec.name.value().map_or("", String::as_str))
        ));
        Ok(rec)
    }

    fn get_current_clones(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| {
            let picked: Vec<usize> = match se {
                None => (0..state.elements.len())
                    .filter(|&i| state.elements[i].se_type == SeType::SnapClone)
                    .collect(),
                Some(se) => {
                    let serial = state.elements[state.find(se, "se_record")?].serial;
                    (0..state.elements.len())
                        .filter(|&i| {
                            state.elements[i]
                                .origin
                                .as_ref()
                                .is_some_and(|o| o.serial == serial || o.member == Some(serial))
                        })
                        .collect()
                }
            };
            Ok(picked
                .into_iter()
                .map(|i| state.record_at(i, None, c.ss_uuid(), now))
                .collect())
        })
    }

    fn get_snap_limits(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<i64> {
        let c = Call::new(host, ss)?;
        c.run(|state, _| {
            if let Some(se) = se {
                state.find(se, "se_record")?;
            }
            Ok(MAX_SNAPS_PER_ELEMENT)
        })
    }

    fn is_snapable(&self, host: &dyn Host, ss: &SsRecord, se: Option<&SeRecord>) -> PluginResult<bool> {
        let c = Call::new(host, ss)?;
        c.run(|state, _| match se {
            None => Ok(true),
            Some(se) => {
                let e = &state.elements[state.find(se, "se_record")?];
                let snaps = i64::try_from(state.snaps_of(e.serial).count()).unwrap_or(i64::MAX);
                Ok(!e.is_snap() && snaps < MAX_SNAPS_PER_ELEMENT)
            }
        })
    }

    fn create_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: &SeRecord,
        snap: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        self.create_multi_snap(host, ss, std::slice::from_ref(se), snap)
    }

    fn create_multi_snap(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se_records: &[SeRecord],
        snap: Option<&SeRecord>,
    ) -> PluginResult<SeRecord> {
        let c = Call::new(host, ss)?;
        if se_records.is_empty() {
            return Err(PluginException::missing_key(
                "se_records",
                "se_records is empty; name the elements to snapshot",
            ));
        }
        let asked = requested_name(snap)?;
        let rec = c.run(|state, now| {
            let mut members: Vec<SnapMember> = Vec::new();
            for se in se_records {
                let e = &state.elements[state.find(se, "se_records")?];
                not_snap(e, "se_records", "a snapshot cannot be snapshotted")?;
                if members.iter().any(|m| m.serial == e.serial) {
                    return Err(invalid(format!("se_records names {} twice", e.label())));
                }
                let snaps = i64::try_from(state.snaps_of(e.serial).count()).unwrap_or(i64::MAX);
                if snaps >= MAX_SNAPS_PER_ELEMENT {
                    return Err(PluginException::new(
                        ExceptionKind::CreateSnapFailedEx,
                        format!("{} already has {snaps} snapshots, the limit", e.label()),
                    ));
                }
                members.push(SnapMember {
                    serial: e.serial,
                    size: e.size,
                });
            }
            let first = state
                .index_of_serial(members[0].serial)
                .map(|i| state.elements[i].clone())
                .ok_or_else(|| PluginException::operation_failed("snapshot source vanished"))?;
            let size = members.iter().fold(0i64, |a, m| a.saturating_add(m.size));
            let (serial, page83) = state.next_identity()?;
            let name = match &asked {
                Some(n) => {
                    state.check_unique(n)?;
                    n.clone()
                }
                None if members.len() == 1 => state.generated_name(&first.name, "snap", serial),
                None => state.generated_name("multi", "snap", serial),
            };
            let mut s = new_element(
                (serial, page83),
                name,
                SeType::Snap,
                first.pool,
                size,
                first.qos,
                now,
            );
            s.members = members;
            state.elements.push(s);
            Ok(state.record_at(state.elements.len() - 1, snap, c.ss_uuid(), now))
        })?;
        c.log(format!(
            "took snapshot {} of {} element(s)",
            shown(rec.name.value().map_or("", String::as_str)),
            se_records.len()
        ));
        Ok(rec)
    }

    fn is_restorable(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        snap: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<bool> {
        let c = Call::new(host, ss)?;
        c.run(|state, _| {
            let plan = plan_restore(state, snap, se)?;
            Ok(plan.not_safe.is_empty() && plan.shortages.is_empty())
        })
    }

    fn snap_restore(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        snap: &SeRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        let restored = c.run(|state, _| {
            let plan = plan_restore(state, snap, se)?;
            if !plan.not_safe.is_empty() {
                return Err(PluginException::new(
                    ExceptionKind::SnapRestoreNotSafeEx,
                    format!(
                        "restoring would affect more than the element: {}",
                        plan.not_safe.join("; ")
                    ),
                ));
            }
            if !plan.shortages.is_empty() {
                return Err(PluginException::new(
                    ExceptionKind::OperationPreReqNotMetEx,
                    plan.shortages.join("; "),
                ));
            }
            let mut names = Vec::new();
            for (i, size) in plan.targets {
                let e = &mut state.elements[i];
                e.size = size;
                if !e.thin {
                    e.reserved = size;
                }
                names.push(e.name.clone());
            }
            Ok(names)
        })?;
        c.log(format!("restored {} from a snapshot", restored.join(", ")));
        Ok(())
    }

    fn snap_remove(&self, host: &dyn Host, ss: &SsRecord, snap: &SeRecord) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        let name = c.run(|state, _| {
            let i = state.find(snap, "snap_se_record")?;
            let s = &state.elements[i];
            if !s.is_snap() {
                return Err(invalid(format!(
                    "snap_se_record {} is a {}, not a snapshot; remove removes it",
                    shown(&s.name),
                    s.se_type
                )));
            }
            let clones: Vec<&str> = state
                .direct_clones_of(s.serial)
                .map(|c| c.name.as_str())
                .collect();
            if !clones.is_empty() {
                return Err(busy(format!(
                    "{} is shared by clones {}; split or remove them first",
                    s.label(),
                    clones.join(", ")
                )));
            }
            let name = s.name.clone();
            state.elements.remove(i);
            Ok(name)
        })?;
        c.log(format!("removed snapshot {}", shown(&name)));
        Ok(())
    }

    fn get_current_snaps(
        &self,
        host: &dyn Host,
        ss: &SsRecord,
        se: Option<&SeRecord>,
    ) -> PluginResult<Vec<SeRecord>> {
        let c = Call::new(host, ss)?;
        c.run(|state, now| {
            let serial = match se {
                Some(se) => Some(state.elements[state.find(se, "se_record")?].serial),
                None => None,
            };
            Ok((0..state.elements.len())
                .filter(|&i| {
                    let e = &state.elements[i];
                    e.is_snap() && serial.is_none_or(|s| e.members.iter().any(|m| m.serial == s))
                })
                .map(|i| state.record_at(i, None, c.ss_uuid(), now))
                .collect())
        })
    }

    fn get_qos_list(&self, host: &dyn Host, ss: &SsRecord) -> PluginResult<Vec<QosVals>> {
        Call::new(host, ss)?;
        Ok(QOS_LEVELS
            .iter()
            .map(|(priority, value, description)| QosVals {
                priority: Field::Value(*priority),
                value: Field::Value((*value).to_string()),
                description: Field::Value((*description).to_string()),
                extra: Default::default(),
            })
            .collect())
    }

    fn set_qos(&self, host: &dyn Host, ss: &SsRecord, se: &SeRecord, qos: &str) -> PluginResult<()> {
        let c = Call::new(host, ss)?;
        let qos = checked_qos("qos", qos)?;
        let name = c.run(|state, _| {
            let i = state.find(se, "se_record")?;
            state.elements[i].qos = qos.clone();
            Ok(state.elements[i].name.clone())
        })?;
        c.log(format!("QoS of {} set to {qos}", shown(&name)));
        Ok(())
    }

    fn get_async_progress(&self, host: &dyn Host, ss: &SsRecord, some_record: &Value) -> PluginResult<Value> {
        let c = Call::new(host, ss)?;
        let rec = SeRecord::from_value(some_record).map_err(|e| {
            PluginException::value_format(e.key().unwrap_or("some_record"), format!("some_record: {e}"))
        })?;
        let job_id = match rec.async_handle.value().filter(|h| !h.is_empty()) {
            None => None,
            Some(h) => Some(
                h.strip_prefix(SPLIT_HANDLE_PREFIX)
                    .filter(|id| !id.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        PluginException::value_format(
                            "async_handle",
                            format!("async_handle {} was not issued by the simulated array", shown(h)),
                        )
                    })?,
            ),
        };
        c.run(|state, now| {
            let i = match &job_id {
                Some(id) => {
                    let i = state
                        .elements
                        .iter()
                        .position(|e| e.split.as_ref().is_some_and(|j| j.id == *id))
                        .ok_or_else(|| {
                            invalid(format!(
                                "async_handle {} names no split on the simulated array",
                                shown(&format!("{SPLIT_HANDLE_PREFIX}{id}"))
                            ))
                        })?;
                    if let Some(n) = rec.name.value().filter(|n| !n.is_empty()) {
                        if *n != state.elements[i].name {
                            return Err(invalid(format!(
                                "some_record name {} does not match the split its async_handle names, of {}",
                                shown(n),
                                state.elements[i].label()
                            )));
                        }
                    }
                    i
                }
                None => state.find(&rec, "some_record")?,
            };
            let job = state.elements[i].split.clone().ok_or_else(|| {
                invalid(format!(
                    "some_record {} has no asynchronous operation",
                    shown(&state.elements[i].name)
                ))
            })?;
            let mut r = state.record_at(i, Some(&rec), c.ss_uuid(), now);
            r.async_handle = Field::Value(format!("{SPLIT_HANDLE_PREFIX}{}", job.id));
            r.async_progress = match job.progress(now) {
                Some(p) => Field::Value(p),
                None => Field::Null,
            };
            Ok(r.to_value())
        })
    }
}
