//! CHAP authentication (RFC 1994 as profiled by RFC 7143 §12.1.3): MD5 only (`CHAP_A=5`),
//! one-way (the target authenticates the initiator) and optionally mutual (the initiator also
//! authenticates the target).
//!
//! Secrets live in [`Secret`], whose `Debug` output is redacted and which has no `Display`;
//! nothing in this crate logs a secret, a challenge response, or puts either in an error.

use std::fmt;

use md5::{Digest, Md5};

/// A CHAP secret. `Debug` shows only `<redacted>`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The secret's bytes, for computing a response.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret's length in bytes (RFC 7143 recommends at least 12).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s.into_bytes())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(v: Vec<u8>) -> Secret {
        Secret(v)
    }
}

/// The credentials the target must prove it knows, for mutual CHAP.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetCredentials {
    /// The name the target must answer with (`CHAP_N`).
    pub username: String,
    /// The target's secret.
    pub secret: Secret,
}

impl fmt::Debug for TargetCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetCredentials")
            .field("username", &self.username)
            .field("secret", &self.secret)
            .finish()
    }
}

/// CHAP credentials for a login.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    username: String,
    secret: Secret,
    mutual: Option<TargetCredentials>,
}

impl Chap {
    /// One-way CHAP: the initiator proves it knows `secret` under `username`.
    pub fn new(username: impl Into<String>, secret: impl Into<Secret>) -> Chap {
        Chap {
            username: username.into(),
            secret: secret.into(),
            mutual: None,
        }
    }

    /// Also require the target to prove it knows `target_secret` under `target_username`.
    pub fn with_mutual(
        mut self,
        target_username: impl Into<String>,
        target_secret: impl Into<Secret>,
    ) -> Chap {
        self.mutual = Some(TargetCredentials {
            username: target_username.into(),
            secret: target_secret.into(),
        });
        self
    }

    /// The initiator's CHAP user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The initiator's secret.
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The target's credentials, when mutual CHAP is asked for.
    pub fn mutual(&self) -> Option<&TargetCredentials> {
        self.mutual.as_ref()
    }
}

impl fmt::Debug for Chap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chap")
            .field("username", &self.username)
            .field("secret", &self.secret)
            .field("mutual", &self.mutual)
            .finish()
    }
}

/// `CHAP_A` value for MD5.
pub const CHAP_MD5: &str = "5";

/// Length of the challenge this initiator sends for mutual CHAP.
pub const CHALLENGE_LEN: usize = 16;

/// Longest challenge accepted from a target (RFC 7143 §12.1.3 caps it at 1024 bytes).
pub const MAX_CHALLENGE_LEN: usize = 1024;

/// The CHAP response: MD5 over the identifier, the secret and the challenge.
pub fn md5_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update([id]);
    hasher.update(secret);
    hasher.update(challenge);
    let digest = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest);
    out
}

/// An iSCSI binary value in hexadecimal form: `0x` and two lower-case digits a byte.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Decodes an iSCSI binary value: `0x`/`0X` hexadecimal (an odd digit count is padded with a
/// leading zero) or `0b`/`0B` base64.
pub fn decode_binary(value: &str) -> Option<Vec<u8>> {
    if let Some(hex) = value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        decode_hex(hex)
    } else if let Some(b64) = value.strip_prefix("0b").or_else(|| value.strip_prefix("0B")) {
        decode_base64(b64)
    } else {
        None
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes plain hexadecimal digits (no prefix).
pub(crate) fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() {
        return None;
    }
    let digits: Vec<u8> = hex.bytes().map(hex_digit).collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(digits.len() / 2 + 1);
    let mut iter = digits.iter();
    if digits.len() % 2 == 1 {
        out.push(*iter.next()?);
    }
    while let (Some(hi), Some(lo)) = (iter.next(), iter.next()) {
        out.push(hi << 4 | lo);
    }
    Some(out)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let trimmed = text.trim_end_matches('=');
    if trimmed.is_empty() || text.len() - trimmed.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in trimmed.bytes() {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding, and a lone 6-bit group is not a byte.
    if bits >= 6 || acc != 0 {
        return None;
    }
    Some(out)
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_response_matches_known_vector() {
        // MD5(0x2a || "verysecretpw12" || 00 01 .. 0f), computed independently.
        let challenge: Vec<u8> = (0u8..16).collect();
        let r = md5_response(42, b"verysecretpw12", &challenge);
        assert_eq!(encode_hex(&r), "0x8f93f2d2766331186f3fecbdb1d765f5");
        // MD5 of the single byte 0x01.
        assert_eq!(
            encode_hex(&md5_response(1, b"", b"")),
            "0x55a54008ad1ba589aa210d2629c1df41"
        );
    }

    #[test]
    fn binary_values_decode_in_both_encodings() {
        let bytes: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            decode_binary("0x000102030405060708090a0b0c0d0e0f"),
            Some(bytes.clone())
        );
        assert_eq!(
            decode_binary("0X000102030405060708090A0B0C0D0E0F"),
            Some(bytes.clone())
        );
        assert_eq!(decode_binary("0bAAECAwQFBgcICQoLDA0ODw=="), Some(bytes));
        assert_eq!(decode_binary("0xabc"), Some(vec![0x0a, 0xbc]));
        assert_eq!(decode_binary("0bTWFu"), Some(b"Man".to_vec()));
        assert_eq!(decode_binary("0bTWE="), Some(b"Ma".to_vec()));
        assert_eq!(decode_binary("0x"), None);
        assert_eq!(decode_binary("0xzz"), None);
        assert_eq!(decode_binary("1234"), None);
        assert_eq!(decode_binary("0b!!!!"), None);
        assert_eq!(decode_binary("0bT"), None);
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let chap = Chap::new("user1", "topsecret-value").with_mutual("tgt", "other-secret-xx");
        let shown = format!("{chap:?}");
        assert!(shown.contains("user1"));
        assert!(shown.contains("tgt"));
        assert!(!shown.contains("topsecret-value"));
        assert!(!shown.contains("other-secret-xx"));
        assert_eq!(chap.secret().len(), 15);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
