//! spindle's rendering of the storage plug-in API: the guides' vocabulary as Rust types.
//!
//! This crate is pure — no I/O, no async runtime — so that the manager, every transport, every
//! plug-in and the conformance kit share one definition of records, enumerations, exceptions,
//! abilities, plug-in metadata, the plug-in trait and the method table.
//!
//! Invariants kept here:
//! - a record survives a JSON round trip unchanged, unknown keys included, and absent / `null`
//!   / a value stay distinguishable;
//! - an ability dict that passes [`Abilities::from_value`] has all 16 keys with legal values;
//! - the exception kinds are a closed set;
//! - [`METHODS`] is the only list of methods, parameters and defaults.

pub mod ability;
pub mod dispatch;
pub mod enums;
pub mod exception;
pub mod field;
pub mod metadata;
pub mod methods;
pub mod names;
pub mod page83;
pub mod plugin;
pub mod records;
pub mod units;
pub mod update_rules;

pub use ability::{Abilities, AbilityError, Flag, FlagKey, MaxEntries, OpAbility, OpKey, ABILITY_KEYS};
pub use dispatch::{dispatch, Args};
pub use enums::{
    AbilityType, BackingDeviceType, FileType, FsState, FsStorageType, SeState, SeType, StorageType,
};
pub use exception::{ExceptionKind, PluginException, PluginResult};
pub use field::Field;
pub use metadata::{MetadataError, PluginId, PluginKind, PluginMetadata, PluginVersion};
pub use methods::{Method, MethodSpec, ParamDefault, ParamKind, ParamSpec, Requirement, ReturnKind, METHODS};
pub use page83::{make_mp_page83_from_raw_page83, Page83Error};
pub use plugin::{Host, Info, LogLevel, StorageArrayPlugin, DEFAULT_CACHE_EXPIRY_SECS};
pub use records::{
    redact_value, AccessGrp, BackingDevice, FieldSpec, FileRecord, FsRecord, MountRecord, QosVals,
    RecordError, RecordKind, SeRecord, SsRecord, UpdateRule, VolGroup,
};
pub use update_rules::{check_update, repair_update, ChangeKind, UpdateViolation};

/// What a secret is replaced with wherever it would be shown.
pub const REDACTED: &str = "********";

/// Keys whose values are secrets wherever they appear.
pub fn is_secret_key(key: &str) -> bool {
    matches!(
        key,
        "passwd" | "admin_passwd" | "password" | "chap_secret" | "secret" | "token"
    )
}
