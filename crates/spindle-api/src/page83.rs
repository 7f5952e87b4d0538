//! `makeMPPage83FromRawPage83`: turns a raw SCSI page 0x83 identifier into the form multipath
//! uses as a device's WWID (the form `scsi_id --whitelisted` prints): one digit naming the
//! designator type, then the identifier — `3` + hex for NAA, `2` + hex for EUI-64,
//! `1` + text for a T10 vendor id, `8` + text for a SCSI name string.

use std::fmt;

/// Why a raw page 83 id cannot be formatted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Page83Error {
    /// Not hexadecimal.
    #[error("raw page 83 id '{0}' is not hexadecimal")]
    NotHex(String),
    /// Hex, but neither a VPD page 0x83, a designation descriptor nor an identifier.
    #[error("raw page 83 id '{0}' is neither a VPD page 0x83, a designation descriptor nor an NAA or EUI-64 identifier")]
    Unrecognised(String),
    /// A page without a usable designator.
    #[error("VPD page 0x83 '{0}' holds no NAA, EUI-64, T10 or SCSI name designator for the logical unit")]
    NoDesignator(String),
}

/// A designator pulled out of page 0x83.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Designator {
    kind: u8,
    association: u8,
    bytes: Vec<u8>,
}

impl Designator {
    /// scsi_id's preference: NAA (IEEE registered extended first), EUI-64, T10, SCSI name.
    fn rank(&self) -> u8 {
        match self.kind {
            3 => match self.bytes.first().map(|b| b >> 4) {
                Some(6) => 0,
                Some(5) => 1,
                _ => 2,
            },
            2 => 3,
            1 => 4,
            8 => 5,
            _ => u8::MAX,
        }
    }

    fn format(&self) -> Option<String> {
        match self.kind {
            3 => Some(format!("3{}", hex(&self.bytes))),
            2 => Some(format!("2{}", hex(&self.bytes))),
            1 | 8 => {
                let text: String = String::from_utf8_lossy(&self.bytes)
                    .trim_end_matches('\0')
                    .trim()
                    .chars()
                    .map(|c| if c.is_whitespace() { '_' } else { c })
                    .collect();
                Some(format!("{}{}", self.kind, text))
            }
            _ => None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn descriptors(mut data: &[u8]) -> Option<Vec<Designator>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return None;
        }
        let len = data[3] as usize;
        let body = data.get(4..4 + len)?;
        out.push(Designator {
            kind: data[1] & 0x0f,
            association: (data[1] >> 4) & 0x03,
            bytes: body.to_vec(),
        });
        data = &data[4 + len..];
    }
    Some(out)
}

fn best(ds: &[Designator]) -> Option<String> {
    ds.iter()
        .filter(|d| d.association == 0 && d.rank() != u8::MAX)
        .min_by_key(|d| d.rank())
        .and_then(Designator::format)
}

/// Formats a raw page 83 id. Accepts, as hex (spaces, colons, dashes and a `0x` prefix are
/// ignored): a whole VPD page 0x83, one designation descriptor, or a bare NAA / EUI-64
/// identifier. An id already in multipath form (odd length, type digit first) is returned
/// normalised to lower case.
pub fn make_mp_page83_from_raw_page83(raw: &str) -> Result<String, Page83Error> {
    let cleaned: String = raw
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-' | '\t' | '\n'))
        .collect::<String>()
        .to_ascii_lowercase();
    if cleaned.is_empty() || !cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Page83Error::NotHex(raw.to_string()));
    }
    // Already formatted: a type digit in front of an even number of hex digits.
    if cleaned.len() % 2 == 1 {
        let (t, rest) = cleaned.split_at(1);
        let nibble = rest.chars().next().and_then(|c| c.to_digit(16));
        return match (t, nibble) {
            ("3", Some(2 | 3 | 5 | 6)) | ("2", Some(_)) => Ok(cleaned),
            _ => Err(Page83Error::Unrecognised(raw.to_string())),
        };
    }
    let bytes = unhex(&cleaned).ok_or_else(|| Page83Error::NotHex(raw.to_string()))?;
    // A whole page: byte 1 is the page code, bytes 2..4 the length of what follows.
    if bytes.len() >= 4 && bytes[1] == 0x83 {
        let page_len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if page_len == bytes.len() - 4 {
            if let Some(ds) = descriptors(&bytes[4..]) {
                return best(&ds).ok_or_else(|| Page83Error::NoDesignator(raw.to_string()));
            }
        }
    }
    // One designation descriptor.
    if bytes.len() >= 4 && bytes[3] as usize == bytes.len() - 4 {
        if let Some(ds) = descriptors(&bytes) {
            if let Some(s) = best(&ds) {
                return Ok(s);
            }
        }
    }
    // A bare NAA identifier (8 or 16 bytes, NAA field 2, 3, 5 or 6).
    let naa = bytes[0] >> 4;
    if matches!(bytes.len(), 8 | 16) && matches!(naa, 2 | 3 | 5 | 6) {
        return Ok(format!("3{cleaned}"));
    }
    Err(Page83Error::Unrecognised(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_naa_gets_the_naa_type_digit() {
        assert_eq!(
            make_mp_page83_from_raw_page83("60014056E0B1E3A4B9E4A57A1D7C5E9B").as_deref(),
            Ok("360014056e0b1e3a4b9e4a57a1d7c5e9b")
        );
    }

    #[test]
    fn whole_page_prefers_naa_6_over_t10_and_naa_3() {
        // A page as tgt builds it: T10 (type 1), NAA-6 (type 3), NAA-3 (type 3).
        let t10 = "0201001c".to_string() + &hex(b"IET     deadbeefdeadbeefdead");
        let naa6 = "01030010600144f0deadbeefdeadbeefdeadbeef";
        let naa3 = "0103000830000000000000001";
        let naa3 = &naa3[..naa3.len() - 1];
        let body = format!("{t10}{naa6}{naa3}");
        let page = format!("0083{:04x}{body}", body.len() / 2);
        assert_eq!(
            make_mp_page83_from_raw_page83(&page).as_deref(),
            Ok("3600144f0deadbeefdeadbeefdeadbeef")
        );
    }

    #[test]
    fn formatted_ids_are_kept_and_garbage_is_refused() {
        assert_eq!(
            make_mp_page83_from_raw_page83("3600144F0DEADBEEFDEADBEEFDEADBEEF").as_deref(),
            Ok("3600144f0deadbeefdeadbeefdeadbeef")
        );
        assert!(make_mp_page83_from_raw_page83("zz").is_err());
        assert!(make_mp_page83_from_raw_page83("").is_err());
        assert!(make_mp_page83_from_raw_page83("0000").is_err());
    }
}
