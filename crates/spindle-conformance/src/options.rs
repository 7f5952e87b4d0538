//! What a run is told: the storage-server record, the volume group, which checks to report,
//! the prefix of every object it creates, and the optional data path.

use crate::datapath::DataPath;
use crate::error::ConformanceError;
use serde_json::Value;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// The data-path section: a host's initiator and the portal it reaches the array through.
#[derive(Clone)]
pub struct DataPathOptions {
    /// The initiator's iSCSI name; the kit puts it in the access group it presents LUNs to.
    pub initiator: String,
    /// `HOST:PORT` of the array's iSCSI portal.
    pub portal: String,
    /// The initiator that carries the checks out; `None` skips them with a reason.
    pub driver: Option<Arc<dyn DataPath>>,
}

impl fmt::Debug for DataPathOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataPathOptions")
            .field("initiator", &self.initiator)
            .field("portal", &self.portal)
            .field("driver", &self.driver.as_ref().map(|_| "plugged in"))
            .finish()
    }
}

impl DataPathOptions {
    /// Checks the initiator name (`iqn.`, `eui.` or `naa.`) and the portal (`HOST:PORT`).
    pub fn new(initiator: &str, portal: &str) -> Result<Self, ConformanceError> {
        let lower = initiator.to_ascii_lowercase();
        let named = ["iqn.", "eui.", "naa."].iter().any(|p| lower.starts_with(p));
        if !named || initiator.len() < 8 || initiator.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConformanceError::BadOption {
                option: "--initiator",
                reason: format!(
                    "{initiator:?} is not an iSCSI initiator name (iqn.YYYY-MM.domain:name, eui.… or naa.…)"
                ),
            });
        }
        let bad_portal = |why: &str| ConformanceError::BadOption {
            option: "--portal",
            reason: format!("{portal:?} {why}; give HOST:PORT, e.g. 192.0.2.10:3260 or [2001:db8::1]:3260"),
        };
        let (host, port) = portal.rsplit_once(':').ok_or_else(|| bad_portal("has no port"))?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad_portal("has no host"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(bad_portal("holds an IPv6 address without brackets"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(bad_portal("has no TCP port after the last ':'")),
        }
        Ok(DataPathOptions {
            initiator: initiator.to_string(),
            portal: portal.to_string(),
            driver: None,
        })
    }

    /// The same section with `driver` plugged in.
    pub fn with_driver(mut self, driver: Arc<dyn DataPath>) -> Self {
        self.driver = Some(driver);
        self
    }
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The storage-server record every call carries (from `--ss-record FILE`).
    pub ss_record: Value,
    /// The volume group new elements are carved from (`vol_group_name`); `None` leaves the
    /// choice to the plug-in.
    pub vol_group: Option<String>,
    /// Which checks to report (`--only`): comma-separated patterns, each a glob (`*`, `?`) over
    /// whole check ids or else a substring of them. `None` reports every check.
    pub only: Option<String>,
    /// Put in front of the name of everything the run creates (default `conf-<6 hex>-`).
    pub prefix: String,
    /// The data-path section; `None` skips the data-path checks.
    pub data_path: Option<DataPathOptions>,
}

impl Options {
    /// Options for `ss_record` with a fresh prefix and nothing else set.
    pub fn new(ss_record: Value) -> Self {
        Options {
            ss_record,
            vol_group: None,
            only: None,
            prefix: default_prefix(),
            data_path: None,
        }
    }

    /// Checks the options before a run: the record is a dictionary with a uuid, the prefix is
    /// usable in every name, the volume group and the patterns are not empty.
    pub fn check(&self) -> Result<(), ConformanceError> {
        let Some(map) = self.ss_record.as_object() else {
            return Err(ConformanceError::BadOption {
                option: "--ss-record",
                reason: "the ss_record must be a JSON object (a dictionary)".into(),
            });
        };
        if map
            .get("uuid")
            .and_then(Value::as_str)
            .is_none_or(|u| u.trim().is_empty())
        {
            return Err(ConformanceError::BadOption {
                option: "--ss-record",
                reason: "the ss_record has no uuid; every storage-server record carries one".into(),
            });
        }
        check_prefix(&self.prefix)?;
        if self.vol_group.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(ConformanceError::BadOption {
                option: "--vol-group",
                reason: "the volume group name is empty".into(),
            });
        }
        if let Some(only) = &self.only {
            let given = patterns(only);
            if given.is_empty() {
                return Err(ConformanceError::BadOption {
                    option: "--only",
                    reason: "no pattern given".into(),
                });
            }
            let ids = crate::catalogue::catalogue();
            for p in given {
                if !ids.iter().any(|c| matches_pattern(p, &c.id)) {
                    return Err(ConformanceError::BadOption {
                        option: "--only",
                        reason: format!(
                            "pattern {} matches no check (a glob with * or ? matches whole ids such as 'create.page83_id', otherwise a substring of one)",
                            spindle_api::names::shown(p)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// True if check `id` is to be reported.
    pub fn wants(&self, id: &str) -> bool {
        match &self.only {
            None => true,
            Some(only) => patterns(only).iter().any(|p| matches_pattern(p, id)),
        }
    }
}

/// Reads the ss_record file named by `--ss-record`.
pub fn load_ss_record(path: &Path) -> Result<Value, ConformanceError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::ReadSsRecord {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ConformanceError::ParseSsRecord {
        path: path.to_path_buf(),
        source,
    })
}

/// `conf-` and six random hex digits and `-`.
pub fn default_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("conf-{}-", &id[..6])
}

fn check_prefix(prefix: &str) -> Result<(), ConformanceError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 24
        && prefix.starts_with(|c: char| c.is_ascii_alphanumeric())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConformanceError::BadOption {
            option: "--prefix",
            reason: format!(
                "{prefix:?} must be 1 to 24 characters of a-z, 0-9, '-' and '_', starting with a letter or digit, so that every name built from it is one any array accepts"
            ),
        })
    }
}

fn patterns(only: &str) -> Vec<&str> {
    only.split(',').map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// A glob (when `pattern` holds `*` or `?`) over the whole id, else a substring.
pub(crate) fn matches_pattern(pattern: &str, id: &str) -> bool {
    if pattern.contains(['*', '?']) {
        glob(pattern.as_bytes(), id.as_bytes())
    } else {
        id.contains(pattern)
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with one backtrack point for the last '*'.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_substrings() {
        assert!(matches_pattern("remove.*", "remove.twice_refused"));
        assert!(!matches_pattern("remove.*", "snapRemove.twice_refused"));
        assert!(matches_pattern("*twice*", "snapRemove.twice_refused"));
        assert!(matches_pattern("create.?age83_id", "create.page83_id"));
        assert!(matches_pattern("twice", "remove.twice_refused"));
        assert!(!matches_pattern("create.page83_id?", "create.page83_id"));
        let mut o = Options::new(serde_json::json!({"uuid": "u"}));
        o.only = Some("declarations.*, page83".into());
        assert!(o.wants("declarations.plugin_version"));
        assert!(o.wants("list.page83_id"));
        assert!(!o.wants("remove.removes"));
    }

    #[test]
    fn a_pattern_matching_no_check_is_refused() {
        let mut o = Options::new(serde_json::json!({"uuid": "u"}));
        o.only = Some("remove.*".into());
        assert!(o.check().is_ok());
        o.only = Some("remove.*, nomatch*".into());
        let e = o.check().expect_err("refused").to_string();
        assert!(
            e.contains("--only") && e.contains("'nomatch*'") && e.contains("matches no check"),
            "{e}"
        );
    }

    #[test]
    fn default_prefix_is_usable() {
        let p = default_prefix();
        assert!(check_prefix(&p).is_ok(), "{p}");
        assert_eq!(p.len(), "conf-123456-".len());
        assert!(check_prefix("Conf/").is_err());
        assert!(check_prefix("").is_err());
    }

    #[test]
    fn data_path_options_are_checked() {
        assert!(DataPathOptions::new("iqn.2024-01.org.example:host", "192.0.2.1:3260").is_ok());
        assert!(DataPathOptions::new("iqn.2024-01.org.example:host", "[2001:db8::1]:3260").is_ok());
        assert!(DataPathOptions::new("host", "192.0.2.1:3260").is_err());
        assert!(DataPathOptions::new("iqn.2024-01.org.example:host", "192.0.2.1").is_err());
        assert!(DataPathOptions::new("iqn.2024-01.org.example:host", "2001:db8::1:3260").is_err());
    }
}
