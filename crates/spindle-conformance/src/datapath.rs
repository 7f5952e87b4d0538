//! The data path: what the kit needs from an iSCSI initiator to see, from a host's side, the
//! LUNs a plug-in presents. The kit only uses this trait; an initiator (such as the pure-Rust
//! `spindle-iscsi`) is plugged in by implementing it.
//!
//! Every method is blocking (an initiator speaks to the network synchronously); the kit calls
//! them off the async workers' backs. Each call names the portal and the initiator, so an
//! implementation may keep sessions open between calls or log in afresh every time.

use crate::error::ConformanceError;
use std::fmt;

/// One logical unit an initiator sees: the target that offers it and its LUN number there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LunRef {
    /// The target's iSCSI name.
    pub target: String,
    /// The LUN number on that target.
    pub lun: u64,
}

impl fmt::Display for LunRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} LUN {}", self.target, self.lun)
    }
}

/// What READ CAPACITY reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Bytes per logical block.
    pub block_size: u32,
    /// Number of logical blocks.
    pub blocks: u64,
}

impl Capacity {
    /// The capacity in bytes.
    pub fn bytes(&self) -> u128 {
        u128::from(self.block_size) * u128::from(self.blocks)
    }
}

/// A host's view of the array: the operations the data-path checks need.
///
/// `portal` is `HOST:PORT`; `initiator` is the initiator's iSCSI name (IQN). Errors are
/// [`ConformanceError::DataPath`] with a message for the plug-in author.
pub trait DataPath: Send + Sync {
    /// Every LUN the initiator can see through the portal (after discovery and login).
    fn visible_luns(&self, portal: &str, initiator: &str) -> Result<Vec<LunRef>, ConformanceError>;

    /// READ CAPACITY (16) of a LUN.
    fn read_capacity(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
    ) -> Result<Capacity, ConformanceError>;

    /// INQUIRY VPD page 0x83 (device identification): the whole page, header included.
    fn read_vpd_page83(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
    ) -> Result<Vec<u8>, ConformanceError>;

    /// Writes `data` (a whole number of blocks) at logical block `lba`.
    fn write_pattern(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
        lba: u64,
        data: &[u8],
    ) -> Result<(), ConformanceError>;

    /// Reads `blocks` logical blocks at `lba`.
    fn read_back(
        &self,
        portal: &str,
        initiator: &str,
        lun: &LunRef,
        lba: u64,
        blocks: u32,
    ) -> Result<Vec<u8>, ConformanceError>;
}
