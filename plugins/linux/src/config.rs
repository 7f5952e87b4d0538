//! The array's configuration: which directories are pools, where the state lives, how its
//! iSCSI targets are named.
//!
//! It reaches the array-side program as the `config` object of every request (see
//! [`crate::protocol`]); the plug-in builds it from `ss_record.extra_info` with
//! [`ArrayConfig::from_extra_info`]. Format of `extra_info`: `key=value` settings separated by
//! `;`, blanks around them ignored:
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `pools` | yes | `NAME:/abs/dir[,NAME:/abs/dir...]`: each pool (volume group) is a directory on a reflink-capable file system (XFS with reflink=1, btrfs) |
//! | `state` | no | absolute directory of the state database; default `<first pool>/.spindle-array` |
//! | `iqn_prefix` | no | prefix of target names, `<iqn_prefix>:<group>`; default `iqn.2025-01.invalid.spindle:<first 8 hex digits of the array id>` |
//! | `split_rate_mib` | no | bandwidth limit of a clone split's copy, MiB/s; `0` (default) = unlimited |
//!
//! Pools are registered in the state database the first time a configuration names them;
//! afterwards a configuration that gives a registered pool another directory is refused.

use crate::error::{Error, Result};
use crate::names::{self, shown};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Most pools one array may have.
pub const MAX_POOLS: usize = 16;
/// Largest split bandwidth limit accepted, MiB/s.
pub const MAX_SPLIT_RATE_MIB: u64 = 1 << 20;

/// The help text shown to whoever configures a Linux array (`ss_extra_info_help`).
pub const SS_EXTRA_INFO_HELP: &str = "Settings as key=value pairs separated by ';'. \
pools=NAME:/abs/dir[,NAME:/abs/dir...] (required): each pool is a directory on XFS (reflink=1) or btrfs; \
on other file systems snapshots and clones are unsupported. \
state=/abs/dir (optional, default <first pool>/.spindle-array): where the array keeps its state database. \
iqn_prefix=iqn.YYYY-MM.reverse.domain[:x] (optional): targets are named <iqn_prefix>:<access group>. \
split_rate_mib=N (optional, default 0 = unlimited): bandwidth limit of clone splits in MiB/s. \
Example: pools=fast:/srv/xfs/fast,bulk:/srv/btrfs/bulk;iqn_prefix=iqn.2025-01.com.example:array1";

/// One pool: a name and a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolConfig {
    /// The pool's name (`vol_name`).
    pub name: String,
    /// Absolute directory holding the pool's files.
    pub path: PathBuf,
}

/// The configuration every request carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayConfig {
    /// The pools, in order; the first one is the default home of the state directory.
    pub pools: Vec<PoolConfig>,
    /// State directory; default `<first pool>/.spindle-array`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PathBuf>,
    /// Prefix of target IQNs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iqn_prefix: Option<String>,
    /// Split bandwidth limit in MiB/s; 0 or absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_rate_mib: Option<u64>,
}

impl ArrayConfig {
    /// A configuration of pools `(name, dir)` with every other setting defaulted.
    pub fn with_pools<N: Into<String>, P: Into<PathBuf>>(pools: impl IntoIterator<Item = (N, P)>) -> Self {
        ArrayConfig {
            pools: pools
                .into_iter()
                .map(|(n, p)| PoolConfig {
                    name: n.into(),
                    path: p.into(),
                })
                .collect(),
            state: None,
            iqn_prefix: None,
            split_rate_mib: None,
        }
    }

    /// The state directory in force.
    pub fn state_dir(&self) -> Result<PathBuf> {
        match (&self.state, self.pools.first()) {
            (Some(s), _) => Ok(s.clone()),
            (None, Some(p)) => Ok(p.path.join(".spindle-array")),
            (None, None) => Err(Error::InvalidArray(
                "config names no pools; at least one pool (pools=NAME:/abs/dir) is required".into(),
            )),
        }
    }

    /// Checks every setting; a configuration that arrives as JSON is checked before use.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArray(m));
        if self.pools.is_empty() {
            return bad("config names no pools; at least one pool (pools=NAME:/abs/dir) is required".into());
        }
        if self.pools.len() > MAX_POOLS {
            return bad(format!(
                "config names {} pools; at most {MAX_POOLS} are allowed",
                self.pools.len()
            ));
        }
        for (i, p) in self.pools.iter().enumerate() {
            names::check_name("pools", &p.name).map_err(|e| Error::InvalidArray(format!("config {e}")))?;
            if p.name.contains(':') {
                return bad(format!("config pool name {} contains ':'", shown(&p.name)));
            }
            let text = p.path.to_string_lossy();
            let clean = names::check_abs_path("pools", &text)
                .map_err(|e| Error::InvalidArray(format!("config {e}")))?;
            if clean != p.path {
                return bad(format!("config pool path {} is not in normal form", shown(&text)));
            }
            for q in &self.pools[..i] {
                if q.name == p.name {
                    return bad(format!("config names pool {} twice", shown(&p.name)));
                }
                if q.path.starts_with(&p.path) || p.path.starts_with(&q.path) {
                    return bad(format!(
                        "config pool directories {} and {} overlap",
                        shown(&q.path.to_string_lossy()),
                        shown(&text)
                    ));
                }
            }
        }
        if let Some(s) = &self.state {
            let text = s.to_string_lossy();
            let clean = names::check_abs_path("state", &text)
                .map_err(|e| Error::InvalidArray(format!("config {e}")))?;
            if &clean != s {
                return bad(format!("config state {} is not in normal form", shown(&text)));
            }
        }
        if let Some(prefix) = &self.iqn_prefix {
            let normal = names::normalize_iscsi_name("iqn_prefix", prefix)
                .map_err(|e| Error::InvalidArray(format!("config {e}")))?;
            if !normal.starts_with("iqn.") || &normal != prefix {
                return bad(format!(
                    "config iqn_prefix {} must be a lower-case iqn. name",
                    shown(prefix)
                ));
            }
            if prefix.len() > names::MAX_ISCSI_NAME - names::MAX_NAME_LEN - 1 {
                return bad(format!(
                    "config iqn_prefix {} leaves no room for group names",
                    shown(prefix)
                ));
            }
        }
        if let Some(r) = self.split_rate_mib {
            if r > MAX_SPLIT_RATE_MIB {
                return bad(format!(
                    "config split_rate_mib {r} is larger than {MAX_SPLIT_RATE_MIB}"
                ));
            }
        }
        Ok(())
    }

    /// Parses `extra_info`. Keys in `client_keys` belong to the plug-in (how to reach the array,
    /// for example) and are skipped; any other unknown key is refused.
    pub fn from_extra_info(extra_info: Option<&str>, client_keys: &[&str]) -> Result<ArrayConfig> {
        let text = extra_info.map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(Error::InvalidArray(
                "extra_info is empty; the Linux array needs pools=NAME:/abs/dir".into(),
            ));
        }
        let mut cfg = ArrayConfig {
            pools: Vec::new(),
            state: None,
            iqn_prefix: None,
            split_rate_mib: None,
        };
        let mut seen: Vec<&str> = Vec::new();
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                Error::InvalidArray(format!(
                    "extra_info setting {} is not of the form key=value",
                    shown(item)
                ))
            })?;
            let (key, value) = (key.trim(), value.trim());
            if client_keys.contains(&key) {
                continue;
            }
            if seen.contains(&key) {
                return Err(Error::InvalidArray(format!(
                    "extra_info sets {} more than once",
                    shown(key)
                )));
            }
            match key {
                "pools" => {
                    for spec in value.split(',').map(str::trim) {
                        let (name, path) = spec.split_once(':').ok_or_else(|| {
                            Error::InvalidArray(format!(
                                "extra_info pools entry {} is not NAME:/abs/dir",
                                shown(spec)
                            ))
                        })?;
                        let path = names::check_abs_path("pools", path.trim())
                            .map_err(|e| Error::InvalidArray(format!("extra_info {e}")))?;
                        cfg.pools.push(PoolConfig {
                            name: name.trim().to_string(),
                            path,
                        });
                    }
                }
                "state" => {
                    cfg.state = Some(
                        names::check_abs_path("state", value)
                            .map_err(|e| Error::InvalidArray(format!("extra_info {e}")))?,
                    )
                }
                "iqn_prefix" => cfg.iqn_prefix = Some(value.to_ascii_lowercase()),
                "split_rate_mib" => {
                    cfg.split_rate_mib = Some(value.parse::<u64>().map_err(|_| {
                        Error::InvalidArray(format!(
                            "extra_info split_rate_mib {} is not a whole number of MiB/s",
                            shown(value)
                        ))
                    })?)
                }
                other => {
                    return Err(Error::InvalidArray(format!(
                        "extra_info setting {} is unknown; the settings are pools, state, iqn_prefix and split_rate_mib",
                        shown(other)
                    )))
                }
            }
            seen.push(key);
        }
        cfg.check()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_settings() {
        let c = ArrayConfig::from_extra_info(
            Some(" pools=fast:/srv/a, bulk:/srv/b ; state=/var/lib/x;iqn_prefix=iqn.2025-01.com.example:arr;split_rate_mib=5;ssh=host"),
            &["ssh"],
        )
        .expect("valid");
        assert_eq!(c.pools.len(), 2);
        assert_eq!(c.pools[1].path, PathBuf::from("/srv/b"));
        assert_eq!(c.state_dir().ok(), Some(PathBuf::from("/var/lib/x")));
        assert_eq!(c.split_rate_mib, Some(5));
    }

    #[test]
    fn default_state_is_in_the_first_pool() {
        let c = ArrayConfig::from_extra_info(Some("pools=p:/srv/a"), &[]).expect("valid");
        assert_eq!(c.state_dir().ok(), Some(PathBuf::from("/srv/a/.spindle-array")));
    }

    #[test]
    fn bad_settings_name_the_setting() {
        for (text, needle) in [
            ("", "empty"),
            ("state=/x", "no pools"),
            ("pools=p:rel", "absolute"),
            ("pools=p:/a/../b", ".."),
            ("pools=a/b:/srv/a", "a/b"),
            ("pools=p:/srv/a,p:/srv/b", "twice"),
            ("pools=p:/srv/a,q:/srv/a/b", "overlap"),
            ("pools=p:/srv/a;colour=blue", "colour"),
            ("pools=p:/srv/a;pools=q:/srv/b", "more than once"),
            ("pools=p:/srv/a;iqn_prefix=foo", "iqn_prefix"),
            ("pools=p:/srv/a;split_rate_mib=-1", "split_rate_mib"),
            ("pools=p;x:/srv/a", "NAME:/abs/dir"),
            ("pools=p:/srv/a;junk", "key=value"),
        ] {
            let e = ArrayConfig::from_extra_info(Some(text), &[]).expect_err(text);
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }
}
