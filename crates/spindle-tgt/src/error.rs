//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A failure code that tgtd reports for a management request (tgt's `enum tgtadm_errno`),
/// recovered from the numeric code (management socket) or from tgtadm's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdmError {
    /// `unknown error`
    Unknown,
    /// `out of memory`
    NoMemory,
    /// `can't find the driver`
    NoDriver,
    /// `can't find the target`
    NoTarget,
    /// `can't find the logical unit`
    NoLun,
    /// `can't find the session`
    NoSession,
    /// `can't find the connection`
    NoConnection,
    /// `can't find the binding`
    NoBinding,
    /// `this target already exists`
    TargetExists,
    /// `this logical unit number already exists`
    LunExists,
    /// `this binding already exists`
    BindingExists,
    /// `this access control rule already exists`
    AclExists,
    /// `this access control rule does not exist`
    AclMissing,
    /// `this account already exists`
    UserExists,
    /// `can't find the account`
    NoUser,
    /// `too many accounts`
    TooManyUsers,
    /// `invalid request`
    InvalidRequest,
    /// `this target already has an outgoing account`
    OutgoingAccountExists,
    /// `this target is still active`
    TargetActive,
    /// `this logical unit is still active`
    LunActive,
    /// `this driver is busy`
    DriverActive,
    /// `this operation isn't supported`
    Unsupported,
    /// `unknown parameter`
    UnknownParameter,
    /// `this device has Prevent Removal set`
    PreventRemoval,
}

const ADM_ERRORS: [(AdmError, u32, &str); 24] = [
    (AdmError::Unknown, 1, "unknown error"),
    (AdmError::NoMemory, 2, "out of memory"),
    (AdmError::NoDriver, 3, "can't find the driver"),
    (AdmError::NoTarget, 4, "can't find the target"),
    (AdmError::NoLun, 5, "can't find the logical unit"),
    (AdmError::NoSession, 6, "can't find the session"),
    (AdmError::NoConnection, 7, "can't find the connection"),
    (AdmError::NoBinding, 8, "can't find the binding"),
    (AdmError::TargetExists, 9, "this target already exists"),
    (AdmError::LunExists, 10, "this logical unit number already exists"),
    (AdmError::BindingExists, 11, "this binding already exists"),
    (AdmError::AclExists, 12, "this access control rule already exists"),
    (
        AdmError::AclMissing,
        13,
        "this access control rule does not exist",
    ),
    (AdmError::UserExists, 14, "this account already exists"),
    (AdmError::NoUser, 15, "can't find the account"),
    (AdmError::TooManyUsers, 16, "too many accounts"),
    (AdmError::InvalidRequest, 17, "invalid request"),
    (
        AdmError::OutgoingAccountExists,
        18,
        "this target already has an outgoing account",
    ),
    (AdmError::TargetActive, 19, "this target is still active"),
    (AdmError::LunActive, 20, "this logical unit is still active"),
    (AdmError::DriverActive, 21, "this driver is busy"),
    (AdmError::Unsupported, 22, "this operation isn't supported"),
    (AdmError::UnknownParameter, 23, "unknown parameter"),
    (
        AdmError::PreventRemoval,
        24,
        "this device has Prevent Removal set",
    ),
];

impl AdmError {
    /// The error for tgtd's numeric code (`0` is success and has none).
    pub fn from_code(code: u32) -> Option<AdmError> {
        ADM_ERRORS.iter().find(|(_, c, _)| *c == code).map(|(e, _, _)| *e)
    }

    /// The error whose message tgtadm printed (`tgtadm: MESSAGE`), if it is one of tgtd's.
    pub fn from_message(message: &str) -> Option<AdmError> {
        let message = message.trim();
        ADM_ERRORS
            .iter()
            .find(|(_, _, m)| message.starts_with(m))
            .map(|(e, _, _)| *e)
    }

    /// tgtd's message for this error.
    pub fn message(self) -> &'static str {
        ADM_ERRORS
            .iter()
            .find(|(e, _, _)| *e == self)
            .map(|(_, _, m)| *m)
            .unwrap_or("unknown error")
    }
}

impl fmt::Display for AdmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Everything that can go wrong in `spindle-tgt`. No variant ever carries a CHAP secret.
#[derive(Debug, thiserror::Error)]
pub enum TgtError {
    /// A name, path or identifier failed validation: "invalid KIND "VALUE": REASON".
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        /// What was being validated (`target IQN`, `account name`, ...).
        kind: &'static str,
        /// The rejected value (shortened when long).
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A CHAP secret failed validation; the secret itself is never shown: "invalid CHAP secret: REASON".
    #[error("invalid CHAP secret: {reason}")]
    InvalidSecret {
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A tgtd configuration value is unusable: "invalid tgtd configuration: DETAIL".
    #[error("invalid tgtd configuration: {0}")]
    Config(String),
    /// A program could not be started: "cannot run PROGRAM: CAUSE".
    #[error("cannot run {program}: {source}", program = program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// tgtadm could not reach the tgtd instance: "tgtd instance on control port N is not running (DETAIL)".
    #[error("tgtd instance on control port {control_port} is not running ({detail})")]
    NotRunning {
        /// The instance's control port.
        control_port: u16,
        /// What tgtadm or the socket said.
        detail: String,
    },
    /// tgtadm reported a failure: "`COMMAND` failed (STATUS): MESSAGE" (secrets in COMMAND are redacted).
    #[error("`{command}` failed ({status}): {message}")]
    Tgtadm {
        /// The command line, secrets replaced by `<redacted>`.
        command: String,
        /// The exit status.
        status: String,
        /// tgtd's error, when the message is one of tgtd's.
        code: Option<AdmError>,
        /// What tgtadm printed on standard error (secrets redacted).
        message: String,
    },
    /// A program did not finish in time and was killed: "`COMMAND` did not finish within N s and was killed".
    #[error("`{command}` did not finish within {seconds} s and was killed")]
    Timeout {
        /// The command line, secrets redacted.
        command: String,
        /// The time limit.
        seconds: u64,
    },
    /// tgtadm's output could not be understood: "cannot parse tgtadm WHAT output at line N: REASON".
    #[error("cannot parse tgtadm {what} output at line {line}: {reason}")]
    Parse {
        /// Which listing.
        what: &'static str,
        /// The 1-based line.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// Talking to tgtd's management socket failed: "management socket PATH: CAUSE".
    #[error("management socket {path}: {source}", path = path.display())]
    Ipc {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// tgtd refused a request sent over its management socket: "tgtd refused REQUEST: MESSAGE".
    #[error("tgtd refused {request}: {code}")]
    IpcRefused {
        /// Which request (never its secret).
        request: String,
        /// tgtd's error.
        code: AdmError,
    },
    /// A file operation failed: "PATH: CAUSE".
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A tgtd instance already answers on the control port: "a tgtd instance already answers on control port N".
    #[error("a tgtd instance already answers on control port {0}")]
    AlreadyRunning(u16),
    /// tgtd did not come up: "tgtd (control port N) did not start: REASON".
    #[error("tgtd (control port {control_port}) did not start: {reason}")]
    StartFailed {
        /// The control port.
        control_port: u16,
        /// Why (includes the tail of tgtd's log when there is one).
        reason: String,
    },
    /// tgtd could not listen on the requested portal and was stopped again: "tgtd could not listen on portal WANTED (it listened on ACTUAL); it was stopped".
    #[error("tgtd could not listen on portal {wanted} (it listened on {actual}); it was stopped")]
    PortalUnavailable {
        /// The requested portal.
        wanted: String,
        /// The portals tgtd reported instead.
        actual: String,
    },
    /// tgtd did not stop: "tgtd (control port N) did not stop: REASON".
    #[error("tgtd (control port {control_port}) did not stop: {reason}")]
    StopFailed {
        /// The control port.
        control_port: u16,
        /// Why.
        reason: String,
    },
    /// A target or logical unit that should exist does not: "no WHAT in tgtd: DETAIL".
    #[error("no {what} in tgtd: {detail}")]
    Missing {
        /// `target` or `logical unit`.
        what: &'static str,
        /// Which one.
        detail: String,
    },
}

impl TgtError {
    /// tgtd's error code, when the failure is one tgtd reported.
    pub fn adm_error(&self) -> Option<AdmError> {
        match self {
            TgtError::Tgtadm { code, .. } => *code,
            TgtError::IpcRefused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the failure means tgtd is not running.
    pub fn is_not_running(&self) -> bool {
        matches!(self, TgtError::NotRunning { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adm_errors_round_trip() {
        for (e, code, msg) in ADM_ERRORS {
            assert_eq!(AdmError::from_code(code), Some(e));
            assert_eq!(AdmError::from_message(msg), Some(e));
            assert_eq!(e.to_string(), msg);
        }
        assert_eq!(AdmError::from_code(0), None);
        assert_eq!(AdmError::from_message("something else"), None);
    }
}
