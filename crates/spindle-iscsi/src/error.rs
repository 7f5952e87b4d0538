//! The crate's one error type. No variant ever carries a CHAP secret or a CHAP response.

use std::fmt;
use std::io;

use crate::scsi::{Lun, ScsiStatus, Sense, SenseKey};

/// What went wrong talking to an iSCSI target.
#[derive(Debug, thiserror::Error)]
pub enum IscsiError {
    /// "cannot resolve iSCSI portal address {addr}: {reason}"
    #[error("cannot resolve iSCSI portal address {addr}: {reason}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// Why it did not resolve.
        reason: String,
    },
    /// "cannot connect to iSCSI portal {addr}: {source}"
    #[error("cannot connect to iSCSI portal {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The last connection error.
        #[source]
        source: io::Error,
    },
    /// "iSCSI connection I/O error: {0}" (a read or write timeout shows as `WouldBlock` or
    /// `TimedOut`; see [`IscsiError::is_timeout`])
    #[error("iSCSI connection I/O error: {0}")]
    Io(#[from] io::Error),
    /// "login to {target} refused: {status} (status class {class:#04x}, detail {detail:#04x})"
    #[error("login to {target} refused: {status} (status class {class:#04x}, detail {detail:#04x})")]
    LoginRefused {
        /// The target name, or "discovery session".
        target: String,
        /// The decoded status.
        status: LoginStatus,
        /// Status-Class byte.
        class: u8,
        /// Status-Detail byte.
        detail: u8,
        /// For a redirection: the TargetAddress the target named.
        redirect_to: Option<String>,
    },
    /// "login to {target} failed: {reason}" (the negotiation itself could not be completed)
    #[error("login to {target} failed: {reason}")]
    Negotiation {
        /// The target name, or "discovery session".
        target: String,
        /// What was unacceptable.
        reason: String,
    },
    /// "target {target} failed mutual CHAP authentication: {reason}"
    #[error("target {target} failed mutual CHAP authentication: {reason}")]
    MutualChapFailed {
        /// The target name, or "discovery session".
        target: String,
        /// What did not match (never a secret or a response value).
        reason: String,
    },
    /// "iSCSI protocol violation by the target: {0}"
    #[error("iSCSI protocol violation by the target: {0}")]
    Protocol(String),
    /// "the target sent a PDU with a {len}-byte data segment, more than the {max} bytes allowed"
    #[error("the target sent a PDU with a {len}-byte data segment, more than the {max} bytes allowed")]
    DataSegmentTooLarge {
        /// Announced length.
        len: usize,
        /// Allowed length.
        max: usize,
    },
    /// "data segment of {0} bytes exceeds the 16777215-byte maximum"
    #[error("data segment of {0} bytes exceeds the 16777215-byte maximum")]
    DataSegmentTooLong(usize),
    /// "the target rejected a PDU: {reason_text} (reason {reason:#04x})"
    #[error("the target rejected a PDU: {reason_text} (reason {reason:#04x})")]
    Rejected {
        /// The Reject PDU's reason code.
        reason: u8,
        /// Its RFC 7143 name.
        reason_text: &'static str,
    },
    /// "{command} on LUN {lun} failed: CHECK CONDITION, {sense}"
    #[error("{command} on LUN {lun} failed: CHECK CONDITION, {sense}")]
    CheckCondition {
        /// The SCSI command's name.
        command: &'static str,
        /// The logical unit.
        lun: Lun,
        /// The decoded sense data.
        sense: Sense,
    },
    /// "{command} on LUN {lun} failed: SCSI status {status}"
    #[error("{command} on LUN {lun} failed: SCSI status {status}")]
    ScsiStatus {
        /// The SCSI command's name.
        command: &'static str,
        /// The logical unit.
        lun: Lun,
        /// The status byte.
        status: ScsiStatus,
    },
    /// "{command} on LUN {lun} was not completed by the target (iSCSI response {response:#04x})"
    #[error("{command} on LUN {lun} was not completed by the target (iSCSI response {response:#04x})")]
    TargetFailure {
        /// The SCSI command's name.
        command: &'static str,
        /// The logical unit.
        lun: Lun,
        /// The SCSI Response PDU's Response byte.
        response: u8,
    },
    /// "{command} on LUN {lun}: the target returned malformed data: {reason}"
    #[error("{command} on LUN {lun}: the target returned malformed data: {reason}")]
    MalformedData {
        /// The SCSI command's name.
        command: &'static str,
        /// The logical unit.
        lun: Lun,
        /// What is wrong with it.
        reason: String,
    },
    /// "logout failed: {reason} (response {response:#04x})"
    #[error("logout failed: {reason} (response {response:#04x})")]
    Logout {
        /// The Logout Response's Response byte.
        response: u8,
        /// Its meaning.
        reason: &'static str,
    },
    /// "the target ended the session: {0}"
    #[error("the target ended the session: {0}")]
    SessionEnded(String),
    /// "invalid argument: {0}"
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// "cannot obtain random bytes from the operating system: {0}"
    #[error("cannot obtain random bytes from the operating system: {0}")]
    Random(String),
}

impl IscsiError {
    /// The login status, when the target refused a login.
    pub fn login_status(&self) -> Option<LoginStatus> {
        match self {
            IscsiError::LoginRefused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the target refused the login because authentication failed
    /// (status 0x0201: no, wrong or unacceptable CHAP credentials).
    pub fn is_authentication_failure(&self) -> bool {
        self.login_status() == Some(LoginStatus::AuthenticationFailure)
    }

    /// True when the target refused the login because this initiator may not access the target
    /// (0x0202), or because the target does not exist for this initiator (0x0203, which is what
    /// tgt and several arrays answer for an initiator outside the target's ACL).
    pub fn is_access_denied(&self) -> bool {
        matches!(
            self.login_status(),
            Some(LoginStatus::AuthorizationFailure | LoginStatus::NotFound)
        )
    }

    /// The sense data of a failed SCSI command.
    pub fn sense(&self) -> Option<&Sense> {
        match self {
            IscsiError::CheckCondition { sense, .. } => Some(sense),
            _ => None,
        }
    }

    /// The sense key of a failed SCSI command.
    pub fn sense_key(&self) -> Option<SenseKey> {
        self.sense().map(|s| s.key)
    }

    /// True for a socket read or write that timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            IscsiError::Io(e) => matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
            _ => false,
        }
    }
}

/// The meaning of a Login Response's Status-Class and Status-Detail (RFC 7143 §11.13.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginStatus {
    /// 0x0101: the target moved temporarily (see `redirect_to`).
    TargetMovedTemporarily,
    /// 0x0102: the target moved permanently (see `redirect_to`).
    TargetMovedPermanently,
    /// 0x0200: miscellaneous initiator error.
    InitiatorError,
    /// 0x0201: the initiator could not be authenticated, or the target failed the initiator's
    /// authentication.
    AuthenticationFailure,
    /// 0x0202: the initiator is not allowed access to the target.
    AuthorizationFailure,
    /// 0x0203: the requested target does not exist (tgt also answers this for an initiator
    /// outside the target's ACL).
    NotFound,
    /// 0x0204: the target was removed.
    TargetRemoved,
    /// 0x0205: no version in common.
    UnsupportedVersion,
    /// 0x0206: too many connections on this session.
    TooManyConnections,
    /// 0x0207: a required parameter was missing.
    MissingParameter,
    /// 0x0208: the connection cannot be added to this session.
    CannotIncludeInSession,
    /// 0x0209: the session type is not supported.
    SessionTypeNotSupported,
    /// 0x020a: the session to add a connection to does not exist.
    SessionDoesNotExist,
    /// 0x020b: invalid request during login.
    InvalidDuringLogin,
    /// 0x0300: the target hit an error.
    TargetError,
    /// 0x0301: the service is unavailable.
    ServiceUnavailable,
    /// 0x0302: the target is out of resources.
    OutOfResources,
    /// Any other class/detail pair.
    Other {
        /// Status-Class.
        class: u8,
        /// Status-Detail.
        detail: u8,
    },
}

impl LoginStatus {
    /// Decodes a non-success class/detail pair.
    pub fn from_class_detail(class: u8, detail: u8) -> LoginStatus {
        match (class, detail) {
            (1, 1) => LoginStatus::TargetMovedTemporarily,
            (1, 2) => LoginStatus::TargetMovedPermanently,
            (2, 0) => LoginStatus::InitiatorError,
            (2, 1) => LoginStatus::AuthenticationFailure,
            (2, 2) => LoginStatus::AuthorizationFailure,
            (2, 3) => LoginStatus::NotFound,
            (2, 4) => LoginStatus::TargetRemoved,
            (2, 5) => LoginStatus::UnsupportedVersion,
            (2, 6) => LoginStatus::TooManyConnections,
            (2, 7) => LoginStatus::MissingParameter,
            (2, 8) => LoginStatus::CannotIncludeInSession,
            (2, 9) => LoginStatus::SessionTypeNotSupported,
            (2, 10) => LoginStatus::SessionDoesNotExist,
            (2, 11) => LoginStatus::InvalidDuringLogin,
            (3, 0) => LoginStatus::TargetError,
            (3, 1) => LoginStatus::ServiceUnavailable,
            (3, 2) => LoginStatus::OutOfResources,
            (class, detail) => LoginStatus::Other { class, detail },
        }
    }
}

impl fmt::Display for LoginStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            LoginStatus::TargetMovedTemporarily => "target moved temporarily",
            LoginStatus::TargetMovedPermanently => "target moved permanently",
            LoginStatus::InitiatorError => "initiator error",
            LoginStatus::AuthenticationFailure => "authentication failure",
            LoginStatus::AuthorizationFailure => "authorization failure",
            LoginStatus::NotFound => "target not found",
            LoginStatus::TargetRemoved => "target removed",
            LoginStatus::UnsupportedVersion => "unsupported version",
            LoginStatus::TooManyConnections => "too many connections",
            LoginStatus::MissingParameter => "missing parameter",
            LoginStatus::CannotIncludeInSession => "cannot include in session",
            LoginStatus::SessionTypeNotSupported => "session type not supported",
            LoginStatus::SessionDoesNotExist => "session does not exist",
            LoginStatus::InvalidDuringLogin => "invalid request during login",
            LoginStatus::TargetError => "target error",
            LoginStatus::ServiceUnavailable => "service unavailable",
            LoginStatus::OutOfResources => "out of resources",
            LoginStatus::Other { .. } => "unknown login status",
        };
        f.write_str(text)
    }
}

/// The name of a Reject PDU's reason code (RFC 7143 §11.17.1).
pub(crate) fn reject_reason_text(reason: u8) -> &'static str {
    match reason {
        0x02 => "data (payload) digest error",
        0x03 => "SNACK reject",
        0x04 => "protocol error",
        0x05 => "command not supported",
        0x06 => "immediate command rejected",
        0x07 => "task in progress",
        0x08 => "invalid data ACK",
        0x09 => "invalid PDU field",
        0x0a => "long operation reject",
        0x0b => "deprecated reason code",
        0x0c => "waiting for logout",
        _ => "unknown reason",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_status_decoding() {
        assert_eq!(
            LoginStatus::from_class_detail(2, 1),
            LoginStatus::AuthenticationFailure
        );
        assert_eq!(
            LoginStatus::from_class_detail(2, 2),
            LoginStatus::AuthorizationFailure
        );
        assert_eq!(LoginStatus::from_class_detail(2, 3), LoginStatus::NotFound);
        assert_eq!(
            LoginStatus::from_class_detail(9, 9),
            LoginStatus::Other { class: 9, detail: 9 }
        );
        let e = IscsiError::LoginRefused {
            target: "iqn.x".into(),
            status: LoginStatus::AuthenticationFailure,
            class: 2,
            detail: 1,
            redirect_to: None,
        };
        assert!(e.is_authentication_failure());
        assert!(!e.is_access_denied());
        assert_eq!(
            e.to_string(),
            "login to iqn.x refused: authentication failure (status class 0x02, detail 0x01)"
        );
    }
}
