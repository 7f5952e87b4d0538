//! Sizes as people type them, shared by every place spindle reads one (the CLI, array
//! settings). K, M, G, T and P are binary (powers of 1024), with or without a trailing `B` or
//! `iB`: `10G` = `10GB` = `10GiB` = 10737418240 bytes. A bare number is bytes.

const UNITS: [(&str, u32); 6] = [("", 0), ("K", 1), ("M", 2), ("G", 3), ("T", 4), ("P", 5)];

/// Parses a size in bytes: `10G`, `512M`, `1.5T`, `4096`, `10GiB`, `10GB` (case does not
/// matter). Fractions of a byte are rounded up. Refuses garbage, zero, negative sizes and
/// sizes past `i64::MAX`, saying why (clap adds the argument's name and the value).
pub fn parse_size(raw: &str) -> Result<i64, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("a size is needed, e.g. 10G".into());
    }
    if s.starts_with('-') {
        return Err("a size cannot be negative".into());
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = (&s[..split], s[split..].trim_start());
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if number.is_empty()
        || !digits_ok(int)
        || !digits_ok(frac)
        || (int.is_empty() && frac.is_empty())
        || (number.contains('.') && frac.is_empty())
    {
        return Err("not a size: use a number and an optional unit, e.g. 10G, 512M, 1.5T or 4096".into());
    }
    let upper = unit.to_ascii_uppercase();
    let prefix = upper
        .strip_suffix("IB")
        .filter(|p| !p.is_empty())
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let Some(&(_, power)) = UNITS.iter().find(|(u, _)| *u == prefix) else {
        return Err(format!(
            "unknown unit '{unit}': use K, M, G, T or P (binary), e.g. 10G"
        ));
    };
    if power == 0 && !frac.is_empty() {
        return Err("a size in bytes must be a whole number".into());
    }
    if int.len() > 20 || frac.len() > 18 {
        return Err("too many digits".into());
    }
    let int_v: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| "not a number")?
    };
    let frac_v: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| "not a number")?
    };
    let scale = 10u128.pow(frac.len() as u32);
    let multiplier = 1u128 << (10 * power);
    let numerator = (int_v * scale + frac_v) * multiplier;
    let bytes = numerator.div_ceil(scale);
    if bytes == 0 {
        return Err("a size must be more than 0".into());
    }
    i64::try_from(bytes).map_err(|_| format!("too large: the largest size is {} bytes", i64::MAX))
}
