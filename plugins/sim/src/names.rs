//! What names and access-group entries the simulated array accepts.

use spindle_api::{PluginException, PluginResult, StorageType};

use spindle_api::names::{name_fault, normalize_iscsi_name};
pub use spindle_api::names::{shown, MAX_NAME_LEN};

/// Checks a name given under `key`: `MissingKeyEx` when empty, `ValueFormatEx` when unusable.
pub fn check_name(key: &str, value: &str) -> PluginResult<()> {
    if value.is_empty() {
        return Err(PluginException::missing_key(
            key,
            format!("{key} is empty; a name is required"),
        ));
    }
    match name_fault(value, &[]) {
        None => Ok(()),
        Some(why) => Err(PluginException::value_format(
            key,
            format!("{key} {} {why}", shown(value)),
        )),
    }
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
            .filter(|h| spindle_api::names::all_hex(h, &[16]))
            .map(|h| format!("0x{h}")),
        StorageType::Iscsi => normalize_iscsi_name(entry),
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
            assert!(e.message.starts_with("name '"), "{}", e.message);
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
                "iqn.2010-12.org.example.host:disk.0-a",
                "iqn.2010-12.org.example.host:disk.0-a",
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
            // RFC 3720 allows no '_' (and tgt refuses it in a target name).
            "iqn.2010-12.org.example.host:disk.0_a",
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
