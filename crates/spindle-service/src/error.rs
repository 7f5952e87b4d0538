//! The core's one error type. Each variant maps to one `code` of `docs/http-api.md`.

use spindle_api::{ExceptionKind, PluginException};

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or names a value that cannot be used.
    #[error("{message}")]
    BadRequest {
        exception: Option<ExceptionKind>,
        message: String,
        key: Option<String>,
    },
    /// A storage server, element, group or job of that name does not exist.
    #[error("{message}")]
    NotFound { message: String, key: Option<String> },
    /// The name is taken, or matches more than one element.
    #[error("{message}")]
    Conflict {
        message: String,
        key: Option<String>,
        ambiguous: bool,
    },
    /// The plug-in (or the manager's input checks) raised one of the guides' exceptions.
    #[error("{0}")]
    Refused(PluginException),
    /// The plug-in broke the contract.
    #[error("{0}")]
    Contract(String),
    /// The plug-in crashed, hung or could not start.
    #[error("{0}")]
    PluginFailed(PluginException),
    /// spindle itself failed (its database, a bug).
    #[error("{0}")]
    Internal(String),
}
