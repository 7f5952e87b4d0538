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
//! | `tgt_control` | for exports | control port N of the tgtd instance that exports the LUNs (`tgtd -C N`, 0..=32767); without it the array keeps its export state but serves nothing |
//! | `portal` | no | `ADDRESS:PORT` that tgtd listens on (`[v6]:PORT` for IPv6); default `127.0.0.1:3260`; needs `tgt_control` |
//! | `tgt_socket` | no | absolute base of tgtd's management socket (`TGT_IPC_SOCKET`; the socket is `BASE.N`); default tgt's `/var/run/tgtd/socket`; needs `tgt_control` |
//!
//! The plug-in's own keys (how to reach the array: [`CLIENT_KEYS`]) share the string and are
//! skipped here.
//!
//! Pools are registered in the state database the first time a configuration names them;
//! afterwards a configuration that gives a registered pool another directory is refused.

use crate::error::{Error, Result};
use crate::names::{self, shown, shown_path};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Most pools one array may have.
pub const MAX_POOLS: usize = 16;
/// Largest split bandwidth limit accepted, MiB/s.
pub const MAX_SPLIT_RATE_MIB: u64 = 1 << 20;

/// The default iSCSI portal of the array's tgtd.
pub const DEFAULT_PORTAL: &str = "127.0.0.1:3260";

/// Keys of `extra_info` that belong to the plug-in (how it reaches the array) rather than to
/// the array's configuration; [`ArrayConfig::from_extra_info`] skips them.
pub const CLIENT_KEYS: &[&str] = &[
    "array_program",
    "array_socket",
    "ssh",
    "ssh_key",
    "ssh_port",
    "known_hosts",
    "ssh_mux",
    "ssh_control_dir",
];

/// The help text shown to whoever configures a Linux array (`ss_extra_info_help`).
pub const SS_EXTRA_INFO_HELP: &str = "Settings as key=value pairs separated by ';'. \
Array settings: \
pools=NAME:/abs/dir[,NAME:/abs/dir...] (required): each pool is a directory on XFS (reflink=1) or btrfs (a btrfs subvolume makes createMultiSnap atomic; on XFS or a plain btrfs directory it raises NoSuchOperationEx); \
on other file systems snapshots and clones are unsupported. \
tgt_control=N (required): control port of the tgtd instance that exports the LUNs (tgtd -C N, 0..32767); \
the array starts it when it is not running and brings it to the array's export state after every change. \
portal=ADDRESS:PORT (optional, default 127.0.0.1:3260, IPv6 as [::1]:3260): where tgtd listens for initiators. \
tgt_socket=/abs/base (optional, default tgt's /var/run/tgtd/socket): base of tgtd's management socket (TGT_IPC_SOCKET). \
state=/abs/dir (optional, default <first pool>/.spindle-array): where the array keeps its state database. \
iqn_prefix=iqn.YYYY-MM.reverse.domain[:x] (optional): targets are named <iqn_prefix>:<access group>. \
split_rate_mib=N (optional, default 0 = unlimited): bandwidth limit of clone splits in MiB/s. \
How the plug-in reaches the array: admin_host localhost runs the array program on this host; any other admin_host, \
127.0.0.1 and ::1 included unless ssh=no, is reached as admin_user@admin_host over ssh (admin_user empty: the user \
spindle runs as) with key authentication only (admin_passwd is not used) and a verified host key. \
array_program=PROGRAM (optional): the array program, an absolute path or a name on PATH; default spindle-array \
beside this program (else on PATH) locally, spindle-array on the remote PATH over ssh. \
array_socket=/abs/socket (optional): the socket of a resident array program \
(spindle-array daemon --socket /abs/socket, on the array's host, run by admin_user), which saves each request a program start \
and a database open; while nothing listens there the array program runs once per request as without it. \
ssh=yes|no (optional, default yes): with no, 127.0.0.1 and ::1 are local too. \
ssh_key=/abs/private/key (optional): the identity for ssh -i. \
ssh_port=N (optional, default 22). \
known_hosts=/abs/file (optional, default ssh's own files): the only known_hosts file consulted; the host key must be in it. \
ssh_mux=yes|no (optional, default yes): requests share one authenticated ssh connection per array (ssh ControlMaster), \
kept 60 s after the last request, instead of a new connection and key exchange each. \
ssh_control_dir=/abs/dir (optional, default /run/spindle/ssh for root, else $XDG_RUNTIME_DIR/spindle-ssh or /tmp/spindle-ssh-UID): \
where the shared connections' sockets live; made mode 0700; a directory that is not this user's alone is not used. \
CHAP: with ss_record chap True, username and passwd become the CHAP account every target requires; chap False removes it; a record without chap leaves the array's CHAP as it is. \
Example: pools=fast:/srv/xfs/fast,bulk:/srv/btrfs/bulk;tgt_control=1;portal=192.0.2.10:3260;iqn_prefix=iqn.2025-01.com.example:array1;ssh_key=/root/.ssh/id_ed25519;known_hosts=/etc/spindle/known_hosts";

/// How the array's LUNs are exported: the tgtd instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TgtSettings {
    /// tgtd's control port N (`tgtd -C N`), 0..=32767 (tgtadm keeps it in a C short).
    pub control_port: u16,
    /// The iSCSI portal tgtd listens on.
    #[serde(default = "default_portal")]
    pub portal: SocketAddr,
    /// Base of the management socket (`TGT_IPC_SOCKET`); tgt's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

fn default_portal() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3260))
}

/// Longest management socket base: tgtd appends `.N.lock` and a Unix socket path holds 107
/// bytes.
pub const MAX_SOCKET_BASE: usize = 100;

impl TgtSettings {
    /// Settings for control port `control_port` with the default portal and socket.
    pub fn new(control_port: u16) -> TgtSettings {
        TgtSettings {
            control_port,
            portal: default_portal(),
            socket: None,
        }
    }

    /// Checks the values.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArray(m));
        if self.control_port > i16::MAX as u16 {
            return bad(format!(
                "config tgt_control {} is above 32767 (tgtadm keeps the control port in a C short)",
                self.control_port
            ));
        }
        if self.portal.port() == 0 {
            return bad(format!("config portal {} has no port", self.portal));
        }
        if let Some(s) = &self.socket {
            let text = s.to_string_lossy();
            let clean = names::check_abs_path("tgt_socket", &text)
                .map_err(|e| Error::InvalidArray(format!("config {e}")))?;
            if &clean != s {
                return bad(format!(
                    "config tgt_socket {} is not in normal form",
                    shown(&text)
                ));
            }
            if text.len() > MAX_SOCKET_BASE {
                return bad(format!(
                    "config tgt_socket {} is longer than {MAX_SOCKET_BASE} bytes (a Unix socket path holds 107)",
                    shown(&text)
                ));
            }
        }
        Ok(())
    }
}

/// Whether `path` can be a tgt backing-file directory: letters, digits, `._+@-` per component.
fn tgt_safe_path(path: &std::path::Path) -> bool {
    path.to_str().is_some_and(|s| {
        s.split('/').skip(1).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'@'))
        })
    })
}

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
    /// The tgtd instance that exports the LUNs; `None`: exports are desired state only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tgt: Option<TgtSettings>,
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
            tgt: None,
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
                        shown_path(&q.path),
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
        if let Some(t) = &self.tgt {
            t.check()?;
            for p in &self.pools {
                if !tgt_safe_path(&p.path) {
                    return bad(format!(
                        "config pool directory {} cannot hold LUNs tgt exports: tgt takes only letters, digits and '._+@-' in path components",
                        shown_path(&p.path)
                    ));
                }
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
            tgt: None,
        };
        let mut control: Option<u16> = None;
        let mut portal: Option<SocketAddr> = None;
        let mut socket: Option<PathBuf> = None;
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
                "tgt_control" => {
                    control = Some(
                        value
                            .parse::<u16>()
                            .ok()
                            .filter(|n| *n <= i16::MAX as u16)
                            .ok_or_else(|| {
                                Error::InvalidArray(format!(
                                    "extra_info tgt_control {} is not a control port between 0 and 32767",
                                    shown(value)
                                ))
                            })?,
                    )
                }
                "portal" => {
                    portal = Some(value.parse::<SocketAddr>().map_err(|_| {
                        Error::InvalidArray(format!(
                            "extra_info portal {} is not ADDRESS:PORT (an IP address; IPv6 as [::1]:3260)",
                            shown(value)
                        ))
                    })?)
                }
                "tgt_socket" => {
                    socket = Some(
                        names::check_abs_path("tgt_socket", value)
                            .map_err(|e| Error::InvalidArray(format!("extra_info {e}")))?,
                    )
                }
                other => {
                    return Err(Error::InvalidArray(format!(
                        "extra_info setting {} is unknown; the settings are pools, state, iqn_prefix, split_rate_mib, tgt_control, portal and tgt_socket (and the plug-in's {})",
                        shown(other),
                        client_keys.join(", ")
                    )))
                }
            }
            seen.push(key);
        }
        match control {
            Some(control_port) => {
                cfg.tgt = Some(TgtSettings {
                    control_port,
                    portal: portal.unwrap_or_else(default_portal),
                    socket,
                })
            }
            None if portal.is_some() || socket.is_some() => {
                return Err(Error::InvalidArray(
                    "extra_info sets portal or tgt_socket without tgt_control; name the tgtd instance with tgt_control=N".into(),
                ))
            }
            None => {}
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
    fn parses_tgt_settings() {
        let c = ArrayConfig::from_extra_info(
            Some("pools=p:/srv/a;tgt_control=7;portal=[::1]:3261;tgt_socket=/run/x/sock;ssh_key=/k"),
            CLIENT_KEYS,
        )
        .expect("valid");
        let t = c.tgt.expect("tgt");
        assert_eq!(t.control_port, 7);
        assert_eq!(t.portal.to_string(), "[::1]:3261");
        assert_eq!(t.socket, Some(PathBuf::from("/run/x/sock")));
        let c = ArrayConfig::from_extra_info(Some("pools=p:/srv/a;tgt_control=0"), &[]).expect("valid");
        assert_eq!(c.tgt.expect("tgt").portal.to_string(), DEFAULT_PORTAL);
        let c = ArrayConfig::from_extra_info(Some("pools=p:/srv/a"), &[]).expect("valid");
        assert!(c.tgt.is_none());
        let json = r#"{"pools":[{"name":"p","path":"/srv/a"}],"tgt":{"control_port":3}}"#;
        let c: ArrayConfig = serde_json::from_str(json).expect("valid");
        assert_eq!(c.tgt.expect("tgt").portal.to_string(), DEFAULT_PORTAL);
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
            ("pools=p:/srv/a;tgt_control=40000", "32767"),
            ("pools=p:/srv/a;tgt_control=x", "tgt_control"),
            ("pools=p:/srv/a;portal=1.2.3.4:3260", "without tgt_control"),
            ("pools=p:/srv/a;tgt_control=1;portal=host:3260", "ADDRESS:PORT"),
            ("pools=p:/srv/a;tgt_control=1;portal=1.2.3.4:0", "no port"),
            ("pools=p:/srv/a;tgt_control=1;tgt_socket=rel", "absolute"),
            ("pools=p:/srv/a b;tgt_control=1", "tgt takes only"),
        ] {
            let e = ArrayConfig::from_extra_info(Some(text), &[]).expect_err(text);
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }
}
