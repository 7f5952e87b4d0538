//! Discovery sessions: `SendTargets=All` (RFC 7143 §6.4, Appendix C).

use crate::chap::Chap;
use crate::connection::Connection;
use crate::error::IscsiError;
use crate::login::{self, LoginOptions};
use crate::pdu::{flags, Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::scsi::Lun;
use crate::session::{self, Session};
use crate::text::{parse_number, TextPairs};

/// How many Text Response PDUs one SendTargets answer may span.
const MAX_TEXT_ROUNDS: usize = 1024;

/// One portal at which a discovered target is reachable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Portal {
    /// `host:port` (or `[v6]:port`), as the target wrote it; usable as a `Session::login`
    /// address.
    pub address: String,
    /// The portal group tag, when given.
    pub portal_group_tag: Option<u16>,
}

impl Portal {
    /// Parses a TargetAddress value: `address[:port][,tag]`.
    pub fn parse(value: &str) -> Portal {
        if let Some((address, tag)) = value.rsplit_once(',') {
            if let Some(tag) = parse_number(tag).and_then(|t| u16::try_from(t).ok()) {
                return Portal {
                    address: address.to_string(),
                    portal_group_tag: Some(tag),
                };
            }
        }
        Portal {
            address: value.to_string(),
            portal_group_tag: None,
        }
    }
}

/// A target named in a SendTargets answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredTarget {
    /// The target's iSCSI name.
    pub name: String,
    /// Its portals (empty when the target listed none: then it is reachable where discovery
    /// ran).
    pub portals: Vec<Portal>,
}

/// A target discovered through a portal, and what logging into it showed.
#[derive(Debug)]
pub struct VisibleTarget {
    /// The target's iSCSI name.
    pub name: String,
    /// The portals the SendTargets answer gave for it.
    pub portals: Vec<Portal>,
    /// The LUNs REPORT LUNS listed after logging in, or why the login or the command failed.
    pub luns: Result<Vec<Lun>, IscsiError>,
}

/// Discovery sessions.
#[derive(Debug, Clone, Copy)]
pub struct Discovery;

impl Discovery {
    /// Logs in a discovery session as `initiator` (CHAP when given), asks `SendTargets=All`,
    /// logs out, and returns the targets this initiator may see.
    pub fn send_targets(
        addr: &str,
        initiator: &str,
        chap: Option<&Chap>,
    ) -> Result<Vec<DiscoveredTarget>, IscsiError> {
        let mut opts = LoginOptions::new(initiator);
        opts.chap = chap.cloned();
        Discovery::send_targets_with(addr, &opts)
    }

    /// [`Discovery::send_targets`] with explicit options.
    pub fn send_targets_with(addr: &str, opts: &LoginOptions) -> Result<Vec<DiscoveredTarget>, IscsiError> {
        opts.validate()?;
        let mut conn = Connection::connect(addr, opts.connect_timeout, opts.io_timeout)?;
        let result = (|| {
            login::login(&mut conn, opts, None)?;
            let text = text_exchange(&mut conn, "SendTargets", "All")?;
            let targets = parse_send_targets(&text)?;
            session::logout(&mut conn)?;
            Ok(targets)
        })();
        conn.shutdown();
        result
    }
}

impl Discovery {
    /// Which targets and LUNs `opts.initiator_name` may see through `addr`: SendTargets, then
    /// for each target a login through `addr` itself (not through the TargetAddress values,
    /// which can name addresses not reachable from here), REPORT LUNS and a logout.
    /// Fails only when discovery itself fails; each target carries its own outcome.
    pub fn visible_luns(addr: &str, opts: &LoginOptions) -> Result<Vec<VisibleTarget>, IscsiError> {
        let targets = Discovery::send_targets_with(addr, opts)?;
        Ok(targets
            .into_iter()
            .map(|t| {
                let luns = Session::login_with(addr, &t.name, opts).and_then(|mut s| {
                    let luns = s.report_luns()?;
                    s.logout()?;
                    Ok(luns)
                });
                VisibleTarget {
                    name: t.name,
                    portals: t.portals,
                    luns,
                }
            })
            .collect())
    }
}

/// One Text Request / Response exchange, following Continue bits.
fn text_exchange(conn: &mut Connection, key: &str, value: &str) -> Result<TextPairs, IscsiError> {
    let mut pairs = TextPairs::new();
    pairs.push(key, value);
    let mut data = pairs.encode()?;
    let itt = conn.alloc_itt();
    let mut ttt = RESERVED_TAG;
    let mut text = Vec::new();
    for _ in 0..MAX_TEXT_ROUNDS {
        conn.wait_for_window()?;
        let mut bhs = Bhs::new(Opcode::TextRequest);
        bhs.set_flags(flags::FINAL);
        bhs.set_itt(itt);
        bhs.set_u32_at(20, ttt);
        bhs.set_u32_at(24, conn.cmd_sn);
        bhs.set_u32_at(28, conn.exp_stat_sn);
        conn.send(&Pdu::with_data(bhs, std::mem::take(&mut data)))?;
        conn.cmd_sn = conn.cmd_sn.wrapping_add(1);
        let rsp = conn.recv_for(itt)?;
        if rsp.opcode() != Some(Opcode::TextResponse) {
            return Err(IscsiError::Protocol(format!(
                "a Text Request was answered with opcode {:#04x}",
                rsp.bhs.opcode_raw()
            )));
        }
        text.extend_from_slice(&rsp.data);
        let f = rsp.bhs.flags();
        if f & flags::CONTINUE != 0 || !rsp.bhs.is_final() {
            // More to come: an empty request with the target's transfer tag fetches it.
            ttt = rsp.bhs.u32_at(20);
            continue;
        }
        return TextPairs::parse(&text);
    }
    Err(IscsiError::Protocol("the Text Response never ended".to_string()))
}

/// Groups a SendTargets answer: each TargetName, then its TargetAddress values.
pub fn parse_send_targets(pairs: &TextPairs) -> Result<Vec<DiscoveredTarget>, IscsiError> {
    let mut targets: Vec<DiscoveredTarget> = Vec::new();
    for (key, value) in pairs.iter() {
        match key {
            "TargetName" => targets.push(DiscoveredTarget {
                name: value.to_string(),
                portals: Vec::new(),
            }),
            "TargetAddress" => match targets.last_mut() {
                Some(t) => t.portals.push(Portal::parse(value)),
                None => {
                    return Err(IscsiError::Protocol(
                        "SendTargets answer has a TargetAddress before any TargetName".to_string(),
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_targets_grouping() {
        let data = b"TargetName=iqn.a\0TargetAddress=10.0.0.1:3260,1\0TargetAddress=[fe80::1]:3260,2\0TargetName=iqn.b\0TargetAddress=host\0";
        let pairs = TextPairs::parse(data).expect("parses");
        let targets = parse_send_targets(&pairs).expect("groups");
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].name, "iqn.a");
        assert_eq!(
            targets[0].portals,
            vec![
                Portal {
                    address: "10.0.0.1:3260".into(),
                    portal_group_tag: Some(1)
                },
                Portal {
                    address: "[fe80::1]:3260".into(),
                    portal_group_tag: Some(2)
                }
            ]
        );
        assert_eq!(targets[1].portals[0].address, "host");
        assert_eq!(targets[1].portals[0].portal_group_tag, None);
        let orphan = TextPairs::parse(b"TargetAddress=x\0").expect("parses");
        assert!(parse_send_targets(&orphan).is_err());
    }
}
