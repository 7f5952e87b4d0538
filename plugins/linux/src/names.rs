//! What names, initiator names, paths and sizes the Linux array accepts.
//!
//! Names never reach a shell (helper programs get argument vectors), but they do become file
//! names, iSCSI target names and log text, so they are kept to a safe alphabet anyway.

use crate::error::{Error, Result};
use std::path::PathBuf;

pub use spindle_api::names::{shown, shown_path, MAX_ISCSI_NAME, MAX_NAME_LEN, MAX_PATH_LEN};

/// Refused on top of the shared shell metacharacters: tgtadm's parameter syntax uses them
/// (`--params a=b,c=d`, `%` in URLs).
const TGT_SEPARATORS: &[char] = &['%', '=', ','];

/// Why `value` is not a usable name, if it is not. A leading '.' is refused too: the array's
/// own working files start with one.
fn name_fault(value: &str) -> Option<String> {
    spindle_api::names::name_fault(value, TGT_SEPARATORS)
        .or_else(|| value.starts_with('.').then(|| "starts with '.'".to_string()))
}

/// Checks a name given under `key`: `MissingKeyEx` when empty, `ValueFormatEx` when unusable.
pub fn check_name(key: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::missing(key, format!("{key} is empty; a name is required")));
    }
    match name_fault(value) {
        None => Ok(()),
        Some(why) => Err(Error::format(key, format!("{key} {} {why}", shown(value)))),
    }
}

/// Checks an access-group name. Groups become iSCSI targets named `<iqn_prefix>:<group>`, so
/// on top of [`check_name`] a group name uses only what an iSCSI name may hold: ASCII letters,
/// digits, `.`, `-` and `:` (no `_`: tgt refuses it in a target name); target names are lower
/// case, so two groups may not differ only in case.
pub fn check_group_name(key: &str, value: &str) -> Result<()> {
    check_name(key, value)?;
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
    {
        return Err(Error::format(
            key,
            format!(
                "{key} {} may hold only ASCII letters, digits, '.' and '-' (it names an iSCSI target)",
                shown(value)
            ),
        ));
    }
    Ok(())
}

/// Checks the name of a group to be made (or a group's new name): a group name, and without
/// `:`, so that a target `<prefix>:<group>` never looks like one under a longer prefix of
/// another array on the same tgtd. (Groups made before keep their names.)
pub fn check_new_group_name(key: &str, value: &str) -> Result<()> {
    check_group_name(key, value)?;
    if value.contains(':') {
        return Err(Error::format(
            key,
            format!(
                "{key} {} may not contain ':': the group is the iSCSI target <iqn_prefix>:<group>, and with a ':' in the group that name could be another array's target (one whose iqn_prefix ends where this group's ':' is)",
                shown(value)
            ),
        ));
    }
    Ok(())
}

/// Checks an iSCSI name given under `key` and returns its normal form: `iqn.YYYY-MM.reverse.domain[:unique]`
/// (lower case), `eui.` + 16 hex digits or `naa.` + 16 or 32 hex digits (hex in upper case).
pub fn normalize_iscsi_name(key: &str, entry: &str) -> Result<String> {
    spindle_api::names::normalize_iscsi_name(entry).ok_or_else(|| {
        Error::format(
            key,
            format!(
                "{key} value {} {}",
                shown(entry),
                spindle_api::names::iscsi_name_rule(entry)
            ),
        )
    })
}

/// Checks an absolute path given under `key`: absolute, no `..`, no control characters, not
/// the root, at most [`MAX_PATH_LEN`] bytes. Returns it with `.` components dropped.
pub fn check_abs_path(key: &str, value: &str) -> Result<PathBuf> {
    let bad = |why: &str| Error::format(key, format!("{key} {} {why}", shown(value)));
    if value.is_empty() {
        return Err(Error::missing(
            key,
            format!("{key} is empty; an absolute path is required"),
        ));
    }
    spindle_api::names::abs_path(value).map_err(bad)
}

/// Checks a size in bytes given under `key`: more than zero.
pub fn check_size(key: &str, size: i64) -> Result<u64> {
    if size <= 0 {
        return Err(Error::format(
            key,
            format!("{key} {size} is not a size: it must be more than 0 bytes"),
        ));
    }
    Ok(size as u64)
}

/// Checks that `value` is an element or operation id of the form this array issues (a
/// hyphenated lower-case uuid), so it can never smuggle a path into a file name.
pub fn check_uuid(key: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::missing(key, format!("{key} is empty; a uuid is required")));
    }
    match uuid::Uuid::parse_str(value) {
        Ok(u) if value.len() == 36 => Ok(u.hyphenated().to_string()),
        _ => Err(Error::format(
            key,
            format!("{key} {} is not a uuid", shown(value)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ".hidden",
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
            "a=b",
            &"n".repeat(65),
            "caf\u{65}\u{301}",
        ] {
            let e = check_name("name", n).expect_err(n);
            assert!(
                matches!(&e, Error::ValueFormat { key, .. } if key == "name"),
                "{n}"
            );
            assert!(e.to_string().starts_with("name '"), "{e}");
        }
        assert!(matches!(
            check_name("grp_name", ""),
            Err(Error::MissingKey { .. })
        ));
    }

    #[test]
    fn group_names_are_target_safe() {
        assert!(check_group_name("grp_name", "Hosts-a.1:x").is_ok());
        assert!(
            check_group_name("grp_name", "hosts_a").is_err(),
            "tgt refuses '_'"
        );
        assert!(check_group_name("grp_name", "ünï").is_err());
        assert!(check_group_name("grp_name", "a@b").is_err());
    }

    #[test]
    fn iscsi_names() {
        assert_eq!(
            normalize_iscsi_name("e", "IQN.2001-04.COM.Example:Host")
                .ok()
                .as_deref(),
            Some("iqn.2001-04.com.example:host")
        );
        assert_eq!(
            normalize_iscsi_name("e", "eui.02004567a425678d").ok().as_deref(),
            Some("eui.02004567A425678D")
        );
        for bad in [
            "iqn.1994-13.com.redhat:x",
            "iqn.1994-05.com",
            "iqn.1994-05.com.redhat:",
            "iqn.1994-05.com.red hat",
            "host1",
            "iqn.2001-04.com.example:a;rm",
        ] {
            assert!(normalize_iscsi_name("e", bad).is_err(), "{bad}");
        }
        // Too long: the message gives the limit.
        let long = format!("iqn.2001-04.com.example:{}", "x".repeat(226));
        let e = normalize_iscsi_name("entries", &long)
            .expect_err("250 bytes")
            .to_string();
        assert!(e.contains("longer than 223 bytes"), "{e}");
    }

    #[test]
    fn paths() {
        assert_eq!(
            check_abs_path("p", "/srv/./a").ok(),
            Some(PathBuf::from("/srv/a"))
        );
        for bad in ["", "rel", "/", "/a/../b", "/a\n"] {
            assert!(check_abs_path("p", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uuids_and_sizes() {
        assert!(check_uuid("uuid", "0e0f6a2c-1d3b-4d59-9a53-2f0c1b7e8d90").is_ok());
        assert!(check_uuid("uuid", "../../etc/passwd").is_err());
        assert!(check_size("size", 0).is_err());
        assert!(check_size("size", -5).is_err());
        assert_eq!(check_size("size", 5).ok(), Some(5));
    }
}
