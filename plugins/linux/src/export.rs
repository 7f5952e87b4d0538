//! The desired export state: what tgtd should serve, produced from the array's state.
//!
//! The engine only records desired state; the tgt layer (`spindle-tgt`) is a function from an
//! [`ExportPlan`] to tgtadm calls. Access groups are iSCSI targets named
//! `<iqn_prefix>:<group name in lower case>`, their entries the initiator ACL, and each
//! presentation a logical unit backed by the element's file.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// SCSI INQUIRY vendor of every logical unit.
pub const VENDOR: &str = "SPINDLE";
/// SCSI INQUIRY product of every logical unit.
pub const PRODUCT: &str = "LINUX-ARRAY";

/// Everything tgtd should export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPlan {
    /// The array's id.
    pub array_id: String,
    /// Prefix of the target names.
    pub iqn_prefix: String,
    /// The incoming CHAP account every target requires, if one is set.
    pub chap: Option<ChapPlan>,
    /// One target per access group, ordered by group name.
    pub targets: Vec<TargetPlan>,
}

/// The CHAP account. The secret is not in the plan: it is read from `secret_file` (mode
/// 0600, in the state directory) by whoever configures tgtd, so a serialised plan never
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChapPlan {
    /// CHAP user name.
    pub username: String,
    /// File holding the secret.
    pub secret_file: PathBuf,
}

impl ChapPlan {
    /// Reads the secret. Never log what this returns.
    pub fn read_secret(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.secret_file).map(|s| s.trim_end_matches('\n').to_string())
    }
}

/// One target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPlan {
    /// The access group it serves.
    pub group: String,
    /// `<iqn_prefix>:<group in lower case>`.
    pub iqn: String,
    /// Initiator names allowed to log in (the ACL).
    pub initiators: Vec<String>,
    /// Logical units, ordered by number.
    pub luns: Vec<LunPlan>,
}

/// One logical unit of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunPlan {
    /// LUN number, from 1 (tgt keeps 0 for its controller); stable while presented.
    pub lun: u32,
    /// Element uuid.
    pub element: String,
    /// Element name.
    pub name: String,
    /// The backing file.
    pub backing_path: PathBuf,
    /// Size of the backing file in bytes.
    pub size: u64,
    /// tgt `scsi_id`: the 32-hex-digit NAA-6 identifier initiators read from VPD page 0x83.
    pub scsi_id: String,
    /// tgt `scsi_sn`: the unit serial number (VPD page 0x80).
    pub scsi_sn: String,
    /// INQUIRY vendor.
    pub vendor: String,
    /// INQUIRY product.
    pub product: String,
    /// Whether the unit should be online (serving I/O).
    pub online: bool,
    /// Write cache (from the element's QoS).
    pub write_cache: bool,
    /// Read-only unit.
    pub read_only: bool,
    /// Thin provisioning offered to initiators (READ CAPACITY(16) LBPME, VPD page 0xB2):
    /// UNMAP and WRITE SAME with UNMAP punch holes in the backing file, so the space a host
    /// discards goes back to the pool. Set for thin elements only: a thick LUN
    /// (`thin_provision=False`) keeps every block it was given.
    #[serde(default)]
    pub thin: bool,
    /// Incremented each time the backing file was replaced (restore, split): when it differs
    /// from what tgtd has open, the unit must be deleted and added again (same `scsi_id`),
    /// because tgtd keeps the old file open.
    pub backing_generation: u64,
}
