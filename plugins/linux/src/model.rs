//! What the engine answers with: elements, groups, pools, limits, split progress. These are
//! the array-level shapes the array-side program prints; [`Element::to_se_record`] and friends
//! turn them into the guides' records for the plug-in.

use crate::db::Kind;
use serde::{Deserialize, Serialize};
use spindle_api::{AccessGrp, Field, QosVals, SeRecord, SeState, SeType, VolGroup};
use std::fmt;
use std::path::PathBuf;

/// One image of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// The LUN it is an image of.
    pub element: String,
    /// The image file (mode 0400).
    pub path: PathBuf,
    /// The LUN's size when the snapshot was taken.
    pub size: u64,
}

/// An element as the array reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    /// uuid.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// LUN, snapshot or clone.
    pub kind: Kind,
    /// The guides' type: LUNType, SnapType or SnapCloneType.
    pub se_type: SeType,
    /// Pool name.
    pub pool: String,
    /// Bytes.
    pub size: u64,
    /// Sparse (true) or allocated at creation (false).
    pub thin: bool,
    /// A clone's source (element or snapshot uuid); `None` for LUNs and split clones.
    pub parent: Option<String>,
    /// For a clone of a snapshot: the LUN whose image it copies.
    pub parent_member: Option<String>,
    /// For a snapshot: its images.
    pub members: Vec<MemberView>,
    /// Read-only (snapshots).
    pub read_only: bool,
    /// SE_STATES value.
    pub state: SeState,
    /// Status text.
    pub status: String,
    /// QoS value.
    pub qos: String,
    /// Desired online state.
    pub online: bool,
    /// Page-83 serial.
    pub serial: u64,
    /// The raw NAA-6 identifier, 32 hex digits (tgt `scsi_id`).
    pub scsi_id: String,
    /// `make_mp_page83_from_raw_page83(scsi_id)`.
    pub page83_id: String,
    /// The backing file of a LUN or clone.
    pub path: Option<PathBuf>,
    /// Groups it is presented to.
    pub groups: Vec<String>,
    /// Backing-file generation (see [`crate::export::LunPlan::backing_generation`]).
    pub backing_generation: u64,
    /// The handle of the split under way, if any.
    pub split: Option<String>,
}

impl Element {
    /// The element as an se_record of the storage server `ss_uuid`.
    pub fn to_se_record(&self, ss_uuid: &str) -> SeRecord {
        SeRecord {
            se_type: Field::Value(self.se_type),
            ss_uuid: Field::Value(ss_uuid.to_string()),
            name: Field::Value(self.name.clone()),
            uuid: Field::Value(self.uuid.clone()),
            page83_id: Field::Value(self.page83_id.clone()),
            id: Field::Value(self.uuid.clone()),
            vendor: Field::Value(crate::export::VENDOR.to_string()),
            product_id: Field::Value(crate::export::PRODUCT.to_string()),
            array_path: self
                .path
                .as_ref()
                .map(|p| Field::Value(p.to_string_lossy().into_owned()))
                .unwrap_or(Field::Absent),
            size: Field::Value(self.size as i64),
            status: Field::Value(self.status.clone()),
            vol_group_name: Field::Value(self.pool.clone()),
            access_grp_names: Field::Value(self.groups.clone()),
            qos: Field::Value(self.qos.clone()),
            state: Field::Value(self.state),
            ..SeRecord::default()
        }
    }
}

/// An access group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Initiator names.
    pub entries: Vec<String>,
    /// Modes, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<String>>,
    /// The target serving it.
    pub target: String,
}

impl Group {
    /// As an access_grp record.
    pub fn to_access_grp(&self) -> AccessGrp {
        AccessGrp {
            grp_name: Field::Value(self.name.clone()),
            grp_entries: Field::Value(self.entries.clone()),
            grp_modes: self.modes.clone().map(Field::Value).unwrap_or(Field::Absent),
            ..AccessGrp::default()
        }
    }
}

/// A group to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Name.
    pub name: String,
    /// Initiator names.
    #[serde(default)]
    pub entries: Vec<String>,
    /// Modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<String>>,
}

/// A pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInfo {
    /// Name.
    pub name: String,
    /// Directory.
    pub path: PathBuf,
    /// File system.
    pub fs: String,
    /// FICLONE works there.
    pub reflink: bool,
    /// The directory is a btrfs subvolume (atomic multi-LUN snapshots).
    pub subvolume: bool,
    /// File-system bytes.
    pub total: u64,
    /// Used bytes.
    pub used: u64,
    /// Available bytes.
    pub free: u64,
    /// Provisioned bytes (sum of LUN and clone sizes).
    pub alloc: u64,
    /// Description.
    pub desc: String,
}

impl PoolInfo {
    /// As a vol_group record.
    pub fn to_vol_group(&self) -> VolGroup {
        VolGroup {
            vol_name: Field::Value(self.name.clone()),
            vol_total_sz: Field::Value(self.total as i64),
            vol_used_sz: Field::Value(self.used as i64),
            vol_free_sz: Field::Value(self.free as i64),
            vol_alloc_sz: Field::Value(self.alloc as i64),
            vol_desc: Field::Value(self.desc.clone()),
            ..VolGroup::default()
        }
    }
}

/// The array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayInfo {
    /// The array's id (random, made once).
    pub array_id: String,
    /// Description.
    pub desc: String,
    /// Status.
    pub status: String,
    /// Pools.
    pub pools: Vec<PoolInfo>,
    /// Sum of the pools' totals.
    pub total: u64,
    /// Sum of used.
    pub used: u64,
    /// Sum of free.
    pub free: u64,
    /// Sum of provisioned.
    pub alloc: u64,
    /// Target names, one per group.
    pub targets: Vec<String>,
    /// Prefix of the target names.
    pub iqn_prefix: String,
    /// The CHAP user, if an account is set (never the secret).
    pub chap_user: Option<String>,
    /// The export layer (tgtd), when the configuration names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tgt: Option<crate::tgt::TgtStatus>,
}

/// A QoS level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QosLevel {
    /// 0 = highest.
    pub priority: i64,
    /// Name.
    pub value: String,
    /// Description.
    pub description: String,
    /// Whether tgt's write cache is on.
    pub write_cache: bool,
}

impl QosLevel {
    /// As a qos_vals record.
    pub fn to_qos_vals(&self) -> QosVals {
        QosVals {
            priority: Field::Value(self.priority),
            value: Field::Value(self.value.clone()),
            description: Field::Value(self.description.clone()),
            ..QosVals::default()
        }
    }
}

/// The array's limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Snapshots per LUN.
    pub snapshots: i64,
    /// Unsplit clones per element.
    pub clones: i64,
    /// Entries per access group.
    pub entries_per_group: i64,
    /// LUNs per target (group).
    pub luns_per_target: i64,
}

/// The state of a clone split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitStatus {
    /// The split's handle.
    pub handle: String,
    /// 0..=100 while running; `None` once finished.
    pub progress: Option<i64>,
    /// The clone (a LUN once finished).
    pub element: Element,
}

/// A CHAP account for the targets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChapAccount {
    /// User name.
    pub username: String,
    /// Secret; never logged, never in an error.
    pub secret: String,
}

impl fmt::Debug for ChapAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChapAccount")
            .field("username", &self.username)
            .field("secret", &spindle_api::REDACTED)
            .finish()
    }
}
