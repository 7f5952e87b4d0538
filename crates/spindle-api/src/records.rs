//! Every record of the General guide, typed, with the guides' exact keys.
//!
//! Each struct keeps the keys it does not know in `extra`, so a record survives a round trip
//! unchanged. Each known key is a [`Field`], so absent, `null` and a value stay apart. The
//! "Allow update" column of the guides is kept beside each key as data ([`FieldSpec`]) and is
//! what [`crate::update_rules`] checks.

use crate::enums::{FileType, FsState, SeState, SeType, StorageType};
use crate::field::Field;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// What a plug-in may do to a field of a record it was given ("Allow update").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum UpdateRule {
    /// The plug-in may change it.
    Yes,
    /// The plug-in may set it only if it was empty.
    OnlyIfEmpty,
    /// The plug-in may not change it.
    No,
}

/// A known key of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The dictionary key.
    pub key: &'static str,
    /// The "Allow update" rule.
    pub rule: UpdateRule,
    /// The guides mark the key optional.
    pub optional: bool,
    /// Holds a secret: never logged, never shown.
    pub secret: bool,
}

/// The kinds of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// `ss_record`
    SsRecord,
    /// `se_record`
    SeRecord,
    /// `fs_record`
    FsRecord,
    /// `file_record`
    FileRecord,
    /// `mount_record`
    MountRecord,
    /// `access_grp`
    AccessGrp,
    /// `vol_group`
    VolGroup,
    /// `qos_vals`
    QosVals,
    /// `backing_device`
    BackingDevice,
}

impl RecordKind {
    /// The guides' name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::SsRecord => "ss_record",
            RecordKind::SeRecord => "se_record",
            RecordKind::FsRecord => "fs_record",
            RecordKind::FileRecord => "file_record",
            RecordKind::MountRecord => "mount_record",
            RecordKind::AccessGrp => "access_grp",
            RecordKind::VolGroup => "vol_group",
            RecordKind::QosVals => "qos_vals",
            RecordKind::BackingDevice => "backing_device",
        }
    }

    /// The known keys with their rules.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            RecordKind::SsRecord => SsRecord::FIELDS,
            RecordKind::SeRecord => SeRecord::FIELDS,
            RecordKind::FsRecord => FsRecord::FIELDS,
            RecordKind::FileRecord => FileRecord::FIELDS,
            RecordKind::MountRecord => MountRecord::FIELDS,
            RecordKind::AccessGrp => AccessGrp::FIELDS,
            RecordKind::VolGroup => VolGroup::FIELDS,
            RecordKind::QosVals => QosVals::FIELDS,
            RecordKind::BackingDevice => BackingDevice::FIELDS,
        }
    }

    /// The spec of `key`, if it is a known key.
    pub fn field(self, key: &str) -> Option<&'static FieldSpec> {
        self.fields().iter().find(|f| f.key == key)
    }

    /// Checks that `value` has this record's shape, naming the first key at fault.
    pub fn check_shape(self, value: &Value) -> Result<(), RecordError> {
        match self {
            RecordKind::SsRecord => SsRecord::from_value(value).map(drop),
            RecordKind::SeRecord => SeRecord::from_value(value).map(drop),
            RecordKind::FsRecord => FsRecord::from_value(value).map(drop),
            RecordKind::FileRecord => FileRecord::from_value(value).map(drop),
            RecordKind::MountRecord => MountRecord::from_value(value).map(drop),
            RecordKind::AccessGrp => AccessGrp::from_value(value).map(drop),
            RecordKind::VolGroup => VolGroup::from_value(value).map(drop),
            RecordKind::QosVals => QosVals::from_value(value).map(drop),
            RecordKind::BackingDevice => BackingDevice::from_value(value).map(drop),
        }
    }
}

/// Why a dictionary is not a record of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a dictionary at all.
    #[error("{kind} is not a dictionary but {found}")]
    NotADict {
        /// The record kind expected.
        kind: &'static str,
        /// What was found, as short JSON.
        found: String,
    },
    /// A known key holds a value of the wrong type.
    #[error("{kind} key '{key}' has the value {found}, which is not {expected}")]
    BadValue {
        /// The record kind.
        kind: &'static str,
        /// The key.
        key: String,
        /// The value found, as short JSON.
        found: String,
        /// What the key must hold.
        expected: String,
    },
}

impl RecordError {
    /// The key at fault, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            RecordError::NotADict { .. } => None,
            RecordError::BadValue { key, .. } => Some(key),
        }
    }
}

fn classify(kind: &'static str, fields: &[(&'static str, String)], v: &Value) -> RecordError {
    // serde's own message does not name the key; find it by trying each known key alone.
    let Some(map) = v.as_object() else {
        return RecordError::NotADict {
            kind,
            found: crate::ability::short_json(v),
        };
    };
    for (key, expected) in fields {
        if let Some(val) = map.get(*key) {
            if !value_matches(expected.as_str(), val) {
                return RecordError::BadValue {
                    kind,
                    key: (*key).to_string(),
                    found: crate::ability::short_json(val),
                    expected: expected.clone(),
                };
            }
        }
    }
    RecordError::NotADict {
        kind,
        found: crate::ability::short_json(v),
    }
}

/// Whether `v` fits the type description used in the record tables (null always fits).
fn value_matches(expected: &str, v: &Value) -> bool {
    if v.is_null() {
        return true;
    }
    match expected {
        "a string" => v.is_string(),
        "an integer" => v.is_i64() || v.is_u64(),
        "a boolean" => v.is_boolean(),
        "a list of strings" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        "a list of access_grp dicts" => v
            .as_array()
            .is_some_and(|a| a.iter().all(|e| AccessGrp::from_value(e).is_ok())),
        "a list of vol_group dicts" => v
            .as_array()
            .is_some_and(|a| a.iter().all(|e| VolGroup::from_value(e).is_ok())),
        "a string or a list of strings" => {
            v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        }
        other => {
            // Enumerations: "one of A, B, C".
            if let Some(list) = other.strip_prefix("one of ") {
                v.as_str().is_some_and(|s| list.split(", ").any(|item| item == s))
            } else {
                true
            }
        }
    }
}

/// What a type looks like in messages.
pub trait WireType {
    /// For example "a string" or "one of ONLINE, OFFLINE".
    fn describe() -> String;
}

impl WireType for String {
    fn describe() -> String {
        "a string".into()
    }
}
impl WireType for i64 {
    fn describe() -> String {
        "an integer".into()
    }
}
impl WireType for bool {
    fn describe() -> String {
        "a boolean".into()
    }
}
impl WireType for Vec<String> {
    fn describe() -> String {
        "a list of strings".into()
    }
}
impl WireType for Vec<AccessGrp> {
    fn describe() -> String {
        "a list of access_grp dicts".into()
    }
}
impl WireType for Vec<VolGroup> {
    fn describe() -> String {
        "a list of vol_group dicts".into()
    }
}
impl WireType for Value {
    fn describe() -> String {
        "a string or a list of strings".into()
    }
}
macro_rules! enum_wire_type {
    ($($t:ty),*) => {$(
        impl WireType for $t {
            fn describe() -> String {
                let names: Vec<&str> = <$t>::ALL.iter().map(|v| v.as_str()).collect();
                format!("one of {}", names.join(", "))
            }
        }
    )*};
}
enum_wire_type!(SeType, SeState, FsState, FileType, StorageType);

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn str_in(list: &[&str], s: &str) -> bool {
    let mut i = 0;
    while i < list.len() {
        if str_eq(list[i], s) {
            return true;
        }
        i += 1;
    }
    false
}

macro_rules! record {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:expr, secrets: [$($secret:ident),*], {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = ($rule:ident, $opt:literal) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(default, skip_serializing_if = "Field::is_absent")]
                pub $field: Field<$ty>,
            )+
            /// Keys this type does not know; kept so they survive a round trip.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        impl $name {
            /// Keys holding secrets.
            pub const SECRET_KEYS: &'static [&'static str] = &[$(stringify!($secret)),*];

            /// The known keys, their "Allow update" rules and optionality.
            pub const FIELDS: &'static [FieldSpec] = &[
                $(FieldSpec {
                    key: stringify!($field),
                    rule: UpdateRule::$rule,
                    optional: $opt,
                    secret: str_in(Self::SECRET_KEYS, stringify!($field)),
                }),+
            ];

            /// The record kind.
            pub const KIND: RecordKind = $kind;

            /// Parses a dictionary, naming the key at fault.
            pub fn from_value(v: &Value) -> Result<Self, RecordError> {
                <$name as Deserialize>::deserialize(v).map_err(|_| {
                    classify(
                        $kind.as_str(),
                        &[$((stringify!($field), <$ty as WireType>::describe())),+],
                        v,
                    )
                })
            }

            /// The record as a dictionary.
            pub fn to_value(&self) -> Value {
                serde_json::to_value(self).unwrap_or(Value::Null)
            }

            /// A copy with every secret replaced, for logs and API output.
            pub fn redacted(&self) -> Self {
                #[allow(unused_mut)]
                let mut copy = self.clone();
                $(
                    if !copy.$secret.is_unset() {
                        copy.$secret = Field::Value(crate::REDACTED.to_string());
                    }
                )*
                copy
            }
        }

        impl fmt::Debug for $name {
            // Secrets never reach a log through Debug.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", stringify!($name), self.redacted().to_value())
            }
        }
    };
}

record!(
    /// `ss_record`: a storage server (array or file server).
    SsRecord, RecordKind::SsRecord, secrets: [passwd, admin_passwd], {
        /// User-friendly name.
        name: String = (OnlyIfEmpty, false),
        /// Set by the manager when the record is created.
        uuid: String = (OnlyIfEmpty, false),
        /// Opaque id for the plug-in's own use.
        storage_server_id: String = (Yes, true),
        /// `SANStorage` / `iSCSIStorage` (or a file system storage type).
        storage_type: String = (No, false),
        /// Host or address that serves the storage.
        access_host: String = (No, true),
        /// Port on `access_host`.
        access_port: String = (OnlyIfEmpty, true),
        /// User for logging in to the storage (CHAP user for iSCSI).
        username: String = (No, true),
        /// Password for `username` (CHAP secret for iSCSI).
        passwd: String = (No, true),
        /// The storage requires CHAP.
        chap: bool = (No, true),
        /// Host that administers the array.
        admin_host: String = (No, false),
        /// Administrator user.
        admin_user: String = (No, false),
        /// Administrator password.
        admin_passwd: String = (No, false),
        /// Network devices to reach `access_host` through.
        netdevs: Vec<String> = (No, true),
        /// Current status.
        status: String = (Yes, false),
        /// Total bytes, -1 if not applicable.
        total_sz: i64 = (Yes, true),
        /// Used bytes, -1 if not applicable.
        used_sz: i64 = (Yes, true),
        /// Free bytes, -1 if not applicable.
        free_sz: i64 = (Yes, true),
        /// Allocated bytes, -1 if not applicable.
        alloc_sz: i64 = (Yes, true),
        /// Access groups; changed only through the access-group calls' return values.
        access_grps: Vec<AccessGrp> = (No, false),
        /// Volume groups (pools).
        vol_groups: Vec<VolGroup> = (Yes, true),
        /// Controller name, for plug-ins that need one.
        storage_name: String = (No, true),
        /// Identifiers, e.g. iSCSI target names.
        storage_id: Vec<String> = (Yes, true),
        /// Description of the array.
        storage_desc: String = (Yes, false),
        /// Opaque settings for the plug-in.
        extra_info: String = (No, true),
    }
);

record!(
    /// `access_grp`: who may see an element.
    AccessGrp, RecordKind::AccessGrp, secrets: [], {
        /// Group name.
        grp_name: String = (Yes, false),
        /// WWNs, initiator IQNs or host names.
        grp_entries: Vec<String> = (Yes, false),
        /// Modes, e.g. NFS export options.
        grp_modes: Vec<String> = (Yes, true),
    }
);

record!(
    /// `vol_group`: a pool elements are carved from.
    VolGroup, RecordKind::VolGroup, secrets: [], {
        /// Name.
        vol_name: String = (Yes, false),
        /// Total bytes.
        vol_total_sz: i64 = (Yes, false),
        /// Used bytes.
        vol_used_sz: i64 = (Yes, false),
        /// Free bytes.
        vol_free_sz: i64 = (Yes, false),
        /// Allocated bytes.
        vol_alloc_sz: i64 = (Yes, true),
        /// Description.
        vol_desc: String = (Yes, true),
    }
);

record!(
    /// `qos_vals`: one service level.
    QosVals, RecordKind::QosVals, secrets: [], {
        /// 0 is the highest.
        priority: i64 = (Yes, false),
        /// The array's name for it; what `qos` parameters carry.
        value: String = (Yes, false),
        /// Description.
        description: String = (Yes, true),
    }
);

record!(
    /// `se_record`: a storage element (LUN, snapshot, clone).
    SeRecord, RecordKind::SeRecord, secrets: [], {
        /// Always set.
        se_type: SeType = (Yes, false),
        /// The owning storage server's uuid.
        ss_uuid: String = (OnlyIfEmpty, false),
        /// User-friendly name.
        name: String = (OnlyIfEmpty, false),
        /// The element's uuid.
        uuid: String = (Yes, false),
        /// SCSI page 83 id, formatted by `make_mp_page83_from_raw_page83`.
        page83_id: String = (Yes, false),
        /// Plug-in's own id.
        id: String = (Yes, true),
        /// SCSI INQUIRY vendor.
        vendor: String = (Yes, true),
        /// SCSI INQUIRY product.
        product_id: String = (Yes, true),
        /// Local device paths.
        path: Vec<String> = (Yes, true),
        /// Path on the array.
        array_path: String = (Yes, true),
        /// Bytes.
        size: i64 = (Yes, false),
        /// Status.
        status: String = (Yes, false),
        /// Pool.
        vol_group_name: String = (Yes, true),
        /// Groups the element is, or should be, presented to.
        access_grp_names: Vec<String> = (Yes, false),
        /// QoS value.
        qos: String = (Yes, true),
        /// State.
        state: SeState = (Yes, false),
        /// Transient handle of an asynchronous operation.
        async_handle: String = (Yes, true),
        /// Transient progress: -1, 0..100, or null when done.
        async_progress: i64 = (Yes, true),
        /// Opaque settings for the plug-in.
        extra_info: String = (No, true),
    }
);

record!(
    /// `fs_record`: a file system.
    FsRecord, RecordKind::FsRecord, secrets: [], {
        /// e.g. `server:/export`.
        access_path: String = (Yes, true),
        /// The owning storage server's uuid.
        ss_uuid: String = (OnlyIfEmpty, false),
        /// User-friendly name.
        name: String = (OnlyIfEmpty, false),
        /// Default mount options.
        mount_options: Vec<String> = (Yes, false),
        /// Export options on the server.
        export_opts: Vec<String> = (Yes, false),
        /// Path on the server.
        array_path: String = (Yes, true),
        /// uuid.
        uuid: String = (Yes, false),
        /// Bytes.
        size: i64 = (Yes, false),
        /// Free bytes.
        free_sz: i64 = (Yes, false),
        /// Status.
        status: String = (Yes, false),
        /// State.
        state: FsState = (Yes, false),
        /// Groups it is exported to.
        access_grp_names: Vec<String> = (Yes, true),
        /// QoS value.
        qos: String = (Yes, true),
        /// One device, a list, or a backing_device `value`.
        backing_device: Value = (No, true),
        /// Transient handle.
        async_handle: String = (Yes, true),
        /// Transient progress.
        async_progress: i64 = (Yes, true),
        /// Opaque settings.
        extra_info: String = (No, true),
    }
);

record!(
    /// `file_record`: a file in a file system.
    FileRecord, RecordKind::FileRecord, secrets: [], {
        /// Always set.
        fr_type: FileType = (Yes, false),
        /// Path, possibly relative to the mount.
        file_path: String = (Yes, false),
        /// Bytes allocated on disk.
        ondisk_sz: i64 = (Yes, true),
        /// Apparent size.
        file_sz: i64 = (Yes, false),
        /// The owning file system's uuid.
        fs_uuid: String = (OnlyIfEmpty, false),
        /// Regular expression for listings.
        name_pattern: String = (Yes, true),
        /// Bytes shared with other files.
        shared_sz: i64 = (Yes, true),
        /// Snapshot name.
        snap_name: String = (Yes, true),
        /// Symlink target.
        dest_path: String = (Yes, true),
        /// Transient handle.
        async_handle: String = (Yes, true),
        /// Transient progress.
        async_progress: i64 = (Yes, true),
        /// Opaque settings.
        extra_info: String = (No, true),
    }
);

record!(
    /// `mount_record`: a file system mounted somewhere.
    MountRecord, RecordKind::MountRecord, secrets: [], {
        /// uuid.
        uuid: String = (OnlyIfEmpty, false),
        /// The file system's uuid.
        fs_uuid: String = (OnlyIfEmpty, false),
        /// Absolute mount point.
        mount_point: String = (Yes, false),
        /// Mount options in use.
        options: Vec<String> = (Yes, false),
        /// Appended to the export path.
        share_path: String = (Yes, true),
        /// Status.
        status: String = (Yes, false),
        /// Opaque settings.
        extra_info: String = (No, true),
    }
);

record!(
    /// `backing_device`: what a non-block file system can be built on.
    BackingDevice, RecordKind::BackingDevice, secrets: [], {
        /// Name.
        name: String = (Yes, false),
        /// Total bytes.
        total_sz: i64 = (Yes, false),
        /// Free bytes.
        free_sz: i64 = (Yes, false),
        /// What the server needs to identify it.
        value: String = (Yes, false),
        /// Description.
        description: String = (Yes, true),
    }
);

impl SsRecord {
    /// The storage type, if it is one a Storage Array plug-in serves.
    pub fn storage_type_enum(&self) -> Option<StorageType> {
        self.storage_type.value().and_then(|s| StorageType::parse(s))
    }

    /// The uuid, or "" when unset.
    pub fn uuid_str(&self) -> &str {
        self.uuid.value().map(String::as_str).unwrap_or("")
    }
}

/// Redacts secrets inside a JSON value that may be (or contain) an ss_record.
pub fn redact_value(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, val)| {
                    let secret = crate::is_secret_key(k);
                    let val = if secret && !val.is_null() {
                        Value::String(crate::REDACTED.into())
                    } else {
                        redact_value(val)
                    };
                    (k.clone(), val)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact_value).collect()),
        other => other.clone(),
    }
}
