//! The manager's errors.

use serde::Serialize;
use spindle_api::{ExceptionKind, PluginException, PluginId};
use std::fmt;
use std::path::PathBuf;

/// Which rule of the guides a plug-in broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A returned record changed a field the "Allow update" column forbids.
    UpdateRules,
    /// A returned se_record lacks `page83_id` where the guide requires it.
    Page83Required,
    /// getCapabilities did not return all 16 keys with legal values.
    Capabilities,
    /// An exception only `validate` may raise came from another method.
    ValidateOnlyException,
    /// `list` returned a snapshot.
    SnapshotInList,
    /// The return value is not what the method returns.
    ReturnShape,
    /// Async progress from an operation declared synchronous, or from one that cannot be async.
    AsyncWhenSync,
    /// `async_progress` outside -1, 0..100, None.
    AsyncProgressRange,
    /// An exception outside the guides' closed set.
    UnknownException,
    /// The base class `IPluginException` raised directly.
    BaseException,
    /// MissingKeyEx / ValueFormatEx without the key.
    ExceptionWithoutKey,
    /// Bytes on stdout that are not protocol messages.
    StdoutPollution,
}

impl Rule {
    /// The rule, stated briefly (shown with every violation).
    pub fn statement(self) -> &'static str {
        match self {
            Rule::UpdateRules => "a plug-in may change only the fields the records' \"Allow update\" column permits",
            Rule::Page83Required => "create, clone, cloneFromSnap and list must fill in page83_id",
            Rule::Capabilities => "getCapabilities must set all 16 ability keys to legal values",
            Rule::ValidateOnlyException => "InvalidStorageArrayEx, StorageNameRequiredEx and InvalidFSTypeEx may be raised only by validate",
            Rule::SnapshotInList => "list never returns snapshots",
            Rule::ReturnShape => "each method returns what the guide says it returns",
            Rule::AsyncWhenSync => "an operation declared *_is_sync = YES never returns async_progress",
            Rule::AsyncProgressRange => "async_progress is -1, 0..100 or None",
            Rule::UnknownException => "plug-ins raise only the exceptions the guides define",
            Rule::BaseException => "IPluginException is never raised directly",
            Rule::ExceptionWithoutKey => "MissingKeyEx and ValueFormatEx carry the key",
            Rule::StdoutPollution => "plug-ins never print to standard output",
        }
    }
}

/// One breach of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// The field (or key, or parameter) concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field {field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A call failed because the plug-in broke the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractFailure {
    /// The plug-in.
    pub plugin: PluginId,
    /// The method.
    pub method: &'static str,
    /// What it broke.
    pub violations: Vec<Violation>,
}

impl fmt::Display for ContractFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plug-in {} broke the contract in {}: ",
            self.plugin, self.method
        )?;
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v} [rule: {}]", v.rule.statement())?;
        }
        Ok(())
    }
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request was refused before it reached the plug-in (bad input); nothing changed.
    #[error("{0}")]
    Rejected(PluginException),
    /// The plug-in raised one of the guides' exceptions.
    #[error("{0}")]
    Raised(PluginException),
    /// The plug-in broke the contract (strict mode).
    #[error("{0}")]
    Contract(ContractFailure),
    /// The call could not complete: the plug-in crashed, hung, or could not be started.
    #[error("{0}")]
    Failed(PluginException),
}

impl CallError {
    /// The error as one of the guides' exceptions (a contract breach is OperationFailedEx).
    pub fn exception(&self) -> PluginException {
        match self {
            CallError::Rejected(e) | CallError::Raised(e) | CallError::Failed(e) => e.clone(),
            CallError::Contract(c) => PluginException::new(ExceptionKind::OperationFailedEx, c.to_string()),
        }
    }

    /// The violations, for a contract breach.
    pub fn violations(&self) -> &[Violation] {
        match self {
            CallError::Contract(c) => &c.violations,
            _ => &[],
        }
    }
}

/// Errors of the manager itself (configuration, lookup).
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// No plug-in has that id.
    #[error("no plug-in '{0}' is installed (see `spindle plugin list`)")]
    UnknownPlugin(String),
    /// The plug-in was found under a plug-ins root but skipped (it appears in `skipped`).
    #[error("plug-in '{reference}' was found but not loaded: {reason}")]
    NotLoaded {
        /// The reference as given.
        reference: String,
        /// Why it was skipped (every reason discovery gave, one per line).
        reason: String,
    },
    /// A class name matches several versions.
    #[error("plug-in '{class}' is installed in several versions ({versions}); name one as CLASS@VERSION")]
    AmbiguousPlugin {
        /// The class.
        class: String,
        /// The versions, comma-separated.
        versions: String,
    },
    /// A plug-in reference is malformed.
    #[error("'{reference}' is not a plug-in reference: {reason}")]
    BadReference {
        /// What was given.
        reference: String,
        /// Why it is wrong.
        reason: String,
    },
    /// The manager could not create its temporary directory.
    #[error("cannot create the manager's temporary directory under {path}: {source}")]
    TempDir {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
