//! A normal session in full feature phase: SCSI commands over one connection, one command at
//! a time.

use std::collections::HashMap;

use crate::chap::Chap;
use crate::connection::{Connection, TargetEvent};
use crate::error::IscsiError;
use crate::login::{self, LoginOptions, NegotiatedParams};
use crate::pdu::{encode_parts, flags, Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::scsi::{self, cdb, Capacity, DeviceIdentification, Lun, ScsiStatus, Sense, StandardInquiry};

/// Which way data moves for a command, and how much.
#[derive(Debug, Clone, Copy)]
pub enum DataDirection<'a> {
    /// No data.
    None,
    /// Read up to this many bytes (the Expected Data Transfer Length).
    Read(usize),
    /// Write these bytes.
    Write(&'a [u8]),
}

/// The outcome of one SCSI command as the target reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// The iSCSI Response byte (0: command completed at target).
    pub response: u8,
    /// The SCSI status.
    pub status: ScsiStatus,
    /// Data read (empty for writes and commands without data), without the underflow.
    pub data: Vec<u8>,
    /// Sense data, for CHECK CONDITION.
    pub sense: Option<Sense>,
    /// Residual count when the target reported an underflow (less data than expected).
    pub underflow: u32,
    /// Residual count when the target reported an overflow (more data than expected).
    pub overflow: u32,
}

/// Counters of what crossed the wire, to show which data-transfer paths were taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// SCSI Command PDUs sent.
    pub commands: u64,
    /// Bytes sent as immediate data (in SCSI Command PDUs).
    pub immediate_data_bytes: u64,
    /// Unsolicited Data-Out PDUs sent (target transfer tag 0xffffffff).
    pub unsolicited_data_out_pdus: u64,
    /// Data-Out PDUs sent in answer to R2Ts.
    pub solicited_data_out_pdus: u64,
    /// R2Ts received.
    pub r2ts: u64,
    /// Data-In PDUs received.
    pub data_in_pdus: u64,
    /// Data-In PDUs that carried the SCSI status (no separate SCSI Response).
    pub data_in_with_status: u64,
    /// Bytes written (all Data-Out and immediate data).
    pub bytes_written: u64,
    /// Bytes received in Data-In PDUs.
    pub bytes_read: u64,
}

/// A logged-in normal session.
#[derive(Debug)]
pub struct Session {
    conn: Connection,
    params: NegotiatedParams,
    max_transfer_bytes: usize,
    unit_attention_retries: u32,
    block_sizes: HashMap<Lun, u32>,
    unit_attentions: Vec<(Lun, Sense)>,
    stats: TransferStats,
    open: bool,
}

impl Session {
    /// Connects to `addr` (`host:port`, port 3260 by default) and logs `initiator` into
    /// `target`, with CHAP when `chap` is given, using [`LoginOptions::new`]'s defaults.
    pub fn login(
        addr: &str,
        target: &str,
        initiator: &str,
        chap: Option<&Chap>,
    ) -> Result<Session, IscsiError> {
        let mut opts = LoginOptions::new(initiator);
        opts.chap = chap.cloned();
        Session::login_with(addr, target, &opts)
    }

    /// Connects and logs in with explicit options.
    pub fn login_with(addr: &str, target: &str, opts: &LoginOptions) -> Result<Session, IscsiError> {
        opts.validate()?;
        crate::text::validate_iscsi_name(target)?;
        let mut conn = Connection::connect(addr, opts.connect_timeout, opts.io_timeout)?;
        let params = match login::login(&mut conn, opts, Some(target)) {
            Ok(p) => p,
            Err(e) => {
                conn.shutdown();
                return Err(e);
            }
        };
        Ok(Session {
            conn,
            params,
            max_transfer_bytes: opts.max_transfer_bytes,
            unit_attention_retries: opts.unit_attention_retries,
            block_sizes: HashMap::new(),
            unit_attentions: Vec::new(),
            stats: TransferStats::default(),
            open: true,
        })
    }

    /// The negotiated session parameters.
    pub fn params(&self) -> &NegotiatedParams {
        &self.params
    }

    /// The socket address connected to.
    pub fn peer(&self) -> &str {
        &self.conn.peer
    }

    /// UNIT ATTENTION conditions met (and retried past) so far, oldest first.
    pub fn unit_attentions(&self) -> &[(Lun, Sense)] {
        &self.unit_attentions
    }

    /// What has crossed the wire so far.
    pub fn stats(&self) -> TransferStats {
        self.stats
    }

    /// Events the target announced on its own (Asynchronous Messages), oldest first.
    pub fn events(&self) -> &[TargetEvent] {
        &self.conn.events
    }

    /// Sends a NOP-Out ping and waits for the target's NOP-In.
    pub fn ping(&mut self) -> Result<(), IscsiError> {
        let itt = self.conn.alloc_itt();
        let mut bhs = Bhs::new(Opcode::NopOut);
        bhs.set_immediate(true);
        bhs.set_flags(flags::FINAL);
        bhs.set_itt(itt);
        bhs.set_u32_at(20, RESERVED_TAG);
        bhs.set_u32_at(24, self.conn.cmd_sn);
        bhs.set_u32_at(28, self.conn.exp_stat_sn);
        self.conn.send(&Pdu::new(bhs))?;
        let rsp = self.conn.recv_for(itt)?;
        if rsp.opcode() != Some(Opcode::NopIn) {
            return Err(IscsiError::Protocol(format!(
                "a NOP-Out was answered with opcode {:#04x}",
                rsp.bhs.opcode_raw()
            )));
        }
        Ok(())
    }

    /// Runs one SCSI command and reports what the target said, whatever the status: no retry,
    /// no status check. Errors are transport and protocol failures only.
    pub fn execute(
        &mut self,
        lun: Lun,
        cdb: &[u8],
        direction: DataDirection<'_>,
    ) -> Result<CommandResult, IscsiError> {
        if cdb.is_empty() || cdb.len() > 16 {
            return Err(IscsiError::InvalidArgument(format!(
                "a CDB must be 1 to 16 bytes long, got {}",
                cdb.len()
            )));
        }
        if !self.open {
            return Err(IscsiError::SessionEnded(
                "the session has been logged out".to_string(),
            ));
        }
        let result = match direction {
            DataDirection::None => self.execute_read(lun, cdb, 0, false),
            DataDirection::Read(len) => self.execute_read(lun, cdb, len, true),
            DataDirection::Write(data) => self.execute_write(lun, cdb, data),
        };
        if let Err(e) = &result {
            // After a transport or protocol failure the connection's state is unknown.
            if !matches!(e, IscsiError::InvalidArgument(_)) {
                self.open = false;
                self.conn.shutdown();
            }
        }
        result
    }

    fn command_pdu(&mut self, lun: Lun, cdb: &[u8], itt: u32, cmd_flags: u8, expected_len: u32) -> Bhs {
        let mut bhs = Bhs::new(Opcode::ScsiCommand);
        bhs.set_flags(cmd_flags | flags::ATTR_SIMPLE);
        bhs.set_lun(lun.as_bytes());
        bhs.set_itt(itt);
        bhs.set_u32_at(20, expected_len);
        bhs.set_u32_at(24, self.conn.cmd_sn);
        bhs.set_u32_at(28, self.conn.exp_stat_sn);
        bhs.0[32..32 + cdb.len()].copy_from_slice(cdb);
        bhs
    }

    fn execute_read(
        &mut self,
        lun: Lun,
        cdb: &[u8],
        len: usize,
        reading: bool,
    ) -> Result<CommandResult, IscsiError> {
        let expected = u32::try_from(len)
            .map_err(|_| IscsiError::InvalidArgument(format!("a {len}-byte transfer is too large")))?;
        self.conn.wait_for_window()?;
        let itt = self.conn.alloc_itt();
        let f = flags::FINAL | if reading { flags::READ } else { 0 };
        let bhs = self.command_pdu(lun, cdb, itt, f, expected);
        self.conn.send(&Pdu::new(bhs))?;
        self.conn.cmd_sn = self.conn.cmd_sn.wrapping_add(1);
        self.stats.commands += 1;

        let mut buf = vec![0u8; len];
        let mut next_offset = 0usize;
        let mut next_data_sn = 0u32;
        loop {
            let pdu = self.conn.recv_for(itt)?;
            match pdu.opcode() {
                Some(Opcode::DataIn) => {
                    let data_sn = pdu.bhs.u32_at(36);
                    if data_sn != next_data_sn {
                        return Err(IscsiError::Protocol(format!(
                            "Data-In with DataSN {data_sn}, expected {next_data_sn}"
                        )));
                    }
                    let offset = pdu.bhs.u32_at(40) as usize;
                    if offset != next_offset {
                        return Err(IscsiError::Protocol(format!(
                            "Data-In at buffer offset {offset}, expected {next_offset} (DataPDUInOrder=Yes)"
                        )));
                    }
                    let end = offset + pdu.data.len();
                    if end > len {
                        return Err(IscsiError::Protocol(format!(
                            "Data-In up to byte {end} of a {len}-byte transfer"
                        )));
                    }
                    buf[offset..end].copy_from_slice(&pdu.data);
                    self.stats.data_in_pdus += 1;
                    self.stats.bytes_read += pdu.data.len() as u64;
                    next_offset = end;
                    next_data_sn = next_data_sn.wrapping_add(1);
                    if pdu.bhs.flags() & flags::STATUS != 0 {
                        if !pdu.bhs.is_final() {
                            return Err(IscsiError::Protocol(
                                "Data-In with status but without the F bit".to_string(),
                            ));
                        }
                        self.stats.data_in_with_status += 1;
                        let (underflow, overflow) = residuals(&pdu.bhs);
                        let status = ScsiStatus(pdu.bhs.0[3]);
                        return finish_read(buf, next_offset, len, underflow, overflow, status, 0, None);
                    }
                }
                Some(Opcode::ScsiResponse) => {
                    let (underflow, overflow) = residuals(&pdu.bhs);
                    let response = pdu.bhs.0[2];
                    let status = ScsiStatus(pdu.bhs.0[3]);
                    let sense = parse_sense_segment(&pdu.data);
                    return finish_read(
                        buf,
                        next_offset,
                        len,
                        underflow,
                        overflow,
                        status,
                        response,
                        sense,
                    );
                }
                _ => {
                    return Err(IscsiError::Protocol(format!(
                        "unexpected PDU (opcode {:#04x}) for a {} command",
                        pdu.bhs.opcode_raw(),
                        if reading { "read" } else { "non-data" }
                    )))
                }
            }
        }
    }

    fn execute_write(&mut self, lun: Lun, cdb: &[u8], data: &[u8]) -> Result<CommandResult, IscsiError> {
        let total = data.len();
        let expected = u32::try_from(total)
            .map_err(|_| IscsiError::InvalidArgument(format!("a {total}-byte transfer is too large")))?;
        let p = &self.params;
        let mrdsl = p.max_xmit_data_segment_length as usize;
        let first_burst = p.first_burst_length as usize;
        let max_burst = p.max_burst_length as usize;
        let immediate = if p.immediate_data {
            total.min(first_burst).min(mrdsl)
        } else {
            0
        };
        let unsolicited = if p.initial_r2t {
            immediate
        } else {
            total.min(first_burst)
        };

        self.conn.wait_for_window()?;
        let itt = self.conn.alloc_itt();
        let f = flags::WRITE | if unsolicited == immediate { flags::FINAL } else { 0 };
        let bhs = self.command_pdu(lun, cdb, itt, f, expected);
        let bytes = encode_parts(&bhs, &[], &data[..immediate])?;
        self.conn.send_bytes(&bytes)?;
        self.conn.cmd_sn = self.conn.cmd_sn.wrapping_add(1);
        self.stats.commands += 1;
        self.stats.immediate_data_bytes += immediate as u64;
        self.stats.bytes_written += immediate as u64;
        if unsolicited > immediate {
            self.send_data_out(lun, itt, RESERVED_TAG, data, immediate, unsolicited)?;
        }

        let mut next_r2t_sn = 0u32;
        loop {
            let pdu = self.conn.recv_for(itt)?;
            match pdu.opcode() {
                Some(Opcode::ReadyToTransfer) => {
                    let r2t_sn = pdu.bhs.u32_at(36);
                    if r2t_sn != next_r2t_sn {
                        return Err(IscsiError::Protocol(format!(
                            "R2T with R2TSN {r2t_sn}, expected {next_r2t_sn}"
                        )));
                    }
                    next_r2t_sn = next_r2t_sn.wrapping_add(1);
                    self.stats.r2ts += 1;
                    let ttt = pdu.bhs.u32_at(20);
                    let offset = pdu.bhs.u32_at(40) as usize;
                    let len = pdu.bhs.u32_at(44) as usize;
                    if ttt == RESERVED_TAG || len == 0 || offset + len > total || len > max_burst {
                        return Err(IscsiError::Protocol(format!(
                            "R2T for {len} bytes at offset {offset} (tag {ttt:#010x}) of a \
                             {total}-byte write with MaxBurstLength {max_burst}"
                        )));
                    }
                    self.send_data_out(lun, itt, ttt, data, offset, offset + len)?;
                }
                Some(Opcode::ScsiResponse) => {
                    let (underflow, overflow) = residuals(&pdu.bhs);
                    return Ok(CommandResult {
                        response: pdu.bhs.0[2],
                        status: ScsiStatus(pdu.bhs.0[3]),
                        data: Vec::new(),
                        sense: parse_sense_segment(&pdu.data),
                        underflow,
                        overflow,
                    });
                }
                _ => {
                    return Err(IscsiError::Protocol(format!(
                        "unexpected PDU (opcode {:#04x}) for a write command",
                        pdu.bhs.opcode_raw()
                    )))
                }
            }
        }
    }

    /// Sends `data[from..to]` as one sequence of Data-Out PDUs (DataSN from 0, F on the last).
    fn send_data_out(
        &mut self,
        lun: Lun,
        itt: u32,
        ttt: u32,
        data: &[u8],
        from: usize,
        to: usize,
    ) -> Result<(), IscsiError> {
        let mrdsl = (self.params.max_xmit_data_segment_length as usize).max(1);
        let mut offset = from;
        let mut data_sn = 0u32;
        while offset < to {
            let end = (offset + mrdsl).min(to);
            let mut bhs = Bhs::new(Opcode::DataOut);
            bhs.set_flags(if end == to { flags::FINAL } else { 0 });
            if ttt != RESERVED_TAG {
                bhs.set_lun(lun.as_bytes());
            }
            bhs.set_itt(itt);
            bhs.set_u32_at(20, ttt);
            bhs.set_u32_at(28, self.conn.exp_stat_sn);
            bhs.set_u32_at(36, data_sn);
            bhs.set_u32_at(40, offset as u32);
            let bytes = encode_parts(&bhs, &[], &data[offset..end])?;
            self.conn.send_bytes(&bytes)?;
            if ttt == RESERVED_TAG {
                self.stats.unsolicited_data_out_pdus += 1;
            } else {
                self.stats.solicited_data_out_pdus += 1;
            }
            self.stats.bytes_written += (end - offset) as u64;
            data_sn = data_sn.wrapping_add(1);
            offset = end;
        }
        Ok(())
    }

    /// Runs a command, re-issuing it after UNIT ATTENTION, and turns any status but GOOD or
    /// CONDITION MET into an error.
    pub fn run(
        &mut self,
        command: &'static str,
        lun: Lun,
        cdb: &[u8],
        direction: DataDirection<'_>,
    ) -> Result<Vec<u8>, IscsiError> {
        let mut attempts = 0;
        loop {
            let r = self.execute(lun, cdb, direction)?;
            if r.response != 0 {
                return Err(IscsiError::TargetFailure {
                    command,
                    lun,
                    response: r.response,
                });
            }
            match r.status {
                ScsiStatus::GOOD | ScsiStatus::CONDITION_MET => return Ok(r.data),
                ScsiStatus::CHECK_CONDITION => match r.sense {
                    Some(sense) if sense.is_unit_attention() && attempts < self.unit_attention_retries => {
                        attempts += 1;
                        self.unit_attentions.push((lun, sense));
                    }
                    Some(sense) => return Err(IscsiError::CheckCondition { command, lun, sense }),
                    None => {
                        return Err(IscsiError::ScsiStatus {
                            command,
                            lun,
                            status: r.status,
                        })
                    }
                },
                status => return Err(IscsiError::ScsiStatus { command, lun, status }),
            }
        }
    }

    /// TEST UNIT READY.
    pub fn test_unit_ready(&mut self, lun: Lun) -> Result<(), IscsiError> {
        self.run(
            "TEST UNIT READY",
            lun,
            &cdb::test_unit_ready(),
            DataDirection::None,
        )?;
        Ok(())
    }

    /// REPORT LUNS (sent to LUN 0): the logical units this initiator can see on the target.
    pub fn report_luns(&mut self) -> Result<Vec<Lun>, IscsiError> {
        let lun0 = Lun::new(0);
        let mut alloc: u32 = 4096;
        loop {
            let data = self.run(
                "REPORT LUNS",
                lun0,
                &cdb::report_luns(alloc),
                DataDirection::Read(alloc as usize),
            )?;
            let (luns, list_len) =
                scsi::parse_report_luns(&data).map_err(|reason| IscsiError::MalformedData {
                    command: "REPORT LUNS",
                    lun: lun0,
                    reason,
                })?;
            let needed = list_len.saturating_add(8);
            if needed > alloc as usize && data.len() >= alloc as usize {
                alloc = u32::try_from(needed).map_err(|_| IscsiError::MalformedData {
                    command: "REPORT LUNS",
                    lun: lun0,
                    reason: format!("LUN LIST LENGTH {list_len} is absurd"),
                })?;
                continue;
            }
            return Ok(luns);
        }
    }

    /// Standard INQUIRY.
    pub fn inquiry(&mut self, lun: Lun) -> Result<StandardInquiry, IscsiError> {
        let data = self.run("INQUIRY", lun, &cdb::inquiry(None, 96), DataDirection::Read(96))?;
        scsi::parse_standard_inquiry(&data).map_err(|reason| IscsiError::MalformedData {
            command: "INQUIRY",
            lun,
            reason,
        })
    }

    /// INQUIRY for a VPD page: the whole page, header included.
    pub fn inquiry_vpd(&mut self, lun: Lun, page: u8) -> Result<Vec<u8>, IscsiError> {
        let mut alloc: u16 = 255;
        loop {
            let data = self.run(
                "INQUIRY",
                lun,
                &cdb::inquiry(Some(page), alloc),
                DataDirection::Read(usize::from(alloc)),
            )?;
            let body = scsi::vpd_page(&data, page).map_err(|reason| IscsiError::MalformedData {
                command: "INQUIRY",
                lun,
                reason,
            })?;
            let page_len = usize::from(scsi::be16(&data[2..4])) + 4;
            if page_len > data.len() && data.len() >= usize::from(alloc) && alloc < u16::MAX {
                alloc = u16::try_from(page_len).unwrap_or(u16::MAX);
                continue;
            }
            return Ok(body.to_vec());
        }
    }

    /// The unit serial number (VPD page 0x80).
    pub fn inquiry_vpd80(&mut self, lun: Lun) -> Result<String, IscsiError> {
        let page = self.inquiry_vpd(lun, 0x80)?;
        scsi::parse_vpd80(&page).map_err(|reason| IscsiError::MalformedData {
            command: "INQUIRY",
            lun,
            reason,
        })
    }

    /// Device identification (VPD page 0x83): the raw page and its designators.
    pub fn inquiry_vpd83(&mut self, lun: Lun) -> Result<DeviceIdentification, IscsiError> {
        let page = self.inquiry_vpd(lun, 0x83)?;
        scsi::parse_vpd83(&page).map_err(|reason| IscsiError::MalformedData {
            command: "INQUIRY",
            lun,
            reason,
        })
    }

    /// READ CAPACITY(16). Also remembers the block size for [`Session::read`] and
    /// [`Session::write`].
    pub fn read_capacity16(&mut self, lun: Lun) -> Result<Capacity, IscsiError> {
        let data = self.run(
            "READ CAPACITY(16)",
            lun,
            &cdb::read_capacity16(32),
            DataDirection::Read(32),
        )?;
        let cap = scsi::parse_read_capacity16(&data).map_err(|reason| IscsiError::MalformedData {
            command: "READ CAPACITY(16)",
            lun,
            reason,
        })?;
        if cap.block_length == 0 {
            return Err(IscsiError::MalformedData {
                command: "READ CAPACITY(16)",
                lun,
                reason: "logical block length 0".to_string(),
            });
        }
        self.block_sizes.insert(lun, cap.block_length);
        Ok(cap)
    }

    /// The logical block length (from READ CAPACITY(16), asked once per LUN).
    pub fn block_size(&mut self, lun: Lun) -> Result<u32, IscsiError> {
        match self.block_sizes.get(&lun) {
            Some(bs) => Ok(*bs),
            None => Ok(self.read_capacity16(lun)?.block_length),
        }
    }

    fn blocks_per_command(&mut self, lun: Lun) -> Result<(u32, u64), IscsiError> {
        let bs = self.block_size(lun)?;
        let per = (self.max_transfer_bytes / bs as usize).max(1);
        Ok((
            bs,
            u64::try_from(per).unwrap_or(u64::MAX).min(u64::from(u32::MAX)),
        ))
    }

    /// Reads `blocks` logical blocks from `lba` with READ(16), split into commands of at most
    /// `max_transfer_bytes`.
    pub fn read(&mut self, lun: Lun, lba: u64, blocks: u64) -> Result<Vec<u8>, IscsiError> {
        let (bs, per) = self.blocks_per_command(lun)?;
        let total = blocks
            .checked_mul(u64::from(bs))
            .and_then(|t| usize::try_from(t).ok())
            .ok_or_else(|| {
                IscsiError::InvalidArgument(format!("{blocks} blocks of {bs} bytes is too much"))
            })?;
        lba.checked_add(blocks)
            .ok_or_else(|| IscsiError::InvalidArgument("LBA range overflows 64 bits".to_string()))?;
        let mut out = Vec::with_capacity(total);
        let mut done = 0u64;
        while done < blocks {
            let n = (blocks - done).min(per);
            let n32 = n as u32;
            let len = n as usize * bs as usize;
            let data = self.run(
                "READ(16)",
                lun,
                &cdb::read16(lba + done, n32),
                DataDirection::Read(len),
            )?;
            if data.len() != len {
                return Err(IscsiError::MalformedData {
                    command: "READ(16)",
                    lun,
                    reason: format!("{} bytes returned, {len} asked for", data.len()),
                });
            }
            out.extend_from_slice(&data);
            done += n;
        }
        Ok(out)
    }

    /// Writes `data` (a whole number of logical blocks) from `lba` with WRITE(16), split into
    /// commands of at most `max_transfer_bytes`.
    pub fn write(&mut self, lun: Lun, lba: u64, data: &[u8]) -> Result<(), IscsiError> {
        let (bs, per) = self.blocks_per_command(lun)?;
        let bs_usize = bs as usize;
        if !data.len().is_multiple_of(bs_usize) {
            return Err(IscsiError::InvalidArgument(format!(
                "{} bytes is not a whole number of {bs}-byte blocks",
                data.len()
            )));
        }
        let blocks = (data.len() / bs_usize) as u64;
        lba.checked_add(blocks)
            .ok_or_else(|| IscsiError::InvalidArgument("LBA range overflows 64 bits".to_string()))?;
        let mut done = 0u64;
        while done < blocks {
            let n = (blocks - done).min(per);
            let from = done as usize * bs_usize;
            let to = from + n as usize * bs_usize;
            self.run(
                "WRITE(16)",
                lun,
                &cdb::write16(lba + done, n as u32),
                DataDirection::Write(&data[from..to]),
            )?;
            done += n;
        }
        Ok(())
    }

    /// SYNCHRONIZE CACHE(10) of the whole logical unit.
    pub fn synchronize_cache(&mut self, lun: Lun) -> Result<(), IscsiError> {
        self.run(
            "SYNCHRONIZE CACHE(10)",
            lun,
            &cdb::synchronize_cache10(),
            DataDirection::None,
        )?;
        Ok(())
    }

    /// UNMAP(10) of `ranges` of (LBA, number of blocks): tells a thin-provisioned logical unit
    /// (READ CAPACITY(16) LBPME set) that their data is no longer needed, so the target can
    /// free the space behind them.
    pub fn unmap(&mut self, lun: Lun, ranges: &[(u64, u32)]) -> Result<(), IscsiError> {
        for (lba, blocks) in ranges {
            lba.checked_add(u64::from(*blocks))
                .ok_or_else(|| IscsiError::InvalidArgument("LBA range overflows 64 bits".to_string()))?;
        }
        let params = cdb::unmap_parameters(ranges).ok_or_else(|| {
            IscsiError::InvalidArgument(format!(
                "{} ranges do not fit one UNMAP(10) parameter list",
                ranges.len()
            ))
        })?;
        self.run(
            "UNMAP(10)",
            lun,
            // Fits: `unmap_parameters` refuses a list longer than 16 bits can count.
            &cdb::unmap10(params.len() as u16),
            DataDirection::Write(&params),
        )?;
        Ok(())
    }

    /// Logs out (reason "close the session") and closes the connection.
    pub fn logout(mut self) -> Result<(), IscsiError> {
        if !self.open {
            return Err(IscsiError::SessionEnded(
                "the connection was closed after an earlier failure".to_string(),
            ));
        }
        let result = logout(&mut self.conn);
        self.open = false;
        self.conn.shutdown();
        result
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.open {
            self.conn.shutdown();
        }
    }
}

/// Sends a Logout Request (close the session) and checks the Logout Response.
pub(crate) fn logout(conn: &mut Connection) -> Result<(), IscsiError> {
    let itt = conn.alloc_itt();
    let mut bhs = Bhs::new(Opcode::LogoutRequest);
    bhs.set_immediate(true);
    bhs.set_flags(flags::FINAL); // reason code 0: close the session
    bhs.set_itt(itt);
    bhs.set_u32_at(24, conn.cmd_sn);
    bhs.set_u32_at(28, conn.exp_stat_sn);
    conn.send(&Pdu::new(bhs))?;
    let rsp = conn.recv_for(itt)?;
    if rsp.opcode() != Some(Opcode::LogoutResponse) {
        return Err(IscsiError::Protocol(format!(
            "a Logout Request was answered with opcode {:#04x}",
            rsp.bhs.opcode_raw()
        )));
    }
    let response = rsp.bhs.0[2];
    let reason = match response {
        0 => return Ok(()),
        1 => "CID not found",
        2 => "connection recovery is not supported",
        3 => "cleanup failed",
        _ => "unknown response",
    };
    Err(IscsiError::Logout { response, reason })
}

fn residuals(bhs: &Bhs) -> (u32, u32) {
    let f = bhs.flags();
    let count = bhs.u32_at(44);
    let underflow = if f & flags::UNDERFLOW != 0 { count } else { 0 };
    let overflow = if f & flags::OVERFLOW != 0 { count } else { 0 };
    (underflow, overflow)
}

/// Sense data from a SCSI Response data segment (SenseLength, then the sense bytes).
fn parse_sense_segment(data: &[u8]) -> Option<Sense> {
    if data.len() < 2 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
    let end = (2 + len).min(data.len());
    Sense::parse(&data[2..end])
}

#[allow(clippy::too_many_arguments)]
fn finish_read(
    mut buf: Vec<u8>,
    received: usize,
    expected: usize,
    underflow: u32,
    overflow: u32,
    status: ScsiStatus,
    response: u8,
    sense: Option<Sense>,
) -> Result<CommandResult, IscsiError> {
    let valid = expected.saturating_sub(underflow as usize);
    if status == ScsiStatus::GOOD && response == 0 && received < valid {
        return Err(IscsiError::Protocol(format!(
            "status GOOD after {received} of {valid} bytes"
        )));
    }
    buf.truncate(valid.min(received));
    Ok(CommandResult {
        response,
        status,
        data: buf,
        sense,
        underflow,
        overflow,
    })
}
