//! The method table of the Storage Array API: one row per method, used by dispatch, by the
//! plug-in protocol, by contract enforcement and by the conformance kit. Nothing else in
//! spindle may restate which methods exist or what they take.

use crate::ability::{FlagKey, OpKey};
use serde::Serialize;
use std::fmt;

/// Whether a plug-in must implement a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// Every plug-in implements it.
    Required,
    /// The manager has a generic version.
    Optional,
    /// Optional, and only ever called for iSCSI arrays.
    OptionalIscsiOnly,
    /// Required when any operation can finish asynchronously.
    RequiredIfAsync,
}

/// What a parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// An ss_record.
    SsRecord,
    /// An se_record.
    SeRecord,
    /// A list of se_records.
    SeRecordList,
    /// A list of access_grp dicts.
    AccessGrpList,
    /// A string (a name).
    Name,
    /// A list of strings (names or entries).
    NameList,
    /// An integer.
    Integer,
    /// A boolean.
    Boolean,
    /// A list of se_type values.
    SeTypeList,
    /// A QoS value (a string).
    Qos,
    /// Any record (getAsyncProgress).
    AnyRecord,
}

/// The default of an optional parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamDefault {
    /// `None`
    None,
    /// `True`
    True,
    /// `False`
    False,
    /// `[LUNType, SnapCloneType]`
    LunAndSnapCloneTypes,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamSpec {
    /// The keyword name.
    pub name: &'static str,
    /// What it holds.
    pub kind: ParamKind,
    /// `Some` when optional, with its default.
    pub default: Option<ParamDefault>,
}

impl ParamSpec {
    /// True when the caller may leave it out.
    pub fn optional(&self) -> bool {
        self.default.is_some()
    }
}

/// What a method returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnKind {
    /// Nothing (`None`).
    Nothing,
    /// An ss_record.
    SsRecord,
    /// The ss_record, or the se_record when one was passed (getInfo).
    SsOrSeRecord,
    /// A list of strings.
    NameList,
    /// A list of access_grp dicts.
    AccessGrpList,
    /// One access_grp dict.
    AccessGrp,
    /// A list of se_records.
    SeRecordList,
    /// One se_record.
    SeRecord,
    /// A status string.
    Status,
    /// A limit: a count, or -1 for unlimited.
    Limit,
    /// A boolean.
    Boolean,
    /// An ability dict.
    Abilities,
    /// A list of qos_vals dicts.
    QosList,
    /// The record it was given, completed (getAsyncProgress).
    SameRecord,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MethodSpec {
    /// Which method.
    pub method: Method,
    /// The wire name, e.g. `cloneFromSnap`.
    pub name: &'static str,
    /// Whether it must be implemented.
    pub requirement: Requirement,
    /// Parameters in order (the first is always `ss_record`).
    pub params: &'static [ParamSpec],
    /// What it returns.
    pub returns: ReturnKind,
    /// Changes the storage server (serialised per server by the manager).
    pub mutates: bool,
    /// The ability that governs it, if any; its `*_is_sync` flag says whether it may be async.
    pub ability: Option<OpKey>,
    /// Returned se_records must carry `page83_id`.
    pub page83_required: bool,
    /// The parameter whose record the returned record is checked against ("Allow update").
    pub update_base: Option<&'static str>,
}

impl MethodSpec {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The `*_is_sync` flag of the governing ability.
    pub fn sync_flag(&self) -> Option<FlagKey> {
        self.ability.map(OpKey::sync_key)
    }

    /// Whether the method may ever return a record with `async_progress`.
    pub fn may_be_async(&self) -> bool {
        self.ability.is_some() || self.method == Method::Create
    }
}

const fn req(name: &'static str, kind: ParamKind) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        default: None,
    }
}

const fn opt(name: &'static str, kind: ParamKind, default: ParamDefault) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        default: Some(default),
    }
}

const SS: ParamSpec = req("ss_record", ParamKind::SsRecord);
const SE: ParamSpec = req("se_record", ParamKind::SeRecord);
const OPT_SE: ParamSpec = opt("se_record", ParamKind::SeRecord, ParamDefault::None);
const QOS: ParamSpec = opt("qos", ParamKind::Qos, ParamDefault::None);

macro_rules! methods {
    ($( $variant:ident = $name:literal, $req:ident, [$($param:expr),*], $ret:ident,
        mutates: $mut:literal, ability: $ab:expr, page83: $p83:literal, base: $base:expr; )+) => {
        /// Every method of `IStorageArrayPlugin`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum Method { $( #[doc = $name] #[serde(rename = $name)] $variant ),+ }

        /// The table, in the guides' order.
        pub const METHODS: &[MethodSpec] = &[
            $( MethodSpec {
                method: Method::$variant,
                name: $name,
                requirement: Requirement::$req,
                params: &[$($param),*],
                returns: ReturnKind::$ret,
                mutates: $mut,
                ability: $ab,
                page83_required: $p83,
                update_base: $base,
            } ),+
        ];

        impl Method {
            /// The wire name.
            pub fn name(self) -> &'static str {
                match self { $( Method::$variant => $name ),+ }
            }

            /// Looks a wire name up.
            pub fn parse(name: &str) -> Option<Method> {
                match name { $( $name => Some(Method::$variant), )+ _ => None }
            }
        }
    };
}

methods! {
    Validate = "validate", Required, [SS], Nothing,
        mutates: false, ability: None, page83: false, base: None;
    GetCapabilities = "getCapabilities", Required, [SS], Abilities,
        mutates: false, ability: None, page83: false, base: None;
    GetInfo = "getInfo", Required, [SS, OPT_SE], SsOrSeRecord,
        mutates: false, ability: None, page83: false, base: None;
    GetStorageNames = "getStorageNames", Required, [SS], NameList,
        mutates: false, ability: None, page83: false, base: None;
    GetAccessGroups = "getAccessGroups", Required, [SS, OPT_SE], AccessGrpList,
        mutates: false, ability: None, page83: false, base: None;
    CreateAccessGroups = "createAccessGroups", Required,
        [SS, req("access_grps", ParamKind::AccessGrpList)], AccessGrpList,
        mutates: true, ability: None, page83: false, base: None;
    RemoveAccessGroups = "removeAccessGroups", Required,
        [SS, req("access_grps", ParamKind::AccessGrpList)], AccessGrpList,
        mutates: true, ability: None, page83: false, base: None;
    RenameAccessGroup = "renameAccessGroup", Required,
        [SS, req("access_grp_name", ParamKind::Name), req("new_access_grp_name", ParamKind::Name)],
        AccessGrpList, mutates: true, ability: None, page83: false, base: None;
    AddToAccessGroup = "addToAccessGroup", Required,
        [SS, req("access_grp_name", ParamKind::Name), req("grp_entries", ParamKind::NameList)],
        AccessGrp, mutates: true, ability: None, page83: false, base: None;
    RemoveFromAccessGroup = "removeFromAccessGroup", Required,
        [SS, req("access_grp_name", ParamKind::Name), req("grp_entries", ParamKind::NameList)],
        AccessGrp, mutates: true, ability: None, page83: false, base: None;
    Discover = "discover", OptionalIscsiOnly, [SS], SsRecord,
        mutates: false, ability: None, page83: false, base: Some("ss_record");
    Start = "start", OptionalIscsiOnly, [SS], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    Stop = "stop", OptionalIscsiOnly, [SS], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    Refresh = "refresh", Optional, [SS], Nothing,
        mutates: false, ability: None, page83: false, base: None;
    List = "list", Required,
        [SS, opt("se_type", ParamKind::SeTypeList, ParamDefault::LunAndSnapCloneTypes)],
        SeRecordList, mutates: false, ability: None, page83: true, base: None;
    UpdateSeRecords = "updateSERecords", Optional,
        [SS, req("se_records", ParamKind::SeRecordList),
         opt("append_allowed", ParamKind::Boolean, ParamDefault::False)],
        SeRecordList, mutates: false, ability: None, page83: false, base: Some("se_records");
    GetStatus = "getStatus", Required, [SS, OPT_SE], Status,
        mutates: false, ability: None, page83: false, base: None;
    Online = "online", Required, [SS, SE], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    Offline = "offline", Required, [SS, SE], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    Create = "create", Required,
        [SS, SE, opt("thin_provision", ParamKind::Boolean, ParamDefault::True), QOS],
        SeRecord, mutates: true, ability: None, page83: true, base: Some("se_record");
    StartPresent = "startPresent", Required,
        [SS, SE, req("access_grp_names", ParamKind::NameList)], SeRecord,
        mutates: true, ability: None, page83: false, base: Some("se_record");
    StopPresent = "stopPresent", Required,
        [SS, SE, req("access_grp_names", ParamKind::NameList)], SeRecord,
        mutates: true, ability: None, page83: false, base: Some("se_record");
    Resize = "resize", Required, [SS, SE, req("new_size", ParamKind::Integer)], SeRecord,
        mutates: true, ability: Some(OpKey::Resize), page83: false, base: Some("se_record");
    Remove = "remove", Required, [SS, SE], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    GetCloneLimits = "getCloneLimits", Required, [SS, OPT_SE], Limit,
        mutates: false, ability: None, page83: false, base: None;
    IsCloneable = "isCloneable", Required, [SS, SE], Boolean,
        mutates: false, ability: None, page83: false, base: None;
    Clone = "clone", Required,
        [SS, SE, opt("dest_se_record", ParamKind::SeRecord, ParamDefault::None), QOS], SeRecord,
        mutates: true, ability: Some(OpKey::Clone), page83: true, base: Some("dest_se_record");
    IsSplittable = "isSplittable", Required, [SS, SE], Boolean,
        mutates: false, ability: None, page83: false, base: None;
    SplitClone = "splitClone", Required, [SS, SE], Nothing,
        mutates: true, ability: Some(OpKey::SplitClone), page83: false, base: Some("se_record");
    CloneFromSnap = "cloneFromSnap", Required,
        [SS, SE, req("snap_se_record", ParamKind::SeRecord),
         opt("dest_se_record", ParamKind::SeRecord, ParamDefault::None), QOS], SeRecord,
        mutates: true, ability: Some(OpKey::SnapClone), page83: true, base: Some("dest_se_record");
    GetCurrentClones = "getCurrentClones", Required, [SS, OPT_SE], SeRecordList,
        mutates: false, ability: None, page83: false, base: None;
    GetSnapLimits = "getSnapLimits", Required, [SS, OPT_SE], Limit,
        mutates: false, ability: None, page83: false, base: None;
    IsSnapable = "isSnapable", Required, [SS, OPT_SE], Boolean,
        mutates: false, ability: None, page83: false, base: None;
    CreateSnap = "createSnap", Required,
        [SS, SE, opt("snap_se_record", ParamKind::SeRecord, ParamDefault::None)], SeRecord,
        mutates: true, ability: Some(OpKey::Snapshot), page83: false, base: Some("snap_se_record");
    CreateMultiSnap = "createMultiSnap", Required,
        [SS, req("se_records", ParamKind::SeRecordList),
         opt("snap_se_record", ParamKind::SeRecord, ParamDefault::None)], SeRecord,
        mutates: true, ability: Some(OpKey::Snapshot), page83: false, base: Some("snap_se_record");
    IsRestorable = "isRestorable", Required,
        [SS, req("snap_se_record", ParamKind::SeRecord), OPT_SE], Boolean,
        mutates: false, ability: None, page83: false, base: None;
    SnapRestore = "snapRestore", Required,
        [SS, req("snap_se_record", ParamKind::SeRecord), OPT_SE], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    SnapRemove = "snapRemove", Required, [SS, req("snap_se_record", ParamKind::SeRecord)], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    GetCurrentSnaps = "getCurrentSnaps", Required, [SS, OPT_SE], SeRecordList,
        mutates: false, ability: None, page83: false, base: None;
    GetQosList = "getQoSList", Required, [SS], QosList,
        mutates: false, ability: None, page83: false, base: None;
    SetQos = "setQoS", Required, [SS, SE, req("qos", ParamKind::Qos)], Nothing,
        mutates: true, ability: None, page83: false, base: None;
    GetAsyncProgress = "getAsyncProgress", RequiredIfAsync,
        [SS, req("some_record", ParamKind::AnyRecord)], SameRecord,
        mutates: false, ability: None, page83: false, base: Some("some_record");
}

impl Method {
    /// The method's row.
    pub fn spec(self) -> &'static MethodSpec {
        // The table lists the variants in declaration order, so the discriminant indexes it.
        &METHODS[self as usize]
    }

    /// Every method.
    pub fn all() -> impl Iterator<Item = Method> {
        METHODS.iter().map(|m| m.method)
    }

    /// Optional methods the manager supplies when a plug-in does not.
    pub fn has_generic_fallback(self) -> bool {
        matches!(
            self.spec().requirement,
            Requirement::Optional | Requirement::OptionalIscsiOnly
        )
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_discriminant_and_complete() {
        assert_eq!(METHODS.len(), 42);
        for (i, m) in METHODS.iter().enumerate() {
            assert_eq!(m.method as usize, i, "{} out of place", m.name);
            assert_eq!(Method::parse(m.name), Some(m.method));
            assert_eq!(m.params[0].name, "ss_record", "{}", m.name);
        }
    }

    #[test]
    fn optional_methods_are_the_five_the_guides_name() {
        let optional: Vec<&str> = METHODS
            .iter()
            .filter(|m| m.method.has_generic_fallback())
            .map(|m| m.name)
            .collect();
        assert_eq!(
            optional,
            ["discover", "start", "stop", "refresh", "updateSERecords"]
        );
    }
}
