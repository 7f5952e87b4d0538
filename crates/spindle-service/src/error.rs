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

impl ServiceError {
    /// The `code` of `docs/http-api.md` (`bad_request`, `not_found`, `conflict`, `refused`,
    /// `contract`, `plugin_failed`, `internal`); also the audit log's outcome of a failure.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::BadRequest { .. } => "bad_request",
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::Conflict { ambiguous: true, .. } => "ambiguous",
            ServiceError::Conflict { .. } => "conflict",
            ServiceError::Refused(_) => "refused",
            ServiceError::Contract(_) => "contract",
            ServiceError::PluginFailed(_) => "plugin_failed",
            ServiceError::Internal(_) => "internal",
        }
    }

    /// The guide's exception the error carries, if one applies: the plug-in's (or the
    /// manager's input checks') for `Refused` and `PluginFailed`, the one spindle chose for its
    /// own input checks (`BadRequest`), and `InvalidValueEx` for a name that designates
    /// nothing or is already used (`NotFound`, `Conflict`).
    pub fn exception(&self) -> Option<ExceptionKind> {
        match self {
            ServiceError::BadRequest { exception, .. } => *exception,
            ServiceError::NotFound { .. } | ServiceError::Conflict { .. } => {
                Some(ExceptionKind::InvalidValueEx)
            }
            ServiceError::Refused(e) | ServiceError::PluginFailed(e) => Some(e.kind),
            ServiceError::Contract(_) | ServiceError::Internal(_) => None,
        }
    }

    /// Whether the array may have changed although the action failed: the plug-in raised
    /// OperationFailedEx (a step after the change may have failed), crashed, hung, or broke
    /// the contract. The guides' other exceptions, and spindle's own refusals, change nothing.
    pub fn may_have_changed_the_array(&self) -> bool {
        match self {
            ServiceError::Refused(e) => e.kind == ExceptionKind::OperationFailedEx,
            ServiceError::PluginFailed(_) | ServiceError::Contract(_) => true,
            _ => false,
        }
    }

    /// Whether spindle's records may be behind the array, when the action sent them: the
    /// plug-in refused a value (InvalidValueEx: an element or group removed behind spindle's
    /// back, say).
    pub fn records_may_be_stale(&self) -> bool {
        matches!(self, ServiceError::Refused(e) if e.kind == ExceptionKind::InvalidValueEx)
    }

    /// The offending field, when known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ServiceError::BadRequest { key, .. }
            | ServiceError::NotFound { key, .. }
            | ServiceError::Conflict { key, .. } => key.as_deref(),
            ServiceError::Refused(e) | ServiceError::PluginFailed(e) => e.key.as_deref(),
            ServiceError::Contract(_) | ServiceError::Internal(_) => None,
        }
    }

    /// The human-readable message (without the exception's name).
    pub fn message(&self) -> &str {
        match self {
            ServiceError::BadRequest { message, .. }
            | ServiceError::NotFound { message, .. }
            | ServiceError::Conflict { message, .. } => message,
            ServiceError::Refused(e) | ServiceError::PluginFailed(e) => &e.message,
            ServiceError::Contract(m) | ServiceError::Internal(m) => m,
        }
    }

    /// The error body of `docs/http-api.md` (the value of `"error"`):
    /// `{"code", "exception", "message", "key", "call_id"}`. An ambiguous name has code
    /// `ambiguous` (status 409, like `conflict`).
    pub fn body(&self, call_id: &str) -> serde_json::Value {
        serde_json::json!({
            "code": self.code(),
            "exception": self.exception().map(|e| e.as_str()),
            "message": self.message(),
            "key": self.key(),
            "call_id": call_id,
        })
    }

    pub(crate) fn bad(exception: ExceptionKind, key: &str, message: impl Into<String>) -> Self {
        ServiceError::BadRequest {
            exception: Some(exception),
            message: message.into(),
            key: Some(key.to_string()),
        }
    }

    pub(crate) fn not_found(key: &str, message: impl Into<String>) -> Self {
        ServiceError::NotFound {
            message: message.into(),
            key: Some(key.to_string()),
        }
    }

    pub(crate) fn conflict(key: &str, message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            message: message.into(),
            key: Some(key.to_string()),
            ambiguous: false,
        }
    }

    pub(crate) fn ambiguous(key: &str, message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            message: message.into(),
            key: Some(key.to_string()),
            ambiguous: true,
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ServiceError::Internal(message.into())
    }
}

impl From<PluginException> for ServiceError {
    /// An exception spindle raises itself for bad input.
    fn from(e: PluginException) -> Self {
        ServiceError::BadRequest {
            exception: Some(e.kind),
            message: e.message,
            key: e.key,
        }
    }
}
