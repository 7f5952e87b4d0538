//! The SCSI side: logical unit numbers, status, sense data, the command descriptor blocks
//! this initiator sends, and parsers for what they return (SPC-4 / SBC-3 / SAM-5).

use std::fmt;

/// A logical unit number in its eight-byte SAM form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lun([u8; 8]);

impl Lun {
    /// Single-level LUN `n`: peripheral addressing below 256, flat space addressing below
    /// 16384, extended flat space addressing above.
    pub fn new(n: u16) -> Lun {
        Lun::encode(u32::from(n))
    }

    /// Single-level LUN `n` for any number up to 2^24 - 1 (the extended flat space limit);
    /// `None` above.
    pub fn from_number(n: u64) -> Option<Lun> {
        u32::try_from(n)
            .ok()
            .filter(|n| *n <= 0x00ff_ffff)
            .map(Lun::encode)
    }

    fn encode(n: u32) -> Lun {
        let mut b = [0u8; 8];
        if n < 256 {
            b[1] = n as u8;
        } else if n < 0x4000 {
            b[0] = 0x40 | (n >> 8) as u8;
            b[1] = n as u8;
        } else {
            b[0] = 0xd2;
            b[1] = (n >> 16) as u8;
            b[2] = (n >> 8) as u8;
            b[3] = n as u8;
        }
        Lun(b)
    }

    /// A LUN from its eight wire bytes (as REPORT LUNS returns them).
    pub fn from_bytes(bytes: [u8; 8]) -> Lun {
        Lun(bytes)
    }

    /// The eight wire bytes.
    pub fn as_bytes(&self) -> [u8; 8] {
        self.0
    }

    /// The single-level LUN number, when the LUN uses peripheral (bus 0), flat space or
    /// extended flat space addressing with no lower levels.
    pub fn number(&self) -> Option<u32> {
        let b = self.0;
        let rest_zero = |from: usize| b[from..].iter().all(|x| *x == 0);
        match b[0] >> 6 {
            0b00 if b[0] == 0 && rest_zero(2) => Some(u32::from(b[1])),
            0b01 if rest_zero(2) => Some((u32::from(b[0] & 0x3f) << 8) | u32::from(b[1])),
            0b11 if b[0] == 0xd2 && rest_zero(4) => {
                Some((u32::from(b[1]) << 16) | (u32::from(b[2]) << 8) | u32::from(b[3]))
            }
            _ => None,
        }
    }
}

impl From<u16> for Lun {
    fn from(n: u16) -> Lun {
        Lun::new(n)
    }
}

impl fmt::Display for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            Some(n) => write!(f, "{n}"),
            None => {
                write!(f, "0x")?;
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lun({self})")
    }
}

/// A SCSI status byte (SAM-5 §5.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScsiStatus(pub u8);

impl ScsiStatus {
    /// GOOD.
    pub const GOOD: ScsiStatus = ScsiStatus(0x00);
    /// CHECK CONDITION.
    pub const CHECK_CONDITION: ScsiStatus = ScsiStatus(0x02);
    /// CONDITION MET.
    pub const CONDITION_MET: ScsiStatus = ScsiStatus(0x04);
    /// BUSY.
    pub const BUSY: ScsiStatus = ScsiStatus(0x08);
    /// RESERVATION CONFLICT.
    pub const RESERVATION_CONFLICT: ScsiStatus = ScsiStatus(0x18);
    /// TASK SET FULL.
    pub const TASK_SET_FULL: ScsiStatus = ScsiStatus(0x28);
    /// ACA ACTIVE.
    pub const ACA_ACTIVE: ScsiStatus = ScsiStatus(0x30);
    /// TASK ABORTED.
    pub const TASK_ABORTED: ScsiStatus = ScsiStatus(0x40);

    /// The status's SAM name.
    pub fn name(&self) -> &'static str {
        match self.0 {
            0x00 => "GOOD",
            0x02 => "CHECK CONDITION",
            0x04 => "CONDITION MET",
            0x08 => "BUSY",
            0x18 => "RESERVATION CONFLICT",
            0x28 => "TASK SET FULL",
            0x30 => "ACA ACTIVE",
            0x40 => "TASK ABORTED",
            _ => "unknown status",
        }
    }
}

impl fmt::Display for ScsiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.0)
    }
}

impl fmt::Debug for ScsiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScsiStatus({self})")
    }
}

/// A sense key (SPC-4 §4.5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenseKey {
    /// 0x0
    NoSense,
    /// 0x1
    RecoveredError,
    /// 0x2
    NotReady,
    /// 0x3
    MediumError,
    /// 0x4
    HardwareError,
    /// 0x5
    IllegalRequest,
    /// 0x6
    UnitAttention,
    /// 0x7
    DataProtect,
    /// 0x8
    BlankCheck,
    /// 0x9
    VendorSpecific,
    /// 0xA
    CopyAborted,
    /// 0xB
    AbortedCommand,
    /// 0xD
    VolumeOverflow,
    /// 0xE
    Miscompare,
    /// 0xC, 0xF
    Reserved(u8),
}

impl SenseKey {
    /// Decodes the low four bits.
    pub fn from_u8(v: u8) -> SenseKey {
        match v & 0x0f {
            0x0 => SenseKey::NoSense,
            0x1 => SenseKey::RecoveredError,
            0x2 => SenseKey::NotReady,
            0x3 => SenseKey::MediumError,
            0x4 => SenseKey::HardwareError,
            0x5 => SenseKey::IllegalRequest,
            0x6 => SenseKey::UnitAttention,
            0x7 => SenseKey::DataProtect,
            0x8 => SenseKey::BlankCheck,
            0x9 => SenseKey::VendorSpecific,
            0xa => SenseKey::CopyAborted,
            0xb => SenseKey::AbortedCommand,
            0xd => SenseKey::VolumeOverflow,
            0xe => SenseKey::Miscompare,
            other => SenseKey::Reserved(other),
        }
    }

    /// The four-bit code.
    pub fn code(&self) -> u8 {
        match self {
            SenseKey::NoSense => 0x0,
            SenseKey::RecoveredError => 0x1,
            SenseKey::NotReady => 0x2,
            SenseKey::MediumError => 0x3,
            SenseKey::HardwareError => 0x4,
            SenseKey::IllegalRequest => 0x5,
            SenseKey::UnitAttention => 0x6,
            SenseKey::DataProtect => 0x7,
            SenseKey::BlankCheck => 0x8,
            SenseKey::VendorSpecific => 0x9,
            SenseKey::CopyAborted => 0xa,
            SenseKey::AbortedCommand => 0xb,
            SenseKey::VolumeOverflow => 0xd,
            SenseKey::Miscompare => 0xe,
            SenseKey::Reserved(v) => *v,
        }
    }

    /// The SPC name.
    pub fn name(&self) -> &'static str {
        match self {
            SenseKey::NoSense => "NO SENSE",
            SenseKey::RecoveredError => "RECOVERED ERROR",
            SenseKey::NotReady => "NOT READY",
            SenseKey::MediumError => "MEDIUM ERROR",
            SenseKey::HardwareError => "HARDWARE ERROR",
            SenseKey::IllegalRequest => "ILLEGAL REQUEST",
            SenseKey::UnitAttention => "UNIT ATTENTION",
            SenseKey::DataProtect => "DATA PROTECT",
            SenseKey::BlankCheck => "BLANK CHECK",
            SenseKey::VendorSpecific => "VENDOR SPECIFIC",
            SenseKey::CopyAborted => "COPY ABORTED",
            SenseKey::AbortedCommand => "ABORTED COMMAND",
            SenseKey::VolumeOverflow => "VOLUME OVERFLOW",
            SenseKey::Miscompare => "MISCOMPARE",
            SenseKey::Reserved(_) => "RESERVED",
        }
    }
}

impl fmt::Display for SenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decoded sense data (fixed or descriptor format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sense {
    /// Response code (0x70/0x71 fixed, 0x72/0x73 descriptor).
    pub response_code: u8,
    /// Sense key.
    pub key: SenseKey,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// The INFORMATION field, when valid.
    pub information: Option<u64>,
    /// The sense bytes as received.
    pub raw: Vec<u8>,
}

impl Sense {
    /// Parses sense data; `None` when it is too short or has an unknown response code.
    pub fn parse(bytes: &[u8]) -> Option<Sense> {
        let response_code = bytes.first()? & 0x7f;
        match response_code {
            0x70 | 0x71 => {
                if bytes.len() < 3 {
                    return None;
                }
                let key = SenseKey::from_u8(bytes[2]);
                let asc = bytes.get(12).copied().unwrap_or(0);
                let ascq = bytes.get(13).copied().unwrap_or(0);
                let information = if bytes[0] & 0x80 != 0 && bytes.len() >= 7 {
                    Some(u64::from(be32(&bytes[3..7])))
                } else {
                    None
                };
                Some(Sense {
                    response_code,
                    key,
                    asc,
                    ascq,
                    information,
                    raw: bytes.to_vec(),
                })
            }
            0x72 | 0x73 => {
                if bytes.len() < 4 {
                    return None;
                }
                let key = SenseKey::from_u8(bytes[1]);
                let mut information = None;
                let additional = bytes.get(7).map(|l| usize::from(*l)).unwrap_or(0);
                let end = (8 + additional).min(bytes.len());
                let mut at = 8;
                while at + 2 <= end {
                    let kind = bytes[at];
                    let len = usize::from(bytes[at + 1]);
                    let body = &bytes[at + 2..(at + 2 + len).min(end)];
                    if kind == 0x00 && body.len() >= 10 && body[0] & 0x80 != 0 {
                        information = Some(be64(&body[2..10]));
                    }
                    at += 2 + len;
                }
                Some(Sense {
                    response_code,
                    key,
                    asc: bytes[2],
                    ascq: bytes[3],
                    information,
                    raw: bytes.to_vec(),
                })
            }
            _ => None,
        }
    }

    /// True for UNIT ATTENTION.
    pub fn is_unit_attention(&self) -> bool {
        self.key == SenseKey::UnitAttention
    }

    /// The SPC description of the ASC/ASCQ pair, for the common ones.
    pub fn description(&self) -> Option<&'static str> {
        asc_description(self.asc, self.ascq)
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sense key {} ({:#x}), ASC/ASCQ {:#04x}/{:#04x}",
            self.key,
            self.key.code(),
            self.asc,
            self.ascq
        )?;
        if let Some(d) = self.description() {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

/// SPC-4 Annex D descriptions for the ASC/ASCQ pairs an array commonly reports.
pub fn asc_description(asc: u8, ascq: u8) -> Option<&'static str> {
    Some(match (asc, ascq) {
        (0x00, 0x00) => "no additional sense information",
        (0x04, 0x00) => "logical unit not ready, cause not reportable",
        (0x04, 0x01) => "logical unit is in process of becoming ready",
        (0x04, 0x02) => "logical unit not ready, initializing command required",
        (0x04, 0x03) => "logical unit not ready, manual intervention required",
        (0x04, 0x0a) => "logical unit not accessible, asymmetric access state transition",
        (0x04, 0x0b) => "logical unit not accessible, target port in standby state",
        (0x04, 0x0c) => "logical unit not accessible, target port in unavailable state",
        (0x0c, 0x00) => "write error",
        (0x11, 0x00) => "unrecovered read error",
        (0x1a, 0x00) => "parameter list length error",
        (0x20, 0x00) => "invalid command operation code",
        (0x21, 0x00) => "logical block address out of range",
        (0x24, 0x00) => "invalid field in CDB",
        (0x25, 0x00) => "logical unit not supported",
        (0x26, 0x00) => "invalid field in parameter list",
        (0x27, 0x00) => "write protected",
        (0x27, 0x07) => "space allocation failed write protect",
        (0x28, 0x00) => "not ready to ready change, medium may have changed",
        (0x29, 0x00) => "power on, reset, or bus device reset occurred",
        (0x29, 0x01) => "power on occurred",
        (0x29, 0x02) => "SCSI bus reset occurred",
        (0x29, 0x03) => "bus device reset function occurred",
        (0x29, 0x07) => "I_T nexus loss occurred",
        (0x2a, 0x01) => "mode parameters changed",
        (0x2a, 0x03) => "reservations preempted",
        (0x2a, 0x06) => "asymmetric access state changed",
        (0x2a, 0x09) => "capacity data has changed",
        (0x38, 0x07) => "thin provisioning soft threshold reached",
        (0x3a, 0x00) => "medium not present",
        (0x3e, 0x00) => "logical unit has not self-configured yet",
        (0x3f, 0x03) => "inquiry data has changed",
        (0x3f, 0x0e) => "reported luns data has changed",
        (0x44, 0x00) => "internal target failure",
        (0x55, 0x03) => "insufficient resources",
        _ => return None,
    })
}

pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

pub(crate) fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Command descriptor blocks.
pub mod cdb {
    /// TEST UNIT READY.
    pub fn test_unit_ready() -> [u8; 6] {
        [0x00, 0, 0, 0, 0, 0]
    }

    /// INQUIRY; `page` selects a VPD page (EVPD=1) when given.
    pub fn inquiry(page: Option<u8>, allocation_length: u16) -> [u8; 6] {
        let [hi, lo] = allocation_length.to_be_bytes();
        match page {
            Some(p) => [0x12, 0x01, p, hi, lo, 0],
            None => [0x12, 0x00, 0x00, hi, lo, 0],
        }
    }

    /// REPORT LUNS (SELECT REPORT 0: all logical units but well-known ones).
    pub fn report_luns(allocation_length: u32) -> [u8; 12] {
        let a = allocation_length.to_be_bytes();
        [0xa0, 0, 0x00, 0, 0, 0, a[0], a[1], a[2], a[3], 0, 0]
    }

    /// READ CAPACITY(16) (SERVICE ACTION IN(16), service action 0x10).
    pub fn read_capacity16(allocation_length: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 0x9e;
        c[1] = 0x10;
        c[10..14].copy_from_slice(&allocation_length.to_be_bytes());
        c
    }

    /// READ(16).
    pub fn read16(lba: u64, blocks: u32) -> [u8; 16] {
        rw16(0x88, lba, blocks)
    }

    /// WRITE(16).
    pub fn write16(lba: u64, blocks: u32) -> [u8; 16] {
        rw16(0x8a, lba, blocks)
    }

    fn rw16(op: u8, lba: u64, blocks: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = op;
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[10..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    /// SYNCHRONIZE CACHE(10) of the whole logical unit (LBA 0, NUMBER OF BLOCKS 0).
    pub fn synchronize_cache10() -> [u8; 10] {
        [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    /// UNMAP(10) with a parameter list of `parameter_list_length` bytes (see
    /// [`unmap_parameters`]).
    pub fn unmap10(parameter_list_length: u16) -> [u8; 10] {
        let l = parameter_list_length.to_be_bytes();
        [0x42, 0, 0, 0, 0, 0, 0, l[0], l[1], 0]
    }

    /// The UNMAP parameter list for `ranges` of (LBA, number of blocks): an 8-byte header,
    /// then one 16-byte block descriptor per range (SBC-3 5.28.2). `None` when the list would
    /// not fit UNMAP(10)'s 16-bit length.
    pub fn unmap_parameters(ranges: &[(u64, u32)]) -> Option<Vec<u8>> {
        let descriptors = u16::try_from(ranges.len().checked_mul(16)?).ok()?;
        let total = descriptors.checked_add(8)?;
        let mut p = Vec::with_capacity(usize::from(total));
        // UNMAP DATA LENGTH counts the bytes after itself; BLOCK DESCRIPTOR DATA LENGTH
        // those after the header.
        p.extend_from_slice(&(total - 2).to_be_bytes());
        p.extend_from_slice(&descriptors.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
        for (lba, blocks) in ranges {
            p.extend_from_slice(&lba.to_be_bytes());
            p.extend_from_slice(&blocks.to_be_bytes());
            p.extend_from_slice(&[0; 4]);
        }
        Some(p)
    }
}

/// Parses REPORT LUNS parameter data; also returns the LUN LIST LENGTH, which can exceed what
/// was returned when the allocation length was too small.
pub fn parse_report_luns(data: &[u8]) -> Result<(Vec<Lun>, usize), String> {
    if data.len() < 8 {
        return Err(format!(
            "REPORT LUNS returned {} bytes, less than its 8-byte header",
            data.len()
        ));
    }
    let list_len = be32(&data[0..4]) as usize;
    let available = (data.len() - 8).min(list_len);
    let luns = data[8..8 + available - available % 8]
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            Lun::from_bytes(b)
        })
        .collect();
    Ok((luns, list_len))
}

/// Standard INQUIRY data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardInquiry {
    /// Peripheral qualifier (0: connected, 1: not connected, 3: no logical unit).
    pub peripheral_qualifier: u8,
    /// Peripheral device type (0: direct access block device, 0x0c: storage array controller).
    pub device_type: u8,
    /// Removable medium.
    pub removable: bool,
    /// VERSION (the SPC revision claimed).
    pub version: u8,
    /// T10 vendor identification, trailing spaces removed.
    pub vendor: String,
    /// Product identification, trailing spaces removed.
    pub product: String,
    /// Product revision level, trailing spaces removed.
    pub revision: String,
    /// The bytes as returned.
    pub raw: Vec<u8>,
}

fn ascii_field(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_string()
}

/// Parses standard INQUIRY data (at least the first 36 bytes are needed for the strings;
/// shorter data leaves them empty).
pub fn parse_standard_inquiry(data: &[u8]) -> Result<StandardInquiry, String> {
    if data.len() < 5 {
        return Err(format!(
            "standard INQUIRY data of {} bytes is too short",
            data.len()
        ));
    }
    let field = |from: usize, to: usize| {
        if data.len() >= to {
            ascii_field(&data[from..to])
        } else {
            String::new()
        }
    };
    Ok(StandardInquiry {
        peripheral_qualifier: data[0] >> 5,
        device_type: data[0] & 0x1f,
        removable: data[1] & 0x80 != 0,
        version: data[2],
        vendor: field(8, 16),
        product: field(16, 32),
        revision: field(32, 36),
        raw: data.to_vec(),
    })
}

/// Checks a VPD page's header and returns the page truncated to its PAGE LENGTH.
pub fn vpd_page(data: &[u8], page: u8) -> Result<&[u8], String> {
    if data.len() < 4 {
        return Err(format!(
            "VPD page {page:#04x} data of {} bytes is shorter than its header",
            data.len()
        ));
    }
    if data[1] != page {
        return Err(format!(
            "asked for VPD page {page:#04x}, got page {:#04x}",
            data[1]
        ));
    }
    let len = usize::from(be16(&data[2..4]));
    Ok(&data[..(4 + len).min(data.len())])
}

/// The unit serial number from VPD page 0x80, leading/trailing spaces and NULs removed.
pub fn parse_vpd80(page: &[u8]) -> Result<String, String> {
    let page = vpd_page(page, 0x80)?;
    Ok(ascii_field(&page[4..]))
}

/// A designation descriptor's code set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeSet {
    /// 1: binary.
    Binary,
    /// 2: ASCII printable.
    Ascii,
    /// 3: UTF-8.
    Utf8,
    /// Anything else.
    Other(u8),
}

/// What a designator is associated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Association {
    /// 0: the addressed logical unit.
    LogicalUnit,
    /// 1: the target port that received the command.
    TargetPort,
    /// 2: the SCSI target device.
    TargetDevice,
    /// 3: reserved.
    Reserved,
}

/// A designator's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DesignatorType {
    /// 0: vendor specific.
    VendorSpecific,
    /// 1: T10 vendor ID based.
    T10VendorId,
    /// 2: EUI-64 based.
    Eui64,
    /// 3: NAA.
    Naa,
    /// 4: relative target port identifier.
    RelativeTargetPort,
    /// 5: target port group.
    TargetPortGroup,
    /// 6: logical unit group.
    LogicalUnitGroup,
    /// 7: MD5 logical unit identifier.
    Md5LogicalUnit,
    /// 8: SCSI name string.
    ScsiNameString,
    /// 9: protocol specific port identifier.
    ProtocolSpecificPort,
    /// 0xA: UUID.
    Uuid,
    /// Anything else.
    Other(u8),
}

impl DesignatorType {
    fn from_u8(v: u8) -> DesignatorType {
        match v & 0x0f {
            0 => DesignatorType::VendorSpecific,
            1 => DesignatorType::T10VendorId,
            2 => DesignatorType::Eui64,
            3 => DesignatorType::Naa,
            4 => DesignatorType::RelativeTargetPort,
            5 => DesignatorType::TargetPortGroup,
            6 => DesignatorType::LogicalUnitGroup,
            7 => DesignatorType::Md5LogicalUnit,
            8 => DesignatorType::ScsiNameString,
            9 => DesignatorType::ProtocolSpecificPort,
            0xa => DesignatorType::Uuid,
            other => DesignatorType::Other(other),
        }
    }
}

/// One designation descriptor of VPD page 0x83.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Designator {
    /// Protocol identifier, when PIV is set for a port or device association.
    pub protocol_identifier: Option<u8>,
    /// Code set.
    pub code_set: CodeSet,
    /// Association.
    pub association: Association,
    /// Designator type.
    pub designator_type: DesignatorType,
    /// The designator bytes.
    pub value: Vec<u8>,
}

impl Designator {
    /// For an NAA designator: the NAA field (top four bits: 2, 3, 5 or 6).
    pub fn naa_type(&self) -> Option<u8> {
        match self.designator_type {
            DesignatorType::Naa => self.value.first().map(|b| b >> 4),
            _ => None,
        }
    }

    /// The designator bytes as lower-case hexadecimal.
    pub fn hex(&self) -> String {
        hex(&self.value)
    }

    /// The designator as text, for ASCII and UTF-8 code sets (trailing NULs/spaces removed).
    pub fn text(&self) -> Option<String> {
        match self.code_set {
            CodeSet::Ascii | CodeSet::Utf8 => Some(ascii_field(&self.value)),
            _ => None,
        }
    }
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// VPD page 0x83 (Device Identification): the raw page and its designators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentification {
    /// The whole page, header included, as returned.
    pub page: Vec<u8>,
    /// The designation descriptors, in page order.
    pub designators: Vec<Designator>,
}

impl DeviceIdentification {
    /// The designators associated with the logical unit.
    pub fn logical_unit_designators(&self) -> impl Iterator<Item = &Designator> {
        self.designators
            .iter()
            .filter(|d| d.association == Association::LogicalUnit)
    }

    /// The logical unit's NAA designators.
    pub fn naa(&self) -> impl Iterator<Item = &Designator> {
        self.logical_unit_designators()
            .filter(|d| d.designator_type == DesignatorType::Naa)
    }

    /// The logical unit's NAA designator of the given NAA type (6 = IEEE registered extended).
    pub fn naa_of_type(&self, naa: u8) -> Option<&Designator> {
        self.naa().find(|d| d.naa_type() == Some(naa))
    }

    /// The raw page as lower-case hexadecimal.
    pub fn page_hex(&self) -> String {
        hex(&self.page)
    }
}

/// Parses VPD page 0x83.
pub fn parse_vpd83(data: &[u8]) -> Result<DeviceIdentification, String> {
    let page = vpd_page(data, 0x83)?;
    let mut designators = Vec::new();
    let mut at = 4;
    while at < page.len() {
        if at + 4 > page.len() {
            return Err(format!(
                "designation descriptor at offset {at} is cut short ({} bytes left)",
                page.len() - at
            ));
        }
        let len = usize::from(page[at + 3]);
        let end = at + 4 + len;
        if end > page.len() {
            return Err(format!(
                "designation descriptor at offset {at} claims {len} bytes, only {} remain",
                page.len() - at - 4
            ));
        }
        let b0 = page[at];
        let b1 = page[at + 1];
        let association = match (b1 >> 4) & 0x03 {
            0 => Association::LogicalUnit,
            1 => Association::TargetPort,
            2 => Association::TargetDevice,
            _ => Association::Reserved,
        };
        let piv = b1 & 0x80 != 0;
        designators.push(Designator {
            protocol_identifier: (piv && association != Association::LogicalUnit).then_some(b0 >> 4),
            code_set: match b0 & 0x0f {
                1 => CodeSet::Binary,
                2 => CodeSet::Ascii,
                3 => CodeSet::Utf8,
                other => CodeSet::Other(other),
            },
            association,
            designator_type: DesignatorType::from_u8(b1),
            value: page[at + 4..end].to_vec(),
        });
        at = end;
    }
    Ok(DeviceIdentification {
        page: page.to_vec(),
        designators,
    })
}

/// READ CAPACITY(16) parameter data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// RETURNED LOGICAL BLOCK ADDRESS: the last LBA.
    pub last_lba: u64,
    /// LOGICAL BLOCK LENGTH IN BYTES.
    pub block_length: u32,
    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT.
    pub logical_blocks_per_physical_exponent: u8,
    /// PROT_EN.
    pub protection_enabled: bool,
    /// LBPME: logical block provisioning management (thin provisioning) enabled.
    pub thin_provisioning: bool,
    /// LBPRZ: unmapped blocks read as zero.
    pub reads_zeroes_when_unmapped: bool,
    /// LOWEST ALIGNED LOGICAL BLOCK ADDRESS.
    pub lowest_aligned_lba: u16,
}

impl Capacity {
    /// Number of logical blocks.
    pub fn blocks(&self) -> u64 {
        self.last_lba.saturating_add(1)
    }

    /// Capacity in bytes (saturating).
    pub fn bytes(&self) -> u64 {
        self.blocks().saturating_mul(u64::from(self.block_length))
    }
}

/// Parses READ CAPACITY(16) data (at least 32 bytes).
pub fn parse_read_capacity16(data: &[u8]) -> Result<Capacity, String> {
    if data.len() < 16 {
        return Err(format!(
            "READ CAPACITY(16) returned {} bytes, at least 16 are needed",
            data.len()
        ));
    }
    Ok(Capacity {
        last_lba: be64(&data[0..8]),
        block_length: be32(&data[8..12]),
        protection_enabled: data[12] & 0x01 != 0,
        logical_blocks_per_physical_exponent: data[13] & 0x0f,
        thin_provisioning: data[14] & 0x80 != 0,
        reads_zeroes_when_unmapped: data[14] & 0x40 != 0,
        lowest_aligned_lba: u16::from_be_bytes([data[14] & 0x3f, data[15]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lun_addressing_methods() {
        assert_eq!(Lun::new(1).as_bytes(), [0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Lun::new(300).as_bytes(), [0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Lun::new(20000).as_bytes(), [0xd2, 0, 0x4e, 0x20, 0, 0, 0, 0]);
        for n in [0u16, 1, 255, 256, 16383, 16384, 65535] {
            assert_eq!(Lun::new(n).number(), Some(u32::from(n)));
        }
        assert_eq!(
            Lun::from_number(0x12_3456).map(|l| l.number()),
            Some(Some(0x12_3456))
        );
        assert_eq!(Lun::from_number(5), Some(Lun::new(5)));
        assert_eq!(Lun::from_number(1 << 24), None);
        let odd = Lun::from_bytes([0, 1, 0, 2, 0, 0, 0, 0]);
        assert_eq!(odd.number(), None);
        assert_eq!(odd.to_string(), "0x0001000200000000");
        assert_eq!(Lun::new(7).to_string(), "7");
    }

    #[test]
    fn report_luns_parsing() {
        let mut data = vec![0, 0, 0, 16, 0, 0, 0, 0];
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        data.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        let (luns, len) = parse_report_luns(&data).expect("parses");
        assert_eq!(len, 16);
        assert_eq!(luns, vec![Lun::new(0), Lun::new(1)]);
        // A truncated list reports the full length so the caller can ask again.
        let (luns, len) = parse_report_luns(&data[..16]).expect("parses");
        assert_eq!((luns.len(), len), (1, 16));
        assert!(parse_report_luns(&data[..4]).is_err());
    }

    #[test]
    fn fixed_and_descriptor_sense() {
        let mut fixed = vec![0u8; 18];
        fixed[0] = 0xf0;
        fixed[2] = 0x05;
        fixed[3..7].copy_from_slice(&[0, 0, 0x10, 0]);
        fixed[7] = 10;
        fixed[12] = 0x21;
        fixed[13] = 0x00;
        let s = Sense::parse(&fixed).expect("fixed");
        assert_eq!(s.key, SenseKey::IllegalRequest);
        assert_eq!((s.asc, s.ascq), (0x21, 0));
        assert_eq!(s.information, Some(0x1000));
        assert_eq!(
            s.to_string(),
            "sense key ILLEGAL REQUEST (0x5), ASC/ASCQ 0x21/0x00 (logical block address out of range)"
        );

        let mut desc = vec![0x72, 0x06, 0x29, 0x00, 0, 0, 0, 12];
        desc.extend_from_slice(&[0x00, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34]);
        let s = Sense::parse(&desc).expect("descriptor");
        assert!(s.is_unit_attention());
        assert_eq!((s.asc, s.ascq), (0x29, 0));
        assert_eq!(s.information, Some(0x1234));
        assert_eq!(
            s.description(),
            Some("power on, reset, or bus device reset occurred")
        );
        assert!(Sense::parse(&[0x00, 0, 0]).is_none());
        assert!(Sense::parse(&[]).is_none());
    }

    #[test]
    fn vpd83_designators() {
        let mut page = vec![0x00, 0x83, 0x00, 0x00];
        // T10 vendor id, ASCII.
        page.extend_from_slice(&[0x02, 0x01, 0x00, 0x08]);
        page.extend_from_slice(b"IET  xyz");
        // NAA 6, binary, 16 bytes.
        page.extend_from_slice(&[0x01, 0x03, 0x00, 0x10]);
        page.extend_from_slice(&[
            0x60, 0x01, 0x40, 0x50, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x11, 0x22, 0x33, 0x44,
        ]);
        // Relative target port, associated with the port, PIV set, protocol iSCSI.
        page.extend_from_slice(&[0x51, 0x94, 0x00, 0x04, 0, 0, 0, 1]);
        let len = (page.len() - 4) as u16;
        page[2..4].copy_from_slice(&len.to_be_bytes());
        let id = parse_vpd83(&page).expect("parses");
        assert_eq!(id.designators.len(), 3);
        assert_eq!(id.designators[0].text().as_deref(), Some("IET  xyz"));
        let naa = id.naa_of_type(6).expect("naa 6");
        assert_eq!(naa.hex(), "60014050123456789abcdef011223344");
        assert_eq!(naa.value.len(), 16);
        assert_eq!(id.designators[2].association, Association::TargetPort);
        assert_eq!(id.designators[2].protocol_identifier, Some(5));
        assert_eq!(
            id.designators[2].designator_type,
            DesignatorType::RelativeTargetPort
        );
        assert_eq!(id.logical_unit_designators().count(), 2);
        assert_eq!(id.page_hex().len(), page.len() * 2);

        let mut cut = page.clone();
        cut[2..4].copy_from_slice(&(len + 4).to_be_bytes());
        cut.extend_from_slice(&[0x01, 0x03, 0x00, 0x10]);
        assert!(parse_vpd83(&cut).is_err());
        assert!(parse_vpd83(&[0x00, 0x80, 0, 0]).is_err());
    }

    #[test]
    fn capacity_and_inquiry() {
        let mut rc = vec![0u8; 32];
        rc[0..8].copy_from_slice(&131071u64.to_be_bytes());
        rc[8..12].copy_from_slice(&512u32.to_be_bytes());
        rc[13] = 3;
        rc[14] = 0xc0;
        let c = parse_read_capacity16(&rc).expect("parses");
        assert_eq!(c.blocks(), 131072);
        assert_eq!(c.bytes(), 64 << 20);
        assert_eq!(c.logical_blocks_per_physical_exponent, 3);
        assert!(c.thin_provisioning && c.reads_zeroes_when_unmapped);

        let mut inq = vec![0u8; 36];
        inq[0] = 0x0c;
        inq[2] = 0x06;
        inq[8..16].copy_from_slice(b"IET     ");
        inq[16..32].copy_from_slice(b"Controller      ");
        inq[32..36].copy_from_slice(b"0001");
        let s = parse_standard_inquiry(&inq).expect("parses");
        assert_eq!(s.device_type, 0x0c);
        assert_eq!(s.vendor, "IET");
        assert_eq!(s.product, "Controller");
        assert_eq!(s.revision, "0001");

        let mut sn = vec![0x00, 0x80, 0x00, 0x08];
        sn.extend_from_slice(b"   SN123");
        assert_eq!(parse_vpd80(&sn).expect("parses"), "SN123");
    }

    #[test]
    fn cdb_layouts() {
        let r = cdb::read16(0x0102_0304_0506_0708, 0x0a0b_0c0d);
        assert_eq!(r[0], 0x88);
        assert_eq!(&r[2..10], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&r[10..14], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(cdb::write16(0, 1)[0], 0x8a);
        assert_eq!(cdb::inquiry(Some(0x83), 0x1234), [0x12, 1, 0x83, 0x12, 0x34, 0]);
        assert_eq!(cdb::inquiry(None, 96), [0x12, 0, 0, 0, 96, 0]);
        let rc = cdb::read_capacity16(32);
        assert_eq!((rc[0], rc[1], rc[13]), (0x9e, 0x10, 32));
        assert_eq!(cdb::report_luns(4096)[6..10], [0, 0, 0x10, 0]);
        assert_eq!(cdb::synchronize_cache10()[0], 0x35);
        assert_eq!(cdb::unmap10(40), [0x42, 0, 0, 0, 0, 0, 0, 0, 40, 0]);
    }

    #[test]
    fn unmap_parameter_list_layout() {
        let p = cdb::unmap_parameters(&[(0x0102, 8), (0x1_0000_0000, 0x0a0b_0c0d)]).expect("fits");
        assert_eq!(p.len(), 8 + 2 * 16);
        assert_eq!(&p[0..8], &[0, 38, 0, 32, 0, 0, 0, 0]);
        assert_eq!(&p[8..16], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(&p[16..24], &[0, 0, 0, 8, 0, 0, 0, 0]);
        assert_eq!(&p[24..32], &[0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&p[32..36], &[0x0a, 0x0b, 0x0c, 0x0d]);
        // 4096 descriptors would need 65544 bytes: more than UNMAP(10) can carry.
        assert!(cdb::unmap_parameters(&vec![(0, 1); 4096]).is_none());
    }
}
