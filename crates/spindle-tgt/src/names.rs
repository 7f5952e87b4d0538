//! Validated names, identifiers and paths.
//!
//! Every value that reaches tgtadm's argument vector or tgtd's management socket is one of
//! these types, so it has been checked: no option-like leading `-`, no `,` (tgtd splits its
//! parameter strings on commas), no whitespace or control characters, no path traversal.
//! Each type deserializes through its validator, so a persisted value (a [`crate::LunSpec`],
//! say) cannot smuggle an unchecked one in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::TgtError;

fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

macro_rules! checked_string {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value`.
            pub fn new(value: impl Into<String>) -> Result<Self, TgtError> {
                let value = value.into();
                match $check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(reason) => Err(TgtError::InvalidName {
                        kind: $kind,
                        value: shorten(&value),
                        reason,
                    }),
                }
            }

            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TgtError;
            fn try_from(value: String) -> Result<Self, TgtError> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = TgtError;
            fn try_from(value: &str) -> Result<Self, TgtError> {
                Self::new(value)
            }
        }

        impl FromStr for $name {
            type Err = TgtError;
            fn from_str(value: &str) -> Result<Self, TgtError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn all(value: &str, ok: impl Fn(char) -> bool) -> bool {
    value.chars().all(ok)
}

fn is_iqn_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':')
}

fn is_hex_len(value: &str, lens: &[usize]) -> bool {
    lens.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// RFC 3720 names: `iqn.YYYY-MM.reversed.domain[:suffix]`, `eui.` + 16 hex digits, `naa.` + 16
/// or 32 hex digits, at most 223 bytes. An `iqn.` name is lower case only (RFC 3722 stringprep
/// folds case, and tgt compares names byte for byte) and holds no `_` (tgt refuses it in a
/// target name); the hex digits of `eui.` and `naa.` names may be upper case, as in RFC 3720's
/// own examples (`eui.02004567A425678D`), which is how initiators send them.
fn check_iqn(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > 223 {
        return Err("is longer than 223 bytes");
    }
    if let Some(hex) = value.strip_prefix("eui.") {
        return if is_hex_len(hex, &[16]) {
            Ok(())
        } else {
            Err("an eui. name needs exactly 16 hex digits")
        };
    }
    if let Some(hex) = value.strip_prefix("naa.") {
        return if is_hex_len(hex, &[16, 32]) {
            Ok(())
        } else {
            Err("a naa. name needs 16 or 32 hex digits")
        };
    }
    if !all(value, is_iqn_char) {
        return Err("may hold only lower-case letters, digits, '-', '.' and ':'");
    }
    if let Some(rest) = value.strip_prefix("iqn.") {
        let b = rest.as_bytes();
        let date_ok = b.len() > 8
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b'.';
        if !date_ok {
            return Err("must be iqn.YYYY-MM.reversed-domain[:name]");
        }
        let authority = rest[8..].split(':').next().unwrap_or("");
        if authority.is_empty()
            || authority.starts_with(['.', '-'])
            || authority.ends_with('.')
            || authority.contains("..")
        {
            return Err("must be iqn.YYYY-MM.reversed-domain[:name]");
        }
        Ok(())
    } else {
        Err("must start with iqn., eui. or naa.")
    }
}

fn check_user(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > 255 {
        return Err("is longer than 255 bytes");
    }
    if value.starts_with('-') {
        return Err("must not start with '-'");
    }
    if !all(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':')
    }) {
        return Err("may hold only letters, digits, '.', '_', '-', '@' and ':'");
    }
    Ok(())
}

fn check_scsi_id(value: &str) -> Result<(), &'static str> {
    if value.len() != 32 || !value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("must be exactly 32 lower-case hex digits");
    }
    if !value.starts_with('6') {
        return Err("must start with 6: tgt forces the NAA field of its 16-byte designator to 6, so only then is the designator the scsi_id itself");
    }
    Ok(())
}

fn check_scsi_sn(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > 36 {
        return Err("is longer than 36 bytes (tgt's SCSI_SN_LEN)");
    }
    if value.starts_with('-') {
        return Err("must not start with '-'");
    }
    if !all(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    }) {
        return Err("may hold only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

fn check_inquiry(value: &str, max: usize) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > max {
        return Err(if max == 8 {
            "is longer than 8 bytes"
        } else {
            "is longer than 16 bytes"
        });
    }
    if value.starts_with('-') {
        return Err("must not start with '-'");
    }
    if !all(value, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    }) {
        return Err("may hold only letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

fn check_vendor(value: &str) -> Result<(), &'static str> {
    check_inquiry(value, 8)
}

fn check_product(value: &str) -> Result<(), &'static str> {
    check_inquiry(value, 16)
}

/// Absolute, normalised (no empty, `.` or `..` component, no trailing `/`), at most 1000
/// bytes, components of letters, digits and `._+@-` only.
fn check_backing(value: &str) -> Result<(), &'static str> {
    if !value.starts_with('/') {
        return Err("must be an absolute path");
    }
    if value.len() > 1000 {
        return Err("is longer than 1000 bytes");
    }
    if value == "/" {
        return Err("must name a file");
    }
    for component in value[1..].split('/') {
        match component {
            "" => return Err("must not contain empty components or end in '/'"),
            "." | ".." => return Err("must not contain '.' or '..' components"),
            _ => {}
        }
        if !all(component, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@')
        }) {
            return Err("may hold only letters, digits, '/', '.', '_', '-', '+' and '@'");
        }
    }
    Ok(())
}

/// An initiator address ACL entry as tgt lists it: an IP address, a CIDR block or `ALL`.
/// Only ever used to *remove* such entries; this crate never adds one.
fn check_address(value: &str) -> Result<(), &'static str> {
    if is_address(value) {
        Ok(())
    } else {
        Err("is not an IP address, a CIDR block or ALL")
    }
}

/// Whether an ACL entry that tgt lists is an address rule (rather than an initiator name).
pub(crate) fn is_address(value: &str) -> bool {
    if value == "ALL" {
        return true;
    }
    let (ip, len) = match value.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (value, None),
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip_ok = ip.parse::<std::net::IpAddr>().is_ok();
    let len_ok = len.is_none_or(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()));
    ip_ok && len_ok
}

checked_string!(
    /// An iSCSI name (IQN, EUI or NAA form) of a target or an initiator.
    Iqn,
    "iSCSI name",
    check_iqn
);
checked_string!(
    /// A CHAP account (user) name.
    UserName,
    "CHAP account name",
    check_user
);
checked_string!(
    /// A logical unit's `scsi_id`: 32 lower-case hex digits starting with `6`. tgt turns it into
    /// the NAA-6 (IEEE registered extended) designator of VPD page 0x83, byte for byte, and
    /// also lists it as a T10 vendor-id designator.
    ScsiId,
    "scsi_id",
    check_scsi_id
);
checked_string!(
    /// A logical unit's serial number (`scsi_sn`, VPD page 0x80).
    ScsiSn,
    "scsi_sn",
    check_scsi_sn
);
checked_string!(
    /// The INQUIRY vendor identification (at most 8 bytes).
    VendorId,
    "vendor_id",
    check_vendor
);
checked_string!(
    /// The INQUIRY product identification (at most 16 bytes).
    ProductId,
    "product_id",
    check_product
);
checked_string!(
    /// The backing file of a logical unit: an absolute, normalised path.
    BackingPath,
    "backing path",
    check_backing
);
checked_string!(
    /// An initiator-address ACL entry (IP, CIDR or `ALL`), as found in tgtd; only removed, never added.
    InitiatorAddress,
    "initiator address",
    check_address
);

impl BackingPath {
    /// The path.
    pub fn as_path(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl Default for VendorId {
    fn default() -> Self {
        VendorId("SPINDLE".to_string())
    }
}

impl Default for ProductId {
    fn default() -> Self {
        ProductId("VIRTUAL-DISK".to_string())
    }
}

/// A CHAP secret. `Debug` never shows it, it has no `Display`, and no error message of this
/// crate contains it. It serializes as the plain string (spindle persists it; protect that
/// file). 12 to 255 printable ASCII characters without spaces (RFC 3720 asks for at least
/// 12 bytes; some initiators refuse more than 16).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Secret(String);

impl Secret {
    /// Validates `value`; the error never repeats it.
    pub fn new(value: impl Into<String>) -> Result<Self, TgtError> {
        let value = value.into();
        let reason = if value.len() < 12 {
            Some("must be at least 12 characters long")
        } else if value.len() > 255 {
            Some("must be at most 255 characters long")
        } else if !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            Some("may hold only printable ASCII characters without spaces")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(TgtError::InvalidSecret { reason }),
            None => Ok(Secret(value)),
        }
    }

    /// The secret itself. Only pass it where it must go.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl TryFrom<String> for Secret {
    type Error = TgtError;
    fn try_from(value: String) -> Result<Self, TgtError> {
        Secret::new(value)
    }
}

impl From<Secret> for String {
    fn from(value: Secret) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqns() {
        for ok in [
            "iqn.2024-01.io.spindle:t1",
            "iqn.1993-08.org.debian:01:abcdef",
            "iqn.2024-01.com.example",
            "eui.0123456789abcdef",
            "naa.60014051234567890123456789abcdef",
        ] {
            assert!(Iqn::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "iqn.2024-01.io.spindle:T1",
            "iqn.2024-1.io.spindle:t1",
            "iqn.2024-01.",
            "iqn.2024-01..x",
            "iqn.2024-01.io.spindle:a,b",
            "iqn.2024-01.io.spindle:a b",
            "-iqn.2024-01.io.spindle",
            "eui.123",
            "foo.bar",
        ] {
            assert!(Iqn::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_refuse_traversal() {
        assert!(BackingPath::new("/var/lib/spindle/lun-1.img").is_ok());
        for bad in [
            "relative/x",
            "/a/../etc/shadow",
            "/a/./b",
            "/a//b",
            "/a/b/",
            "/",
            "/a,b",
            "/a b",
            "/a=b",
        ] {
            assert!(BackingPath::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scsi_ids() {
        assert!(ScsiId::new("6001405abcdef0123456789abcdef012").is_ok());
        assert!(ScsiId::new("5001405abcdef0123456789abcdef012").is_err());
        assert!(ScsiId::new("6001405ABCDEF0123456789abcdef012").is_err());
        assert!(ScsiId::new("6001405abcdef0123456789abcdef01").is_err());
    }

    #[test]
    fn secrets_are_never_shown() {
        let s = Secret::new("correct-horse-battery").expect("valid");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        let err = Secret::new("short secret").expect_err("invalid").to_string();
        assert!(!err.contains("short"), "{err}");
        let err = Secret::new("tiny").expect_err("invalid").to_string();
        assert!(!err.contains("tiny"), "{err}");
        assert!(Secret::new("has,comma=and%percent").is_ok());
    }

    #[test]
    fn addresses() {
        for ok in ["ALL", "10.1.2.3", "10.0.0.0/8", "::1", "fe80::/10"] {
            assert!(InitiatorAddress::new(ok).is_ok(), "{ok}");
        }
        assert!(InitiatorAddress::new("iqn.2024-01.io.x").is_err());
        assert!(InitiatorAddress::new("-1").is_err());
    }

    #[test]
    fn names_deserialize_through_validation() {
        let ok: Result<Iqn, _> = serde_json::from_str("\"iqn.2024-01.io.spindle:t\"");
        assert!(ok.is_ok());
        let bad: Result<Iqn, _> = serde_json::from_str("\"iqn.2024-01.io.spindle:t,x\"");
        assert!(bad.is_err());
    }
}
