//! `ss_record.extra_info`: where the simulated array lives and how it is shaped.
//!
//! Format: `key=value` settings separated by `;`, surrounding blanks ignored:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `state_dir` | yes | absolute directory holding the array's state file (created if absent) |
//! | `capacity` | no | capacity of each pool: bytes, or a number with `K`, `M`, `G`, `T`, `P` (binary units, `iB`/`B` may follow); default `1T` |
//! | `pools` | no | comma-separated pool names; default `pool0` |
//! | `split_ms_per_gib` | no | simulated copy time of a clone split, in milliseconds per started GiB (also the minimum); default `1000`; `0` makes splits finish at once |
//!
//! `capacity` and `pools` shape the array when it is first created; afterwards the state file is
//! authoritative and `validate` refuses settings that contradict it.

use crate::names;
use std::path::PathBuf;

/// Default capacity of each pool: 1 TiB.
pub const DEFAULT_CAPACITY: i64 = 1 << 40;
/// Default pool list.
pub const DEFAULT_POOL: &str = "pool0";
/// Default simulated split time per GiB.
pub const DEFAULT_SPLIT_MS_PER_GIB: u64 = 1000;
/// Smallest pool capacity accepted: 1 MiB.
pub const MIN_CAPACITY: i64 = 1 << 20;
/// Largest pool capacity accepted: 1 EiB.
pub const MAX_CAPACITY: i64 = 1 << 60;
/// Most pools one simulated array may have.
pub const MAX_POOLS: usize = 16;
/// Longest split time per GiB accepted (one minute).
pub const MAX_SPLIT_MS_PER_GIB: u64 = 60_000;

/// The help text shown to whoever configures a simulated array.
pub const SS_EXTRA_INFO_HELP: &str = "Settings as key=value pairs separated by ';'. \
state_dir=/absolute/dir (required): directory holding this simulated array's state file; \
created if missing; no '..' components. \
capacity=SIZE (optional, default 1T): capacity of each pool, in bytes or with a K/M/G/T/P binary suffix. \
pools=NAME[,NAME...] (optional, default pool0): the pools (volume groups). \
split_ms_per_gib=N (optional, default 1000): simulated clone-split time per GiB, 0 = immediate. \
capacity and pools apply when the array is first created in state_dir, and the first \
record that addresses a state_dir fixes the array's storage type (SAN or iSCSI). \
Example: state_dir=/var/lib/spindle/sim/array1;capacity=2T;pools=fast,bulk";

/// The settings read from `extra_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Directory of the state file.
    pub state_dir: PathBuf,
    /// Capacity of each pool, when given.
    pub capacity: Option<i64>,
    /// Pool names, when given.
    pub pools: Option<Vec<String>>,
    /// Simulated split time per GiB.
    pub split_ms_per_gib: u64,
}

/// Why `extra_info` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// True when something required is missing (rather than malformed).
    pub missing: bool,
    /// What is wrong, naming the setting and its value.
    pub message: String,
}

impl ConfigError {
    fn bad(message: String) -> Self {
        ConfigError {
            missing: false,
            message,
        }
    }
}

impl Config {
    /// Pool capacity to use when creating the array.
    pub fn capacity_or_default(&self) -> i64 {
        self.capacity.unwrap_or(DEFAULT_CAPACITY)
    }

    /// Pool names to use when creating the array.
    pub fn pools_or_default(&self) -> Vec<String> {
        self.pools
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_POOL.to_string()])
    }

    /// Parses `extra_info`.
    pub fn parse(extra_info: Option<&str>) -> Result<Config, ConfigError> {
        let text = extra_info.map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(ConfigError {
                missing: true,
                message: "extra_info is empty; the simulated array needs state_dir=/absolute/dir".into(),
            });
        }
        let mut state_dir = None;
        let mut capacity = None;
        let mut pools = None;
        let mut split = None;
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                ConfigError::bad(format!(
                    "extra_info setting {} is not of the form key=value",
                    names::shown(item)
                ))
            })?;
            let (key, value) = (key.trim(), value.trim());
            let seen = match key {
                "state_dir" => state_dir.replace(parse_state_dir(value)?).is_some(),
                "capacity" => capacity.replace(parse_capacity(value)?).is_some(),
                "pools" => pools.replace(parse_pools(value)?).is_some(),
                "split_ms_per_gib" => split.replace(parse_split(value)?).is_some(),
                other => {
                    return Err(ConfigError::bad(format!(
                        "extra_info setting {} is unknown; the settings are state_dir, capacity, pools and split_ms_per_gib",
                        names::shown(other)
                    )))
                }
            };
            if seen {
                return Err(ConfigError::bad(format!("extra_info sets {key} more than once")));
            }
        }
        let state_dir = state_dir.ok_or_else(|| ConfigError {
            missing: true,
            message: format!(
                "extra_info {} has no state_dir=/absolute/dir setting",
                names::shown(text)
            ),
        })?;
        Ok(Config {
            state_dir,
            capacity,
            pools,
            split_ms_per_gib: split.unwrap_or(DEFAULT_SPLIT_MS_PER_GIB),
        })
    }
}

fn parse_state_dir(value: &str) -> Result<PathBuf, ConfigError> {
    let bad = |why: &str| ConfigError::bad(format!("extra_info state_dir {} {why}", names::shown(value)));
    if value.is_empty() {
        return Err(bad("is empty"));
    }
    spindle_api::names::abs_path(value).map_err(bad)
}

/// Parses a byte count with an optional binary suffix (spindle's size syntax; whole numbers
/// only here), within the simulated array's bounds.
pub fn parse_capacity(value: &str) -> Result<i64, ConfigError> {
    let bad = |why: &str| ConfigError::bad(format!("extra_info capacity {} {why}", names::shown(value)));
    if value.contains('.') {
        return Err(bad("is not a whole size such as 500G or 1099511627776"));
    }
    let bytes = spindle_api::units::parse_size(value).map_err(|why| bad(&format!("is not a size: {why}")))?;
    if bytes < MIN_CAPACITY {
        return Err(bad("is smaller than 1M"));
    }
    if bytes > MAX_CAPACITY {
        return Err(bad("is larger than 1024P"));
    }
    Ok(bytes)
}

fn parse_pools(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim) {
        names::check_name("pools", name)
            .map_err(|e| ConfigError::bad(format!("extra_info {}", e.message)))?;
        if out.iter().any(|p| p == name) {
            return Err(ConfigError::bad(format!(
                "extra_info pools names {} twice",
                names::shown(name)
            )));
        }
        out.push(name.to_string());
    }
    if out.len() > MAX_POOLS {
        return Err(ConfigError::bad(format!(
            "extra_info pools names {} pools; at most {MAX_POOLS} are allowed",
            out.len()
        )));
    }
    Ok(out)
}

fn parse_split(value: &str) -> Result<u64, ConfigError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= MAX_SPLIT_MS_PER_GIB)
        .ok_or_else(|| {
            ConfigError::bad(format!(
                "extra_info split_ms_per_gib {} is not a whole number of milliseconds from 0 to {MAX_SPLIT_MS_PER_GIB}",
                names::shown(value)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(Some(s))
    }

    #[test]
    fn full_settings_parse() {
        let c = parse(" state_dir=/tmp/a/b ; capacity=2T;pools=fast, bulk;split_ms_per_gib=0;")
            .expect("valid settings");
        assert_eq!(c.state_dir, PathBuf::from("/tmp/a/b"));
        assert_eq!(c.capacity, Some(2 << 40));
        assert_eq!(c.pools, Some(vec!["fast".to_string(), "bulk".to_string()]));
        assert_eq!(c.split_ms_per_gib, 0);
    }

    #[test]
    fn defaults_apply() {
        let c = parse("state_dir=/srv/sim").expect("valid settings");
        assert_eq!(c.capacity_or_default(), DEFAULT_CAPACITY);
        assert_eq!(c.pools_or_default(), vec![DEFAULT_POOL.to_string()]);
        assert_eq!(c.split_ms_per_gib, DEFAULT_SPLIT_MS_PER_GIB);
    }

    #[test]
    fn capacity_units() {
        assert_eq!(parse_capacity("1048576"), Ok(1 << 20));
        assert_eq!(parse_capacity("10G"), Ok(10 << 30));
        assert_eq!(parse_capacity("10GiB"), Ok(10 << 30));
        assert_eq!(parse_capacity("3tb"), Ok(3 << 40));
        for bad in [
            "",
            "G",
            "1.5T",
            "12X",
            "1K",
            "99999999999999999999",
            "2048P",
            "-1G",
        ] {
            assert!(parse_capacity(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let cases = [
            ("", true, "state_dir"),
            ("capacity=1T", true, "state_dir"),
            ("state_dir=relative/dir", false, "absolute"),
            ("state_dir=/tmp/../etc", false, ".."),
            ("state_dir=/", false, "root"),
            ("state_dir=/tmp/x;state_dir=/tmp/y", false, "more than once"),
            ("state_dir=/tmp/x;colour=blue", false, "colour"),
            ("state_dir=/tmp/x;junk", false, "junk"),
            ("state_dir=/tmp/x;pools=a,a", false, "twice"),
            ("state_dir=/tmp/x;pools=a/b", false, "a/b"),
            ("state_dir=/tmp/x;split_ms_per_gib=-3", false, "-3"),
        ];
        for (text, missing, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.missing, missing, "{text}: {}", e.message);
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
        assert!(Config::parse(None).is_err_and(|e| e.missing));
    }
}
