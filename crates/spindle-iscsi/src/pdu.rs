//! iSCSI PDUs (RFC 7143 §11): the 48-byte Basic Header Segment, optional additional header
//! segments and the data segment padded to a multiple of four bytes. No digests: this
//! initiator only ever negotiates `HeaderDigest=None` and `DataDigest=None`.

use std::fmt;
use std::io::{Read, Write};

use crate::error::IscsiError;

/// Length of the Basic Header Segment.
pub const BHS_LEN: usize = 48;

/// The reserved "no tag" value of task tags and target transfer tags.
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Largest data segment this implementation accepts at all, whatever was negotiated
/// (the protocol's own ceiling for MaxRecvDataSegmentLength, 2^24 - 1).
pub const MAX_DATA_SEGMENT: usize = 0x00ff_ffff;

/// PDU opcodes (RFC 7143 §11.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// NOP-Out (initiator).
    NopOut = 0x00,
    /// SCSI Command (initiator).
    ScsiCommand = 0x01,
    /// SCSI Task Management Function Request (initiator).
    TaskManagementRequest = 0x02,
    /// Login Request (initiator).
    LoginRequest = 0x03,
    /// Text Request (initiator).
    TextRequest = 0x04,
    /// SCSI Data-Out (initiator).
    DataOut = 0x05,
    /// Logout Request (initiator).
    LogoutRequest = 0x06,
    /// SNACK Request (initiator).
    SnackRequest = 0x10,
    /// NOP-In (target).
    NopIn = 0x20,
    /// SCSI Response (target).
    ScsiResponse = 0x21,
    /// SCSI Task Management Function Response (target).
    TaskManagementResponse = 0x22,
    /// Login Response (target).
    LoginResponse = 0x23,
    /// Text Response (target).
    TextResponse = 0x24,
    /// SCSI Data-In (target).
    DataIn = 0x25,
    /// Logout Response (target).
    LogoutResponse = 0x26,
    /// Ready To Transfer (target).
    ReadyToTransfer = 0x31,
    /// Asynchronous Message (target).
    AsyncMessage = 0x32,
    /// Reject (target).
    Reject = 0x3f,
}

impl Opcode {
    /// The opcode for the low six bits of byte 0, if it is one RFC 7143 defines.
    pub fn from_u8(value: u8) -> Option<Opcode> {
        Some(match value & 0x3f {
            0x00 => Opcode::NopOut,
            0x01 => Opcode::ScsiCommand,
            0x02 => Opcode::TaskManagementRequest,
            0x03 => Opcode::LoginRequest,
            0x04 => Opcode::TextRequest,
            0x05 => Opcode::DataOut,
            0x06 => Opcode::LogoutRequest,
            0x10 => Opcode::SnackRequest,
            0x20 => Opcode::NopIn,
            0x21 => Opcode::ScsiResponse,
            0x22 => Opcode::TaskManagementResponse,
            0x23 => Opcode::LoginResponse,
            0x24 => Opcode::TextResponse,
            0x25 => Opcode::DataIn,
            0x26 => Opcode::LogoutResponse,
            0x31 => Opcode::ReadyToTransfer,
            0x32 => Opcode::AsyncMessage,
            0x3f => Opcode::Reject,
            _ => return None,
        })
    }
}

/// Byte-1 flag bits shared by several PDUs.
pub mod flags {
    /// Final (F) bit.
    pub const FINAL: u8 = 0x80;
    /// Login: Transit (T) bit.
    pub const LOGIN_TRANSIT: u8 = 0x80;
    /// Login / Text: Continue (C) bit.
    pub const CONTINUE: u8 = 0x40;
    /// SCSI Command: Read (R) bit.
    pub const READ: u8 = 0x40;
    /// SCSI Command: Write (W) bit.
    pub const WRITE: u8 = 0x20;
    /// SCSI Command: task attribute "simple".
    pub const ATTR_SIMPLE: u8 = 0x01;
    /// Data-In: Acknowledge (A) bit.
    pub const ACK: u8 = 0x40;
    /// SCSI Response / Data-In: residual overflow (O).
    pub const OVERFLOW: u8 = 0x04;
    /// SCSI Response / Data-In: residual underflow (U).
    pub const UNDERFLOW: u8 = 0x02;
    /// Data-In: status present (S).
    pub const STATUS: u8 = 0x01;
    /// SCSI Response: bidirectional read residual overflow (o).
    pub const BIDI_OVERFLOW: u8 = 0x10;
    /// SCSI Response: bidirectional read residual underflow (u).
    pub const BIDI_UNDERFLOW: u8 = 0x08;
}

/// The Basic Header Segment, kept as its 48 wire bytes with typed accessors.
#[derive(Clone, PartialEq, Eq)]
pub struct Bhs(pub [u8; BHS_LEN]);

impl Bhs {
    /// An all-zero header with the given opcode.
    pub fn new(opcode: Opcode) -> Bhs {
        let mut bytes = [0u8; BHS_LEN];
        bytes[0] = opcode as u8;
        Bhs(bytes)
    }

    /// The raw six-bit opcode.
    pub fn opcode_raw(&self) -> u8 {
        self.0[0] & 0x3f
    }

    /// The opcode, if known.
    pub fn opcode(&self) -> Option<Opcode> {
        Opcode::from_u8(self.0[0])
    }

    /// The immediate (I) bit.
    pub fn immediate(&self) -> bool {
        self.0[0] & 0x40 != 0
    }

    /// Sets or clears the immediate (I) bit.
    pub fn set_immediate(&mut self, on: bool) {
        if on {
            self.0[0] |= 0x40;
        } else {
            self.0[0] &= !0x40;
        }
    }

    /// Byte 1: the opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.0[1]
    }

    /// Sets byte 1.
    pub fn set_flags(&mut self, flags: u8) {
        self.0[1] = flags;
    }

    /// The final (F) bit of byte 1.
    pub fn is_final(&self) -> bool {
        self.0[1] & flags::FINAL != 0
    }

    /// TotalAHSLength in bytes (the field counts four-byte words).
    pub fn total_ahs_len(&self) -> usize {
        usize::from(self.0[4]) * 4
    }

    /// DataSegmentLength in bytes (without padding).
    pub fn data_segment_len(&self) -> usize {
        (usize::from(self.0[5]) << 16) | (usize::from(self.0[6]) << 8) | usize::from(self.0[7])
    }

    /// Sets DataSegmentLength. Lengths above 2^24 - 1 cannot be expressed.
    pub fn set_data_segment_len(&mut self, len: usize) -> Result<(), IscsiError> {
        if len > MAX_DATA_SEGMENT {
            return Err(IscsiError::DataSegmentTooLong(len));
        }
        self.0[5] = (len >> 16) as u8;
        self.0[6] = (len >> 8) as u8;
        self.0[7] = len as u8;
        Ok(())
    }

    /// Bytes 8..16: the LUN, or opcode-specific (ISID + TSIH in login PDUs).
    pub fn lun(&self) -> [u8; 8] {
        let mut lun = [0u8; 8];
        lun.copy_from_slice(&self.0[8..16]);
        lun
    }

    /// Sets bytes 8..16.
    pub fn set_lun(&mut self, lun: [u8; 8]) {
        self.0[8..16].copy_from_slice(&lun);
    }

    /// Initiator Task Tag (bytes 16..20).
    pub fn itt(&self) -> u32 {
        self.u32_at(16)
    }

    /// Sets the Initiator Task Tag.
    pub fn set_itt(&mut self, itt: u32) {
        self.set_u32_at(16, itt);
    }

    /// The big-endian u32 at `offset` (which must leave four bytes in the header).
    pub fn u32_at(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[offset..offset + 4]);
        u32::from_be_bytes(b)
    }

    /// Stores a big-endian u32 at `offset`.
    pub fn set_u32_at(&mut self, offset: usize, value: u32) {
        self.0[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    }

    /// The big-endian u16 at `offset`.
    pub fn u16_at(&self, offset: usize) -> u16 {
        u16::from_be_bytes([self.0[offset], self.0[offset + 1]])
    }

    /// Stores a big-endian u16 at `offset`.
    pub fn set_u16_at(&mut self, offset: usize, value: u16) {
        self.0[offset..offset + 2].copy_from_slice(&value.to_be_bytes());
    }
}

impl fmt::Debug for Bhs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bhs(")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                write!(f, " ")?;
            }
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A whole PDU: header, additional header segments, data segment (unpadded).
#[derive(Clone, PartialEq, Eq)]
pub struct Pdu {
    /// The Basic Header Segment.
    pub bhs: Bhs,
    /// The additional header segments, as received (a multiple of four bytes).
    pub ahs: Vec<u8>,
    /// The data segment without its padding.
    pub data: Vec<u8>,
}

impl fmt::Debug for Pdu {
    // The data segment can carry login keys (CHAP_R...), so it is summarised, not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pdu")
            .field("bhs", &self.bhs)
            .field("ahs_len", &self.ahs.len())
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// Number of zero bytes that pad a segment of `len` bytes to a four-byte boundary.
pub fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

impl Pdu {
    /// A PDU with the given header and no data.
    pub fn new(bhs: Bhs) -> Pdu {
        Pdu {
            bhs,
            ahs: Vec::new(),
            data: Vec::new(),
        }
    }

    /// A PDU with the given header and data segment.
    pub fn with_data(bhs: Bhs, data: Vec<u8>) -> Pdu {
        Pdu {
            bhs,
            ahs: Vec::new(),
            data,
        }
    }

    /// The opcode, if known.
    pub fn opcode(&self) -> Option<Opcode> {
        self.bhs.opcode()
    }

    /// The wire form: header with TotalAHSLength and DataSegmentLength filled in, AHS, data,
    /// and zero padding.
    pub fn encode(&self) -> Result<Vec<u8>, IscsiError> {
        encode_parts(&self.bhs, &self.ahs, &self.data)
    }

    /// Writes the wire form to `w` in one `write_all`.
    pub fn write_to<W: Write>(&self, w: &mut W) -> Result<(), IscsiError> {
        w.write_all(&self.encode()?)?;
        Ok(())
    }

    /// Decodes one PDU from the start of `bytes`; returns it and the number of bytes used.
    /// `Ok(None)` when `bytes` holds less than a whole PDU.
    pub fn decode(bytes: &[u8], max_data: usize) -> Result<Option<(Pdu, usize)>, IscsiError> {
        if bytes.len() < BHS_LEN {
            return Ok(None);
        }
        let mut header = [0u8; BHS_LEN];
        header.copy_from_slice(&bytes[..BHS_LEN]);
        let bhs = Bhs(header);
        let ahs_len = bhs.total_ahs_len();
        let data_len = bhs.data_segment_len();
        if data_len > max_data {
            return Err(IscsiError::DataSegmentTooLarge {
                len: data_len,
                max: max_data,
            });
        }
        let total = BHS_LEN + ahs_len + data_len + padding(data_len);
        if bytes.len() < total {
            return Ok(None);
        }
        let ahs = bytes[BHS_LEN..BHS_LEN + ahs_len].to_vec();
        let start = BHS_LEN + ahs_len;
        let data = bytes[start..start + data_len].to_vec();
        Ok(Some((Pdu { bhs, ahs, data }, total)))
    }

    /// Reads one PDU from `r`, refusing a data segment longer than `max_data`.
    pub fn read_from<R: Read>(r: &mut R, max_data: usize) -> Result<Pdu, IscsiError> {
        let mut header = [0u8; BHS_LEN];
        r.read_exact(&mut header)?;
        let bhs = Bhs(header);
        let data_len = bhs.data_segment_len();
        if data_len > max_data {
            return Err(IscsiError::DataSegmentTooLarge {
                len: data_len,
                max: max_data,
            });
        }
        let mut ahs = vec![0u8; bhs.total_ahs_len()];
        r.read_exact(&mut ahs)?;
        let mut data = vec![0u8; data_len];
        r.read_exact(&mut data)?;
        let mut pad = [0u8; 3];
        r.read_exact(&mut pad[..padding(data_len)])?;
        Ok(Pdu { bhs, ahs, data })
    }
}

/// Encodes a PDU from borrowed parts (used for Data-Out, to avoid copying the payload twice).
pub fn encode_parts(bhs: &Bhs, ahs: &[u8], data: &[u8]) -> Result<Vec<u8>, IscsiError> {
    let mut bhs = bhs.clone();
    if !ahs.len().is_multiple_of(4) || ahs.len() / 4 > usize::from(u8::MAX) {
        return Err(IscsiError::InvalidArgument(format!(
            "additional header segments must be a multiple of 4 bytes, at most 1020 (got {})",
            ahs.len()
        )));
    }
    bhs.0[4] = (ahs.len() / 4) as u8;
    bhs.set_data_segment_len(data.len())?;
    let pad = padding(data.len());
    let mut out = Vec::with_capacity(BHS_LEN + ahs.len() + data.len() + pad);
    out.extend_from_slice(&bhs.0);
    out.extend_from_slice(ahs);
    out.extend_from_slice(data);
    out.resize(out.len() + pad, 0);
    Ok(out)
}

/// Serial number arithmetic (RFC 1982, 32 bits): `a < b`.
pub fn sn_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// Serial number arithmetic: `a <= b`.
pub fn sn_le(a: u32, b: u32) -> bool {
    a == b || sn_lt(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_rounds_to_four() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 3);
        assert_eq!(padding(2), 2);
        assert_eq!(padding(3), 1);
        assert_eq!(padding(4), 0);
        assert_eq!(padding(8193), 3);
    }

    #[test]
    fn bhs_layout_of_fields() {
        let mut bhs = Bhs::new(Opcode::ScsiCommand);
        bhs.set_immediate(true);
        bhs.set_flags(flags::FINAL | flags::READ | flags::ATTR_SIMPLE);
        bhs.set_lun([0, 1, 0, 0, 0, 0, 0, 0]);
        bhs.set_itt(0x0102_0304);
        bhs.set_u32_at(20, 0x0a0b_0c0d);
        bhs.set_data_segment_len(0x0012_3456).expect("fits");
        assert_eq!(bhs.0[0], 0x41);
        assert_eq!(bhs.0[1], 0xc1);
        assert_eq!(&bhs.0[5..8], &[0x12, 0x34, 0x56]);
        assert_eq!(&bhs.0[8..16], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bhs.0[16..20], &[1, 2, 3, 4]);
        assert_eq!(&bhs.0[20..24], &[0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(bhs.opcode(), Some(Opcode::ScsiCommand));
        assert!(bhs.immediate());
        assert!(bhs.is_final());
        assert_eq!(bhs.data_segment_len(), 0x0012_3456);
        assert_eq!(bhs.itt(), 0x0102_0304);
        bhs.set_immediate(false);
        assert_eq!(bhs.0[0], 0x01);
        assert!(bhs.set_data_segment_len(MAX_DATA_SEGMENT + 1).is_err());
    }

    #[test]
    fn encode_pads_data_and_sets_lengths() {
        let pdu = Pdu::with_data(Bhs::new(Opcode::TextRequest), b"abcde".to_vec());
        let wire = pdu.encode().expect("encodes");
        assert_eq!(wire.len(), 48 + 8);
        assert_eq!(wire[0], 0x04);
        assert_eq!(&wire[4..8], &[0, 0, 0, 5]);
        assert_eq!(&wire[48..53], b"abcde");
        assert_eq!(&wire[53..56], &[0, 0, 0]);
        let (back, used) = Pdu::decode(&wire, 8192).expect("valid").expect("complete");
        assert_eq!(used, wire.len());
        assert_eq!(back.data, b"abcde");
        assert_eq!(back.bhs.data_segment_len(), 5);
        // Incomplete input is not an error, just not yet a PDU.
        assert!(Pdu::decode(&wire[..50], 8192).expect("valid").is_none());
        // Reading from a stream consumes the padding too.
        let mut twice = wire.clone();
        twice.extend_from_slice(&wire);
        let mut cursor = std::io::Cursor::new(twice);
        let first = Pdu::read_from(&mut cursor, 8192).expect("first");
        let second = Pdu::read_from(&mut cursor, 8192).expect("second");
        assert_eq!(first, second);
        assert_eq!(cursor.position() as usize, 2 * wire.len());
    }

    #[test]
    fn decode_with_ahs_and_limits() {
        let mut wire = vec![0u8; 48];
        wire[0] = 0x21;
        wire[4] = 1; // one AHS word
        wire[7] = 2; // two data bytes
        wire.extend_from_slice(&[9, 9, 9, 9]);
        wire.extend_from_slice(&[7, 8, 0, 0]);
        let (pdu, used) = Pdu::decode(&wire, 16).expect("valid").expect("complete");
        assert_eq!(used, 56);
        assert_eq!(pdu.ahs, vec![9, 9, 9, 9]);
        assert_eq!(pdu.data, vec![7, 8]);
        assert_eq!(pdu.opcode(), Some(Opcode::ScsiResponse));
        assert!(matches!(
            Pdu::decode(&wire, 1),
            Err(IscsiError::DataSegmentTooLarge { len: 2, max: 1 })
        ));
    }

    #[test]
    fn serial_number_arithmetic_wraps() {
        assert!(sn_lt(1, 2));
        assert!(!sn_lt(2, 1));
        assert!(sn_lt(0xffff_fff0, 5));
        assert!(sn_le(7, 7));
        assert!(!sn_le(5, 0xffff_fff0));
    }

    #[test]
    fn opcodes_round_trip() {
        for op in [
            Opcode::NopOut,
            Opcode::ScsiCommand,
            Opcode::LoginRequest,
            Opcode::TextRequest,
            Opcode::DataOut,
            Opcode::LogoutRequest,
            Opcode::NopIn,
            Opcode::ScsiResponse,
            Opcode::LoginResponse,
            Opcode::TextResponse,
            Opcode::DataIn,
            Opcode::LogoutResponse,
            Opcode::ReadyToTransfer,
            Opcode::AsyncMessage,
            Opcode::Reject,
        ] {
            assert_eq!(Opcode::from_u8(op as u8), Some(op));
            assert_eq!(Opcode::from_u8(op as u8 | 0x40), Some(op));
        }
        assert_eq!(Opcode::from_u8(0x1f), None);
    }
}
