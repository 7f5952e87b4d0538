//! Typed views of `tgtadm --op show` listings, and their parsers.
//!
//! Values that come from tgtd are kept as plain strings: tgtd may hold targets, initiators and
//! accounts that spindle did not create and whose names spindle's validators would refuse.

use serde::{Deserialize, Serialize};

use crate::error::TgtError;
use crate::names::is_address;

/// One target, as `tgtadm --op show --mode target` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Target id.
    pub tid: u32,
    /// Target name (IQN).
    pub name: String,
    /// Low-level driver (`iscsi`).
    pub driver: String,
    /// `ready` or `offline`.
    pub state: String,
    /// Open I_T nexuses (sessions).
    pub sessions: Vec<SessionInfo>,
    /// Logical units, LUN 0 (tgt's own controller) included.
    pub luns: Vec<LunInfo>,
    /// Incoming CHAP accounts bound to the target.
    pub accounts: Vec<String>,
    /// The outgoing (mutual CHAP) account, if any.
    pub outgoing_account: Option<String>,
    /// Initiator-name ACL entries.
    pub acl_initiators: Vec<String>,
    /// Initiator-address ACL entries (`ALL` opens the target to everyone).
    pub acl_addresses: Vec<String>,
}

impl TargetInfo {
    /// The logical unit with number `lun`.
    pub fn lun(&self, lun: u64) -> Option<&LunInfo> {
        self.luns.iter().find(|l| l.lun == lun)
    }
}

/// One I_T nexus of a target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Nexus id.
    pub nexus: u64,
    /// Initiator name.
    pub initiator: String,
    /// Initiator IP addresses of the connections.
    pub addresses: Vec<String>,
}

/// One logical unit of a target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LunInfo {
    /// LUN.
    pub lun: u64,
    /// Device type (`disk`, `controller`, ...).
    pub device_type: String,
    /// The `scsi_id` parameter (page 0x83).
    pub scsi_id: String,
    /// The `scsi_sn` parameter (page 0x80).
    pub scsi_sn: String,
    /// tgt's "MB" figure. tgt computes it with an odd formula (see [`tgt_size_mb`]) and it is
    /// not exact: use READ CAPACITY for exact sizes.
    pub size_mb: u64,
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Whether the unit is online.
    pub online: bool,
    /// Removable medium.
    pub removable: bool,
    /// Read-only.
    pub readonly: bool,
    /// Thin provisioning (UNMAP) enabled.
    pub thin_provisioning: bool,
    /// Backing store type (`rdwr`, `null`, ...).
    pub backing_store_type: String,
    /// Backing file, `None` for tgt's `None`.
    pub backing_path: Option<String>,
    /// The backing file is opened with `O_SYNC`.
    pub oflag_sync: bool,
    /// The backing file is opened with `O_DIRECT`.
    pub oflag_direct: bool,
}

/// `tgtadm --op show --mode sys`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SystemInfo {
    /// `ready` or `offline`.
    pub state: String,
    /// Low-level drivers and their states (`iscsi: ready`).
    pub llds: Vec<(String, String)>,
    /// Backing store types tgtd offers.
    pub backing_stores: Vec<String>,
}

/// The MB figure tgt 1.0.x prints for a size in bytes (`print_disksize` in usr/target.c, C
/// unsigned arithmetic included).
pub fn tgt_size_mb(bytes: u64) -> u64 {
    let sectors = bytes / 512;
    sectors
        .wrapping_sub((sectors / 625).wrapping_sub(974))
        .wrapping_div(1950)
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn yes_no(value: &str, what: &'static str, line: usize) -> Result<bool, TgtError> {
    match value {
        "Yes" => Ok(true),
        "No" => Ok(false),
        other => Err(TgtError::Parse {
            what,
            line,
            reason: format!("expected Yes or No, found {other:?}"),
        }),
    }
}

fn number<T: std::str::FromStr>(value: &str, what: &'static str, line: usize) -> Result<T, TgtError> {
    value.trim().parse().map_err(|_| TgtError::Parse {
        what,
        line,
        reason: format!("expected a number, found {value:?}"),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    System,
    Nexus,
    Lun,
    Account,
    Acl,
    Other,
}

/// Parses `tgtadm --op show --mode target`.
pub fn parse_targets(text: &str) -> Result<Vec<TargetInfo>, TgtError> {
    const WHAT: &str = "target";
    let mut targets: Vec<TargetInfo> = Vec::new();
    let mut section = Section::Other;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let depth = indent(raw);
        let line = raw.trim();
        if depth == 0 {
            let rest = line.strip_prefix("Target ").ok_or_else(|| TgtError::Parse {
                what: WHAT,
                line: n,
                reason: format!("expected \"Target N: NAME\", found {line:?}"),
            })?;
            let (tid, name) = rest.split_once(": ").ok_or_else(|| TgtError::Parse {
                what: WHAT,
                line: n,
                reason: format!("expected \"Target N: NAME\", found {line:?}"),
            })?;
            targets.push(TargetInfo {
                tid: number(tid, WHAT, n)?,
                name: name.to_string(),
                ..TargetInfo::default()
            });
            section = Section::Other;
            continue;
        }
        let target = targets.last_mut().ok_or_else(|| TgtError::Parse {
            what: WHAT,
            line: n,
            reason: "indented line before any target".to_string(),
        })?;
        if depth == 4 {
            section = match line {
                "System information:" => Section::System,
                "I_T nexus information:" => Section::Nexus,
                "LUN information:" => Section::Lun,
                "Account information:" => Section::Account,
                "ACL information:" => Section::Acl,
                _ => Section::Other,
            };
            continue;
        }
        match section {
            Section::System => {
                if let Some((key, value)) = line.split_once(": ") {
                    match key {
                        "Driver" => target.driver = value.to_string(),
                        "State" => target.state = value.to_string(),
                        _ => {}
                    }
                }
            }
            Section::Nexus => {
                if let Some(id) = line.strip_prefix("I_T nexus: ") {
                    target.sessions.push(SessionInfo {
                        nexus: number(id, WHAT, n)?,
                        ..SessionInfo::default()
                    });
                } else if let Some(session) = target.sessions.last_mut() {
                    if let Some(rest) = line.strip_prefix("Initiator: ") {
                        let name = rest.split(" alias:").next().unwrap_or(rest);
                        session.initiator = name.trim().to_string();
                    } else if let Some(ip) = line.strip_prefix("IP Address: ") {
                        session.addresses.push(ip.trim().to_string());
                    }
                }
            }
            Section::Lun => {
                if let Some(lun) = line.strip_prefix("LUN: ") {
                    target.luns.push(LunInfo {
                        lun: number(lun, WHAT, n)?,
                        ..LunInfo::default()
                    });
                    continue;
                }
                let lu = target.luns.last_mut().ok_or_else(|| TgtError::Parse {
                    what: WHAT,
                    line: n,
                    reason: "logical unit attribute before any LUN line".to_string(),
                })?;
                let (key, value) = match line.split_once(':') {
                    Some((k, v)) => (k, v.strip_prefix(' ').unwrap_or(v)),
                    None => continue,
                };
                match key {
                    "Type" => lu.device_type = value.to_string(),
                    "SCSI ID" => lu.scsi_id = value.to_string(),
                    "SCSI SN" => lu.scsi_sn = value.to_string(),
                    "Size" => {
                        // "105 MB, Block size: 512"
                        let (size, block) =
                            value
                                .split_once(", Block size: ")
                                .ok_or_else(|| TgtError::Parse {
                                    what: WHAT,
                                    line: n,
                                    reason: format!("unexpected size line {value:?}"),
                                })?;
                        lu.size_mb = number(size.trim_end_matches(" MB"), WHAT, n)?;
                        lu.block_size = number(block, WHAT, n)?;
                    }
                    "Online" => lu.online = yes_no(value, WHAT, n)?,
                    "Removable media" => lu.removable = yes_no(value, WHAT, n)?,
                    "Readonly" => lu.readonly = yes_no(value, WHAT, n)?,
                    "Thin-provisioning" => lu.thin_provisioning = yes_no(value, WHAT, n)?,
                    "Backing store type" => lu.backing_store_type = value.to_string(),
                    "Backing store path" => lu.backing_path = (value != "None").then(|| value.to_string()),
                    "Backing store flags" => {
                        for flag in value.split(':').map(str::trim) {
                            match flag {
                                "sync" => lu.oflag_sync = true,
                                "direct" => lu.oflag_direct = true,
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            Section::Account => {
                if let Some(user) = line.strip_suffix(" (outgoing)") {
                    target.outgoing_account = Some(user.to_string());
                } else {
                    target.accounts.push(line.to_string());
                }
            }
            Section::Acl => {
                if is_address(line) {
                    target.acl_addresses.push(line.to_string());
                } else {
                    target.acl_initiators.push(line.to_string());
                }
            }
            Section::Other => {}
        }
    }
    Ok(targets)
}

/// Parses `tgtadm --op show --mode account`.
pub fn parse_accounts(text: &str) -> Result<Vec<String>, TgtError> {
    let mut users = Vec::new();
    let mut seen_header = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if indent(raw) == 0 {
            if line == "Account list:" {
                seen_header = true;
                continue;
            }
            return Err(TgtError::Parse {
                what: "account",
                line: i + 1,
                reason: format!("expected \"Account list:\", found {line:?}"),
            });
        }
        if !seen_header {
            return Err(TgtError::Parse {
                what: "account",
                line: i + 1,
                reason: "account before the \"Account list:\" header".to_string(),
            });
        }
        users.push(line.trim_end_matches(" (outgoing)").to_string());
    }
    Ok(users)
}

/// Parses `tgtadm --lld iscsi --op show --mode portal` into `ADDRESS:PORT` strings (IPv6 in
/// brackets), without the portal group tag.
pub fn parse_portals(text: &str) -> Result<Vec<String>, TgtError> {
    let mut portals = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let portal = line.strip_prefix("Portal: ").ok_or_else(|| TgtError::Parse {
            what: "portal",
            line: i + 1,
            reason: format!("expected \"Portal: ADDRESS:PORT,TPGT\", found {line:?}"),
        })?;
        let portal = portal.rsplit_once(',').map_or(portal, |(p, _)| p);
        portals.push(portal.to_string());
    }
    Ok(portals)
}

/// Parses `tgtadm --op show --mode sys`.
pub fn parse_system(text: &str) -> Result<SystemInfo, TgtError> {
    let mut info = SystemInfo::default();
    let mut section = "";
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if indent(raw) == 0 {
            section = match line {
                "System:" => "system",
                "LLDs:" => "llds",
                "Backing stores:" => "bs",
                _ => "",
            };
            continue;
        }
        match section {
            "system" => {
                if let Some(state) = line.strip_prefix("State: ") {
                    info.state = state.to_string();
                }
            }
            "llds" => {
                if let Some((name, state)) = line.split_once(": ") {
                    info.llds.push((name.to_string(), state.to_string()));
                }
            }
            "bs" => {
                let name = line.split(" (").next().unwrap_or(line);
                info.backing_stores.push(name.to_string());
            }
            _ => {}
        }
    }
    if info.state.is_empty() {
        return Err(TgtError::Parse {
            what: "system",
            line: 1,
            reason: "no \"State:\" line under \"System:\"".to_string(),
        });
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGETS: &str = "Target 1: iqn.2024-01.io.spindle:t1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 37
            Initiator: iqn.2024-01.io.spindle:init1 alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags: 
        LUN: 1
            Type: disk
            SCSI ID: 600140512345678901234567890abcde
            SCSI SN: SN0001
            Size: 105 MB, Block size: 512
            Online: No
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: /tmp/tx/lun1.img
            Backing store flags: sync:direct
    Account information:
        alice
        bob (outgoing)
    ACL information:
        10.1.2.3
        ALL
        iqn.2024-01.io.spindle:init1
Target 2: iqn.2024-01.io.other:x
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00020000
            SCSI SN: beaf20
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags: 
    Account information:
    ACL information:
";

    #[test]
    fn targets() {
        let t = parse_targets(TARGETS).expect("valid");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].tid, 1);
        assert_eq!(t[0].name, "iqn.2024-01.io.spindle:t1");
        assert_eq!(t[0].state, "ready");
        assert_eq!(t[0].sessions.len(), 1);
        assert_eq!(t[0].sessions[0].initiator, "iqn.2024-01.io.spindle:init1");
        assert_eq!(t[0].sessions[0].addresses, vec!["127.0.0.1"]);
        assert_eq!(t[0].luns.len(), 2);
        let lu = t[0].lun(1).expect("valid");
        assert_eq!(lu.scsi_id, "600140512345678901234567890abcde");
        assert_eq!(lu.scsi_sn, "SN0001");
        assert_eq!(lu.size_mb, 105);
        assert_eq!(lu.block_size, 512);
        assert!(!lu.online);
        assert_eq!(lu.backing_path.as_deref(), Some("/tmp/tx/lun1.img"));
        assert!(lu.oflag_sync && lu.oflag_direct);
        assert_eq!(t[0].lun(0).expect("valid").scsi_id, "IET     00010000");
        assert_eq!(t[0].lun(0).expect("valid").backing_path, None);
        assert_eq!(t[0].accounts, vec!["alice"]);
        assert_eq!(t[0].outgoing_account.as_deref(), Some("bob"));
        assert_eq!(t[0].acl_addresses, vec!["10.1.2.3", "ALL"]);
        assert_eq!(t[0].acl_initiators, vec!["iqn.2024-01.io.spindle:init1"]);
        assert_eq!(t[1].tid, 2);
        assert!(t[1].accounts.is_empty() && t[1].acl_initiators.is_empty());
        assert!(parse_targets("").expect("valid").is_empty());
        assert!(parse_targets("Garbage\n").is_err());
    }

    #[test]
    fn accounts_portals_system() {
        assert_eq!(
            parse_accounts("Account list:\n    bob\n    alice\n").expect("valid"),
            vec!["bob", "alice"]
        );
        assert!(parse_accounts("Account list:\n").expect("valid").is_empty());
        assert_eq!(
            parse_portals("Portal: [::]:3260,1\nPortal: 0.0.0.0:3260,1\n").expect("valid"),
            vec!["[::]:3260", "0.0.0.0:3260"]
        );
        let sys = parse_system(
            "System:\n    State: ready\n    debug: off\nLLDs:\n    iscsi: ready\n    iser: error\nBacking stores:\n    rdwr (bsoflags sync:direct)\n    aio\n",
        )
        .expect("valid");
        assert_eq!(sys.state, "ready");
        assert_eq!(sys.llds[0], ("iscsi".to_string(), "ready".to_string()));
        assert_eq!(sys.backing_stores, vec!["rdwr", "aio"]);
    }

    #[test]
    fn size_formula_matches_tgt() {
        // Observed on tgt 1.0.85: 100 MiB -> 105, 80 MiB -> 84, 0 (LUN 0) -> 0.
        assert_eq!(tgt_size_mb(100 << 20), 105);
        assert_eq!(tgt_size_mb(80 << 20), 84);
        assert_eq!(tgt_size_mb(0), 0);
    }
}
