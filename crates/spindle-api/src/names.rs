//! Name rules shared by spindle's arrays: what an element, pool or group name may hold, how a
//! value is quoted in a message, and the normal form of an iSCSI name. Pure: each array wraps
//! these in its own exceptions and adds the rules its backend needs.

/// Longest element, pool or access-group name, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Most characters in an iSCSI name (RFC 3720).
pub const MAX_ISCSI_NAME: usize = 223;

/// Characters a shell would interpret, refused in names.
pub const SHELL_META: &[char] = &[
    '`', '$', '&', '|', ';', '<', '>', '(', ')', '{', '}', '[', ']', '*', '?', '!', '~', '#', '\'', '"',
    '\\', '^',
];

/// Characters that show as nothing or reorder the text around them (soft hyphen, zero-width
/// and joiner characters, bidirectional marks, embeddings, overrides and isolates, invisible
/// operators, the byte order mark, tag characters): a name holding one looks like another
/// name, or turns the line it is printed in around, so they are refused in names.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A value quoted for a message, the one quoting every spindle message uses: in single
/// quotes (which need no escaping inside JSON), control characters and quotes escaped, cut
/// after 80 characters.
pub fn shown(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 78 {
        let cut: String = escaped.chars().take(75).collect();
        format!("'{cut}...'")
    } else {
        format!("'{escaped}'")
    }
}

/// A path quoted for a message, as [`shown`] quotes a value, but a long one is cut in the
/// middle, not at the end: its last component (the file a message is about) stays in sight
/// however deep the directory, with the start of the path.
pub fn shown_path(path: &std::path::Path) -> String {
    let escaped: Vec<char> = path
        .to_string_lossy()
        .chars()
        .flat_map(char::escape_debug)
        .collect();
    if escaped.len() > 78 {
        let head: String = escaped[..30].iter().collect();
        let tail: String = escaped[escaped.len() - 45..].iter().collect();
        format!("'{head}...{tail}'")
    } else {
        format!("'{}'", escaped.iter().collect::<String>())
    }
}

/// Why a non-empty `value` is not a usable name, if it is not: every fault, e.g. "contains
/// blanks and shell metacharacters". `also_refused` names characters a backend refuses on
/// top of [`SHELL_META`] (they count as metacharacters in the message).
pub fn name_fault(value: &str, also_refused: &[char]) -> Option<String> {
    use unicode_normalization::UnicodeNormalization;
    // Two spellings of one text (`é` as one character, or as `e` and a combining accent)
    // look the same and would be two names: only the composed one (NFC, what keyboards
    // type) is accepted, and the message shows it.
    let composed = value.nfc().collect::<String>();
    let not_nfc = format!(
        "is not in Unicode normal form C (write it as {})",
        shown(&composed)
    );
    let mixed = script_mix_fault(value);
    let checks: [(bool, &str); 11] = [
        (composed != value, &not_nfc),
        (mixed.is_some(), mixed.as_deref().unwrap_or_default()),
        (
            value.chars().count() > MAX_NAME_LEN,
            "is longer than 64 characters",
        ),
        (value.chars().any(char::is_control), "contains control characters"),
        (
            value.chars().any(is_invisible_or_bidi),
            "contains invisible or text-direction characters",
        ),
        (
            value.chars().any(|c| c.is_whitespace() && !c.is_control()),
            "contains blanks",
        ),
        (value.contains('/'), "contains '/'"),
        (value.contains(".."), "contains '..'"),
        (value == ".", "is '.'"),
        (
            value
                .chars()
                .any(|c| SHELL_META.contains(&c) || also_refused.contains(&c)),
            "contains shell metacharacters",
        ),
        (value.starts_with('-'), "starts with '-'"),
    ];
    let faults: Vec<&str> = checks
        .iter()
        .filter(|(bad, _)| *bad)
        .map(|(_, why)| *why)
        .collect();
    match faults.as_slice() {
        [] => None,
        [one] => Some((*one).to_string()),
        [first @ .., last] => Some(format!(
            "{} and {}",
            first.join(", "),
            last.trim_start_matches("contains ")
        )),
    }
}

/// Why `value` mixes the letters of several scripts, if it does beyond what Unicode's
/// "highly restrictive" identifiers allow (UTS #39, section 5.2: one script, or Latin with
/// Chinese, Japanese or Korean). Look-alike letters of two scripts (Latin `a`, Cyrillic `а`)
/// make two names that read the same: a host presented the wrong LUN. Digits, punctuation
/// and symbols belong to every script.
fn script_mix_fault(value: &str) -> Option<String> {
    use unicode_script::{Script, UnicodeScript};
    use unicode_security::mixed_script::AugmentedScriptSet;
    if !AugmentedScriptSet::for_str(value).is_empty() {
        return None;
    }
    let not_latin: String = value.chars().filter(|c| c.script() != Script::Latin).collect();
    let others = AugmentedScriptSet::for_str(&not_latin);
    if not_latin.len() < value.len() && (others.jpan || others.kore || others.hanb) {
        return None;
    }
    let mut scripts: Vec<&str> = Vec::new();
    for c in value.chars() {
        let script = c.script();
        if !matches!(script, Script::Common | Script::Inherited | Script::Unknown)
            && !scripts.contains(&script.full_name())
        {
            scripts.push(script.full_name());
        }
    }
    let named = match scripts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => "several scripts".to_string(),
    };
    Some(format!(
        "mixes letters of {named} (look-alike letters of two scripts make names that read the same)"
    ))
}

/// Longest path accepted in a setting.
pub const MAX_PATH_LEN: usize = 1024;

/// A non-empty `value` as an absolute path with `.` components dropped, or why it is not one:
/// too long, control characters, relative, a `..` component, or the root directory. Purely
/// textual: it never looks at the file system.
pub fn abs_path(value: &str) -> Result<std::path::PathBuf, &'static str> {
    use std::path::{Component, Path};
    if value.len() > MAX_PATH_LEN {
        return Err("is longer than 1024 bytes");
    }
    if value.chars().any(char::is_control) {
        return Err("contains control characters");
    }
    let path = Path::new(value);
    if !path.is_absolute() {
        return Err("is not an absolute path");
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("has a '..' component");
    }
    let clean: std::path::PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if clean.parent().is_none() {
        return Err("is the root directory");
    }
    Ok(clean)
}

/// True when `s` is hex digits of one of the lengths `lens`.
pub fn all_hex(s: &str, lens: &[usize]) -> bool {
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
    let month_ok = rest
        .get(5..7)
        .and_then(|m| m.parse::<u8>().ok())
        .is_some_and(|m| (1..=12).contains(&m));
    let date_ok = b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && month_ok
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
            && u.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b':'))
    });
    labels_ok && unique_ok
}

/// What an iSCSI name must be, for messages about `entry`, which is not one.
pub fn iscsi_name_rule(entry: &str) -> &'static str {
    if entry.len() > MAX_ISCSI_NAME {
        "is longer than 223 bytes, the most an iSCSI name may hold"
    } else {
        "is not an iSCSI name: iqn.YYYY-MM.reverse.domain[:id], eui. + 16 hex digits or naa. + 16 or 32 hex digits"
    }
}

/// The normal form of an iSCSI name, or `None` if `entry` is not one:
/// `iqn.YYYY-MM.reverse.domain[:unique]` (lower case), `eui.` + 16 hex digits or `naa.` + 16
/// or 32 hex digits (hex in upper case).
pub fn normalize_iscsi_name(entry: &str) -> Option<String> {
    let lower = entry.to_ascii_lowercase();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iscsi_names_are_normalised_or_refused() {
        assert_eq!(
            normalize_iscsi_name("IQN.2026-11.org.Example:Host1").as_deref(),
            Some("iqn.2026-11.org.example:host1")
        );
        assert_eq!(
            normalize_iscsi_name("eui.02004567a425678d").as_deref(),
            Some("eui.02004567A425678D")
        );
        for bad in [
            "iqn.2026-13.org.example",
            "iqn.2026-11.example",
            "eui.123",
            "naa.xyz",
            "host1",
        ] {
            assert_eq!(normalize_iscsi_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_are_quoted_escaped_and_cut() {
        assert_eq!(shown("db1"), "'db1'");
        assert_eq!(shown("a'b\n"), "'a\\'b\\n'");
        let long = shown(&"x".repeat(200));
        assert_eq!(long.chars().count(), 80);
        assert!(long.ends_with("...'"));
    }

    #[test]
    fn long_paths_keep_their_end() {
        let p = std::path::Path::new(
            "/var/lib/spindle-array/registrations/b1a9359a-83b0-4215-8173-833f38b39d8c.json",
        );
        assert_eq!(shown_path(p), format!("'{}'", p.display()));
        let deep = format!(
            "/srv/{}/registrations/b1a9359a-83b0-4215-8173-833f38b39d8c.json",
            "d/".repeat(40)
        );
        let s = shown_path(std::path::Path::new(&deep));
        assert_eq!(s.chars().count(), 80, "{s}");
        assert!(s.starts_with("'/srv/d/d/"), "{s}");
        assert!(s.ends_with("/b1a9359a-83b0-4215-8173-833f38b39d8c.json'"), "{s}");
        assert!(s.contains("..."), "{s}");
        assert_eq!(shown_path(std::path::Path::new("/a'b")), "'/a\\'b'");
    }

    #[test]
    fn name_faults_include_the_backend_extras() {
        assert_eq!(name_fault("lun1", &[]), None);
        assert_eq!(name_fault("a%b", &[]), None);
        assert_eq!(
            name_fault("a%b", &['%']).as_deref(),
            Some("contains shell metacharacters")
        );
        assert_eq!(name_fault("a/b", &[]).as_deref(), Some("contains '/'"));
        assert_eq!(name_fault("..", &[]).as_deref(), Some("contains '..'"));
        assert_eq!(name_fault(".", &[]).as_deref(), Some("is '.'"));
        assert_eq!(name_fault("../x", &[]).as_deref(), Some("contains '/' and '..'"));
        // A name that looks like another, or turns its line around, is refused.
        for bad in [
            "vm1\u{200B}",
            "x\u{202E}gpj.exe",
            "\u{FEFF}vm1",
            "a\u{2066}b",
            "a\u{00AD}b",
        ] {
            assert_eq!(
                name_fault(bad, &[]).as_deref(),
                Some("contains invisible or text-direction characters"),
                "{bad:?}"
            );
        }
        assert_eq!(name_fault("\u{e9}t\u{e9}-\u{1F642}", &[]), None);
        // The same text decomposed would look the same and be another name.
        assert_eq!(
            name_fault("e\u{301}t\u{e9}", &[]).as_deref(),
            Some("is not in Unicode normal form C (write it as '\u{e9}t\u{e9}')")
        );
        // Hangul jamo that compose into one syllable.
        assert!(name_fault("\u{1100}\u{1161}", &[]).is_some_and(|f| f.contains("normal form C")));
        // Look-alike letters of two scripts: Latin "vm" with a Cyrillic "м", Latin with Greek.
        for (bad, scripts) in [
            ("v\u{43C}1", "Latin and Cyrillic"),
            ("\u{3B1}lpha", "Greek and Latin"),
            ("\u{441}\u{3BF}py", "Cyrillic, Greek and Latin"),
        ] {
            assert_eq!(
                name_fault(bad, &[]),
                Some(format!(
                    "mixes letters of {scripts} (look-alike letters of two scripts make names that read the same)"
                )),
                "{bad:?}"
            );
        }
        // One script, with digits and symbols; Latin with Chinese, Japanese or Korean.
        for good in [
            "\u{432}\u{43C}-1",
            "\u{3B1}\u{3B2}-2",
            "vm-\u{6771}\u{4EAC}",
            "vm-\u{3068}\u{3046}\u{304D}\u{3087}\u{3046}",
            "vm-\u{C11C}\u{C6B8}",
            "\u{6771}\u{4EAC}\u{30BF}\u{30EF}\u{30FC}",
        ] {
            assert_eq!(name_fault(good, &[]), None, "{good:?}");
        }
        // Every fault is named.
        assert_eq!(
            name_fault("$(touch x)", &[]).as_deref(),
            Some("contains blanks and shell metacharacters")
        );
    }
}
