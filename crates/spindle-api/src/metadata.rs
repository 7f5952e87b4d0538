//! A plug-in's class variables, validated.

use crate::ability::{Abilities, AbilityError};
use crate::enums::StorageType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// `plugin_version`: `Major.Minor.Patch-Release`, each a decimal number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PluginVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
    /// Package release.
    pub release: u32,
}

impl PluginVersion {
    /// Parses `Major.Minor.Patch-Release`.
    pub fn parse(s: &str) -> Result<Self, MetadataError> {
        let bad = || MetadataError::Version(s.to_string());
        let (mmp, release) = s.split_once('-').ok_or_else(bad)?;
        let parts: Vec<&str> = mmp.split('.').collect();
        let num = |p: &str| -> Result<u32, MetadataError> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        match parts.as_slice() {
            [a, b, c] => Ok(PluginVersion {
                major: num(a)?,
                minor: num(b)?,
                patch: num(c)?,
                release: num(release)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PluginVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}-{}", self.major, self.minor, self.patch, self.release)
    }
}

impl TryFrom<String> for PluginVersion {
    type Error = MetadataError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PluginVersion::parse(&s)
    }
}

impl From<PluginVersion> for String {
    fn from(v: PluginVersion) -> String {
        v.to_string()
    }
}

/// Which API a plug-in class implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// `IStorageArrayPlugin` (declared in `osc_isa_plugins`).
    StorageArray,
    /// `IFileSystemPlugin` (declared in `osc_ifs_plugins`).
    FileSystem,
}

/// The class variables of a Storage Array plug-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginMetadata {
    /// Shown to the user.
    pub plugin_name: String,
    /// The vendor.
    pub vendor_name: String,
    /// The version; equal for every class of one module.
    pub plugin_version: PluginVersion,
    /// Shown when an array is configured.
    pub plugin_desc: String,
    /// How to fill `ss_record.extra_info`, if the plug-in reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ss_extra_info_help: Option<String>,
    /// How to fill `se_record.extra_info`, if the plug-in reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se_extra_info_help: Option<String>,
    /// Non-empty subset of SAN / iSCSI, without repeats.
    pub storage_types: Vec<StorageType>,
    /// What the plug-in can do.
    pub plugin_ability: Abilities,
}

/// Why a plug-in's class variables are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `plugin_version` is not `Major.Minor.Patch-Release`.
    #[error("plugin_version '{0}' is not of the form Major.Minor.Patch-Release (for example 1.0.1-1)")]
    Version(String),
    /// A required class variable is missing or not a string.
    #[error("class variable '{0}' is missing or is not a string")]
    MissingString(&'static str),
    /// A text class variable is empty.
    #[error("class variable '{0}' is empty")]
    Empty(&'static str),
    /// `storage_types` is empty.
    #[error("storage_types is empty; it must name SANStorage, iSCSIStorage or both")]
    NoStorageTypes,
    /// `storage_types` names something else.
    #[error("storage_types holds {0}, which is neither SANStorage nor iSCSIStorage")]
    BadStorageType(String),
    /// `storage_types` names a type twice.
    #[error("storage_types names {0} twice")]
    RepeatedStorageType(String),
    /// `plugin_ability` is not a legal ability dict.
    #[error("plugin_ability: {0}")]
    Ability(#[from] AbilityError),
    /// A help text is not a string.
    #[error("class variable '{0}' must be a string when set")]
    BadHelp(&'static str),
}

impl PluginMetadata {
    /// Validates class variables given as a JSON dictionary (the way out-of-process plug-ins
    /// report them), naming the first variable at fault.
    pub fn from_value(v: &Value) -> Result<Self, MetadataError> {
        let text = |k: &'static str| -> Result<String, MetadataError> {
            let s = v
                .get(k)
                .and_then(Value::as_str)
                .ok_or(MetadataError::MissingString(k))?;
            if s.trim().is_empty() {
                return Err(MetadataError::Empty(k));
            }
            Ok(s.to_string())
        };
        let help = |k: &'static str| -> Result<Option<String>, MetadataError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(MetadataError::BadHelp(k)),
            }
        };
        let plugin_version = PluginVersion::parse(&text("plugin_version")?)?;
        let types = v
            .get("storage_types")
            .and_then(Value::as_array)
            .ok_or(MetadataError::NoStorageTypes)?;
        let mut storage_types = Vec::new();
        for t in types {
            let st = t
                .as_str()
                .and_then(StorageType::parse)
                .ok_or_else(|| MetadataError::BadStorageType(t.to_string()))?;
            if storage_types.contains(&st) {
                return Err(MetadataError::RepeatedStorageType(st.to_string()));
            }
            storage_types.push(st);
        }
        if storage_types.is_empty() {
            return Err(MetadataError::NoStorageTypes);
        }
        let plugin_ability = Abilities::from_value(v.get("plugin_ability").unwrap_or(&Value::Null))?;
        Ok(PluginMetadata {
            plugin_name: text("plugin_name")?,
            vendor_name: text("vendor_name")?,
            plugin_version,
            plugin_desc: text("plugin_desc")?,
            ss_extra_info_help: help("ss_extra_info_help")?,
            se_extra_info_help: help("se_extra_info_help")?,
            storage_types,
            plugin_ability,
        })
    }

    /// The class variables as a JSON dictionary.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// True if the plug-in serves `t`.
    pub fn serves(&self, t: StorageType) -> bool {
        self.storage_types.contains(&t)
    }
}

/// A plug-in's identity: its fully qualified class name and its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PluginId {
    /// Fully qualified class name, e.g. `acme.fastarray.Array.FastArray`.
    pub class: String,
    /// The version.
    pub version: PluginVersion,
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.class, self.version)
    }
}

impl PluginId {
    /// Parses `class` or `class@version` (the version part is then checked).
    pub fn parse_ref(s: &str) -> Result<(String, Option<PluginVersion>), MetadataError> {
        match s.split_once('@') {
            Some((c, v)) => Ok((c.to_string(), Some(PluginVersion::parse(v)?))),
            None => Ok((s.to_string(), None)),
        }
    }
}
