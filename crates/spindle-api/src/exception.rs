//! The closed set of exceptions a plug-in may raise.
//!
//! Plug-ins cannot add kinds: anything a plug-in raises is mapped onto [`ExceptionKind`], and an
//! unknown name is itself a contract violation (see `spindle-manager`).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! exception_kinds {
    ($($(#[$m:meta])* $variant:ident),+ $(,)?) => {
        /// Every exception class of the guides. `IPluginException` is the base class: a plug-in
        /// never raises it directly, but it is representable so that doing so can be reported.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum ExceptionKind {
            $($(#[$m])* $variant),+
        }

        impl ExceptionKind {
            /// Every kind, base first.
            pub const ALL: &'static [ExceptionKind] = &[$(ExceptionKind::$variant),+];

            /// The class name, as plug-ins spell it.
            pub fn as_str(self) -> &'static str {
                match self { $(ExceptionKind::$variant => stringify!($variant)),+ }
            }

            /// Parses a class name; `None` for a name outside the guides.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $(stringify!($variant) => Some(ExceptionKind::$variant),)+ _ => None }
            }
        }
    };
}

exception_kinds!(
    /// Base class; never raised directly.
    IPluginException,
    /// The plug-in or the array does not support the operation.
    NoSuchOperationEx,
    /// Last resort, with a descriptive message.
    OperationFailedEx,
    /// A key a record must carry is missing (carries the key).
    MissingKeyEx,
    /// A key's value is malformed (carries the key).
    ValueFormatEx,
    /// The feature is not licensed on the array.
    StorageArrayLicenseEx,
    /// iSCSI target discovery failed.
    TargetDiscoveryEx,
    /// iSCSI login failed.
    LoginFailedEx,
    /// iSCSI logout failed.
    LogoutFailedEx,
    /// The SCSI bus could not be refreshed.
    RefreshFailedEx,
    /// Listing or updating storage elements failed.
    ListFailedEx,
    /// A snapshot could not be created.
    CreateSnapFailedEx,
    /// Snapshots could not be listed.
    ListSnapFailedEx,
    /// Rolling back would affect more than the element asked for.
    SnapRestoreNotSafeEx,
    /// A clone could not be created.
    CloneFailedEx,
    /// The storage server record failed validation (validate only).
    InvalidStorageArrayEx,
    /// A value in a record is invalid.
    InvalidValueEx,
    /// The operation is impossible while the element is online or mapped.
    StorageElementBusyEx,
    /// The array refused the operation.
    PermissionDeniedEx,
    /// A prerequisite of the operation is not met.
    OperationPreReqNotMetEx,
    /// The plug-in needs `storage_name` (validate only).
    StorageNameRequiredEx,
    /// The file system type is not valid for the plug-in (validate only).
    InvalidFSTypeEx,
    /// The operation is impossible while the file system is online or mounted.
    FileSystemBusyEx,
    /// The file system is already mounted.
    FileSystemAlreadyMountedEx,
);

impl ExceptionKind {
    /// Kinds only `validate` may raise.
    pub fn is_validate_only(self) -> bool {
        matches!(
            self,
            ExceptionKind::InvalidStorageArrayEx
                | ExceptionKind::StorageNameRequiredEx
                | ExceptionKind::InvalidFSTypeEx
        )
    }

    /// Kinds constructed with a message and a key.
    pub fn takes_key(self) -> bool {
        matches!(self, ExceptionKind::MissingKeyEx | ExceptionKind::ValueFormatEx)
    }
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exception raised by a plug-in (or by the manager on a plug-in's behalf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}{}", key.as_ref().map(|k| format!(" (key: {k})")).unwrap_or_default())]
pub struct PluginException {
    /// The exception class.
    #[serde(rename = "exception")]
    pub kind: ExceptionKind,
    /// What went wrong, for a person.
    pub message: String,
    /// The offending key, for `MissingKeyEx` and `ValueFormatEx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl PluginException {
    /// An exception of `kind` with `message`.
    pub fn new(kind: ExceptionKind, message: impl Into<String>) -> Self {
        PluginException {
            kind,
            message: message.into(),
            key: None,
        }
    }

    /// `MissingKeyEx` for `key`.
    pub fn missing_key(key: impl Into<String>, message: impl Into<String>) -> Self {
        PluginException {
            kind: ExceptionKind::MissingKeyEx,
            message: message.into(),
            key: Some(key.into()),
        }
    }

    /// `ValueFormatEx` for `key`.
    pub fn value_format(key: impl Into<String>, message: impl Into<String>) -> Self {
        PluginException {
            kind: ExceptionKind::ValueFormatEx,
            message: message.into(),
            key: Some(key.into()),
        }
    }

    /// `InvalidValueEx`.
    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(ExceptionKind::InvalidValueEx, message)
    }

    /// `NoSuchOperationEx`.
    pub fn no_such_operation(message: impl Into<String>) -> Self {
        Self::new(ExceptionKind::NoSuchOperationEx, message)
    }

    /// `OperationFailedEx`.
    pub fn operation_failed(message: impl Into<String>) -> Self {
        Self::new(ExceptionKind::OperationFailedEx, message)
    }

    /// `StorageElementBusyEx`.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(ExceptionKind::StorageElementBusyEx, message)
    }
}

/// What every plug-in method returns.
pub type PluginResult<T> = Result<T, PluginException>;
