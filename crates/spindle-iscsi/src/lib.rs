//! A small, synchronous, pure-Rust iSCSI initiator (RFC 7143) for checking the data path of
//! storage arrays exported over iSCSI: what a real initiator sees.
//!
//! - [`Discovery::send_targets`]: a discovery session, `SendTargets=All`.
//! - [`Session::login`]: a normal session (CHAP optional, one-way or mutual), then SCSI
//!   commands: [`Session::report_luns`], [`Session::test_unit_ready`], [`Session::inquiry`],
//!   [`Session::inquiry_vpd80`], [`Session::inquiry_vpd83`], [`Session::read_capacity16`],
//!   [`Session::read`], [`Session::write`], [`Session::synchronize_cache`], and
//!   [`Session::execute`] for any other CDB; [`Session::logout`] at the end.
//!
//! [`Discovery::visible_luns`] combines the two: which targets and LUNs an initiator name may
//! see through a portal.
//!
//! # What of RFC 7143 is implemented
//!
//! - Discovery and normal sessions over one TCP connection (CID 0), a random ISID of type
//!   "random" unless the caller picks one, the TSIH the target assigns.
//! - Login: security negotiation with `AuthMethod=None` or CHAP (`CHAP_A=5`, MD5; one-way or
//!   mutual with a random 16-byte challenge, reflection check and constant-time comparison;
//!   hex and base64 binary values); operational negotiation of HeaderDigest/DataDigest
//!   (None only), MaxRecvDataSegmentLength (declarative both ways; 8192 when the target
//!   declares none), MaxBurstLength, FirstBurstLength, ImmediateData, InitialR2T,
//!   MaxOutstandingR2T=1, MaxConnections=1, DataPDUInOrder/DataSequenceInOrder=Yes,
//!   ErrorRecoveryLevel=0, DefaultTime2Wait/Retain; keys the target offers on its own are
//!   answered (unknown ones with NotUnderstood); Login Responses split with the C bit;
//!   refusals decoded from Status-Class/Status-Detail ([`LoginStatus`]), a redirection's
//!   TargetAddress reported (not followed).
//! - Full feature phase: CmdSN/ExpCmdSN/MaxCmdSN window and ExpStatSN tracking; SCSI Command
//!   with immediate data and unsolicited Data-Out within FirstBurstLength; R2T and solicited
//!   Data-Out within MaxBurstLength, split at the target's MaxRecvDataSegmentLength; Data-In
//!   over several PDUs (DataSN and offsets checked in order), status in the last Data-In,
//!   residual underflow/overflow; SCSI Response with sense data; NOP-Out pings and answers to
//!   the target's NOP-In pings; Asynchronous Messages recorded ([`TargetEvent`]; "dropping
//!   the connection" ends the session); Reject reported; Text Request/Response with
//!   continuation (SendTargets=All); Logout (close the session).
//! - SCSI: REPORT LUNS, TEST UNIT READY, INQUIRY (standard, VPD 0x80, VPD 0x83 raw and
//!   parsed), READ CAPACITY(16), READ(16), WRITE(16), SYNCHRONIZE CACHE(10), UNMAP(10), any other CDB of
//!   up to 16 bytes through [`Session::execute`]; sense data in fixed and descriptor formats;
//!   commands ending in UNIT ATTENTION re-issued (and recorded).
//!
//! Not implemented: header and data digests (CRC32C), more than one connection per session,
//! more than one outstanding command, error recovery levels 1 and 2 (SNACK, connection and
//! task recovery), task management functions (ABORT TASK, LUN RESET...), bidirectional
//! commands and CDBs over 16 bytes (AHS), following login redirections, renegotiation in full
//! feature phase, CHAP with other digests than MD5 and the other authentication methods
//! (SRP, KRB5, SPKM), markers, iSER, iSNS.
//!
//! ```no_run
//! use spindle_iscsi::{Chap, Discovery, Lun, Session};
//!
//! let initiator = "iqn.2024-01.org.example:host1";
//! let chap = Chap::new("user", "a-long-secret");
//! for target in Discovery::send_targets("192.0.2.10:3260", initiator, Some(&chap))? {
//!     let mut s = Session::login("192.0.2.10:3260", &target.name, initiator, Some(&chap))?;
//!     for lun in s.report_luns()? {
//!         let cap = s.read_capacity16(lun)?;
//!         let id = s.inquiry_vpd83(lun)?;
//!         println!("{lun}: {} bytes, NAA {:?}", cap.bytes(), id.naa_of_type(6).map(|d| d.hex()));
//!     }
//!     s.write(Lun::new(1), 0, &[0xa5; 4096])?;
//!     assert_eq!(s.read(Lun::new(1), 0, 8)?, vec![0xa5; 4096]);
//!     s.logout()?;
//! }
//! # Ok::<(), spindle_iscsi::IscsiError>(())
//! ```

pub mod chap;
mod connection;
pub mod discovery;
pub mod error;
pub mod login;
pub mod pdu;
pub mod scsi;
pub mod session;
pub mod text;

pub use chap::{Chap, Secret};
pub use connection::{resolve, TargetEvent, DEFAULT_PORT};
pub use discovery::{DiscoveredTarget, Discovery, Portal, VisibleTarget};
pub use error::{IscsiError, LoginStatus};
pub use login::{LoginOptions, NegotiatedParams};
pub use scsi::{
    Association, Capacity, CodeSet, Designator, DesignatorType, DeviceIdentification, Lun, ScsiStatus, Sense,
    SenseKey, StandardInquiry,
};
pub use session::{CommandResult, DataDirection, Session, TransferStats};
