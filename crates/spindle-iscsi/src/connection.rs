//! One TCP connection to a target portal: PDU I/O with timeouts, sequence numbers
//! (CmdSN / ExpStatSN / ExpCmdSN / MaxCmdSN, RFC 7143 §4.2.2) and the target-initiated PDUs
//! that can arrive at any time (NOP-In pings, Asynchronous Messages, Rejects).

use std::io::{BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{reject_reason_text, IscsiError};
use crate::pdu::{flags, sn_le, sn_lt, Bhs, Opcode, Pdu, RESERVED_TAG};

/// The well-known iSCSI port.
pub const DEFAULT_PORT: u16 = 3260;

/// Largest data segment accepted during login, before MaxRecvDataSegmentLength applies
/// (RFC 7143 §13.12: 8192 during login).
pub const LOGIN_MAX_RECV: usize = 8192;

/// Resolves `host:port`, `host`, `[v6]:port`, `[v6]` or a bare IP address (port 3260 when
/// none is given).
pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>, IscsiError> {
    let resolve_err = |reason: String| IscsiError::Resolve {
        addr: addr.to_string(),
        reason,
    };
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, DEFAULT_PORT)]);
    }
    let with_port = if let Some(inner) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        format!("[{inner}]:{DEFAULT_PORT}")
    } else if !addr.contains(':') {
        format!("{addr}:{DEFAULT_PORT}")
    } else {
        addr.to_string()
    };
    let list: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| resolve_err(e.to_string()))?
        .collect();
    if list.is_empty() {
        return Err(resolve_err("no addresses".to_string()));
    }
    Ok(list)
}

/// Something the target said on its own initiative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetEvent {
    /// Asynchronous Message event 0: a SCSI asynchronous event, with its sense data.
    ScsiAsyncEvent(Vec<u8>),
    /// Event 1: the target asks the initiator to log out within the given seconds.
    LogoutRequested {
        /// Parameter3: seconds to log out in.
        within_seconds: u16,
    },
    /// Event 4: the target asks to renegotiate parameters (not acted on).
    NegotiationRequested,
    /// Any other event code.
    Other(u8),
}

#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) peer: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub(crate) cmd_sn: u32,
    pub(crate) exp_stat_sn: u32,
    stat_sn_seen: bool,
    pub(crate) exp_cmd_sn: u32,
    pub(crate) max_cmd_sn: u32,
    next_itt: u32,
    /// The largest data segment accepted from the target.
    pub(crate) max_recv: usize,
    pub(crate) events: Vec<TargetEvent>,
}

impl Connection {
    pub(crate) fn connect(
        addr: &str,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Connection, IscsiError> {
        let candidates = resolve(addr)?;
        let mut last_err = None;
        for candidate in candidates {
            match TcpStream::connect_timeout(&candidate, connect_timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(io_timeout))?;
                    stream.set_write_timeout(Some(io_timeout))?;
                    stream.set_nodelay(true)?;
                    let writer = stream.try_clone()?;
                    return Ok(Connection {
                        peer: candidate.to_string(),
                        reader: BufReader::with_capacity(256 * 1024, stream),
                        writer,
                        cmd_sn: 1,
                        exp_stat_sn: 0,
                        stat_sn_seen: false,
                        exp_cmd_sn: 1,
                        max_cmd_sn: 1,
                        next_itt: 1,
                        max_recv: LOGIN_MAX_RECV,
                        events: Vec::new(),
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(IscsiError::Connect {
            addr: addr.to_string(),
            source: last_err.unwrap_or_else(|| std::io::Error::other("no address to try")),
        })
    }

    /// A fresh Initiator Task Tag (never the reserved 0xffffffff).
    pub(crate) fn alloc_itt(&mut self) -> u32 {
        let itt = self.next_itt;
        self.next_itt = self.next_itt.wrapping_add(1);
        if self.next_itt == RESERVED_TAG {
            self.next_itt = 0;
        }
        itt
    }

    /// Sends already-encoded PDU bytes.
    pub(crate) fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), IscsiError> {
        self.writer.write_all(bytes)?;
        Ok(())
    }

    pub(crate) fn send(&mut self, pdu: &Pdu) -> Result<(), IscsiError> {
        let bytes = pdu.encode()?;
        self.send_bytes(&bytes)
    }

    /// Receives the next PDU and applies its sequence numbers.
    pub(crate) fn recv(&mut self) -> Result<Pdu, IscsiError> {
        let pdu = Pdu::read_from(&mut self.reader, self.max_recv)?;
        self.track(&pdu.bhs);
        Ok(pdu)
    }

    fn track(&mut self, bhs: &Bhs) {
        let Some(op) = bhs.opcode() else { return };
        let advances_stat_sn = match op {
            Opcode::ScsiResponse
            | Opcode::LoginResponse
            | Opcode::TextResponse
            | Opcode::LogoutResponse
            | Opcode::TaskManagementResponse
            | Opcode::Reject
            | Opcode::AsyncMessage => true,
            Opcode::DataIn => bhs.flags() & flags::STATUS != 0,
            Opcode::NopIn => bhs.itt() != RESERVED_TAG,
            _ => false,
        };
        if advances_stat_sn {
            let next = bhs.u32_at(24).wrapping_add(1);
            if !self.stat_sn_seen || sn_le(self.exp_stat_sn, next) {
                self.exp_stat_sn = next;
                self.stat_sn_seen = true;
            }
        }
        if matches!(
            op,
            Opcode::NopIn
                | Opcode::ScsiResponse
                | Opcode::TaskManagementResponse
                | Opcode::LoginResponse
                | Opcode::TextResponse
                | Opcode::DataIn
                | Opcode::LogoutResponse
                | Opcode::ReadyToTransfer
                | Opcode::AsyncMessage
                | Opcode::Reject
        ) {
            let exp = bhs.u32_at(28);
            let max = bhs.u32_at(32);
            // RFC 7143 §4.2.2.1: ignore both when MaxCmdSN < ExpCmdSN - 1.
            if sn_le(exp.wrapping_sub(1), max) {
                if sn_lt(self.exp_cmd_sn, exp) {
                    self.exp_cmd_sn = exp;
                }
                if sn_lt(self.max_cmd_sn, max) {
                    self.max_cmd_sn = max;
                }
            }
        }
    }

    /// Starts the command window from a login response (later responses only move it on).
    pub(crate) fn reset_window(&mut self, exp_cmd_sn: u32, max_cmd_sn: u32) {
        self.exp_cmd_sn = exp_cmd_sn;
        self.max_cmd_sn = max_cmd_sn;
    }

    /// Handles a PDU the target sent on its own initiative. `Ok(true)` when it was one
    /// (and has been dealt with), `Ok(false)` when it is something else.
    fn handle_unsolicited(&mut self, pdu: &Pdu) -> Result<bool, IscsiError> {
        match pdu.opcode() {
            Some(Opcode::NopIn) if pdu.bhs.itt() == RESERVED_TAG => {
                let ttt = pdu.bhs.u32_at(20);
                if ttt != RESERVED_TAG {
                    // A ping: answer with a NOP-Out carrying its tag and data.
                    let mut bhs = Bhs::new(Opcode::NopOut);
                    bhs.set_immediate(true);
                    bhs.set_flags(flags::FINAL);
                    bhs.set_lun(pdu.bhs.lun());
                    bhs.set_itt(RESERVED_TAG);
                    bhs.set_u32_at(20, ttt);
                    bhs.set_u32_at(24, self.cmd_sn);
                    bhs.set_u32_at(28, self.exp_stat_sn);
                    self.send(&Pdu::with_data(bhs, pdu.data.clone()))?;
                }
                Ok(true)
            }
            Some(Opcode::AsyncMessage) => {
                let event = pdu.bhs.0[36];
                match event {
                    0 => {
                        let sense = if pdu.data.len() >= 2 {
                            let len = usize::from(u16::from_be_bytes([pdu.data[0], pdu.data[1]]));
                            pdu.data[2..(2 + len).min(pdu.data.len())].to_vec()
                        } else {
                            Vec::new()
                        };
                        self.events.push(TargetEvent::ScsiAsyncEvent(sense));
                    }
                    1 => self.events.push(TargetEvent::LogoutRequested {
                        within_seconds: pdu.bhs.u16_at(42),
                    }),
                    2 => {
                        return Err(IscsiError::SessionEnded(
                            "the target announced it will drop the connection".to_string(),
                        ))
                    }
                    3 => {
                        return Err(IscsiError::SessionEnded(
                            "the target announced it will drop all connections of the session".to_string(),
                        ))
                    }
                    4 => self.events.push(TargetEvent::NegotiationRequested),
                    other => self.events.push(TargetEvent::Other(other)),
                }
                Ok(true)
            }
            Some(Opcode::Reject) => {
                let reason = pdu.bhs.0[2];
                Err(IscsiError::Rejected {
                    reason,
                    reason_text: reject_reason_text(reason),
                })
            }
            _ => Ok(false),
        }
    }

    /// Receives the next PDU for task `itt`, answering pings and recording events on the way.
    pub(crate) fn recv_for(&mut self, itt: u32) -> Result<Pdu, IscsiError> {
        loop {
            let pdu = self.recv()?;
            if self.handle_unsolicited(&pdu)? {
                continue;
            }
            if pdu.bhs.itt() != itt {
                return Err(IscsiError::Protocol(format!(
                    "received a PDU (opcode {:#04x}) with task tag {:#010x}, expected {:#010x}",
                    pdu.bhs.opcode_raw(),
                    pdu.bhs.itt(),
                    itt
                )));
            }
            return Ok(pdu);
        }
    }

    /// Waits until CmdSN is inside the target's command window.
    pub(crate) fn wait_for_window(&mut self) -> Result<(), IscsiError> {
        while sn_lt(self.max_cmd_sn, self.cmd_sn) {
            let pdu = self.recv()?;
            if !self.handle_unsolicited(&pdu)? {
                return Err(IscsiError::Protocol(format!(
                    "received an unexpected PDU (opcode {:#04x}) while the command window was closed",
                    pdu.bhs.opcode_raw()
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn shutdown(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_with_and_without_port() {
        let one = resolve("127.0.0.1:3261").expect("resolves");
        assert_eq!(one[0].port(), 3261);
        assert_eq!(resolve("127.0.0.1").expect("resolves")[0].port(), 3260);
        assert_eq!(resolve("::1").expect("resolves")[0].port(), 3260);
        assert_eq!(resolve("[::1]").expect("resolves")[0].port(), 3260);
        assert_eq!(resolve("[::1]:900").expect("resolves")[0].port(), 900);
        assert!(resolve("127.0.0.1:notaport").is_err());
    }
}
