//! iSCSI text keys (RFC 7143 §6): `key=value` pairs, each terminated by a NUL byte, in the
//! data segment of Login and Text PDUs.

use crate::error::IscsiError;

/// Longest key name RFC 7143 allows.
pub const MAX_KEY_LEN: usize = 63;

/// Ordered `key=value` pairs, as sent or received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextPairs(pub Vec<(String, String)>);

impl TextPairs {
    /// No pairs.
    pub fn new() -> TextPairs {
        TextPairs(Vec::new())
    }

    /// Appends a pair.
    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        self.0.push((key.to_string(), value.into()));
    }

    /// The value of the first pair named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The wire form: `key=value\0` for each pair.
    pub fn encode(&self) -> Result<Vec<u8>, IscsiError> {
        let mut out = Vec::new();
        for (key, value) in &self.0 {
            validate_key(key)?;
            if value.as_bytes().contains(&0) {
                return Err(IscsiError::InvalidArgument(format!(
                    "the value of text key {key} contains a NUL byte"
                )));
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// Parses a data segment. Empty strings between NULs (padding some targets leave) are
    /// skipped; a string without `=` is a protocol violation.
    pub fn parse(data: &[u8]) -> Result<TextPairs, IscsiError> {
        let mut pairs = Vec::new();
        for chunk in data.split(|b| *b == 0) {
            if chunk.is_empty() {
                continue;
            }
            let text = std::str::from_utf8(chunk)
                .map_err(|_| IscsiError::Protocol("a text key=value pair is not UTF-8".to_string()))?;
            let Some((key, value)) = text.split_once('=') else {
                // The item itself is not echoed: login text can carry CHAP values.
                return Err(IscsiError::Protocol(format!(
                    "a {}-byte text item is not key=value",
                    text.len()
                )));
            };
            if key.is_empty() {
                return Err(IscsiError::Protocol(
                    "text data has an empty key name".to_string(),
                ));
            }
            pairs.push((key.to_string(), value.to_string()));
        }
        Ok(TextPairs(pairs))
    }
}

fn validate_key(key: &str) -> Result<(), IscsiError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:+@_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(IscsiError::InvalidArgument(format!(
            "{:?} is not a valid iSCSI text key name",
            excerpt(key)
        )))
    }
}

/// The start of `s`, for messages.
pub(crate) fn excerpt(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Checks that `name` is a well-formed iSCSI name (RFC 7143 §4.2.7): `iqn.`, `eui.` or
/// `naa.` form, at most 223 bytes, no whitespace or control characters.
pub fn validate_iscsi_name(name: &str) -> Result<(), IscsiError> {
    let lower = name.to_ascii_lowercase();
    let well_formed = name.len() <= 223
        && (lower.starts_with("iqn.") || lower.starts_with("eui.") || lower.starts_with("naa."))
        && name.len() > 4
        && name
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '=' && c != ',');
    if well_formed {
        Ok(())
    } else {
        Err(IscsiError::InvalidArgument(format!(
            "{:?} is not an iSCSI name (iqn./eui./naa. form, at most 223 bytes)",
            excerpt(name)
        )))
    }
}

/// Parses an iSCSI boolean (`Yes` / `No`).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

/// Formats an iSCSI boolean.
pub fn format_bool(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}

/// Parses an iSCSI numerical value: decimal, or `0x` hexadecimal.
pub fn parse_number(value: &str) -> Option<u64> {
    if let Some(hex) = value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_pairs_with_nul_terminators() {
        let mut pairs = TextPairs::new();
        pairs.push("InitiatorName", "iqn.2024-01.test:init");
        pairs.push("SessionType", "Normal");
        let wire = pairs.encode().expect("valid");
        assert_eq!(
            wire,
            b"InitiatorName=iqn.2024-01.test:init\0SessionType=Normal\0".to_vec()
        );
        assert_eq!(TextPairs::parse(&wire).expect("parses"), pairs);
    }

    #[test]
    fn parses_values_with_equals_and_empty_values() {
        let data = b"TargetAddress=127.0.0.1:3260,1\0X=a=b\0Empty=\0\0\0";
        let pairs = TextPairs::parse(data).expect("parses");
        assert_eq!(pairs.get("TargetAddress"), Some("127.0.0.1:3260,1"));
        assert_eq!(pairs.get("X"), Some("a=b"));
        assert_eq!(pairs.get("Empty"), Some(""));
        assert_eq!(pairs.get("Missing"), None);
        assert_eq!(pairs.0.len(), 3);
    }

    #[test]
    fn rejects_malformed_text() {
        assert!(TextPairs::parse(b"novalue\0").is_err());
        assert!(TextPairs::parse(b"=x\0").is_err());
        assert!(TextPairs::parse(&[0xff, b'=', b'1', 0]).is_err());
        let mut bad = TextPairs::new();
        bad.push("Bad Key", "x");
        assert!(bad.encode().is_err());
        let mut nul = TextPairs::new();
        nul.push("K", "a\0b");
        assert!(nul.encode().is_err());
    }

    #[test]
    fn iscsi_names() {
        assert!(validate_iscsi_name("iqn.2024-01.org.example:host1").is_ok());
        assert!(validate_iscsi_name("eui.02004567A425678D").is_ok());
        assert!(validate_iscsi_name("naa.52004567BA64678D").is_ok());
        assert!(validate_iscsi_name("host1").is_err());
        assert!(validate_iscsi_name("iqn.").is_err());
        assert!(validate_iscsi_name("iqn.2024-01.x:a b").is_err());
        assert!(validate_iscsi_name(&format!("iqn.{}", "a".repeat(230))).is_err());
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(parse_number("8192"), Some(8192));
        assert_eq!(parse_number("0x2000"), Some(8192));
        assert_eq!(parse_number("-1"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("No"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(format_bool(true), "Yes");
    }
}
