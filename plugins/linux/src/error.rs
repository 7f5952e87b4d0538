//! The crate's one error type, and how each error becomes one of the guides' exceptions.

use spindle_api::{ExceptionKind, PluginException};
use std::io;
use std::path::Path;

/// Everything the engine and the array-side program can fail with.
///
/// Every message names the field and the value at fault where there is one; no message ever
/// carries a CHAP secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value is malformed (`ValueFormatEx`, naming the key).
    #[error("{message}")]
    ValueFormat {
        /// The request or record key at fault.
        key: String,
        /// What is wrong, naming key and value.
        message: String,
    },
    /// A required value is missing (`MissingKeyEx`, naming the key).
    #[error("{message}")]
    MissingKey {
        /// The key that is missing.
        key: String,
        /// What is missing.
        message: String,
    },
    /// A well-formed value names nothing usable: an unknown pool, group or element, a size
    /// beyond free space (`InvalidValueEx`).
    #[error("{0}")]
    InvalidValue(String),
    /// The element is presented, online, being split or depended upon (`StorageElementBusyEx`).
    #[error("{0}")]
    Busy(String),
    /// The array cannot do this, e.g. no reflink on the pool's file system
    /// (`NoSuchOperationEx`).
    #[error("{0}")]
    NoSuchOperation(String),
    /// A roll-back would change more than the element asked for (`SnapRestoreNotSafeEx`).
    #[error("{0}")]
    RestoreNotSafe(String),
    /// The configuration or the array itself is unusable; `InvalidStorageArrayEx` from
    /// `validate`, `ValueFormatEx` on `config` anywhere else.
    #[error("{0}")]
    InvalidArray(String),
    /// The array's storage cannot be used now: a pool directory is missing (its file system
    /// not mounted, say) or the state database went away; `InvalidStorageArrayEx` from
    /// `validate`, the request's failure anywhere else (nothing is wrong with the values).
    #[error("{0}")]
    Unavailable(String),
    /// A file-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// The state database failed.
    #[error("state database: {context}: {source}")]
    Db {
        /// What was being done.
        context: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A prerequisite is not met, e.g. not enough free space for a split
    /// (`OperationPreReqNotMetEx`).
    #[error("{0}")]
    PreReq(String),
    /// A helper program (`btrfs`) failed.
    #[error("{0}")]
    Command(String),
    /// Anything else that went wrong (`OperationFailedEx`).
    #[error("{0}")]
    Failed(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// `ValueFormatEx` for `key`.
    pub fn format(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::ValueFormat {
            key: key.into(),
            message: message.into(),
        }
    }

    /// `MissingKeyEx` for `key`.
    pub fn missing(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::MissingKey {
            key: key.into(),
            message: message.into(),
        }
    }

    /// An I/O error on `path` while doing `what`.
    pub fn io(what: &str, path: &Path, source: io::Error) -> Self {
        Error::Io {
            context: format!("{what} {}", path.display()),
            source,
        }
    }

    /// A database error while doing `what`.
    pub fn db(what: &str, source: rusqlite::Error) -> Self {
        Error::Db {
            context: what.to_string(),
            source,
        }
    }

    /// The exception this error is raised as. `failure` is the kind used for failures of the
    /// operation itself (I/O, database, helper programs): `CreateSnapFailedEx` for snapshots,
    /// `CloneFailedEx` for clones, `ListFailedEx` for listings, `OperationFailedEx` otherwise.
    pub fn to_exception(&self, failure: ExceptionKind) -> PluginException {
        let message = self.to_string();
        match self {
            Error::ValueFormat { key, .. } => PluginException::value_format(key.clone(), message),
            Error::MissingKey { key, .. } => PluginException::missing_key(key.clone(), message),
            Error::InvalidValue(_) => PluginException::new(ExceptionKind::InvalidValueEx, message),
            Error::Busy(_) => PluginException::new(ExceptionKind::StorageElementBusyEx, message),
            Error::NoSuchOperation(_) => PluginException::new(ExceptionKind::NoSuchOperationEx, message),
            Error::RestoreNotSafe(_) => PluginException::new(ExceptionKind::SnapRestoreNotSafeEx, message),
            Error::InvalidArray(_) => PluginException::value_format("config", message),
            Error::PreReq(_) => PluginException::new(ExceptionKind::OperationPreReqNotMetEx, message),
            Error::Unavailable(_)
            | Error::Io { .. }
            | Error::Db { .. }
            | Error::Command(_)
            | Error::Failed(_) => PluginException::new(failure, message),
        }
    }
}

/// Adds a path-naming context to `std::io` results.
pub(crate) trait IoContext<T> {
    /// Wraps the error as [`Error::Io`] naming `what` and `path`.
    fn ctx(self, what: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(what, path, e))
    }
}

impl<T> IoContext<T> for std::result::Result<T, rustix::io::Errno> {
    fn ctx(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(what, path, e.into()))
    }
}

/// Adds a context to SQLite results.
pub(crate) trait DbContext<T> {
    /// Wraps the error as [`Error::Db`] naming `what`.
    fn dbx(self, what: &str) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, rusqlite::Error> {
    fn dbx(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::db(what, e))
    }
}
