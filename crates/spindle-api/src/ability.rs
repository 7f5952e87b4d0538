//! The ability dict: the class variable `plugin_ability` and what `getCapabilities` returns.
//!
//! The types make illegal dicts unrepresentable: an operation key holds only
//! ONLINE / OFFLINE / UNSUPPORTED, a flag key only YES / NO, and `INVALID` (a placeholder)
//! is never accepted.

use crate::enums::AbilityType;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The value of an operation key (`snapshot`, `clone`, `resize`, `splitclone`, `snapclone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpAbility {
    /// Works while the element is in use.
    #[serde(rename = "ONLINE")]
    Online,
    /// Works only while the element is offline.
    #[serde(rename = "OFFLINE")]
    Offline,
    /// Not available.
    #[serde(rename = "UNSUPPORTED")]
    Unsupported,
}

impl OpAbility {
    /// True unless UNSUPPORTED.
    pub fn is_supported(self) -> bool {
        !matches!(self, OpAbility::Unsupported)
    }

    fn from_type(t: AbilityType) -> Option<Self> {
        match t {
            AbilityType::Online => Some(OpAbility::Online),
            AbilityType::Offline => Some(OpAbility::Offline),
            AbilityType::Unsupported => Some(OpAbility::Unsupported),
            _ => None,
        }
    }
}

/// The value of a flag key (`*_is_sync`, `custom_*_name`, `access_control`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Flag {
    /// The plug-in or array has the feature.
    #[serde(rename = "YES")]
    Yes,
    /// It does not.
    #[serde(rename = "NO")]
    No,
}

impl Flag {
    /// True for YES.
    pub fn is_yes(self) -> bool {
        matches!(self, Flag::Yes)
    }

    fn from_type(t: AbilityType) -> Option<Self> {
        match t {
            AbilityType::Yes => Some(Flag::Yes),
            AbilityType::No => Some(Flag::No),
            _ => None,
        }
    }
}

impl From<bool> for Flag {
    fn from(b: bool) -> Self {
        if b {
            Flag::Yes
        } else {
            Flag::No
        }
    }
}

/// An operation whose ability is an [`OpAbility`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKey {
    /// `snapshot`
    Snapshot,
    /// `clone`
    Clone,
    /// `resize`
    Resize,
    /// `splitclone`
    SplitClone,
    /// `snapclone`
    SnapClone,
}

impl OpKey {
    /// The dict key.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKey::Snapshot => "snapshot",
            OpKey::Clone => "clone",
            OpKey::Resize => "resize",
            OpKey::SplitClone => "splitclone",
            OpKey::SnapClone => "snapclone",
        }
    }

    /// The `*_is_sync` flag that says whether this operation is always synchronous.
    pub fn sync_key(self) -> FlagKey {
        match self {
            OpKey::Snapshot => FlagKey::SnapIsSync,
            OpKey::Clone => FlagKey::CloneIsSync,
            OpKey::Resize => FlagKey::ResizeIsSync,
            OpKey::SplitClone => FlagKey::SplitcloneIsSync,
            OpKey::SnapClone => FlagKey::SnapcloneIsSync,
        }
    }
}

/// A key whose ability is a [`Flag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagKey {
    /// `custom_snap_name`
    CustomSnapName,
    /// `snap_is_sync`
    SnapIsSync,
    /// `custom_clone_name`
    CustomCloneName,
    /// `clone_is_sync`
    CloneIsSync,
    /// `resize_is_sync`
    ResizeIsSync,
    /// `splitclone_is_sync`
    SplitcloneIsSync,
    /// `splitclone_while_open`
    SplitcloneWhileOpen,
    /// `snapclone_is_sync`
    SnapcloneIsSync,
    /// `require_storage_name`
    RequireStorageName,
    /// `access_control`
    AccessControl,
}

impl FlagKey {
    /// The dict key.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKey::CustomSnapName => "custom_snap_name",
            FlagKey::SnapIsSync => "snap_is_sync",
            FlagKey::CustomCloneName => "custom_clone_name",
            FlagKey::CloneIsSync => "clone_is_sync",
            FlagKey::ResizeIsSync => "resize_is_sync",
            FlagKey::SplitcloneIsSync => "splitclone_is_sync",
            FlagKey::SplitcloneWhileOpen => "splitclone_while_open",
            FlagKey::SnapcloneIsSync => "snapclone_is_sync",
            FlagKey::RequireStorageName => "require_storage_name",
            FlagKey::AccessControl => "access_control",
        }
    }
}

/// The 16 keys, in the guides' order.
pub const ABILITY_KEYS: [&str; 16] = [
    "snapshot",
    "custom_snap_name",
    "snap_is_sync",
    "clone",
    "custom_clone_name",
    "clone_is_sync",
    "resize",
    "resize_is_sync",
    "splitclone",
    "splitclone_is_sync",
    "splitclone_while_open",
    "snapclone",
    "snapclone_is_sync",
    "require_storage_name",
    "access_control",
    "max_access_entries",
];

/// `max_access_entries`: a bound on entries per access group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxEntries {
    /// `-1`
    Unlimited,
    /// At most this many.
    Limited(u32),
}

impl MaxEntries {
    /// True if `n` entries fit.
    pub fn allows(self, n: usize) -> bool {
        match self {
            MaxEntries::Unlimited => true,
            MaxEntries::Limited(m) => n <= m as usize,
        }
    }

    /// The wire number.
    pub fn as_i64(self) -> i64 {
        match self {
            MaxEntries::Unlimited => -1,
            MaxEntries::Limited(m) => i64::from(m),
        }
    }
}

impl Serialize for MaxEntries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.as_i64())
    }
}

/// A complete, legal ability dict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Abilities {
    /// Snapshots.
    pub snapshot: OpAbility,
    /// A snapshot's name may be chosen.
    pub custom_snap_name: Flag,
    /// Snapshots are always synchronous.
    pub snap_is_sync: Flag,
    /// Direct (thin) clones.
    pub clone: OpAbility,
    /// A clone's name may be chosen.
    pub custom_clone_name: Flag,
    /// Clones are always synchronous.
    pub clone_is_sync: Flag,
    /// Resizing.
    pub resize: OpAbility,
    /// Resizes are always synchronous.
    pub resize_is_sync: Flag,
    /// Splitting a clone from its parent.
    pub splitclone: OpAbility,
    /// Splits are always synchronous.
    pub splitclone_is_sync: Flag,
    /// A clone may be split while in use.
    pub splitclone_while_open: Flag,
    /// Clones of snapshots.
    pub snapclone: OpAbility,
    /// Clones of snapshots are always synchronous.
    pub snapclone_is_sync: Flag,
    /// The plug-in needs `storage_name`.
    pub require_storage_name: Flag,
    /// Access groups control who sees an element.
    pub access_control: Flag,
    /// Entries per access group.
    pub max_access_entries: MaxEntries,
}

/// Why a dict is not a legal ability dict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbilityError {
    /// The value is not a dictionary.
    #[error("the ability dict is not a dictionary but {0}")]
    NotADict(String),
    /// A key is missing.
    #[error("ability key '{0}' is missing")]
    Missing(&'static str),
    /// A value is not legal for its key.
    #[error("ability key '{key}' has the value {value}, but it must be one of {allowed}")]
    Illegal {
        /// The key.
        key: &'static str,
        /// The value found, as JSON.
        value: String,
        /// The legal values.
        allowed: &'static str,
    },
    /// A key the guides do not define.
    #[error("ability key '{0}' is not one of the 16 keys the guides define{hint}", hint = did_you_mean(.0))]
    Unknown(String),
}

/// " (did you mean 'snap_is_sync'?)" when `key` is a near miss of one of the 16 keys (at most
/// two edits, or the same letters in another case), else "".
fn did_you_mean(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    ABILITY_KEYS
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl AbilityError {
    /// The key concerned, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            AbilityError::NotADict(_) => None,
            AbilityError::Missing(k) => Some(k),
            AbilityError::Illegal { key, .. } => Some(key),
            AbilityError::Unknown(k) => Some(k),
        }
    }
}

impl Abilities {
    /// The operation ability for `key`.
    pub fn op(&self, key: OpKey) -> OpAbility {
        match key {
            OpKey::Snapshot => self.snapshot,
            OpKey::Clone => self.clone,
            OpKey::Resize => self.resize,
            OpKey::SplitClone => self.splitclone,
            OpKey::SnapClone => self.snapclone,
        }
    }

    /// The flag for `key`.
    pub fn flag(&self, key: FlagKey) -> Flag {
        match key {
            FlagKey::CustomSnapName => self.custom_snap_name,
            FlagKey::SnapIsSync => self.snap_is_sync,
            FlagKey::CustomCloneName => self.custom_clone_name,
            FlagKey::CloneIsSync => self.clone_is_sync,
            FlagKey::ResizeIsSync => self.resize_is_sync,
            FlagKey::SplitcloneIsSync => self.splitclone_is_sync,
            FlagKey::SplitcloneWhileOpen => self.splitclone_while_open,
            FlagKey::SnapcloneIsSync => self.snapclone_is_sync,
            FlagKey::RequireStorageName => self.require_storage_name,
            FlagKey::AccessControl => self.access_control,
        }
    }

    /// True when some supported operation may finish asynchronously, so that
    /// `getAsyncProgress` is required.
    pub fn any_async(&self) -> bool {
        [
            OpKey::Snapshot,
            OpKey::Clone,
            OpKey::Resize,
            OpKey::SplitClone,
            OpKey::SnapClone,
        ]
        .iter()
        .any(|&k| self.op(k).is_supported() && !self.flag(k.sync_key()).is_yes())
    }

    /// Parses a dict, naming the first key at fault. Unknown keys are an error.
    pub fn from_value(v: &Value) -> Result<Self, AbilityError> {
        let map = v
            .as_object()
            .ok_or_else(|| AbilityError::NotADict(short_json(v)))?;
        if let Some(k) = map.keys().find(|k| !ABILITY_KEYS.contains(&k.as_str())) {
            return Err(AbilityError::Unknown(k.clone()));
        }
        let op = |key: &'static str| -> Result<OpAbility, AbilityError> {
            let raw = map.get(key).ok_or(AbilityError::Missing(key))?;
            raw.as_str()
                .and_then(AbilityType::parse)
                .and_then(OpAbility::from_type)
                .ok_or_else(|| AbilityError::Illegal {
                    key,
                    value: short_json(raw),
                    allowed: "ONLINE, OFFLINE, UNSUPPORTED",
                })
        };
        let flag = |key: &'static str| -> Result<Flag, AbilityError> {
            let raw = map.get(key).ok_or(AbilityError::Missing(key))?;
            raw.as_str()
                .and_then(AbilityType::parse)
                .and_then(Flag::from_type)
                .ok_or_else(|| AbilityError::Illegal {
                    key,
                    value: short_json(raw),
                    allowed: "YES, NO",
                })
        };
        let raw_max = map
            .get("max_access_entries")
            .ok_or(AbilityError::Missing("max_access_entries"))?;
        let max_access_entries = match raw_max.as_i64() {
            Some(-1) => MaxEntries::Unlimited,
            Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => MaxEntries::Limited(n as u32),
            _ => {
                return Err(AbilityError::Illegal {
                    key: "max_access_entries",
                    value: short_json(raw_max),
                    allowed: "-1 (unlimited) or a count of 0 or more",
                })
            }
        };
        Ok(Abilities {
            snapshot: op("snapshot")?,
            custom_snap_name: flag("custom_snap_name")?,
            snap_is_sync: flag("snap_is_sync")?,
            clone: op("clone")?,
            custom_clone_name: flag("custom_clone_name")?,
            clone_is_sync: flag("clone_is_sync")?,
            resize: op("resize")?,
            resize_is_sync: flag("resize_is_sync")?,
            splitclone: op("splitclone")?,
            splitclone_is_sync: flag("splitclone_is_sync")?,
            splitclone_while_open: flag("splitclone_while_open")?,
            snapclone: op("snapclone")?,
            snapclone_is_sync: flag("snapclone_is_sync")?,
            require_storage_name: flag("require_storage_name")?,
            access_control: flag("access_control")?,
            max_access_entries,
        })
    }

    /// The dict as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// An array that can do nothing optional.
    pub fn none() -> Self {
        Abilities {
            snapshot: OpAbility::Unsupported,
            custom_snap_name: Flag::No,
            snap_is_sync: Flag::Yes,
            clone: OpAbility::Unsupported,
            custom_clone_name: Flag::No,
            clone_is_sync: Flag::Yes,
            resize: OpAbility::Unsupported,
            resize_is_sync: Flag::Yes,
            splitclone: OpAbility::Unsupported,
            splitclone_is_sync: Flag::Yes,
            splitclone_while_open: Flag::No,
            snapclone: OpAbility::Unsupported,
            snapclone_is_sync: Flag::Yes,
            require_storage_name: Flag::No,
            access_control: Flag::No,
            max_access_entries: MaxEntries::Unlimited,
        }
    }
}

impl<'de> Deserialize<'de> for Abilities {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Abilities::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Abilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

/// A JSON value shortened for messages.
pub(crate) fn short_json(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}
