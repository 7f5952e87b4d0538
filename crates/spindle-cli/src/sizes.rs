//! Sizes as people type and read them. K, M, G, T and P are binary (powers of 1024), with or
//! without a trailing `B` or `iB`: `10G` = `10GB` = `10GiB` = 10737418240 bytes. A bare number
//! is bytes.

/// How a size argument is explained in `--help`.
pub const SIZE_HELP: &str = "Size: 10G, 512M, 1.5T, 4096 (bytes), 10GiB, 10GB. K, M, G, T, P \
are binary (powers of 1024, as storage admins expect), with or without B or iB: \
10G = 10GB = 10GiB = 10737418240 bytes";

pub use spindle_api::units::parse_size;

/// `10.0 GiB`, `1.5 TiB`, `512 B`; `-` for a negative (unknown) size.
pub fn format_size(bytes: i64) -> String {
    if bytes < 0 {
        return "-".into();
    }
    const NAMES: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut value = bytes as f64;
    while value >= 1024.0 && unit < NAMES.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    // 1023.96 GiB would print as 1024.0 GiB: say 1.0 TiB instead.
    if (value * 10.0).round() >= 10240.0 && unit < NAMES.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", NAMES[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: i64 = 1 << 30;

    #[test]
    fn accepts_what_admins_type() {
        for (text, bytes) in [
            ("10G", 10 * GIB),
            ("10g", 10 * GIB),
            ("10GB", 10 * GIB),
            ("10GiB", 10 * GIB),
            ("10gib", 10 * GIB),
            ("10 G", 10 * GIB),
            (" 10G ", 10 * GIB),
            ("512M", 512 << 20),
            ("1.5T", 3 << 39),
            ("0.5K", 512),
            ("4096", 4096),
            ("4096B", 4096),
            ("1K", 1024),
            ("1KiB", 1024),
            ("2P", 2 << 50),
            (".5M", 512 << 10),
            ("1.3G", 1_395_864_372), // 1395864371.2 rounded up
            ("9223372036854775807", i64::MAX),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn refuses_garbage_zero_negative_and_overflow_with_a_reason() {
        for (text, reason) in [
            ("", "needed"),
            ("   ", "needed"),
            ("0", "more than 0"),
            ("0G", "more than 0"),
            ("0.0T", "more than 0"),
            ("-5G", "negative"),
            ("-1", "negative"),
            ("ten", "not a size"),
            ("G", "not a size"),
            ("1.2.3G", "not a size"),
            ("5.G", "not a size"),
            ("1e9", "unknown unit 'e9'"),
            ("10X", "unknown unit 'X'"),
            ("10 gigs", "unknown unit"),
            ("10iB", "unknown unit"),
            ("4096.5", "whole number"),
            ("8E", "unknown unit"),
            ("8192P", "too large"),
            ("9223372036854775808", "too large"),
            ("123456789012345678901234", "too many digits"),
        ] {
            let err = parse_size(text).expect_err(text);
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn formats_in_binary_units_with_one_decimal() {
        for (bytes, text) in [
            (0, "0 B"),
            (512, "512 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (10 * GIB, "10.0 GiB"),
            (3 << 39, "1.5 TiB"),
            (1024 * GIB - (1 << 20), "1.0 TiB"),
            (i64::MAX, "8.0 EiB"),
            (-1, "-"),
        ] {
            assert_eq!(format_size(bytes), text, "{bytes}");
        }
    }

    #[test]
    fn formatting_then_parsing_round_trips_whole_units() {
        for bytes in [GIB, 10 * GIB, 512 << 20, 3 << 39] {
            let text = format_size(bytes).replace(' ', "");
            assert_eq!(parse_size(&text), Ok(bytes), "{text}");
        }
    }
}
