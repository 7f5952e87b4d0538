//! What names and access-group entries the simulated array accepts.

use spindle_api::{PluginException, PluginResult, StorageType};

/// Longest element, pool or access-group name, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Characters a shell would interpret, refused in names.
const SHELL_META: &[char] = &[
    '`', '$', '&', '|', ';', '<', '>', '(', ')', '{', '}', '[', ']', '*', '?', '!', '~', '#', '\'', '"',
    '\\', '^',
];

/// A value quoted for a message: escaped, and cut after 80 characters.
pub fn shown(value: &str) -> String {
    let escaped = format!("{value:?}");
    if escaped.chars().count() > 80 {
        let cut: String = escaped.chars().take(77).collect();
        format!("{cut}...\"")
    } else {
        escaped
    }
}

/// Why `value` is not a usable name, if it is not.
fn name_fault(value: &str) -> Option<&'static str> {
    if value.chars().count() > MAX_NAME_LEN {
        Some("is longer than 64 characters")
    } else if value.chars().any(char::is_control) {
        Some("contains control characters")
    } else if value.chars().any(char::is_whitespace) {
        Some("contains blanks")
    } else if value.contains('/') {
        Some("contains '/'")
    } else if value.contains("..") || value == "." {
        Some("contains '..' or is '.'")
    } else if value.chars().any(|c| SHELL_META.contains(&c)) {
        Some("contains shell metacharacters")
    } else if value.starts_with('-') {
        Some("starts with '-'")
    } else {
        None
    }
}

/// Checks a name given under `key`: `MissingKeyEx` when empty, `ValueFormatEx` when unusable.
pub fn check_name(key: &str, value: &str) -> PluginResult<()> {
    if value.is_empty() {
        return Err(PluginException::missing_key(
            key,
            format!("{key} is empty; a name is required"),
        ));
    }
    match name_fault(value) {
        None => Ok(()),
        Some(why) => Err(PluginException::value_format(
            key,
            format!("{key} {} {why}", shown(value)),
        )),
    }
}

/// Most characters in an iSCSI name (RFC 3720).
const MAX_ISCSI_NAME: usize = 223;

fn all_hex(s: &str, lens: &[usize]) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn iqn_ok(lower: &str) -> bool {
    let Some(rest) = lower.strip_prefix("iqn.") else {
        return false;
    };
    let b = rest.as_bytes();
    if b.len() < 8 {
        return false;
    }
    let date_ok = b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && matches!(
            &rest[5..7],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
        && b[7] == b'.';
    if !date_ok {
        return false;
    }
    let after = &rest[8..];
    let (authority, unique) = match after.split_once(':') {
        Some((a, u)) => (a, Some(u)),
        None => (after, None),
    };
    let labels: Vec<&str> = authority.split('.').collect();
    let labels_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        });
    let unique_ok = unique.is_none_or(|u| {
        !u.is_empty()
            && u.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b':' | b'_')
            })
    });
    labels_ok && unique_ok
}

/// Checks an access-group entry for the array's storage type and returns its normal form:
/// SAN entries are WWNs `0x` + 16 hex digits (kept in lower case); iSCSI entries are initiator
/// names `iqn.YYYY-MM.reverse.domain[:unique]` (lower case), `eui.` + 16 hex digits or `naa.` +
/// 16 or 32 hex digits (hex in upper case).
pub fn normalize_entry(storage_type: StorageType, entry: &str) -> PluginResult<String> {
    let lower = entry.to_ascii_lowercase();
    let normal = match storage_type {
        StorageType::San => lower
            .strip_prefix("0x")
            .filter(|h| all_hex(h, &[16]))
            .map(|h| format!("0x{h}")),
        StorageType::Iscsi => {
            if entry.len() > MAX_ISCSI_NAME {
                None
            } else if let Some(h) = lower.strip_prefix("eui.").filter(|h| all_hex(h, &[16])) {
                Some(format!("eui.{}", h.to_ascii_uppercase()))
            } else if let Some(h) = lower.strip_prefix("naa.").filter(|h| all_hex(h, &[16, 32])) {
                Some(format!("naa.{}", h.to_ascii_uppercase()))
            } else if iqn_ok(&lower) {
                Some(lower)
            } else {
                None
            }
        }
    };
    normal.ok_or_else(|| {
        let expected = match storage_type {
            StorageType::San => "a WWN written 0x followed by 16 hex digits",
            StorageType::Iscsi => {
                "an iSCSI initiator name: iqn.YYYY-MM.reverse.domain[:id], eui. + 16 hex digits or naa. + 16 or 32 hex digits"
            }
        };
        PluginException::value_format(
            "grp_entries",
            format!("grp_entries value {} is not {expected}", shown(entry)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindle_api::ExceptionKind;

    #[test]
    fn good_names_pass() {
        for n in [
            "lun1",
            "LUN_2",
            "a.b",
            "x-y",
            "vm:disk@3",
            "ünïcode",
            &"n".repeat(64),
        ] {
            assert!(check_name("name", n).is_ok(), "{n}");
        }
    }

    #[test]
    fn bad_names_are_refused_naming_key_and_value() {
        for n in [
            "a/b",
            "..",
            "a..b",
            ".",
            "a\nb",
            "a\u{7}",
            "a;b",
            "$(x)",
            "`x`",
            "a|b",
            "a b",
            "-rf",
            "a>b",
            "a*",
            &"n".repeat(65),
        ] {
            let e = check_name("name", n).expect_err(n);
            assert_eq!(e.kind, ExceptionKind::ValueFormatEx, "{n}");
            assert_eq!(e.key.as_deref(), Some("name"));
            assert!(e.message.starts_with("name \""), "{}", e.message);
        }
        let e = check_name("grp_name", "").expect_err("empty");
        assert_eq!(e.kind, ExceptionKind::MissingKeyEx);
        assert_eq!(e.key.as_deref(), Some("grp_name"));
    }

    #[test]
    fn iscsi_entries() {
        let ok = [
            (
                "iqn.1994-05.com.redhat:5b4f7c8d9e",
                "iqn.1994-05.com.redhat:5b4f7c8d9e",
            ),
            ("IQN.2001-04.COM.Example", "iqn.2001-04.com.example"),
            (
                "iqn.2010-12.org.example.host:disk.0_a",
                "iqn.2010-12.org.example.host:disk.0_a",
            ),
            ("eui.02004567a425678d", "eui.02004567A425678D"),
            ("naa.52004567BA64678D", "naa.52004567BA64678D"),
            (
                "naa.6001405ABCDEF0123456789ABCDEF012",
                "naa.6001405ABCDEF0123456789ABCDEF012",
            ),
        ];
        for (e, n) in ok {
            assert_eq!(normalize_entry(StorageType::Iscsi, e).as_deref(), Ok(n), "{e}");
        }
        for e in [
            "iqn.1994-13.com.redhat:x",
            "iqn.94-05.com.redhat",
            "iqn.1994-05.com",
            "iqn.1994-05.com..x",
            "iqn.1994-05.com.redhat:",
            "iqn.1994-05.com.red hat",
            "eui.0200",
            "naa.12345",
            "0x500a0981891b8dc5",
            "host1",
        ] {
            let err = normalize_entry(StorageType::Iscsi, e).expect_err(e);
            assert_eq!(err.key.as_deref(), Some("grp_entries"));
        }
    }

    #[test]
    fn san_entries() {
        assert_eq!(
            normalize_entry(StorageType::San, "0x500A0981891B8DC5").as_deref(),
            Ok("0x500a0981891b8dc5")
        );
        for e in [
            "500a0981891b8dc5",
            "0x500a0981891b8dc",
            "0x500a0981891b8dcz",
            "iqn.2001-04.com.example",
        ] {
            assert!(normalize_entry(StorageType::San, e).is_err(), "{e}");
        }
    }
}
